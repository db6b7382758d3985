-- Uhrwerk SQLite schema, version 2: visibility (search attributes, list order, retention) and schedules.
-- The new run columns are filled from each run's state by the migration that applies this file.

ALTER TABLE runs ADD COLUMN close_order            INTEGER NOT NULL DEFAULT 9223372036854775807;
ALTER TABLE runs ADD COLUMN history_size_bytes     INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN state_transition_count INTEGER NOT NULL DEFAULT 0;
-- Nanoseconds from execution time to close; NULL while the run is open.
ALTER TABLE runs ADD COLUMN execution_duration     INTEGER;
ALTER TABLE runs ADD COLUMN parent_workflow_id     TEXT;
ALTER TABLE runs ADD COLUMN parent_run_id          TEXT;
ALTER TABLE runs ADD COLUMN root_workflow_id       TEXT;
ALTER TABLE runs ADD COLUMN root_run_id            TEXT;

-- List order as in Temporal: open runs first, then by close time, newest first.
-- `close_order` is the close time of a closed run and the largest integer for an open one.
DROP INDEX runs_by_start;
DROP INDEX runs_by_type;
DROP INDEX runs_by_status;
CREATE INDEX runs_by_order  ON runs (namespace, close_order DESC, start_time DESC, run_id);
CREATE INDEX runs_by_type   ON runs (namespace, workflow_type, status, close_order DESC, start_time DESC, run_id);
CREATE INDEX runs_by_status ON runs (namespace, status, close_order DESC, start_time DESC, run_id);
CREATE INDEX runs_by_start  ON runs (namespace, start_time DESC);
CREATE INDEX runs_by_queue  ON runs (namespace, task_queue, status, close_order DESC, start_time DESC, run_id);

-- Custom and predefined search attributes that are not run columns, one row per value
-- (a KeywordList has one row per keyword). Keyword, Text and KeywordList values are in `sval`;
-- Int, Bool (0/1) and Datetime (unix nanoseconds) in `ival`; Double in `rval`.
CREATE TABLE run_attrs (
    run_id    TEXT NOT NULL,
    name      TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    namespace TEXT NOT NULL,
    sval      TEXT,
    ival      INTEGER,
    rval      REAL,
    PRIMARY KEY (run_id, name, seq)
) WITHOUT ROWID;
CREATE INDEX run_attrs_s ON run_attrs (namespace, name, sval);
CREATE INDEX run_attrs_i ON run_attrs (namespace, name, ival);
CREATE INDEX run_attrs_r ON run_attrs (namespace, name, rval);

-- Custom search attributes registered per namespace; `type` is temporal.api.enums.v1.IndexedValueType.
CREATE TABLE search_attributes (
    namespace TEXT NOT NULL,
    name      TEXT NOT NULL,
    type      INTEGER NOT NULL,
    PRIMARY KEY (namespace, name)
) WITHOUT ROWID;

-- Schedules; `data` is uhrwerk's schedule record, protobuf-encoded.
CREATE TABLE schedules (
    namespace   TEXT NOT NULL,
    schedule_id TEXT NOT NULL,
    data        BLOB NOT NULL,
    PRIMARY KEY (namespace, schedule_id)
) WITHOUT ROWID;
