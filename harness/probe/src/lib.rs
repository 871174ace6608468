//! `probe`: the tiny program scenarios run as app and sidecar containers.
//!
//! A scenario has to behave the same in the simulator and on a real kind
//! cluster, so its containers run one program whose behaviour both sides
//! understand: it listens on the ports it is told to (answering every
//! connection with `200 OK`, so httpGet and tcpSocket probes pass), fails to
//! start when a port is taken, and optionally exits after a while. The
//! simulator's kubelet model (`injector_harness::kubelet`) reads the same
//! flags with [`ProbeArgs::parse`] and reports the same failure text with
//! [`bind_error`].
//!
//! This crate is std-only (the binary adds libc for its signal handlers) on
//! purpose: the static build of the image compiles nothing else, and the
//! binary stays small enough for a FROM-scratch image.

/// The image scenarios use for probe containers.
pub const PROBE_IMAGE: &str = "injector-harness/probe:v1";

/// The repository part of [`PROBE_IMAGE`].
const PROBE_REPOSITORY: &str = "injector-harness/probe";

/// Registry prefixes under which the same local image may be referenced:
/// containerd (kind) spells a bare name `docker.io/...`, podman `localhost/...`.
const REGISTRY_PREFIXES: [&str; 2] = ["docker.io/", "localhost/"];

/// Whether `image` names the probe image, whatever its tag or digest and with
/// or without the registry prefix a runtime may have added.
pub fn is_probe_image(image: &str) -> bool {
    let image = REGISTRY_PREFIXES
        .iter()
        .find_map(|p| image.strip_prefix(p))
        .unwrap_or(image);
    let Some(rest) = image.strip_prefix(PROBE_REPOSITORY) else {
        return false;
    };
    // What follows the repository: nothing, `:tag`, `@digest` or `:tag@digest`.
    let (tag, digest) = match rest.split_once('@') {
        Some((tag, digest)) => (tag, Some(digest)),
        None => (rest, None),
    };
    let tag_ok = tag.is_empty() || tag.strip_prefix(':').is_some_and(|t| !t.is_empty());
    tag_ok && digest.is_none_or(|d| !d.is_empty())
}

/// The failure a listener reports when its port is taken, in envoy's words
/// (the seed documents quote them). One function, so that the binary and the
/// simulator cannot drift apart.
pub fn bind_error(port: u16) -> String {
    format!("cannot bind '0.0.0.0:{port}': Address already in use")
}

/// The line a probe logs once every listener is bound: from then on it
/// serves until told otherwise. The binary writes it and the harness reads
/// it back (see [`says_serving`]), so the two are built here together.
pub fn listening_line(name: &str, ports: &[u16]) -> String {
    let ports = if ports.is_empty() {
        "nothing".to_string()
    } else {
        ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    format!("probe {name}: listening on {ports}")
}

/// The line a relaying probe logs once its listener is bound.
pub fn relaying_line(name: &str, listen: u16, target: u16, delay_ms: u128) -> String {
    format!("probe {name}: relaying {listen} to 127.0.0.1:{target} with {delay_ms} ms of latency")
}

/// Whether a probe's log says it has bound its ports and serves: a line
/// from [`listening_line`] or [`relaying_line`]. A probe whose bind fails
/// exits before either, so a running probe without one may still be about
/// to fail, whatever its container status says.
pub fn says_serving(log: &str) -> bool {
    log.lines().any(|line| {
        line.strip_prefix("probe ")
            .and_then(|rest| rest.split_once(": "))
            .is_some_and(|(_, what)| {
                what.starts_with("listening on ") || what.starts_with("relaying ")
            })
    })
}

/// What one probe process was asked to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeArgs {
    /// Shown in logs only.
    pub name: Option<String>,
    /// TCP ports to listen on, in the order given, without duplicates.
    pub listen: Vec<u16>,
    /// Exit on its own after this long; `None` runs until signalled.
    pub exit_after_ms: Option<u64>,
    /// The exit status used with `exit_after_ms` (0..=255, as a process can
    /// only report that much).
    pub exit_code: i32,
    /// `--relay LISTEN:TARGET`: pass every connection to LISTEN on to
    /// 127.0.0.1:TARGET, bytes untouched (TLS goes through). The harness
    /// puts one in front of a webhook image so `slowWebhook` can slow any
    /// webhook in a cluster.
    pub relay: Option<(u16, u16)>,
    /// With `relay`: hold each new connection this long before passing it on.
    pub delay_ms: u64,
}

impl ProbeArgs {
    /// Parses the arguments after the program name. Accepts `--flag value`
    /// and `--flag=value`; `--listen` repeats and takes comma lists.
    pub fn parse(args: &[String]) -> Result<ProbeArgs, String> {
        let mut parsed = ProbeArgs::default();
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
                _ => (arg.as_str(), None),
            };
            if !matches!(
                flag,
                "--listen"
                    | "--exit-after-ms"
                    | "--exit-code"
                    | "--name"
                    | "--relay"
                    | "--delay-ms"
            ) {
                return Err(if flag.starts_with('-') {
                    format!("unknown flag '{flag}'")
                } else {
                    format!("unexpected argument '{arg}'")
                });
            }
            let value = match inline {
                Some(v) => v,
                None => rest
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("flag {flag} needs a value"))?,
            };
            match flag {
                "--listen" => {
                    for part in value.split(',') {
                        let port = parse_port(part.trim())
                            .ok_or_else(|| format!("invalid port '{value}' for --listen"))?;
                        if !parsed.listen.contains(&port) {
                            parsed.listen.push(port);
                        }
                    }
                }
                "--exit-after-ms" => {
                    let ms = value
                        .trim()
                        .parse()
                        .map_err(|_| format!("invalid value '{value}' for --exit-after-ms"))?;
                    parsed.exit_after_ms = Some(ms);
                }
                "--exit-code" => {
                    parsed.exit_code = value
                        .trim()
                        .parse()
                        .ok()
                        .filter(|c| (0..=255).contains(c))
                        .ok_or_else(|| {
                            format!("invalid value '{value}' for --exit-code (want 0..=255)")
                        })?;
                }
                "--relay" => {
                    let pair = value
                        .split_once(':')
                        .and_then(|(l, t)| Some((parse_port(l.trim())?, parse_port(t.trim())?)));
                    parsed.relay = Some(pair.ok_or_else(|| {
                        format!("invalid value '{value}' for --relay (want LISTEN:TARGET)")
                    })?);
                }
                "--delay-ms" => {
                    parsed.delay_ms = value
                        .trim()
                        .parse()
                        .map_err(|_| format!("invalid value '{value}' for --delay-ms"))?;
                }
                _ => parsed.name = Some(value),
            }
        }
        Ok(parsed)
    }
}

/// A listenable port: 1..=65535 (0 would ask the kernel for a random one).
fn parse_port(text: &str) -> Option<u16> {
    text.parse::<u16>().ok().filter(|p| *p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_serving_lines_are_recognised_and_a_bind_failure_is_not() {
        assert!(says_serving(&listening_line("envoy", &[10000, 15000])));
        assert!(says_serving(&listening_line("idle", &[])));
        assert!(says_serving(&format!(
            "some earlier line\n{}\n",
            relaying_line("slow", 9443, 8443, 250)
        )));
        assert!(!says_serving(&bind_error(10000)));
        assert!(!says_serving(""));
        assert!(!says_serving("probe envoy: exiting with code 1"));
        // The app's own output that merely mentions listening does not count.
        assert!(!says_serving("server listening on 8080"));
    }

    fn parse(args: &[&str]) -> Result<ProbeArgs, String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        ProbeArgs::parse(&args)
    }

    #[test]
    fn a_relay_takes_two_ports_and_a_delay() {
        let a = parse(&["--name", "relay", "--relay", "9443:8443", "--delay-ms=3000"]).unwrap();
        assert_eq!((a.relay, a.delay_ms), (Some((9443, 8443)), 3000));
        assert_eq!(parse(&["--relay", "1:2"]).unwrap().delay_ms, 0);
        for bad in ["9443", "9443:", "0:1", "a:b"] {
            let e = parse(&["--relay", bad]).unwrap_err();
            assert!(e.contains("--relay"), "{bad}: {e}");
        }
        assert!(parse(&["--delay-ms", "soon"])
            .unwrap_err()
            .contains("--delay-ms"));
    }

    #[test]
    fn probe_image_any_tag_and_prefix() {
        assert!(is_probe_image(PROBE_IMAGE));
        assert!(is_probe_image("injector-harness/probe"));
        assert!(is_probe_image("injector-harness/probe:dev"));
        assert!(is_probe_image("docker.io/injector-harness/probe:v1"));
        assert!(is_probe_image("localhost/injector-harness/probe:v2"));
        assert!(is_probe_image("injector-harness/probe@sha256:abc"));
        assert!(is_probe_image("injector-harness/probe:v1@sha256:abc"));
    }

    #[test]
    fn other_images_are_not_probes() {
        assert!(!is_probe_image("envoyproxy/envoy:v1.32-latest"));
        assert!(!is_probe_image("injector-harness/prober:v1"));
        assert!(!is_probe_image("injector-harness/probe:"));
        assert!(!is_probe_image("injector-harness/probe@"));
        assert!(!is_probe_image("quay.io/injector-harness/probe:v1"));
        assert!(!is_probe_image("localhost:5000/injector-harness/probe:v1"));
        assert!(!is_probe_image(""));
    }

    #[test]
    fn bind_error_is_envoys_wording() {
        assert_eq!(
            bind_error(10000),
            "cannot bind '0.0.0.0:10000': Address already in use"
        );
    }

    #[test]
    fn defaults() {
        assert_eq!(parse(&[]).unwrap(), ProbeArgs::default());
    }

    #[test]
    fn all_flags() {
        let a = parse(&[
            "--name",
            "app",
            "--listen",
            "80",
            "--listen=8080,9090",
            "--exit-after-ms",
            "50",
            "--exit-code=3",
        ])
        .unwrap();
        assert_eq!(
            a,
            ProbeArgs {
                name: Some("app".into()),
                listen: vec![80, 8080, 9090],
                exit_after_ms: Some(50),
                exit_code: 3,
                ..ProbeArgs::default()
            }
        );
    }

    #[test]
    fn listen_deduplicates_and_trims() {
        let a = parse(&["--listen", "80, 80", "--listen", "80"]).unwrap();
        assert_eq!(a.listen, vec![80]);
    }

    #[test]
    fn later_values_win() {
        let a = parse(&[
            "--name",
            "a",
            "--name",
            "b",
            "--exit-code",
            "1",
            "--exit-code",
            "0",
        ])
        .unwrap();
        assert_eq!(a.name.as_deref(), Some("b"));
        assert_eq!(a.exit_code, 0);
    }

    #[test]
    fn errors_name_flag_and_value() {
        let e = parse(&["--listen", "http"]).unwrap_err();
        assert!(e.contains("--listen") && e.contains("'http'"), "{e}");
        let e = parse(&["--listen", "80,"]).unwrap_err();
        assert!(e.contains("--listen") && e.contains("'80,'"), "{e}");
        let e = parse(&["--listen", "0"]).unwrap_err();
        assert!(e.contains("'0'"), "{e}");
        let e = parse(&["--listen", "65536"]).unwrap_err();
        assert!(e.contains("'65536'"), "{e}");
        let e = parse(&["--exit-after-ms", "-1"]).unwrap_err();
        assert!(e.contains("--exit-after-ms") && e.contains("'-1'"), "{e}");
        let e = parse(&["--exit-code", "256"]).unwrap_err();
        assert!(e.contains("--exit-code") && e.contains("'256'"), "{e}");
        let e = parse(&["--exit-code", "x"]).unwrap_err();
        assert!(e.contains("--exit-code"), "{e}");
    }

    #[test]
    fn missing_values_and_strangers() {
        assert_eq!(
            parse(&["--listen"]).unwrap_err(),
            "flag --listen needs a value"
        );
        assert_eq!(parse(&["--name"]).unwrap_err(), "flag --name needs a value");
        assert_eq!(
            parse(&["--port", "80"]).unwrap_err(),
            "unknown flag '--port'"
        );
        assert_eq!(parse(&["-l", "80"]).unwrap_err(), "unknown flag '-l'");
        assert_eq!(parse(&["80"]).unwrap_err(), "unexpected argument '80'");
        assert_eq!(parse(&["--port=80"]).unwrap_err(), "unknown flag '--port'");
    }

    #[test]
    fn values_may_look_like_flags() {
        // `--name --listen` names the probe "--listen", as getopt would.
        let a = parse(&["--name", "--listen"]).unwrap();
        assert_eq!(a.name.as_deref(), Some("--listen"));
        assert!(a.listen.is_empty());
    }
}
