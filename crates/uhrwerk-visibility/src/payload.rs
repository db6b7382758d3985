//! Search attribute payloads as the SDKs send them: JSON `json/plain` payloads with a `type` metadata entry.
//!
//! Data per type: Keyword/Text `"str"`; Int `123` (a string of digits is accepted too); Double `1.5`
//! (a numeric string is accepted too); Bool `true` (or `"true"`); Datetime an RFC3339Nano string;
//! KeywordList `["a","b"]` (a single string is a one-element list). Scalar types also accept a
//! one-element list. Empty data, JSON `null`, an empty list or a `binary/null` encoding mean "unset".

use std::collections::HashMap;

use serde_json::{Number, Value};
use temporalio_protos::temporal::api::common::v1::Payload;

use crate::attrs::ValueType;
use crate::query::Literal;
use crate::values::{format_datetime, parse_datetime};

const ENCODING: &str = "encoding";
const TYPE: &str = "type";
const JSON_PLAIN: &[u8] = b"json/plain";
const BINARY_NULL: &[u8] = b"binary/null";

/// A payload whose data does not fit the search attribute's type.
///
/// Display: `invalid value for search attribute {name} of type {ty}: {data}`; `name` is empty
/// when the error comes from [`decode`] (then: `invalid value for search attribute of type ...`),
/// and set by [`decode_named`]. `data` is the payload data as (lossy UTF-8) text, cut at 200 chars.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct PayloadError {
    pub name: String,
    pub ty: ValueType,
    pub data: String,
}

impl PayloadError {
    fn new(ty: ValueType, data: &[u8]) -> Self {
        const MAX: usize = 200;
        let text = String::from_utf8_lossy(data);
        let data = if text.chars().count() > MAX {
            let mut t: String = text.chars().take(MAX).collect();
            t.push_str("...");
            t
        } else {
            text.into_owned()
        };
        PayloadError { name: String::new(), ty, data }
    }

    fn render(&self) -> String {
        if self.name.is_empty() {
            format!("invalid value for search attribute of type {}: {}", self.ty, self.data)
        } else {
            format!("invalid value for search attribute {} of type {}: {}", self.name, self.ty, self.data)
        }
    }
}

/// Decodes a search attribute payload for an attribute of type `ty`.
/// `Ok(vec![])` means "unset / remove"; non-list types yield exactly one value otherwise.
pub fn decode(ty: ValueType, payload: &Payload) -> Result<Vec<Literal>, PayloadError> {
    let data = payload.data.as_slice();
    let err = || PayloadError::new(ty, data);
    if data.is_empty() || payload.metadata.get(ENCODING).map(Vec::as_slice) == Some(BINARY_NULL) {
        return Ok(Vec::new());
    }
    let json: Value = serde_json::from_slice(data).map_err(|_| err())?;
    match json {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) if items.is_empty() => Ok(Vec::new()),
        Value::Array(items) if ty == ValueType::KeywordList => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(Literal::Str(s)),
                _ => Err(err()),
            })
            .collect(),
        Value::Array(mut items) if items.len() == 1 => {
            let v = items.pop().ok_or_else(err)?;
            decode_scalar(ty, v).map(|l| vec![l]).ok_or_else(err)
        }
        Value::Array(_) => Err(err()),
        // serde_json's float parsing may be off by an ulp; the standard library's is exact.
        Value::Number(_) if ty == ValueType::Double => std::str::from_utf8(data)
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .filter(|f| f.is_finite())
            .map(|f| vec![Literal::Double(f)])
            .ok_or_else(err),
        v => decode_scalar(ty, v).map(|l| vec![l]).ok_or_else(err),
    }
}

/// [`decode`], with the attribute name in the error message.
pub fn decode_named(name: &str, ty: ValueType, payload: &Payload) -> Result<Vec<Literal>, PayloadError> {
    decode(ty, payload).map_err(|mut e| {
        e.name = name.to_owned();
        e
    })
}

fn decode_scalar(ty: ValueType, v: Value) -> Option<Literal> {
    match (ty, v) {
        (ValueType::Keyword | ValueType::Text | ValueType::KeywordList, Value::String(s)) => Some(Literal::Str(s)),
        (ValueType::Int, Value::Number(n)) => n.as_i64().map(Literal::Int),
        (ValueType::Int, Value::String(s)) => s.parse::<i64>().ok().map(Literal::Int),
        (ValueType::Double, Value::Number(n)) => n.as_f64().filter(|f| f.is_finite()).map(Literal::Double),
        (ValueType::Double, Value::String(s)) => s.parse::<f64>().ok().filter(|f| f.is_finite()).map(Literal::Double),
        (ValueType::Bool, Value::Bool(b)) => Some(Literal::Bool(b)),
        (ValueType::Bool, Value::String(s)) => match s.as_str() {
            "true" => Some(Literal::Bool(true)),
            "false" => Some(Literal::Bool(false)),
            _ => None,
        },
        (ValueType::Datetime, Value::String(s)) => parse_datetime(&s).map(Literal::Time),
        _ => None,
    }
}

/// Encodes values as a `json/plain` payload with `type` metadata. Non-list types encode the
/// first value (no value encodes JSON `null`, i.e. "unset"); KeywordList encodes a JSON list.
/// Datetime values (`Time`, or `Int` taken as unix nanoseconds) are written as RFC3339Nano UTC;
/// other literals are written as their natural JSON (non-finite doubles as `null`).
pub fn encode(ty: ValueType, values: &[Literal]) -> Payload {
    let json = match ty {
        ValueType::KeywordList => Value::Array(values.iter().map(|v| literal_json(ty, v)).collect()),
        _ => values.first().map_or(Value::Null, |v| literal_json(ty, v)),
    };
    let data = serde_json::to_vec(&json).unwrap_or_else(|_| b"null".to_vec());
    let mut metadata = HashMap::new();
    metadata.insert(ENCODING.to_owned(), JSON_PLAIN.to_vec());
    metadata.insert(TYPE.to_owned(), ty.name().as_bytes().to_vec());
    Payload { metadata, data, ..Default::default() }
}

fn literal_json(ty: ValueType, v: &Literal) -> Value {
    match v {
        Literal::Str(s) => Value::String(s.clone()),
        Literal::Int(i) if ty == ValueType::Datetime => Value::String(format_datetime(*i)),
        Literal::Int(i) => Value::Number((*i).into()),
        Literal::Double(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Literal::Bool(b) => Value::Bool(*b),
        Literal::Time(t) if ty == ValueType::Int => Value::Number((*t).into()),
        Literal::Time(t) => Value::String(format_datetime(*t)),
    }
}

/// The value type named by the payload's `type` metadata (case-insensitive), if any.
pub fn payload_type(payload: &Payload) -> Option<ValueType> {
    let raw = payload.metadata.get(TYPE)?;
    ValueType::from_name(std::str::from_utf8(raw).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(data: &str) -> Payload {
        Payload { data: data.as_bytes().to_vec(), ..Default::default() }
    }

    fn round_trip(ty: ValueType, values: Vec<Literal>) {
        let p = encode(ty, &values);
        assert_eq!(payload_type(&p), Some(ty));
        assert_eq!(p.metadata.get("encoding").map(Vec::as_slice), Some(&b"json/plain"[..]));
        assert_eq!(decode(ty, &p), Ok(values), "{ty} {:?}", String::from_utf8_lossy(&p.data));
    }

    #[test]
    fn round_trips_every_type() {
        round_trip(ValueType::Keyword, vec![Literal::Str("a \"b\" ü".into())]);
        round_trip(ValueType::Text, vec![Literal::Str("hello world".into())]);
        round_trip(ValueType::Int, vec![Literal::Int(-42)]);
        round_trip(ValueType::Int, vec![Literal::Int(i64::MAX)]);
        round_trip(ValueType::Double, vec![Literal::Double(1.5)]);
        round_trip(ValueType::Double, vec![Literal::Double(-0.1)]);
        round_trip(ValueType::Bool, vec![Literal::Bool(true)]);
        round_trip(ValueType::Bool, vec![Literal::Bool(false)]);
        round_trip(ValueType::Datetime, vec![Literal::Time(1_704_067_200_000_000_000)]);
        round_trip(ValueType::Datetime, vec![Literal::Time(1_704_067_200_123_456_789)]);
        round_trip(ValueType::KeywordList, vec![Literal::Str("a".into()), Literal::Str("b".into())]);
        for ty in ValueType::ALL {
            round_trip(ty, vec![]);
        }
    }

    #[test]
    fn encodes_as_go_does() {
        assert_eq!(encode(ValueType::Keyword, &[Literal::Str("x".into())]).data, b"\"x\"");
        assert_eq!(encode(ValueType::Int, &[Literal::Int(7)]).data, b"7");
        assert_eq!(encode(ValueType::Bool, &[Literal::Bool(true)]).data, b"true");
        assert_eq!(
            encode(ValueType::Datetime, &[Literal::Time(1_704_067_200_000_000_000)]).data,
            b"\"2024-01-01T00:00:00Z\""
        );
        assert_eq!(
            encode(ValueType::Datetime, &[Literal::Int(1_704_067_200_500_000_000)]).data,
            b"\"2024-01-01T00:00:00.5Z\""
        );
        assert_eq!(encode(ValueType::KeywordList, &[Literal::Str("a".into())]).data, b"[\"a\"]");
        assert_eq!(encode(ValueType::KeywordList, &[]).data, b"[]");
        assert_eq!(encode(ValueType::Keyword, &[]).data, b"null");
        assert_eq!(encode(ValueType::Double, &[Literal::Double(f64::NAN)]).data, b"null");
        assert_eq!(encode(ValueType::Keyword, &[]).metadata.get("type").map(Vec::as_slice), Some(&b"Keyword"[..]));
    }

    #[test]
    fn decodes_lenient_forms() {
        assert_eq!(decode(ValueType::Int, &payload("\"123\"")), Ok(vec![Literal::Int(123)]));
        assert_eq!(decode(ValueType::Int, &payload("[5]")), Ok(vec![Literal::Int(5)]));
        assert_eq!(decode(ValueType::Double, &payload("2")), Ok(vec![Literal::Double(2.0)]));
        assert_eq!(decode(ValueType::Double, &payload("\"2.5\"")), Ok(vec![Literal::Double(2.5)]));
        assert_eq!(decode(ValueType::Bool, &payload("\"false\"")), Ok(vec![Literal::Bool(false)]));
        assert_eq!(decode(ValueType::KeywordList, &payload("\"solo\"")), Ok(vec![Literal::Str("solo".into())]));
        assert_eq!(
            decode(ValueType::Datetime, &payload("\"2024-01-01T02:00:00+02:00\"")),
            Ok(vec![Literal::Time(1_704_067_200_000_000_000)])
        );
    }

    #[test]
    fn decodes_unset_forms() {
        for ty in ValueType::ALL {
            assert_eq!(decode(ty, &payload("")), Ok(vec![]));
            assert_eq!(decode(ty, &payload("null")), Ok(vec![]));
            assert_eq!(decode(ty, &payload(" [ ] ")), Ok(vec![]));
            let mut p = payload("whatever");
            p.metadata.insert("encoding".into(), b"binary/null".to_vec());
            assert_eq!(decode(ty, &p), Ok(vec![]));
        }
    }

    #[test]
    fn rejects_mismatched_values() {
        let e = decode_named("CustomIntField", ValueType::Int, &payload("\"abc\"")).expect_err("bad");
        assert_eq!(e.to_string(), "invalid value for search attribute CustomIntField of type Int: \"abc\"");
        let e = decode(ValueType::Int, &payload("1.5")).expect_err("bad");
        assert_eq!(e.to_string(), "invalid value for search attribute of type Int: 1.5");
        for (ty, data) in [
            (ValueType::Keyword, "1"),
            (ValueType::Keyword, "[\"a\",\"b\"]"),
            (ValueType::Text, "true"),
            (ValueType::Int, "99999999999999999999"),
            (ValueType::Int, "{}"),
            (ValueType::Double, "\"x\""),
            (ValueType::Bool, "1"),
            (ValueType::Datetime, "\"notatime\""),
            (ValueType::Datetime, "12"),
            (ValueType::KeywordList, "[\"a\", 1]"),
            (ValueType::KeywordList, "{\"a\":1}"),
            (ValueType::Keyword, "[null]"),
            (ValueType::Keyword, "\"unterminated"),
        ] {
            assert!(decode(ty, &payload(data)).is_err(), "{ty} {data}");
        }
        let long = format!("\"{}", "x".repeat(500));
        let e = decode(ValueType::Keyword, &payload(&long)).expect_err("bad");
        assert!(e.data.len() < 210);
    }

    #[test]
    fn payload_type_reads_metadata() {
        let mut p = payload("1");
        assert_eq!(payload_type(&p), None);
        p.metadata.insert("type".into(), b"keywordlist".to_vec());
        assert_eq!(payload_type(&p), Some(ValueType::KeywordList));
        p.metadata.insert("type".into(), vec![0xff]);
        assert_eq!(payload_type(&p), None);
    }
}
