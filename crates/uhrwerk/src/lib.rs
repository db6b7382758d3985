//! The commands of the `uhrwerk` binary, and the `uhrwerk-test-server` binary's, which share
//! the server's start-up (logging, banner, signals).

pub mod config_file;
pub mod db_cmd;
pub mod export;
pub mod server_cmd;
pub mod test_server;

/// An error and its causes on one line, each cause once: errors that put their cause in their
/// own message (`failed to open the database x: <cause>`) are not followed by it again.
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    #[test]
    fn causes_are_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use");
        let e = anyhow::Error::new(io).context("failed to listen on 127.0.0.1:1: Address already in use");
        assert_eq!(super::error_line(&e), "failed to listen on 127.0.0.1:1: Address already in use");
        let e = anyhow::anyhow!("root cause").context("while starting");
        assert_eq!(super::error_line(&e), "while starting: root cause");
    }
}
