//! OperatorService: custom search attributes (add, list, remove) and namespace deletion.
//! Other methods (clusters, Nexus endpoints) get UNIMPLEMENTED naming them.

use std::collections::HashMap;

use tonic::{Request, Response, Status};
use uhrwerk_proto::server::operatorservice::operator_service_server::OperatorService;
use uhrwerk_proto::temporal::api::operatorservice::v1 as pb;
use uhrwerk_visibility::{SYSTEM_ATTRIBUTES, ValueType};

use super::Frontend;
use crate::error::{Error, Result};

/// Methods answered for real; every other method gets UNIMPLEMENTED naming it.
pub const IMPLEMENTED: &[&str] = &["AddSearchAttributes", "RemoveSearchAttributes", "ListSearchAttributes"];

type RpcResult<T> = std::result::Result<Response<T>, Status>;

fn reply<T>(result: Result<T>) -> RpcResult<T> {
    result.map(Response::new).map_err(Status::from)
}

impl Frontend {
    /// The namespace of an operator request: the default one when the request names none, as
    /// the `temporal` CLI relies on.
    fn operator_namespace(&self, namespace: &str) -> Result<String> {
        let namespace = if namespace.is_empty() { crate::namespaces::DEFAULT_NAMESPACE } else { namespace };
        self.namespaces.check(namespace)?;
        Ok(namespace.to_string())
    }

    async fn add_search_attributes(
        &self,
        req: pb::AddSearchAttributesRequest,
    ) -> Result<pb::AddSearchAttributesResponse> {
        let namespace = self.operator_namespace(&req.namespace)?;
        if req.search_attributes.is_empty() {
            return Err(Error::InvalidArgument("SearchAttributes are not set on request.".into()));
        }
        let mut attrs = Vec::new();
        for (name, ty) in req.search_attributes {
            let ty = ValueType::from_indexed(ty)
                .ok_or_else(|| Error::InvalidArgument(format!("Unknown search attribute type: {ty}.")))?;
            attrs.push((name, ty));
        }
        attrs.sort();
        self.engine.search_attributes().add(&namespace, &attrs).await?;
        self.registries_changed().await;
        Ok(pb::AddSearchAttributesResponse::default())
    }

    async fn remove_search_attributes(
        &self,
        req: pb::RemoveSearchAttributesRequest,
    ) -> Result<pb::RemoveSearchAttributesResponse> {
        let namespace = self.operator_namespace(&req.namespace)?;
        if req.search_attributes.is_empty() {
            return Err(Error::InvalidArgument("SearchAttributes are not set on request.".into()));
        }
        self.engine.search_attributes().remove(&namespace, &req.search_attributes).await?;
        self.registries_changed().await;
        Ok(pb::RemoveSearchAttributesResponse::default())
    }

    fn list_search_attributes(&self, req: pb::ListSearchAttributesRequest) -> Result<pb::ListSearchAttributesResponse> {
        let namespace = self.operator_namespace(&req.namespace)?;
        let custom_attributes: HashMap<String, i32> = self
            .engine
            .search_attributes()
            .custom(&namespace)
            .into_iter()
            .map(|(name, ty)| (name, ty.to_indexed()))
            .collect();
        let system_attributes: HashMap<String, i32> =
            SYSTEM_ATTRIBUTES.iter().map(|(name, ty)| (name.to_string(), ty.to_indexed())).collect();
        Ok(pb::ListSearchAttributesResponse { custom_attributes, system_attributes, storage_schema: HashMap::new() })
    }
}

#[tonic::async_trait]
impl OperatorService for Frontend {
    async fn add_search_attributes(
        &self,
        request: Request<pb::AddSearchAttributesRequest>,
    ) -> RpcResult<pb::AddSearchAttributesResponse> {
        reply(self.add_search_attributes(request.into_inner()).await)
    }

    async fn remove_search_attributes(
        &self,
        request: Request<pb::RemoveSearchAttributesRequest>,
    ) -> RpcResult<pb::RemoveSearchAttributesResponse> {
        reply(self.remove_search_attributes(request.into_inner()).await)
    }

    async fn list_search_attributes(
        &self,
        request: Request<pb::ListSearchAttributesRequest>,
    ) -> RpcResult<pb::ListSearchAttributesResponse> {
        reply(self.list_search_attributes(request.into_inner()))
    }
}
