//! When files the server read at start (TLS material, the API key file) should be read again:
//! on SIGHUP, or when one of them changed on disk (checked every two seconds).

use std::path::Path;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

/// How often the files are checked for changes.
const INTERVAL: Duration = Duration::from_secs(2);

/// What a file looked like when read: (modified, length); `None` when it could not be read.
pub type Stamp = Option<(SystemTime, u64)>;

pub fn stamp(path: &Path) -> Stamp {
    std::fs::metadata(path).ok().and_then(|m| Some((m.modified().ok()?, m.len())))
}

/// The SIGHUPs one watcher receives.
pub struct Reloads {
    hangup: Option<tokio::signal::unix::Signal>,
}

impl Default for Reloads {
    fn default() -> Self {
        Self { hangup: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok() }
    }
}

impl Reloads {
    /// Waits for the next reason to read the files again: SIGHUP, or `changed()` turning true
    /// at a check; `None` at shutdown.
    pub async fn next(
        &mut self,
        changed: impl Fn() -> bool,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<&'static str> {
        loop {
            let signalled = async {
                match self.hangup.as_mut() {
                    Some(h) => h.recv().await.is_some(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = signalled => return Some("SIGHUP"),
                _ = crate::clock::sleep(INTERVAL) => {
                    if changed() {
                        return Some("the files changed");
                    }
                }
                _ = shutdown.wait_for(|stop| *stop) => return None,
            }
        }
    }
}
