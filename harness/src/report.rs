//! The text a run prints: one table row per scenario, a totals line, and
//! the full report of every scenario that failed or could not run.

use std::fmt::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::cluster::Backend;
use crate::outcome::{Nondeterministic, Outcome, ScenarioRun};
use crate::status;

/// The READY column: each pod's count, cut to fit.
fn ready_column(run: &ScenarioRun) -> String {
    let ready: Vec<String> = run
        .observed
        .pods
        .iter()
        .map(|p| status::pod_line(p).ready)
        .collect();
    let mut text = ready.join(" ");
    if text.len() > 22 {
        text.truncate(19);
        text.push_str("...");
    }
    text
}

/// The table, totals and failure reports; and how many scenarios failed.
pub fn summary(
    results: &[(PathBuf, Outcome)],
    wall: Duration,
    backend: Backend,
) -> (String, usize) {
    let mut out = String::new();
    let mut failed = 0;
    // Writing into a String cannot fail.
    let _ = writeln!(
        out,
        "\n{:<28} {:>4} {:<22} {:>8} {:<6} {:>7}",
        "SCENARIO", "PODS", "READY", "INJECTED", "RESULT", "TIME"
    );
    for (path, r) in results {
        match r {
            Ok(run) => {
                if !run.passed() {
                    failed += 1;
                }
                let _ = writeln!(
                    out,
                    "{:<28} {:>4} {:<22} {:>8} {:<6} {:>5}ms",
                    run.name,
                    run.observed.pods.len(),
                    ready_column(run),
                    run.injected_count(),
                    if run.passed() { "pass" } else { "FAIL" },
                    run.elapsed.as_millis()
                );
            }
            Err(e) => {
                failed += 1;
                let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
                // A scenario refused before it started has no time of its own.
                let took = e
                    .elapsed
                    .map(|d| format!("{}ms", d.as_millis()))
                    .unwrap_or_else(|| "-".into());
                let _ = writeln!(
                    out,
                    "{name:<28} {:>4} {:<22} {:>8} {:<6} {took:>7}",
                    "-", "-", "-", "ERROR"
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "\n{} scenarios, {} passed, {} failed in {} ms ({} backend)",
        results.len(),
        results.len() - failed,
        failed,
        wall.as_millis(),
        backend.as_str()
    );
    // One error that stopped several scenarios (the cluster could not come
    // up) is said once, with the scenarios it stopped.
    let mut errors: Vec<(String, String, Vec<String>)> = Vec::new();
    for (path, r) in results {
        match r {
            Ok(run) if !run.passed() => {
                let _ = writeln!(
                    out,
                    "\n{} ({}):\n{}",
                    run.name,
                    path.display(),
                    run.report()
                );
            }
            Err(e) => {
                // A load error already starts with the file (and its line);
                // naming it twice would only push the line number away.
                // The kind first: what to do next depends on it.
                let message = e.to_string();
                let file = path.display().to_string();
                if message.starts_with(&file) {
                    let _ = writeln!(out, "\n[{}] {message}", e.kind);
                    continue;
                }
                let kind = e.kind.to_string();
                match errors
                    .iter_mut()
                    .find(|(k, m, _)| *k == kind && *m == message)
                {
                    Some((_, _, files)) => files.push(file),
                    None => errors.push((kind, message, vec![file])),
                }
            }
            _ => {}
        }
    }
    for (kind, message, files) in errors {
        if let [file] = files.as_slice() {
            let _ = writeln!(out, "\n[{kind}] {file}: {message}");
        } else {
            let _ = writeln!(
                out,
                "\n[{kind}] {} scenarios: {message}\n  (each of: {})",
                files.len(),
                files.join(", ")
            );
        }
    }
    (out, failed)
}

/// The verdict of a `--repeat` run: every scenario whose snapshot differed
/// between passes, with the lines that differ, or one line saying none did.
pub fn repeats(varying: &[Nondeterministic], passes: usize) -> String {
    let mut out = String::new();
    if varying.is_empty() {
        let _ = writeln!(
            out,
            "\nrepeat: every scenario gave the same snapshot in all {passes} passes"
        );
        return out;
    }
    let _ = writeln!(
        out,
        "\nrepeat: {} scenario(s) gave different snapshots across {passes} passes (an outcome that depends on timing):",
        varying.len()
    );
    for v in varying {
        let _ = writeln!(
            out,
            "  {}: pass 1 (-) and pass {} (+) differ:",
            v.name, v.pass
        );
        for line in v.diff.lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    out
}

/// How to review pending snapshots in `dir`. `cargo insta review` finds
/// them only inside a Cargo package's directory (it walks the packages
/// `cargo metadata` lists), so it is offered only there; elsewhere (a
/// workspace's top level, a directory of YAML), the diffs printed are the
/// review and `--accept` keeps them.
fn review_hint(dir: Option<&std::path::Path>) -> String {
    let accept = "run again with --accept to keep them";
    let abs = dir.and_then(|d| std::path::absolute(d).ok());
    let package = abs.as_deref().and_then(|d| {
        d.ancestors().find(|a| {
            std::fs::read_to_string(a.join("Cargo.toml"))
                .is_ok_and(|t| t.lines().any(|l| l.trim() == "[package]"))
        })
    });
    match package {
        Some(p) => format!(
            "review the .snap.new files: cargo insta review --manifest-path {} (or {accept})",
            crate::snapshot::file::display_path(&p.join("Cargo.toml"))
        ),
        None => format!("the diffs above are the review; {accept}"),
    }
}

/// The snapshot verdicts of a run: a count line, then each new or
/// differing snapshot (with its diff) and how to review them; and how many
/// failed. Accepted ones are listed as written.
pub fn snapshots(checked: &[crate::snapshot::check::Checked]) -> (String, usize) {
    use crate::snapshot::file::Verdict;
    let mut out = String::new();
    let (mut matched, mut new, mut differ, mut written, mut broken) = (0, 0, 0, 0, 0);
    let mut details = String::new();
    let mut dirs: Vec<String> = Vec::new();
    for c in checked {
        let dir = crate::snapshot::file::display_path(&c.dir);
        if !dirs.contains(&dir) {
            dirs.push(dir.clone());
        }
        match &c.verdict {
            Ok(Verdict::Matches) => matched += 1,
            Ok(Verdict::New { file }) => {
                new += 1;
                let pending = crate::snapshot::file::pending(file);
                let _ = writeln!(
                    details,
                    "\nnew snapshot {}: {}",
                    c.scenario,
                    crate::snapshot::file::display_path(&pending)
                );
            }
            Ok(Verdict::Differs { file, diff }) => {
                differ += 1;
                let _ = writeln!(
                    details,
                    "\nsnapshot {} differs from {}:\n{diff}",
                    c.scenario,
                    crate::snapshot::file::display_path(file)
                );
            }
            Ok(Verdict::Written { file }) => {
                written += 1;
                let _ = writeln!(
                    details,
                    "wrote {}",
                    crate::snapshot::file::display_path(file)
                );
            }
            Err(problem) => {
                broken += 1;
                let _ = writeln!(details, "\nsnapshot {}: {problem}", c.scenario);
            }
        }
    }
    let failed = new + differ + broken;
    let mut counts = vec![format!("{matched} match")];
    for (n, word) in [
        (new, "new"),
        (differ, "differ"),
        (written, "written"),
        (broken, "unreadable"),
    ] {
        if n > 0 {
            counts.push(format!("{n} {word}"));
        }
    }
    let _ = writeln!(
        out,
        "snapshots ({}): {}",
        dirs.join(", "),
        counts.join(", ")
    );
    out.push_str(&details);
    if new + differ > 0 {
        let first = checked.first().map(|c| c.dir.as_path());
        let _ = writeln!(out, "\n{}", review_hint(first));
    }
    (out, failed)
}

impl ScenarioRun {
    /// What a user needs when it failed: pod states, refusals, and the
    /// admission log with the injector's decisions.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for f in &self.failures {
            out.push_str(&format!("  FAIL {f}\n"));
        }
        out.push_str("  pods:\n");
        if self.observed.pods.is_empty() {
            out.push_str("    (none)\n");
        }
        for p in &self.observed.pods {
            let line = status::pod_line(p);
            out.push_str(&format!(
                "    {}/{} {} {} restarts={}\n",
                p["metadata"]["namespace"].as_str().unwrap_or(""),
                line.name,
                line.ready,
                line.status,
                line.restarts
            ));
            for key in ["initContainerStatuses", "containerStatuses"] {
                for s in p["status"][key].as_array().into_iter().flatten() {
                    out.push_str(&format!(
                        "      {}: {}\n",
                        s["name"].as_str().unwrap_or(""),
                        crate::snapshot::container_state(s)
                    ));
                }
            }
        }
        if !self.observed.rejections.is_empty() {
            out.push_str("  refused:\n");
            for r in &self.observed.rejections {
                out.push_str(&format!(
                    "    {} {}/{}: {}\n",
                    r.kind, r.namespace, r.name, r.message
                ));
            }
        }
        if !self.observed.warnings.is_empty() {
            out.push_str("  warnings:\n");
            for w in &self.observed.warnings {
                out.push_str(&format!(
                    "    {} {}/{}: Warning: {}\n",
                    w.kind, w.namespace, w.name, w.message
                ));
            }
        }
        // Other webhooks' counters are theirs to name; none are read.
        if self.builtin_subject {
            out.push_str("  injector decisions:\n");
            if self.decisions.is_empty() {
                out.push_str("    (none)\n");
            }
            for d in &self.decisions {
                out.push_str(&format!("    {d}\n"));
            }
        }
        out.push_str("  admission log:\n");
        if self.admission_log.is_empty() {
            out.push_str("    (no webhook was called)\n");
        }
        for l in &self.admission_log {
            out.push_str(&format!("    {l}\n"));
        }
        if !self.diagnostics.is_empty() {
            out.push_str("  from the cluster:\n");
            for l in &self.diagnostics {
                out.push_str(&format!("    {l}\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_error_names_its_file_once() {
        let results = vec![
            (
                PathBuf::from("scenarios/a.yaml"),
                Err(crate::error::RunError {
                    kind: crate::error::ErrorKind::InvalidScenario,
                    phase: None,
                    error: anyhow::anyhow!("scenarios/a.yaml:4: expectt: unknown field"),
                    elapsed: None,
                }),
            ),
            (
                PathBuf::from("scenarios/b.yaml"),
                Err(crate::error::RunError {
                    kind: crate::error::ErrorKind::ClusterUnreachable,
                    phase: None,
                    error: anyhow::anyhow!("the cluster is unreachable"),
                    elapsed: Some(Duration::from_millis(30104)),
                }),
            ),
        ];
        let (text, failed) = summary(&results, Duration::ZERO, Backend::Sim);
        assert_eq!(failed, 2);
        assert!(
            text.contains("\n[invalid-scenario] scenarios/a.yaml:4: expectt: unknown field\n"),
            "{text}"
        );
        assert_eq!(text.matches("scenarios/a.yaml").count(), 1, "{text}");
        // The table's TIME: how long a scenario ran before it stopped, and
        // none for one refused before it started.
        assert!(text.contains("\na                               - -                             - ERROR        -\n"), "{text}");
        assert!(text.contains("\nb                               - -                             - ERROR  30104ms\n"), "{text}");
        assert!(
            text.contains("\n[cluster-unreachable] scenarios/b.yaml: the cluster is unreachable\n"),
            "{text}"
        );
    }

    #[test]
    fn an_error_that_stopped_every_scenario_is_said_once() {
        let down = || {
            Err(crate::error::RunError {
                kind: crate::error::ErrorKind::ClusterUnreachable,
                phase: None,
                error: anyhow::anyhow!("kind cluster \"ab\" does not exist"),
                elapsed: None,
            })
        };
        let results = vec![
            (PathBuf::from("scenarios/a.yaml"), down()),
            (PathBuf::from("scenarios/b.yaml"), down()),
        ];
        let (text, failed) = summary(&results, Duration::ZERO, Backend::Kind);
        assert_eq!(failed, 2);
        assert_eq!(text.matches("does not exist").count(), 1, "{text}");
        assert!(
            text.contains("\n[cluster-unreachable] 2 scenarios: kind cluster \"ab\" does not exist\n  (each of: scenarios/a.yaml, scenarios/b.yaml)\n"),
            "{text}"
        );
    }
}
