//! The wall clock deadlines are measured by (approvals expiring and
//! escalating). The host is handed one, so tests move time forward instead of
//! waiting hours for it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

pub type Time = chrono::DateTime<chrono::Utc>;

pub trait Clock: Send + Sync {
    fn now(&self) -> Time;
}

/// The system's clock: what a running host uses.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Time {
        chrono::Utc::now()
    }
}

/// The system's clock moved forward by hand, as if that much time had passed.
#[derive(Default)]
pub struct ManualClock {
    ahead_seconds: AtomicI64,
}

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        let seconds = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.ahead_seconds.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Time {
        chrono::Utc::now() + chrono::Duration::seconds(self.ahead_seconds.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_runs_ahead_by_what_it_was_advanced() {
        let clock = ManualClock::default();
        let before = SystemClock.now();
        clock.advance(Duration::from_secs(3600));
        let ahead = clock.now() - before;
        assert!(ahead >= chrono::Duration::seconds(3600) && ahead < chrono::Duration::seconds(3660), "{ahead}");
    }
}
