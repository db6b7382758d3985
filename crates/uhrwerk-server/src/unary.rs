//! A unary gRPC request read whole, for the layers that look into the message before the
//! service sees it (cluster routing, authorization), and put back together after.

use std::borrow::Cow;

use http_body_util::{BodyExt, Full};
use tonic::body::Body;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The largest decompressed request the layers read (the frontend's own limit is 128 MiB).
const MAX_READ_MESSAGE: u64 = 128 * 1024 * 1024;

pub(crate) struct Unary {
    pub parts: http::request::Parts,
    bytes: bytes::Bytes,
}

impl Unary {
    /// Reads the body of `req`.
    pub async fn read(req: http::Request<Body>) -> Result<Self, BoxError> {
        let (parts, body) = req.into_parts();
        let bytes = body.collect().await.map_err(|e| -> BoxError { Box::new(e) })?.to_bytes();
        Ok(Self { parts, bytes })
    }

    /// The request's message, when it is one (gzip-compressed if the call says so).
    pub fn message(&self) -> Option<Cow<'_, [u8]>> {
        let gzip = self.parts.headers.get("grpc-encoding").is_some_and(|e| e.as_bytes() == b"gzip");
        grpc_message(&self.bytes, gzip)
    }

    /// The request again, as it came.
    pub fn into_request(self) -> http::Request<Body> {
        http::Request::from_parts(self.parts, Body::new(Full::new(self.bytes).map_err(|never| match never {})))
    }
}

/// The message of a unary gRPC request body (one length-prefixed message, gzip-compressed when
/// its flag says so and the call's `grpc-encoding` is gzip). Anything else is not looked into.
pub(crate) fn grpc_message(body: &[u8], gzip: bool) -> Option<Cow<'_, [u8]>> {
    let (&compressed, rest) = body.split_first()?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let message = rest.get(4..4 + len)?;
    match compressed {
        0 => Some(Cow::Borrowed(message)),
        1 if gzip => {
            let mut out = Vec::new();
            // Bounded; a bomb is not read.
            let reader = flate2::read::GzDecoder::new(message);
            std::io::Read::read_to_end(&mut std::io::Read::take(reader, MAX_READ_MESSAGE), &mut out).ok()?;
            Some(Cow::Owned(out))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_gzip_messages_are_read_whole() {
        assert_eq!(grpc_message(&[0, 0, 0, 0, 2, 8, 1], false).as_deref(), Some(&[8u8, 1][..]));
        assert_eq!(grpc_message(&[1, 0, 0, 0, 2, 8, 1], false), None, "compressed without an encoding");
        assert_eq!(grpc_message(&[0, 0, 0, 0, 9, 8, 1], false), None, "cut short");
        assert_eq!(grpc_message(&[], false), None);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &[8, 1]).unwrap();
        let gz = gz.finish().unwrap();
        let mut framed = vec![1];
        framed.extend_from_slice(&(gz.len() as u32).to_be_bytes());
        framed.extend_from_slice(&gz);
        assert_eq!(grpc_message(&framed, true).as_deref(), Some(&[8u8, 1][..]));
        framed[8] ^= 0xff;
        assert!(grpc_message(&framed, true).is_none_or(|m| m.as_ref() != [8u8, 1]), "a corrupt stream");
    }
}
