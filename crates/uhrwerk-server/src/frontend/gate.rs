//! A tower wrapper that answers every method not in the implemented list with UNIMPLEMENTED and
//! a message naming the method, instead of tonic's anonymous default stub, and counts every
//! call in the service metrics (requests, errors by status code, latency) and, at debug level
//! under the `uhrwerk::rpc` target, in the log (`UHRWERK_LOG=info,uhrwerk::rpc=debug`). It also
//! words the refusal of an oversized request as grpc-go does.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::server::NamedService;

use crate::metrics::Metrics;

#[derive(Clone)]
pub struct Gate<S> {
    inner: S,
    implemented: &'static [&'static str],
    metrics: Arc<Metrics>,
}

impl<S> Gate<S> {
    pub fn new(inner: S, implemented: &'static [&'static str], metrics: Arc<Metrics>) -> Self {
        Self { inner, implemented, metrics }
    }
}

/// The gRPC status code of a response that carries it in its headers (errors do), else 0.
fn status_code(response: &http::Response<tonic::body::Body>) -> i32 {
    response.headers().get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// A request over `MAX_REQUEST_BYTES` answered as grpc-go (Temporal's transport) answers it:
/// RESOURCE_EXHAUSTED "grpc: received message larger than max (N vs. LIMIT)", or "... after
/// decompression larger than max LIMIT" for a compressed one, where tonic says OUT_OF_RANGE or
/// RESOURCE_EXHAUSTED in its own words.
fn oversized_as_grpc_go(response: http::Response<tonic::body::Body>) -> http::Response<tonic::body::Body> {
    let code = status_code(&response);
    if code != tonic::Code::OutOfRange as i32 && code != tonic::Code::ResourceExhausted as i32 {
        return response;
    }
    let Some(status) = tonic::Status::from_header_map(response.headers()) else { return response };
    let message = status.message();
    let number_after = |prefix: &str| -> Option<u64> {
        let rest = &message[message.find(prefix)? + prefix.len()..];
        rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    };
    let rewritten = if message.starts_with("Error, decoded message length too large") {
        match (number_after("found "), number_after("the limit is: ")) {
            (Some(found), Some(limit)) => format!("grpc: received message larger than max ({found} vs. {limit})"),
            _ => return response,
        }
    } else if message.starts_with("Error decompressing: size limit") {
        match number_after("of ") {
            Some(limit) => format!("grpc: received message after decompression larger than max {limit}"),
            None => return response,
        }
    } else {
        return response;
    };
    tonic::Status::resource_exhausted(rewritten).into_http()
}

impl<S: NamedService> NamedService for Gate<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tower_service::Service<http::Request<B>> for Gate<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = Infallible>
        + NamedService,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = req.uri().path().rsplit('/').next().unwrap_or_default().to_string();
        let metrics = self.metrics.clone();
        let began = crate::clock::Stopwatch::start();
        let response = if self.implemented.contains(&method.as_str()) {
            futures_util::future::Either::Left(self.inner.call(req))
        } else {
            let status =
                tonic::Status::unimplemented(format!("method {method} of {} is not implemented by Uhrwerk", S::NAME));
            futures_util::future::Either::Right(std::future::ready(Ok(status.into_http())))
        };
        Box::pin(async move {
            let response = response.await;
            metrics.service_requests.with_label_values(&[&method]).inc();
            metrics.service_latency.with_label_values(&[&method]).observe(began.elapsed().as_secs_f64());
            let response = response.map(oversized_as_grpc_go);
            if let Ok(r) = &response {
                let code = status_code(r);
                tracing::debug!(target: "uhrwerk::rpc", method, code, micros = began.elapsed().as_micros() as u64, "call");
                if code != 0 {
                    metrics
                        .service_errors
                        .with_label_values(&[&method, &format!("{:?}", tonic::Code::from_i32(code))])
                        .inc();
                }
            }
            response
        })
    }
}
