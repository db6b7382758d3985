//! `uhrwerk server start-dev` and `uhrwerk server start`: flags, logging, the start-up banner and
//! signal handling. The database flags (`--database-url` and its password) are shared with
//! `uhrwerk db`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use uhrwerk_server::config::{DynamicConfig, Persistence, ServerConfig};
use uhrwerk_visibility::ValueType;

#[derive(Subcommand)]
pub enum ServerCommand {
    /// Start a single-process server, persistent by default (flags follow `temporal server start-dev`;
    /// a flag given twice keeps its last value, as there).
    #[command(args_override_self = true)]
    StartDev(Box<StartDevArgs>),
    /// Start a server for production: the same flags, but the database must be named
    /// (--database-url or --db-filename) and is never a throwaway (--headless and --ui-port
    /// only turn the UI off or move it).
    #[command(args_override_self = true)]
    Start(Box<StartDevArgs>),
}

/// Where PostgreSQL is, for `server start-dev`, `server start` and `db`.
#[derive(Args, Clone)]
pub struct DatabaseArgs {
    /// PostgreSQL database URL, `postgres://USER[:PASSWORD]@HOST:PORT/DB[?OPTIONS]` (libpq's
    /// syntax); selects PostgreSQL instead of SQLite. The password is never printed; rather
    /// than in the URL, give it in --database-password-file or UHRWERK_DATABASE_PASSWORD.
    #[arg(long, env = "UHRWERK_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// File whose first line is the database password, used when the URL has none
    /// (UHRWERK_DATABASE_PASSWORD is the other way).
    #[arg(long, value_name = "PATH")]
    pub database_password_file: Option<PathBuf>,
}

impl DatabaseArgs {
    /// The PostgreSQL URL with its password from the URL, the file or the environment; None
    /// without --database-url.
    pub fn url(&self) -> anyhow::Result<Option<uhrwerk_postgres::DatabaseUrl>> {
        let Some(raw) = self.database_url.as_deref() else { return Ok(None) };
        let mut url = uhrwerk_postgres::DatabaseUrl::parse(raw).context("--database-url")?;
        if let Some(path) = &self.database_password_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("read the database password file {}", path.display()))?;
            url = url.with_password(text.lines().next().unwrap_or_default());
        } else if let Ok(password) = std::env::var("UHRWERK_DATABASE_PASSWORD") {
            url = url.with_password(&password);
        }
        Ok(Some(url))
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
    /// Errors only (what the Python SDK's test environment passes when its logger is quieter
    /// than ERROR).
    Fatal,
    /// No log lines at all.
    Never,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (`text` is the same, as in the `temporal` CLI).
    #[value(alias = "text")]
    Pretty,
    /// One JSON object per line.
    Json,
}

#[derive(Args)]
pub struct StartDevArgs {
    /// YAML file of settings: keys are this command's long flags (`tls-cert: /etc/uhrwerk/server.pem`,
    /// a list repeats a flag, `true` gives a switch); flags on the command line win.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// IP address to bind the gRPC frontend (and the metrics endpoint) to; `localhost` means
    /// 127.0.0.1.
    #[arg(long, default_value = "127.0.0.1", value_parser = parse_ip)]
    ip: IpAddr,
    /// Port of the gRPC frontend (0 picks a free port, printed in the banner).
    #[arg(short, long, default_value_t = 7233)]
    port: u16,
    /// SQLite database file. Defaults to $XDG_DATA_HOME/uhrwerk/uhrwerk.db
    /// (~/.local/share/uhrwerk/uhrwerk.db), except when the dev server's UI flags are given
    /// (--headless or --ui-port, as the SDKs' test environments launch `temporal server start-dev`):
    /// then, as with the dev server, nothing is kept after exit. `:memory:` keeps nothing either.
    #[arg(short = 'f', long, conflicts_with = "database_url")]
    db_filename: Option<String>,
    #[command(flatten)]
    database: DatabaseArgs,
    /// Connections to PostgreSQL.
    #[arg(long, default_value_t = 16, value_name = "N")]
    database_pool_size: usize,
    /// Do not migrate the PostgreSQL schema at start: a database behind this binary is then
    /// refused (run `uhrwerk db migrate`). Without it, the start migrates, safely when several
    /// servers start at once.
    #[arg(long)]
    skip_migrations: bool,
    /// YAML file of API keys, stored as SHA-256 hashes, each with Temporal permissions
    /// (`namespace:role`, `temporal-system:admin`), and of mTLS client certificate subjects
    /// (`certificates:` with `common_name` and `permissions`): turns authorization on. Clients send
    /// a key as `Authorization: Bearer <key>` (the SDKs' and the CLI's --api-key); every call needs
    /// the role Temporal's default authorizer requires. The web UI, which has no login yet, is off
    /// then.
    #[arg(long, value_name = "PATH")]
    api_keys_file: Option<PathBuf>,
    /// JWKS of the identity provider whose JWTs are accepted, a file (re-read when it changes)
    /// or an http(s) URL (fetched every 5 minutes and for an unknown key id): turns
    /// authorization on. Tokens come as `Authorization: Bearer <jwt>`, signed RS256 or ES256,
    /// with `exp`; their permissions claim holds Temporal permissions (`namespace:role`).
    #[arg(long, value_name = "PATH|URL")]
    jwt_jwks: Option<String>,
    /// The audience a JWT must name in `aud` (not checked when unset).
    #[arg(long, value_name = "AUDIENCE", requires = "jwt_jwks")]
    jwt_audience: Option<String>,
    /// The issuer a JWT must name in `iss` (not checked when unset).
    #[arg(long, value_name = "ISSUER", requires = "jwt_jwks")]
    jwt_issuer: Option<String>,
    /// The JWT claim that holds the permissions (Temporal's `permissionsClaimName`).
    #[arg(long, value_name = "NAME", default_value = "permissions", requires = "jwt_jwks")]
    jwt_permissions_claim: String,
    /// PEM certificate chain of the gRPC frontend: with --tls-key, clients must connect with
    /// TLS. The files are read again on SIGHUP and when they change; new connections get the
    /// new certificate, open ones keep theirs.
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM certificates of the CAs that sign client certificates: every client must present one
    /// signed by them (mutual TLS). Needs --tls-cert and --tls-key.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// PEM certificates of the CA that signs the cluster nodes' certificates: a node's internal
    /// port then takes only TLS connections from other nodes (their --tls-cert, verified against
    /// this CA), and a node verifies the others against it. Needed for TLS or authorization in a
    /// cluster; let it sign nodes only.
    #[arg(long, value_name = "PATH", requires = "tls_cert", requires = "advertise_address")]
    cluster_tls_ca: Option<PathBuf>,
    /// Join a cluster of Uhrwerk nodes on the same PostgreSQL database (--database-url): the
    /// HOST:PORT where the other nodes reach this node's internal service (it listens on --ip and
    /// this port); also the node's name, unique in the cluster. Every node accepts every call and
    /// passes it to the node that serves its workflow or task queue.
    #[arg(long, value_name = "HOST:PORT")]
    advertise_address: Option<String>,
    /// Shards of a new cluster, fixed when the cluster's database is first used (Temporal's
    /// numHistoryShards): a workflow belongs to one shard, a shard is served by one node at a
    /// time. More shards spread the work more evenly; each costs a lease renewal per round.
    #[arg(long, default_value_t = 64, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=4096))]
    cluster_shards: i32,
    /// How long a node's shard lease lasts without renewal (it is renewed every quarter of it):
    /// how long the shards of a node that died wait before other nodes take them over, e.g. 10s.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_lease)]
    shard_lease: std::time::Duration,
    /// Namespace to create at start (repeatable); `default` always exists.
    #[arg(short, long = "namespace")]
    namespaces: Vec<String>,
    /// Dynamic config override KEY=JSON (repeatable), with Temporal's key names,
    /// e.g. limit.historyCount.suggestContinueAsNew=100.
    #[arg(long = "dynamic-config-value", value_name = "KEY=JSON")]
    dynamic_config_values: Vec<String>,
    /// Custom search attribute to register in every namespace at start, as KEY=TYPE
    /// (repeatable). TYPE is one of Text, Keyword, Int, Double, Bool, Datetime, KeywordList.
    /// Attributes that already exist keep their type.
    #[arg(long = "search-attribute", value_name = "KEY=TYPE", value_parser = parse_search_attribute)]
    search_attributes: Vec<(String, ValueType)>,
    /// Temporal dynamic-config YAML file (`KEY: [{value: V}]`) with limit overrides;
    /// --dynamic-config-value wins over it.
    #[arg(long, value_name = "PATH")]
    dynamic_config_file: Option<PathBuf>,
    /// Port of the Prometheus endpoint `http://IP:PORT/metrics` [default: 9233, and if that port
    /// is taken the server runs without it; a free port with --headless or --ui-port]. 0 turns
    /// the endpoint off.
    #[arg(long)]
    metrics_port: Option<u16>,
    /// Lowest level of log lines written to stderr.
    #[arg(long, value_enum, default_value = "info")]
    log_level: LogLevel,
    /// Format of log lines.
    #[arg(long, value_enum, default_value = "pretty")]
    log_format: LogFormat,
    /// Print the server's configuration to stderr at start.
    #[arg(long)]
    log_config: bool,
    /// Run without the web UI. Also makes the default database a throwaway one (see
    /// --db-filename), as the SDKs' test environments pass it.
    #[arg(long)]
    headless: bool,
    /// Port of the web UI [default: --port + 1000, e.g. 8233]. Given explicitly, it makes the
    /// default database a throwaway one, like --headless.
    #[arg(long)]
    ui_port: Option<u16>,
    /// Address of the web UI [default: --ip].
    #[arg(long, value_name = "IP", value_parser = parse_ip)]
    ui_ip: Option<IpAddr>,
    /// Accepted as `temporal server start-dev` does and ignored: the web UI is built in.
    #[arg(long, value_name = "PATH")]
    ui_public_path: Option<String>,
    /// Accepted as `temporal server start-dev` does and ignored: the web UI is built in.
    #[arg(long, value_name = "PATH")]
    ui_asset_path: Option<String>,
    /// Accepted as `temporal server start-dev` does and ignored: the web UI is built in.
    #[arg(long, value_name = "URL")]
    ui_codec_endpoint: Option<String>,
    /// Accepted as `temporal server start-dev` does and ignored: the web UI is built in.
    #[arg(long)]
    ui_disable_news_fetch: bool,
    /// Port of Temporal's HTTP API (JSON over HTTP, on --ip). Defaults to a free port, as
    /// `temporal server start-dev` does; the banner prints it.
    #[arg(long)]
    http_port: Option<u16>,
    /// SQLite pragma as PRAGMA=VALUE (repeatable). Accepted as `temporal server start-dev` does
    /// and ignored: Uhrwerk sets its own (WAL, fsync on every commit), on which its durability
    /// rests.
    #[arg(long = "sqlite-pragma", value_name = "PRAGMA=VALUE", value_parser = parse_pragma)]
    sqlite_pragmas: Vec<String>,
}

impl StartDevArgs {
    /// Launched the way the SDKs' test environments launch `temporal server start-dev`: they
    /// always pass --headless, or --ui-port when they want a UI. Such a server is a throwaway
    /// unless --db-filename names a file.
    fn dev_server_launch(&self) -> bool {
        self.headless || self.ui_port.is_some()
    }

    /// Whether calls are authorized (API keys, certificate subjects or JWTs).
    fn authorization(&self) -> bool {
        self.api_keys_file.is_some() || self.jwt_jwks.is_some()
    }

    /// Flags accepted for compatibility that change nothing, by name.
    fn ignored_flags(&self) -> Vec<&'static str> {
        let given = [
            ("--ui-public-path", self.ui_public_path.is_some()),
            ("--ui-asset-path", self.ui_asset_path.is_some()),
            ("--ui-codec-endpoint", self.ui_codec_endpoint.is_some()),
            ("--ui-disable-news-fetch", self.ui_disable_news_fetch),
            ("--sqlite-pragma", !self.sqlite_pragmas.is_empty()),
        ];
        given.into_iter().filter(|(_, on)| *on).map(|(name, _)| name).collect()
    }
}

fn parse_ip(value: &str) -> Result<IpAddr, String> {
    if value.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::from([127, 0, 0, 1]));
    }
    value.parse().map_err(|_| format!("{value:?} is not an IP address (nor `localhost`)"))
}

fn parse_pragma(value: &str) -> Result<String, String> {
    match value.split_once('=') {
        Some((name, _)) if !name.trim().is_empty() => Ok(value.to_string()),
        _ => Err(format!("{value:?} must look like PRAGMA=VALUE")),
    }
}

/// Port of `/metrics` unless `--metrics-port` says otherwise.
const DEFAULT_METRICS_PORT: u16 = 9233;

pub fn parse_search_attribute(value: &str) -> Result<(String, ValueType), String> {
    let (name, ty) = value.split_once('=').ok_or_else(|| format!("{value:?} must look like KEY=TYPE"))?;
    let name = name.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("search attribute name {name:?} must be an identifier"));
    }
    let ty = ValueType::from_name(ty.trim()).ok_or_else(|| {
        format!("unknown search attribute type {ty:?}: use Text, Keyword, Int, Double, Bool, Datetime or KeywordList")
    })?;
    Ok((name.to_string(), ty))
}

fn default_db_path() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("uhrwerk").join("uhrwerk.db")
}

/// Logs to stderr at `level` (`UHRWERK_LOG` overrides, with tracing's filter syntax).
pub fn init_logging(level: LogLevel, format: LogFormat) {
    let level = match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error | LogLevel::Fatal => "error",
        LogLevel::Never => "off",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("UHRWERK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},h2=warn,tower=warn,hyper=warn")));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

pub fn run(command: ServerCommand) -> ExitCode {
    let (args, production) = match command {
        ServerCommand::StartDev(args) => (*args, false),
        ServerCommand::Start(args) => (*args, true),
    };
    init_logging(args.log_level, args.log_format);
    match start(args, production) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", crate::error_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// A shard lease: Go's duration syntax, at least 200ms.
fn parse_lease(s: &str) -> Result<std::time::Duration, String> {
    let nanos = uhrwerk_schedule::duration::parse_duration(s)?;
    let lease = std::time::Duration::from_nanos(u64::try_from(nanos).map_err(|_| "must not be negative".to_string())?);
    if lease < std::time::Duration::from_millis(200) {
        return Err("must be at least 200ms".into());
    }
    Ok(lease)
}

/// Where the server keeps its data: `server start` wants it named and kept.
fn persistence(args: &StartDevArgs, production: bool) -> anyhow::Result<Persistence> {
    if let Some(url) = args.database.url()? {
        return Ok(Persistence::Postgres(Box::new(uhrwerk_postgres::PostgresOptions {
            url,
            pool_size: args.database_pool_size,
            migrate: !args.skip_migrations,
        })));
    }
    Ok(match args.db_filename.as_deref() {
        Some(":memory:") if production => {
            anyhow::bail!("`server start` keeps its data: use `server start-dev` for a throwaway database")
        }
        Some(":memory:") => Persistence::Ephemeral,
        Some(path) => Persistence::Sqlite(PathBuf::from(path)),
        None if production => {
            anyhow::bail!("`server start` needs its database: --database-url (PostgreSQL) or --db-filename (SQLite)")
        }
        None if args.dev_server_launch() => Persistence::Ephemeral,
        None => Persistence::Sqlite(default_db_path()),
    })
}

fn start(args: StartDevArgs, production: bool) -> anyhow::Result<()> {
    let persistence = persistence(&args, production)?;
    let ignored = args.ignored_flags();
    if !ignored.is_empty() {
        tracing::info!(
            flags = ignored.join(" "),
            "accepted as `temporal server start-dev` does and ignored: the web UI is built in (no assets or codec server to point at) and Uhrwerk sets its own SQLite pragmas"
        );
    }
    let mut dynamic_config = DynamicConfig::parse(args.dynamic_config_values.iter().map(String::as_str))?;
    if let Some(path) = &args.dynamic_config_file {
        dynamic_config.merge_file(path)?;
    }
    // A throwaway server takes a free port, so that several can run side by side.
    let metrics_port = match args.metrics_port {
        Some(port) => Some(port).filter(|p| *p != 0),
        None if args.dev_server_launch() && !production => Some(0),
        None => Some(DEFAULT_METRICS_PORT),
    };
    let config = ServerConfig {
        listen: SocketAddr::new(args.ip, args.port),
        persistence: persistence.clone(),
        namespaces: args.namespaces.clone(),
        dynamic_config,
        search_attributes: args.search_attributes.clone(),
        metrics_listen: metrics_port.map(|port| SocketAddr::new(args.ip, port)),
        metrics_best_effort: args.metrics_port.is_none(),
        http_listen: Some(SocketAddr::new(args.ip, args.http_port.unwrap_or(0))),
        // The web UI has no login yet: with authorization on it stays off.
        ui_listen: (!args.headless && !args.authorization()).then(|| {
            // A free gRPC port (0) gives a free UI port too.
            let port = args.ui_port.unwrap_or(if args.port == 0 { 0 } else { args.port.saturating_add(1000) });
            SocketAddr::new(args.ui_ip.unwrap_or(args.ip), port)
        }),
        api_keys: args.api_keys_file.clone(),
        jwt: args.jwt_jwks.clone().map(|jwks| uhrwerk_server::auth::JwtConfig {
            jwks,
            audience: args.jwt_audience.clone(),
            issuer: args.jwt_issuer.clone(),
            permissions_claim: args.jwt_permissions_claim.clone(),
        }),
        tls: match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(uhrwerk_server::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: args.tls_client_ca.clone(),
            }),
            _ => None,
        },
        cluster: args.advertise_address.clone().map(|advertise| uhrwerk_server::cluster::ClusterConfig {
            advertise,
            shards: args.cluster_shards,
            lease: args.shard_lease,
            tls: match (&args.tls_cert, &args.tls_key, &args.cluster_tls_ca) {
                (Some(cert), Some(key), Some(ca)) => {
                    Some(uhrwerk_server::tls::NodeTls { cert: cert.clone(), key: key.clone(), ca: ca.clone() })
                }
                _ => None,
            },
        }),
        time_skipping: None,
    };
    if args.log_config {
        eprintln!("{config:#?}");
    }
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("start the async runtime")?;
    runtime.block_on(async move {
        let running = uhrwerk_server::start(config).await?;
        let mode = match &persistence {
            Persistence::Sqlite(path) => {
                format!("SQLite file {} (every acknowledged change is fsynced)", path.display())
            }
            Persistence::Ephemeral if args.db_filename.is_none() => {
                "none: throwaway database, deleted at exit (--headless or --ui-port without --db-filename)".to_string()
            }
            Persistence::Ephemeral => "none: throwaway database, deleted at exit (--db-filename :memory:)".to_string(),
            Persistence::Postgres(options) => {
                format!("PostgreSQL {} (every acknowledged change is committed, synchronous_commit on)", options.url)
            }
        };
        let mut namespaces = vec!["default".to_string()];
        namespaces.extend(args.namespaces.iter().filter(|n| n.as_str() != "default").cloned());
        eprintln!("Uhrwerk {} (Temporal-compatible server)", env!("CARGO_PKG_VERSION"));
        eprintln!("  gRPC frontend:  {}", running.addr);
        if let Some(addr) = running.ui_addr {
            eprintln!("  web UI:         http://{addr}");
        }
        if let Some(addr) = running.http_addr {
            eprintln!("  HTTP API:       http://{addr}");
        }
        match running.metrics_addr {
            Some(addr) => eprintln!("  metrics:        http://{addr}/metrics"),
            None => eprintln!("  metrics:        off"),
        }
        match (&args.tls_cert, &args.tls_client_ca) {
            (Some(cert), None) => eprintln!("  TLS:            on, certificate {}", cert.display()),
            (Some(cert), Some(ca)) => eprintln!(
                "  TLS:            on, certificate {}; client certificates required (mTLS), CA {}",
                cert.display(),
                ca.display()
            ),
            _ => eprintln!("  TLS:            off (plaintext gRPC; --tls-cert and --tls-key turn it on)"),
        }
        let mut sources = Vec::new();
        if let Some(path) = &args.api_keys_file {
            sources.push(format!("API keys and certificate subjects from {}", path.display()));
        }
        if let Some(jwks) = &args.jwt_jwks {
            sources.push(format!("JWTs signed by a key of {jwks}"));
        }
        match sources.is_empty() {
            false => eprintln!(
                "  authorization:  on, {} (Temporal's roles per namespace; the web UI is off)",
                sources.join("; ")
            ),
            true => eprintln!(
                "  authorization:  off (anyone who reaches the port may call anything; see --api-keys-file, --jwt-jwks)"
            ),
        }
        eprintln!("  persistence:    {mode}");
        eprintln!("  namespaces:     {}", namespaces.join(", "));
        match &running.cluster {
            Some(cluster) => {
                let internal = running.internal_addr.map(|a| a.to_string()).unwrap_or_default();
                eprintln!(
                    "  cluster:        node {} (internal service on {internal}), {} shards, lease {:?}",
                    cluster.node(),
                    cluster.shard_count(),
                    cluster.lease()
                );
                eprintln!(
                    "  members:        {} (this node holds {} shards now; it recovers each shard as it takes it)",
                    cluster.members().join(", "),
                    cluster.held().len()
                );
            }
            None => {
                let (runs, tasks, timers) = running.recovered;
                eprintln!("  recovered:      {runs} open runs, {tasks} queued tasks, {timers} timers");
            }
        }
        eprintln!("Ready. Stop with Ctrl-C.");
        wait_for_signal().await;
        tracing::info!("shutting down");
        running.shutdown().await?;
        tracing::info!("stopped");
        anyhow::Ok(())
    })
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
