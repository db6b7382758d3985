//! OperatorService. Served so that clients get a clear UNIMPLEMENTED per method; search
//! attributes and Nexus endpoints come with the visibility work.

use uhrwerk_proto::server::operatorservice::operator_service_server::OperatorService;

use super::Frontend;

/// Methods answered for real; every other method gets UNIMPLEMENTED naming it.
pub const IMPLEMENTED: &[&str] = &[];

#[tonic::async_trait]
impl OperatorService for Frontend {}
