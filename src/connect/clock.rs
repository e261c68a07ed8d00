//! Time as the bridges see it. Every wait of the engine (the schedule, back-off, a request's
//! deadline) goes through a [`Clock`], so tests drive a [`ManualClock`] instead of sleeping:
//! its time moves only when the test sets it, and each waiting future wakes then.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// A source of the current time and of waits on it.
pub trait Clock: Send + Sync + 'static {
    /// Epoch milliseconds.
    fn now_ms(&self) -> i64;
    /// Completes once [`Clock::now_ms`] has reached `deadline_ms` (at once when it has).
    fn sleep_until(&self, deadline_ms: i64) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        crate::dates::now_ms()
    }

    fn sleep_until(&self, deadline_ms: i64) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let wait = u64::try_from(deadline_ms - self.now_ms()).unwrap_or(0);
        Box::pin(tokio::time::sleep(std::time::Duration::from_millis(wait)))
    }
}

/// A clock whose time moves only by [`ManualClock::set`] or [`ManualClock::advance`], for
/// tests: nothing waits in real time.
#[derive(Debug, Default)]
pub struct ManualClock {
    state: Arc<Mutex<Manual>>,
}

#[derive(Debug, Default)]
struct Manual {
    now: i64,
    wakers: Vec<Waker>,
}

fn lock(state: &Mutex<Manual>) -> std::sync::MutexGuard<'_, Manual> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl ManualClock {
    pub fn new(now_ms: i64) -> Arc<ManualClock> {
        Arc::new(ManualClock {
            state: Arc::new(Mutex::new(Manual {
                now: now_ms,
                wakers: Vec::new(),
            })),
        })
    }

    /// Moves the time to `now_ms` (never back) and wakes every wait, each of which looks again.
    pub fn set(&self, now_ms: i64) {
        let wakers = {
            let mut s = lock(&self.state);
            s.now = s.now.max(now_ms);
            std::mem::take(&mut s.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    pub fn advance(&self, ms: i64) {
        let now = lock(&self.state).now;
        self.set(now + ms);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        lock(&self.state).now
    }

    fn sleep_until(&self, deadline_ms: i64) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(Waiting {
            state: self.state.clone(),
            deadline: deadline_ms,
        })
    }
}

/// A wait on a [`ManualClock`]: ready once its time has reached the deadline.
struct Waiting {
    state: Arc<Mutex<Manual>>,
    deadline: i64,
}

impl Future for Waiting {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = lock(&self.state);
        if s.now >= self.deadline {
            return Poll::Ready(());
        }
        // A wait polled again before the time moves (select! re-polls it each time the
        // request beside it progresses) keeps one waker, not one per poll.
        if !s.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            s.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_wait_ends_only_when_the_time_is_set_past_it() {
        let clock = ManualClock::new(1_000);
        let mut wait = clock.sleep_until(5_000);
        struct Nothing;
        impl std::task::Wake for Nothing {
            fn wake(self: Arc<Self>) {}
        }
        // A waker of its own (a no-op waker's identity is not stable across calls).
        let waker = Waker::from(Arc::new(Nothing));
        let mut cx = Context::from_waker(&waker);
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        assert_eq!(lock(&clock.state).wakers.len(), 1, "one waker per wait");
        clock.advance(3_000);
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        clock.set(2_000); // never back
        assert_eq!(clock.now_ms(), 4_000);
        clock.set(5_000);
        assert!(wait.as_mut().poll(&mut cx).is_ready());
    }
}
