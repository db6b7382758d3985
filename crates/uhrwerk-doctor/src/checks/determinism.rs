//! Workflow task failures: non-determinism errors (DR201) in the look-back window or still
//! blocking an open run, and workflow tasks that keep failing for other reasons (DR202).

use super::{Settings, for_run};
use crate::facts::RunFacts;
use crate::finding::{Check, Finding};
use crate::timefmt::human;

/// Attempts after which a failing workflow task is reported (DR202).
pub const FAILING_ATTEMPTS: i64 = 3;

/// DR201: one finding per run with non-determinism failures since the window start, or whose
/// latest workflow task failed with one (the run is stuck until the code replays again).
pub(super) fn nondeterminism(run: &RunFacts, s: &Settings) -> Option<Finding> {
    let failures = &run.history.workflow_task_failures;
    let stuck =
        run.open && run.history.last_outcome_failure.is_some_and(|i| failures.get(i).is_some_and(|f| f.nondeterminism));
    let recent: Vec<_> =
        failures.iter().filter(|f| f.nondeterminism && (f.time_ms >= s.window_start_ms() || stuck)).collect();
    let last = recent.last()?;
    let state = if stuck {
        "the run is stuck: every new workflow task replays into the same error until the deployed code matches the history again"
    } else {
        "the run has progressed since"
    };
    let detail = format!(
        "workflow type {}: workflow task failed with a non-determinism error at event {} ({} ago; {} such failure(s) in this run): {}; {state}",
        run.workflow_type,
        last.event_id,
        human(s.now_ms - last.time_ms),
        recent.len(),
        if last.message.is_empty() { last.cause.as_str() } else { last.message.as_str() },
    );
    let mut f = Finding::new(Check::NonDeterminism, &run.namespace, run.subject(), detail)
        .with_data("failing_event_id", last.event_id)
        .with_data("failures", recent.len())
        .with_data("cause", last.cause.clone())
        .with_data("message", last.message.clone())
        .with_data("stuck", stuck)
        .with_score(if stuck { 1.0 } else { 0.0 } + recent.len() as f64 / 1e6);
    f.event_id = Some(last.event_id);
    Some(for_run(f, run))
}

/// DR202: an open run whose workflow task failed (not from non-determinism) on its last
/// [`FAILING_ATTEMPTS`] attempts or more.
pub(super) fn failing_workflow_task(run: &RunFacts) -> Option<Finding> {
    if !run.open {
        return None;
    }
    let last = run.history.last_outcome_failure.and_then(|i| run.history.workflow_task_failures.get(i))?;
    if last.nondeterminism {
        return None;
    }
    let attempts = i64::from(run.pending_workflow_task_attempt).max(i64::from(run.history.failures_since_completion));
    if attempts < FAILING_ATTEMPTS {
        return None;
    }
    let detail = format!(
        "workflow type {}: the workflow task has failed {} times in a row (attempt {}), last at event {}: {} ({}); the run makes no progress",
        run.workflow_type,
        run.history.failures_since_completion.max(1),
        attempts,
        last.event_id,
        if last.message.is_empty() { "no message" } else { last.message.as_str() },
        last.cause,
    );
    let mut f = Finding::new(Check::WorkflowTaskFailing, &run.namespace, run.subject(), detail)
        .with_data("attempt", attempts)
        .with_data("failing_event_id", last.event_id)
        .with_data("cause", last.cause.clone())
        .with_data("message", last.message.clone())
        .with_score(attempts as f64);
    f.event_id = Some(last.event_id);
    Some(for_run(f, run))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::facts::tests::Builder;
    use crate::finding::Severity;
    use temporalio_protos::temporal::api::enums::v1::WorkflowTaskFailedCause as Cause;

    fn failing(cause: Cause, message: &str, times: usize) -> RunFacts {
        let mut b = Builder::started(&[]);
        b.workflow_task(false);
        for attempt in 1..=times {
            let s = b.schedule_workflow_task(attempt as i32);
            b.start_workflow_task(s, false);
            b.fail_workflow_task(cause, message);
        }
        let mut r = run("nde", b.facts());
        r.start_ms = 1_000_000;
        r
    }

    #[test]
    fn stuck_nondeterminism_is_an_error() {
        let r = failing(Cause::NonDeterministicError, "[TMPRL1100] Nondeterminism error: Activity type mismatch", 2);
        let s = Settings { now_ms: NOW, ..Default::default() };
        let f = nondeterminism(&r, &s).expect("finding");
        assert_eq!(f.severity, Severity::Error);
        assert_eq!(f.event_id, Some(10));
        assert_eq!(f.data["stuck"], true);
        assert!(f.detail.contains("Activity type mismatch"));
        assert!(failing_workflow_task(&r).is_none(), "non-determinism is DR201's");
    }

    #[test]
    fn recovered_nondeterminism_counts_only_inside_the_window() {
        let mut r = failing(Cause::NonDeterministicError, "boom", 1);
        r.history.last_outcome_failure = None;
        let s = Settings { now_ms: NOW, ..Default::default() };
        assert_eq!(nondeterminism(&r, &s).expect("in window").data["stuck"], false);
        let narrow = Settings { now_ms: NOW, since_ms: 1_000, ..Default::default() };
        assert!(nondeterminism(&r, &narrow).is_none());
    }

    #[test]
    fn repeated_other_failures_are_a_warning() {
        let r = failing(Cause::WorkflowWorkerUnhandledFailure, "ZeroDivisionError: division by zero", 3);
        let f = failing_workflow_task(&r).expect("finding");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.data["attempt"], 3);
        let once = failing(Cause::WorkflowWorkerUnhandledFailure, "x", 1);
        assert!(failing_workflow_task(&once).is_none());
        let mut described = once;
        described.pending_workflow_task_attempt = 5;
        assert_eq!(failing_workflow_task(&described).expect("finding").data["attempt"], 5);
    }
}
