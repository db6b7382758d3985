//! Property tests: `parse` and `payload::decode` never panic on hostile input, and encoding round-trips.

use std::collections::HashMap;

use proptest::prelude::*;
use temporalio_protos::temporal::api::common::v1::Payload;
use uhrwerk_visibility::{Expr, Literal, ValueType, decode, encode, parse};

fn catalog() -> HashMap<String, ValueType> {
    [
        ("CustomKeywordField", ValueType::Keyword),
        ("CustomTextField", ValueType::Text),
        ("CustomIntField", ValueType::Int),
        ("CustomDoubleField", ValueType::Double),
        ("CustomBoolField", ValueType::Bool),
        ("CustomDatetimeField", ValueType::Datetime),
        ("CustomKeywordListField", ValueType::KeywordList),
        ("a.b-c", ValueType::Keyword),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t))
    .collect()
}

/// Pieces of queries, valid and otherwise.
const TOKENS: &[&str] = &[
    "WorkflowId",
    "WorkflowType",
    "ExecutionStatus",
    "ExecutionDuration",
    "StartTime",
    "CloseTime",
    "HistoryLength",
    "BuildIds",
    "TemporalSchedulePaused",
    "CustomKeywordField",
    "CustomTextField",
    "CustomIntField",
    "CustomDoubleField",
    "CustomBoolField",
    "CustomDatetimeField",
    "CustomKeywordListField",
    "`a.b-c`",
    "`WorkflowId`",
    "Unknown",
    "`",
    "``",
    "=",
    "!=",
    "<>",
    ">",
    ">=",
    "<",
    "<=",
    "==",
    "!",
    "AND",
    "and",
    "OR",
    "NOT",
    "IN",
    "BETWEEN",
    "STARTS_WITH",
    "IS",
    "NULL",
    "LIKE",
    "ORDER",
    "BY",
    "ASC",
    "DESC",
    "GROUP",
    "LIMIT",
    "TRUE",
    "FALSE",
    "(",
    ")",
    ",",
    "-",
    "+",
    "'a'",
    "'Running'",
    "'Bogus'",
    "'1h30m'",
    "'01:00:00'",
    "'2024-01-01T00:00:00Z'",
    "'notatime'",
    "'42'",
    "'true'",
    "''",
    "'",
    "\"",
    "\"x\"",
    "'it''s'",
    "'\\'",
    "0",
    "-1",
    "42",
    "1.5",
    "1e3",
    ".5",
    "99999999999999999999",
    "1704067200000000000",
    "10s",
    "é",
    "\u{0}",
];

fn token_query() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        8 => proptest::sample::select(TOKENS).prop_map(str::to_owned),
        1 => "[a-zA-Z_][a-zA-Z0-9_]{0,8}",
        1 => "'[^']{0,6}'",
    ];
    let sep = proptest::sample::select(&[" ", " ", " ", "", "\t", "\n"][..]);
    proptest::collection::vec((token, sep), 0..40).prop_map(|parts| {
        parts.into_iter().fold(String::new(), |mut acc, (t, s)| {
            acc.push_str(&t);
            acc.push_str(s);
            acc
        })
    })
}

/// A predicate that is valid against `catalog()`.
fn valid_predicate() -> impl Strategy<Value = String> {
    proptest::sample::select(
        &[
            "WorkflowId = 'a'",
            "WorkflowType STARTS_WITH 'w'",
            "ExecutionStatus IN ('Running', 'Failed')",
            "ExecutionDuration > '1h30m'",
            "StartTime BETWEEN '2024-01-01T00:00:00Z' AND 1704067200000000000",
            "CloseTime IS NOT NULL",
            "HistoryLength <= -3",
            "BuildIds NOT IN ('x')",
            "TemporalSchedulePaused = true",
            "CustomTextField != 'hello world'",
            "CustomIntField <> 42",
            "CustomDoubleField >= 1.5e3",
            "CustomBoolField = 'false'",
            "CustomDatetimeField < '2024-01-01T00:00:00.5+02:00'",
            "CustomKeywordListField = 'tag'",
            "`a.b-c` NOT BETWEEN 'a' AND 'b'",
        ][..],
    )
    .prop_map(str::to_owned)
}

/// A syntactically and semantically valid filter of random shape.
fn valid_filter() -> impl Strategy<Value = String> {
    valid_predicate().prop_recursive(6, 48, 4, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} AND {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} or {b}")),
            inner.clone().prop_map(|a| format!("NOT {a}")),
            inner.prop_map(|a| format!("({a})")),
        ]
    })
}

fn sql_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn parse_survives_arbitrary_unicode(chars in proptest::collection::vec(any::<char>(), 0..300)) {
        let q: String = chars.into_iter().collect();
        let _ = parse(&q, &catalog());
    }

    #[test]
    fn parse_survives_token_soup(q in token_query()) {
        match parse(&q, &catalog()) {
            Ok(_) => {}
            Err(e) => {
                prop_assert!(!e.message.is_empty());
                if let Some(p) = e.position {
                    prop_assert!(p >= 1 && p <= q.chars().count() + 1, "position {} in {:?}", p, q);
                }
            }
        }
    }

    #[test]
    fn valid_filters_parse(f in valid_filter(), order in proptest::option::of("(StartTime|RunId|HistoryLength)( (ASC|DESC|asc|desc))?")) {
        let q = match &order {
            Some(o) => format!("{f} ORDER BY {o}"),
            None => f,
        };
        let parsed = parse(&q, &catalog());
        prop_assert!(parsed.is_ok(), "{:?}: {:?}", q, parsed);
        if let Ok(p) = parsed {
            prop_assert!(p.filter.is_some());
            prop_assert_eq!(p.order_by.len(), usize::from(order.is_some()));
        }
    }

    #[test]
    fn string_literals_round_trip(s in "\\PC{0,40}") {
        let q = format!("WorkflowId = {}", sql_quote(&s));
        let parsed = parse(&q, &catalog());
        match parsed.map(|q| q.filter) {
            Ok(Some(Expr::Compare { value, .. })) => prop_assert_eq!(value, Literal::Str(s)),
            other => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    #[test]
    fn decode_survives_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let p = Payload { data, ..Default::default() };
        for ty in ValueType::ALL {
            if let Ok(values) = decode(ty, &p)
                && ty != ValueType::KeywordList {
                    prop_assert!(values.len() <= 1);
                }
        }
    }

    #[test]
    fn decode_survives_json_like_bytes(s in "[\\[\\]{}\",:0-9a-z.eE+\\- ]{0,60}") {
        let p = Payload { data: s.into_bytes(), ..Default::default() };
        for ty in ValueType::ALL {
            let _ = decode(ty, &p);
        }
    }

    #[test]
    fn payloads_round_trip(s in "\\PC{0,30}", list in proptest::collection::vec("\\PC{0,10}", 1..5),
                           i in any::<i64>(), f in any::<f64>().prop_filter("finite", |f| f.is_finite()),
                           b in any::<bool>()) {
        let cases = vec![
            (ValueType::Keyword, vec![Literal::Str(s.clone())]),
            (ValueType::Text, vec![Literal::Str(s)]),
            (ValueType::Int, vec![Literal::Int(i)]),
            (ValueType::Double, vec![Literal::Double(f)]),
            (ValueType::Bool, vec![Literal::Bool(b)]),
            (ValueType::Datetime, vec![Literal::Time(i)]),
            (ValueType::KeywordList, list.into_iter().map(Literal::Str).collect()),
        ];
        for (ty, values) in cases {
            prop_assert_eq!(decode(ty, &encode(ty, &values)), Ok(values));
        }
    }
}

/// Runs `f` on a thread with a deliberately small stack, so unbounded recursion would crash.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("no stack overflow or panic")
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    on_small_stack(|| {
        let cat = catalog();
        let opens = "(".repeat(10_000);
        assert!(parse(&opens, &cat).is_err());
        let balanced = format!("{opens}WorkflowId = 'a'{}", ")".repeat(10_000));
        let e = parse(&balanced, &cat).expect_err("too deep");
        assert!(e.message.contains("nesting depth"), "{e}");
        let nots = format!("{}WorkflowId = 'a'", "NOT ".repeat(10_000));
        assert!(parse(&nots, &cat).is_err());
        let mixed = "NOT (".repeat(5_000);
        assert!(parse(&mixed, &cat).is_err());
    });
}

#[test]
fn longest_flat_chains_stay_shallow() {
    on_small_stack(|| {
        let cat = catalog();
        // As many terms as fit in the length limit; the typed tree must be balanced.
        let q = vec!["HistoryLength=1"; 3_400].join(" OR ");
        assert!(q.len() <= uhrwerk_visibility::MAX_QUERY_BYTES);
        let parsed = parse(&q, &cat).expect("parses");
        let copy = parsed.clone();
        assert_eq!(parsed, copy);
        drop(parsed);
        let q = vec!["HistoryLength IN (1,2,3)"; 2_000].join(" AND ");
        assert!(parse(&q, &cat).is_ok());
    });
}
