//! Activity options seen in ActivityTaskScheduled events, per workflow type and activity type:
//! no start-to-close timeout (DR401) and retries without limit (DR402).

use std::collections::BTreeMap;

use crate::facts::{RunFacts, ScheduledActivity};
use crate::finding::{Check, Finding};
use crate::timefmt::human;

/// The scheduled event shows no start-to-close timeout of its own: missing, or the server's copy of
/// schedule-to-close (Temporal fills a missing start-to-close with schedule-to-close).
pub fn lacks_start_to_close(a: &ScheduledActivity) -> bool {
    a.start_to_close_ms <= 0 || (a.schedule_to_close_ms > 0 && a.start_to_close_ms == a.schedule_to_close_ms)
}

/// No maximum attempts and no schedule-to-close timeout: a failing activity is retried forever.
pub fn retries_forever(a: &ScheduledActivity) -> bool {
    a.maximum_attempts <= 0 && a.schedule_to_close_ms <= 0
}

#[derive(Default)]
struct Group<'a> {
    namespace: String,
    count: usize,
    runs: Vec<&'a RunFacts>,
    example: Option<(&'a RunFacts, &'a ScheduledActivity)>,
}

impl<'a> Group<'a> {
    fn add(&mut self, run: &'a RunFacts, a: &'a ScheduledActivity) {
        self.namespace.clone_from(&run.namespace);
        self.count += 1;
        if !self.runs.iter().any(|r| std::ptr::eq(*r, run)) {
            self.runs.push(run);
        }
        // Prefer an open run as the example.
        if self.example.is_none_or(|(r, _)| !r.open && run.open) {
            self.example = Some((run, a));
        }
    }
}

type Key = (String, String, String);

pub(super) fn check(runs: &[RunFacts]) -> Vec<Finding> {
    let mut no_timeout: BTreeMap<Key, Group> = BTreeMap::new();
    let mut forever: BTreeMap<Key, Group> = BTreeMap::new();
    for run in runs {
        for a in &run.history.activities {
            let key = (run.namespace.clone(), run.workflow_type.clone(), a.activity_type.clone());
            if lacks_start_to_close(a) {
                no_timeout.entry(key.clone()).or_default().add(run, a);
            }
            if retries_forever(a) {
                forever.entry(key).or_default().add(run, a);
            }
        }
    }
    let mut out = Vec::new();
    for ((_, workflow_type, activity_type), g) in no_timeout {
        let Some((run, a)) = g.example else { continue };
        let how = if a.start_to_close_ms <= 0 {
            "without a start-to-close timeout".to_string()
        } else {
            format!(
                "with start-to-close equal to schedule-to-close ({}), i.e. without a start-to-close timeout of its own: one hung attempt uses the whole budget and is never retried",
                human(a.start_to_close_ms)
            )
        };
        let detail = format!(
            "{} activity task(s) of type {activity_type} in {} run(s) were scheduled {how}; e.g. event {} of {}",
            g.count,
            g.runs.len(),
            a.event_id,
            run.subject()
        );
        out.push(finding(
            Check::NoStartToCloseTimeout,
            &g.namespace,
            &workflow_type,
            &activity_type,
            detail,
            g.count,
            run,
            a,
        ));
    }
    for ((_, workflow_type, activity_type), g) in forever {
        let Some((run, a)) = g.example else { continue };
        // The highest attempt of a pending activity of this type, if one is retrying right now.
        let retrying = g
            .runs
            .iter()
            .flat_map(|r| r.pending_activities.iter().map(move |p| (r, p)))
            .filter(|(_, p)| p.activity_type == activity_type && p.attempt > 1 && p.maximum_attempts <= 0)
            .max_by_key(|(_, p)| p.attempt);
        let now = retrying
            .map(|(r, p)| format!("; it is at attempt {} right now in {}", p.attempt, r.subject()))
            .unwrap_or_default();
        let detail = format!(
            "{} activity task(s) of type {activity_type} in {} run(s) were scheduled with no maximum attempts and no schedule-to-close timeout, \
             so a failing activity is retried forever; e.g. event {} of {}{now}",
            g.count,
            g.runs.len(),
            a.event_id,
            run.subject()
        );
        let mut f =
            finding(Check::UnlimitedRetries, &g.namespace, &workflow_type, &activity_type, detail, g.count, run, a);
        if let Some((_, p)) = retrying {
            f = f.with_data("current_attempt", p.attempt).with_score(g.count as f64 + f64::from(p.attempt) * 1e3);
        }
        out.push(f);
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn finding(
    check: Check,
    namespace: &str,
    workflow_type: &str,
    activity_type: &str,
    detail: String,
    count: usize,
    run: &RunFacts,
    a: &ScheduledActivity,
) -> Finding {
    let mut f =
        Finding::new(check, namespace, format!("activity {activity_type} in workflow type {workflow_type}"), detail)
            .with_data("activity_tasks", count)
            .with_data("start_to_close_ms", a.start_to_close_ms)
            .with_data("schedule_to_close_ms", a.schedule_to_close_ms)
            .with_data("maximum_attempts", a.maximum_attempts)
            .with_score(count as f64);
    f.workflow_type = Some(workflow_type.to_string());
    f.activity_type = Some(activity_type.to_string());
    f.workflow_id = Some(run.workflow_id.clone());
    f.run_id = Some(run.run_id.clone());
    f.task_queue = Some(a.task_queue.clone());
    f.event_id = Some(a.event_id);
    f
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::facts::PendingActivity;
    use crate::facts::tests::Builder;
    use crate::finding::Severity;

    #[test]
    fn timeouts_and_retries() {
        let mut b = Builder::started(&[]);
        b.workflow_task(false);
        b.activity("good", 30_000, 0, 5, &[]);
        b.activity("bounded_by_schedule_to_close", 30_000, 600_000, 0, &[]);
        b.activity("only_schedule_to_close", 600_000, 600_000, 3, &[]);
        b.activity("forever", 30_000, 0, 0, &[]);
        b.activity("forever", 30_000, 0, 0, &[]);
        let mut r = run("acts", b.facts());
        r.pending_activities.push(PendingActivity {
            activity_type: "forever".into(),
            attempt: 17,
            maximum_attempts: 0,
        });
        let f = check(&[r]);
        let got: Vec<_> = f.iter().map(|f| (f.code, f.activity_type.as_deref().unwrap_or(""), f.severity)).collect();
        assert_eq!(
            got,
            [("DR401", "only_schedule_to_close", Severity::Warning), ("DR402", "forever", Severity::Warning)]
        );
        assert_eq!(f[1].data["activity_tasks"], 2);
        assert_eq!(f[1].data["current_attempt"], 17);
        assert!(f[1].detail.contains("attempt 17"), "{}", f[1].detail);
    }
}
