//! The text a run prints: one table row per scenario, a totals line, and
//! the full report of every scenario that failed or could not run.

use std::fmt::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::cluster::Backend;
use crate::run::ScenarioRun;
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
    results: &[(PathBuf, anyhow::Result<ScenarioRun>)],
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
            Err(_) => {
                failed += 1;
                let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
                let _ = writeln!(
                    out,
                    "{name:<28} {:>4} {:<22} {:>8} {:<6} {:>7}",
                    "-", "-", "-", "ERROR", "-"
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
                let _ = writeln!(out, "\n{}: {e:#}", path.display());
            }
            _ => {}
        }
    }
    (out, failed)
}
