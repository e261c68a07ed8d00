//! Handing freed heap memory back to the operating system (glibc builds).
//!
//! glibc's malloc keeps what a thread frees in that thread's arena and gives memory back only
//! from the top of a heap, so after a burst (concurrent reads, WebSocket fan-out, a group
//! commit) the free chunks below live ones stay resident. RSS then steps up to the highest
//! burst seen and stays there: +4-6 MB over a soak's first five minutes, on a live heap of
//! about 20 MB (docs/PERFORMANCE.md, "Load soak"). `malloc_trim(0)` releases the whole free
//! pages inside every arena; done every few seconds, RSS stays near what is in use.
//!
//! musl (the static build) has no `malloc_trim` and its allocator returns memory by itself, so
//! there this is a no-op and no task runs.

use std::time::{Duration, Instant};

/// How often. One pass is cheap next to ten seconds of serving (measured in the soak, "Load
/// soak" in docs/PERFORMANCE.md), and the pages it releases are faulted back in only as they
/// are used again.
pub const EVERY: Duration = Duration::from_secs(10);

/// Whether this build can trim (glibc on Linux).
pub const AVAILABLE: bool = cfg!(all(target_os = "linux", target_env = "gnu"));

/// Trims every [`EVERY`] until aborted. The pass runs on the blocking pool because it takes
/// each arena's lock in turn, which would stall an async worker that allocates meanwhile.
pub async fn run() {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let pass = tokio::task::spawn_blocking(|| {
            let start = Instant::now();
            (trim(), start.elapsed())
        });
        match pass.await {
            Ok((released, took)) => {
                tracing::trace!(released, micros = took.as_micros() as u64, "heap trim")
            }
            Err(e) => tracing::warn!(error = %e, "heap trim failed"),
        }
    }
}

/// Releases free heap pages to the OS; true when glibc gave any back. The crate's only unsafe
/// code (Cargo.toml denies it everywhere else): one call into glibc that no safe binding offers.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn trim() -> bool {
    extern "C" {
        /// glibc ≥ 2.8: returns 1 if memory was released, 0 otherwise.
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: malloc_trim has no preconditions and touches no caller memory: it takes each
    // arena's own lock and madvises away only pages that lie wholly inside free chunks. `pad`
    // 0 keeps no extra slack at the top of the main heap.
    unsafe { malloc_trim(0) == 1 }
}

/// Nothing to trim without glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_releases_freed_memory_on_glibc() {
        // Medium blocks (below the mmap threshold, so they live in a heap), each followed by
        // a small one that stays: the freed blocks cannot merge into the top of the heap, where
        // glibc would give them back on free by itself, so only a trim can release them.
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..64)
            .map(|i| (vec![i as u8; 64 * 1024], vec![i as u8; 64]))
            .collect();
        let kept: Vec<Vec<u8>> = pairs.into_iter().map(|(_, small)| small).collect();
        assert_eq!(trim(), AVAILABLE);
        assert_eq!(std::hint::black_box(&kept)[63][0], 63);
    }
}
