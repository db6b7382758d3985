//! The HTTP API's JSON: proto3 JSON of the request and response messages (prost-reflect over the
//! Temporal API's descriptors), with Temporal's payload shorthand: a payload encoded `json/plain`
//! (and nothing else) is the JSON value itself, `binary/null` is `null`, a `json/protobuf` one
//! is its object with `_protoMessageType`, and `Payloads` whose payloads all have a shorthand is an
//! array of them. Requests may use either form, as on Temporal (`go.temporal.io/api`'s
//! `payload_json.go` is the model).

use base64::prelude::{BASE64_STANDARD, Engine as _};
use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage, SerializeOptions,
};
use serde_json::{Map, Value};

const PAYLOAD: &str = "temporal.api.common.v1.Payload";
const PAYLOADS: &str = "temporal.api.common.v1.Payloads";
const MESSAGE_TYPE_KEY: &str = "_protoMessageType";

/// A request message from its JSON.
pub fn request_from_json(desc: &MessageDescriptor, mut json: Value, shorthand: bool) -> Result<DynamicMessage, String> {
    if shorthand {
        walk(&mut json, desc, Direction::In);
    }
    let options = DeserializeOptions::new().deny_unknown_fields(false);
    DynamicMessage::deserialize_with_options(desc.clone(), json, &options).map_err(|e| e.to_string())
}

/// A message as the HTTP API answers it.
pub fn to_json(message: &DynamicMessage, shorthand: bool) -> Value {
    let options = SerializeOptions::new().skip_default_fields(true).stringify_64_bit_integers(true);
    let mut json = message.serialize_with_options(serde_json::value::Serializer, &options).unwrap_or(Value::Null);
    if shorthand {
        walk(&mut json, &message.descriptor(), Direction::Out);
    }
    json
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    /// Shorthand to proto3 JSON.
    In,
    /// Proto3 JSON to shorthand.
    Out,
}

/// Rewrites every payload below `json` (a message of type `desc`) in `direction`.
fn walk(json: &mut Value, desc: &MessageDescriptor, direction: Direction) {
    let Value::Object(object) = json else { return };
    for field in desc.fields() {
        let Kind::Message(inner) = field.kind() else { continue };
        if inner.full_name().starts_with("google.protobuf.") {
            continue;
        }
        let names = [field.json_name(), field.name()];
        let keys = if names[0] == names[1] { &names[..1] } else { &names[..] };
        for key in keys {
            if let Some(value) = object.get_mut(*key) {
                visit_field(value, &field, &inner, direction);
            }
        }
    }
}

fn visit_field(value: &mut Value, field: &FieldDescriptor, inner: &MessageDescriptor, direction: Direction) {
    if field.is_map() {
        let value_field = inner.map_entry_value_field();
        let Kind::Message(value_desc) = value_field.kind() else { return };
        if let Value::Object(entries) = value {
            for entry in entries.values_mut() {
                visit_message(entry, &value_desc, direction);
            }
        }
    } else if field.is_list() {
        if let Value::Array(items) = value {
            for item in items {
                visit_message(item, inner, direction);
            }
        }
    } else {
        visit_message(value, inner, direction);
    }
}

fn visit_message(value: &mut Value, desc: &MessageDescriptor, direction: Direction) {
    match (desc.full_name(), direction) {
        (PAYLOAD, Direction::Out) => {
            if let Some(short) = payload_out(value) {
                *value = short;
            }
        }
        (PAYLOADS, Direction::Out) => {
            let items = value.get("payloads").and_then(Value::as_array).cloned().unwrap_or_default();
            let short: Option<Vec<Value>> = items.iter().map(payload_out).collect();
            if let Some(short) = short {
                *value = Value::Array(short);
            }
        }
        (PAYLOAD, Direction::In) => *value = payload_in(value.take()),
        (PAYLOADS, Direction::In) => {
            if let Value::Array(items) = value {
                let items: Vec<Value> = std::mem::take(items).into_iter().map(payload_in).collect();
                *value = serde_json::json!({ "payloads": items });
            } else {
                walk(value, desc, direction);
            }
        }
        _ => walk(value, desc, direction),
    }
}

fn decoded(value: Option<&Value>) -> Option<Vec<u8>> {
    BASE64_STANDARD.decode(value?.as_str()?).ok()
}

/// The shorthand of a payload in proto3 JSON, if it has one.
fn payload_out(payload: &Value) -> Option<Value> {
    let metadata = payload.get("metadata").and_then(Value::as_object)?;
    let encoding = decoded(metadata.get("encoding"))?;
    let data = decoded(payload.get("data")).unwrap_or_default();
    match encoding.as_slice() {
        b"binary/null" => Some(Value::Null),
        b"json/plain" if metadata.len() == 1 => serde_json::from_slice(&data).ok(),
        b"json/protobuf" if metadata.len() == 2 => {
            let message_type = String::from_utf8(decoded(metadata.get("messageType"))?).ok()?;
            let mut object: Map<String, Value> = serde_json::from_slice(&data).ok()?;
            object.insert(MESSAGE_TYPE_KEY.into(), Value::String(message_type));
            Some(Value::Object(object))
        }
        _ => None,
    }
}

/// A payload given as shorthand or in proto3 JSON, in proto3 JSON.
fn payload_in(value: Value) -> Value {
    let b64 = |bytes: &[u8]| Value::String(BASE64_STANDARD.encode(bytes));
    let full = |encoding: &[u8], data: &[u8]| serde_json::json!({ "metadata": { "encoding": b64(encoding) }, "data": b64(data) });
    match value {
        Value::Null => serde_json::json!({ "metadata": { "encoding": b64(b"binary/null") } }),
        Value::Object(object) if is_full_payload(&object) => Value::Object(object),
        Value::Object(mut object) if object.get(MESSAGE_TYPE_KEY).is_some_and(Value::is_string) => {
            let message_type = object.remove(MESSAGE_TYPE_KEY).and_then(|v| v.as_str().map(str::to_string));
            let data = serde_json::to_vec(&object).unwrap_or_default();
            serde_json::json!({
                "metadata": {
                    "encoding": b64(b"json/protobuf"),
                    "messageType": b64(message_type.unwrap_or_default().as_bytes()),
                },
                "data": b64(&data),
            })
        }
        other => full(b"json/plain", &serde_json::to_vec(&other).unwrap_or_default()),
    }
}

/// An object that is a payload in proto3 JSON: `metadata` (base64 strings, with an encoding)
/// and `data` (base64), nothing else; or a `binary/null` one without data.
fn is_full_payload(object: &Map<String, Value>) -> bool {
    let Some(Value::Object(metadata)) = object.get("metadata") else { return false };
    let Some(encoding) = decoded(metadata.get("encoding")) else { return false };
    if !metadata.values().all(|v| decoded(Some(v)).is_some()) {
        return false;
    }
    match object.get("data") {
        None => object.len() == 1 && encoding == b"binary/null",
        Some(data) => object.len() == 2 && decoded(Some(data)).is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_api::routes::Routes;

    fn desc(name: &str) -> MessageDescriptor {
        Routes::get().pool.get_message_by_name(name).expect("message")
    }

    #[test]
    fn payloads_go_out_as_shorthand_and_come_back() {
        let d = desc("temporal.api.workflowservice.v1.SignalWorkflowExecutionRequest");
        let request = serde_json::json!({
            "namespace": "default",
            "signalName": "go",
            "input": [{"a": 1}, "two", null],
            "header": {"fields": {"h": 3}},
        });
        let message = request_from_json(&d, request.clone(), true).expect("parses");
        let back = to_json(&message, true);
        assert_eq!(back["input"], request["input"]);
        assert_eq!(back["header"], request["header"]);
        let long = to_json(&message, false);
        let first = &long["input"]["payloads"][0];
        assert_eq!(first["metadata"]["encoding"], BASE64_STANDARD.encode("json/plain"));
        assert_eq!(first["data"], BASE64_STANDARD.encode(r#"{"a":1}"#));
        // The long form is accepted too.
        let again = request_from_json(&d, long.clone(), true).expect("parses");
        assert_eq!(to_json(&again, true)["input"], request["input"]);
    }

    #[test]
    fn a_payload_without_shorthand_stays_in_proto_json() {
        let d = desc("temporal.api.common.v1.Payloads");
        let binary = serde_json::json!({"payloads": [
            {"metadata": {"encoding": BASE64_STANDARD.encode("binary/plain")}, "data": BASE64_STANDARD.encode([0u8, 1])}
        ]});
        let message = request_from_json(&d, binary.clone(), false).expect("parses");
        assert_eq!(to_json(&message, true), binary);
    }
}
