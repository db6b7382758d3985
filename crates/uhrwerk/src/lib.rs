//! The commands of the `uhrwerk` binary, and the `uhrwerk-test-server` binary's, which share
//! the server's start-up (logging, banner, signals).

pub mod config_file;
pub mod db_cmd;
pub mod export;
pub mod server_cmd;
pub mod test_server;
