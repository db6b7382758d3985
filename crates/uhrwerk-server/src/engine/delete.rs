//! Deleting runs: `DeleteWorkflowExecution` and namespace retention. A running run is
//! terminated first; the run's rows go in one batch and its slot forgets it.

use std::sync::Arc;

use uhrwerk_core::kernel;
use uhrwerk_storage::{RunKey, WriteBatch};

use super::Engine;
use crate::error::{Error, Result};

/// Termination reason of a running workflow deleted through the API, as Temporal writes it.
const DELETE_REASON: &str = "Delete workflow execution";

impl Engine {
    /// Deletes a run (the latest one of the workflow id when `run_id` is empty), terminating it
    /// first when it is still running.
    pub async fn delete_run(
        self: &Arc<Self>,
        namespace: &str,
        workflow_id: &str,
        run_id: &str,
        identity: &str,
    ) -> Result<()> {
        let run = self.run_state(namespace, workflow_id, run_id).await?;
        if run.is_open() {
            let identity = identity.to_string();
            let terminated = self
                .mutate(namespace, workflow_id, &run.run_id, move |ctx, st| {
                    kernel::terminate_run(ctx, st, DELETE_REASON, None, &identity)
                })
                .await;
            match terminated {
                // It closed on its own meanwhile: delete it all the same.
                Ok(()) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let key = RunKey { namespace: namespace.to_string(), workflow_id: workflow_id.to_string(), run_id: run.run_id };
        self.delete_runs(vec![key]).await
    }

    /// Deletes closed runs with everything they own, under each workflow id's lock.
    pub async fn delete_runs(self: &Arc<Self>, keys: Vec<RunKey>) -> Result<()> {
        for key in keys {
            let (slot, mut guard) = self.lock_slot(&key.namespace, &key.workflow_id).await?;
            let batch = WriteBatch { fence: guard.fence, deletes: vec![key.clone()], ..Default::default() };
            self.executions().commit(batch).await?;
            if guard.run.as_ref().is_none_or(|r| !r.is_open()) {
                // Nothing open stays in memory; the next access reloads what the id points to now.
                self.evict(&(key.namespace.clone(), key.workflow_id.clone()), &slot, &mut guard);
            }
        }
        Ok(())
    }
}
