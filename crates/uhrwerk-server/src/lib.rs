//! The Uhrwerk server: wires the store, engine, matching, timers and the gRPC frontend together
//! and runs them until shutdown.

#![allow(deprecated)] // Deprecated wire values (e.g. TerminateIfRunning) are still honoured.

pub mod auth;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod engine;
pub mod error;
pub mod frontend;
pub mod http_api;
pub mod matching;
pub mod metrics;
pub mod namespaces;
pub mod protojson;
pub mod queries;
pub mod reload;
pub mod retention;
pub mod schedules;
pub mod search_attributes;
pub mod time_skipping;
pub mod timers;
pub mod tls;
pub mod transport;
pub mod ui;
mod unary;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use uhrwerk_postgres::PostgresStore;
use uhrwerk_proto::server::workflowservice::workflow_service_server::WorkflowServiceServer;
use uhrwerk_sqlite::{SqliteOptions, SqliteStore};

use crate::clock::{Clock, SystemClock};
use crate::config::{Persistence, ServerConfig};
use crate::engine::{Engine, EngineParts, Stores};
use crate::frontend::Frontend;
use crate::matching::Matching;
use crate::namespaces::Namespaces;
use crate::schedules::Scheduler;
use crate::search_attributes::SearchAttributes;
use crate::timers::Timers;

/// The server version GetSystemInfo and GetClusterInfo report: the Temporal server release whose
/// API and behaviour Uhrwerk matches (its compat suite's oracle), a semantic version SDKs and
/// user interfaces can compare. Uhrwerk's own name and version are in GetClusterInfo's
/// `version_info` and in the start-up banner.
pub const SERVER_VERSION: &str = "1.32.0";
/// Uhrwerk's own version.
pub const UHRWERK_VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid configuration: {0}")]
    Config(#[from] config::ConfigError),
    // The store's error is part of the message and not a `source`: printed once.
    #[error("failed to open the database {path}: {error}")]
    Store { path: PathBuf, error: uhrwerk_storage::Error },
    #[error("failed to open the database {url}: {error}")]
    Database { url: String, error: uhrwerk_storage::Error },
    #[error("failed to recover state: {0}")]
    Recover(#[from] error::Error),
    #[error("failed to listen on {addr}: {error}")]
    Bind { addr: SocketAddr, error: std::io::Error },
    #[error("failed to serve: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error("{0}")]
    Keys(#[from] auth::KeyError),
    #[error("JWT: {0}")]
    Jwks(#[from] auth::jwt::JwksError),
    #[error(
        "authorization in a cluster needs TLS between the nodes (--tls-cert, --tls-key and --cluster-tls-ca): \
         without it anyone who reaches a node's internal port would pass around it"
    )]
    ClusterNeedsTls,
    #[error("TLS in a cluster needs --cluster-tls-ca, the CA that signs the nodes' certificates")]
    ClusterTlsNeedsCa,
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("a cluster (--advertise-address) needs a PostgreSQL database (--database-url)")]
    ClusterNeedsPostgres,
    #[error("failed to join the cluster: {0}")]
    Cluster(uhrwerk_storage::Error),
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    /// Where `/metrics` is served, when it is.
    pub metrics_addr: Option<SocketAddr>,
    /// Where the HTTP API is served, when it is.
    pub http_addr: Option<SocketAddr>,
    /// Where the web UI is served, when it is.
    pub ui_addr: Option<SocketAddr>,
    /// What recovery found at start-up: (open runs, queued tasks, armed timers).
    pub recovered: (usize, usize, usize),
    pub database: Option<PathBuf>,
    /// This node's cluster, when it is part of one.
    pub cluster: Option<Arc<cluster::Cluster>>,
    /// Where the internal service for the other cluster nodes is served.
    pub internal_addr: Option<SocketAddr>,
    /// The cluster's lease loop, which gives the shards back at shutdown.
    cluster_task: Option<JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
    serve: JoinHandle<Result<(), tonic::transport::Error>>,
    store: OpenStore,
    ephemeral: Option<PathBuf>,
}

/// The store a server opened, to close at shutdown.
enum OpenStore {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PostgresStore>),
}

impl OpenStore {
    async fn close(&self) {
        match self {
            OpenStore::Sqlite(store) => store.close(),
            OpenStore::Postgres(store) => store.close().await,
        }
    }

    /// Stops what can be stopped without waiting (a dropped server).
    fn close_now(&self) {
        match self {
            OpenStore::Sqlite(store) => store.close(),
            // The pool's connections end when the store is dropped.
            OpenStore::Postgres(_) => {}
        }
    }

    fn stores(&self) -> Stores {
        match self {
            OpenStore::Sqlite(s) => Stores { executions: s.clone(), visibility: s.clone(), metadata: s.clone() },
            OpenStore::Postgres(s) => Stores { executions: s.clone(), visibility: s.clone(), metadata: s.clone() },
        }
    }
}

impl Running {
    /// Stops accepting calls, ends long polls, waits for in-flight calls and closes the store.
    pub async fn shutdown(mut self) -> Result<(), StartError> {
        let _ = self.shutdown.send(true);
        let served = (&mut self.serve).await;
        if let Some(task) = self.cluster_task.take() {
            // The shards go back before the store closes.
            let _ = task.await;
        }
        self.store.close().await;
        remove_ephemeral(self.ephemeral.take());
        match served {
            Ok(result) => Ok(result?),
            Err(e) => Err(StartError::Recover(error::Error::Internal(format!("server task failed: {e}")))),
        }
    }
}

impl Drop for Running {
    /// A server dropped without `shutdown` (e.g. a failing test) still stops and cleans up.
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if self.ephemeral.is_some() {
            self.serve.abort();
            self.store.close_now();
            remove_ephemeral(self.ephemeral.take());
        }
    }
}

fn remove_ephemeral(path: Option<PathBuf>) {
    if let Some(path) = path {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}

/// Throwaway databases are `<temp dir>/uhrwerk-ephemeral-<pid>-<uuid>.db` (with `-wal`, `-shm`).
const EPHEMERAL_PREFIX: &str = "uhrwerk-ephemeral-";

/// Removes the throwaway databases of servers that are gone without cleaning up: the SDKs'
/// test environments stop their server with SIGKILL. A file belongs to a live server while a
/// process with its pid exists (checked in /proc; elsewhere nothing is swept).
fn sweep_ephemeral(dir: &std::path::Path) {
    let proc = std::path::Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(EPHEMERAL_PREFIX)) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if !proc.join(pid.to_string()).exists() {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => tracing::debug!(file = %entry.path().display(), "removed a dead server's throwaway database"),
                Err(e) => {
                    tracing::debug!(file = %entry.path().display(), "could not remove a dead server's throwaway database: {e}")
                }
            }
        }
    }
}

/// Opens the store, recovers state and starts serving on `config.listen`.
pub async fn start(config: ServerConfig) -> Result<Running, StartError> {
    let clock: Arc<dyn Clock> = match &config.time_skipping {
        Some(clock) => Arc::new(clock.clone()),
        None => Arc::new(SystemClock),
    };
    start_with_clock(config, clock).await
}

/// `start` with workflow time from `clock` (tests move a `ManualClock` by hand; time skipping
/// moves its own).
pub async fn start_with_clock(config: ServerConfig, clock: Arc<dyn Clock>) -> Result<Running, StartError> {
    let limits = config.dynamic_config.limits()?;
    if let Some(cluster) = &config.cluster {
        if (config.api_keys.is_some() || config.jwt.is_some()) && cluster.tls.is_none() {
            return Err(StartError::ClusterNeedsTls);
        }
        if config.tls.is_some() && cluster.tls.is_none() {
            return Err(StartError::ClusterTlsNeedsCa);
        }
    }
    for key in config.dynamic_config.unknown_keys() {
        tracing::warn!(key, "dynamic config key is not used by Uhrwerk; ignored");
    }
    for key in config.dynamic_config.built_in_keys() {
        tracing::debug!(key, "dynamic config key is for a feature that is always on in Uhrwerk; ignored");
    }
    let (path, durable, ephemeral) = match &config.persistence {
        Persistence::Postgres(options) => {
            let store = PostgresStore::open(options)
                .await
                .map_err(|error| StartError::Database { url: options.url.to_string(), error })?;
            return start_on(config, clock, limits, OpenStore::Postgres(Arc::new(store)), None).await;
        }
        Persistence::Sqlite(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|source| StartError::Store {
                    path: path.clone(),
                    error: uhrwerk_storage::Error::Io { what: "create the database directory", source },
                })?;
            }
            (path.clone(), true, None)
        }
        Persistence::Ephemeral => {
            let dir = std::env::temp_dir();
            sweep_ephemeral(&dir);
            let path = dir.join(format!("{EPHEMERAL_PREFIX}{}-{}.db", std::process::id(), uuid::Uuid::new_v4()));
            (path.clone(), false, Some(path))
        }
    };
    let store = Arc::new(
        SqliteStore::open(&SqliteOptions { path: path.clone(), durable })
            .map_err(|error| StartError::Store { path: path.clone(), error })?,
    );
    start_on(config, clock, limits, OpenStore::Sqlite(store), ephemeral).await
}

/// Starts serving on an open store.
async fn start_on(
    config: ServerConfig,
    clock: Arc<dyn Clock>,
    limits: uhrwerk_core::config::Limits,
    store: OpenStore,
    ephemeral: Option<PathBuf>,
) -> Result<Running, StartError> {
    let stores = store.stores();
    let namespaces =
        Namespaces::load(stores.metadata.clone(), &config.namespaces, || uuid::Uuid::new_v4().to_string()).await?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let limit_values: Vec<(&'static str, i64)> = config::LIMIT_KEYS.iter().map(|k| (k.key, (k.get)(&limits))).collect();
    let metrics = metrics::Metrics::new(&limit_values);
    let cluster = match (&config.cluster, &store) {
        (None, _) => None,
        (Some(cluster_config), OpenStore::Postgres(pg)) => Some(
            cluster::Cluster::join(cluster_config, pg.clone(), metrics.registry())
                .await
                .map_err(StartError::Cluster)?,
        ),
        (Some(_), OpenStore::Sqlite(_)) => return Err(StartError::ClusterNeedsPostgres),
    };
    let matching = Matching::new(clock.clone(), metrics.registry(), shutdown_rx.clone());
    if let Some(cluster) = &cluster {
        matching.join_cluster(cluster.clone());
    }
    tokio::spawn(matching.clone().run_pruning(shutdown_rx.clone()));
    let timers = Timers::default();
    let all_namespaces: Vec<String> =
        namespaces.list().iter().filter_map(|ns| ns.namespace_info.as_ref().map(|i| i.name.clone())).collect();
    let search_attributes =
        SearchAttributes::load(stores.metadata.clone(), &all_namespaces, &config.search_attributes).await?;
    let (visibility, metadata) = (stores.visibility.clone(), stores.metadata.clone());
    let engine = Engine::new(EngineParts {
        stores,
        clock,
        limits,
        run_cache_size: config.dynamic_config.run_cache_size()?,
        matching: matching.clone(),
        timers,
        search_attributes,
        metrics: metrics.clone(),
        shutdown: shutdown_rx.clone(),
        cluster: cluster.clone(),
    });
    let recovered = engine.recover().await?;
    tokio::spawn(engine.clone().run_timers(shutdown_rx.clone()));
    tokio::spawn(engine.clone().run_transfers(shutdown_rx.clone()));
    tokio::spawn(retention::run(engine.clone(), visibility, namespaces.clone(), shutdown_rx.clone()));
    let scheduler = Scheduler::new(engine.clone(), metadata, shutdown_rx.clone());
    let watcher = Arc::downgrade(&scheduler);
    engine.on_close(Box::new(move |run| {
        let Some(scheduler) = watcher.upgrade() else { return };
        if let Some(schedule_id) = schedules::scheduled_by(run) {
            scheduler.run_closed_anywhere(&run.namespace, &schedule_id);
        }
    }));
    let n_schedules = scheduler.recover().await?;
    tracing::debug!(n_schedules, "schedules resumed");

    let keys = config.api_keys.as_deref().map(auth::KeyFile::load).transpose()?;
    if let Some(keys) = &keys {
        tokio::spawn(keys.clone().watch(shutdown_rx.clone()));
    }
    let jwt = match &config.jwt {
        Some(jwt) => Some(auth::Jwt::load(jwt.clone()).await?),
        None => None,
    };
    if let Some(jwt) = &jwt {
        tokio::spawn(jwt.clone().watch(shutdown_rx.clone()));
    }
    let authorize = (keys.is_some() || jwt.is_some()).then(|| auth::Authorize::new(keys, jwt));
    let frontend = Frontend::new(engine.clone(), namespaces.clone(), scheduler.clone(), SERVER_VERSION)
        .with_auth(authorize.clone());
    // The internal service before the frontend: the other nodes hand tasks over as soon as
    // this one is a member.
    let (internal_addr, cluster_task) = match (&cluster, &config.cluster) {
        (Some(cluster), Some(cluster_config)) => {
            let addr = internal_listen(config.listen, &cluster_config.advertise)?;
            let listener =
                tokio::net::TcpListener::bind(addr).await.map_err(|error| StartError::Bind { addr, error })?;
            let bound = listener.local_addr().map_err(|error| StartError::Bind { addr, error })?;
            let mut stop = shutdown_rx.clone();
            // Calls forwarded by other nodes come here too (marked, so served here). With TLS,
            // only nodes (certificates signed by the nodes' CA) get in: the calls they forward
            // were authorized where they arrived.
            let internal = transport::grpc_server()
                .add_service(frontend::cluster::service(engine.clone(), namespaces.clone(), scheduler.clone()))
                .add_service(frontend.workflow_service());
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            match &cluster_config.tls {
                Some(node_tls) => {
                    let tls = tls::Tls::load(node_tls.server())?;
                    tokio::spawn(tls.clone().watch(shutdown_rx.clone()));
                    let incoming = tls::incoming(listener, tls, tls::Alpn::H2);
                    tokio::spawn(internal.serve_with_incoming_shutdown(incoming, stopped));
                }
                None => {
                    tokio::spawn(internal.serve_with_incoming_shutdown(transport::grpc_incoming(listener), stopped));
                }
            }
            let hosts = cluster::lease::Hosts {
                engine: engine.clone(),
                scheduler: scheduler.clone(),
                namespaces: namespaces.clone(),
            };
            // The first round before serving: the node starts with its share of the shards
            // that are free.
            if let Err(e) = cluster::lease::step(cluster, &hosts).await {
                tracing::warn!("cluster: first membership round failed: {e}");
            }
            (Some(bound), Some(tokio::spawn(cluster::lease::run(cluster.clone(), hosts, shutdown_rx.clone()))))
        }
        _ => (None, None),
    };
    let tls = config.tls.clone().map(tls::Tls::load).transpose()?;
    if let Some(tls) = &tls {
        tokio::spawn(tls.clone().watch(shutdown_rx.clone()));
    }
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<WorkflowServiceServer<Frontend>>().await;

    let metrics_addr = match config.metrics_listen {
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                let bound = listener.local_addr().map_err(|error| StartError::Bind { addr, error })?;
                let listener = transport::http_listener(listener, tls.clone());
                tokio::spawn(metrics::serve(listener, metrics.clone(), shutdown_rx.clone()));
                Some(bound)
            }
            Err(source) if config.metrics_best_effort => {
                tracing::warn!(%addr, "metrics endpoint not started, its port is taken ({source}); choose one with --metrics-port");
                None
            }
            Err(error) => return Err(StartError::Bind { addr, error }),
        },
        None => None,
    };

    let http_addr = match config.http_listen {
        Some(addr) => {
            let listener =
                tokio::net::TcpListener::bind(addr).await.map_err(|error| StartError::Bind { addr, error })?;
            let bound = listener.local_addr().map_err(|error| StartError::Bind { addr, error })?;
            let listener = transport::http_listener(listener, tls.clone());
            tokio::spawn(http_api::serve(listener, frontend.clone(), shutdown_rx.clone()));
            Some(bound)
        }
        None => None,
    };

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|error| StartError::Bind { addr: config.listen, error })?;
    let addr = listener.local_addr().map_err(|error| StartError::Bind { addr: config.listen, error })?;
    let ui_addr = match config.ui_listen {
        Some(ui_at) => match tokio::net::TcpListener::bind(ui_at).await {
            Ok(listener) => {
                let bound = listener.local_addr().map_err(|error| StartError::Bind { addr: ui_at, error })?;
                let listener = transport::http_listener(listener, tls.clone());
                tokio::spawn(ui::serve(listener, frontend.clone(), shutdown_rx.clone()));
                Some(bound)
            }
            // As the metrics endpoint: a taken UI port does not keep the server from starting.
            Err(source) => {
                tracing::warn!(addr = %ui_at, "web UI not started, its port is taken ({source}); choose one with --ui-port");
                None
            }
        },
        None => None,
    };

    let mut stop = shutdown_rx.clone();
    let router = transport::grpc_server()
        .layer(auth::AuthLayer::new(authorize.clone()))
        .layer(cluster::route::RouteLayer::new(cluster.clone(), shutdown_rx.clone()))
        .add_service(
            health_service
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
                .send_compressed(tonic::codec::CompressionEncoding::Gzip),
        )
        .add_service(frontend.workflow_service())
        .add_service(frontend.operator_service())
        .add_optional_service(config.time_skipping.clone().map(|clock| frontend.test_service(clock)));
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let serve = match tls {
        Some(tls) => {
            tokio::spawn(router.serve_with_incoming_shutdown(tls::incoming(listener, tls, tls::Alpn::H2), stopped))
        }
        None => tokio::spawn(router.serve_with_incoming_shutdown(transport::grpc_incoming(listener), stopped)),
    };
    Ok(Running {
        addr,
        metrics_addr,
        http_addr,
        ui_addr,
        recovered,
        database: match (&config.persistence, &ephemeral) {
            (Persistence::Sqlite(path), None) => Some(path.clone()),
            _ => None,
        },
        cluster,
        internal_addr,
        cluster_task,
        shutdown: shutdown_tx,
        serve,
        store,
        ephemeral,
    })
}

/// Where the internal service listens: the frontend's IP with the advertised port.
fn internal_listen(frontend: SocketAddr, advertise: &str) -> Result<SocketAddr, StartError> {
    let port = advertise
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse::<u16>().ok())
        .ok_or_else(|| config::ConfigError::Invalid(format!("--advertise-address {advertise:?} is not HOST:PORT")))?;
    Ok(SocketAddr::new(frontend.ip(), port))
}
