//! Calls a gRPC method of the frontend in process with an encoded request, as Temporal's HTTP
//! API calls its own handlers: through the same service stack as the gRPC listener (the gate's
//! metrics, limits and UNIMPLEMENTED answers), without a network hop.

use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::Bytes;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::{Request, Status};

use crate::frontend::Frontend;

/// Passes encoded messages through: the HTTP API encodes and decodes them itself.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        use prost::bytes::BufMut;
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        use prost::bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// Calls `/<service>/<method>` with `request` (an encoded message) and `metadata` (forwarded
/// headers); answers the encoded response or the method's status.
pub async fn unary(
    frontend: &Frontend,
    service: &str,
    method: &str,
    request: Vec<u8>,
    metadata: tonic::metadata::MetadataMap,
) -> Result<Bytes, Status> {
    let path = PathAndQuery::try_from(format!("/{service}/{method}"))
        .map_err(|_| Status::internal(format!("bad method path /{service}/{method}")))?;
    let mut request = Request::new(Bytes::from(request));
    *request.metadata_mut() = metadata;
    let response = match service {
        "temporal.api.workflowservice.v1.WorkflowService" => {
            // In a cluster, through the routing: a call on another node's workflow goes there.
            let mut grpc = tonic::client::Grpc::new(frontend.routed_workflow_service());
            grpc.ready().await.map_err(|e| Status::unavailable(e.to_string()))?;
            grpc.unary(request, path, RawCodec).await?
        }
        "temporal.api.operatorservice.v1.OperatorService" => {
            let mut grpc = tonic::client::Grpc::new(frontend.operator_service());
            grpc.ready().await.map_err(|e| Status::unavailable(e.to_string()))?;
            grpc.unary(request, path, RawCodec).await?
        }
        other => return Err(Status::unimplemented(format!("service {other} is not served over HTTP"))),
    };
    Ok(response.into_inner())
}
