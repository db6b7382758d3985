//! Limits and defaults that shape kernel decisions, named after Temporal's dynamic-config keys.

/// Kernel-relevant settings. The server fills them from `--dynamic-config-value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// `limit.historyCount.suggestContinueAsNew`
    pub history_count_suggest_continue_as_new: i64,
    /// `limit.historySize.suggestContinueAsNew` (bytes)
    pub history_size_suggest_continue_as_new: i64,
    /// `limit.historyCount.error`: a run with more events is terminated.
    pub history_count_error: i64,
    /// `limit.historyCount.warn`
    pub history_count_warn: i64,
    /// `limit.historySize.error` (bytes): a run with a larger history is terminated.
    pub history_size_error: i64,
    /// `limit.historySize.warn` (bytes)
    pub history_size_warn: i64,
    /// `limit.memoSize.error` (bytes)
    pub memo_size_error: usize,
    /// `limit.memoSize.warn` (bytes)
    pub memo_size_warn: usize,
    /// `limit.numPendingActivities.error`
    pub num_pending_activities_error: usize,
    /// `limit.numPendingChildExecutions.error`
    pub num_pending_child_executions_error: usize,
    /// `limit.numPendingSignals.error` (signals to other workflows in flight)
    pub num_pending_signals_error: i64,
    /// `limit.numPendingCancelRequests.error` (cancel requests to other workflows in flight)
    pub num_pending_cancel_requests_error: i64,
    /// `history.maximumSignalsPerExecution`
    pub maximum_signals_per_execution: i64,
    /// `limit.blobSize.error` (bytes)
    pub blob_size_error: usize,
    /// `limit.blobSize.warn` (bytes)
    pub blob_size_warn: usize,
    /// `limit.maxIDLength`
    pub max_id_length: usize,
    /// Default workflow task start-to-close timeout (ms), applied when the start leaves it unset.
    pub default_workflow_task_timeout_ms: i64,
    /// Upper bound of a workflow task timeout (ms).
    pub max_workflow_task_timeout_ms: i64,
    /// `history.workflowTaskRetryMaxInterval` (ms): the most that retries add to a failing
    /// workflow task's start-to-close timeout.
    pub workflow_task_retry_max_interval_ms: i64,
    /// `system.enableEagerWorkflowStart`
    pub enable_eager_workflow_start: bool,
    /// `system.enableActivityEagerExecution`
    pub enable_activity_eager_execution: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            history_count_suggest_continue_as_new: 4096,
            history_size_suggest_continue_as_new: 4 * 1024 * 1024,
            history_count_error: 50 * 1024,
            history_count_warn: 10 * 1024,
            history_size_error: 50 * 1024 * 1024,
            history_size_warn: 10 * 1024 * 1024,
            memo_size_error: 2 * 1024 * 1024,
            memo_size_warn: 2 * 1024,
            num_pending_activities_error: 2000,
            num_pending_child_executions_error: 2000,
            num_pending_signals_error: 2000,
            num_pending_cancel_requests_error: 2000,
            maximum_signals_per_execution: 10_000,
            blob_size_error: 2 * 1024 * 1024,
            blob_size_warn: 512 * 1024,
            max_id_length: 1000,
            default_workflow_task_timeout_ms: 10_000,
            max_workflow_task_timeout_ms: 120_000,
            workflow_task_retry_max_interval_ms: 10 * 60 * 1000,
            enable_eager_workflow_start: true,
            enable_activity_eager_execution: true,
        }
    }
}
