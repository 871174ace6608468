//! Noticing that files changed on disk.
//!
//! A mounted ConfigMap or Secret is updated by swapping a `..data` symlink,
//! which inotify watchers on the file itself miss; polling the content behind
//! the path catches every kind of update (symlink swap, rename, in-place
//! write) at the cost of reading a few small files once per interval.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::time::Duration;

/// A digest of the files' current contents; `None` when one cannot be read
/// (mid-swap, or deleted), which callers treat as "not changed yet".
pub fn fingerprint(paths: &[PathBuf]) -> Option<u64> {
    let mut h = DefaultHasher::new();
    for p in paths {
        std::fs::read(p).ok()?.hash(&mut h);
    }
    Some(h.finish())
}

/// Calls `on_change` (on the tokio runtime) each time the contents of
/// `paths` differ from the last seen fingerprint. The first fingerprint is
/// taken at spawn time, so a file loaded just before is not reloaded at once.
pub fn spawn_poll<F>(
    paths: Vec<PathBuf>,
    interval: Duration,
    mut on_change: F,
) -> tokio::task::JoinHandle<()>
where
    F: FnMut() + Send + 'static,
{
    let mut last = fingerprint(&paths);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let now = fingerprint(&paths);
            if now.is_some() && now != last {
                last = now;
                on_change();
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_follows_content() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a");
        std::fs::write(&f, "one").unwrap();
        let a = fingerprint(std::slice::from_ref(&f));
        std::fs::write(&f, "two").unwrap();
        let b = fingerprint(std::slice::from_ref(&f));
        assert!(a.is_some() && b.is_some() && a != b);
        assert_eq!(fingerprint(&[dir.path().join("missing")]), None);
    }

    #[tokio::test]
    async fn poll_reports_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a");
        std::fs::write(&f, "one").unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let task = spawn_poll(vec![f.clone()], Duration::from_millis(10), move || {
            let _ = tx.send(());
        });
        std::fs::write(&f, "two").unwrap();
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        task.abort();
    }
}
