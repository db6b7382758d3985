//! The engine's API: one module per RPC (or family of RPCs), each with its entry point
//! (`invoke`, or one function per member of the family). A module owns everything behind its
//! RPC once the frontend has validated the request: the transitions it runs, the reads it makes
//! and the response it builds. The frontend is tonic, validation and error mapping only.
//!
//! Temporal's `service/history/api/<rpc>` is the model; following one RPC from the wire to the
//! store takes this one module plus `Engine::mutate`.

pub mod activity_operations;
pub mod delete_workflow_execution;
pub mod describe_task_queue;
pub mod describe_workflow_execution;
pub mod get_workflow_execution_history;
pub mod list_workflow_executions;
pub mod poll_activity_task_queue;
pub mod poll_workflow_task_queue;
pub mod query_workflow;
pub mod request_cancel_workflow_execution;
pub mod reset_sticky_task_queue;
pub mod reset_workflow_execution;
pub mod respond_activity_task;
pub mod respond_workflow_task_completed;
pub mod respond_workflow_task_failed;
pub mod shutdown_worker;
pub mod signal_with_start_workflow_execution;
pub mod signal_workflow_execution;
pub mod start_workflow_execution;
pub mod terminate_workflow_execution;
pub mod update_workflow_execution;

mod tasks;
