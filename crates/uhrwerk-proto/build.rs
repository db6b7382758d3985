//! Generates tonic *server* traits for the Temporal services from the descriptor set that
//! `temporalio-protos` publishes; every message type is reused from that crate. Also keeps the
//! Temporal API's descriptors for the HTTP API.

use std::{env, fs, path::PathBuf};

use prost::Message;

const SERVICE_FILES: &[&str] = &[
    "temporal/api/workflowservice/v1/service.proto",
    "temporal/api/operatorservice/v1/service.proto",
    // The test server's time-skipping service (its messages ship with temporalio-protos too).
    "temporal/api/testservice/v1/service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let descriptor_path = env::var("DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH")
        .map_err(|_| "temporalio-protos did not publish its descriptor path")?;
    println!("cargo:rerun-if-changed={descriptor_path}");
    let bytes = fs::read(&descriptor_path)?;
    let mut set = prost_types::FileDescriptorSet::decode(bytes.as_slice())?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    // The descriptors WorkflowService and OperatorService need (their files and every file those
    // import), for the HTTP API's JSON mapping; the SDK-internal files are left out. (Their
    // `google.api.http` options did not survive into this set: see scripts/gen-http-routes.py.)
    // Plus the error status and Temporal's error details, which errors carry as `Any`.
    let mut needed: Vec<String> = SERVICE_FILES[..2]
        .iter()
        .chain(&["google/rpc/status.proto", "temporal/api/errordetails/v1/message.proto"])
        .map(|s| s.to_string())
        .collect();
    let mut i = 0;
    while i < needed.len() {
        if let Some(file) = set.file.iter().find(|f| f.name() == needed[i]) {
            for dep in &file.dependency {
                if !needed.contains(dep) {
                    needed.push(dep.clone());
                }
            }
        }
        i += 1;
    }
    let mut api = set.clone();
    api.file.retain(|f| needed.iter().any(|n| n == f.name()));
    fs::write(out.join("temporal_api_descriptors.bin"), api.encode_to_vec())?;
    // Only the service files produce code; their messages resolve through extern paths.
    set.file.retain(|f| SERVICE_FILES.contains(&f.name()));
    if set.file.len() != SERVICE_FILES.len() {
        return Err("service descriptors missing from temporalio-protos".into());
    }
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .generate_default_stubs(true)
        .out_dir(&out)
        .extern_path(".temporal", "::temporalio_protos::temporal")
        .extern_path(".google", "::temporalio_protos::google")
        .extern_path(".grpc", "::temporalio_protos::grpc")
        .compile_fds(set)?;
    cluster_service(&out);
    Ok(())
}

/// The nodes' internal service (`uhrwerk.cluster.v1.Cluster`), client and server, over the
/// messages written by hand in `src/cluster.rs`: no proto file, so no protoc.
fn cluster_service(out: &std::path::Path) {
    use tonic_build::manual::{Builder, Method, Service};
    let method = |name: &str, route: &str, input: &str, output: &str| {
        Method::builder()
            .name(name)
            .route_name(route)
            .input_type(format!("crate::cluster::{input}"))
            .output_type(format!("crate::cluster::{output}"))
            .codec_path("tonic_prost::ProstCodec")
            .build()
    };
    let service = Service::builder()
        .name("Cluster")
        .package("uhrwerk.cluster.v1")
        .method(method("add_task", "AddTask", "AddTaskRequest", "AddTaskResponse"))
        .method(method("start_task", "StartTask", "StartTaskRequest", "StartTaskResponse"))
        .method(method("carry_out", "CarryOut", "CarryOutRequest", "CarryOutResponse"))
        .method(method("refresh", "Refresh", "RefreshRequest", "RefreshResponse"))
        .method(method("wake_schedule", "WakeSchedule", "WakeScheduleRequest", "WakeScheduleResponse"))
        .method(method("queue_hour", "QueueHour", "QueueHourRequest", "QueueHourResponse"))
        .build();
    Builder::new().build_client(true).build_server(true).build_transport(true).out_dir(out).compile(&[service]);
}
