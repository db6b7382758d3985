//! Actions on a run from its page: signal, cancel and terminate, and a query. Each is a POST
//! carrying the page's CSRF token, which must equal the token in the `uhrwerk_csrf` cookie (a
//! double-submit token: another site can make the browser post, but cannot read the cookie to put
//! it in the form), and, for cancel and terminate, a ticked confirmation.

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use uhrwerk_proto::temporal::api::common::v1 as common_pb;
use uhrwerk_proto::temporal::api::query::v1 as query_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use super::layout::{self, encode};
use crate::frontend::Frontend;

pub const CSRF_COOKIE: &str = "uhrwerk_csrf";

/// The CSRF token of the browser that sent `headers`, if it has one.
pub fn csrf_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == CSRF_COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|v| !v.is_empty())
}

/// A new token for a browser without one.
pub fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The `Set-Cookie` value that gives the browser `token`.
pub fn set_cookie(token: &str) -> String {
    format!("{CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict")
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct Form {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    reason: String,
    /// Signal or query name.
    #[serde(default)]
    name: String,
    /// Signal or query arguments: a JSON value, or a JSON array of several.
    #[serde(default)]
    input: String,
}

pub enum Action {
    Signal,
    Cancel,
    Terminate,
    Query,
}

pub async fn run(
    frontend: &Frontend,
    headers: &HeaderMap,
    action: Action,
    (namespace, workflow_id, run_id): (&str, &str, &str),
    form: Form,
) -> Response {
    let title = "Action refused";
    if let Some(refused) = refuse_csrf(headers, namespace, &form) {
        return refused;
    }
    if matches!(action, Action::Cancel | Action::Terminate) && form.confirm != "yes" {
        let status = tonic::Status::failed_precondition("tick the confirmation box to go ahead");
        return (http::StatusCode::BAD_REQUEST, layout::failed(title, namespace, &status)).into_response();
    }
    let execution = Some(common_pb::WorkflowExecution { workflow_id: workflow_id.into(), run_id: run_id.into() });
    let identity = "uhrwerk-ui".to_string();
    let back = format!("/namespaces/{}/workflows/{}/{}", encode(namespace), encode(workflow_id), encode(run_id));
    let input = match parse_input(&form.input) {
        Ok(input) => input,
        Err(message) => return layout::failed(title, namespace, &tonic::Status::invalid_argument(message)),
    };
    let outcome = match action {
        Action::Terminate => super::routed::<_, pb::TerminateWorkflowExecutionResponse>(
            frontend,
            "TerminateWorkflowExecution",
            pb::TerminateWorkflowExecutionRequest {
                namespace: namespace.into(),
                workflow_execution: execution,
                reason: form.reason,
                identity,
                ..Default::default()
            },
        )
        .await
        .map(|_| None),
        Action::Cancel => super::routed::<_, pb::RequestCancelWorkflowExecutionResponse>(
            frontend,
            "RequestCancelWorkflowExecution",
            pb::RequestCancelWorkflowExecutionRequest {
                namespace: namespace.into(),
                workflow_execution: execution,
                identity,
                request_id: uuid::Uuid::new_v4().to_string(),
                reason: form.reason,
                ..Default::default()
            },
        )
        .await
        .map(|_| None),
        Action::Signal => super::routed::<_, pb::SignalWorkflowExecutionResponse>(
            frontend,
            "SignalWorkflowExecution",
            pb::SignalWorkflowExecutionRequest {
                namespace: namespace.into(),
                workflow_execution: execution,
                signal_name: form.name,
                input,
                identity,
                request_id: uuid::Uuid::new_v4().to_string(),
                ..Default::default()
            },
        )
        .await
        .map(|_| None),
        Action::Query => super::routed::<_, pb::QueryWorkflowResponse>(
            frontend,
            "QueryWorkflow",
            pb::QueryWorkflowRequest {
                namespace: namespace.into(),
                execution,
                query: Some(query_pb::WorkflowQuery {
                    query_type: form.name.clone(),
                    query_args: input,
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .map(|r| Some((form.name, r))),
    };
    match outcome {
        Ok(None) => Redirect::to(&back).into_response(),
        Ok(Some((name, answer))) => super::workflow::query_answer(namespace, workflow_id, &back, &name, &answer),
        Err(status) => layout::failed(title, namespace, &status),
    }
}

/// The refusal of a form whose CSRF token is not the one in the browser's cookie; None lets it
/// through.
pub fn refuse_csrf(headers: &HeaderMap, namespace: &str, form: &Form) -> Option<Response> {
    if csrf_cookie(headers).is_some_and(|cookie| cookie == form.csrf) {
        return None;
    }
    let status = tonic::Status::permission_denied(
        "the form's CSRF token does not match this browser's: reload the page and try again",
    );
    Some((http::StatusCode::FORBIDDEN, layout::failed("Action refused", namespace, &status)).into_response())
}

/// The browser's CSRF token, or a new one (true) that the response must set.
pub fn token_for(headers: &HeaderMap) -> (String, bool) {
    match csrf_cookie(headers) {
        Some(token) => (token, false),
        None => (new_token(), true),
    }
}

/// Gives the browser `token` with `response` when it is new.
pub fn with_cookie(mut response: Response, token: &str, fresh: bool) -> Response {
    if fresh && let Ok(value) = set_cookie(token).parse() {
        response.headers_mut().insert(http::header::SET_COOKIE, value);
    }
    response
}

/// Arguments typed in a form: empty for none, a JSON array for several, any other JSON value for
/// one; each becomes a `json/plain` payload.
fn parse_input(text: &str) -> Result<Option<common_pb::Payloads>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("the input is not JSON: {e}"))?;
    let values = match value {
        serde_json::Value::Array(items) => items,
        one => vec![one],
    };
    let payloads = values
        .iter()
        .map(|v| common_pb::Payload {
            metadata: [("encoding".to_string(), b"json/plain".to_vec())].into_iter().collect(),
            data: serde_json::to_vec(v).unwrap_or_default(),
            ..Default::default()
        })
        .collect();
    Ok(Some(common_pb::Payloads { payloads }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csrf_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::COOKIE, "a=1; uhrwerk_csrf=abc; b=2".parse().expect("header"));
        assert_eq!(csrf_cookie(&headers).as_deref(), Some("abc"));
        assert_eq!(csrf_cookie(&HeaderMap::new()), None);
    }

    #[test]
    fn form_input_becomes_json_payloads() {
        assert_eq!(parse_input(" ").expect("empty"), None);
        let one = parse_input(r#"{"a": 1}"#).expect("one").expect("payloads");
        assert_eq!(one.payloads.len(), 1);
        assert_eq!(one.payloads[0].data, br#"{"a":1}"#);
        assert_eq!(parse_input("[1, 2]").expect("two").expect("payloads").payloads.len(), 2);
        assert!(parse_input("{").is_err());
    }
}
