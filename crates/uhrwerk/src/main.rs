//! The `uhrwerk` command line: `uhrwerk server start-dev` and friends.

mod server_cmd;

use clap::{Parser, Subcommand};

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
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Server { command } => server_cmd::run(command),
        Command::Lint(args) => std::process::ExitCode::from(u8::try_from(uhrwerk_lint::run(&args)).unwrap_or(2)),
    }
}
