//! The external programs the kind backend drives: the `kind` CLI, `docker`
//! and the project's own scripts under `kind/`. Every call is named in its
//! error with the tail of what the program printed, so a failure says which
//! command to rerun by hand.

use std::path::Path;
use std::process::Stdio;

use anyhow::{bail, Context, Result};
use tokio::process::Command;

use crate::process_group::GroupGuard;

/// How much of a failed command's stderr goes into the error.
const TAIL_LINES: usize = 25;

/// Runs `program args..`, returning its stdout. A non-zero exit is an error
/// that names the command line and quotes the end of its stderr.
///
/// The program runs in a process group of its own, and a call dropped
/// before the program ends (a cancelled run: Ctrl-C, SIGTERM) kills that
/// whole group: a script's children (`kind/build-images.sh`'s cargo and
/// rustc, `kind create`'s docker) go with it instead of running on with
/// nobody waiting. A program that ends normally leaves alone what it meant
/// to leave running (the dockerd `kind/docker.sh ensure` starts).
pub async fn output(program: &Path, args: &[&str], cwd: Option<&Path>) -> Result<String> {
    let shown = command_line(program, args);
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start `{shown}`"))?;
    let mut group = GroupGuard::new(child.id());
    let out = child
        .wait_with_output()
        .await
        .with_context(|| format!("waiting for `{shown}`"))?;
    group.disarm();
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

/// Writes one line to the process's stderr, past libtest's output capture
/// (which takes `eprintln!` only): a user of `cargo test --features e2e`
/// must see that a 20-minute build is starting, and why.
pub fn notice(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
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

    /// A cancelled call takes the program's children with it: here a shell
    /// whose background `sleep` would otherwise outlive it (as cargo
    /// outlived `kind/build-images.sh` before).
    #[tokio::test]
    async fn a_cancelled_call_kills_the_programs_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("child.pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
        let args = ["-c", script.as_str()];
        let call = output(Path::new("/bin/sh"), &args, None);
        // Give the shell time to start its child, then cancel the call.
        let _ = tokio::time::timeout(std::time::Duration::from_millis(500), call).await;
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        // SAFETY: signal 0 only asks whether the process exists.
        while unsafe { libc::kill(pid, 0) } == 0 {
            // A killed child is a zombie until its parent (gone too) is
            // reaped by init; /proc shows which.
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if state.contains(") Z") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the program's child {pid} is still running"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// A program that ends normally keeps what it started in the background.
    #[tokio::test]
    async fn a_finished_call_leaves_what_the_program_started() {
        let out = output(
            Path::new("/bin/sh"),
            &["-c", "sleep 5 </dev/null >/dev/null 2>&1 & echo $!"],
            None,
        )
        .await
        .unwrap();
        let pid: i32 = out.trim().parse().unwrap();
        // SAFETY: signal 0 only asks whether the process exists.
        assert_eq!(
            unsafe { libc::kill(pid, 0) },
            0,
            "background child was killed"
        );
        // SAFETY: our own test's child, stopped by its pid.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
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
