//! The HTTP API's routes: the `google.api.http` bindings of WorkflowService and OperatorService
//! (as grpc-gateway serves them for Temporal's own server), one route per binding, `/api/v1/...`
//! and the older unprefixed paths. The bindings come from `annotations.txt`, which
//! `scripts/gen-http-routes.py` writes from the protos of the pinned temporalio-protos; the
//! methods and their messages come from the descriptors compiled into the binary.

use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, MethodDescriptor};

/// `service method VERB template body` per line, `-` for no body.
const BINDINGS: &str = include_str!("annotations.txt");

/// One segment of a path template.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    /// A variable naming a field path of the request (`execution.workflow_id`).
    Field(Vec<String>),
}

/// Where the request message comes from besides the path.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// `body: "*"`: the whole request is the JSON body.
    All,
    /// No body: the remaining fields come from the query string.
    None,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub http_method: http::Method,
    segments: Vec<Segment>,
    pub body: Body,
    pub method: MethodDescriptor,
}

/// A matched route with the path's variables: (field path, value).
pub struct Matched<'r> {
    pub route: &'r Route,
    pub fields: Vec<(Vec<String>, String)>,
}

pub struct Routes {
    pub pool: DescriptorPool,
    routes: Vec<Route>,
}

impl Routes {
    /// The routes, built once from the descriptors compiled into the binary.
    pub fn get() -> &'static Routes {
        static ROUTES: OnceLock<Routes> = OnceLock::new();
        ROUTES.get_or_init(|| {
            let pool = DescriptorPool::decode(uhrwerk_proto::API_DESCRIPTORS)
                .expect("the Temporal API descriptors compiled into the binary decode");
            let routes = build(&pool);
            Routes { pool, routes }
        })
    }

    /// The route for `method` and `path`; among several, the one with the most literal segments.
    pub fn find(&self, method: &http::Method, path: &str) -> Option<Matched<'_>> {
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        self.routes
            .iter()
            .filter(|r| r.http_method == *method && r.segments.len() == parts.len())
            .filter_map(|r| {
                let mut fields = Vec::new();
                for (segment, part) in r.segments.iter().zip(&parts) {
                    match segment {
                        Segment::Literal(l) if l == part => {}
                        Segment::Literal(_) => return None,
                        Segment::Field(path) if !part.is_empty() => {
                            fields.push((path.clone(), percent_decode(part, false)))
                        }
                        Segment::Field(_) => return None,
                    }
                }
                Some(Matched { route: r, fields })
            })
            .max_by_key(|m| m.route.segments.iter().filter(|s| matches!(s, Segment::Literal(_))).count())
    }

    /// Some route has this path, whatever its HTTP method.
    pub fn path_exists(&self, path: &str) -> bool {
        [http::Method::GET, http::Method::POST, http::Method::PUT, http::Method::DELETE, http::Method::PATCH]
            .iter()
            .any(|m| self.find(m, path).is_some())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.routes.len()
    }
}

fn build(pool: &DescriptorPool) -> Vec<Route> {
    let mut routes = Vec::new();
    for line in BINDINGS.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [service, method, verb, template, body] = fields[..] else { continue };
        let Some(method) = pool.get_service_by_name(service).and_then(|s| s.methods().find(|m| m.name() == method))
        else {
            continue;
        };
        let Ok(http_method) = http::Method::from_bytes(verb.as_bytes()) else { continue };
        let segments = template
            .split('/')
            .map(|part| match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(field) => Segment::Field(field.split('.').map(str::to_string).collect()),
                None => Segment::Literal(part.to_string()),
            })
            .collect();
        let body = if body == "-" { Body::None } else { Body::All };
        routes.push(Route { http_method, segments, body, method });
    }
    routes
}

/// `%XX` escapes decoded (ids may hold any character); with `plus_is_space`, `+` is a space as
/// in `application/x-www-form-urlencoded` query strings.
pub(super) fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' if i + 2 < bytes.len()
                && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) =>
            {
                out.push(hi * 16 + lo);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_come_from_the_annotations() {
        let routes = Routes::get();
        // Every binding names a method the descriptors know.
        let bindings = BINDINGS.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).count();
        assert_eq!(routes.len(), bindings);
        assert!(bindings > 200, "{bindings} bindings");
        let m = routes.find(&http::Method::GET, "/api/v1/namespaces/default/workflows/wf%2F1/history").expect("route");
        assert_eq!(m.route.method.name(), "GetWorkflowExecutionHistory");
        assert_eq!(
            m.fields,
            vec![
                (vec!["namespace".to_string()], "default".to_string()),
                (vec!["execution".to_string(), "workflow_id".to_string()], "wf/1".to_string())
            ]
        );
        let start = routes.find(&http::Method::POST, "/api/v1/namespaces/default/workflows/wf").expect("route");
        assert_eq!(start.route.method.name(), "StartWorkflowExecution");
        assert_eq!(start.route.body, Body::All);
        let describe = routes.find(&http::Method::GET, "/api/v1/namespaces/default/workflows/wf").expect("route");
        assert_eq!(describe.route.method.name(), "DescribeWorkflowExecution");
        let list = routes.find(&http::Method::GET, "/api/v1/namespaces/default/workflows").expect("route");
        assert_eq!(list.route.method.name(), "ListWorkflowExecutions");
        assert!(routes.find(&http::Method::GET, "/api/v1/nothing").is_none());
    }
}
