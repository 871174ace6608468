//! `probe`: listens where told, answers `200 OK`, exits when told.
//!
//! Scenario containers run this in the simulator's model and on a real
//! cluster alike (see `src/lib.rs` for the flags). It runs as PID 1 in a
//! FROM-scratch image, which shapes two choices here: it depends on std and
//! libc only (the flag parser is this crate's library, not the harness's),
//! and it installs its own SIGTERM/SIGINT handlers, because
//! the kernel does not apply default signal dispositions to PID 1 and the pod
//! would otherwise wait out its whole grace period.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::exit;
use std::thread;
use std::time::Duration;

use injector_probe::{bind_error, ProbeArgs};

/// Where the kubelet looks for a container's last words (the default
/// terminationMessagePath).
const TERMINATION_LOG: &str = "/dev/termination-log";

/// The answer to every connection: enough HTTP for an httpGet probe, and a
/// tcpSocket probe only needs the accept.
const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = match ProbeArgs::parse(&args) {
        Ok(args) => args,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "probe: {e}");
            exit(2);
        }
    };
    install_signal_handlers();
    let name = args.name.as_deref().unwrap_or("unnamed");
    if let Some((listen, target)) = args.relay {
        relay(name, listen, target, Duration::from_millis(args.delay_ms));
    }

    // Bind everything before serving anything, so a clash fails the whole
    // process the way a proxy with one bad listener does.
    let mut listeners = Vec::with_capacity(args.listen.len());
    for &port in &args.listen {
        match TcpListener::bind(("0.0.0.0", port)) {
            Ok(l) => listeners.push(l),
            Err(e) => fail(&match e.kind() {
                ErrorKind::AddrInUse => bind_error(port),
                _ => format!("cannot bind '0.0.0.0:{port}': {e}"),
            }),
        }
    }
    say(&injector_probe::listening_line(name, &args.listen));

    for listener in listeners {
        thread::spawn(move || serve(listener));
    }
    match args.exit_after_ms {
        Some(ms) => {
            thread::sleep(Duration::from_millis(ms));
            say(&format!(
                "probe {name}: exiting with code {}",
                args.exit_code
            ));
            // Ends the listener threads with the process.
            exit(args.exit_code);
        }
        None => loop {
            thread::park();
        },
    }
}

/// Logs a line to stdout. Unlike `println!` it does not panic when nobody
/// reads stdout any more: a closed log pipe must not change the exit code.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Reports a start-up failure where `kubectl describe` and the logs show it,
/// then exits 1. The termination log is only written if it already exists
/// (the kubelet creates it), so running the binary outside a container never
/// leaves a file in /dev.
fn fail(message: &str) -> ! {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(TERMINATION_LOG)
    {
        let _ = f.write_all(message.as_bytes());
    }
    let _ = writeln!(std::io::stderr(), "{message}");
    exit(1);
}

/// Passes each connection to `listen` on to 127.0.0.1:`target`, both ways,
/// until either side closes. Never returns. `delay` is latency on the way
/// in: each chunk the client sends reaches the target that long after it
/// arrived, in order. TLS passes through unread, so this holds every
/// request, whether it opens a connection or comes on a kept-alive one.
fn relay(name: &str, listen: u16, target: u16, delay: Duration) -> ! {
    use std::sync::mpsc;
    use std::time::Instant;
    let listener = match TcpListener::bind(("0.0.0.0", listen)) {
        Ok(l) => l,
        Err(e) => fail(&format!("cannot bind '0.0.0.0:{listen}': {e}")),
    };
    say(&injector_probe::relaying_line(
        name,
        listen,
        target,
        delay.as_millis(),
    ));
    for inbound in listener.incoming().flatten() {
        thread::spawn(move || {
            let Ok(outbound) = TcpStream::connect(("127.0.0.1", target)) else {
                // Nothing listens behind us: the client sees its connection
                // closed, as it would see a refusal.
                return;
            };
            let (Ok(mut client_read), Ok(mut target_write)) =
                (inbound.try_clone(), outbound.try_clone())
            else {
                return;
            };
            let (mut target_read, mut client_write) = (outbound, inbound);
            let (chunks, due) = mpsc::channel::<(Instant, Vec<u8>)>();
            let writer = thread::spawn(move || {
                for (at, chunk) in due {
                    thread::sleep(at.saturating_duration_since(Instant::now()));
                    if target_write.write_all(&chunk).is_err() {
                        break;
                    }
                }
                let _ = target_write.shutdown(std::net::Shutdown::Write);
            });
            let reader = thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                loop {
                    match client_read.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if chunks
                                .send((Instant::now() + delay, buf[..n].to_vec()))
                                .is_err()
                            {
                                break;
                            }
                        }
                    }
                }
            });
            let _ = std::io::copy(&mut target_read, &mut client_write);
            let _ = client_write.shutdown(std::net::Shutdown::Write);
            let _ = reader.join();
            let _ = writer.join();
        });
    }
    exit(1)
}

fn serve(listener: TcpListener) {
    for stream in listener.incoming().flatten() {
        // One thread per connection, so a client that never sends a request
        // cannot hold up the readiness probes behind it.
        thread::spawn(move || answer(stream));
    }
}

/// Reads (most of) the request before answering: closing a socket with
/// unread input makes the kernel send a reset, which can reach the client
/// before our response does.
fn answer(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while request.len() < 16 * 1024 && !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let _ = stream.write_all(RESPONSE);
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

extern "C" fn on_signal(_: libc::c_int) {
    // Only async-signal-safe calls belong here; _exit is one, and skipping
    // destructors is fine for a process that holds nothing but sockets.
    unsafe { libc::_exit(0) }
}

/// Exit 0 on SIGTERM and SIGINT: the kubelet's stop (and Ctrl-C in a
/// terminal) is a clean shutdown, reported as `Completed`.
fn install_signal_handlers() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only calls the async-signal-safe `_exit`.
    unsafe {
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
    }
}
