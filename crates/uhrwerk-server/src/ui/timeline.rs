//! A run's timeline: one bar per activity, timer and child workflow, from when it was scheduled
//! (started, initiated) to its outcome, drawn as SVG against the run's own time.

use maud::{Markup, html};
use uhrwerk_proto::temporal::api::history::v1::{self as history_pb, history_event::Attributes};

use super::layout::millis;

/// Bars drawn at most; a note says how many more there were.
const MAX_BARS: usize = 300;
const WIDTH: f64 = 1000.0;
const LABEL: f64 = 240.0;
const ROW: f64 = 20.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// `activity`, `timer` or `child`.
    pub kind: &'static str,
    pub label: String,
    pub start_ms: i64,
    /// None while it is pending.
    pub end_ms: Option<i64>,
    /// `completed`, `failed`, `timed-out`, `canceled`, `fired` or `pending`.
    pub outcome: &'static str,
    /// The event that began it, to match outcomes to it.
    pub key: i64,
}

/// The bars of `events` (in history order).
pub fn bars(events: &[history_pb::HistoryEvent]) -> Vec<Bar> {
    let mut bars: Vec<Bar> = Vec::new();
    let finish = |bars: &mut Vec<Bar>, kind: &str, key: i64, at: i64, outcome: &'static str| {
        if let Some(b) = bars.iter_mut().rev().find(|b| b.kind == kind && b.key == key && b.end_ms.is_none()) {
            b.end_ms = Some(at);
            b.outcome = outcome;
        }
    };
    // Timer ids name timers; outcomes point at the TimerStarted event through them.
    let mut timers: Vec<(String, i64)> = Vec::new();
    for e in events {
        let at = e.event_time.as_ref().map(millis).unwrap_or_default();
        let begin = |kind: &'static str, label: String| Bar {
            kind,
            label,
            start_ms: at,
            end_ms: None,
            outcome: "pending",
            key: e.event_id,
        };
        match &e.attributes {
            Some(Attributes::ActivityTaskScheduledEventAttributes(a)) => {
                let name = a.activity_type.as_ref().map(|t| t.name.as_str()).unwrap_or_default();
                bars.push(begin("activity", format!("{name} #{}", a.activity_id)));
            }
            Some(Attributes::ActivityTaskCompletedEventAttributes(a)) => {
                finish(&mut bars, "activity", a.scheduled_event_id, at, "completed")
            }
            Some(Attributes::ActivityTaskFailedEventAttributes(a)) => {
                finish(&mut bars, "activity", a.scheduled_event_id, at, "failed")
            }
            Some(Attributes::ActivityTaskTimedOutEventAttributes(a)) => {
                finish(&mut bars, "activity", a.scheduled_event_id, at, "timed-out")
            }
            Some(Attributes::ActivityTaskCanceledEventAttributes(a)) => {
                finish(&mut bars, "activity", a.scheduled_event_id, at, "canceled")
            }
            Some(Attributes::TimerStartedEventAttributes(a)) => {
                timers.push((a.timer_id.clone(), e.event_id));
                bars.push(begin("timer", format!("timer {}", a.timer_id)));
            }
            Some(Attributes::TimerFiredEventAttributes(a)) => {
                if let Some((_, key)) = timers.iter().rev().find(|(id, _)| *id == a.timer_id) {
                    finish(&mut bars, "timer", *key, at, "fired");
                }
            }
            Some(Attributes::TimerCanceledEventAttributes(a)) => {
                if let Some((_, key)) = timers.iter().rev().find(|(id, _)| *id == a.timer_id) {
                    finish(&mut bars, "timer", *key, at, "canceled");
                }
            }
            Some(Attributes::StartChildWorkflowExecutionInitiatedEventAttributes(a)) => {
                let name = a.workflow_type.as_ref().map(|t| t.name.as_str()).unwrap_or_default();
                bars.push(begin("child", format!("{name} {}", a.workflow_id)));
            }
            Some(Attributes::StartChildWorkflowExecutionFailedEventAttributes(a)) => {
                finish(&mut bars, "child", a.initiated_event_id, at, "failed")
            }
            Some(Attributes::ChildWorkflowExecutionCompletedEventAttributes(a)) => {
                finish(&mut bars, "child", a.initiated_event_id, at, "completed")
            }
            Some(Attributes::ChildWorkflowExecutionFailedEventAttributes(a)) => {
                finish(&mut bars, "child", a.initiated_event_id, at, "failed")
            }
            Some(Attributes::ChildWorkflowExecutionTimedOutEventAttributes(a)) => {
                finish(&mut bars, "child", a.initiated_event_id, at, "timed-out")
            }
            Some(Attributes::ChildWorkflowExecutionCanceledEventAttributes(a)) => {
                finish(&mut bars, "child", a.initiated_event_id, at, "canceled")
            }
            Some(Attributes::ChildWorkflowExecutionTerminatedEventAttributes(a)) => {
                finish(&mut bars, "child", a.initiated_event_id, at, "failed")
            }
            _ => {}
        }
    }
    bars
}

/// The timeline from `start_ms` to `end_ms` (the run's close, or now).
pub fn svg(bars: &[Bar], start_ms: i64, end_ms: i64) -> Markup {
    let span = (end_ms - start_ms).max(1) as f64;
    let x = |t: i64| LABEL + (t - start_ms).clamp(0, end_ms - start_ms) as f64 / span * (WIDTH - LABEL - 10.0);
    let shown = &bars[..bars.len().min(MAX_BARS)];
    let height = ROW * shown.len() as f64 + 24.0;
    html! {
        @if bars.is_empty() {
            p.muted { "No activities, timers or child workflows." }
        } @else {
            svg #timeline xmlns="http://www.w3.org/2000/svg" width=(WIDTH) height=(height) viewBox={ "0 0 " (WIDTH) " " (height) } role="img" aria-label="timeline" {
                line x1=(LABEL) y1="0" x2=(LABEL) y2=(height - 20.0) stroke="#c9ced8" {}
                @for (i, b) in shown.iter().enumerate() {
                    @let y = ROW * i as f64 + 3.0;
                    @let x0 = x(b.start_ms);
                    @let x1 = x(b.end_ms.unwrap_or(end_ms)).max(x0 + 2.0);
                    text x="4" y=(y + 12.0) font-size="11" class="label" { (truncate(&b.label, 38)) }
                    rect class={ "bar " (b.kind) " " (b.outcome) } x=(format!("{x0:.1}")) y=(y) width=(format!("{:.1}", x1 - x0)) height=(ROW - 6.0) rx="2" {
                        title { (b.label) ": " (b.outcome) ", " (duration(b.end_ms.unwrap_or(end_ms) - b.start_ms)) }
                    }
                }
                text x=(LABEL) y=(height - 6.0) font-size="11" class="axis" { "0" }
                text x=(WIDTH - 10.0) y=(height - 6.0) font-size="11" text-anchor="end" class="axis" { (duration(end_ms - start_ms)) }
            }
            @if bars.len() > MAX_BARS {
                p.muted { "The first " (MAX_BARS) " of " (bars.len()) " bars are drawn." }
            }
        }
    }
}

/// The history's growth: events (and bytes, as the events' encoded sizes add up) against time
/// since the run started, as an SVG line; where a run heads for the limits shows as a slope.
pub fn growth(events: &[history_pb::HistoryEvent], start_ms: i64, end_ms: i64, limits: [i64; 3]) -> Markup {
    const W: f64 = 1000.0;
    const H: f64 = 160.0;
    const PAD: f64 = 40.0;
    let span = (end_ms - start_ms).max(1) as f64;
    let total = events.len().max(1) as f64;
    // The limit lines that fit on the chart (those within twice the events so far).
    let top = limits
        .iter()
        .copied()
        .filter(|l| *l > 0 && (*l as f64) <= total * 2.0)
        .max()
        .map_or(total, |l| l as f64)
        .max(total);
    let x = |t: i64| PAD + (t - start_ms).clamp(0, end_ms - start_ms) as f64 / span * (W - PAD - 10.0);
    let y = |n: f64| H - 20.0 - n / top * (H - 30.0);
    let points: String = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            format!("{:.1},{:.1}", x(e.event_time.as_ref().map(millis).unwrap_or(start_ms)), y((i + 1) as f64))
        })
        .collect::<Vec<_>>()
        .join(" ");
    let names = ["suggest continue-as-new", "warn", "error"];
    html! {
        svg #growth xmlns="http://www.w3.org/2000/svg" width=(W) height=(H) viewBox={ "0 0 " (W) " " (H) } role="img" aria-label="history growth" {
            @for (limit, name) in limits.iter().zip(names) {
                @if *limit > 0 && (*limit as f64) <= top {
                    line class="limit" x1=(PAD) x2=(W - 10.0) y1=(format!("{:.1}", y(*limit as f64))) y2=(format!("{:.1}", y(*limit as f64))) {}
                    text class="axis" x=(W - 12.0) y=(format!("{:.1}", y(*limit as f64) - 3.0)) font-size="11" text-anchor="end" { (name) " " (limit) }
                }
            }
            polyline class="growth" fill="none" points=(points) {}
            text class="axis" x="4" y=(format!("{:.1}", y(total) + 4.0)) font-size="11" { (events.len()) }
            text class="axis" x=(PAD) y=(H - 4.0) font-size="11" { "0" }
            text class="axis" x=(W - 10.0) y=(H - 4.0) font-size="11" text-anchor="end" { (duration(end_ms - start_ms)) }
        }
    }
}

/// The compact view of the history: one row per activity, timer and child, with its outcome.
pub fn compact(bars: &[Bar], start_ms: i64, end_ms: i64) -> Markup {
    html! {
        @if !bars.is_empty() {
            table #compact {
                thead { tr { th { "Kind" } th { "What" } th { "From start" } th { "Took" } th { "Outcome" } } }
                tbody {
                    @for b in bars.iter().take(MAX_BARS) {
                        tr class={ "compact " (b.kind) } {
                            td { (b.kind) }
                            td.id { (b.label) }
                            td.num { (duration(b.start_ms - start_ms)) }
                            td.num { (duration(b.end_ms.unwrap_or(end_ms) - b.start_ms)) @if b.end_ms.is_none() { " so far" } }
                            td { span class={ "outcome " (b.outcome) } { (b.outcome) } }
                        }
                    }
                }
            }
        }
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max { text.to_string() } else { text.chars().take(max - 1).collect::<String>() + "…" }
}

/// A duration in the largest sensible unit.
pub fn duration(ms: i64) -> String {
    match ms {
        ms if ms < 1_000 => format!("{ms} ms"),
        ms if ms < 60_000 => format!("{:.1} s", ms as f64 / 1_000.0),
        ms if ms < 3_600_000 => format!("{:.1} min", ms as f64 / 60_000.0),
        ms if ms < 86_400_000 => format!("{:.1} h", ms as f64 / 3_600_000.0),
        ms => format!("{:.1} d", ms as f64 / 86_400_000.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uhrwerk_proto::temporal::api::common::v1 as common_pb;

    fn event(id: i64, ms: i64, attributes: Attributes) -> history_pb::HistoryEvent {
        history_pb::HistoryEvent {
            event_id: id,
            event_time: Some(uhrwerk_proto::wkt::Timestamp {
                seconds: ms / 1000,
                nanos: (ms % 1000) as i32 * 1_000_000,
            }),
            attributes: Some(attributes),
            ..Default::default()
        }
    }

    #[test]
    fn bars_follow_their_outcomes() {
        let events = vec![
            event(
                5,
                1_000,
                Attributes::ActivityTaskScheduledEventAttributes(history_pb::ActivityTaskScheduledEventAttributes {
                    activity_id: "1".into(),
                    activity_type: Some(common_pb::ActivityType { name: "charge".into() }),
                    ..Default::default()
                }),
            ),
            event(
                6,
                1_000,
                Attributes::TimerStartedEventAttributes(history_pb::TimerStartedEventAttributes {
                    timer_id: "t".into(),
                    ..Default::default()
                }),
            ),
            event(
                8,
                3_000,
                Attributes::ActivityTaskFailedEventAttributes(history_pb::ActivityTaskFailedEventAttributes {
                    scheduled_event_id: 5,
                    ..Default::default()
                }),
            ),
        ];
        let bars = bars(&events);
        assert_eq!(bars.len(), 2);
        assert_eq!((bars[0].label.as_str(), bars[0].end_ms, bars[0].outcome), ("charge #1", Some(3_000), "failed"));
        assert_eq!((bars[1].kind, bars[1].end_ms, bars[1].outcome), ("timer", None, "pending"));
        let svg = svg(&bars, 0, 4_000).into_string();
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("bar activity failed"));
    }
}
