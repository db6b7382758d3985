//! Schema migrations: `schema/sqlite/vN/schema.sql` applied in order, tracked with
//! `PRAGMA user_version`, each optionally followed by a data step in Rust. A database newer
//! than this binary is refused.

use rusqlite::{Connection, Transaction};
use uhrwerk_storage::Error as StorageError;

use crate::error::Result;
use crate::writer::write_run_row;

/// A migration's data step, run in the migration's transaction.
type DataStep = fn(&Transaction<'_>) -> Result<()>;

/// Ordered migrations; `PRAGMA user_version` records how many ran. Each may be followed by a
/// data step that derives new columns from existing rows.
const MIGRATIONS: &[(&str, Option<DataStep>)] = &[
    (include_str!("../../../schema/sqlite/v1/schema.sql"), None),
    (include_str!("../../../schema/sqlite/v2/schema.sql"), Some(backfill_visibility)),
    (include_str!("../../../schema/sqlite/v3/schema.sql"), None),
];

/// `PRAGMA application_id` of a Uhrwerk database ("Uhrw"): a SQLite file of another
/// application is recognised and left alone.
const APPLICATION_ID: i64 = 0x5568_7277;

/// Refuses a database that is not Uhrwerk's or is newer than this binary, reading only (the
/// file is not changed); returns (schema version, application id).
pub(crate) fn check(conn: &Connection) -> Result<(i64, i64)> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let application_id: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let objects: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    if application_id != 0 && application_id != APPLICATION_ID {
        return Err(StorageError::NotOurs(format!(
            "a SQLite database of another application (id {application_id:#x})"
        ))
        .into());
    }
    if application_id == 0 && version == 0 && objects > 0 {
        return Err(StorageError::NotOurs(format!(
            "a SQLite database of another application ({objects} tables and indexes, no Uhrwerk schema)"
        ))
        .into());
    }
    let supported = MIGRATIONS.len() as i64;
    if version > supported {
        return Err(StorageError::SchemaTooNew { found: version, supported }.into());
    }
    Ok((version, application_id))
}

pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let (version, application_id) = check(conn)?;
    if application_id == 0 {
        // A new database, or one written before the id was set.
        conn.pragma_update(None, "application_id", APPLICATION_ID)?;
    }
    for (idx, (sql, data_step)) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        if let Some(step) = data_step {
            step(&tx)?;
        }
        tx.pragma_update(None, "user_version", idx as i64 + 1)?;
        tx.commit()?;
        tracing::info!(version = idx + 1, "applied schema migration");
    }
    Ok(())
}

/// Version 2: fills the visibility columns and attribute rows of runs written by version 1.
fn backfill_visibility(tx: &Transaction<'_>) -> Result<()> {
    let states: Vec<Vec<u8>> = {
        let mut stmt = tx.prepare("SELECT state FROM runs")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for bytes in states {
        write_run_row(tx, &crate::decode_state(&bytes)?)?;
    }
    Ok(())
}
