//! The server's only source of time, in two kinds.
//!
//! *Workflow time* ([`Clock`]) is what histories, timers and schedules run on: `now_ms` and
//! waiting until a point of it. The server takes a `Clock` at start; tests use [`ManualClock`]
//! and move it by hand, so that a month-long timer fires at once and no test sleeps.
//!
//! *Transport time* (the functions at the bottom) measures how long a call may wait: long-poll
//! deadlines, retry pauses, housekeeping intervals. It follows the client's real deadlines even
//! when workflow time jumps, and runs on tokio's clock, which tests can pause and advance.
//!
//! Invariant: nothing outside this module calls `SystemTime::now`, `Instant::now` or tokio's
//! sleeps and timeouts (clippy's `disallowed-methods` enforces it).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use uhrwerk_core::time::Millis;

/// A boxed future of the clock: `Clock` is used as a trait object. It resolves to a [`Hold`]
/// on the clock, which the waiter keeps while it acts on what came due.
pub type Wait = Pin<Box<dyn Future<Output = Hold> + Send + 'static>>;

/// Workflow time.
pub trait Clock: Send + Sync + 'static {
    /// Unix milliseconds.
    fn now_ms(&self) -> Millis;

    /// Resolves once `now_ms() >= at`: at once when that time has passed. `at` is something
    /// due then (a timer, a timeout, a sleep): a clock that skips time may jump to it.
    fn sleep_until(&self, at: Millis) -> Wait;

    /// As `sleep_until`, for housekeeping that only looks again at `at` (nothing is due then):
    /// a clock that skips time never jumps to it.
    fn idle_until(&self, at: Millis) -> Wait {
        self.sleep_until(at)
    }

    /// Keeps a clock that skips time where it is while the hold lives: work is in progress whose
    /// effects must happen at this time (a timer being fired).
    fn hold(&self) -> Hold {
        Hold::none()
    }

    /// Tells the clock how the number of workflow tasks and activity attempts waiting for or in
    /// the hands of a worker changed. While any are outstanding, a clock that skips time does
    /// not (as Temporal's test server).
    fn outstanding_changed(&self, _delta: i64) {}

    /// Whether the engine should report `outstanding_changed` (counting costs a look at every
    /// pending activity on each commit; only a clock that skips time needs it).
    fn counts_outstanding(&self) -> bool {
        false
    }
}

/// Something that keeps a time-skipping clock from jumping while it lives (see [`Clock::hold`]);
/// empty for other clocks.
#[must_use = "a hold only keeps the clock still while it lives"]
pub struct Hold {
    /// Kept only for its drop, which releases the hold.
    _release: Option<Box<dyn Send + Sync>>,
}

impl Hold {
    /// A hold that holds nothing.
    pub fn none() -> Self {
        Self { _release: None }
    }

    /// A hold whose release is `guard`'s drop.
    pub fn new(guard: impl Send + Sync + 'static) -> Self {
        Self { _release: Some(Box::new(guard)) }
    }
}

/// Wall-clock time.
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // The one place that reads the wall clock.
    fn now_ms(&self) -> Millis {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as Millis).unwrap_or(0)
    }

    fn sleep_until(&self, at: Millis) -> Wait {
        let wait = Duration::from_millis((at - self.now_ms()).max(0) as u64);
        Box::pin(async move {
            sleep(wait).await;
            Hold::none()
        })
    }
}

/// Workflow time that moves only when told to: for tests, and the foundation of time skipping.
pub struct ManualClock {
    now: AtomicI64,
    moved: watch::Sender<Millis>,
}

impl ManualClock {
    pub fn new(start_ms: Millis) -> Self {
        Self { now: AtomicI64::new(start_ms), moved: watch::channel(start_ms).0 }
    }

    /// Moves the clock forward by `ms` (never backwards) and wakes everything waiting for a time
    /// that has now come.
    pub fn advance(&self, ms: Millis) {
        let now = self.now.fetch_add(ms.max(0), Ordering::SeqCst) + ms.max(0);
        self.moved.send_replace(now);
    }

    /// Moves the clock to `at` if that is later than now.
    pub fn advance_to(&self, at: Millis) {
        let now = self.now.fetch_max(at, Ordering::SeqCst).max(at);
        self.moved.send_replace(now);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Millis {
        self.now.load(Ordering::SeqCst)
    }

    fn sleep_until(&self, at: Millis) -> Wait {
        let mut moved = self.moved.subscribe();
        Box::pin(async move {
            // A closed channel means the clock is gone: nothing will ever be due.
            let _ = moved.wait_for(|now| *now >= at).await;
            Hold::none()
        })
    }
}

// Transport time.

/// A point in transport time by which a wait must end.
pub type Deadline = tokio::time::Instant;

/// The deadline `wait` from now.
#[allow(clippy::disallowed_methods)]
pub fn deadline(wait: Duration) -> Deadline {
    tokio::time::Instant::now() + wait
}

/// How much of the wait until `deadline` is left.
#[allow(clippy::disallowed_methods)]
pub fn remaining(deadline: Deadline) -> Duration {
    deadline.saturating_duration_since(tokio::time::Instant::now())
}

/// Waits `wait` of transport time.
#[allow(clippy::disallowed_methods)]
pub async fn sleep(wait: Duration) {
    tokio::time::sleep(wait).await
}

/// Waits until `deadline`.
#[allow(clippy::disallowed_methods)]
pub async fn sleep_until(deadline: Deadline) {
    tokio::time::sleep_until(deadline).await
}

/// Runs `future` for at most `wait`; None when the time ran out first.
#[allow(clippy::disallowed_methods)]
pub async fn timeout<F: Future>(wait: Duration, future: F) -> Option<F::Output> {
    tokio::time::timeout(wait, future).await.ok()
}

/// How long a call took, for metrics.
#[derive(Clone, Copy, Debug)]
pub struct Stopwatch(tokio::time::Instant);

impl Stopwatch {
    #[allow(clippy::disallowed_methods)]
    pub fn start() -> Self {
        Self(tokio::time::Instant::now())
    }

    pub fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_when_it_reaches_their_time() {
        let clock = std::sync::Arc::new(ManualClock::new(1_000));
        assert_eq!(clock.now_ms(), 1_000);
        let past = clock.sleep_until(500);
        drop(past.await);
        let mut due = tokio::spawn(clock.sleep_until(5_000));
        clock.advance(3_000);
        tokio::task::yield_now().await;
        assert!(!due.is_finished(), "4,000 is not 5,000 yet");
        clock.advance_to(5_000);
        drop((&mut due).await.expect("the sleeper wakes"));
        clock.advance_to(100);
        assert_eq!(clock.now_ms(), 5_000, "a manual clock never goes back");
    }

    #[tokio::test(start_paused = true)]
    async fn transport_waits_follow_tokios_clock() {
        let started = Stopwatch::start();
        assert_eq!(timeout(Duration::from_secs(60), std::future::pending::<()>()).await, None);
        assert_eq!(started.elapsed(), Duration::from_secs(60), "paused time advances exactly");
        let end = deadline(Duration::from_secs(5));
        sleep_until(end).await;
        assert_eq!(remaining(end), Duration::ZERO);
    }
}
