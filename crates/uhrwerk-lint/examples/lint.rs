//! Stand-alone driver for development: `cargo run --example lint -- [uhrwerk lint flags] PATHS...`.

use clap::Parser;

#[derive(Parser)]
#[command(name = "uhrwerk-lint")]
struct Cli {
    #[command(flatten)]
    args: uhrwerk_lint::LintArgs,
}

fn main() {
    let cli = Cli::parse();
    std::process::exit(uhrwerk_lint::run(&cli.args));
}
