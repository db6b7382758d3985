-- Uhrwerk PostgreSQL schema, version 1: the tables of SQLite's versions 1 to 3, in one step.
-- Every transition of a run writes its row, its new events, its outbox rows, timers and
-- transfer tasks in one transaction. Text columns compare byte by byte (COLLATE "C"), as
-- SQLite's do, so that list order and prefix ranges do not depend on the database's locale.
-- Integers are BIGINT throughout (Rust's i64); protobuf-encoded values are BYTEA.

CREATE TABLE namespaces (
    name TEXT COLLATE "C" PRIMARY KEY,
    id   TEXT COLLATE "C" NOT NULL UNIQUE,
    -- temporal.api.workflowservice.v1.DescribeNamespaceResponse
    data BYTEA NOT NULL
);

CREATE TABLE runs (
    run_id                 TEXT COLLATE "C" PRIMARY KEY,
    namespace              TEXT COLLATE "C" NOT NULL,
    workflow_id            TEXT COLLATE "C" NOT NULL,
    workflow_type          TEXT COLLATE "C" NOT NULL,
    task_queue             TEXT COLLATE "C" NOT NULL,
    status                 BIGINT NOT NULL,
    start_time             BIGINT NOT NULL,
    close_time             BIGINT NOT NULL,
    execution_time         BIGINT NOT NULL,
    history_length         BIGINT NOT NULL,
    -- uhrwerk_core::state::RunState
    state                  BYTEA NOT NULL,
    -- List order as in Temporal: open runs first, then by close time, newest first. The close
    -- time of a closed run, the largest BIGINT for an open one.
    close_order            BIGINT NOT NULL,
    history_size_bytes     BIGINT NOT NULL,
    state_transition_count BIGINT NOT NULL,
    -- Nanoseconds from execution time to close; NULL while the run is open.
    execution_duration     BIGINT,
    parent_workflow_id     TEXT COLLATE "C",
    parent_run_id          TEXT COLLATE "C",
    root_workflow_id       TEXT COLLATE "C",
    root_run_id            TEXT COLLATE "C"
);
CREATE INDEX runs_by_workflow ON runs (namespace, workflow_id, start_time DESC);
CREATE INDEX runs_open        ON runs (status) WHERE status = 1;
CREATE INDEX runs_by_order    ON runs (namespace, close_order DESC, start_time DESC, run_id);
CREATE INDEX runs_by_type     ON runs (namespace, workflow_type, status, close_order DESC, start_time DESC, run_id);
CREATE INDEX runs_by_status   ON runs (namespace, status, close_order DESC, start_time DESC, run_id);
CREATE INDEX runs_by_start    ON runs (namespace, start_time DESC);
CREATE INDEX runs_by_queue    ON runs (namespace, task_queue, status, close_order DESC, start_time DESC, run_id);

-- The run a workflow id currently points to.
CREATE TABLE current_runs (
    namespace   TEXT COLLATE "C" NOT NULL,
    workflow_id TEXT COLLATE "C" NOT NULL,
    run_id      TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (namespace, workflow_id)
);

CREATE TABLE events (
    run_id   TEXT COLLATE "C" NOT NULL,
    event_id BIGINT NOT NULL,
    -- temporal.api.history.v1.HistoryEvent
    data     BYTEA NOT NULL,
    PRIMARY KEY (run_id, event_id)
);

-- Transactional outbox: tasks waiting for a poller. Removed when a poller takes the task.
CREATE TABLE tasks (
    run_id             TEXT COLLATE "C" NOT NULL,
    scheduled_event_id BIGINT NOT NULL,
    kind               BIGINT NOT NULL,
    attempt            BIGINT NOT NULL,
    namespace          TEXT COLLATE "C" NOT NULL,
    workflow_id        TEXT COLLATE "C" NOT NULL,
    task_queue         TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (run_id, scheduled_event_id)
);

-- Durable timers. Removed when handled.
CREATE TABLE timers (
    run_id      TEXT COLLATE "C" NOT NULL,
    kind        BIGINT NOT NULL,
    id          BIGINT NOT NULL,
    attempt     BIGINT NOT NULL,
    fire_at     BIGINT NOT NULL,
    namespace   TEXT COLLATE "C" NOT NULL,
    workflow_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (run_id, kind, id, attempt)
);

-- Search attributes that are not run columns, one row per value (a KeywordList has one row per
-- keyword). Keyword, Text and KeywordList values are in `sval`; Int, Bool (0/1) and Datetime
-- (unix nanoseconds) in `ival`; Double in `rval`.
CREATE TABLE run_attrs (
    run_id    TEXT COLLATE "C" NOT NULL,
    name      TEXT COLLATE "C" NOT NULL,
    seq       BIGINT NOT NULL,
    namespace TEXT COLLATE "C" NOT NULL,
    sval      TEXT COLLATE "C",
    ival      BIGINT,
    rval      DOUBLE PRECISION,
    PRIMARY KEY (run_id, name, seq)
);
CREATE INDEX run_attrs_s ON run_attrs (namespace, name, sval);
CREATE INDEX run_attrs_i ON run_attrs (namespace, name, ival);
CREATE INDEX run_attrs_r ON run_attrs (namespace, name, rval);

-- Custom search attributes registered per namespace; `type` is temporal.api.enums.v1.IndexedValueType.
CREATE TABLE search_attributes (
    namespace TEXT COLLATE "C" NOT NULL,
    name      TEXT COLLATE "C" NOT NULL,
    type      BIGINT NOT NULL,
    PRIMARY KEY (namespace, name)
);

-- Schedules; `data` is Uhrwerk's schedule record.
CREATE TABLE schedules (
    namespace   TEXT COLLATE "C" NOT NULL,
    schedule_id TEXT COLLATE "C" NOT NULL,
    data        BYTEA NOT NULL,
    PRIMARY KEY (namespace, schedule_id)
);

-- Work on another run (start a child, notify a parent, parent close policies, signals and
-- cancellation requests to other workflows), written in the transaction of the transition
-- that asks for it and deleted once carried out.
CREATE TABLE transfer_tasks (
    run_id      TEXT COLLATE "C" NOT NULL,
    -- uhrwerk_core::transfer::TransferKind
    kind        BIGINT NOT NULL,
    event_id    BIGINT NOT NULL,
    namespace   TEXT COLLATE "C" NOT NULL,
    workflow_id TEXT COLLATE "C" NOT NULL,
    -- uhrwerk_core::transfer::TransferTask
    data        BYTEA NOT NULL,
    PRIMARY KEY (run_id, kind, event_id)
);

-- Temporal's Text match (uhrwerk_visibility::text): every token of the query among the
-- field's tokens, tokens being lowercase runs of letters and digits.
CREATE FUNCTION uw_tokens(s TEXT) RETURNS TEXT[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(t), '{}') FROM regexp_split_to_table(lower(s), '[^[:alnum:]]+') AS t WHERE t <> ''
$$;
CREATE FUNCTION uw_text_match(field TEXT, query TEXT) RETURNS BOOLEAN LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT field IS NOT NULL AND cardinality(uw_tokens(query)) > 0 AND uw_tokens(query) <@ uw_tokens(field)
$$;
