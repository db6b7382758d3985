//! The `uhrwerk-test-server` binary (see `uhrwerk::test_server`).

fn main() -> std::process::ExitCode {
    uhrwerk::test_server::main()
}
