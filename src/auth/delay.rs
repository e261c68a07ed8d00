//! Brute-force delay, as Nightscout's delaylist: each failed credential from an address adds
//! AUTH_FAIL_DELAY to that address's penalty; its later requests wait the penalty out (without
//! holding a worker: the wait is an async sleep); a success clears it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Entries whose penalty ended longer ago than this are forgotten.
const FORGET_AFTER_MS: i64 = 60_000;

pub struct FailDelay {
    step_ms: i64,
    until: Mutex<HashMap<IpAddr, i64>>,
}

impl FailDelay {
    pub fn new(step_ms: i64) -> FailDelay {
        FailDelay {
            step_ms,
            until: Mutex::new(HashMap::new()),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<IpAddr, i64>) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-update of plain integers.
        let mut map = self.until.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut map)
    }

    /// How long a request from `ip` must wait now (ms).
    pub fn penalty_ms(&self, ip: IpAddr, now: i64) -> i64 {
        self.with(|m| m.get(&ip).map_or(0, |until| (until - now).max(0)))
    }

    pub fn failed(&self, ip: IpAddr, now: i64) {
        if self.step_ms <= 0 {
            return;
        }
        self.with(|m| {
            m.retain(|_, until| now <= *until + FORGET_AFTER_MS);
            let base = m.get(&ip).copied().filter(|u| *u > now).unwrap_or(now);
            m.insert(ip, base + self.step_ms);
        });
    }

    pub fn succeeded(&self, ip: IpAddr) {
        self.with(|m| {
            m.remove(&ip);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_accumulate_and_success_clears() {
        let d = FailDelay::new(100);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(d.penalty_ms(ip, 0), 0);
        d.failed(ip, 0);
        d.failed(ip, 10);
        assert_eq!(d.penalty_ms(ip, 10), 190);
        assert_eq!(d.penalty_ms(other, 10), 0, "other clients are not delayed");
        assert_eq!(d.penalty_ms(ip, 500), 0, "a penalty runs out");
        d.failed(ip, 500);
        assert_eq!(
            d.penalty_ms(ip, 500),
            100,
            "after it ran out, one step again"
        );
        d.succeeded(ip);
        assert_eq!(d.penalty_ms(ip, 500), 0);
    }

    #[test]
    fn zero_step_disables() {
        let d = FailDelay::new(0);
        let ip: IpAddr = "::1".parse().unwrap();
        d.failed(ip, 0);
        assert_eq!(d.penalty_ms(ip, 0), 0);
    }
}
