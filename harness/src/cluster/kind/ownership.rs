//! Who made a kind cluster, and whether a harness run that made it lives.
//!
//! One record per cluster, `$HARNESS_STATE/kind/<name>.owner`, shared with
//! `kind/kind-cluster.sh`: `by=` says which made it (`injector-harness` or
//! `kind-cluster.sh`), with the node image, the time and a harness run's
//! pid. A harness run that creates the default cluster holds an exclusive
//! lock on `<name>.owner.lock` for as long as it lives, and writes the
//! record before `kind create cluster`. The kernel drops the lock when the
//! process dies, however it dies. So a later run that finds the cluster, a
//! record by the harness and a free lock knows the cluster is the leftover
//! of a killed run (SIGKILL, a closed session, an OOM kill: no destructor
//! ran) and may delete it; a cluster the script made belongs to the user
//! who ran `up`, and one without a record to someone else: both are left
//! alone. The script reads the same lock (`flock -n`), so `up` never takes
//! over a cluster a live run will delete.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

/// `$HARNESS_STATE/kind` (default `/tmp/injector-harness/kind`), the same
/// directory `kind/kind-cluster.sh` keeps its records in.
pub fn state_dir() -> PathBuf {
    crate::options::state_dir().join("kind")
}

/// What the run that created a cluster wrote down about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    /// Which made the cluster: [`BY_HARNESS`] or [`BY_SCRIPT`].
    pub by: Option<String>,
    pub pid: Option<u32>,
    pub image: Option<String>,
    /// Seconds since the epoch.
    pub created: Option<u64>,
}

/// The record's `by=` when a harness run made the cluster.
pub const BY_HARNESS: &str = "injector-harness";
/// The record's `by=` when `kind/kind-cluster.sh up` made the cluster.
pub const BY_SCRIPT: &str = "kind-cluster.sh";

impl RunRecord {
    fn render(&self) -> String {
        let mut s = String::new();
        if let Some(by) = &self.by {
            s.push_str(&format!("by={by}\n"));
        }
        if let Some(pid) = self.pid {
            s.push_str(&format!("pid={pid}\n"));
        }
        if let Some(image) = &self.image {
            s.push_str(&format!("image={image}\n"));
        }
        if let Some(created) = self.created {
            s.push_str(&format!("created={created}\n"));
        }
        s
    }

    /// Lenient: a record is only ever written by this module, and a field
    /// that does not parse is just unknown, never an error.
    fn parse(text: &str) -> RunRecord {
        let mut r = RunRecord {
            by: None,
            pid: None,
            image: None,
            created: None,
        };
        for line in text.lines() {
            match line.split_once('=') {
                Some(("by", v)) => r.by = Some(v.trim().to_string()),
                Some(("pid", v)) => r.pid = v.trim().parse().ok(),
                Some(("image", v)) => r.image = Some(v.trim().to_string()),
                Some(("created", v)) => r.created = v.trim().parse().ok(),
                _ => {}
            }
        }
        r
    }

    /// "pid 123, node image X, created 300 s ago", for messages.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(pid) = self.pid {
            parts.push(format!("pid {pid}"));
        }
        if let Some(image) = &self.image {
            parts.push(format!("node image {image}"));
        }
        if let Some(created) = self.created {
            let ago = now().saturating_sub(created);
            parts.push(format!("created {ago} s ago"));
        }
        if parts.is_empty() {
            "no details recorded".into()
        } else {
            parts.join(", ")
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The lock on one cluster name, held for the life of a run.
#[derive(Debug)]
pub struct Ownership {
    /// Held (locked) until dropped.
    _lock: File,
    record: PathBuf,
}

/// The outcome of [`claim`].
#[derive(Debug)]
pub enum Claim {
    /// This run holds the lock. `previous` is the record of an earlier run
    /// that created the cluster and died without deleting it, if any.
    Held {
        ownership: Ownership,
        previous: Option<RunRecord>,
    },
    /// Another live run holds the lock; its record, if it wrote one.
    InUse(Option<RunRecord>),
}

/// Takes the lock for `name` in `dir` without waiting.
pub fn claim(dir: &Path, name: &str) -> Result<Claim> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let lock_path = dir.join(format!("{name}.owner.lock"));
    let record = dir.join(format!("{name}.owner"));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("{}: cannot open", lock_path.display()))?;
    let previous = read_record(&record)?;
    match lock.try_lock() {
        Ok(()) => Ok(Claim::Held {
            ownership: Ownership {
                _lock: lock,
                record,
            },
            previous,
        }),
        Err(TryLockError::WouldBlock) => Ok(Claim::InUse(previous)),
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("{}: cannot lock", lock_path.display()))
        }
    }
}

fn read_record(path: &Path) -> Result<Option<RunRecord>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(RunRecord::parse(&text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("{}: cannot read", path.display())),
    }
}

impl Ownership {
    /// Written before `kind create cluster`: a create killed half-way still
    /// leaves a node container the next run must be allowed to remove.
    pub fn record_creation(&self, image: &str) -> Result<()> {
        let record = RunRecord {
            by: Some(BY_HARNESS.into()),
            pid: Some(std::process::id()),
            image: Some(image.to_string()),
            created: Some(now()),
        };
        std::fs::write(&self.record, record.render())
            .with_context(|| format!("{}: cannot write", self.record.display()))
    }

    /// After the cluster is deleted: nothing of this run is left to reclaim.
    pub fn clear(&self) {
        let _ = std::fs::remove_file(&self.record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_what_was_written() {
        let r = RunRecord {
            by: Some(BY_SCRIPT.into()),
            pid: Some(42),
            image: Some("injector-harness/kind-node:v1.37.2".into()),
            created: Some(1_700_000_000),
        };
        assert_eq!(RunRecord::parse(&r.render()), r);
        // Unknown keys and garbage values lose only that field.
        let odd = RunRecord::parse("pid=x\nimage=i\nnoise\ncolour=blue\n");
        assert_eq!(odd.pid, None);
        assert_eq!(odd.image.as_deref(), Some("i"));
    }

    #[test]
    fn a_second_claim_sees_the_first_as_in_use_until_it_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let Claim::Held {
            ownership,
            previous,
        } = claim(dir.path(), "c").unwrap()
        else {
            panic!("first claim must hold the lock");
        };
        assert_eq!(previous, None);
        ownership.record_creation("img").unwrap();

        // flock locks belong to the open file description, so a second open
        // in this same process contends exactly like another process would.
        match claim(dir.path(), "c").unwrap() {
            Claim::InUse(Some(r)) => {
                assert_eq!(r.pid, Some(std::process::id()));
                assert_eq!(r.image.as_deref(), Some("img"));
            }
            other => panic!("expected InUse with a record, got {other:?}"),
        }

        // The run dies without clearing its record: the next claim holds
        // the lock and is told about the leftover.
        drop(ownership);
        let Claim::Held {
            ownership,
            previous,
        } = claim(dir.path(), "c").unwrap()
        else {
            panic!("the lock is free once its holder is gone");
        };
        assert_eq!(previous.and_then(|r| r.image).as_deref(), Some("img"));

        // A run that deleted its cluster leaves nothing behind.
        ownership.clear();
        drop(ownership);
        let Claim::Held { previous, .. } = claim(dir.path(), "c").unwrap() else {
            panic!("free lock");
        };
        assert_eq!(previous, None);
    }

    #[test]
    fn names_do_not_share_a_lock() {
        let dir = tempfile::tempdir().unwrap();
        let a = claim(dir.path(), "a").unwrap();
        let b = claim(dir.path(), "b").unwrap();
        assert!(matches!(a, Claim::Held { .. }));
        assert!(matches!(b, Claim::Held { .. }));
    }
}
