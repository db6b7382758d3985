//! Schedules: the list, and one schedule's spec in words, next times, recent actions and running
//! workflows, with pause, unpause and trigger (POSTs with the CSRF token).

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use tonic::Request;
use uhrwerk_proto::server::workflowservice::workflow_service_server::WorkflowService;
use uhrwerk_proto::temporal::api::common::v1 as common_pb;
use uhrwerk_proto::temporal::api::schedule::v1 as schedule_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use super::actions;
use super::layout::{self, encode, time};
use super::timeline::duration;
use crate::frontend::Frontend;

pub async fn index(frontend: &Frontend, namespace: &str) -> Response {
    let listed = frontend
        .list_schedules(Request::new(pb::ListSchedulesRequest {
            namespace: namespace.to_string(),
            maximum_page_size: 200,
            ..Default::default()
        }))
        .await;
    let listed = match listed {
        Ok(r) => r.into_inner(),
        Err(status) => return layout::failed("Schedules", namespace, &status),
    };
    let body = html! {
        h1 { "Schedules" }
        @if listed.schedules.is_empty() {
            p.muted #no-schedules { "No schedules." }
        } @else {
            table #schedules {
                thead { tr { th { "Schedule ID" } th { "Workflow type" } th { "State" } th { "Spec" } th { "Next" } } }
                tbody {
                    @for s in &listed.schedules {
                        @let info = s.info.clone().unwrap_or_default();
                        tr {
                            td.id { a href={ "/namespaces/" (encode(namespace)) "/schedules/" (encode(&s.schedule_id)) } { (s.schedule_id) } }
                            td { (info.workflow_type.as_ref().map(|t| t.name.as_str()).unwrap_or_default()) }
                            td { @if info.paused { span.status.Canceled { "Paused" } } @else { span.status.Running { "Active" } } }
                            td { (spec_words(info.spec.as_ref())) }
                            td.time { (time(info.future_action_times.first())) }
                        }
                    }
                }
            }
        }
    };
    layout::page("Schedules", namespace, body)
}

pub async fn page(frontend: &Frontend, namespace: &str, schedule_id: &str, csrf: &str) -> Response {
    // Through the routing: in a cluster the schedule runs on the node serving its id.
    let described = super::routed::<_, pb::DescribeScheduleResponse>(
        frontend,
        "DescribeSchedule",
        pb::DescribeScheduleRequest { namespace: namespace.to_string(), schedule_id: schedule_id.to_string() },
    )
    .await;
    let described = match described {
        Ok(r) => r,
        Err(status) => return layout::failed("Schedule", namespace, &status),
    };
    let schedule = described.schedule.clone().unwrap_or_default();
    let info = described.info.clone().unwrap_or_default();
    let state = schedule.state.clone().unwrap_or_default();
    let action = |name: &str| format!("/namespaces/{}/schedules/{}/{name}", encode(namespace), encode(schedule_id));
    let run_link = |e: &common_pb::WorkflowExecution| {
        format!("/namespaces/{}/workflows/{}/{}", encode(namespace), encode(&e.workflow_id), encode(&e.run_id))
    };
    let body = html! {
        h1 { "Schedule " (schedule_id) }
        dl.summary #schedule-summary {
            dt { "State" } dd.state { @if state.paused { "Paused" } @else { "Active" } }
            @if !state.notes.is_empty() { dt { "Notes" } dd { (state.notes) } }
            dt { "Spec" } dd { (spec_words(schedule.spec.as_ref())) }
            dt { "Actions taken" } dd { (info.action_count) }
            @if state.limited_actions { dt { "Actions left" } dd { (state.remaining_actions) } }
            dt { "Created" } dd { (time(info.create_time.as_ref())) }
        }
        div.actions {
            @if state.paused {
                (post_form("unpause-form", &action("unpause"), csrf, "Unpause"))
            } @else {
                (post_form("pause-form", &action("pause"), csrf, "Pause"))
            }
            (post_form("trigger-form", &action("trigger"), csrf, "Trigger now"))
        }
        h2 { "Next times" }
        ul #next-times { @for t in &info.future_action_times { li { (time(Some(t))) } } }
        h2 { "Recent actions" }
        @if info.recent_actions.is_empty() {
            p.muted { "None yet." }
        } @else {
            table #recent-actions {
                thead { tr { th { "Scheduled" } th { "Started" } th { "Workflow" } } }
                tbody {
                    @for a in info.recent_actions.iter().rev() {
                        tr {
                            td.time { (time(a.schedule_time.as_ref())) }
                            td.time { (time(a.actual_time.as_ref())) }
                            td.id { @if let Some(e) = &a.start_workflow_result { a href=(run_link(e)) { (e.workflow_id) } } }
                        }
                    }
                }
            }
        }
        @if !info.running_workflows.is_empty() {
            h2 { "Running" }
            ul { @for e in &info.running_workflows { li { a href=(run_link(e)) { (e.workflow_id) } } } }
        }
    };
    layout::page(&format!("Schedule {schedule_id}"), namespace, body)
}

fn post_form(id: &str, action: &str, csrf: &str, label: &str) -> Markup {
    html! {
        form id=(id) method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            button type="submit" { (label) }
        }
    }
}

/// Pause, unpause or trigger, after the CSRF check.
pub async fn act(
    frontend: &Frontend,
    headers: &HeaderMap,
    namespace: &str,
    schedule_id: &str,
    action: &str,
    form: actions::Form,
) -> Response {
    if let Some(refused) = actions::refuse_csrf(headers, namespace, &form) {
        return refused;
    }
    let note = "from the Uhrwerk UI".to_string();
    let patch = match action {
        "pause" => schedule_pb::SchedulePatch { pause: note, ..Default::default() },
        "unpause" => schedule_pb::SchedulePatch { unpause: note, ..Default::default() },
        "trigger" => schedule_pb::SchedulePatch {
            trigger_immediately: Some(schedule_pb::TriggerImmediatelyRequest::default()),
            ..Default::default()
        },
        _ => return layout::not_found(),
    };
    let patched = super::routed::<_, pb::PatchScheduleResponse>(
        frontend,
        "PatchSchedule",
        pb::PatchScheduleRequest {
            namespace: namespace.to_string(),
            schedule_id: schedule_id.to_string(),
            patch: Some(patch),
            identity: "uhrwerk-ui".into(),
            request_id: uuid::Uuid::new_v4().to_string(),
        },
    )
    .await;
    match patched {
        Ok(_) => Redirect::to(&format!("/namespaces/{}/schedules/{}", encode(namespace), encode(schedule_id)))
            .into_response(),
        Err(status) => layout::failed("Schedule", namespace, &status),
    }
}

/// A schedule's spec in words: its intervals, calendars and cron strings, time zone and bounds.
fn spec_words(spec: Option<&schedule_pb::ScheduleSpec>) -> String {
    let Some(spec) = spec else { return String::new() };
    let mut parts = Vec::new();
    for i in &spec.interval {
        let every = i.interval.as_ref().map_or(0, |d| d.seconds * 1000 + i64::from(d.nanos) / 1_000_000);
        let phase = i.phase.as_ref().map_or(0, |d| d.seconds * 1000 + i64::from(d.nanos) / 1_000_000);
        parts.push(if phase > 0 {
            format!("every {} (offset {})", duration(every), duration(phase))
        } else {
            format!("every {}", duration(every))
        });
    }
    for c in &spec.cron_string {
        parts.push(format!("cron \"{c}\""));
    }
    for c in &spec.calendar {
        parts.push(format!(
            "at {}:{} {} on day {} of {} ({})",
            field(&c.hour, "0"),
            field(&c.minute, "0"),
            if c.second.is_empty() || c.second == "0" { String::new() } else { format!("second {}", c.second) },
            field(&c.day_of_month, "*"),
            field(&c.month, "*"),
            field(&c.day_of_week, "any weekday")
        ));
    }
    if !spec.structured_calendar.is_empty() {
        parts.push(format!("{} calendar rule(s)", spec.structured_calendar.len()));
    }
    let mut text = parts.join("; ");
    if !spec.timezone_name.is_empty() {
        text.push_str(&format!(", time zone {}", spec.timezone_name));
    }
    if let Some(j) = spec.jitter.as_ref().filter(|j| j.seconds > 0 || j.nanos > 0) {
        text.push_str(&format!(", jitter up to {}", duration(j.seconds * 1000 + i64::from(j.nanos) / 1_000_000)));
    }
    text
}

fn field(value: &str, default: &str) -> String {
    if value.is_empty() { default.to_string() } else { value.to_string() }
}
