//! A JUnit XML report of a run, for CI systems that render test results.

use std::path::PathBuf;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One testsuite, one testcase per scenario.
pub fn render(results: &[(PathBuf, crate::outcome::Outcome)]) -> String {
    let failures = results
        .iter()
        .filter(|(_, r)| !r.as_ref().is_ok_and(|r| r.passed()))
        .count();
    let total: f64 = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .map(|r| r.elapsed.as_secs_f64())
        .sum();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"injector-harness\" tests=\"{}\" failures=\"{failures}\" time=\"{total:.3}\">\n",
        results.len()
    );
    for (path, r) in results {
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
        match r {
            Ok(run) => {
                out.push_str(&format!("  <testcase name=\"{}\" classname=\"scenarios\" time=\"{:.3}\"", escape(name), run.elapsed.as_secs_f64()));
                if run.passed() {
                    out.push_str("/>\n");
                } else {
                    out.push_str(&format!(
                        ">\n    <failure message=\"{}\">{}</failure>\n  </testcase>\n",
                        escape(&run.failures.join("; ")),
                        escape(&run.report())
                    ));
                }
            }
            // `type` says why it could not be judged (crate::error::ErrorKind).
            Err(e) => out.push_str(&format!(
                "  <testcase name=\"{}\" classname=\"scenarios\">\n    <error type=\"{}\" message=\"{}\"/>\n  </testcase>\n",
                escape(name),
                e.kind,
                escape(&e.to_string())
            )),
        }
    }
    out.push_str("</testsuite>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorKind, RunError, Timeout};

    #[test]
    fn an_error_says_its_kind_and_escapes_its_message() {
        let timeout = Timeout::new(
            "the injector in injector-a-x did not roll out",
            std::time::Duration::from_secs(120),
        );
        let results = vec![(
            PathBuf::from("scenarios/a.yaml"),
            Err(RunError::classify(
                anyhow::Error::new(timeout).context("deploying <a>"),
            )),
        )];
        let xml = render(&results);
        assert_eq!(
            results[0].1.as_ref().err().map(|e| e.kind),
            Some(ErrorKind::Timeout)
        );
        assert!(
            xml.contains(
                "<error type=\"timeout\" message=\"deploying &lt;a&gt;: the injector in injector-a-x did not roll out within 120 s\"/>"
            ),
            "{xml}"
        );
        assert!(xml.contains("tests=\"1\" failures=\"1\""), "{xml}");
    }
}
