//! History limits (DR101 hard limit ahead, DR102 over the warn limit) with the projected time to
//! termination from the run's growth rate, continue-as-new suggested but ignored (DR103), and a
//! run the server terminated at a history limit (DR104).

use super::{Settings, for_run};
use crate::facts::RunFacts;
use crate::finding::{Check, Finding};
use crate::timefmt::{bytes, human, rfc3339};

/// A run at this fraction of a hard limit is an error whatever its growth rate.
const NEAR_ERROR_FRACTION: f64 = 0.9;

/// One dimension of a history: its length in events or its size in bytes.
struct Dimension {
    name: &'static str,
    value: i64,
    warn: i64,
    error: i64,
    suggest: i64,
}

impl Dimension {
    fn show(&self, v: i64) -> String {
        if self.name == "size" { bytes(v) } else { format!("{v} events") }
    }

    /// Milliseconds until the error limit at the average growth rate since the run started.
    fn eta_ms(&self, age_ms: i64) -> Option<i64> {
        if self.error <= 0 {
            return None;
        }
        if self.value >= self.error {
            return Some(0);
        }
        if self.value <= 0 {
            return None;
        }
        let per_ms = self.value as f64 / age_ms as f64;
        Some(((self.error - self.value) as f64 / per_ms).min(i64::MAX as f64 / 2.0) as i64)
    }

    fn over_warn(&self) -> bool {
        self.warn > 0 && self.value >= self.warn
    }

    fn over_suggest(&self) -> bool {
        self.suggest > 0 && self.value >= self.suggest
    }

    fn near_error(&self) -> bool {
        self.error > 0 && self.value as f64 >= NEAR_ERROR_FRACTION * self.error as f64
    }

    fn rate(&self, age_ms: i64) -> String {
        let per_hour = self.value as f64 / age_ms as f64 * 3_600_000.0;
        if self.name == "size" { format!("{}/h", bytes(per_hour as i64)) } else { format!("{per_hour:.0} events/h") }
    }
}

/// DR101 / DR102 for an open run.
pub(super) fn limits(run: &RunFacts, s: &Settings) -> Option<Finding> {
    if !run.open {
        return None;
    }
    let l = &s.limits;
    let dims = [
        Dimension {
            name: "length",
            value: run.history_length,
            warn: l.history_count_warn(),
            error: l.history_count_error(),
            suggest: l.history_count_suggest(),
        },
        Dimension {
            name: "size",
            value: run.history_size_bytes,
            warn: l.history_size_warn(),
            error: l.history_size_error(),
            suggest: l.history_size_suggest(),
        },
    ];
    let age_ms = (s.now_ms - run.start_ms).max(1_000);
    // The dimension closest to termination among those that are a concern.
    let hard = dims
        .iter()
        .filter_map(|d| d.eta_ms(age_ms).map(|eta| (d, eta)))
        .filter(|(d, eta)| d.near_error() || (*eta <= s.horizon_ms && (d.over_warn() || d.over_suggest())))
        .min_by_key(|(_, eta)| *eta);
    if let Some((d, eta)) = hard {
        let when = if eta == 0 {
            format!("it is already at or over the error limit ({})", d.show(d.error))
        } else {
            format!(
                "growing {} since the run started {} ago, it reaches the error limit ({}) in about {} (around {})",
                d.rate(age_ms),
                human(age_ms),
                d.show(d.error),
                human(eta),
                rfc3339(s.now_ms + eta)
            )
        };
        let detail = format!(
            "history {} is {} (warn limit {}); {when}; the server then terminates the run",
            d.name,
            d.show(d.value),
            d.show(d.warn)
        );
        let f = Finding::new(Check::HistoryHardLimit, &run.namespace, run.subject(), detail)
            .with_data("history_length", run.history_length)
            .with_data("history_size_bytes", run.history_size_bytes)
            .with_data("dimension", d.name)
            .with_data("limit_error", d.error)
            .with_data("limit_warn", d.warn)
            .with_data("projected_ms_to_termination", eta)
            .with_score(-(eta as f64));
        return Some(for_run(f, run));
    }
    let over: Vec<&Dimension> = dims.iter().filter(|d| d.over_warn()).collect();
    let d = over.iter().max_by(|a, b| (a.value as f64 / a.warn as f64).total_cmp(&(b.value as f64 / b.warn as f64)))?;
    let projection = match d.eta_ms(age_ms) {
        Some(eta) => format!(
            "at its average growth ({}) it reaches the error limit ({}) in about {}",
            d.rate(age_ms),
            d.show(d.error),
            human(eta)
        ),
        None => format!("error limit {}", d.show(d.error)),
    };
    let detail = format!("history {} is {} (warn limit {}); {projection}", d.name, d.show(d.value), d.show(d.warn));
    let mut f = Finding::new(Check::HistoryWarnLimit, &run.namespace, run.subject(), detail)
        .with_data("history_length", run.history_length)
        .with_data("history_size_bytes", run.history_size_bytes)
        .with_data("dimension", d.name)
        .with_data("limit_warn", d.warn)
        .with_data("limit_error", d.error)
        .with_score(d.value as f64 / d.error.max(1) as f64);
    if let Some(eta) = d.eta_ms(age_ms) {
        f = f.with_data("projected_ms_to_termination", eta);
    }
    Some(for_run(f, run))
}

/// DR103: a run went on for `suggestion_grace_tasks` workflow tasks after the server suggested
/// continue-as-new. Open runs, and closed runs that were terminated (as a history limit does).
pub(super) fn ignored_suggestion(run: &RunFacts, s: &Settings) -> Option<Finding> {
    let sug = run.history.suggestion.as_ref()?;
    if run.history.continued_as_new || sug.tasks_completed_after < s.suggestion_grace_tasks.max(1) {
        return None;
    }
    if !run.open && run.status != "Terminated" {
        return None;
    }
    let detail = format!(
        "the server suggested continue-as-new at event {} ({} ago); the run completed {} workflow tasks since without continuing \
         and its history is now {} events, {} (suggest thresholds {} events / {})",
        sug.event_id,
        human(s.now_ms - sug.time_ms),
        sug.tasks_completed_after,
        run.history_length,
        bytes(run.history_size_bytes),
        s.limits.history_count_suggest(),
        bytes(s.limits.history_size_suggest()),
    );
    let mut f = Finding::new(Check::ContinueAsNewIgnored, &run.namespace, run.subject(), detail)
        .with_data("suggested_at_event_id", sug.event_id)
        .with_data("workflow_tasks_since", sug.tasks_completed_after)
        .with_data("history_length", run.history_length)
        .with_data("history_size_bytes", run.history_size_bytes)
        .with_score(f64::from(sug.tasks_completed_after));
    f.event_id = Some(sug.event_id);
    Some(for_run(f, run))
}

/// DR104: the server terminated the run because its history crossed an error limit, the outcome
/// the other history checks warn about. Reported for closed runs in the scan window.
pub(super) fn terminated_by_limit(run: &RunFacts, s: &Settings) -> Option<Finding> {
    let t = run.history.limit_termination.as_ref()?;
    let (value, limit) = if t.dimension == "size" {
        (bytes(run.history_size_bytes), bytes(s.limits.history_size_error()))
    } else {
        (format!("{} events", run.history_length), format!("{} events", s.limits.history_count_error()))
    };
    let detail = format!(
        "the server terminated the run at {} (history {} {value}, error limit {limit}); its remaining work did not run",
        rfc3339(t.time_ms),
        t.dimension
    );
    let mut f = Finding::new(Check::TerminatedByHistoryLimit, &run.namespace, run.subject(), detail)
        .with_data("dimension", t.dimension)
        .with_data("history_length", run.history_length)
        .with_data("history_size_bytes", run.history_size_bytes)
        .with_data("terminated_at_ms", t.time_ms)
        .with_score(t.time_ms as f64);
    f.event_id = Some(t.event_id);
    Some(for_run(f, run))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::facts::HistoryFacts;
    use crate::facts::tests::Builder;
    use crate::finding::Severity;
    use crate::limits::Source;

    fn settings(warn: i64, error: i64) -> Settings {
        let mut s = Settings { now_ms: NOW, ..Default::default() };
        s.limits.set("limit.historyCount.warn", warn, Source::Override);
        s.limits.set("limit.historyCount.error", error, Source::Override);
        s
    }

    fn sized(len: i64, age_ms: i64) -> RunFacts {
        let mut r = run("big", HistoryFacts { events: len, ..Default::default() });
        r.start_ms = NOW - age_ms;
        r
    }

    #[test]
    fn fast_growth_over_warn_is_an_error_with_a_projection() {
        // 60 events in 2 s, error at 200: about 4.7 s left.
        let f = limits(&sized(60, 2_000), &settings(50, 200)).expect("finding");
        assert_eq!(f.check, Check::HistoryHardLimit);
        assert_eq!(f.severity, Severity::Error);
        let eta = f.data["projected_ms_to_termination"].as_i64().expect("eta");
        assert!((4_600..=4_700).contains(&eta), "{eta}");
        assert!(f.detail.contains("60 events"), "{}", f.detail);
    }

    #[test]
    fn slow_growth_over_warn_is_a_warning() {
        // 60 events in 2 s, error at 10^9: years away.
        let f = limits(&sized(60, 2_000), &settings(50, 1_000_000_000)).expect("finding");
        assert_eq!(f.check, Check::HistoryWarnLimit);
        assert_eq!(f.severity, Severity::Warning);
    }

    #[test]
    fn near_the_error_limit_is_an_error_however_slow() {
        let f =
            limits(&sized(47_000, 365 * 86_400_000), &Settings { now_ms: NOW, ..Default::default() }).expect("finding");
        assert_eq!(f.check, Check::HistoryHardLimit);
    }

    #[test]
    fn over_suggest_and_fast_is_an_error_under_warn_and_slow_is_nothing() {
        let s = Settings { now_ms: NOW, ..Default::default() };
        // 5,000 events in one hour: 51,200 in about 9 more hours.
        assert_eq!(limits(&sized(5_000, 3_600_000), &s).map(|f| f.check), Some(Check::HistoryHardLimit));
        // 5,000 events in 30 days: fine.
        assert!(limits(&sized(5_000, 30 * 86_400_000), &s).is_none());
        // Young and small: fine, however fast.
        assert!(limits(&sized(100, 1_000), &s).is_none());
        let mut closed = sized(60, 2_000);
        closed.open = false;
        assert!(limits(&closed, &settings(50, 200)).is_none());
    }

    #[test]
    fn size_dimension() {
        let mut r = sized(10, 86_400_000);
        r.history_size_bytes = 11 * 1024 * 1024;
        let f = limits(&r, &Settings { now_ms: NOW, ..Default::default() }).expect("finding");
        assert_eq!(f.check, Check::HistoryWarnLimit);
        assert_eq!(f.data["dimension"], "size");
    }

    #[test]
    fn suggestion_ignored_after_grace_tasks() {
        let mut b = Builder::started(&[]);
        b.workflow_task(false);
        for _ in 0..10 {
            b.workflow_task(true);
        }
        let r = run("loop", b.facts());
        let s = Settings { now_ms: NOW, ..Default::default() };
        let f = ignored_suggestion(&r, &s).expect("finding");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.event_id, Some(6));
        assert!(ignored_suggestion(&r, &Settings { suggestion_grace_tasks: 11, ..s.clone() }).is_none());
        let mut completed = r.clone();
        completed.open = false;
        completed.status = "Completed".into();
        assert!(ignored_suggestion(&completed, &s).is_none());
        let mut continued = r;
        continued.history.continued_as_new = true;
        assert!(ignored_suggestion(&continued, &s).is_none());
    }

    #[test]
    fn a_run_terminated_at_a_history_limit_is_an_error() {
        use crate::facts::{HISTORY_COUNT_EXCEEDED, HistoryScan};
        use temporalio_protos::temporal::api::history::v1 as history_pb;
        let terminated = |reason: &str| {
            let mut scan = HistoryScan::default();
            scan.add(&history_pb::HistoryEvent {
                event_id: 61,
                attributes: Some(history_pb::history_event::Attributes::WorkflowExecutionTerminatedEventAttributes(
                    history_pb::WorkflowExecutionTerminatedEventAttributes {
                        reason: reason.into(),
                        identity: "history-service".into(),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            });
            let mut r = run("grow", scan.finish());
            r.open = false;
            r.status = "Terminated".into();
            r
        };
        let s = Settings { now_ms: NOW, ..Default::default() };
        let f = terminated_by_limit(&terminated(HISTORY_COUNT_EXCEEDED), &s).expect("finding");
        assert_eq!((f.check, f.severity, f.event_id), (Check::TerminatedByHistoryLimit, Severity::Error, Some(61)));
        assert_eq!(f.data["dimension"], "length");
        assert!(terminated_by_limit(&terminated("operator said so"), &s).is_none());
    }
}
