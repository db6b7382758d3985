//! `uhrwerk db migrate` and `uhrwerk db status`: the PostgreSQL schema for operators who migrate
//! explicitly (servers migrate at start unless `--skip-migrations`). SQLite files migrate
//! themselves when a server opens them.

use std::process::ExitCode;

use clap::Subcommand;

use crate::server_cmd::DatabaseArgs;

#[derive(Subcommand)]
pub enum DbCommand {
    /// Apply every schema migration this binary has and the database lacks (safe while servers
    /// start: migrations take a lock).
    Migrate(DatabaseArgs),
    /// Print the database's schema version and this binary's. Exit code 0 when they match, 3
    /// when the database is behind (run `uhrwerk db migrate`), 4 when it is newer than this
    /// binary.
    Status(DatabaseArgs),
}

pub fn run(command: DbCommand) -> ExitCode {
    crate::server_cmd::init_logging(crate::server_cmd::LogLevel::Warn, crate::server_cmd::LogFormat::Pretty);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_async(command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", crate::error_line(&e));
            ExitCode::FAILURE
        }
    }
}

async fn run_async(command: DbCommand) -> anyhow::Result<ExitCode> {
    let (args, migrate) = match command {
        DbCommand::Migrate(args) => (args, true),
        DbCommand::Status(args) => (args, false),
    };
    let Some(url) = args.url()? else {
        anyhow::bail!("name the database with --database-url or UHRWERK_DATABASE_URL (PostgreSQL)");
    };
    if migrate {
        let applied = uhrwerk_postgres::migrate(&url).await.map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
        let status = uhrwerk_postgres::status(&url).await.map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
        match applied.as_slice() {
            [] => println!("{url}: schema version {} is up to date; nothing to apply", status.current),
            versions => {
                let list: Vec<String> = versions.iter().map(i64::to_string).collect();
                println!("{url}: applied schema version(s) {}; now at version {}", list.join(", "), status.current);
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let status = uhrwerk_postgres::status(&url).await.map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    let (verdict, code) = match status.current.cmp(&status.supported) {
        std::cmp::Ordering::Equal => ("up to date".to_string(), 0),
        std::cmp::Ordering::Less => {
            (format!("{} migration(s) to apply: run `uhrwerk db migrate`", status.supported - status.current), 3)
        }
        std::cmp::Ordering::Greater => ("newer than this binary: upgrade uhrwerk".to_string(), 4),
    };
    println!("{url}: schema version {}, this binary's {}: {verdict}", status.current, status.supported);
    Ok(ExitCode::from(code))
}
