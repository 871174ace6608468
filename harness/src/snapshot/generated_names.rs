//! Names the apiserver generated from a `generateName`: telling them from
//! chosen names, and replacing their random suffix with `<id>`.

use regex::Regex;
use serde_json::Value;

/// The characters the apiserver draws generated name suffixes from.
const SUFFIX_ALPHABET: &str = "bcdfghjklmnpqrstvwxz2456789";

/// The generateName prefix of an object whose name the apiserver generated
/// from it; its suffix (`-x7k2p`) becomes `<id>`, numbered when several
/// pods share a prefix, in content order so the numbering is stable.
pub(super) fn name_pattern(object: &Value) -> Option<String> {
    let prefix = object["metadata"]["generateName"].as_str()?;
    let name = object["metadata"]["name"].as_str()?;
    // Only a generated suffix: five characters of the apiserver's alphabet.
    // StatefulSet pods carry a generateName too, but their `-0`, `-1`
    // ordinals are chosen, stable names. A prefix over 58 characters is cut.
    let mut cut = prefix.len().min(58);
    while !prefix.is_char_boundary(cut) {
        cut -= 1;
    }
    let kept = &prefix[..cut];
    let suffix = name.strip_prefix(kept)?;
    let generated = suffix.len() == 5 && suffix.chars().all(|c| SUFFIX_ALPHABET.contains(c));
    generated.then(|| kept.to_string())
}

/// A refusal of an object created from a generateName is reported under
/// the prefix, and its message names the generated name (`Pod "bad-x7k2p"
/// is invalid`): that name becomes `bad-<id>`.
pub(super) fn redact_generated(message: &str, prefix: &str) -> String {
    let pattern = format!(
        "{}[{SUFFIX_ALPHABET}]{{5}}([^a-z0-9]|$)",
        regex::escape(prefix)
    );
    match Regex::new(&pattern) {
        Ok(re) => re
            .replace_all(message, |c: &regex::Captures<'_>| {
                format!("{prefix}<id>{}", &c[1])
            })
            .into_owned(),
        Err(_) => message.to_string(),
    }
}
