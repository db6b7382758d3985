//! Inputs and payloads: several positional input payloads instead of one input object (DR501,
//! 13.1), and payloads over the small-state threshold in a workflow type's histories (DR601, 13.3).

use std::collections::BTreeMap;

use super::Settings;
use crate::facts::RunFacts;
use crate::finding::{Check, Finding};
use crate::timefmt::bytes;

/// (namespace, workflow type, activity type or "") -> (max payloads, runs, example run, event id).
type InputGroups<'a> = BTreeMap<(String, String, String), (usize, usize, &'a RunFacts, i64)>;

/// DR501, per workflow type (its input) and per activity type in a workflow type.
pub(super) fn positional_inputs(runs: &[RunFacts]) -> Vec<Finding> {
    let mut groups: InputGroups = BTreeMap::new();
    for run in runs {
        if run.history.input_payloads > 1 {
            let key = (run.namespace.clone(), run.workflow_type.clone(), String::new());
            let e = groups.entry(key).or_insert((0, 0, run, 1));
            e.1 += 1;
            if run.history.input_payloads > e.0 {
                *e = (run.history.input_payloads, e.1, run, 1);
            }
        }
        let mut seen_types: Vec<&str> = Vec::new();
        for a in run.history.activities.iter().filter(|a| a.input_payloads > 1) {
            let key = (run.namespace.clone(), run.workflow_type.clone(), a.activity_type.clone());
            let e = groups.entry(key).or_insert((0, 0, run, a.event_id));
            if !seen_types.contains(&a.activity_type.as_str()) {
                e.1 += 1;
                seen_types.push(&a.activity_type);
            }
            if a.input_payloads > e.0 {
                *e = (a.input_payloads, e.1, run, a.event_id);
            }
        }
    }
    groups
        .into_iter()
        .map(|((namespace, workflow_type, activity_type), (max, count, run, event_id))| {
            let (subject, what) = if activity_type.is_empty() {
                (
                    format!("workflow type {workflow_type}"),
                    format!("{count} run(s) of workflow type {workflow_type} were started"),
                )
            } else {
                (
                    format!("activity {activity_type} in workflow type {workflow_type}"),
                    format!(
                        "activity {activity_type} was scheduled in {count} run(s) of workflow type {workflow_type}"
                    ),
                )
            };
            let detail = format!(
                "{what} with up to {max} positional input payloads; e.g. event {event_id} of {}",
                run.subject()
            );
            let mut f = Finding::new(Check::PositionalInputs, &namespace, subject, detail)
                .with_data("input_payloads", max)
                .with_data("runs", count)
                .with_score(max as f64);
            f.workflow_type = Some(workflow_type);
            f.activity_type = Some(activity_type).filter(|a| !a.is_empty());
            f.workflow_id = Some(run.workflow_id.clone());
            f.run_id = Some(run.run_id.clone());
            f.event_id = Some(event_id);
            f
        })
        .collect()
}

/// DR601, per workflow type: the largest payload over `payload_bytes` in its runs' histories.
pub(super) fn large_payloads(runs: &[RunFacts], s: &Settings) -> Vec<Finding> {
    let mut scanned: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut worst: BTreeMap<(String, String), (usize, &RunFacts)> = BTreeMap::new();
    for run in runs {
        let key = (run.namespace.clone(), run.workflow_type.clone());
        *scanned.entry(key.clone()).or_default() += 1;
        let Some(p) = &run.history.largest_payload else {
            continue;
        };
        if p.bytes <= s.payload_bytes {
            continue;
        }
        let e = worst.entry(key).or_insert((0, run));
        e.0 += 1;
        if e.1.history.largest_payload.as_ref().is_none_or(|w| p.bytes > w.bytes) {
            e.1 = run;
        }
    }
    let mut out = Vec::new();
    for ((namespace, workflow_type), (count, run)) in worst {
        let Some(p) = &run.history.largest_payload else {
            continue;
        };
        let total = scanned.get(&(namespace.clone(), workflow_type.clone())).copied().unwrap_or(count);
        let blob_warn = s.limits.blob_size_warn();
        let over_blob = if blob_warn > 0 && p.bytes as i64 >= blob_warn {
            format!(" (over limit.blobSize.warn, {})", bytes(blob_warn))
        } else {
            String::new()
        };
        let detail = format!(
            "largest payload {}{over_blob}: {} at event {} of {}; {count} of {total} scanned run(s) of workflow type {workflow_type} carry payloads over {}",
            bytes(p.bytes as i64),
            p.what,
            p.event_id,
            run.subject(),
            bytes(s.payload_bytes as i64),
        );
        let mut f = Finding::new(Check::LargePayloads, &namespace, format!("workflow type {workflow_type}"), detail)
            .with_data("largest_payload_bytes", p.bytes)
            .with_data("threshold_bytes", s.payload_bytes)
            .with_data("runs_over", count)
            .with_data("runs_scanned", total)
            .with_score(p.bytes as f64);
        f.workflow_type = Some(workflow_type);
        f.workflow_id = Some(run.workflow_id.clone());
        f.run_id = Some(run.run_id.clone());
        f.event_id = Some(p.event_id);
        out.push(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::facts::tests::Builder;
    use crate::finding::Severity;

    #[test]
    fn positional_inputs_per_workflow_and_activity_type() {
        let mut b = Builder::started(&[5, 5, 5]);
        b.workflow_task(false);
        b.activity("two_args", 1_000, 0, 3, &[1, 1]);
        b.activity("one_arg", 1_000, 0, 3, &[1]);
        let single = run("single", Builder::started(&[5]).facts());
        let f = positional_inputs(&[run("multi", b.facts()), single]);
        assert_eq!(f.len(), 2, "{f:#?}");
        assert!(f.iter().all(|f| f.severity == Severity::Info && f.code == "DR501"));
        assert_eq!(f[0].subject, "workflow type Wf");
        assert_eq!(f[0].data["input_payloads"], 3);
        assert_eq!(f[1].subject, "activity two_args in workflow type Wf");
    }

    #[test]
    fn large_payloads_per_workflow_type() {
        let mut b = Builder::started(&[100]);
        b.workflow_task(false);
        let a = b.activity("fetch", 1_000, 0, 3, &[10]);
        b.complete_activity(a, &[4096]);
        let big = run("big", b.facts());
        let small = run("small", Builder::started(&[100]).facts());
        let s = Settings { now_ms: NOW, ..Default::default() };
        let f = large_payloads(&[big, small.clone()], &s);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(f[0].data["largest_payload_bytes"], 4096);
        assert_eq!(f[0].data["runs_scanned"], 2);
        assert!(f[0].detail.contains("ActivityTaskCompleted result (activity fetch)"), "{}", f[0].detail);
        assert!(large_payloads(&[small], &s).is_empty());
    }
}
