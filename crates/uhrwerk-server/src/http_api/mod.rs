//! Temporal's HTTP API (`--http-port`): the JSON mapping of the `google.api.http` annotations of
//! WorkflowService and OperatorService, answered by the same frontend as gRPC.
//!
//! As Temporal's: path variables and, for methods without a body, query parameters fill the
//! request; bodies and answers are proto3 JSON with Temporal's payload shorthand (off with
//! `?noPayloadShorthand`), `?pretty` indents; errors are `google.rpc.Status` as JSON with the
//! HTTP status grpc-gateway gives their code. A `Grpc-Timeout` header sets the call's deadline.

pub(crate) mod call;
mod json;
mod routes;

use std::sync::Arc;

use axum::body::Body as HttpBody;
use axum::extract::Request;
use axum::response::Response;
use prost::Message;
use prost_reflect::{DynamicMessage, Kind, MessageDescriptor};
use serde_json::{Map, Value};
use tokio::sync::watch;
use tonic::{Code, Status};

use crate::frontend::Frontend;
use routes::{Body, Routes};

pub use json::to_json;

/// The Temporal API's descriptors (decoded on first use), for other renderings of its messages.
pub fn descriptors() -> &'static prost_reflect::DescriptorPool {
    &Routes::get().pool
}

/// Temporal's limit on a request body: gRPC's default message size.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

pub async fn serve(listener: crate::tls::HttpListener, frontend: Frontend, mut shutdown: watch::Receiver<bool>) {
    // The route table and descriptors are built on the first call: a server nobody calls over
    // HTTP does not carry them in memory.
    let frontend = Arc::new(frontend);
    let app = axum::Router::new().fallback(move |request: Request| {
        let frontend = frontend.clone();
        async move { handle(&frontend, request).await }
    });
    let stop = async move {
        let _ = shutdown.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
        tracing::warn!("the HTTP API stopped: {e}");
    }
}

/// How the answer is written.
#[derive(Clone, Copy)]
struct Style {
    pretty: bool,
    shorthand: bool,
}

async fn handle(frontend: &Frontend, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let query: Vec<(String, String)> = parts.uri.query().map(parse_query).unwrap_or_default();
    let style = Style {
        pretty: query.iter().any(|(k, _)| k == "pretty"),
        shorthand: !query.iter().any(|(k, _)| k == "noPayloadShorthand"),
    };
    let routes = Routes::get();
    let Some(matched) = routes.find(&parts.method, parts.uri.path()) else {
        // As grpc-gateway: a known path with another method is 501 UNIMPLEMENTED.
        let (status, code, message) = if routes.path_exists(parts.uri.path()) {
            (http::StatusCode::NOT_IMPLEMENTED, Code::Unimplemented, "Method Not Allowed")
        } else {
            (http::StatusCode::NOT_FOUND, Code::NotFound, "Not Found")
        };
        return reply(status, &serde_json::json!({"code": code as i32, "message": message}), style);
    };
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(e) => return error(&Status::resource_exhausted(format!("request body: {e}")), style),
    };
    let method = &matched.route.method;
    let input = method.input();
    let mut json = match matched.route.body {
        Body::All if body.iter().all(u8::is_ascii_whitespace) => Value::Object(Map::new()),
        Body::All => match serde_json::from_slice::<Value>(&body) {
            Ok(value @ Value::Object(_)) => value,
            Ok(_) => return error(&Status::invalid_argument("the request body must be a JSON object"), style),
            Err(e) => return error(&Status::invalid_argument(format!("the request body is not JSON: {e}")), style),
        },
        Body::None => {
            let mut object = Value::Object(Map::new());
            for (key, value) in query.iter().filter(|(k, _)| k != "pretty" && k != "noPayloadShorthand") {
                let path: Vec<String> = key.split('.').map(str::to_string).collect();
                set_field(&mut object, &input, &path, value, true);
            }
            object
        }
    };
    for (path, value) in &matched.fields {
        set_field(&mut json, &input, path, value, false);
    }
    let message = match json::request_from_json(&input, json, style.shorthand) {
        Ok(message) => message,
        Err(e) => return error(&Status::invalid_argument(e), style),
    };
    let mut metadata = tonic::metadata::MetadataMap::new();
    for name in ["authorization", "temporal-namespace", "grpc-timeout"] {
        if let Some(value) = parts.headers.get(name).and_then(|v| v.to_str().ok())
            && let Ok(value) = value.parse()
        {
            metadata.insert(name, value);
        }
    }
    // As grpc-gateway: a `Grpc-Timeout` header is the call's deadline. Long calls (a query
    // waiting for a worker, an update) hold as a gRPC call with that deadline does, and the
    // call ends with DEADLINE_EXCEEDED when it passes; without one they hold at most the
    // server's long-poll limit.
    let deadline =
        metadata.get("grpc-timeout").and_then(|v| v.to_str().ok()).and_then(crate::frontend::parse_grpc_timeout);
    let service = method.parent_service().full_name().to_string();
    let answer = call::unary(frontend, &service, method.name(), message.encode_to_vec(), metadata);
    let answer = match deadline {
        Some(wait) => crate::clock::timeout(wait, answer)
            .await
            .unwrap_or_else(|| Err(Status::deadline_exceeded("context deadline exceeded"))),
        None => answer.await,
    };
    match answer {
        Ok(bytes) => match DynamicMessage::decode(method.output(), bytes) {
            Ok(response) => reply(http::StatusCode::OK, &json::to_json(&response, style.shorthand), style),
            Err(e) => error(&Status::internal(format!("response of {}: {e}", method.name())), style),
        },
        Err(status) => error(&status, style),
    }
}

/// Puts `value` at the field `path` (proto or JSON names) of `object`, a message of type `desc`,
/// under the field's JSON name; typed by the field's kind when it comes from a query string.
fn set_field(object: &mut Value, desc: &MessageDescriptor, path: &[String], value: &str, from_query: bool) {
    let Some((first, rest)) = path.split_first() else { return };
    let Some(field) = desc.get_field_by_name(first).or_else(|| desc.get_field_by_json_name(first)) else { return };
    let Value::Object(map) = object else { return };
    let key = field.json_name().to_string();
    // One spelling per field: a value under the proto name moves to the JSON name.
    if field.name() != key
        && let Some(v) = map.remove(field.name())
    {
        map.entry(key.clone()).or_insert(v);
    }
    if !rest.is_empty() {
        let Kind::Message(inner) = field.kind() else { return };
        let child = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
        set_field(child, &inner, rest, value, from_query);
        return;
    }
    let typed = if from_query { typed_value(&field.kind(), value) } else { Value::String(value.to_string()) };
    if field.is_list() {
        match map.entry(key).or_insert_with(|| Value::Array(Vec::new())) {
            Value::Array(items) => items.push(typed),
            other => *other = Value::Array(vec![typed]),
        }
    } else {
        map.insert(key, typed);
    }
}

/// A query-string value as proto3 JSON expects the field's kind.
fn typed_value(kind: &Kind, value: &str) -> Value {
    match kind {
        Kind::Bool => Value::Bool(matches!(value, "true" | "1" | "")),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Uint32 | Kind::Fixed32 => {
            value.parse::<i64>().map_or_else(|_| Value::String(value.to_string()), Value::from)
        }
        Kind::Float | Kind::Double => value
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Value::String(value.to_string()), Value::Number),
        _ => Value::String(value.to_string()),
    }
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (routes::percent_decode(k, true), routes::percent_decode(v, true))
        })
        .collect()
}

fn reply(status: http::StatusCode, body: &Value, style: Style) -> Response {
    let text = if style.pretty { serde_json::to_string_pretty(body) } else { serde_json::to_string(body) };
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(HttpBody::from(text.unwrap_or_default()))
        .expect("a valid response")
}

/// A gRPC status as Temporal's HTTP API answers it: `google.rpc.Status` in JSON (with the
/// error's details, e.g. `NotFoundFailure`) under grpc-gateway's HTTP status for the code.
fn error(status: &Status, style: Style) -> Response {
    let pool = &Routes::get().pool;
    let mut body = serde_json::json!({"code": status.code() as i32, "message": status.message()});
    if !status.details().is_empty()
        && let Some(desc) = pool.get_message_by_name("google.rpc.Status")
        && let Ok(decoded) = DynamicMessage::decode(desc, status.details())
        && let Some(list) = json::to_json(&decoded, style.shorthand).get("details")
    {
        body["details"] = list.clone();
    }
    reply(http_status(status.code()), &body, style)
}

/// grpc-gateway's `HTTPStatusFromCode`.
fn http_status(code: Code) -> http::StatusCode {
    use http::StatusCode as S;
    match code {
        Code::Ok => S::OK,
        Code::Cancelled => S::from_u16(499).unwrap_or(S::BAD_REQUEST),
        Code::Unknown | Code::Internal | Code::DataLoss => S::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => S::BAD_REQUEST,
        Code::DeadlineExceeded => S::GATEWAY_TIMEOUT,
        Code::NotFound => S::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => S::CONFLICT,
        Code::PermissionDenied => S::FORBIDDEN,
        Code::Unauthenticated => S::UNAUTHORIZED,
        Code::ResourceExhausted => S::TOO_MANY_REQUESTS,
        Code::Unimplemented => S::NOT_IMPLEMENTED,
        Code::Unavailable => S::SERVICE_UNAVAILABLE,
    }
}
