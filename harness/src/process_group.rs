//! Every program the harness starts runs in a process group of its own
//! (`process_group(0)`), so that stopping it stops what it started too (a
//! script's cargo and rustc, a `cargo run`'s binary).

/// Kills a process group when dropped while armed: the group a cancelled
/// tool call's program leads (its pid is the group's id), or a subject
/// program's.
pub struct GroupGuard(Option<u32>);

impl GroupGuard {
    /// Arms for the group led by `pid` (spawned with `process_group(0)`).
    pub fn new(pid: Option<u32>) -> GroupGuard {
        GroupGuard(pid)
    }

    pub fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let Some(pgid) = self.0.and_then(|p| i32::try_from(p).ok()) else {
            return;
        };
        // SAFETY: kill(2) with a negative pid signals that process group;
        // it touches no memory of ours. The group is the one spawn made for
        // this call's program, so nothing else is in it.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}
