//! The time the schedule runs on. Production reads the system clock; tests
//! hold a [`ManualClock`] and move it, so nothing waits for cron.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// Shared by the HTTP handlers and the scheduler.
pub type SharedClock = Arc<dyn Clock>;

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until told otherwise.
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn at(now: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self(Mutex::new(now)))
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// To the microsecond, what both backends store, so that a stored time
/// compares equal to the one it was made from.
pub fn to_stored(t: DateTime<Utc>) -> chrono::NaiveDateTime {
    let naive = t.naive_utc();
    chrono::Timelike::with_nanosecond(&naive, t.timestamp_subsec_micros() * 1000).unwrap_or(naive)
}
