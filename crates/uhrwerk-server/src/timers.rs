//! The in-memory index of armed durable timers, ordered by due time. The engine's timer loop
//! takes due timers from here; the rows in the store bring them back after a restart.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use uhrwerk_core::time::Millis;
use uhrwerk_storage::TimerRow;

type TimerKey = (String, i32, i64, i32);

fn key(row: &TimerRow) -> TimerKey {
    (row.run_id.clone(), row.timer.kind, row.timer.id, row.timer.attempt)
}

#[derive(Default)]
struct State {
    due: BTreeSet<(Millis, u64)>,
    entries: HashMap<u64, TimerRow>,
    by_key: HashMap<TimerKey, u64>,
    next_seq: u64,
}

impl State {
    fn remove(&mut self, k: &TimerKey) {
        if let Some(seq) = self.by_key.remove(k)
            && let Some(row) = self.entries.remove(&seq)
        {
            self.due.remove(&(row.timer.fire_at_ms, seq));
        }
    }
}

#[derive(Clone, Default)]
pub struct Timers {
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
}

impl Timers {
    /// Arms (or re-arms) a timer.
    pub fn arm(&self, row: TimerRow) {
        let mut st = self.state.lock().expect("timers lock");
        let k = key(&row);
        st.remove(&k);
        let seq = st.next_seq;
        st.next_seq += 1;
        let earliest = st.due.first().is_none_or(|(at, _)| row.timer.fire_at_ms < *at);
        st.due.insert((row.timer.fire_at_ms, seq));
        st.by_key.insert(k, seq);
        st.entries.insert(seq, row);
        drop(st);
        if earliest {
            self.changed.notify_one();
        }
    }

    pub fn cancel(&self, row: &TimerRow) {
        self.state.lock().expect("timers lock").remove(&key(row));
    }

    /// Removes and returns every timer due at `now`, or the time of the next one.
    pub fn take_due(&self, now: Millis) -> (Vec<TimerRow>, Option<Millis>) {
        let mut st = self.state.lock().expect("timers lock");
        let mut out = Vec::new();
        while let Some(&(at, seq)) = st.due.first() {
            if at > now {
                return (out, Some(at));
            }
            st.due.pop_first();
            if let Some(row) = st.entries.remove(&seq) {
                st.by_key.remove(&key(&row));
                out.push(row);
            }
        }
        (out, None)
    }

    /// Resolves when a timer earlier than the previous earliest was armed.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    pub fn len(&self) -> usize {
        self.state.lock().expect("timers lock").entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uhrwerk_core::kernel::{TimerKind, TimerTask};

    fn row(run: &str, at: Millis, id: i64) -> TimerRow {
        TimerRow {
            namespace: "default".into(),
            workflow_id: "wf".into(),
            run_id: run.into(),
            timer: TimerTask { fire_at_ms: at, kind: TimerKind::ActivityRetry as i32, id, attempt: 1 },
        }
    }

    #[test]
    fn due_in_order_rearm_and_cancel() {
        let timers = Timers::default();
        timers.arm(row("a", 30, 1));
        timers.arm(row("a", 10, 2));
        timers.arm(row("b", 20, 1));
        timers.arm(row("a", 40, 2)); // re-arm moves timer 2 later
        timers.cancel(&row("b", 0, 1));
        let (due, next) = timers.take_due(35);
        assert_eq!(due.iter().map(|r| (r.run_id.as_str(), r.timer.id)).collect::<Vec<_>>(), vec![("a", 1)]);
        assert_eq!(next, Some(40));
        assert_eq!(timers.len(), 1);
    }
}
