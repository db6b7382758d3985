//! Time skipping, as Temporal's test server does it: workflow time that follows the wall clock
//! while it is locked and jumps to the next thing due while it is not.
//!
//! The lock is one counter, as in the Java test server (`SelfAdvancingTimerImpl`): the
//! TestService's `LockTimeSkipping`/`UnlockTimeSkipping` move its caller part, which starts at 1
//! (locked) unless the server starts with skipping enabled; the server's own work adds to it:
//! every workflow task and activity attempt waiting for or in the hands of a worker
//! (`Clock::outstanding_changed`), and every holder of a [`Hold`] (a timer whose transition is
//! running). Time jumps only while the sum is at most 0, and then only to the earliest time
//! something waits for with `Clock::sleep_until` (timers, timeouts, `Sleep`), never past it;
//! housekeeping waits (`Clock::idle_until`) are not jumped to. As in Java, an unlock is refused
//! only when the whole counter is 0 (an empty timer queue counts one, as in Java), so an unlock from inside an activity (the SDK's
//! `env.sleep()`) lets time skip while that activity runs.
//!
//! Invariant: a waiter whose time has come turns its wait into a hold before it stops being
//! a target, so there is no moment in which a due timer neither holds the clock nor is waited
//! for.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use uhrwerk_core::time::Millis;

use crate::clock::{self, Clock, Hold, SystemClock, Wait};

/// A clock that skips time (see the module documentation).
#[derive(Clone)]
pub struct SkippingClock {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SkippingClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.inner.state();
        f.debug_struct("SkippingClock")
            .field("offset_ms", &state.offset_ms)
            .field("caller_locks", &state.caller_locks)
            .field("server_locks", &state.server_locks)
            .finish()
    }
}

struct Inner {
    state: Mutex<State>,
    /// The offset of workflow time from the wall clock; every jump sends it.
    jumped: watch::Sender<Millis>,
}

struct State {
    /// Workflow time minus wall time.
    offset_ms: Millis,
    /// The callers' part of the lock counter (LockTimeSkipping +1, UnlockTimeSkipping -1); may
    /// go below 0 while the server's part is above it.
    caller_locks: i64,
    /// The server's part: outstanding tasks and holds.
    server_locks: i64,
    /// Times waited for, with a count of waiters each.
    targets: BTreeMap<Millis, usize>,
}

/// Why an unlock was refused.
#[derive(Debug, thiserror::Error)]
#[error("Unbalanced lock and unlock calls: time skipping is not locked")]
pub struct Unbalanced;

impl SkippingClock {
    /// Starts at the wall clock's time, locked unless `enabled`.
    pub fn new(enabled: bool) -> Self {
        let state =
            State { offset_ms: 0, caller_locks: i64::from(!enabled), server_locks: 0, targets: BTreeMap::new() };
        Self { inner: Arc::new(Inner { state: Mutex::new(state), jumped: watch::channel(0).0 }) }
    }

    /// `LockTimeSkipping`.
    pub fn lock(&self) {
        self.inner.state().caller_locks += 1;
    }

    /// `UnlockTimeSkipping`: refused when nothing holds the counter. As in Java, where an empty
    /// timer queue holds a lock of its own, nothing waited for counts as one more lock here.
    pub fn unlock(&self) -> Result<(), Unbalanced> {
        let mut state = self.inner.state();
        let empty_queue = i64::from(state.targets.is_empty());
        if state.caller_locks + state.server_locks + empty_queue <= 0 {
            return Err(Unbalanced);
        }
        state.caller_locks -= 1;
        self.inner.skip(state);
        Ok(())
    }

    /// `Sleep` and `SleepUntil`: waits until workflow time reaches `at`, locks untouched.
    pub async fn sleep_until_time(&self, at: Millis) {
        drop(self.sleep_until(at).await);
    }

    /// `UnlockTimeSkippingWithSleep`: unlocks, waits until workflow time is `duration` later and
    /// locks again at that moment (before time can move on). If the caller goes away first, the
    /// lock is restored all the same.
    pub async fn unlock_and_sleep(&self, duration: Duration) -> Result<(), Unbalanced> {
        let at = self.now_ms() + duration.as_millis() as Millis;
        let wait = self.sleep_until(at);
        self.unlock()?;
        let relock = Relock(self.inner.clone());
        let hold = wait.await;
        drop(relock);
        drop(hold);
        Ok(())
    }

    fn target(&self, at: Millis) -> Target {
        let mut state = self.inner.state();
        *state.targets.entry(at).or_default() += 1;
        // A new target may be the next thing due.
        self.inner.skip(state);
        Target { inner: self.inner.clone(), at: Some(at) }
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_ms(&self, state: &State) -> Millis {
        SystemClock.now_ms() + state.offset_ms
    }

    /// Jumps to the earliest target if nothing holds the clock and that target is still ahead.
    fn skip(&self, mut state: MutexGuard<'_, State>) {
        if state.caller_locks + state.server_locks > 0 {
            return;
        }
        let Some((&next, _)) = state.targets.first_key_value() else { return };
        let now = self.now_ms(&state);
        if next > now {
            state.offset_ms += next - now;
            let offset = state.offset_ms;
            drop(state);
            self.jumped.send_replace(offset);
        }
    }

    fn add_server_locks(self: &Arc<Self>, delta: i64) {
        let mut state = self.state();
        state.server_locks += delta;
        if delta < 0 {
            self.skip(state);
        }
    }
}

/// A time waited for; leaves the targets when dropped.
struct Target {
    inner: Arc<Inner>,
    at: Option<Millis>,
}

impl Target {
    /// The time has come: the waiter holds the clock from now on (taken before the target goes,
    /// under the same lock, so that the clock cannot jump in between).
    fn fire(mut self) -> Hold {
        let at = self.at.take().expect("a target fires once");
        let mut state = self.inner.state();
        state.server_locks += 1;
        remove_target(&mut state, at);
        drop(state);
        Hold::new(ServerLock(self.inner.clone()))
    }
}

fn remove_target(state: &mut State, at: Millis) {
    if let Some(count) = state.targets.get_mut(&at) {
        *count -= 1;
        if *count == 0 {
            state.targets.remove(&at);
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(at) = self.at.take() {
            let mut state = self.inner.state();
            remove_target(&mut state, at);
            self.inner.skip(state);
        }
    }
}

/// One unit of the server's part of the lock, released on drop.
struct ServerLock(Arc<Inner>);

impl Drop for ServerLock {
    fn drop(&mut self) {
        self.0.add_server_locks(-1);
    }
}

/// Gives back the caller lock `unlock_and_sleep` took, however that call ends.
struct Relock(Arc<Inner>);

impl Drop for Relock {
    fn drop(&mut self) {
        self.0.state().caller_locks += 1;
    }
}

/// Waits until workflow time reaches `at`: by the wall clock while time is locked, at once when
/// it jumps there.
async fn wait_until(inner: &Arc<Inner>, at: Millis) {
    let mut jumped = inner.jumped.subscribe();
    loop {
        let now = inner.now_ms(&inner.state());
        if now >= at {
            return;
        }
        tokio::select! {
            _ = clock::sleep(Duration::from_millis((at - now) as u64)) => {}
            changed = jumped.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

impl Clock for SkippingClock {
    fn now_ms(&self) -> Millis {
        self.inner.now_ms(&self.inner.state())
    }

    fn sleep_until(&self, at: Millis) -> Wait {
        let target = self.target(at);
        let inner = self.inner.clone();
        Box::pin(async move {
            wait_until(&inner, at).await;
            target.fire()
        })
    }

    fn idle_until(&self, at: Millis) -> Wait {
        let inner = self.inner.clone();
        Box::pin(async move {
            wait_until(&inner, at).await;
            Hold::none()
        })
    }

    fn hold(&self) -> Hold {
        self.inner.add_server_locks(1);
        Hold::new(ServerLock(self.inner.clone()))
    }

    fn outstanding_changed(&self, delta: i64) {
        self.inner.add_server_locks(delta);
    }

    fn counts_outstanding(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Millis = 86_400_000;

    #[tokio::test]
    async fn locked_time_does_not_jump() {
        let clock = SkippingClock::new(false);
        let start = clock.now_ms();
        let wait = clock.sleep_until(start + DAY);
        assert!(clock::timeout(Duration::from_millis(20), wait).await.is_none());
        assert!(clock.now_ms() < start + DAY);
    }

    #[tokio::test]
    async fn unlocked_time_jumps_to_the_next_target_only() {
        let clock = SkippingClock::new(false);
        let start = clock.now_ms();
        let first = clock.sleep_until(start + DAY);
        let second = clock.sleep_until(start + 30 * DAY);
        clock.unlock().expect("locked once at start");
        let hold = first.await;
        let now = clock.now_ms();
        assert!((start + DAY..start + DAY + 1_000).contains(&now), "jumped to {now}, not to the first target");
        // The fired waiter holds the clock: the second target is not reached while it does.
        assert!(clock.now_ms() < start + 30 * DAY);
        drop(hold);
        drop(second.await);
        assert!(clock.now_ms() >= start + 30 * DAY);
    }

    #[tokio::test]
    async fn outstanding_work_keeps_time_from_jumping() {
        let clock = SkippingClock::new(true);
        let start = clock.now_ms();
        clock.outstanding_changed(1);
        let wait = clock.sleep_until(start + DAY);
        let mut wait = std::pin::pin!(wait);
        assert!(clock::timeout(Duration::from_millis(20), &mut wait).await.is_none());
        clock.outstanding_changed(-1);
        drop(wait.await);
        assert!(clock.now_ms() >= start + DAY);
    }

    #[tokio::test]
    async fn idle_waits_are_not_jumped_to() {
        let clock = SkippingClock::new(true);
        let start = clock.now_ms();
        let wait = clock.idle_until(start + DAY);
        assert!(clock::timeout(Duration::from_millis(20), wait).await.is_none());
        assert!(clock.now_ms() < start + DAY);
    }

    #[tokio::test]
    async fn unlock_below_zero_is_refused_and_unlock_with_sleep_relocks() {
        let clock = SkippingClock::new(false);
        let start = clock.now_ms();
        clock.unlock_and_sleep(Duration::from_secs(3_600)).await.expect("locked once");
        assert!(clock.now_ms() >= start + 3_600_000);
        // Locked again: a further target is not jumped to.
        let wait = clock.sleep_until(clock.now_ms() + DAY);
        assert!(clock::timeout(Duration::from_millis(20), wait).await.is_none());
        // (The wait is gone again: nothing is waited for.)
        clock.unlock().expect("relocked by the sleep");
        clock.unlock().expect("nothing waited for: the empty queue's lock");
        assert!(clock.unlock().is_err(), "a third unlock goes below zero");
    }
}
