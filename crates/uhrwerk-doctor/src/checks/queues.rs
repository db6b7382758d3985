//! Task queues (13.5): a backlog with no pollers (DR301), a single worker (DR302), and
//! schedule-to-start above the threshold (DR303) from the histories' first attempts and the
//! current backlog age.

use std::collections::BTreeMap;

use super::{Settings, Snapshot};
use crate::facts::{QueueFacts, QueueKind};
use crate::finding::{Check, Finding};
use crate::timefmt::human;

pub(super) fn check(snapshot: &Snapshot, s: &Settings) -> Vec<Finding> {
    let mut out = Vec::new();
    for q in &snapshot.queues {
        out.extend(no_pollers(q));
        out.extend(single_poller(q, s));
    }
    out.extend(schedule_to_start(snapshot, s));
    out
}

fn subject(name: &str, kind: QueueKind) -> String {
    format!("task queue {name} ({} tasks)", kind.as_str())
}

fn base(check: Check, q: &QueueFacts, detail: String) -> Finding {
    let mut f = Finding::new(check, &q.namespace, subject(&q.name, q.kind), detail);
    f.task_queue = Some(q.name.clone());
    f.task_queue_type = Some(q.kind.as_str().to_string());
    f
}

/// DR301.
fn no_pollers(q: &QueueFacts) -> Option<Finding> {
    let backlog = q.backlog.filter(|b| *b > 0)?;
    if !q.pollers.is_empty() {
        return None;
    }
    let detail = format!(
        "{backlog} {} task(s) waiting, the oldest for {}, and no worker has polled this queue recently",
        q.kind.as_str(),
        human(q.backlog_age_ms)
    );
    Some(
        base(Check::BacklogWithoutPollers, q, detail)
            .with_data("backlog", backlog)
            .with_data("backlog_age_ms", q.backlog_age_ms)
            .with_data("pollers", 0)
            .with_score(q.backlog_age_ms as f64),
    )
}

/// DR302.
fn single_poller(q: &QueueFacts, s: &Settings) -> Option<Finding> {
    let [only] = q.pollers.as_slice() else {
        return None;
    };
    let seen = only.last_access_ms.map(|t| format!(", last poll {} ago", human(s.now_ms - t))).unwrap_or_default();
    let detail = format!(
        "only one worker polls this queue: identity {:?}{seen}; if it crashes or is redeployed, the queue stops",
        only.identity
    );
    Some(
        base(Check::SinglePoller, q, detail)
            .with_data("pollers", 1)
            .with_data("identity", only.identity.clone())
            .with_data("backlog", q.backlog.unwrap_or(0)),
    )
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// DR303: the 95th percentile of schedule-to-start over the window, or the age of the current
/// backlog of a queue that has pollers, above the threshold.
fn schedule_to_start(snapshot: &Snapshot, s: &Settings) -> Vec<Finding> {
    let mut samples: BTreeMap<(String, String, QueueKind), Vec<i64>> = BTreeMap::new();
    for run in &snapshot.runs {
        for l in &run.history.latencies {
            if l.scheduled_ms >= s.window_start_ms() && !l.task_queue.is_empty() {
                samples.entry((run.namespace.clone(), l.task_queue.clone(), l.kind)).or_default().push(l.latency_ms);
            }
        }
    }
    let mut current: BTreeMap<(String, String, QueueKind), &QueueFacts> = BTreeMap::new();
    for q in &snapshot.queues {
        current.insert((q.namespace.clone(), q.name.clone(), q.kind), q);
        samples.entry((q.namespace.clone(), q.name.clone(), q.kind)).or_default();
    }
    let mut out = Vec::new();
    for ((namespace, name, kind), mut values) in samples {
        values.sort_unstable();
        let p95 = percentile(&values, 95.0);
        let queue = current.get(&(namespace.clone(), name.clone(), kind));
        let waiting = queue.filter(|q| {
            !q.pollers.is_empty() && q.backlog.unwrap_or(0) > 0 && q.backlog_age_ms > s.schedule_to_start_ms
        });
        if p95 <= s.schedule_to_start_ms && waiting.is_none() {
            continue;
        }
        let mut parts = Vec::new();
        if !values.is_empty() {
            parts.push(format!(
                "schedule-to-start of {} {} task(s) since {} ago: p95 {}, median {}, max {}",
                values.len(),
                kind.as_str(),
                human(s.since_ms),
                human(p95),
                human(percentile(&values, 50.0)),
                human(values.last().copied().unwrap_or(0)),
            ));
        }
        if let Some(q) = waiting {
            parts.push(format!(
                "now {} task(s) waiting, the oldest for {}",
                q.backlog.unwrap_or(0),
                human(q.backlog_age_ms)
            ));
        }
        let detail =
            format!("{} (threshold {}); the workers cannot keep up", parts.join("; "), human(s.schedule_to_start_ms));
        let mut f = Finding::new(Check::SlowScheduleToStart, &namespace, subject(&name, kind), detail)
            .with_data("samples", values.len())
            .with_data("p95_ms", p95)
            .with_data("max_ms", values.last().copied().unwrap_or(0))
            .with_data("threshold_ms", s.schedule_to_start_ms)
            .with_score(p95.max(waiting.map_or(0, |q| q.backlog_age_ms)) as f64);
        if let Some(q) = waiting {
            f = f.with_data("backlog", q.backlog.unwrap_or(0)).with_data("backlog_age_ms", q.backlog_age_ms);
        }
        f.task_queue = Some(name);
        f.task_queue_type = Some(kind.as_str().to_string());
        out.push(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::facts::tests::Builder;
    use crate::facts::{Latency, Poller};
    use crate::finding::Severity;

    fn queue(pollers: &[&str], backlog: i64, age: i64) -> QueueFacts {
        QueueFacts {
            namespace: "default".into(),
            name: "tq".into(),
            kind: QueueKind::Workflow,
            pollers: pollers
                .iter()
                .map(|p| Poller { identity: (*p).into(), last_access_ms: Some(NOW - 2_000) })
                .collect(),
            backlog: Some(backlog),
            backlog_age_ms: age,
        }
    }

    fn settings() -> Settings {
        Settings { now_ms: NOW, ..Default::default() }
    }

    #[test]
    fn backlog_without_pollers_is_an_error() {
        let snap = Snapshot { runs: vec![], queues: vec![queue(&[], 3, 5_000)] };
        let f = check(&snap, &settings());
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].check, Check::BacklogWithoutPollers);
        assert_eq!(f[0].severity, Severity::Error);
        assert_eq!(f[0].task_queue_type.as_deref(), Some("workflow"));
        // No backlog, no pollers: nothing to say; unknown backlog: nothing either.
        assert!(check(&Snapshot { runs: vec![], queues: vec![queue(&[], 0, 0)] }, &settings()).is_empty());
        let mut unknown = queue(&[], 0, 0);
        unknown.backlog = None;
        assert!(check(&Snapshot { runs: vec![], queues: vec![unknown] }, &settings()).is_empty());
    }

    #[test]
    fn single_poller_is_a_warning_two_are_fine() {
        let f = check(&Snapshot { runs: vec![], queues: vec![queue(&["w1"], 0, 0)] }, &settings());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].check, Check::SinglePoller);
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(f[0].detail.contains("\"w1\""), "{}", f[0].detail);
        assert!(check(&Snapshot { runs: vec![], queues: vec![queue(&["w1", "w2"], 0, 0)] }, &settings()).is_empty());
    }

    #[test]
    fn slow_schedule_to_start_from_histories_and_backlog() {
        let mut r = run("slow", Builder::started(&[]).facts());
        r.history.latencies = [100, 200, 2_500]
            .iter()
            .map(|ms| Latency {
                task_queue: "tq".into(),
                kind: QueueKind::Workflow,
                scheduled_ms: NOW - 10_000,
                latency_ms: *ms,
            })
            .collect();
        let snap = Snapshot { runs: vec![r.clone()], queues: vec![queue(&["w1", "w2"], 0, 0)] };
        let f = check(&snap, &settings());
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].check, Check::SlowScheduleToStart);
        assert_eq!(f[0].data["p95_ms"], 2_500);
        // Outside the window: ignored.
        let narrow = Settings { since_ms: 5_000, ..settings() };
        assert!(check(&snap, &narrow).is_empty());
        // A current backlog older than the threshold on a polled queue.
        let waiting = Snapshot { runs: vec![], queues: vec![queue(&["w1", "w2"], 4, 3_000)] };
        let f = check(&waiting, &settings());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].data["backlog"], 4);
    }

    #[test]
    fn percentiles() {
        assert_eq!(percentile(&[], 95.0), 0);
        assert_eq!(percentile(&[1, 2, 3, 4], 50.0), 2);
        assert_eq!(percentile(&[1, 2, 3, 4], 95.0), 4);
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 95.0), 95);
    }
}
