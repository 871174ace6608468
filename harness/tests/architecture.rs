//! The shape of the harness's source, held as tests so it stays: no import
//! circle among the files of `harness/src`, no file over 700 lines, and
//! docs that name files name ones that exist.
//!
//! The import graph is read from the text, not the compiler: an edge runs
//! from a file to each file whose module a path in it names (`use` lines,
//! and paths such as `crate::object::now()` or `super::state::X` in code),
//! with `#[cfg(test)]` modules left out. A folder's `mod.rs` that re-exports
//! a child while the child imports an item of that `mod.rs` is a circle
//! too: shared items live in a leaf module of their own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file under `dir`, by its path relative to `dir`.
fn sources(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    out
}

/// The module path of a file: `cluster/sim/mod.rs` is `cluster::sim`.
fn module_of(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The code of a file without its test modules and line comments. A test
/// module may be declared (`mod tests;`) above code that still counts, or
/// written inline (`mod tests { … }`), where its block is skipped.
fn code(text: &str) -> String {
    let mut kept = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]\nmod ") {
        kept.push_str(&rest[..at]);
        let item = &rest[at..];
        let end = match (item.find(';'), item.find('{')) {
            (Some(semi), Some(open)) if semi < open => semi + 1,
            (_, Some(open)) => block_end(item, open),
            (Some(semi), None) => semi + 1,
            (None, None) => item.len(),
        };
        rest = &item[end..];
    }
    kept.push_str(rest);
    kept.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The index just past the brace that closes the one at `open`, or the end
/// of `text` when it never closes.
fn block_end(text: &str, open: usize) -> usize {
    let mut depth = 0usize;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return open + i + 1;
                }
            }
            _ => {}
        }
    }
    text.len()
}

/// The paths a `use` tree names, its braces expanded:
/// `a::{b, c::{d, e}}` is `a::b`, `a::c::d`, `a::c::e`.
fn expand_use(tree: &str) -> Vec<Vec<String>> {
    // Renames (`X as Y`) dropped, then the spaces.
    let mut tokens = tree.split_whitespace();
    let mut tree = String::new();
    while let Some(t) = tokens.next() {
        if t == "as" {
            let renamed = tokens.next().unwrap_or("");
            tree.push_str(renamed.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_'));
        } else {
            tree.push_str(t);
        }
    }
    let Some(open) = tree.find('{') else {
        return vec![tree.split("::").map(str::to_string).collect()];
    };
    let prefix: Vec<String> = tree[..open]
        .trim_end_matches("::")
        .split("::")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let close = tree.rfind('}').filter(|&c| c > open).unwrap_or(tree.len());
    let inner = &tree[open + 1..close];
    let (mut items, mut depth, mut current) = (Vec::new(), 0, String::new());
    for c in inner.chars() {
        match c {
            ',' if depth == 0 => items.push(std::mem::take(&mut current)),
            '{' => {
                depth += 1;
                current.push(c);
            }
            '}' => {
                depth -= 1;
                current.push(c);
            }
            _ => current.push(c),
        }
    }
    items.push(current);
    let mut out = Vec::new();
    for item in items.iter().filter(|i| !i.is_empty()) {
        for rest in expand_use(item) {
            let rest: Vec<String> = rest.into_iter().filter(|s| s != "self").collect();
            out.push(prefix.iter().cloned().chain(rest).collect());
        }
    }
    out
}

/// The paths of two segments or more in `code` (`use` trees and paths in
/// expressions and types alike).
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = find_word(rest, "use") {
        let after = &rest[i + 3..];
        let end = after.find(';').unwrap_or(after.len());
        out.extend(expand_use(&after[..end]));
        rest = &after[end..];
    }
    // Paths outside `use` lines.
    let bytes: Vec<char> = code.chars().collect();
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < bytes.len() {
        if ident(bytes[i]) && (i == 0 || !(ident(bytes[i - 1]) || bytes[i - 1] == ':')) {
            let mut segments = Vec::new();
            let mut j = i;
            loop {
                let start = j;
                while j < bytes.len() && ident(bytes[j]) {
                    j += 1;
                }
                segments.push(bytes[start..j].iter().collect::<String>());
                if j + 2 < bytes.len()
                    && bytes[j] == ':'
                    && bytes[j + 1] == ':'
                    && ident(bytes[j + 2])
                {
                    j += 2;
                } else {
                    break;
                }
            }
            if segments.len() > 1 {
                out.push(segments);
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// Where `word` occurs in `text` as a whole word.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(at) = text[from..].find(word).map(|i| i + from) {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        // A `use` item starts its line, after `pub` or `pub(...)` at most;
        // the word elsewhere (a string, a message) is not one.
        let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let lead = text[line_start..at].trim();
        let item_start = lead.is_empty() || lead == "pub" || lead.starts_with("pub(");
        if item_start && !before.is_some_and(ident) && after.is_some_and(char::is_whitespace) {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

/// file -> the files whose modules it names.
fn import_graph(files: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeMap<Vec<String>, String> = files
        .keys()
        .filter(|f| *f != "main.rs")
        .map(|f| (module_of(f), f.clone()))
        .collect();
    let mut graph = BTreeMap::new();
    for (file, text) in files.iter().filter(|(f, _)| *f != "main.rs") {
        let me = module_of(file);
        let mut edges = BTreeSet::new();
        for path in paths(&code(text)) {
            let absolute: Vec<String> = match path[0].as_str() {
                "crate" => path[1..].to_vec(),
                "super" | "self" => {
                    let mut at = me.clone();
                    let mut rest = path.as_slice();
                    while let Some(first) = rest.first() {
                        match first.as_str() {
                            "super" => {
                                at.pop();
                            }
                            "self" => {}
                            _ => break,
                        }
                        rest = &rest[1..];
                    }
                    at.extend(rest.iter().cloned());
                    at
                }
                // A child module named without `self::`.
                first => {
                    let mut child = me.clone();
                    child.push(first.to_string());
                    if !modules.contains_key(&child) {
                        continue;
                    }
                    me.iter().cloned().chain(path.iter().cloned()).collect()
                }
            };
            // The longest prefix that is a module file (the crate root
            // only declares modules, and is not a target).
            if let Some(target) = (1..=absolute.len())
                .rev()
                .find_map(|n| modules.get(&absolute[..n]))
            {
                if target != file {
                    edges.insert(target.clone());
                }
            }
        }
        graph.insert(file.clone(), edges);
    }
    graph
}

/// The strongly connected components of more than one file (Tarjan).
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[test]
fn the_harness_has_no_import_circle() {
    let files = sources(&workspace().join("harness/src"));
    let graph = import_graph(&files);
    let found = circles(&graph);
    let described: Vec<String> = found
        .iter()
        .map(|c| {
            let edges: Vec<String> = c
                .iter()
                .map(|f| {
                    let to: Vec<&str> = graph[f]
                        .iter()
                        .filter(|t| c.contains(t))
                        .map(String::as_str)
                        .collect();
                    format!("  {f} -> {}", to.join(", "))
                })
                .collect();
            format!("a circle of {} files:\n{}", c.len(), edges.join("\n"))
        })
        .collect();
    assert!(found.is_empty(), "{}", described.join("\n"));
}

#[test]
fn the_reader_of_the_import_graph_sees_circles() {
    // The check above cannot pass by seeing nothing: a parent that
    // re-exports its child, which takes an item from the parent, is found,
    // also when the re-export comes after the declaration of a test module.
    let files = BTreeMap::from([
        (
            "lib.rs".to_string(),
            "pub mod shop; pub mod other;".to_string(),
        ),
        (
            "shop/mod.rs".to_string(),
            "mod till;\n#[cfg(test)]\nmod tests;\npub use till::Till;\npub const TAX: u32 = 7;\n"
                .to_string(),
        ),
        (
            "shop/till.rs".to_string(),
            "use super::TAX;\npub struct Till;\n#[cfg(test)]\nmod tests { use crate::other::X; }\n"
                .to_string(),
        ),
        (
            "other.rs".to_string(),
            "pub fn f() { let _ = crate::shop::till::Till; }\n".to_string(),
        ),
    ]);
    let graph = import_graph(&files);
    assert_eq!(
        circles(&graph),
        vec![vec!["shop/mod.rs".to_string(), "shop/till.rs".to_string()]]
    );
    // other.rs names till.rs in an expression; till's test module, which
    // names other.rs, is not counted.
    assert!(graph["other.rs"].contains("shop/till.rs"));
    assert!(graph["shop/till.rs"].is_empty() || !graph["shop/till.rs"].contains("other.rs"));
}

#[test]
fn no_harness_file_is_over_700_lines() {
    let files = sources(&workspace().join("harness/src"));
    let long: Vec<String> = files
        .iter()
        .map(|(f, text)| (f, text.lines().count()))
        .filter(|(_, n)| *n > 700)
        .map(|(f, n)| format!("harness/src/{f}: {n} lines"))
        .collect();
    assert!(long.is_empty(), "split these by job:\n{}", long.join("\n"));
}

/// Paths in backticks in a document: `harness/src/run.rs`, `kind/lib.sh`.
fn named_files(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            !s.contains(char::is_whitespace)
                && s.contains('/')
                && !s.starts_with('/')
                && !s.contains(['<', '*', '{', '$'])
                && [".rs", ".sh", ".md", ".toml", ".env", ".tsv"]
                    .iter()
                    .any(|ext| s.ends_with(ext))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn docs_name_files_that_exist() {
    let root = workspace();
    let mut docs = vec![root.join("README.md")];
    // Measurements are dated records of a commit: they name what was there.
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            docs.push(path);
        }
    }
    let bases = [
        "",
        "harness/src",
        "injector/src",
        "harness",
        "injector",
        "docs",
    ];
    let mut missing = Vec::new();
    for doc in &docs {
        let text = std::fs::read_to_string(doc).unwrap();
        for name in named_files(&text) {
            if !bases.iter().any(|b| root.join(b).join(&name).exists()) {
                missing.push(format!(
                    "{}: `{name}`",
                    doc.strip_prefix(&root).unwrap_or(doc).display()
                ));
            }
        }
    }
    assert!(missing.is_empty(), "no such file:\n{}", missing.join("\n"));
}
