//! The built-in web UI (`--ui-port`): server-rendered pages over the same frontend the gRPC and
//! HTTP APIs use. Every value from a workflow is escaped (maud escapes whatever it interpolates);
//! the pages work without JavaScript, which only adds auto-refresh.
//!
//! Pages so far: the workflow list (query, status filters and counts, paging) and a run's
//! detail (summary, input, pending activities, timeline, the paginated history, and its actions:
//! query, signal, cancel, terminate).

mod actions;
mod health;
mod layout;
mod namespaces;
mod schedules;
mod task_queues;
mod timeline;
mod workflow;
mod workflows;

use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tokio::sync::watch;

use crate::frontend::Frontend;

/// What the pages read from.
struct Ui {
    frontend: Frontend,
}

type Shared = State<Arc<Ui>>;

pub async fn serve(listener: crate::tls::HttpListener, frontend: Frontend, mut shutdown: watch::Receiver<bool>) {
    let app = axum::Router::new()
        .route("/", get(|| async { Redirect::to("/namespaces/default/workflows") }))
        .route("/static/ui.css", get(|| async { ([(http::header::CONTENT_TYPE, "text/css")], layout::CSS) }))
        .route("/static/ui.js", get(|| async { ([(http::header::CONTENT_TYPE, "text/javascript")], layout::JS) }))
        .route("/namespaces/{namespace}/workflows", get(list))
        .route("/namespaces/{namespace}/health", get(health_page))
        .route("/namespaces/{namespace}/task-queues", get(task_queue_index))
        .route("/namespaces/{namespace}/task-queues/{name}", get(task_queue_page))
        .route("/namespaces", get(namespace_page))
        .route("/switch-namespace", get(switch_namespace))
        .route("/namespaces/{namespace}/schedules", get(schedule_index))
        .route("/namespaces/{namespace}/schedules/{schedule_id}", get(schedule_page))
        .route("/namespaces/{namespace}/schedules/{schedule_id}/{action}", post(schedule_act))
        .route("/namespaces/{namespace}/workflows/{workflow_id}/{run_id}", get(detail))
        .route("/namespaces/{namespace}/workflows/{workflow_id}/{run_id}/history.json", get(history_download))
        .route("/namespaces/{namespace}/workflows/{workflow_id}/{run_id}/{action}", post(act))
        .fallback(|| async { layout::not_found() })
        .with_state(Arc::new(Ui { frontend }));
    let stop = async move {
        let _ = shutdown.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
        tracing::warn!("the web UI stopped: {e}");
    }
}

#[derive(serde::Deserialize)]
struct Switch {
    namespace: String,
}

/// The header's namespace box: to the workflows of the namespace typed in.
async fn switch_namespace(Query(to): Query<Switch>) -> Redirect {
    Redirect::to(&format!("/namespaces/{}/workflows", layout::encode(to.namespace.trim())))
}

async fn task_queue_index(State(ui): Shared, Path(namespace): Path<String>) -> Response {
    task_queues::index(&ui.frontend, &namespace).await
}

async fn task_queue_page(State(ui): Shared, Path((namespace, name)): Path<(String, String)>) -> Response {
    task_queues::page(&ui.frontend, &namespace, &name).await
}

async fn namespace_page(State(ui): Shared) -> Response {
    namespaces::page(&ui.frontend, "default").await
}

async fn health_page(State(ui): Shared, Path(namespace): Path<String>) -> Response {
    health::page(&ui.frontend, &namespace).await
}

async fn list(State(ui): Shared, Path(namespace): Path<String>, Query(params): Query<workflows::Params>) -> Response {
    workflows::page(&ui.frontend, &namespace, params).await.into_response()
}

async fn detail(
    State(ui): Shared,
    headers: HeaderMap,
    Path((namespace, workflow_id, run_id)): Path<(String, String, String)>,
    Query(params): Query<workflow::Params>,
) -> Response {
    // The page's forms carry the browser's CSRF token; a browser without one gets one.
    let (token, fresh) = actions::token_for(&headers);
    let response = workflow::page(&ui.frontend, &namespace, &workflow_id, &run_id, params, &token).await;
    actions::with_cookie(response, &token, fresh)
}

async fn history_download(
    State(ui): Shared,
    Path((namespace, workflow_id, run_id)): Path<(String, String, String)>,
) -> Response {
    workflow::download(&ui.frontend, &namespace, &workflow_id, &run_id).await
}

async fn schedule_index(State(ui): Shared, Path(namespace): Path<String>) -> Response {
    schedules::index(&ui.frontend, &namespace).await
}

async fn schedule_page(
    State(ui): Shared,
    headers: HeaderMap,
    Path((namespace, schedule_id)): Path<(String, String)>,
) -> Response {
    let (token, fresh) = actions::token_for(&headers);
    let response = schedules::page(&ui.frontend, &namespace, &schedule_id, &token).await;
    actions::with_cookie(response, &token, fresh)
}

async fn schedule_act(
    State(ui): Shared,
    headers: HeaderMap,
    Path((namespace, schedule_id, action)): Path<(String, String, String)>,
    Form(form): Form<actions::Form>,
) -> Response {
    schedules::act(&ui.frontend, &headers, &namespace, &schedule_id, &action, form).await
}

async fn act(
    State(ui): Shared,
    headers: HeaderMap,
    Path((namespace, workflow_id, run_id, action)): Path<(String, String, String, String)>,
    Form(form): Form<actions::Form>,
) -> Response {
    let action = match action.as_str() {
        "signal" => actions::Action::Signal,
        "cancel" => actions::Action::Cancel,
        "terminate" => actions::Action::Terminate,
        "query" => actions::Action::Query,
        _ => return layout::not_found(),
    };
    actions::run(&ui.frontend, &headers, action, (&namespace, &workflow_id, &run_id), form).await
}

/// Calls a WorkflowService method as a client would, through the cluster's routing (in a
/// cluster, the node that serves the workflow carries the action out).
pub(super) async fn routed<Req: prost::Message, Resp: prost::Message + Default>(
    frontend: &Frontend,
    method: &str,
    request: Req,
) -> Result<Resp, tonic::Status> {
    let service = "temporal.api.workflowservice.v1.WorkflowService";
    let bytes =
        crate::http_api::call::unary(frontend, service, method, request.encode_to_vec(), Default::default()).await?;
    Resp::decode(bytes).map_err(|e| tonic::Status::internal(format!("undecodable {method} response: {e}")))
}
