//! Schedules: their durable records, one task per schedule that wakes at the next action time,
//! and the API operations (create, describe, update, patch, delete, list, matching times).
//!
//! Invariant: a nominal time is handled at most once. The record (with the times already taken
//! and the buffered starts) is persisted before a start, and every start carries a request id
//! and a workflow id derived from the nominal time, so a start repeated after a crash finds the
//! run it already created.

mod record;
mod tick;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prost::Message;
use tokio::sync::{Notify, watch};
use uhrwerk_core::time;
use uhrwerk_proto::temporal::api::common::v1 as common_pb;
use uhrwerk_proto::temporal::api::schedule::v1 as schedule_pb;
use uhrwerk_proto::temporal::api::workflowservice::v1 as workflowservice_pb;
use uhrwerk_schedule::CompiledSpec;
use uhrwerk_storage::MetadataStore;

use crate::clock::Hold;
use crate::engine::Engine;
use crate::error::{Error, Result};

pub use record::ScheduleRecord;

/// The schedule that started a run, from its `TemporalScheduledById` attribute.
pub fn scheduled_by(run: &uhrwerk_core::state::RunState) -> Option<String> {
    let value = run.search_attributes.as_ref()?.indexed_fields.get("TemporalScheduledById")?;
    match uhrwerk_visibility::payload::decode(uhrwerk_visibility::ValueType::Keyword, value).ok()?.into_iter().next()? {
        uhrwerk_visibility::Literal::Str(id) => Some(id),
        _ => None,
    }
}

/// Most future action times a description lists, as Temporal.
const FUTURE_TIMES: usize = 10;
/// Most future action times a list entry shows.
const LIST_FUTURE_TIMES: usize = 5;
/// Most times a backfill or a matching-times request produces.
const MAX_TIMES: usize = 1000;

type Key = (String, String);

/// One schedule in memory: its record (None once deleted) and the bell of its task.
struct Entry {
    record: tokio::sync::Mutex<Option<ScheduleRecord>>,
    wake: Notify,
}

pub struct Scheduler {
    me: std::sync::Weak<Scheduler>,
    engine: Arc<Engine>,
    /// Where schedule records are kept.
    store: Arc<dyn MetadataStore>,
    entries: Mutex<HashMap<Key, Arc<Entry>>>,
    /// Schedules deleted since start, which Temporal reports differently from unknown ones.
    deleted: Mutex<std::collections::HashSet<Key>>,
    shutdown: watch::Receiver<bool>,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidArgument(message.into())
}

fn not_found(schedule_id: &str) -> Error {
    // Temporal runs each schedule as a workflow and answers with that workflow's id.
    Error::NotFound(format!("workflow not found for ID: temporal-sys-scheduler:{schedule_id}"))
}

/// Temporal's default catch-up window.
const DEFAULT_CATCHUP_SECS: i64 = 365 * 24 * 3600;

impl Scheduler {
    pub fn new(engine: Arc<Engine>, store: Arc<dyn MetadataStore>, shutdown: watch::Receiver<bool>) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            engine,
            store,
            entries: Mutex::default(),
            deleted: Mutex::default(),
            shutdown,
        })
    }

    fn self_ref(&self) -> Arc<Scheduler> {
        self.me.upgrade().expect("the scheduler outlives its tasks")
    }

    /// Loads every stored schedule and starts its task (in a cluster, each node does so for the
    /// shards it takes: `take_shards`).
    pub async fn recover(&self) -> Result<usize> {
        if self.engine.cluster().is_some() {
            return Ok(0);
        }
        self.load(|_, _| true).await
    }

    /// Loads the stored schedules `wanted` picks that are not running here yet.
    async fn load(&self, wanted: impl Fn(&str, &str) -> bool) -> Result<usize> {
        let rows = self.store.schedules().await?;
        let mut n = 0;
        for row in rows {
            let key = (row.namespace.clone(), row.schedule_id.clone());
            if !wanted(&row.namespace, &row.schedule_id)
                || self.entries.lock().expect("schedules lock").contains_key(&key)
            {
                continue;
            }
            let record = ScheduleRecord::decode(row.data.as_slice())
                .map_err(|e| Error::Internal(format!("corrupt schedule record: {e}")))?;
            self.install(row.namespace, row.schedule_id, record);
            n += 1;
        }
        Ok(n)
    }

    /// Resumes the schedules of shards this cluster node just took (a schedule belongs to the
    /// shard of its id, as a workflow does).
    pub async fn take_shards(&self, shards: &[i32]) -> Result<usize> {
        let Some(cluster) = self.engine.cluster().cloned() else { return Ok(0) };
        self.load(|ns, id| shards.contains(&cluster.shard_of(ns, id))).await
    }

    /// Stops the schedules of shards this node no longer holds; their new owner runs them.
    pub fn drop_shards(&self, shards: &[i32]) {
        let Some(cluster) = self.engine.cluster().cloned() else { return };
        let gone: Vec<Arc<Entry>> = {
            let mut entries = self.entries.lock().expect("schedules lock");
            let keys: Vec<Key> =
                entries.keys().filter(|(ns, id)| shards.contains(&cluster.shard_of(ns, id))).cloned().collect();
            keys.iter().filter_map(|k| entries.remove(k)).collect()
        };
        for entry in gone {
            tokio::spawn(async move {
                // An entry without a record ends its task at the next turn.
                *entry.record.lock().await = None;
                entry.wake.notify_one();
            });
        }
    }

    /// Wakes the schedule that started a run which just closed, so that buffered starts and
    /// pause-on-failure react at once.
    pub fn run_closed(&self, namespace: &str, schedule_id: &str) {
        let entry = self
            .entries
            .lock()
            .expect("schedules lock")
            .get(&(namespace.to_string(), schedule_id.to_string()))
            .cloned();
        if let Some(entry) = entry {
            entry.wake.notify_one();
        }
    }

    /// `run_closed` on the node that runs the schedule (in a cluster, maybe another one).
    pub fn run_closed_anywhere(&self, namespace: &str, schedule_id: &str) {
        let owner = self.engine.run_owner(namespace, schedule_id);
        let crate::cluster::Owner::Node(node) = owner else {
            return self.run_closed(namespace, schedule_id);
        };
        let Some(cluster) = self.engine.cluster().cloned() else { return };
        let (namespace, schedule_id) = (namespace.to_string(), schedule_id.to_string());
        tokio::spawn(async move {
            if let Err(e) = cluster.peers.wake_schedule(&node, &namespace, &schedule_id).await {
                // The schedule looks at its runs at its next action time anyway.
                tracing::debug!(%node, schedule_id, "cluster: could not tell a schedule its run closed: {e}");
            }
        });
    }

    fn install(&self, namespace: String, schedule_id: String, record: ScheduleRecord) {
        let entry = Arc::new(Entry { record: tokio::sync::Mutex::new(Some(record)), wake: Notify::new() });
        let key = (namespace.clone(), schedule_id.clone());
        self.deleted.lock().expect("deleted schedules lock").remove(&key);
        self.entries.lock().expect("schedules lock").insert(key, entry.clone());
        tokio::spawn(self.self_ref().run(namespace, schedule_id, entry));
    }

    fn entry(&self, namespace: &str, schedule_id: &str) -> Result<Arc<Entry>> {
        let key = (namespace.to_string(), schedule_id.to_string());
        if let Some(entry) = self.entries.lock().expect("schedules lock").get(&key).cloned() {
            return Ok(entry);
        }
        if self.deleted.lock().expect("deleted schedules lock").contains(&key) {
            return Err(Error::NotFound("schedule not found".into()));
        }
        Err(not_found(schedule_id))
    }

    /// The task of one schedule: handle what is due, sleep until the next time or a bell.
    async fn run(self: Arc<Self>, namespace: String, schedule_id: String, entry: Arc<Entry>) {
        let mut shutdown = self.shutdown.clone();
        // Keeps a time-skipping clock at an action time until the action ran.
        let mut due: Option<Hold> = None;
        loop {
            let next_wake = {
                let mut guard = entry.record.lock().await;
                let Some(record) = guard.as_mut() else { return };
                if !self.engine.serves_fresh(&namespace, &schedule_id) {
                    // A cluster node whose lease may have run out (it was paused, or cut off
                    // from the database): no turn until the lease loop confirmed it again.
                    drop(guard);
                    crate::clock::sleep(std::time::Duration::from_millis(200)).await;
                    continue;
                }
                match self.tick(&namespace, &schedule_id, record).await {
                    Ok(next) => next,
                    Err(e) => {
                        tracing::warn!(schedule_id, "failed to run schedule, retrying in 1s: {e}");
                        Some(self.engine.now_ms() + 1000)
                    }
                }
            };
            drop(due.take());
            // At the next action time, at most an hour of workflow time away, or when woken.
            let now = self.engine.now_ms();
            let clock = self.engine.clock();
            let wait = match next_wake {
                Some(at) if at <= now + 3_600_000 => clock.sleep_until(at.max(now + 1)),
                _ => clock.idle_until(now + 3_600_000),
            };
            tokio::select! {
                hold = wait => due = Some(hold),
                _ = entry.wake.notified() => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    }

    async fn persist(&self, namespace: &str, schedule_id: &str, record: Option<&ScheduleRecord>) -> Result<()> {
        let store = &self.store;
        match record {
            Some(record) => store.put_schedule(namespace, schedule_id, record.encode_to_vec()).await?,
            None => store.delete_schedule(namespace, schedule_id).await?,
        }
        Ok(())
    }

    pub async fn create(
        &self,
        mut req: workflowservice_pb::CreateScheduleRequest,
    ) -> Result<workflowservice_pb::CreateScheduleResponse> {
        if req.schedule_id.is_empty() {
            return Err(invalid("ScheduleId is not set on request."));
        }
        let mut schedule = req.schedule.take().ok_or_else(|| invalid("Schedule is not set on request."))?;
        self.validate(&req.namespace, &mut schedule)?;

        if let Some(attrs) = req.search_attributes.as_mut() {
            self.engine.search_attributes().validate(&req.namespace, attrs).map_err(Error::InvalidArgument)?;
            self.engine.search_attributes().add_types(&req.namespace, attrs);
        }
        let key = (req.namespace.clone(), req.schedule_id.clone());
        if self.entries.lock().expect("schedules lock").contains_key(&key) {
            return Err(Error::AlreadyStarted {
                message: "schedule with this ID is already registered".into(),
                start_request_id: req.request_id.clone(),
                run_id: String::new(),
            });
        }
        let now = self.engine.now_ms();
        let mut record = ScheduleRecord {
            schedule: Some(schedule),
            info: Some(schedule_pb::ScheduleInfo { create_time: Some(time::timestamp(now)), ..Default::default() }),
            memo: req.memo,
            search_attributes: req.search_attributes,
            conflict_token: 1,
            last_processed_ms: now,
            buffer: Vec::new(),
            ..Default::default()
        };
        if let Some(patch) = req.initial_patch {
            record::apply_patch(&mut record, patch, now)?;
        }
        self.persist(&req.namespace, &req.schedule_id, Some(&record)).await?;
        let token = record.conflict_token;
        self.install(req.namespace, req.schedule_id, record);
        Ok(workflowservice_pb::CreateScheduleResponse { conflict_token: token.to_be_bytes().to_vec() })
    }

    /// Checks a schedule and stores its spec in Temporal's canonical form.
    fn validate(&self, namespace: &str, schedule: &mut schedule_pb::Schedule) -> Result<()> {
        let spec = schedule.spec.get_or_insert_with(Default::default);
        let compiled = CompiledSpec::compile(spec).map_err(|e| invalid(e.to_string()))?;
        *spec = compiled.canonical();
        let action = schedule
            .action
            .as_ref()
            .and_then(|a| a.action.as_ref())
            .ok_or_else(|| invalid("Action is not set on schedule."))?;
        let schedule_pb::schedule_action::Action::StartWorkflow(start) = action;
        if start.workflow_id.is_empty() {
            return Err(invalid("WorkflowId is not set on request."));
        }
        if start.workflow_type.as_ref().is_none_or(|t| t.name.is_empty()) {
            return Err(invalid("WorkflowType is not set on request."));
        }
        if start.task_queue.as_ref().is_none_or(|t| t.name.is_empty()) {
            return Err(invalid("TaskQueue is not set on request."));
        }
        let start_attrs = start.search_attributes.clone();
        if let Some(attrs) = start_attrs.as_ref() {
            self.engine.search_attributes().validate(namespace, attrs).map_err(Error::InvalidArgument)?;
        }
        // Temporal stores the defaults it applies: a normal task queue, a one-year catch-up window.
        if let Some(schedule_pb::schedule_action::Action::StartWorkflow(start)) =
            schedule.action.as_mut().and_then(|a| a.action.as_mut())
        {
            if let Some(queue) = start.task_queue.as_mut().filter(|q| q.kind == 0) {
                queue.kind = uhrwerk_proto::temporal::api::enums::v1::TaskQueueKind::Normal as i32;
            }
            if let Some(attrs) = start.search_attributes.as_mut() {
                self.engine.search_attributes().add_types(namespace, attrs);
            }
        }
        let policies = schedule.policies.get_or_insert_with(Default::default);
        if policies.catchup_window.as_ref().is_none_or(|d| d.seconds == 0 && d.nanos == 0) {
            policies.catchup_window = Some(time::duration(DEFAULT_CATCHUP_SECS * 1000));
        }
        Ok(())
    }

    pub async fn describe(
        &self,
        namespace: &str,
        schedule_id: &str,
    ) -> Result<workflowservice_pb::DescribeScheduleResponse> {
        let entry = self.entry(namespace, schedule_id)?;
        let guard = entry.record.lock().await;
        let record = guard.as_ref().ok_or_else(|| not_found(schedule_id))?;
        let mut info = record.info.clone().unwrap_or_default();
        info.future_action_times = record::future_times(record, self.engine.now_ms(), FUTURE_TIMES);
        info.buffer_size = record.buffer.len() as i64;
        // Temporal describes the spec with its range defaults filled in.
        let mut schedule = record.schedule.clone();
        if let (Some(schedule), Ok(spec)) = (schedule.as_mut(), record::compiled_spec(record)) {
            schedule.spec = Some(spec.described());
        }
        Ok(workflowservice_pb::DescribeScheduleResponse {
            schedule,
            info: Some(info),
            memo: record.memo.clone(),
            search_attributes: record.search_attributes.clone(),
            conflict_token: record.conflict_token.to_be_bytes().to_vec(),
        })
    }

    pub async fn update(&self, mut req: workflowservice_pb::UpdateScheduleRequest) -> Result<()> {
        let mut schedule = req.schedule.take().ok_or_else(|| invalid("Schedule is not set on request."))?;
        self.validate(&req.namespace, &mut schedule)?;

        if let Some(attrs) = req.search_attributes.as_mut() {
            self.engine.search_attributes().validate(&req.namespace, attrs).map_err(Error::InvalidArgument)?;
            self.engine.search_attributes().add_types(&req.namespace, attrs);
        }
        let entry = self.entry(&req.namespace, &req.schedule_id)?;
        let mut guard = entry.record.lock().await;
        let record = guard.as_mut().ok_or_else(|| not_found(&req.schedule_id))?;
        if !req.conflict_token.is_empty() && req.conflict_token != record.conflict_token.to_be_bytes() {
            return Err(Error::FailedPrecondition("mismatched conflict token".into()));
        }
        let mut next = record.clone();
        let now = self.engine.now_ms();
        next.schedule = Some(schedule);
        next.conflict_token += 1;
        // Times between the last handled one and the update are not taken up again.
        next.last_processed_ms = next.last_processed_ms.max(now);
        if let Some(info) = next.info.as_mut() {
            info.update_time = Some(time::timestamp(now));
        }
        if req.search_attributes.is_some() {
            next.search_attributes = req.search_attributes;
        }
        if req.memo.is_some() {
            next.memo = req.memo;
        }
        self.persist(&req.namespace, &req.schedule_id, Some(&next)).await?;
        *record = next;
        entry.wake.notify_one();
        Ok(())
    }

    pub async fn patch(&self, req: workflowservice_pb::PatchScheduleRequest) -> Result<()> {
        let patch = req.patch.ok_or_else(|| invalid("Patch is not set on request."))?;
        let entry = self.entry(&req.namespace, &req.schedule_id)?;
        let mut guard = entry.record.lock().await;
        let record = guard.as_mut().ok_or_else(|| not_found(&req.schedule_id))?;
        let mut next = record.clone();
        let now = self.engine.now_ms();
        record::apply_patch(&mut next, patch, now)?;
        next.conflict_token += 1;
        self.persist(&req.namespace, &req.schedule_id, Some(&next)).await?;
        *record = next;
        entry.wake.notify_one();
        Ok(())
    }

    pub async fn delete(&self, namespace: &str, schedule_id: &str) -> Result<()> {
        let entry = self.entry(namespace, schedule_id)?;
        let mut guard = entry.record.lock().await;
        if guard.is_none() {
            return Err(not_found(schedule_id));
        }
        self.persist(namespace, schedule_id, None).await?;
        *guard = None;
        let key = (namespace.to_string(), schedule_id.to_string());
        self.entries.lock().expect("schedules lock").remove(&key);
        self.deleted.lock().expect("deleted schedules lock").insert(key);
        entry.wake.notify_one();
        Ok(())
    }

    pub async fn matching_times(&self, req: workflowservice_pb::ListScheduleMatchingTimesRequest) -> Result<Vec<i64>> {
        let entry = self.entry(&req.namespace, &req.schedule_id)?;
        let guard = entry.record.lock().await;
        let record = guard.as_ref().ok_or_else(|| not_found(&req.schedule_id))?;
        let spec = record::compiled_spec(record)?;
        let start = req.start_time.as_ref().map_or(0, time::timestamp_ms);
        let end = req.end_time.as_ref().map_or(start, time::timestamp_ms);
        // As Temporal: after `start`, up to and including `end`.
        Ok(spec.between(start, end, MAX_TIMES).into_iter().map(|t| t.actual_ms).collect())
    }

    /// Entries of a namespace's schedules, ordered by id, with the attributes list filters see.
    pub async fn list(&self, namespace: &str) -> Vec<(schedule_pb::ScheduleListEntry, common_pb::SearchAttributes)> {
        let mut records: Vec<(String, ScheduleRecord)> = Vec::new();
        if self.engine.cluster().is_some() {
            // Each node runs its shards' schedules only: the list comes from the store.
            match self.store.schedules().await {
                Ok(rows) => records.extend(rows.into_iter().filter(|r| r.namespace == namespace).filter_map(|r| {
                    ScheduleRecord::decode(r.data.as_slice()).ok().map(|record| (r.schedule_id, record))
                })),
                Err(e) => tracing::warn!("failed to read the schedules to list: {e}"),
            }
        } else {
            let entries: Vec<(String, Arc<Entry>)> = self
                .entries
                .lock()
                .expect("schedules lock")
                .iter()
                .filter(|((ns, _), _)| ns == namespace)
                .map(|((_, id), e)| (id.clone(), e.clone()))
                .collect();
            for (id, entry) in entries {
                if let Some(record) = entry.record.lock().await.as_ref() {
                    records.push((id, record.clone()));
                }
            }
        }
        records.sort_by(|a, b| a.0.cmp(&b.0));
        let now = self.engine.now_ms();
        let mut out = Vec::new();
        for (id, record) in records {
            let record = &record;
            let schedule = record.schedule.clone().unwrap_or_default();
            let state = schedule.state.clone().unwrap_or_default();
            let workflow_type = schedule.action.as_ref().and_then(|a| a.action.as_ref()).and_then(|a| {
                let schedule_pb::schedule_action::Action::StartWorkflow(start) = a;
                start.workflow_type.clone()
            });
            let info = record.info.clone().unwrap_or_default();
            let recent: Vec<_> = info.recent_actions.iter().rev().take(LIST_FUTURE_TIMES).rev().cloned().collect();
            let attrs = record::visible_attributes(record);
            let list_entry = schedule_pb::ScheduleListEntry {
                schedule_id: id.clone(),
                memo: record.memo.clone(),
                search_attributes: record.search_attributes.clone(),
                info: Some(schedule_pb::ScheduleListInfo {
                    spec: schedule.spec.clone(),
                    workflow_type,
                    notes: state.notes.clone(),
                    paused: state.paused,
                    recent_actions: recent,
                    future_action_times: record::future_times(record, now, LIST_FUTURE_TIMES),
                    state_size_bytes: 0,
                }),
            };
            out.push((list_entry, attrs));
        }
        out
    }
}
