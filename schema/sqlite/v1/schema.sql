-- Uhrwerk SQLite schema, version 1.
-- Every transition of a run writes its row, its new events and its outbox rows in one transaction.

CREATE TABLE namespaces (
    name TEXT PRIMARY KEY,
    id   TEXT NOT NULL UNIQUE,
    -- temporal.api.workflowservice.v1.DescribeNamespaceResponse, protobuf-encoded
    data BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE runs (
    run_id         TEXT PRIMARY KEY,
    namespace      TEXT NOT NULL,
    workflow_id    TEXT NOT NULL,
    workflow_type  TEXT NOT NULL,
    task_queue     TEXT NOT NULL,
    status         INTEGER NOT NULL,
    start_time     INTEGER NOT NULL,
    close_time     INTEGER NOT NULL,
    execution_time INTEGER NOT NULL,
    history_length INTEGER NOT NULL,
    -- uhrwerk_core::state::RunState, protobuf-encoded
    state          BLOB NOT NULL
);
CREATE INDEX runs_by_start    ON runs (namespace, start_time DESC, run_id);
CREATE INDEX runs_by_workflow ON runs (namespace, workflow_id, start_time DESC);
CREATE INDEX runs_by_type     ON runs (namespace, workflow_type, status, start_time DESC);
CREATE INDEX runs_by_status   ON runs (namespace, status, start_time DESC);
CREATE INDEX runs_open        ON runs (status) WHERE status = 1;

-- The run a workflow id currently points to.
CREATE TABLE current_runs (
    namespace   TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    PRIMARY KEY (namespace, workflow_id)
) WITHOUT ROWID;

CREATE TABLE events (
    run_id   TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    -- temporal.api.history.v1.HistoryEvent, protobuf-encoded
    data     BLOB NOT NULL,
    PRIMARY KEY (run_id, event_id)
) WITHOUT ROWID;

-- Transactional outbox: tasks waiting for a poller. Removed when a poller takes the task.
CREATE TABLE tasks (
    run_id             TEXT NOT NULL,
    scheduled_event_id INTEGER NOT NULL,
    kind               INTEGER NOT NULL,
    attempt            INTEGER NOT NULL,
    namespace          TEXT NOT NULL,
    workflow_id        TEXT NOT NULL,
    task_queue         TEXT NOT NULL,
    PRIMARY KEY (run_id, scheduled_event_id)
) WITHOUT ROWID;

-- Durable timers. Removed when handled.
CREATE TABLE timers (
    run_id      TEXT NOT NULL,
    kind        INTEGER NOT NULL,
    id          INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    fire_at     INTEGER NOT NULL,
    namespace   TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    PRIMARY KEY (run_id, kind, id, attempt)
) WITHOUT ROWID;
