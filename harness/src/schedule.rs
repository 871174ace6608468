//! The order a suite starts its scenarios in.
//!
//! Scenarios run several at a time, so the suite ends when its last
//! scenario does. Started in file order, a long one (a fault scenario's real
//! waits, an image pull's back-off: 35-45 s on kind, where most take 5-15 s)
//! that happens to sort late finishes alone at the end. Longest first fixes
//! that (the classic list-scheduling rule), using how long each scenario
//! took in earlier runs on this backend (a running mean), kept in
//! `$HARNESS_STATE/durations-<backend>.tsv`. A scenario never timed counts
//! as long, by its number of steps, so new ones start early too. A serial
//! scenario goes first of all: it needs the node to itself, which it has
//! before anything else has started.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::cluster::Backend;

/// How long scenarios took on one backend, by name.
#[derive(Debug, Default, Clone)]
pub struct Durations {
    file: Option<PathBuf>,
    millis: BTreeMap<String, u64>,
}

/// What ordering needs to know of a scenario.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub serial: bool,
    /// Its `steps`; a rough stand-in for a duration never measured.
    pub steps: usize,
}

impl Durations {
    /// The durations recorded for `backend`; none for the sim, whose
    /// scenarios take milliseconds (and `cargo test` writes no state).
    pub fn load(backend: Backend) -> Durations {
        if backend == Backend::Sim {
            return Durations::default();
        }
        let root = crate::options::state_dir();
        let file = root.join(format!("durations-{}.tsv", backend.as_str()));
        // A missing or damaged file only loses the ordering hint.
        let millis = std::fs::read_to_string(&file)
            .map(|text| parse(&text))
            .unwrap_or_default();
        Durations {
            file: Some(file),
            millis,
        }
    }

    pub fn get(&self, name: &str) -> Option<Duration> {
        self.millis.get(name).map(|ms| Duration::from_millis(*ms))
    }

    /// Folds a new measurement in: the mean of it and what was known, so
    /// one run in a slow window of the VM does not reorder the next.
    pub fn record(&mut self, name: &str, took: Duration) {
        let ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        let folded = match self.millis.get(name) {
            Some(old) => old / 2 + ms / 2,
            None => ms,
        };
        self.millis.insert(name.to_string(), folded);
    }

    /// Writes the file back (nothing for the sim). Best effort: a failure
    /// only costs the next run its ordering hint, and is said once.
    pub fn save(&self) {
        let Some(file) = &self.file else {
            return;
        };
        let text: String = self
            .millis
            .iter()
            .map(|(name, ms)| format!("{name}\t{ms}\n"))
            .collect();
        let written = file
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(file, text));
        if let Err(e) = written {
            tracing::warn!(file = %file.display(), error = %e, "cannot record scenario durations");
        }
    }
}

fn parse(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (name, ms) = line.split_once('\t')?;
            Some((name.to_string(), ms.trim().parse().ok()?))
        })
        .collect()
}

/// The indices of `jobs` in the order to start them: serial ones first,
/// then the longest known, with the never-timed counted longer than any
/// timed one (more steps first among them); ties keep file order.
pub fn order(jobs: &[Job], known: &Durations) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..jobs.len()).collect();
    idx.sort_by_key(|&i| {
        let j = &jobs[i];
        let (timed, weight) = match known.get(&j.name) {
            Some(d) => (true, d.as_millis()),
            None => (false, j.steps as u128),
        };
        (!j.serial, timed, std::cmp::Reverse(weight))
    });
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, serial: bool, steps: usize) -> Job {
        Job {
            name: name.into(),
            serial,
            steps,
        }
    }

    fn known(pairs: &[(&str, u64)]) -> Durations {
        let mut d = Durations::default();
        for (name, ms) in pairs {
            d.record(name, Duration::from_millis(*ms));
        }
        d
    }

    #[test]
    fn serial_first_then_untimed_by_steps_then_longest() {
        let jobs = [
            job("a-quick", false, 0),
            job("b-fault", false, 4),
            job("c-new", false, 2),
            job("d-new", false, 0),
            job("e-pull", false, 0),
            job("z-serial", true, 0),
        ];
        let d = known(&[("a-quick", 5_000), ("b-fault", 44_000), ("e-pull", 35_000)]);
        let names: Vec<&str> = order(&jobs, &d)
            .into_iter()
            .map(|i| jobs[i].name.as_str())
            .collect();
        assert_eq!(
            names,
            ["z-serial", "c-new", "d-new", "b-fault", "e-pull", "a-quick"]
        );
    }

    #[test]
    fn nothing_known_keeps_file_order_among_equals() {
        let jobs = [job("a", false, 0), job("b", false, 0), job("c", false, 1)];
        assert_eq!(order(&jobs, &Durations::default()), [2, 0, 1]);
    }

    #[test]
    fn the_file_round_trips_and_bad_lines_are_skipped() {
        let parsed = parse("a\t12\nnot a line\nb\tx\nc\t7\n");
        assert_eq!(
            parsed.into_iter().collect::<Vec<_>>(),
            [("a".to_string(), 12), ("c".to_string(), 7)]
        );
        let dir = tempfile::tempdir().unwrap();
        let mut d = Durations {
            file: Some(dir.path().join("state/durations-kind.tsv")),
            millis: BTreeMap::new(),
        };
        d.record("x", Duration::from_millis(1000));
        d.record("x", Duration::from_millis(2000));
        d.save();
        let text = std::fs::read_to_string(dir.path().join("state/durations-kind.tsv")).unwrap();
        assert_eq!(parse(&text).get("x"), Some(&1500));
    }
}
