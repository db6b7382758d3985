//! The tower layer that checks every call to WorkflowService and OperatorService before it is
//! routed or served: who calls (the API key or JWT in `authorization: Bearer <token>`, else the
//! mTLS client certificate's subject), then the role the method needs in the namespace the
//! request names (read from the message with the API's descriptors). A refusal is
//! PERMISSION_DENIED "Request unauthorized.", as Temporal answers, for missing credentials,
//! unknown or invalid ones and a missing role alike. Health checks and GetSystemInfo are always
//! allowed (Temporal's `IsHealthCheckAPI`). An allowed call carries the caller's claims as a
//! request extension (ListNamespaces shows what they may read).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;

use super::{Claims, Jwt, KeyFile};
use crate::unary::{BoxError, Unary};

const SERVICES: [&str; 2] =
    ["temporal.api.workflowservice.v1.WorkflowService", "temporal.api.operatorservice.v1.OperatorService"];

/// Temporal's answer to a call it does not authorize.
pub const UNAUTHORIZED: &str = "Request unauthorized.";

/// Who may call what.
pub struct Authorize {
    keys: Option<Arc<KeyFile>>,
    jwt: Option<Arc<Jwt>>,
}

impl Authorize {
    pub fn new(keys: Option<Arc<KeyFile>>, jwt: Option<Arc<Jwt>>) -> Arc<Self> {
        Arc::new(Self { keys, jwt })
    }

    pub fn jwt(&self) -> Option<&Arc<Jwt>> {
        self.jwt.as_ref()
    }

    /// The caller's claims: a bearer token's (an API key, else a JWT) when the call has one,
    /// else the mTLS client certificate's; `None` when neither is known.
    pub async fn claims(&self, headers: &http::HeaderMap, extensions: &http::Extensions) -> Option<Claims> {
        if let Some(value) = headers.get(http::header::AUTHORIZATION) {
            let token = value.to_str().ok().and_then(bearer)?;
            if let Some(claims) = self.keys.as_ref().and_then(|file| file.keys().claims(token)) {
                return Some(claims);
            }
            return match &self.jwt {
                Some(jwt) if token.matches('.').count() == 2 => jwt.verify(token).await,
                _ => None,
            };
        }
        let certificates = extensions.get::<crate::tls::TlsConnectInfo>()?.peer_certificates.clone()?;
        let common_name = crate::tls::common_name(certificates.first()?)?;
        let claims = self.keys.as_ref()?.keys().certificate_claims(&common_name);
        if claims.is_none() {
            tracing::debug!(common_name, "call refused: the client certificate's subject is not mapped");
        }
        claims
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
            let mut call = Unary::read(req).await?;
            let namespace = call.message().map(|message| namespace_of(&service, &method, &message)).unwrap_or_default();
            let Some(claims) = authorize.claims(&call.parts.headers, &call.parts.extensions).await else {
                return Ok(tonic::Status::permission_denied(UNAUTHORIZED).into_http::<Body>());
            };
            if !claims.allows(&method, &namespace) {
                tracing::debug!(subject = %claims.subject, method, namespace, "call refused: role missing");
                return Ok(tonic::Status::permission_denied(UNAUTHORIZED).into_http::<Body>());
            }
            call.parts.extensions.insert(claims);
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
