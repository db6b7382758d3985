//! The workloads: what each benchmark workflow does (its spec, sent as the workflow input), the
//! JSON payloads it exchanges, and the result a correct run returns.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use temporalio_protos::temporal::api::common::v1::{Payload, Payloads};

/// Name of the signal the `signal` workload waits for.
pub const SIGNAL_NAME: &str = "go";
/// Activity type of every benchmark activity (the activity returns its input).
pub const ACTIVITY_TYPE: &str = "bench-echo";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    OneActivity,
    TenActivity,
    Timer,
    Signal,
    LongHistory,
    /// Workflows that start one long timer and stay open waiting on it (not part of `all`).
    OpenTimers,
}

impl Workload {
    /// What `--workload all` runs: every workload but `open-timers`, which is long at large N.
    pub const ALL: [Workload; 5] =
        [Workload::OneActivity, Workload::TenActivity, Workload::Timer, Workload::Signal, Workload::LongHistory];
    const EVERY: [Workload; 6] = [
        Workload::OneActivity,
        Workload::TenActivity,
        Workload::Timer,
        Workload::Signal,
        Workload::LongHistory,
        Workload::OpenTimers,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::OneActivity => "one-activity",
            Workload::TenActivity => "ten-activity",
            Workload::Timer => "timer",
            Workload::Signal => "signal",
            Workload::LongHistory => "long-history",
            Workload::OpenTimers => "open-timers",
        }
    }

    pub fn parse(name: &str) -> Option<Workload> {
        Workload::EVERY.into_iter().find(|w| w.name() == name)
    }

    /// The workflow type the driver starts for this workload.
    pub fn workflow_type(self) -> String {
        format!("bench-{}", self.name())
    }

    pub fn from_workflow_type(workflow_type: &str) -> Option<Workload> {
        workflow_type.strip_prefix("bench-").and_then(Workload::parse)
    }
}

/// What a benchmark workflow does, in this order: wait for a signal, then a timer, then run
/// `activities` activities one after the other, then complete. Sent as the workflow input, so
/// the worker needs no other knowledge of the workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    pub activities: u32,
    pub timer_ms: u64,
    pub signal: bool,
}

impl Spec {
    pub fn for_workload(workload: Workload, long_history_activities: u32, timer_ms: u64) -> Spec {
        let none = Spec { activities: 0, timer_ms: 0, signal: false };
        match workload {
            Workload::OneActivity => Spec { activities: 1, ..none },
            Workload::TenActivity => Spec { activities: 10, ..none },
            Workload::Timer | Workload::OpenTimers => Spec { timer_ms, ..none },
            Workload::Signal => Spec { signal: true, ..none },
            Workload::LongHistory => Spec { activities: long_history_activities, ..none },
        }
    }

    pub fn to_payloads(self) -> Payloads {
        json_payloads(&serde_json::to_value(self).expect("spec serializes"))
    }

    pub fn from_payloads(payloads: Option<&Payloads>) -> Option<Spec> {
        serde_json::from_value(first_json(payloads)?).ok()
    }
}

/// One `json/plain` payload, as the SDKs' default converter writes it.
pub fn json_payload(value: &serde_json::Value) -> Payload {
    Payload {
        metadata: HashMap::from([("encoding".to_string(), b"json/plain".to_vec())]),
        data: serde_json::to_vec(value).expect("JSON value serializes"),
        ..Default::default()
    }
}

pub fn json_payloads(value: &serde_json::Value) -> Payloads {
    Payloads { payloads: vec![json_payload(value)] }
}

/// The first payload of `payloads` decoded as JSON.
pub fn first_json(payloads: Option<&Payloads>) -> Option<serde_json::Value> {
    serde_json::from_slice(&payloads?.payloads.first()?.data).ok()
}

/// The input of the `index`-th activity of a run (the activity echoes it back).
pub fn activity_input(index: u32) -> Payloads {
    json_payloads(&serde_json::Value::from(index))
}

/// The signal payload the driver sends to a `signal` workflow.
pub fn signal_value(workflow_id: &str) -> String {
    format!("sig-{workflow_id}")
}

/// The result a workflow returns: what it observed. The driver compares it with
/// [`expected_result`], so a wrong merge of histories or a lost event shows up as a failure.
pub fn result_value(
    workflow_type: &str,
    activities_ok: u32,
    timer_fired: bool,
    signal: Option<&str>,
) -> serde_json::Value {
    serde_json::Value::from(format!(
        "{workflow_type}|activities={activities_ok}|timer={}|signal={}",
        u8::from(timer_fired),
        signal.unwrap_or("-")
    ))
}

/// The result payload data a correct run of `workload` with `spec` returns.
pub fn expected_result(workload: Workload, spec: Spec, workflow_id: &str) -> Vec<u8> {
    let signal = spec.signal.then(|| signal_value(workflow_id));
    let value = result_value(&workload.workflow_type(), spec.activities, spec.timer_ms > 0, signal.as_deref());
    serde_json::to_vec(&value).expect("JSON value serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for w in Workload::EVERY {
            assert_eq!(Workload::parse(w.name()), Some(w));
            assert_eq!(Workload::from_workflow_type(&w.workflow_type()), Some(w));
        }
        assert_eq!(Workload::parse("all"), None);
        assert!(!Workload::ALL.contains(&Workload::OpenTimers), "`all` leaves the long open-timers run out");
        assert_eq!(Workload::from_workflow_type("one-activity"), None);
    }

    #[test]
    fn spec_round_trips_through_a_payload() {
        let spec = Spec::for_workload(Workload::LongHistory, 1000, 1000);
        assert_eq!(spec, Spec { activities: 1000, timer_ms: 0, signal: false });
        let payloads = spec.to_payloads();
        assert_eq!(payloads.payloads[0].metadata["encoding"], b"json/plain");
        assert_eq!(Spec::from_payloads(Some(&payloads)), Some(spec));
        assert_eq!(Spec::from_payloads(None), None);
        assert_eq!(Spec::from_payloads(Some(&json_payloads(&"x".into()))), None);
    }

    #[test]
    fn expected_result_names_what_the_workflow_saw() {
        let spec = Spec::for_workload(Workload::Signal, 0, 1000);
        let data = expected_result(Workload::Signal, spec, "wf-1");
        assert_eq!(data, br#""bench-signal|activities=0|timer=0|signal=sig-wf-1""#);
        let spec = Spec::for_workload(Workload::Timer, 0, 1000);
        assert_eq!(expected_result(Workload::Timer, spec, "x"), br#""bench-timer|activities=0|timer=1|signal=-""#);
    }

    #[test]
    fn open_timers_runs_start_one_long_timer() {
        let spec = Spec::for_workload(Workload::OpenTimers, 1000, 86_400_000);
        assert_eq!(spec, Spec { activities: 0, timer_ms: 86_400_000, signal: false });
        assert_eq!(Workload::from_workflow_type("bench-open-timers"), Some(Workload::OpenTimers));
    }
}
