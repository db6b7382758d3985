//! The UI's page shell, styles, the little script, and formatting shared by the pages.

use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;

pub const CSS: &str = r#"
:root { --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --bg: #f8f9fb; --accent: #3a5bd9; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 1.5rem; align-items: center; padding: .6rem 1.2rem; background: #1d2330; color: #fff; }
header a { color: #cfd6e4; text-decoration: none; } header a:hover { color: #fff; }
header .brand { font-weight: 700; color: #fff; }
header form { margin-left: auto; color: #cfd6e4; } header form input { padding: .15rem .3rem; }
main { padding: 1rem 1.2rem; max-width: 1400px; }
h1 { font-size: 1.3rem; margin: .2rem 0 1rem; word-break: break-all; }
h2 { font-size: 1.05rem; margin: 1.4rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: .35rem .55rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #f1f3f7; font-weight: 600; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.time { white-space: nowrap; }
td.id, .mono { font-family: ui-monospace, monospace; font-size: 12.5px; word-break: break-all; }
a { color: var(--accent); }
form.search { display: flex; gap: .5rem; margin-bottom: .8rem; }
form.search input[type=text] { flex: 1; padding: .4rem .6rem; font: 13px ui-monospace, monospace; border: 1px solid #c9ced8; border-radius: 4px; }
button, .button { padding: .4rem .9rem; border: 1px solid #c9ced8; background: #fff; border-radius: 4px; cursor: pointer; }
.error { background: #fdecec; border: 1px solid #f4b4b4; color: #8a1c1c; padding: .5rem .7rem; border-radius: 4px; margin-bottom: .8rem; white-space: pre-wrap; }
.filters { display: flex; flex-wrap: wrap; gap: .4rem; margin-bottom: .8rem; }
.filters a { padding: .2rem .6rem; border: 1px solid var(--line); border-radius: 999px; background: #fff; text-decoration: none; color: var(--fg); }
.filters a.on { border-color: var(--accent); color: var(--accent); font-weight: 600; }
.status { display: inline-block; padding: 0 .45rem; border-radius: 3px; font-size: 12px; font-weight: 600; }
.status.Running { background: #e3edff; color: #1d4ed8; }
.status.Completed { background: #dcfae6; color: #067647; }
.status.Failed, .status.TimedOut, .status.Terminated { background: #fee4e2; color: #b42318; }
.status.Canceled, .status.ContinuedAsNew { background: #f2f4f7; color: #475467; }
.muted { color: var(--muted); }
pre { margin: 0; white-space: pre-wrap; word-break: break-word; font-size: 12.5px; }
details summary { cursor: pointer; }
.pager { margin: .8rem 0; display: flex; gap: 1rem; align-items: center; }
dl.summary { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; background: #fff; border: 1px solid var(--line); padding: .8rem 1rem; margin: 0; }
dl.summary dt { color: var(--muted); } dl.summary dd { margin: 0; word-break: break-all; }
label.refresh { margin-left: auto; font-size: 13px; color: var(--muted); }
.actions { display: flex; flex-wrap: wrap; gap: 1rem; margin: 1rem 0; }
.actions form { background: #fff; border: 1px solid var(--line); padding: .6rem .8rem; border-radius: 4px; display: flex; flex-direction: column; gap: .35rem; min-width: 240px; }
.actions form input[type=text], .actions form textarea { padding: .3rem .5rem; border: 1px solid #c9ced8; border-radius: 4px; font: 12.5px ui-monospace, monospace; }
.actions button.danger { border-color: #f4b4b4; color: #b42318; }
svg#timeline { background: #fff; border: 1px solid var(--line); max-width: 100%; height: auto; }
svg#timeline .label { fill: var(--fg); font-family: ui-monospace, monospace; }
svg#timeline .axis { fill: var(--muted); }
rect.bar.completed, rect.bar.fired { fill: #32a36a; } rect.bar.pending { fill: #3a5bd9; }
rect.bar.failed, rect.bar.timed-out { fill: #d9453a; } rect.bar.canceled { fill: #98a2b3; }
rect.bar.timer { opacity: .6; }
div.charts { display: flex; flex-wrap: wrap; gap: 1em; } figure.minute-chart { margin: 0; }
figure.minute-chart svg { background: #fff; border: 1px solid var(--line); }
figure.minute-chart rect.minute { fill: #3a5bd9; } figure.minute-chart line.tick { stroke: #d9453a; stroke-width: 2; }
figure.minute-chart .axis { fill: var(--muted); }
svg#growth { background: #fff; border: 1px solid var(--line); max-width: 100%; height: auto; }
svg#growth polyline.growth { stroke: #3a5bd9; stroke-width: 2; }
svg#growth line.limit { stroke: #d9453a; stroke-dasharray: 4 3; } svg#growth .axis { fill: var(--muted); }
.severity { display: inline-block; padding: 0 .45rem; border-radius: 3px; font-size: 12px; font-weight: 600; }
.severity.error { background: #fee4e2; color: #b42318; } .severity.warning { background: #fef0c7; color: #93370d; }
.severity.info { background: #f2f4f7; color: #475467; }
tr.finding.sev-error td { background: #fffafa; }
td.meter { width: 45%; }
.track { position: relative; height: 12px; background: #eef0f4; border-radius: 3px; }
.track .fill { position: absolute; left: 0; top: 0; bottom: 0; border-radius: 3px; background: #32a36a; }
.track .fill.over-suggest { background: #e0b100; } .track .fill.over-warn { background: #e87722; }
.track .fill.over-error { background: #d9453a; }
span.can-ignored { color: #b3261e; font-weight: 600; } span.can-suggested { color: #8a6d00; }
.track .mark { position: absolute; top: -3px; bottom: -3px; width: 2px; background: #667085; }
.track .mark.warn { background: #b42318; }
"#;

/// Auto-refresh for pages that offer it (a checkbox remembered in localStorage).
pub const JS: &str = r#"
(function () {
  var box = document.getElementById('auto-refresh');
  if (!box) return;
  box.checked = localStorage.getItem('uhrwerk-auto-refresh') === '1';
  var timer = null;
  function arm() {
    if (timer) clearTimeout(timer);
    if (box.checked) timer = setTimeout(function () { location.reload(); }, 5000);
  }
  box.addEventListener('change', function () {
    localStorage.setItem('uhrwerk-auto-refresh', box.checked ? '1' : '0');
    arm();
  });
  arm();
})();
"#;

pub fn page(title: &str, namespace: &str, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Uhrwerk" }
                link rel="stylesheet" href="/static/ui.css";
            }
            body {
                header {
                    a.brand href="/" { "Uhrwerk" }
                    a href={ "/namespaces/" (encode(namespace)) "/workflows" } { "Workflows" }
                    a href={ "/namespaces/" (encode(namespace)) "/health" } { "Health" }
                    a href={ "/namespaces/" (encode(namespace)) "/task-queues" } { "Task queues" }
                    a href={ "/namespaces/" (encode(namespace)) "/schedules" } { "Schedules" }
                    a href="/namespaces" { "Namespaces" }
                    form #namespace-switch action="/switch-namespace" method="get" {
                        label { "namespace " input type="text" name="namespace" value=(namespace) size="14" aria-label="namespace"; }
                        button type="submit" { "Switch" }
                    }
                }
                main { (body) }
                script src="/static/ui.js" {}
            }
        }
    };
    Html(markup.into_string()).into_response()
}

pub fn not_found() -> Response {
    let body = html! { h1 { "Not found" } p { "No page here. " a href="/" { "Go to the workflows." } } };
    (http::StatusCode::NOT_FOUND, page("Not found", "default", body)).into_response()
}

/// A page that shows an error from the server in place of its content.
pub fn failed(title: &str, namespace: &str, status: &tonic::Status) -> Response {
    let code = if status.code() == tonic::Code::NotFound {
        http::StatusCode::NOT_FOUND
    } else {
        http::StatusCode::BAD_GATEWAY
    };
    let body = html! { h1 { (title) } div.error { (status.message()) } };
    (code, page(title, namespace, body)).into_response()
}

/// `Running`, `Completed`, ... for a `WorkflowExecutionStatus`.
pub fn status_name(status: i32) -> &'static str {
    use enums_pb::WorkflowExecutionStatus as S;
    match S::try_from(status).unwrap_or(S::Unspecified) {
        S::Running => "Running",
        S::Completed => "Completed",
        S::Failed => "Failed",
        S::Canceled => "Canceled",
        S::Terminated => "Terminated",
        S::ContinuedAsNew => "ContinuedAsNew",
        S::TimedOut => "TimedOut",
        S::Paused => "Paused",
        S::Unspecified => "Unspecified",
    }
}

pub fn status_badge(status: i32) -> Markup {
    let name = status_name(status);
    html! { span class={ "status " (name) } { (name) } }
}

/// A timestamp as UTC date and time to the millisecond, or empty.
pub fn time(ts: Option<&uhrwerk_proto::wkt::Timestamp>) -> String {
    let Some(ts) = ts.filter(|t| t.seconds > 0 || t.nanos > 0) else { return String::new() };
    chrono::DateTime::from_timestamp(ts.seconds, ts.nanos.max(0) as u32)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_default()
}

/// A timestamp in unix milliseconds.
pub fn millis(ts: &uhrwerk_proto::wkt::Timestamp) -> i64 {
    ts.seconds * 1000 + i64::from(ts.nanos) / 1_000_000
}

/// A byte count in B, KiB or MiB.
pub fn bytes(n: i64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / (1 << 10) as f64),
        n => format!("{n} B"),
    }
}

/// A query-string value, percent-encoded.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A page token in a URL: hex.
pub fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .filter_map(|i| text.get(2 * i..2 * i + 2))
        .filter_map(|h| u8::from_str_radix(h, 16).ok())
        .collect()
}
