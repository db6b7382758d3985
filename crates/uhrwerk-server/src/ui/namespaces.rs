//! Namespaces: each with its state and retention, and the search attributes registered in it.

use axum::response::Response;
use maud::html;
use tonic::Request;
use uhrwerk_proto::server::operatorservice::operator_service_server::OperatorService;
use uhrwerk_proto::server::workflowservice::workflow_service_server::WorkflowService;
use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;
use uhrwerk_proto::temporal::api::operatorservice::v1 as operator_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;

use super::layout::{self, encode};
use super::timeline::duration;
use crate::frontend::Frontend;

pub async fn page(frontend: &Frontend, current: &str) -> Response {
    let listed = frontend
        .list_namespaces(Request::new(pb::ListNamespacesRequest { page_size: 100, ..Default::default() }))
        .await;
    let listed = match listed {
        Ok(r) => r.into_inner(),
        Err(status) => return layout::failed("Namespaces", current, &status),
    };
    let mut sections = Vec::new();
    for ns in &listed.namespaces {
        let info = ns.namespace_info.clone().unwrap_or_default();
        let retention =
            ns.config.as_ref().and_then(|c| c.workflow_execution_retention_ttl.as_ref()).map(|d| d.seconds * 1000);
        let attributes = frontend
            .list_search_attributes(Request::new(operator_pb::ListSearchAttributesRequest {
                namespace: info.name.clone(),
            }))
            .await
            .map(|r| r.into_inner())
            .unwrap_or_default();
        let mut custom: Vec<(String, i32)> = attributes.custom_attributes.into_iter().collect();
        custom.sort();
        sections.push((info, retention, custom));
    }
    let body = html! {
        h1 { "Namespaces" }
        table #namespaces {
            thead { tr { th { "Name" } th { "State" } th { "Retention" } th { "Custom search attributes" } } }
            tbody {
                @for (info, retention, custom) in &sections {
                    tr {
                        td { a href={ "/namespaces/" (encode(&info.name)) "/workflows" } { (info.name) } }
                        td { (enums_pb::NamespaceState::try_from(info.state).map(|s| s.as_str_name()).unwrap_or_default().trim_start_matches("NAMESPACE_STATE_")) }
                        td { (retention.map(duration).unwrap_or_default()) }
                        td {
                            @if custom.is_empty() { span.muted { "none" } }
                            @for (name, kind) in custom {
                                div { span.mono { (name) } " " span.muted { (enums_pb::IndexedValueType::try_from(*kind).map(|t| t.as_str_name()).unwrap_or_default().trim_start_matches("INDEXED_VALUE_TYPE_")) } }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page("Namespaces", current, body)
}
