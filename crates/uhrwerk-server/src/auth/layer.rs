//! The tower layer that checks every call to WorkflowService and OperatorService before it is
//! routed or served: the API key in `authorization: Bearer <key>`, then the role the method needs
//! in the namespace the request names (read from the message with the API's descriptors). A
//! refusal is PERMISSION_DENIED "Request unauthorized.", as Temporal answers, for a missing key,
//! an unknown key and a missing role alike. Health checks and GetSystemInfo are always allowed
//! (Temporal's `IsHealthCheckAPI`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;

use super::ApiKeys;
use crate::unary::{BoxError, Unary};

const SERVICES: [&str; 2] =
    ["temporal.api.workflowservice.v1.WorkflowService", "temporal.api.operatorservice.v1.OperatorService"];

/// Temporal's answer to a call it does not authorize.
pub const UNAUTHORIZED: &str = "Request unauthorized.";

/// Who may call what.
pub struct Authorize {
    keys: ApiKeys,
}

impl Authorize {
    pub fn new(keys: ApiKeys) -> Arc<Self> {
        Arc::new(Self { keys })
    }

    pub fn keys(&self) -> usize {
        self.keys.len()
    }

    /// Whether a call of `service`/`method` with `authorization` on a message naming
    /// `namespace` is allowed.
    fn allows(&self, method: &str, authorization: Option<&str>, namespace: &str) -> bool {
        let Some(key) = authorization.and_then(bearer) else { return false };
        match self.keys.claims(key) {
            Some(claims) => {
                let allowed = claims.allows(method, namespace);
                if !allowed {
                    tracing::debug!(subject = %claims.subject, method, namespace, "call refused: role missing");
                }
                allowed
            }
            None => false,
        }
    }
}

/// The token of an `authorization` header value, `Bearer <token>` (scheme case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// The namespace a request names (its `namespace` field), read with the API's descriptors.
fn namespace_of(service: &str, method: &str, message: &[u8]) -> String {
    let pool = crate::http_api::descriptors();
    let Some(method) = pool.get_service_by_name(service).and_then(|s| s.methods().find(|m| m.name() == method)) else {
        return String::new();
    };
    let Ok(decoded) = prost_reflect::DynamicMessage::decode(method.input(), message) else { return String::new() };
    decoded.get_field_by_name("namespace").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// The layer; without keys it passes everything through.
#[derive(Clone)]
pub struct AuthLayer {
    authorize: Option<Arc<Authorize>>,
}

impl AuthLayer {
    pub fn new(authorize: Option<Arc<Authorize>>) -> Self {
        Self { authorize }
    }
}

impl<S> tower_layer::Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth { inner, authorize: self.authorize.clone() }
    }
}

#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    authorize: Option<Arc<Authorize>>,
}

impl<S> tower_service::Service<http::Request<Body>> for Auth<S>
where
    S: tower_service::Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError> + Send,
{
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let path = req.uri().path().trim_start_matches('/');
        let target = path.split_once('/').filter(|(service, _)| SERVICES.contains(service));
        let (Some(authorize), Some((service, method))) = (self.authorize.clone(), target) else {
            // Health checks and anything that is not the Temporal API.
            let call = self.inner.call(req);
            return Box::pin(async move { call.await.map_err(Into::into) });
        };
        let (service, method) = (service.to_string(), method.to_string());
        if method == "GetSystemInfo" {
            let call = self.inner.call(req);
            return Box::pin(async move { call.await.map_err(Into::into) });
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let call = Unary::read(req).await?;
            let namespace = call.message().map(|message| namespace_of(&service, &method, &message)).unwrap_or_default();
            let authorization = call.parts.headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
            if !authorize.allows(&method, authorization, &namespace) {
                return Ok(tonic::Status::permission_denied(UNAUTHORIZED).into_http::<Body>());
            }
            inner.call(call.into_request()).await.map_err(Into::into)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_from_the_header() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("abc"), None);
    }

    #[test]
    fn the_namespace_is_read_from_any_request() {
        use prost::Message;
        use uhrwerk_proto::temporal::api::workflowservice::v1 as pb;
        let start = pb::StartWorkflowExecutionRequest { namespace: "orders".into(), ..Default::default() };
        let service = SERVICES[0];
        assert_eq!(namespace_of(service, "StartWorkflowExecution", &start.encode_to_vec()), "orders");
        let add = uhrwerk_proto::temporal::api::operatorservice::v1::AddSearchAttributesRequest {
            namespace: "billing".into(),
            ..Default::default()
        };
        assert_eq!(namespace_of(SERVICES[1], "AddSearchAttributes", &add.encode_to_vec()), "billing");
        assert_eq!(namespace_of(service, "ListNamespaces", &[]), "");
    }
}
