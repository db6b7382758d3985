//! The last hour of each task queue, minute by minute, for the web UI's plots (the chapter's
//! 13.5: schedule-to-start latency and backlog are what worker tuning watches): the largest
//! backlog seen in each minute and the schedule-to-start latency of the tasks dispatched in it.
//! Bounded: 60 minutes per queue, and a queue's series goes once it has been quiet for an hour.

use std::collections::{HashMap, VecDeque};

use uhrwerk_storage::TaskKind;

/// Minutes kept.
pub const MINUTES: usize = 60;
const MINUTE_MS: i64 = 60_000;

/// One minute of one queue.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Minute {
    /// Start of the minute, ms since the epoch.
    pub start_ms: i64,
    /// The largest backlog seen in the minute (the backlog carried over when nothing changed).
    pub backlog_max: usize,
    /// Tasks dispatched in the minute.
    pub dispatched: u32,
    /// Their mean and largest schedule-to-start latency, in ms.
    pub wait_mean_ms: i64,
    pub wait_max_ms: i64,
}

#[derive(Default)]
struct Series {
    minutes: VecDeque<Bucket>,
    /// The backlog after the last change, carried into minutes without one.
    backlog: usize,
}

#[derive(Clone, Copy, Default)]
struct Bucket {
    minute: i64,
    backlog_max: usize,
    /// The backlog when the minute's last change left it.
    backlog_end: usize,
    dispatched: u32,
    wait_sum_ms: i64,
    wait_max_ms: i64,
}

impl Series {
    fn bucket(&mut self, now_ms: i64) -> &mut Bucket {
        let minute = now_ms.div_euclid(MINUTE_MS);
        if self.minutes.back().is_none_or(|b| b.minute < minute) {
            if self.minutes.len() == MINUTES {
                self.minutes.pop_front();
            }
            self.minutes.push_back(Bucket {
                minute,
                backlog_max: self.backlog,
                backlog_end: self.backlog,
                ..Default::default()
            });
        }
        self.minutes.back_mut().expect("just pushed")
    }
}

/// Every queue's last hour, keyed as the metrics are: sticky queues count under their normal
/// queue.
#[derive(Default)]
pub struct QueueSeries {
    queues: HashMap<(String, String, TaskKind), Series>,
}

impl QueueSeries {
    /// A queue's backlog changed to `backlog`.
    pub fn backlog(&mut self, key: (&str, &str, TaskKind), backlog: usize, now_ms: i64) {
        let series = self.entry(key);
        series.backlog = backlog;
        let bucket = series.bucket(now_ms);
        bucket.backlog_max = bucket.backlog_max.max(backlog);
        bucket.backlog_end = backlog;
    }

    /// A task was dispatched after waiting `waited_ms` in its queue.
    pub fn dispatched(&mut self, key: (&str, &str, TaskKind), waited_ms: i64, now_ms: i64) {
        let bucket = self.entry(key).bucket(now_ms);
        bucket.dispatched += 1;
        bucket.wait_sum_ms += waited_ms;
        bucket.wait_max_ms = bucket.wait_max_ms.max(waited_ms);
    }

    fn entry(&mut self, (namespace, queue, kind): (&str, &str, TaskKind)) -> &mut Series {
        self.queues.entry((namespace.to_string(), queue.to_string(), kind)).or_default()
    }

    /// The last hour of a queue, one entry per minute, oldest first, ending with the current
    /// minute; minutes without a change carry the backlog over.
    pub fn hour(&self, namespace: &str, queue: &str, kind: TaskKind, now_ms: i64) -> Vec<Minute> {
        let now = now_ms.div_euclid(MINUTE_MS);
        let first = now - MINUTES as i64 + 1;
        let mut recorded =
            self.queues.get(&(namespace.to_string(), queue.to_string(), kind)).map(|s| s.minutes.iter().peekable());
        let mut carried = 0;
        let mut out = Vec::with_capacity(MINUTES);
        for minute in first..=now {
            let mut entry = Minute { start_ms: minute * MINUTE_MS, ..Default::default() };
            if let Some(iter) = recorded.as_mut() {
                while let Some(b) = iter.next_if(|b| b.minute < minute) {
                    carried = b.backlog_end;
                }
                if let Some(b) = iter.next_if(|b| b.minute == minute) {
                    entry.backlog_max = b.backlog_max;
                    entry.dispatched = b.dispatched;
                    entry.wait_mean_ms = if b.dispatched > 0 { b.wait_sum_ms / i64::from(b.dispatched) } else { 0 };
                    entry.wait_max_ms = b.wait_max_ms;
                    out.push(entry);
                    carried = b.backlog_end;
                    continue;
                }
            }
            entry.backlog_max = carried;
            out.push(entry);
        }
        out
    }

    /// Forgets queues quiet for an hour with nothing waiting in them.
    pub fn prune(&mut self, now_ms: i64) {
        let oldest = now_ms.div_euclid(MINUTE_MS) - MINUTES as i64;
        self.queues.retain(|_, s| s.backlog > 0 || s.minutes.back().is_some_and(|b| b.minute > oldest));
    }

    /// Number of queues with a series; for tests.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.queues.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: (&str, &str, TaskKind) = ("default", "q", TaskKind::Activity);
    const T0: i64 = 1_000 * MINUTE_MS;

    #[test]
    fn an_hour_has_sixty_minutes_ending_now_and_carries_the_backlog_over() {
        let mut s = QueueSeries::default();
        s.backlog(KEY, 3, T0 - 10 * MINUTE_MS);
        s.backlog(KEY, 5, T0 - 10 * MINUTE_MS + 1);
        s.dispatched(KEY, 400, T0 - 10 * MINUTE_MS + 2);
        s.backlog(KEY, 4, T0 - 10 * MINUTE_MS + 2);
        s.dispatched(KEY, 100, T0 - 3 * MINUTE_MS);
        s.backlog(KEY, 0, T0 - 3 * MINUTE_MS);
        let hour = s.hour("default", "q", TaskKind::Activity, T0 + 5);
        assert_eq!(hour.len(), MINUTES);
        assert_eq!(hour.last().map(|m| m.start_ms), Some(T0));
        let at = |minutes_ago: i64| hour[MINUTES - 1 - minutes_ago as usize];
        assert_eq!(at(11).backlog_max, 0);
        assert_eq!((at(10).backlog_max, at(10).dispatched, at(10).wait_mean_ms, at(10).wait_max_ms), (5, 1, 400, 400));
        // Minutes without changes carry the backlog the last change left (4).
        assert_eq!((at(9).backlog_max, at(9).dispatched), (4, 0));
        assert_eq!(at(4).backlog_max, 4);
        // The minute it fell to 0 still shows the 4 it started with, then 0.
        assert_eq!((at(3).backlog_max, at(3).dispatched, at(3).wait_max_ms), (4, 1, 100));
        assert_eq!(at(2).backlog_max, 0);
        assert_eq!(at(0).backlog_max, 0);
    }

    #[test]
    fn an_unknown_queue_has_an_empty_hour() {
        let hour = QueueSeries::default().hour("default", "nobody", TaskKind::Workflow, T0);
        assert_eq!(hour.len(), MINUTES);
        assert!(hour.iter().all(|m| m.backlog_max == 0 && m.dispatched == 0));
    }

    #[test]
    fn keeps_sixty_minutes_and_forgets_queues_quiet_for_an_hour() {
        let mut s = QueueSeries::default();
        for minute in 0..200 {
            s.dispatched(KEY, minute, T0 + minute * MINUTE_MS);
        }
        assert_eq!(s.queues.values().map(|q| q.minutes.len()).sum::<usize>(), MINUTES);
        s.backlog(("default", "waiting", TaskKind::Workflow), 2, T0);
        s.prune(T0 + 199 * MINUTE_MS + MINUTES as i64 * MINUTE_MS);
        // "q" was quiet for an hour and holds nothing; "waiting" still holds two tasks.
        assert_eq!(s.len(), 1);
        assert!(s.queues.contains_key(&("default".into(), "waiting".into(), TaskKind::Workflow)));
    }
}
