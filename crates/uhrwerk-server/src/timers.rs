//! The in-memory index of armed durable timers, ordered by due time. The engine's timer loop
//! takes due timers from here; the rows in the store bring them back after a restart.
//!
//! Every open run waiting on something has a timer here, so an entry is kept small (about 250
//! bytes with the maps' overhead, measured with the `open-timers` benchmark): the namespace is
//! shared, a run id is held as its 16 UUID bytes, and an entry is stored once, in due order, with
//! a key map that points at it for re-arming and cancelling.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use uhrwerk_core::kernel::TimerTask;
use uhrwerk_core::time::Millis;
use uhrwerk_storage::TimerRow;
use uuid::Uuid;

/// A run id as the index keeps it: the UUID's bytes (every run id Uhrwerk makes is a lowercase
/// hyphenated UUID), or the text itself for any other id.
#[derive(Clone, PartialEq, Eq, Hash)]
enum RunKey {
    Uuid(Uuid),
    Text(Box<str>),
}

impl RunKey {
    fn new(run_id: &str) -> Self {
        match Uuid::try_parse(run_id) {
            Ok(uuid) if uuid.hyphenated().encode_lower(&mut Uuid::encode_buffer()) == run_id => Self::Uuid(uuid),
            _ => Self::Text(run_id.into()),
        }
    }

    fn to_run_id(&self) -> String {
        match self {
            Self::Uuid(uuid) => uuid.hyphenated().to_string(),
            Self::Text(text) => text.to_string(),
        }
    }
}

/// A timer's identity within the index: its run and `(kind, id, attempt)`.
type TimerKey = (RunKey, i32, i64, i32);

/// Where an entry sits in `due`: its due time and the order it was armed in.
type DuePos = (Millis, u64);

struct Armed {
    namespace: Arc<str>,
    workflow_id: Box<str>,
    run: RunKey,
    timer: TimerTask,
}

impl Armed {
    fn key(&self) -> TimerKey {
        (self.run.clone(), self.timer.kind, self.timer.id, self.timer.attempt)
    }

    fn into_row(self) -> TimerRow {
        TimerRow {
            namespace: self.namespace.to_string(),
            workflow_id: self.workflow_id.into(),
            run_id: self.run.to_run_id(),
            timer: self.timer,
        }
    }
}

fn key_of(row: &TimerRow) -> TimerKey {
    (RunKey::new(&row.run_id), row.timer.kind, row.timer.id, row.timer.attempt)
}

#[derive(Default)]
struct State {
    due: BTreeMap<DuePos, Armed>,
    by_key: HashMap<TimerKey, DuePos>,
    namespaces: HashSet<Arc<str>>,
    next_seq: u64,
}

impl State {
    fn remove(&mut self, key: &TimerKey) {
        if let Some(pos) = self.by_key.remove(key) {
            self.due.remove(&pos);
        }
    }

    fn namespace(&mut self, name: &str) -> Arc<str> {
        if let Some(shared) = self.namespaces.get(name) {
            return shared.clone();
        }
        let shared: Arc<str> = name.into();
        self.namespaces.insert(shared.clone());
        shared
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
        let key = key_of(&row);
        let mut st = self.state.lock().expect("timers lock");
        st.remove(&key);
        let pos = (row.timer.fire_at_ms, st.next_seq);
        st.next_seq += 1;
        let earliest = st.due.first_key_value().is_none_or(|((at, _), _)| row.timer.fire_at_ms < *at);
        let armed = Armed {
            namespace: st.namespace(&row.namespace),
            workflow_id: row.workflow_id.into(),
            run: key.0.clone(),
            timer: row.timer,
        };
        st.due.insert(pos, armed);
        st.by_key.insert(key, pos);
        drop(st);
        if earliest {
            self.changed.notify_one();
        }
    }

    pub fn cancel(&self, row: &TimerRow) {
        let key = key_of(row);
        self.state.lock().expect("timers lock").remove(&key);
    }

    /// Forgets every armed timer of the workflows `keep` says no to (a cluster node's shards
    /// that went to another node, which armed them again from the store).
    pub fn retain(&self, keep: impl Fn(&str, &str) -> bool) {
        let mut st = self.state.lock().expect("timers lock");
        let gone: Vec<DuePos> = st
            .due
            .iter()
            .filter(|(_, armed)| !keep(&armed.namespace, &armed.workflow_id))
            .map(|(pos, _)| *pos)
            .collect();
        for pos in gone {
            if let Some(armed) = st.due.remove(&pos) {
                st.by_key.remove(&armed.key());
            }
        }
    }

    /// Removes and returns every timer due at `now`, or the time of the next one.
    pub fn take_due(&self, now: Millis) -> (Vec<TimerRow>, Option<Millis>) {
        let mut st = self.state.lock().expect("timers lock");
        let mut out = Vec::new();
        while let Some(entry) = st.due.first_entry() {
            let at = entry.key().0;
            if at > now {
                return (out, Some(at));
            }
            let armed = entry.remove();
            st.by_key.remove(&armed.key());
            out.push(armed.into_row());
        }
        (out, None)
    }

    /// Resolves when a timer earlier than the previous earliest was armed.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    pub fn len(&self) -> usize {
        self.state.lock().expect("timers lock").due.len()
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

    #[test]
    fn run_ids_come_back_as_they_went_in() {
        let uuid = "0b9e4f4c-6a3e-4f3e-9d2a-1c2b3d4e5f60";
        for run in [uuid, "0B9E4F4C-6A3E-4F3E-9D2A-1C2B3D4E5F60", "0b9e4f4c6a3e4f3e9d2a1c2b3d4e5f60", "run-7", ""] {
            let timers = Timers::default();
            timers.arm(row(run, 5, 1));
            timers.cancel(&row(if run == uuid { "0B9E4F4C-6A3E-4F3E-9D2A-1C2B3D4E5F60" } else { uuid }, 0, 1));
            let (due, next) = timers.take_due(5);
            assert_eq!(due, vec![row(run, 5, 1)], "run id {run:?}");
            assert_eq!(next, None);
            assert!(timers.is_empty());
        }
    }
}
