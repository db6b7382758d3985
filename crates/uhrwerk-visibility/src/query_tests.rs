//! Unit tests of `parse`: operators, value typing, precedence, clauses and every error message.

use std::collections::HashMap;

use super::*;
use crate::attrs::{Attr, SystemColumn, ValueType};

const S: i64 = 1_000_000_000;
const JAN_1_2024: i64 = 1_704_067_200 * S;

fn catalog() -> HashMap<String, ValueType> {
    [
        ("CustomKeywordField", ValueType::Keyword),
        ("CustomTextField", ValueType::Text),
        ("Name", ValueType::Text),
        ("CustomIntField", ValueType::Int),
        ("CustomDoubleField", ValueType::Double),
        ("CustomBoolField", ValueType::Bool),
        ("CustomDatetimeField", ValueType::Datetime),
        ("CustomKeywordListField", ValueType::KeywordList),
        ("My.Attr-1", ValueType::Keyword),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t))
    .collect()
}

fn ok(q: &str) -> Query {
    match parse(q, &catalog()) {
        Ok(v) => v,
        Err(e) => panic!("{:?} failed: {e}", q.chars().take(80).collect::<String>()),
    }
}

fn filter(q: &str) -> Expr {
    ok(q).filter.unwrap_or_else(|| panic!("{q:?} has no filter"))
}

fn err(q: &str) -> QueryError {
    match parse(q, &catalog()) {
        Ok(v) => panic!("{q:?} parsed: {v:?}"),
        Err(e) => e,
    }
}

fn assert_err(q: &str, message: &str, position: Option<usize>) {
    let e = err(q);
    assert_eq!(e.message, message, "query {q:?}");
    assert_eq!(e.position, position, "query {q:?}");
    assert_eq!(e.to_string(), format!("invalid query: {message}"));
}

fn col(c: SystemColumn) -> Attr {
    Attr::Column(c)
}

fn stored(name: &str, ty: ValueType) -> Attr {
    Attr::Stored { name: name.into(), ty }
}

fn cmp(attr: Attr, ty: ValueType, op: CmpOp, value: Literal) -> Expr {
    Expr::Compare { attr, ty, op, value }
}

fn wf_type(v: &str) -> Expr {
    cmp(col(SystemColumn::WorkflowType), ValueType::Keyword, CmpOp::Eq, Literal::Str(v.into()))
}

fn and(a: Expr, b: Expr) -> Expr {
    Expr::And(Box::new(a), Box::new(b))
}

fn or(a: Expr, b: Expr) -> Expr {
    Expr::Or(Box::new(a), Box::new(b))
}

fn not(a: Expr) -> Expr {
    Expr::Not(Box::new(a))
}

/// The single value of a `Compare` filter.
fn value_of(q: &str) -> Literal {
    match filter(q) {
        Expr::Compare { value, .. } => value,
        other => panic!("{q:?} is not a comparison: {other:?}"),
    }
}

// ---------------------------------------------------------------- structure

#[test]
fn empty_queries_have_no_filter() {
    for q in ["", "   ", "\n\t "] {
        assert_eq!(ok(q), Query { filter: None, order_by: vec![], group_by: vec![] });
    }
}

#[test]
fn every_comparison_operator() {
    let hl = |op| cmp(col(SystemColumn::HistoryLength), ValueType::Int, op, Literal::Int(5));
    assert_eq!(filter("HistoryLength = 5"), hl(CmpOp::Eq));
    assert_eq!(filter("HistoryLength != 5"), hl(CmpOp::Ne));
    assert_eq!(filter("HistoryLength <> 5"), hl(CmpOp::Ne));
    assert_eq!(filter("HistoryLength > 5"), hl(CmpOp::Gt));
    assert_eq!(filter("HistoryLength >= 5"), hl(CmpOp::Ge));
    assert_eq!(filter("HistoryLength < 5"), hl(CmpOp::Lt));
    assert_eq!(filter("HistoryLength <= 5"), hl(CmpOp::Le));
    assert_eq!(filter("HistoryLength<=5"), hl(CmpOp::Le));
}

#[test]
fn in_and_not_in() {
    let expected = |negated| Expr::In {
        attr: col(SystemColumn::WorkflowId),
        ty: ValueType::Keyword,
        values: vec![Literal::Str("a".into()), Literal::Str("b".into())],
        negated,
    };
    assert_eq!(filter("WorkflowId IN ('a', 'b')"), expected(false));
    assert_eq!(filter("WorkflowId not in ('a',\"b\")"), expected(true));
    assert_eq!(
        filter("CustomKeywordListField IN ('x')"),
        Expr::In {
            attr: stored("CustomKeywordListField", ValueType::KeywordList),
            ty: ValueType::KeywordList,
            values: vec![Literal::Str("x".into())],
            negated: false,
        }
    );
    assert_eq!(
        filter("ExecutionStatus IN ('Running', 'Completed', 7)"),
        Expr::In {
            attr: col(SystemColumn::ExecutionStatus),
            ty: ValueType::Keyword,
            values: vec![Literal::Int(1), Literal::Int(2), Literal::Int(7)],
            negated: false,
        }
    );
}

#[test]
fn between_and_not_between() {
    let expected = |negated| Expr::Between {
        attr: col(SystemColumn::StartTime),
        ty: ValueType::Datetime,
        low: Literal::Time(JAN_1_2024),
        high: Literal::Time(JAN_1_2024 + 86_400 * S),
        negated,
    };
    assert_eq!(filter("StartTime BETWEEN '2024-01-01T00:00:00Z' AND '2024-01-02T00:00:00Z'"), expected(false));
    assert_eq!(filter("StartTime NOT BETWEEN '2024-01-01T00:00:00Z' and '2024-01-02T00:00:00Z'"), expected(true));
    // BETWEEN's AND does not end the predicate early.
    assert_eq!(
        filter("CustomIntField BETWEEN 1 AND 3 AND WorkflowType = 'w'"),
        and(
            Expr::Between {
                attr: stored("CustomIntField", ValueType::Int),
                ty: ValueType::Int,
                low: Literal::Int(1),
                high: Literal::Int(3),
                negated: false,
            },
            wf_type("w")
        )
    );
    assert!(matches!(filter("WorkflowId BETWEEN 'a' AND 'b'"), Expr::Between { .. }));
}

#[test]
fn starts_with_and_not_starts_with() {
    let expected = |negated| Expr::StartsWith {
        attr: col(SystemColumn::WorkflowType),
        ty: ValueType::Keyword,
        prefix: "order-".into(),
        negated,
    };
    assert_eq!(filter("WorkflowType STARTS_WITH 'order-'"), expected(false));
    assert_eq!(filter("WorkflowType not starts_with 'order-'"), expected(true));
}

#[test]
fn is_null_and_is_not_null() {
    assert_eq!(
        filter("CloseTime IS NULL"),
        Expr::IsNull { attr: col(SystemColumn::CloseTime), ty: ValueType::Datetime, negated: false }
    );
    assert_eq!(
        filter("CustomTextField is not null"),
        Expr::IsNull { attr: stored("CustomTextField", ValueType::Text), ty: ValueType::Text, negated: true }
    );
}

#[test]
fn backquoted_names() {
    assert_eq!(
        filter("`My.Attr-1` = 'x'"),
        cmp(stored("My.Attr-1", ValueType::Keyword), ValueType::Keyword, CmpOp::Eq, Literal::Str("x".into()))
    );
    assert_eq!(filter("`WorkflowType` = 'a'"), wf_type("a"));
    assert_eq!(
        ok("ORDER BY `My.Attr-1` DESC").order_by,
        vec![OrderBy { attr: stored("My.Attr-1", ValueType::Keyword), ty: ValueType::Keyword, descending: true }]
    );
}

#[test]
fn precedence_not_and_or() {
    assert_eq!(
        filter("WorkflowType = 'a' OR WorkflowType = 'b' AND WorkflowType = 'c'"),
        or(wf_type("a"), and(wf_type("b"), wf_type("c")))
    );
    assert_eq!(
        filter("WorkflowType = 'a' AND WorkflowType = 'b' OR WorkflowType = 'c'"),
        or(and(wf_type("a"), wf_type("b")), wf_type("c"))
    );
    assert_eq!(filter("NOT WorkflowType = 'a' AND WorkflowType = 'b'"), and(not(wf_type("a")), wf_type("b")));
    assert_eq!(
        filter("(WorkflowType = 'a' OR WorkflowType = 'b') AND WorkflowType = 'c'"),
        and(or(wf_type("a"), wf_type("b")), wf_type("c"))
    );
    assert_eq!(filter("not (WorkflowType = 'a' or WorkflowType = 'b')"), not(or(wf_type("a"), wf_type("b"))));
    assert_eq!(filter("NOT NOT WorkflowType = 'a'"), not(not(wf_type("a"))));
    assert_eq!(filter("((WorkflowType = 'a'))"), wf_type("a"));
}

#[test]
fn long_chains_are_balanced() {
    let q = ["WorkflowType = 'a'"; 4].join(" AND ");
    assert_eq!(filter(&q), and(and(wf_type("a"), wf_type("a")), and(wf_type("a"), wf_type("a"))));
    fn depth(e: &Expr) -> usize {
        match e {
            Expr::And(a, b) | Expr::Or(a, b) => 1 + depth(a).max(depth(b)),
            Expr::Not(a) => 1 + depth(a),
            _ => 1,
        }
    }
    let q = vec!["WorkflowType = 'a'"; 2500].join(" OR ");
    let e = filter(&q);
    assert!(depth(&e) <= 13, "depth {}", depth(&e));
}

#[test]
fn order_by_clauses() {
    let q = ok("WorkflowType = 'a' ORDER BY StartTime DESC, CustomIntField asc, RunId");
    assert_eq!(q.filter, Some(wf_type("a")));
    assert_eq!(
        q.order_by,
        vec![
            OrderBy { attr: col(SystemColumn::StartTime), ty: ValueType::Datetime, descending: true },
            OrderBy { attr: stored("CustomIntField", ValueType::Int), ty: ValueType::Int, descending: false },
            OrderBy { attr: col(SystemColumn::RunId), ty: ValueType::Keyword, descending: false },
        ]
    );
    let q = ok("order by CloseTime");
    assert_eq!(q.filter, None);
    assert_eq!(q.order_by.len(), 1);
}

#[test]
fn group_by_execution_status() {
    let q = ok("GROUP BY ExecutionStatus");
    assert_eq!(q.filter, None);
    assert_eq!(q.group_by, vec![col(SystemColumn::ExecutionStatus)]);
    let q = ok("WorkflowType = 'a' group by ExecutionStatus order by StartTime desc");
    assert_eq!(q.filter, Some(wf_type("a")));
    assert_eq!(q.group_by, vec![col(SystemColumn::ExecutionStatus)]);
    assert_eq!(q.order_by.len(), 1);
}

// ---------------------------------------------------------------- value typing

#[test]
fn keyword_and_text_values() {
    assert_eq!(value_of("WorkflowId = 'it''s'"), Literal::Str("it's".into()));
    assert_eq!(value_of("WorkflowId = 'it\\'s'"), Literal::Str("it's".into()));
    assert_eq!(value_of("WorkflowId = \"dq\""), Literal::Str("dq".into()));
    assert_eq!(value_of("WorkflowId = ''"), Literal::Str(String::new()));
    assert_eq!(value_of("CustomTextField = 'hello world'"), Literal::Str("hello world".into()));
    assert_eq!(value_of("Name != 'x'"), Literal::Str("x".into()));
    assert_eq!(value_of("CustomKeywordListField = 'tag'"), Literal::Str("tag".into()));
    assert_eq!(value_of("BuildIds != 'b'"), Literal::Str("b".into()));
}

#[test]
fn int_values() {
    assert_eq!(value_of("HistoryLength = 10"), Literal::Int(10));
    assert_eq!(value_of("HistoryLength = -10"), Literal::Int(-10));
    assert_eq!(value_of("HistoryLength = +10"), Literal::Int(10));
    // Numbers in quotes are strings, which Int attributes refuse (as Temporal).
    assert!(
        uhrwerk_visibility_parse_err("HistoryLength = '42'")
            .contains("invalid value type for search attribute HistoryLength of type Int")
    );
    assert!(uhrwerk_visibility_parse_err("CustomIntField = '-3'").contains("of type Int"));
    assert_eq!(value_of("CustomIntField = -9223372036854775808"), Literal::Int(i64::MIN));
}

#[test]
fn double_values() {
    assert_eq!(value_of("CustomDoubleField = 1.5"), Literal::Double(1.5));
    assert_eq!(value_of("CustomDoubleField = -2"), Literal::Double(-2.0));
    assert_eq!(value_of("CustomDoubleField = 1e3"), Literal::Double(1000.0));
    assert_eq!(value_of("CustomDoubleField = .25"), Literal::Double(0.25));
    assert!(uhrwerk_visibility_parse_err("CustomDoubleField = '3.5'").contains("of type Double"));
}

#[test]
fn bool_values() {
    assert_eq!(value_of("CustomBoolField = TRUE"), Literal::Bool(true));
    assert_eq!(value_of("CustomBoolField = false"), Literal::Bool(false));
    assert_eq!(value_of("CustomBoolField = 'true'"), Literal::Bool(true));
    assert_eq!(value_of("TemporalSchedulePaused != 'False'"), Literal::Bool(false));
}

#[test]
fn datetime_values() {
    assert_eq!(value_of("StartTime > '2024-01-01T00:00:00Z'"), Literal::Time(JAN_1_2024));
    assert_eq!(
        value_of("CustomDatetimeField < '2024-01-01T00:00:00.123456789+02:00'"),
        Literal::Time(JAN_1_2024 - 7_200 * S + 123_456_789)
    );
    assert_eq!(value_of("CloseTime <= 1704067200000000000"), Literal::Time(JAN_1_2024));
    assert_eq!(value_of("ExecutionTime >= -5"), Literal::Time(-5));
}

#[test]
fn execution_status_values() {
    for (name, n) in [
        ("Running", 1),
        ("Completed", 2),
        ("Failed", 3),
        ("Canceled", 4),
        ("Terminated", 5),
        ("ContinuedAsNew", 6),
        ("TimedOut", 7),
    ] {
        assert_eq!(value_of(&format!("ExecutionStatus = '{name}'")), Literal::Int(n));
    }
    assert_eq!(value_of("ExecutionStatus = 3"), Literal::Int(3));
    assert_eq!(value_of("ExecutionStatus != \"Failed\""), Literal::Int(3));
    // Names are case-sensitive, as in Temporal.
    for name in ["running", "TIMEDOUT"] {
        let err = uhrwerk_visibility_parse_err(&format!("ExecutionStatus = '{name}'"));
        assert!(err.contains(&format!("invalid ExecutionStatus value '{name}'")), "{err}");
    }
}

fn uhrwerk_visibility_parse_err(query: &str) -> String {
    match parse(query, &catalog()) {
        Ok(q) => panic!("{query:?} parsed: {q:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn execution_duration_values() {
    for (v, ns) in [
        ("1000", 1000),
        ("'1000'", 1000),
        ("'1h'", 3_600 * S),
        ("'30m'", 1_800 * S),
        ("'1h30m'", 5_400 * S),
        ("'10s'", 10 * S),
        ("'100ms'", 100_000_000),
        ("'1.5s'", 1_500_000_000),
        ("'01:30:00'", 5_400 * S),
        ("'2d'", 2 * 86_400 * S),
    ] {
        assert_eq!(value_of(&format!("ExecutionDuration > {v}")), Literal::Int(ns), "{v}");
    }
}

// ---------------------------------------------------------------- semantic errors

#[test]
fn int_value_errors() {
    assert_err(
        "HistoryLength = 'abc'",
        "invalid expression: invalid value type for search attribute HistoryLength of type Int: \"abc\" (type: string)",
        Some(17),
    );
    assert_err(
        "CustomIntField = 1.5",
        "invalid expression: invalid value type for search attribute CustomIntField of type Int: 1.5 (type: float64)",
        Some(18),
    );
    assert_err(
        "CustomIntField = true",
        "invalid expression: invalid value type for search attribute CustomIntField of type Int: true (type: bool)",
        Some(18),
    );
    assert_err(
        "CustomIntField = 99999999999999999999",
        "invalid expression: invalid value type for search attribute CustomIntField of type Int: 99999999999999999999 (type: float64)",
        Some(18),
    );
}

#[test]
fn string_type_value_errors() {
    assert_err(
        "WorkflowId = 123",
        "invalid expression: invalid value type for search attribute WorkflowId of type Keyword: 123 (type: int64)",
        Some(14),
    );
    assert_err(
        "CustomKeywordListField IN ('a', 2)",
        "invalid expression: invalid value type for search attribute CustomKeywordListField of type KeywordList: 2 (type: int64)",
        Some(33),
    );
    assert_err(
        "Name = -1.5",
        "invalid expression: invalid value type for search attribute Name of type Text: -1.5 (type: float64)",
        Some(8),
    );
    assert_err(
        "Name = '  '",
        "invalid expression: no tokens found filtering on Text type search attribute Name",
        Some(8),
    );
}

#[test]
fn other_value_errors() {
    assert_err(
        "CustomDoubleField = 'x'",
        "invalid expression: invalid value type for search attribute CustomDoubleField of type Double: \"x\" (type: string)",
        Some(21),
    );
    assert_err(
        "CustomDoubleField = 1e999",
        "invalid expression: invalid value type for search attribute CustomDoubleField of type Double: 1e999 (type: float64)",
        Some(21),
    );
    assert_err(
        "CustomBoolField = 1",
        "invalid expression: invalid value type for search attribute CustomBoolField of type Bool: 1 (type: int64)",
        Some(19),
    );
    assert_err("StartTime = 'notatime'", "invalid expression: unable to parse datetime 'notatime'", Some(13));
    assert_err(
        "StartTime = 1.5",
        "invalid expression: invalid value type for search attribute StartTime of type Datetime: 1.5 (type: float64)",
        Some(13),
    );
    assert_err("ExecutionStatus = 'Bogus'", "invalid expression: invalid ExecutionStatus value 'Bogus'", Some(19));
    assert_err("ExecutionStatus = 42", "invalid expression: invalid ExecutionStatus value 42", Some(19));
    assert_err(
        "ExecutionDuration = 'forever'",
        "invalid expression: invalid duration value for search attribute ExecutionDuration: forever",
        Some(21),
    );
    assert_err(
        "WorkflowId = RunId",
        "operation is not supported: column name on the right side of comparison expression (did you forget to quote \"RunId\"?)",
        Some(14),
    );
    assert_err(
        "WorkflowId = NULL",
        "invalid expression: NULL is not a value for search attribute WorkflowId (use IS NULL or IS NOT NULL)",
        Some(14),
    );
}

#[test]
fn text_operator_errors() {
    let msg = |op: &str| {
        format!("operation is not supported: operator '{op}' not supported for Text type search attribute 'Name'")
    };
    assert_err("Name > 'a'", &msg(">"), Some(1));
    assert_err("Name <= 'a'", &msg("<="), Some(1));
    assert_err("Name BETWEEN 'a' AND 'b'", &msg("BETWEEN"), Some(1));
    assert_err("Name STARTS_WITH 'a'", &msg("STARTS_WITH"), Some(1));
    assert_err("Name IN ('a')", &msg("IN"), Some(1));
    assert_err("Name NOT IN ('a')", &msg("NOT IN"), Some(1));
    assert!(parse("Name = 'a' AND Name != 'b' AND Name IS NULL", &catalog()).is_ok());
}

#[test]
fn keyword_list_operator_errors() {
    let msg = |op: &str| {
        format!(
            "operation is not supported: operator '{op}' not supported for KeywordList type search attribute 'BuildIds'"
        )
    };
    assert_err("BuildIds > 'a'", &msg(">"), Some(1));
    assert_err("BuildIds BETWEEN 'a' AND 'b'", &msg("BETWEEN"), Some(1));
    assert_err("BuildIds STARTS_WITH 'a'", &msg("STARTS_WITH"), Some(1));
    assert_err("BuildIds NOT STARTS_WITH 'a'", &msg("NOT STARTS_WITH"), Some(1));
    assert!(
        parse("BuildIds = 'a' AND BuildIds != 'b' AND BuildIds NOT IN ('c') AND BuildIds IS NOT NULL", &catalog())
            .is_ok()
    );
}

#[test]
fn numeric_and_bool_operator_errors() {
    assert_err(
        "HistoryLength STARTS_WITH '1'",
        "operation is not supported: operator 'STARTS_WITH' not supported for Int type search attribute 'HistoryLength'",
        Some(1),
    );
    assert_err(
        "CustomBoolField BETWEEN true AND false",
        "operation is not supported: operator 'BETWEEN' not supported for Bool type search attribute 'CustomBoolField'",
        Some(1),
    );
    assert_err(
        "ExecutionStatus STARTS_WITH 'Run'",
        "operation is not supported: operator 'STARTS_WITH' not supported for Keyword type search attribute 'ExecutionStatus'",
        Some(1),
    );
}

#[test]
fn like_is_never_supported() {
    assert_err(
        "WorkflowType LIKE 'foo%'",
        "operation is not supported: operator 'LIKE' not supported for Keyword type search attribute 'WorkflowType'",
        Some(1),
    );
    assert_err(
        "WorkflowType = 'a' AND CustomIntField NOT LIKE 1",
        "operation is not supported: operator 'NOT LIKE' not supported for Int type search attribute 'CustomIntField'",
        Some(24),
    );
}

#[test]
fn unknown_attributes() {
    assert_err("Foo = 'x'", "invalid search attribute: Foo", Some(1));
    assert_err("workflowid = 'x'", "invalid search attribute: workflowid", Some(1));
    assert_err("ORDER BY Bar", "invalid search attribute: Bar", Some(10));
    assert_err("`a b` IS NULL", "invalid search attribute: a b", Some(1));
}

#[test]
fn clause_errors() {
    assert_err(
        "GROUP BY WorkflowType",
        "operation is not supported: 'GROUP BY' clause is not supported for search attribute WorkflowType",
        Some(10),
    );
    assert_err(
        "GROUP BY ExecutionStatus, WorkflowType",
        "operation is not supported: 'GROUP BY' clause supports only a single field",
        Some(27),
    );
    assert_err(
        "ORDER BY CustomTextField",
        "operation is not supported: unable to sort by search attribute type Text",
        Some(10),
    );
    assert_err("WorkflowType = 'a' LIMIT 10", "operation is not supported: 'LIMIT' clause", Some(20));
}

// ---------------------------------------------------------------- syntax errors

#[test]
fn syntax_errors_with_positions() {
    let cases: &[(&str, usize, &str)] = &[
        ("WorkflowType = ", 16, "expected a value, found end of input"),
        ("(WorkflowType = 'a'", 20, "expected ')', found end of input"),
        ("WorkflowType = 'a' AND", 23, "expected a search attribute name, found end of input"),
        ("WorkflowType = 'abc", 16, "unterminated string literal"),
        ("WorkflowType = \"abc", 16, "unterminated string literal"),
        ("`WorkflowType = 'a'", 1, "unterminated quoted identifier"),
        ("WorkflowType 'a'", 14, "expected an operator after search attribute 'WorkflowType', found string 'a'"),
        ("WorkflowType", 13, "expected an operator after search attribute 'WorkflowType', found end of input"),
        (
            "WorkflowType = 'a' WorkflowId = 'b'",
            20,
            "expected AND, OR, GROUP BY, ORDER BY or end of input, found identifier 'WorkflowId'",
        ),
        ("WorkflowType = 'a')", 19, "expected AND, OR, GROUP BY, ORDER BY or end of input, found ')'"),
        ("WorkflowId IN 'a'", 15, "expected '(', found string 'a'"),
        ("WorkflowId IN ()", 16, "expected a value, found ')'"),
        ("WorkflowId IN ('a' 'b')", 20, "expected ',' or ')', found string 'b'"),
        ("WorkflowId NOT = 'a'", 16, "expected IN, BETWEEN, STARTS_WITH or LIKE, found '='"),
        ("StartTime BETWEEN 1 OR 2", 21, "expected AND, found keyword OR"),
        ("CloseTime IS 5", 14, "expected NULL, found number 5"),
        ("HistoryLength = - 'a'", 19, "expected a number, found string 'a'"),
        ("HistoryLength = 5 ORDER StartTime", 25, "expected BY, found identifier 'StartTime'"),
        ("ORDER BY", 9, "expected a search attribute name, found end of input"),
        ("= 'a'", 1, "expected a search attribute name, found '='"),
        ("AND", 1, "expected a search attribute name, found keyword AND"),
        ("WorkflowType == 'a'", 15, "expected a value, found '='"),
        ("WorkflowType = 'a' ; DROP", 20, "unexpected character ';'"),
        ("HistoryLength = 10s", 19, "unexpected character 's' after number"),
        ("äö = 'x' AND", 13, "expected a search attribute name, found end of input"),
        ("()", 2, "expected a search attribute name, found ')'"),
    ];
    for &(q, pos, what) in cases {
        assert_err(q, &format!("malformed SQL query: syntax error at position {pos}: {what}"), Some(pos));
    }
}

#[test]
fn syntax_errors_win_over_semantic_errors() {
    // Like Temporal, the whole query is parsed before names and values are checked.
    let e = err("Foo = 'x' AND");
    assert_eq!(e.position, Some(14));
    assert!(e.message.starts_with("malformed SQL query"));
}

// ---------------------------------------------------------------- limits

#[test]
fn query_length_limit() {
    let q = format!("WorkflowId = '{}'", "x".repeat(MAX_QUERY_BYTES));
    assert_err(&q, &format!("query is too long: {} bytes exceeds the limit of 65536 bytes", q.len()), None);
    let q = format!("WorkflowId = '{}'", "x".repeat(MAX_QUERY_BYTES - 20));
    assert!(parse(&q, &catalog()).is_ok());
}

#[test]
fn nesting_limit() {
    let nested = |n: usize| format!("{}WorkflowType = 'a'{}", "(".repeat(n), ")".repeat(n));
    assert!(parse(&nested(MAX_NESTING_DEPTH), &catalog()).is_ok());
    assert_err(
        &nested(MAX_NESTING_DEPTH + 1),
        "malformed SQL query: nesting depth exceeds the limit of 100 at position 101",
        Some(101),
    );
    let nots = |n: usize| format!("{}WorkflowType = 'a'", "NOT ".repeat(n));
    assert!(parse(&nots(MAX_NESTING_DEPTH), &catalog()).is_ok());
    assert_eq!(err(&nots(MAX_NESTING_DEPTH + 1)).position, Some(401));
    assert!(err(&"(".repeat(10_000)).message.contains("nesting depth"));
}

#[test]
fn tree_depth_limit() {
    let nest = |per_level: usize| {
        let mut q = "RunId='a'".to_string();
        for _ in 0..MAX_NESTING_DEPTH {
            q = format!("({}{q})", "RunId='a' OR ".repeat(per_level));
        }
        q
    };
    // Two operands per level: one extra level of tree per parenthesis.
    assert!(parse(&nest(1), &catalog()).is_ok());
    // 33 operands per level with the group last: six tree levels per parenthesis.
    let q = nest(32);
    assert!(q.len() < MAX_QUERY_BYTES);
    assert_err(&q, "malformed SQL query: expression tree depth exceeds the limit of 512", None);
}
