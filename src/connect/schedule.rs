//! When the next poll happens: aligned to the next expected reading when a fetch succeeds,
//! exponential back-off when it fails, the vendor's own wait when it throttles. Pure
//! arithmetic on epoch ms; the jitter is passed in, so tests can pin it.

/// A reading is in the vendor's cloud some seconds after the sensor took it: poll this long
/// after the expected time, plus up to as much again at random (nightscout-connect's 18 s).
pub const READING_DELAY_MS: i64 = 18_000;
/// The longest back-off after transient errors, in intervals.
pub const MAX_BACKOFF_INTERVALS: i64 = 6;
/// The longest wait a throttle may impose.
pub const MAX_THROTTLE_MS: i64 = 15 * 60_000;
/// Each throttle in a row waits at least this much more.
pub const THROTTLE_STEP_MS: i64 = 60_000;

/// A random number of ms in `0..=max` (0 when `max` is not positive).
pub fn jitter(max: i64) -> i64 {
    if max <= 0 {
        return 0;
    }
    let mut b = [0u8; 8];
    // Without an entropy source the jitter is just 0: it spreads load, it guards nothing.
    if getrandom::getrandom(&mut b).is_err() {
        return 0;
    }
    let r = u64::from_le_bytes(b) % (max as u64 + 1);
    r as i64
}

/// The next poll after a success: the first expected reading after `now` (readings come every
/// `interval` after `last_reading`), plus [`READING_DELAY_MS`] and `jitter` (0..=18 s);
/// `now + interval` when nothing is known of the source's rhythm.
pub fn aligned(last_reading: Option<i64>, now: i64, interval: i64, jitter: i64) -> i64 {
    let Some(last) = last_reading else {
        return now + interval;
    };
    // The first slot last + k·interval (k ≥ 1: `last` itself is stored) whose poll time is
    // still ahead.
    let base = last + READING_DELAY_MS + jitter;
    let k = ((now - base).div_euclid(interval) + 1).max(1);
    base + k * interval
}

/// The wait after `failures` failed polls in a row (1 or more): half an interval, doubled each
/// time, at most [`MAX_BACKOFF_INTERVALS`] intervals; `jitter` is added (the caller draws it,
/// up to a tenth of the wait: see [`backoff_jitter_max`]).
pub fn backoff(failures: u32, interval: i64, jitter: i64) -> i64 {
    let doublings = failures.saturating_sub(1).min(20);
    let wait = (interval / 2).saturating_mul(1 << doublings);
    wait.min(MAX_BACKOFF_INTERVALS * interval) + jitter
}

/// The most jitter [`backoff`] should get.
pub fn backoff_jitter_max(failures: u32, interval: i64) -> i64 {
    backoff(failures, interval, 0) / 10
}

/// The wait after the `in_a_row`-th throttle in a row: the vendor's Retry-After, at least a
/// minute per throttle in a row, at most [`MAX_THROTTLE_MS`].
pub fn throttled(in_a_row: u32, retry_after: Option<i64>) -> i64 {
    let floor = THROTTLE_STEP_MS * i64::from(in_a_row.max(1));
    retry_after.unwrap_or(0).max(floor).min(MAX_THROTTLE_MS)
}

/// Where a fetch starts: the source's own newest stored document less `overlap` (so a reading
/// that reached the vendor late is fetched again; its identifier makes the second copy a
/// no-op), never before the vendor's `window`; the whole window on the first run.
pub fn fetch_from(newest_own: Option<i64>, now: i64, overlap: i64, window: i64) -> i64 {
    let oldest = now - window;
    match newest_own {
        Some(t) => (t - overlap).max(oldest).min(now),
        None => oldest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const I: i64 = 5 * MIN;

    #[test]
    fn a_success_polls_18_to_36_s_after_the_next_expected_reading() {
        let last = 1_000 * MIN;
        // Two minutes after a reading: the next is due 3 min later.
        assert_eq!(aligned(Some(last), last + 2 * MIN, I, 0), last + I + 18_000);
        assert_eq!(
            aligned(Some(last), last + 2 * MIN, I, 18_000),
            last + I + 36_000
        );
        // A reading an hour old: still on the sensor's rhythm.
        assert_eq!(
            aligned(Some(last), last + 61 * MIN, I, 0),
            last + 65 * MIN + 18_000
        );
        // Polled just after the expected time: the next one, not the past one.
        assert_eq!(
            aligned(Some(last), last + I + 20_000, I, 0),
            last + 2 * I + 18_000
        );
        // Polled before the reading just due reached the cloud: that one.
        assert_eq!(
            aligned(Some(last), last + I + 10_000, I, 0),
            last + I + 18_000
        );
        assert_eq!(aligned(Some(last), last - MIN, I, 0), last + I + 18_000);
        assert_eq!(aligned(None, last, I, 0), last + I);
    }

    #[test]
    fn backoff_doubles_from_half_an_interval_up_to_six() {
        let waits: Vec<i64> = (1..=7).map(|n| backoff(n, I, 0) / 1000).collect();
        assert_eq!(waits, [150, 300, 600, 1200, 1800, 1800, 1800]);
        assert_eq!(backoff(u32::MAX, I, 0), 6 * I);
        assert_eq!(backoff_jitter_max(1, I), 15_000);
    }

    #[test]
    fn a_throttle_waits_retry_after_within_1_to_15_min() {
        assert_eq!(throttled(1, None), MIN);
        assert_eq!(throttled(3, None), 3 * MIN);
        assert_eq!(throttled(1, Some(7 * MIN)), 7 * MIN);
        assert_eq!(throttled(1, Some(3_600_000)), 15 * MIN);
        assert_eq!(throttled(40, None), 15 * MIN);
    }

    #[test]
    fn the_gap_starts_at_the_own_newest_less_the_overlap_within_the_window() {
        let now = 10_000 * MIN;
        let day = 1440 * MIN;
        assert_eq!(fetch_from(None, now, 10 * MIN, day), now - day);
        assert_eq!(
            fetch_from(Some(now - 20 * MIN), now, 10 * MIN, day),
            now - 30 * MIN
        );
        assert_eq!(
            fetch_from(Some(now - 3 * day), now, 10 * MIN, day),
            now - day
        );
    }
}
