//! Finds the windows in which this machine runs slow: every 2 ms it times a
//! fixed unit of register-only work (no memory traffic, no syscalls inside)
//! and reports the stretches where the unit took over 3 times its fastest.
//!
//!   cargo run --release -p sidecar-injector --example cpu_stalls -- SECONDS
//!
//! A latency tail can come from the server or from the machine under it.
//! On a VM whose host periodically gives it a fraction of a core, every
//! process slows at once and nothing inside the guest shows it (no steal
//! time, no scheduling delay), so the load scripts run this alongside the
//! load and report the latency percentiles inside and outside these windows.
//! It keeps about 3 % of one core busy.
//!
//! Output, one line per window on stdout: `start end slowdown`, the times in
//! seconds since the Unix epoch and the slowdown the worst unit in it showed;
//! a summary on stderr.

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long one unit of work should take on an unloaded core.
const UNIT: Duration = Duration::from_micros(50);
const PERIOD: Duration = Duration::from_millis(2);
/// A unit this many times slower than the fastest marks a slow window.
const SLOW: f64 = 3.0;
/// Slow units closer than this belong to one window.
const JOIN: Duration = Duration::from_millis(20);
/// A window needs this many slow units: one alone is more likely this
/// process being preempted by the load than the machine slowing down (the
/// scripts also run it at real-time priority where they can).
const MIN_UNITS: usize = 2;

fn work(iterations: u64) -> u64 {
    let mut x = black_box(1u64);
    for _ in 0..iterations {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
    }
    black_box(x)
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Iterations that take about [`UNIT`], from the fastest of the tries made
/// over 300 ms: longer than a slow window, so at least some run at speed.
fn calibrate() -> u64 {
    let probe = 20_000;
    let started = Instant::now();
    let mut fastest = Duration::MAX;
    while started.elapsed() < Duration::from_millis(300) {
        let t = Instant::now();
        work(probe);
        fastest = fastest.min(t.elapsed());
        std::thread::sleep(PERIOD);
    }
    let per_iteration = fastest.as_secs_f64() / probe as f64;
    ((UNIT.as_secs_f64() / per_iteration.max(1e-12)) as u64).max(1)
}

fn main() {
    let seconds: f64 = match std::env::args().nth(1).map(|s| s.parse()) {
        None => 10.0,
        Some(Ok(s)) if s > 0.0 => s,
        Some(_) => {
            eprintln!("cpu_stalls: SECONDS must be a positive number");
            std::process::exit(2);
        }
    };
    let iterations = calibrate();
    let start = Instant::now();
    let mut samples = Vec::new();
    while start.elapsed().as_secs_f64() < seconds {
        let at = now_unix();
        let t = Instant::now();
        work(iterations);
        samples.push((at, t.elapsed().as_secs_f64()));
        std::thread::sleep(PERIOD);
    }
    let fastest = samples.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);

    // (start, end, worst slowdown, slow units)
    let mut windows: Vec<(f64, f64, f64, usize)> = Vec::new();
    for &(at, took) in &samples {
        let slowdown = took / fastest;
        if slowdown < SLOW {
            continue;
        }
        let end = at + took;
        match windows.last_mut() {
            Some(w) if at - w.1 < JOIN.as_secs_f64() => {
                w.1 = end;
                w.2 = w.2.max(slowdown);
                w.3 += 1;
            }
            _ => windows.push((at, end, slowdown, 1)),
        }
    }
    windows.retain(|w| w.3 >= MIN_UNITS);
    for (from, to, slowdown, _) in &windows {
        println!("{from:.6} {to:.6} {slowdown:.1}");
    }
    let slow_time: f64 = windows.iter().map(|w| w.1 - w.0).sum();
    let worst = windows.iter().map(|w| w.2).fold(0.0, f64::max);
    eprintln!(
        "cpu_stalls: {} units of {:.0} µs over {:.1} s; {} slow windows, {:.1} % of the time, worst {:.1}x slower",
        samples.len(),
        fastest * 1e6,
        start.elapsed().as_secs_f64(),
        windows.len(),
        100.0 * slow_time / start.elapsed().as_secs_f64(),
        worst
    );
}
