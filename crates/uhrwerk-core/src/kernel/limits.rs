//! Temporal's per-run limits: history count and size (a run over the error limit is terminated,
//! warn-level breaches are remembered on the run), pending operations and signals.

use crate::config::Limits;
use crate::state::RunState;

use super::{Ctx, Error, Result};

/// Termination reasons, as Temporal writes them.
pub const HISTORY_COUNT_EXCEEDED: &str = "Workflow history count exceeds limit.";
pub const HISTORY_SIZE_EXCEEDED: &str = "Workflow history size exceeds limit.";
/// Identity of terminations the server itself decides.
pub const SERVER_IDENTITY: &str = "history-service";

/// `RunState::warned_limits` bits.
pub const WARN_HISTORY_COUNT: u32 = 1;
pub const WARN_HISTORY_SIZE: u32 = 2;
pub const WARN_BLOB_SIZE: u32 = 4;
pub const WARN_MEMO_SIZE: u32 = 8;

/// The warn-level limits with their Temporal names, for metrics and logs.
pub const WARN_LIMITS: &[(u32, &str)] = &[
    (WARN_HISTORY_COUNT, "limit.historyCount.warn"),
    (WARN_HISTORY_SIZE, "limit.historySize.warn"),
    (WARN_BLOB_SIZE, "limit.blobSize.warn"),
    (WARN_MEMO_SIZE, "limit.memoSize.warn"),
];

/// Workflow tasks started under a continue-as-new suggestion after which the suggestion counts
/// as ignored.
pub const SUGGESTION_IGNORED_AFTER: i64 = 10;

/// Whether a transition took the run's history over `limit.historyCount.error`. Temporal then
/// drops the transition and terminates the run as it was before it (`terminate_over_count`).
pub fn count_exceeded(limits: &Limits, st: &RunState) -> bool {
    st.is_open() && st.next_event_id - 1 > limits.history_count_error
}

/// A history error limit that terminated a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryLimit {
    Count,
    Size,
}

impl HistoryLimit {
    /// The limit's dynamic-config key.
    pub fn key(self) -> &'static str {
        match self {
            HistoryLimit::Count => "limit.historyCount.error",
            HistoryLimit::Size => "limit.historySize.error",
        }
    }
}

/// Terminates a run for its history count, on the state before the dropped transition.
pub fn terminate_over_count(ctx: &mut Ctx<'_>, st: &mut RunState) -> Option<HistoryLimit> {
    super::terminate_run(ctx, st, HISTORY_COUNT_EXCEEDED, None, SERVER_IDENTITY).is_ok().then_some(HistoryLimit::Count)
}

/// Records warn-level breaches of the history and terminates a run over an error limit, as
/// Temporal does at the end of each transition. Returns the limit that terminated the run.
pub fn enforce_history_limits(ctx: &mut Ctx<'_>, st: &mut RunState) -> Option<HistoryLimit> {
    let count = st.next_event_id - 1;
    let size = st.history_size_bytes;
    if count > ctx.limits.history_count_warn {
        st.warned_limits |= WARN_HISTORY_COUNT;
    }
    if size > ctx.limits.history_size_warn {
        st.warned_limits |= WARN_HISTORY_SIZE;
    }
    if !st.is_open() {
        return None;
    }
    let (reason, limit) = if count > ctx.limits.history_count_error {
        (HISTORY_COUNT_EXCEEDED, HistoryLimit::Count)
    } else if size > ctx.limits.history_size_error {
        (HISTORY_SIZE_EXCEEDED, HistoryLimit::Size)
    } else {
        return None;
    };
    super::terminate_run(ctx, st, reason, None, SERVER_IDENTITY).is_ok().then_some(limit)
}

/// `history.maximumSignalsPerExecution`: the message Temporal answers a signal over it with.
pub fn check_signal_count(limits: &Limits, st: &RunState) -> Result<()> {
    if limits.maximum_signals_per_execution > 0 && st.signal_count >= limits.maximum_signals_per_execution {
        return Err(Error::InvalidArgument("exceeded workflow execution limit for signal events".into()));
    }
    Ok(())
}

/// The message of a pending-operation limit, as Temporal words it.
pub fn pending_message(what: &str, pending: i64, limit: i64) -> String {
    format!("the number of {what}, {pending}, has reached the per-workflow limit of {limit}")
}
