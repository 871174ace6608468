//! The `probe` binary as a process: it serves, clashes and exits the way the
//! kubelet model in `harness/src/kubelet/` assumes it does.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use injector_probe::bind_error;

fn probe(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_probe"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn probe")
}

/// A port nothing listens on right now (the kernel picks it; a small race
/// with other processes is acceptable in a test).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("ephemeral port")
        .port()
}

/// Blocks until the probe logs its start line, which it prints only after
/// every port is bound.
fn wait_listening(child: &mut Child) -> String {
    let stdout = child.stdout.take().expect("stdout piped");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read start line");
    line
}

fn wait_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("probe did not exit in time");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut err = String::new();
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    err
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -TERM failed");
}

#[test]
fn serves_200_and_exits_0_on_sigterm() {
    let port = free_port();
    let mut child = probe(&["--name", "app", "--listen", &port.to_string()]);
    let line = wait_listening(&mut child);
    assert_eq!(line.trim_end(), format!("probe app: listening on {port}"));

    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: probe\r\n\r\n")
        .expect("send request");
    let mut response = String::new();
    conn.read_to_string(&mut response).expect("read response");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");

    // A tcpSocket probe: connect and hang up without a request.
    drop(TcpStream::connect(("127.0.0.1", port)).expect("connect again"));

    sigterm(&child);
    let status = wait_exit(&mut child);
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn second_probe_on_a_taken_port_exits_1_with_bind_error() {
    let port = free_port();
    let mut first = probe(&["--listen", &port.to_string()]);
    wait_listening(&mut first);

    let mut second = probe(&["--listen", &format!("{},{port}", free_port())]);
    let status = wait_exit(&mut second);
    let err = stderr_of(&mut second);
    assert_eq!(status.code(), Some(1), "{status:?} {err}");
    assert!(err.contains(&bind_error(port)), "{err}");

    sigterm(&first);
    assert_eq!(wait_exit(&mut first).code(), Some(0));
}

#[test]
fn exits_with_the_requested_code_after_the_delay() {
    let mut child = probe(&["--exit-after-ms", "50", "--exit-code", "3"]);
    assert_eq!(wait_exit(&mut child).code(), Some(3));
}

#[test]
fn bad_flags_exit_2() {
    let mut child = probe(&["--listen", "nope"]);
    let status = wait_exit(&mut child);
    let err = stderr_of(&mut child);
    assert_eq!(status.code(), Some(2));
    assert!(
        err.starts_with("probe: ") && err.contains("'nope'"),
        "{err}"
    );
}
