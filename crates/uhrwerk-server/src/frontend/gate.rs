//! A tower wrapper that answers every method not in the implemented list with UNIMPLEMENTED and
//! a message naming the method, instead of tonic's anonymous default stub.

use std::convert::Infallible;
use std::task::{Context, Poll};

use tonic::server::NamedService;

#[derive(Clone)]
pub struct Gate<S> {
    inner: S,
    implemented: &'static [&'static str],
}

impl<S> Gate<S> {
    pub fn new(inner: S, implemented: &'static [&'static str]) -> Self {
        Self { inner, implemented }
    }
}

impl<S: NamedService> NamedService for Gate<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tower_service::Service<http::Request<B>> for Gate<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = Infallible> + NamedService,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = futures_util::future::Either<S::Future, std::future::Ready<Result<Self::Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = req.uri().path().rsplit('/').next().unwrap_or_default().to_string();
        if self.implemented.contains(&method.as_str()) {
            return futures_util::future::Either::Left(self.inner.call(req));
        }
        let status = tonic::Status::unimplemented(format!("method {method} of {} is not implemented by Uhrwerk", S::NAME));
        futures_util::future::Either::Right(std::future::ready(Ok(status.into_http())))
    }
}
