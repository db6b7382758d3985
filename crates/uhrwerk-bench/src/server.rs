//! Servers the driver starts itself: Uhrwerk or the Temporal dev server on a free port and a
//! SQLite file (fresh, or the same one again for a restart), ready once GetSystemInfo and
//! DescribeNamespace answer, stopped with SIGTERM (or killed with SIGKILL), and timed: from the
//! process start until GetSystemInfo answers, and from the signal until the process is gone.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use temporalio_protos::temporal::api::workflowservice::v1::{DescribeNamespaceRequest, GetSystemInfoRequest};

use crate::client::{Pool, request};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ServerKind {
    Uhrwerk,
    Temporal,
}

impl ServerKind {
    pub fn label(self) -> &'static str {
        match self {
            ServerKind::Uhrwerk => "uhrwerk",
            ServerKind::Temporal => "temporal",
        }
    }
}

pub struct ServerProcess {
    child: Child,
    pub kind: ServerKind,
    pub address: String,
    pub pid: u32,
    pub log: PathBuf,
    /// Just before the process was spawned.
    pub started: Instant,
    /// `host:port` of its Prometheus endpoint (`/metrics`), when started with one.
    pub metrics_address: Option<String>,
}

/// How [`ServerProcess::terminate`] ends a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM: a clean shutdown (killed if still running 30 s later).
    Term,
    /// SIGKILL: a crash, as far as the server can tell.
    Kill,
}

impl Stop {
    pub fn name(self) -> &'static str {
        match self {
            Stop::Term => "SIGTERM",
            Stop::Kill => "SIGKILL",
        }
    }
}

/// A port that was free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("no free port")?;
    Ok(listener.local_addr()?.port())
}

impl ServerProcess {
    /// Starts `bin` as a `kind` server with its database and log in `dir`.
    pub fn spawn(kind: ServerKind, bin: &Path, dir: &Path) -> anyhow::Result<ServerProcess> {
        ServerProcess::spawn_named(kind, bin, dir, kind.label())
    }

    /// Starts `bin` as a `kind` server on `dir/<name>.db`, its output in `dir/<name>.log`.
    pub fn spawn_named(kind: ServerKind, bin: &Path, dir: &Path, name: &str) -> anyhow::Result<ServerProcess> {
        ServerProcess::start(kind, bin, &dir.join(format!("{name}.db")), &dir.join(format!("{name}.log")))
    }

    /// Starts `bin` as a `kind` server on the database `db` (new or not) on a free port, its
    /// output in `log` (truncated).
    pub fn start(kind: ServerKind, bin: &Path, db: &Path, log: &Path) -> anyhow::Result<ServerProcess> {
        ServerProcess::start_on(kind, bin, db, log, false)
    }

    /// [`ServerProcess::start`] with the Prometheus endpoint on another free port
    /// ([`ServerProcess::metrics_address`]), for the soak's scrapes.
    pub fn start_with_metrics(kind: ServerKind, bin: &Path, db: &Path, log: &Path) -> anyhow::Result<ServerProcess> {
        ServerProcess::start_on(kind, bin, db, log, true)
    }

    fn start_on(kind: ServerKind, bin: &Path, db: &Path, log: &Path, metrics: bool) -> anyhow::Result<ServerProcess> {
        let grpc_port = free_port()?;
        let port = grpc_port.to_string();
        // Not the gRPC port, nor Uhrwerk's web UI on --port + 1000.
        let metrics_port = if metrics {
            let mut candidate = free_port()?;
            while candidate == grpc_port || Some(candidate) == grpc_port.checked_add(1000) {
                candidate = free_port()?;
            }
            Some(candidate)
        } else {
            None
        };
        let mut command = Command::new(bin);
        command.args(["server", "start-dev", "--ip", "127.0.0.1", "--port", &port, "--db-filename"]).arg(db);
        match kind {
            ServerKind::Uhrwerk => command.args(["--metrics-port", &metrics_port.unwrap_or(0).to_string()]),
            ServerKind::Temporal => command.args(["--headless", "--sqlite-pragma", "journal_mode=wal"]),
        };
        if let (ServerKind::Temporal, Some(metrics_port)) = (kind, metrics_port) {
            command.args(["--metrics-port", &metrics_port.to_string()]);
        }
        let out = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let started = Instant::now();
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let pid = child.id();
        Ok(ServerProcess {
            child,
            kind,
            address: format!("127.0.0.1:{port}"),
            pid,
            log: log.to_path_buf(),
            started,
            metrics_address: metrics_port.map(|p| format!("127.0.0.1:{p}")),
        })
    }

    /// Waits until the server answers GetSystemInfo, asking every 2 ms for the first second and
    /// every 10 ms after that; the time from the process start until the answer, and the
    /// server's version.
    pub async fn wait_answer(&mut self, timeout: Duration) -> anyhow::Result<(Duration, String)> {
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited with {status} before it answered\n{}", self.kind.label(), self.log_tail());
            }
            let error = match self.system_info().await {
                Ok(version) => return Ok((self.started.elapsed(), version)),
                Err(e) => e,
            };
            let elapsed = self.started.elapsed();
            if elapsed > timeout {
                bail!("{} did not answer within {timeout:?}: {error:#}\n{}", self.kind.label(), self.log_tail());
            }
            let pause = if elapsed < Duration::from_secs(1) { 2 } else { 10 };
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }

    async fn system_info(&self) -> anyhow::Result<String> {
        let mut client = Pool::connect(&self.address, 1).await?.get();
        let info = client.get_system_info(request(GetSystemInfoRequest {}, Duration::from_secs(2))).await?;
        Ok(info.into_inner().server_version)
    }

    /// Waits until the server answers GetSystemInfo and knows the namespace; its version.
    pub async fn wait_ready(&mut self, namespace: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        let mut last_error = String::new();
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited with {status} before it was ready\n{}", self.kind.label(), self.log_tail());
            }
            match self.probe(namespace).await {
                Ok(version) => return Ok(version),
                Err(e) => last_error = format!("{e:#}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("{} not ready after {timeout:?}: {last_error}\n{}", self.kind.label(), self.log_tail())
    }

    async fn probe(&self, namespace: &str) -> anyhow::Result<String> {
        let mut client = Pool::connect(&self.address, 1).await?.get();
        let info = client.get_system_info(request(GetSystemInfoRequest {}, Duration::from_secs(2))).await?;
        let describe = DescribeNamespaceRequest { namespace: namespace.to_string(), ..Default::default() };
        client.describe_namespace(request(describe, Duration::from_secs(2))).await?;
        let version = info.into_inner().server_version;
        Ok(if version.is_empty() { "version unknown".into() } else { version })
    }

    /// Whether the process has ended (it is then reaped, and [`ServerProcess::stop`] says so).
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// The last lines of the server's output, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// SIGTERM, then waits up to 30 s for a clean exit before killing it.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.terminate(Stop::Term).await.map(|_| ())
    }

    /// Ends the server with `how` and waits until the process is gone (after SIGTERM at most
    /// 30 s, then it is killed); the time from the signal until then, checked every 2 ms.
    pub async fn terminate(mut self, how: Stop) -> anyhow::Result<Duration> {
        if self.child.try_wait()?.is_some() {
            bail!("{} had exited before the end\n{}", self.kind.label(), self.log_tail());
        }
        let signal = match how {
            Stop::Term => libc::SIGTERM,
            Stop::Kill => libc::SIGKILL,
        };
        let sent = Instant::now();
        // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
        unsafe { libc::kill(self.pid as libc::pid_t, signal) };
        while sent.elapsed() < Duration::from_secs(30) {
            if let Some(status) = self.child.try_wait()? {
                let took = sent.elapsed();
                if how == Stop::Term && !status.success() {
                    eprintln!("{} exited with {status} after SIGTERM", self.kind.label());
                }
                return Ok(took);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        eprintln!("{} still running 30 s after {}: killed", self.kind.label(), how.name());
        self.child.kill()?;
        self.child.wait()?;
        Ok(sent.elapsed())
    }
}

impl Drop for ServerProcess {
    /// A server left behind by an error is killed, never kept running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
