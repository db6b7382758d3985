//! `uhrwerk-test-server`: Temporal's test server as the SDKs launch it, `<exe> <port>
//! [--enable-time-skipping]`, with a throwaway database and time skipping (TestService).
//!
//! As the Java test server, it starts with time skipping locked (the SDK unlocks it while it
//! waits for a workflow's result, and in `env.sleep()`), or unlocked with
//! `--enable-time-skipping`.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use uhrwerk_server::config::{DynamicConfig, Persistence, ServerConfig};
use uhrwerk_server::time_skipping::SkippingClock;

use crate::server_cmd::{LogFormat, LogLevel, init_logging, wait_for_signal};

/// Temporal's test server with time skipping, on a throwaway database (flags after the port
/// are Uhrwerk's own).
#[derive(Parser)]
#[command(name = "uhrwerk-test-server", version, about, long_about = None, args_override_self = true)]
pub struct TestServerArgs {
    /// Port of the gRPC frontend (WorkflowService, OperatorService, TestService); 0 picks a free one.
    port: u16,
    /// Start with time skipping unlocked (the Java test server's flag). Without it, time
    /// skipping starts locked, as the SDKs expect.
    #[arg(long)]
    enable_time_skipping: bool,
    /// IP address to listen on (the SDKs connect to 127.0.0.1).
    #[arg(long, default_value = "127.0.0.1")]
    ip: IpAddr,
    /// Custom search attribute to register at start, as KEY=TYPE (repeatable), as
    /// `uhrwerk server start-dev --search-attribute`.
    #[arg(long = "search-attribute", value_name = "KEY=TYPE", value_parser = crate::server_cmd::parse_search_attribute)]
    search_attributes: Vec<(String, uhrwerk_visibility::ValueType)>,
    /// Dynamic config override KEY=JSON (repeatable), as `uhrwerk server start-dev`.
    #[arg(long = "dynamic-config-value", value_name = "KEY=JSON")]
    dynamic_config_values: Vec<String>,
    /// Lowest level of log lines written to stderr.
    #[arg(long, value_enum, default_value = "warn")]
    log_level: LogLevel,
}

pub fn main() -> ExitCode {
    let args = TestServerArgs::parse();
    init_logging(args.log_level, LogFormat::Pretty);
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", crate::error_line(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(args: TestServerArgs) -> anyhow::Result<()> {
    let clock = SkippingClock::new(args.enable_time_skipping);
    let config = ServerConfig {
        listen: SocketAddr::new(args.ip, args.port),
        persistence: Persistence::Ephemeral,
        namespaces: Vec::new(),
        dynamic_config: DynamicConfig::parse(args.dynamic_config_values.iter().map(String::as_str))?,
        search_attributes: args.search_attributes,
        metrics_listen: None,
        metrics_best_effort: true,
        http_listen: None,
        ui_listen: None,
        cluster: None,
        tls: None,
        jwt: None,
        api_keys: None,
        time_skipping: Some(clock),
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("start the async runtime")?;
    runtime.block_on(async move {
        let running = uhrwerk_server::start(config).await?;
        eprintln!(
            "Uhrwerk test server {} on {} (time skipping {}; throwaway database)",
            env!("CARGO_PKG_VERSION"),
            running.addr,
            if args.enable_time_skipping { "unlocked" } else { "locked until a client unlocks it" }
        );
        wait_for_signal().await;
        running.shutdown().await?;
        anyhow::Ok(())
    })
}
