//! Authentication and authorization on the gRPC frontend, with Temporal's model: a caller's
//! claims are a system role and a role per namespace, read from Temporal's `permissions` grammar
//! (`default:write`, `temporal-system:admin`); each method needs the role Temporal's default
//! authorizer requires (`api.rs`: read-only methods a reader, writes a writer, administration
//! an admin; of the namespace named in the request, or of the system for cluster-wide methods).
//! Callers authenticate with a bearer token (`Authorization: Bearer <token>`, as the SDKs and
//! the CLI send it): an API key checked against a file of hashed keys (`keys.rs`) or a JWT
//! checked against a JWKS (`jwt.rs`); or, under mTLS and without a token, with their client
//! certificate, whose subject common name the key file maps to permissions (`keys.rs`).
//!
//! One addition to Temporal's default authorizer: there the `worker` role sits below `reader`
//! and allows nothing; here it allows the calls a worker makes (`api::WORKER`), so that a
//! worker's credentials can poll and complete tasks but not start, signal or terminate.
//! `ListNamespaces` answers every authenticated caller with the namespaces it may read, where
//! Temporal's authorizer refuses it to all but system readers.
//!
//! Off unless a key file or a JWKS is configured. Secrets never reach a log line or an error: a refusal
//! says only what Temporal says ("Request unauthorized.").

pub mod api;
pub mod jwt;
pub mod keys;
pub mod layer;

use std::collections::HashMap;

pub use jwt::{Jwt, JwtConfig};
pub use keys::{ApiKeys, KeyError, KeyFile};
pub use layer::{AuthLayer, Authorize};

/// Temporal's roles, bit flags compared as numbers (`common/authorization/roles.go`): a role
/// satisfies every requirement at or below it.
pub type Role = u8;
pub const ROLE_WORKER: Role = 1;
pub const ROLE_READER: Role = 2;
pub const ROLE_WRITER: Role = 4;
pub const ROLE_ADMIN: Role = 8;

/// The namespace whose permissions are system-wide, as in Temporal's default claim mapper.
pub const SYSTEM_NAMESPACE: &str = "temporal-system";

/// What a caller may do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claims {
    /// Who it is (the key's name), for logs.
    pub subject: String,
    pub system: Role,
    pub namespaces: HashMap<String, Role>,
}

/// A role by its name in a permission (`read`/`reader`, `write`/`writer`, `worker`, `admin`).
fn role(name: &str) -> Option<Role> {
    match name.to_ascii_lowercase().as_str() {
        "worker" => Some(ROLE_WORKER),
        "read" | "reader" => Some(ROLE_READER),
        "write" | "writer" => Some(ROLE_WRITER),
        "admin" => Some(ROLE_ADMIN),
        _ => None,
    }
}

impl Claims {
    /// Claims from Temporal's permission entries, `namespace:role`; `temporal-system:role` is
    /// the system role. Entries that do not parse are an error (the key file is the operator's).
    pub fn from_permissions(subject: &str, permissions: &[String]) -> Result<Self, String> {
        let mut claims = Claims { subject: subject.to_string(), ..Default::default() };
        for permission in permissions {
            let (namespace, name) = permission
                .rsplit_once(':')
                .ok_or_else(|| format!("permission {permission:?} is not namespace:role"))?;
            let role = role(name).ok_or_else(|| format!("permission {permission:?} names no role"))?;
            if namespace == SYSTEM_NAMESPACE {
                claims.system |= role;
            } else {
                *claims.namespaces.entry(namespace.to_string()).or_default() |= role;
            }
        }
        Ok(claims)
    }

    /// Claims from a token's permission entries, skipping those that do not parse (as
    /// Temporal's default claim mapper does): a token is the identity provider's, not ours.
    pub fn from_permissions_lenient(subject: &str, permissions: &[String]) -> Self {
        let mut claims = Claims { subject: subject.to_string(), ..Default::default() };
        for permission in permissions {
            match Claims::from_permissions(subject, std::slice::from_ref(permission)) {
                Ok(one) => {
                    claims.system |= one.system;
                    for (namespace, role) in one.namespaces {
                        *claims.namespaces.entry(namespace).or_default() |= role;
                    }
                }
                Err(e) => tracing::debug!(subject, "token permission skipped: {e}"),
            }
        }
        claims
    }

    /// Whether the caller may read `namespace` (what `ListNamespaces` shows it).
    pub fn reads(&self, namespace: &str) -> bool {
        (self.system | self.namespaces.get(namespace).copied().unwrap_or(0)) >= ROLE_READER
    }

    /// Temporal's default authorizer: the role the caller holds for the method's scope (system
    /// roles count in every namespace) must reach the role its access needs. Two additions:
    /// the worker role allows the worker's calls, and `ListNamespaces` is answered (filtered)
    /// for every caller.
    pub fn allows(&self, method: &str, namespace: &str) -> bool {
        if method == "ListNamespaces" {
            return true;
        }
        let Some((scope, access)) = api::method(method) else { return self.system >= ROLE_ADMIN };
        let held = match scope {
            api::Scope::Cluster => self.system,
            api::Scope::Namespace => self.system | self.namespaces.get(namespace).copied().unwrap_or(0),
        };
        let needed = match access {
            api::Access::ReadOnly => ROLE_READER,
            api::Access::Write => ROLE_WRITER,
            api::Access::Admin => ROLE_ADMIN,
        };
        held >= needed || (held & ROLE_WORKER != 0 && api::WORKER.contains(&method))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(permissions: &[&str]) -> Claims {
        Claims::from_permissions("t", &permissions.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn roles_follow_temporals_default_authorizer() {
        let reader = claims(&["orders:read"]);
        assert!(reader.allows("DescribeWorkflowExecution", "orders"));
        assert!(reader.allows("ListWorkflowExecutions", "orders"));
        assert!(!reader.allows("StartWorkflowExecution", "orders"));
        assert!(!reader.allows("DescribeWorkflowExecution", "billing"), "another namespace");
        let writer = claims(&["orders:writer"]);
        assert!(writer.allows("StartWorkflowExecution", "orders"));
        assert!(writer.allows("PollWorkflowTaskQueue", "orders"), "polls are writes in Temporal");
        assert!(writer.allows("TerminateWorkflowExecution", "orders"));
        assert!(!writer.allows("AddSearchAttributes", "orders"), "administration");
        assert!(!writer.allows("GetClusterInfo", "orders"), "cluster scope needs a system role");
        assert!(writer.allows("ListNamespaces", ""), "answered with what the caller reads");
        assert!(writer.reads("orders") && !writer.reads("billing"));
        // Temporal's worker role allows nothing; here it allows the worker's calls, no more.
        let worker = claims(&["orders:worker"]);
        assert!(worker.allows("PollWorkflowTaskQueue", "orders"));
        assert!(worker.allows("RespondActivityTaskCompleted", "orders"));
        assert!(worker.allows("DescribeNamespace", "orders"));
        assert!(!worker.allows("PollWorkflowTaskQueue", "billing"));
        assert!(!worker.allows("DescribeWorkflowExecution", "orders"));
        assert!(!worker.allows("TerminateWorkflowExecution", "orders"));
        assert!(!worker.allows("StartWorkflowExecution", "orders"));
        assert!(!worker.reads("orders"));
        let admin = claims(&["orders:admin"]);
        assert!(admin.allows("AddSearchAttributes", "orders") && admin.allows("TerminateWorkflowExecution", "orders"));
        let system = claims(&["temporal-system:admin"]);
        assert!(system.allows("ListNamespaces", "") && system.allows("StartWorkflowExecution", "any"));
        assert!(!claims(&[]).allows("GetClusterInfo", ""));
        assert!(system.allows("SomeMethodTemporalDoesNotList", "x"), "unknown methods need the system admin");
        assert!(!writer.allows("SomeMethodTemporalDoesNotList", "orders"));
    }

    #[test]
    fn permissions_parse_or_say_why_not() {
        let c = claims(&["orders:read", "orders:write", "temporal-system:read"]);
        assert_eq!(c.namespaces["orders"], ROLE_READER | ROLE_WRITER);
        assert_eq!(c.system, ROLE_READER);
        assert!(Claims::from_permissions("t", &["orders".to_string()]).is_err());
        assert!(Claims::from_permissions("t", &["orders:owner".to_string()]).is_err());
        let lenient =
            Claims::from_permissions_lenient("t", &["orders:owner".to_string(), "orders:read".to_string(), "x".into()]);
        assert_eq!(lenient.namespaces["orders"], ROLE_READER);
    }
}
