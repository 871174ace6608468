//! The `$(NAME)` placeholders of a subject's command line and environment,
//! which the harness fills with the paths and port it gives the subject.

/// `text` with `$(NAME)` replaced by its value for each pair; any other
/// `$(...)` stays as written.
pub(super) fn substitute(text: &str, values: &[(&str, String)]) -> String {
    let mut out = text.to_string();
    for (name, value) in values {
        out = out.replace(&format!("$({name})"), value);
    }
    out
}
