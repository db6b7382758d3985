//! Output: the human-readable report (a header, then one block per finding, worst first, then a
//! summary) and `--format json` (a JSON array of findings).

use std::fmt::Write;

use crate::finding::{Finding, Severity};

/// What the header says about the scan.
pub struct Header {
    pub address: String,
    pub namespace: String,
    pub runs: usize,
    pub open_runs: usize,
    pub closed_runs: usize,
    pub since: String,
    pub queues: usize,
    pub limits: String,
    pub notes: Vec<String>,
}

pub fn text(header: &Header, findings: &[Finding]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "uhrwerk doctor: {} namespace {}: {} runs scanned ({} open, {} closed in the last {}), {} task queues",
        header.address,
        header.namespace,
        header.runs,
        header.open_runs,
        header.closed_runs,
        header.since,
        header.queues
    );
    let _ = writeln!(out, "limits: {}", header.limits);
    for note in &header.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out.push('\n');
    if findings.is_empty() {
        out.push_str("No findings.\n");
        return out;
    }
    for f in findings {
        let _ = writeln!(out, "{:<7} {}  {}", f.severity.as_str().to_uppercase(), f.code, f.title);
        let _ = writeln!(out, "  subject  {}", f.subject);
        let _ = writeln!(out, "  detail   {}", f.detail);
        let _ = writeln!(out, "  chapter  {}", f.section);
        let _ = writeln!(out, "  fix      {}", f.fix);
        out.push('\n');
    }
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let _ = writeln!(
        out,
        "{} finding(s): {} error(s), {} warning(s), {} info",
        findings.len(),
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info)
    );
    out
}

pub fn json(findings: &[Finding]) -> String {
    serde_json::to_string_pretty(findings).unwrap_or_else(|e| format!("[{{\"error\": {:?}}}]", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Check;

    fn header() -> Header {
        Header {
            address: "127.0.0.1:7233".into(),
            namespace: "default".into(),
            runs: 3,
            open_runs: 1,
            closed_runs: 2,
            since: "24.0 h".into(),
            queues: 2,
            limits: "Temporal defaults".into(),
            notes: vec!["metrics unreachable".into()],
        }
    }

    #[test]
    fn text_report() {
        let f =
            vec![Finding::new(Check::BacklogWithoutPollers, "default", "task queue tq (workflow tasks)", "3 waiting")];
        let t = text(&header(), &f);
        assert!(t.contains("ERROR   DR301  Task queue has a backlog and no pollers"), "{t}");
        assert!(t.contains("  chapter  13.5"));
        assert!(t.contains("note: metrics unreachable"));
        assert!(t.ends_with("1 finding(s): 1 error(s), 0 warning(s), 0 info\n"));
        assert!(text(&header(), &[]).ends_with("No findings.\n"));
    }

    #[test]
    fn json_array() {
        let mut f = Finding::new(Check::SinglePoller, "default", "task queue tq (workflow tasks)", "one")
            .with_data("pollers", 1);
        f.task_queue = Some("tq".into());
        let v: serde_json::Value = serde_json::from_str(&json(&[f])).expect("json");
        assert_eq!(v[0]["code"], "DR302");
        assert_eq!(v[0]["severity"], "warning");
        assert_eq!(v[0]["section"], "13.5");
        assert_eq!(v[0]["task_queue"], "tq");
        assert_eq!(v[0]["data"]["pollers"], 1);
        assert!(v[0].get("run_id").is_none());
        assert_eq!(json(&[]), "[]");
    }
}
