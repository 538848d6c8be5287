//! The clock the client reads and sleeps on: ticket age and task-poll backoff depend on it,
//! so tests swap in a `ManualClock` instead of waiting hours or seconds.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
    fn sleep(&self, d: Duration);
}

/// The real monotonic clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// A clock that only moves when told to; `sleep` advances it at once and records the
/// duration, so a test can check a backoff schedule without waiting.
#[derive(Debug)]
pub struct ManualClock {
    base: Instant,
    state: Mutex<ManualState>,
}

#[derive(Debug, Default)]
struct ManualState {
    offset: Duration,
    sleeps: Vec<Duration>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    pub fn new() -> Self {
        ManualClock {
            base: Instant::now(),
            state: Mutex::new(ManualState::default()),
        }
    }

    pub fn advance(&self, d: Duration) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.offset += d;
    }

    /// Every duration passed to `sleep`, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.sleeps.clone()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.base + s.offset
    }
    fn sleep(&self, d: Duration) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.offset += d;
        s.sleeps.push(d);
    }
}
