-- Uhrwerk SQLite schema, version 3: transfer tasks.
-- Work on another run (start a child, notify a parent, parent close policies, signals and
-- cancellation requests to other workflows) is written here in the same transaction as the
-- transition that asks for it, and deleted once carried out.

CREATE TABLE transfer_tasks (
    run_id      TEXT NOT NULL,
    -- uhrwerk_core::transfer::TransferKind
    kind        INTEGER NOT NULL,
    event_id    INTEGER NOT NULL,
    namespace   TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    -- uhrwerk_core::transfer::TransferTask, protobuf-encoded
    data        BLOB NOT NULL,
    PRIMARY KEY (run_id, kind, event_id)
) WITHOUT ROWID;
