//! The external programs the kind backend drives: the `kind` CLI, `docker`
//! and the project's own scripts under `kind/`. Every call is named in its
//! error with the tail of what the program printed, so a failure says which
//! command to rerun by hand.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, Context, Result};
use tokio::process::Command;

/// How much of a failed command's stderr goes into the error.
const TAIL_LINES: usize = 25;

/// Runs `program args..`, returning its stdout. A non-zero exit is an error
/// that names the command line and quotes the end of its stderr.
pub async fn output(program: &Path, args: &[&str], cwd: Option<&Path>) -> Result<String> {
    let shown = command_line(program, args);
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A cancelled scenario run (Ctrl-C) must not leave `kind create`
        // half-way with nobody waiting for it.
        .kill_on_drop(true);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let out = cmd
        .output()
        .await
        .with_context(|| format!("cannot start `{shown}`"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!(
            "`{shown}` failed ({}):\n{}",
            out.status,
            tail(&stderr, TAIL_LINES)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The last `n` lines of `text`, indented for a report.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..]
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn command_line(program: &Path, args: &[&str]) -> String {
    std::iter::once(program.display().to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `name` on PATH, if it is there.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The last non-empty line a script printed on stdout: the scripts under
/// `kind/` print progress on stderr and their result (a path, an image tag)
/// as their last stdout line.
pub fn last_line(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failing_command_is_named_with_its_stderr() {
        let err = output(
            Path::new("/bin/sh"),
            &["-c", "echo first >&2; echo second >&2; exit 3"],
            None,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("`/bin/sh -c echo first"), "{err}");
        assert!(err.contains("exit status: 3"), "{err}");
        assert!(err.contains("    second"), "{err}");
    }

    #[tokio::test]
    async fn a_missing_program_says_it_cannot_start() {
        let err = output(Path::new("/nonexistent/kind"), &["version"], None)
            .await
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("cannot start `/nonexistent/kind version`"),
            "{err:#}"
        );
    }

    #[test]
    fn the_result_of_a_script_is_its_last_stdout_line() {
        assert_eq!(
            last_line("building...\n/root/.cache/kind\n\n").as_deref(),
            Some("/root/.cache/kind")
        );
        assert_eq!(last_line(" \n"), None);
    }
}
