//! The doctor's checks: pure functions from [`Snapshot`] (plain facts) and [`Settings`] to
//! findings, worst first. One module per family: history limits, determinism, task queues,
//! activity options, inputs and payloads.

mod activities;
mod determinism;
mod history;
mod payloads;
mod queues;

use crate::facts::{QueueFacts, RunFacts};
use crate::finding::{Check, Finding, sort_worst_first};
use crate::limits::Limits;

/// What the scan collected.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub runs: Vec<RunFacts>,
    pub queues: Vec<QueueFacts>,
}

/// Thresholds and the clock for one analysis.
#[derive(Clone, Debug)]
pub struct Settings {
    pub limits: Limits,
    pub now_ms: i64,
    /// Length of the look-back window (`--since`).
    pub since_ms: i64,
    /// A run projected to reach a hard limit within this time is an error (`--horizon`).
    pub horizon_ms: i64,
    /// Workflow tasks a run may complete after continue-as-new was suggested.
    pub suggestion_grace_tasks: u32,
    /// Schedule-to-start threshold (13.5: 1 s).
    pub schedule_to_start_ms: i64,
    /// Largest payload size considered small (13.3: < 1 KB).
    pub payload_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            limits: Limits::default(),
            now_ms: 0,
            since_ms: 24 * 3_600_000,
            horizon_ms: 24 * 3_600_000,
            suggestion_grace_tasks: 10,
            schedule_to_start_ms: 1_000,
            payload_bytes: 1024,
        }
    }
}

impl Settings {
    /// Start of the look-back window.
    pub fn window_start_ms(&self) -> i64 {
        self.now_ms - self.since_ms
    }
}

/// All findings, worst first, without those of ignored checks.
pub fn analyze(snapshot: &Snapshot, settings: &Settings, ignore: &[Check]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for run in &snapshot.runs {
        findings.extend(history::limits(run, settings));
        findings.extend(history::ignored_suggestion(run, settings));
        findings.extend(history::terminated_by_limit(run, settings));
        findings.extend(determinism::nondeterminism(run, settings));
        findings.extend(determinism::failing_workflow_task(run));
    }
    findings.extend(queues::check(snapshot, settings));
    findings.extend(activities::check(&snapshot.runs));
    findings.extend(payloads::positional_inputs(&snapshot.runs));
    findings.extend(payloads::large_payloads(&snapshot.runs, settings));
    findings.retain(|f| !ignore.contains(&f.check));
    sort_worst_first(&mut findings);
    findings
}

/// The finding's run fields.
fn for_run(mut f: Finding, run: &RunFacts) -> Finding {
    f.workflow_type = Some(run.workflow_type.clone());
    f.workflow_id = Some(run.workflow_id.clone());
    f.run_id = Some(run.run_id.clone());
    f.task_queue = Some(run.task_queue.clone()).filter(|q| !q.is_empty());
    f
}

#[cfg(test)]
pub(crate) mod test_support {
    use crate::facts::{HistoryFacts, RunFacts};

    pub const NOW: i64 = 10_000_000;

    pub fn run(id: &str, history: HistoryFacts) -> RunFacts {
        RunFacts {
            namespace: "default".into(),
            workflow_id: id.into(),
            run_id: format!("{id}-run"),
            workflow_type: "Wf".into(),
            task_queue: "tq".into(),
            open: true,
            status: "Running".into(),
            start_ms: NOW - 60_000,
            history_length: history.events,
            history,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use crate::facts::tests::Builder;
    use crate::facts::{Poller, QueueKind};

    fn clean_snapshot() -> Snapshot {
        let mut b = Builder::started(&[40]);
        b.workflow_task(false);
        let a = b.activity("charge", 30_000, 0, 5, &[40]);
        b.start_activity(a, 1);
        b.complete_activity(a, &[40]);
        b.workflow_task(false);
        let mut r = run("clean", b.facts());
        r.start_ms = NOW - 20_000;
        let queues = [("tq", QueueKind::Workflow), ("tq-act", QueueKind::Activity)]
            .into_iter()
            .map(|(name, kind)| QueueFacts {
                namespace: "default".into(),
                name: name.into(),
                kind,
                pollers: vec![
                    Poller { identity: "w1".into(), last_access_ms: Some(NOW) },
                    Poller { identity: "w2".into(), last_access_ms: Some(NOW) },
                ],
                backlog: Some(0),
                backlog_age_ms: 0,
            })
            .collect();
        Snapshot { runs: vec![r], queues }
    }

    #[test]
    fn a_clean_workload_has_no_findings() {
        let settings = Settings { now_ms: NOW, ..Default::default() };
        let findings = analyze(&clean_snapshot(), &settings, &[]);
        assert!(findings.is_empty(), "{findings:#?}");
    }

    #[test]
    fn ignored_checks_are_dropped() {
        let mut snap = clean_snapshot();
        snap.queues[0].pollers.pop();
        let settings = Settings { now_ms: NOW, ..Default::default() };
        assert_eq!(analyze(&snap, &settings, &[]).len(), 1);
        assert!(analyze(&snap, &settings, &[Check::SinglePoller]).is_empty());
    }
}
