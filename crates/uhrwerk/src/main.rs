//! The `uhrwerk` command line: `uhrwerk server start-dev` and friends.

use clap::{Parser, Subcommand};
use uhrwerk::{config_file, db_cmd, export, server_cmd};

/// Uhrwerk: a Temporal-compatible durable-execution server.
///
/// The official Temporal SDKs and the `temporal` CLI talk to it unchanged.
#[derive(Parser)]
#[command(name = "uhrwerk", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Server {
        #[command(subcommand)]
        command: server_cmd::ServerCommand,
    },
    /// Check Python Temporal code for the anti-patterns of the best-practices chapter.
    Lint(uhrwerk_lint::LintArgs),
    /// Check a running server for the anti-patterns of the best-practices chapter.
    Doctor(uhrwerk_doctor::DoctorArgs),
    /// Manage the PostgreSQL schema: `db migrate`, `db status`.
    Db {
        #[command(subcommand)]
        command: db_cmd::DbCommand,
    },
    /// Work with workflows on a running server.
    Workflow {
        #[command(subcommand)]
        command: WorkflowCommand,
    },
}

#[derive(Subcommand)]
enum WorkflowCommand {
    /// Write the histories of the runs a visibility query selects, one JSON file per run, for
    /// replay tests.
    Export(export::ExportArgs),
}

fn main() -> std::process::ExitCode {
    let args = match config_file::expand::<Cli>(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("uhrwerk: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let cli = Cli::parse_from(args);
    match cli.command {
        Command::Server { command } => server_cmd::run(command),
        Command::Lint(args) => std::process::ExitCode::from(u8::try_from(uhrwerk_lint::run(&args)).unwrap_or(2)),
        Command::Doctor(args) => uhrwerk_doctor::run(&args),
        Command::Db { command } => db_cmd::run(command),
        Command::Workflow { command: WorkflowCommand::Export(args) } => export::run(&args),
    }
}
