//! A JUnit XML report of a run, for CI systems that render test results.

use std::path::PathBuf;

use crate::run::ScenarioRun;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One testsuite, one testcase per scenario.
pub fn render(results: &[(PathBuf, anyhow::Result<ScenarioRun>)]) -> String {
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
            Err(e) => out.push_str(&format!(
                "  <testcase name=\"{}\" classname=\"scenarios\">\n    <error message=\"{}\"/>\n  </testcase>\n",
                escape(name),
                escape(&format!("{e:#}"))
            )),
        }
    }
    out.push_str("</testsuite>\n");
    out
}
