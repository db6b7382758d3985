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

pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let supported = MIGRATIONS.len() as i64;
    if version > supported {
        return Err(StorageError::SchemaTooNew { found: version, supported }.into());
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
