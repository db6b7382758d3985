//! Generates tonic *server* traits for the Temporal services from the descriptor set that
//! `temporalio-protos` publishes; every message type is reused from that crate.

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
    // Only the service files produce code; their messages resolve through extern paths.
    set.file.retain(|f| SERVICE_FILES.contains(&f.name()));
    if set.file.len() != SERVICE_FILES.len() {
        return Err("service descriptors missing from temporalio-protos".into());
    }
    let out = PathBuf::from(env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .generate_default_stubs(true)
        .out_dir(&out)
        .extern_path(".temporal", "::temporalio_protos::temporal")
        .extern_path(".google", "::temporalio_protos::google")
        .extern_path(".grpc", "::temporalio_protos::grpc")
        .compile_fds(set)?;
    Ok(())
}
