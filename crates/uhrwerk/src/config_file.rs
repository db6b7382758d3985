//! `--config FILE` for `uhrwerk server start` and `start-dev`: a YAML mapping whose keys are the
//! command's long flags (with dashes or underscores) and whose values are what the flag takes; a
//! list repeats a flag, `true` gives a switch, `false` leaves it out. The file's settings go
//! before the command line's, so a flag given on the command line wins (the commands keep a
//! flag's last value).
//!
//! ```yaml
//! database-url: postgres://uhrwerk@db/uhrwerk
//! tls-cert: /etc/uhrwerk/server.pem
//! tls-key: /etc/uhrwerk/server.key
//! tls-client-ca: /etc/uhrwerk/clients-ca.pem
//! api-keys-file: /etc/uhrwerk/keys.yaml
//! namespace: [orders, billing]
//! ```

use std::ffi::OsString;

use clap::CommandFactory;

/// The arguments with the settings of a `--config` file put in front of the command line's.
/// Arguments of other commands, or without `--config`, come back unchanged.
pub fn expand<C: CommandFactory>(args: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let words: Vec<&str> = args.iter().map(|a| a.to_str().unwrap_or("")).collect();
    let Some(subcommand) =
        words.get(2).filter(|w| words.get(1) == Some(&"server") && ["start", "start-dev"].contains(w))
    else {
        return Ok(args);
    };
    let path = words.iter().enumerate().find_map(|(i, word)| match word.strip_prefix("--config") {
        Some("") => words.get(i + 1).map(|p| p.to_string()),
        Some(rest) => rest.strip_prefix('=').map(str::to_string),
        None => None,
    });
    let Some(path) = path else { return Ok(args) };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read the config file {path}: {e}"))?;
    let command = C::command();
    let start = command
        .find_subcommand("server")
        .and_then(|server| server.find_subcommand(subcommand))
        .ok_or_else(|| format!("no `server {subcommand}` command"))?;
    let settings = settings(&text, start).map_err(|e| format!("config file {path}: {e}"))?;
    let mut expanded = args[..3].to_vec();
    expanded.extend(settings.into_iter().map(OsString::from));
    expanded.extend(args[3..].iter().cloned());
    Ok(expanded)
}

/// The flags a file's text stands for, checked against `command`'s long flags.
fn settings(text: &str, command: &clap::Command) -> Result<Vec<String>, String> {
    let mapping: serde_yaml_ng::Mapping = match serde_yaml_ng::from_str(text).map_err(|e| e.to_string())? {
        serde_yaml_ng::Value::Mapping(mapping) => mapping,
        serde_yaml_ng::Value::Null => serde_yaml_ng::Mapping::new(),
        _ => return Err("it must be a mapping of flag names to values".to_string()),
    };
    let mut out = Vec::new();
    for (key, value) in mapping {
        let key = key.as_str().ok_or("its keys must be flag names")?.replace('_', "-");
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()))
            .filter(|_| key != "config")
            .ok_or_else(|| format!("unknown setting {key:?} (settings are the long flags of the command)"))?;
        let takes_value = arg.get_action().takes_values();
        let values = match value {
            serde_yaml_ng::Value::Sequence(items) => items,
            one => vec![one],
        };
        for value in values {
            match (value, takes_value) {
                (serde_yaml_ng::Value::Bool(true), false) => out.push(format!("--{key}")),
                (serde_yaml_ng::Value::Bool(false), false) => {}
                (_, false) => return Err(format!("{key} is a switch: true or false")),
                (serde_yaml_ng::Value::String(s), true) => out.push(format!("--{key}={s}")),
                (serde_yaml_ng::Value::Number(n), true) => out.push(format!("--{key}={n}")),
                (serde_yaml_ng::Value::Bool(b), true) => out.push(format!("--{key}={b}")),
                (_, true) => return Err(format!("{key} takes a string, a number or a list of them")),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Top,
    }

    #[derive(clap::Subcommand)]
    enum Top {
        Server {
            #[command(subcommand)]
            command: Server,
        },
    }

    #[derive(clap::Subcommand)]
    enum Server {
        #[command(args_override_self = true)]
        Start {
            #[arg(long)]
            config: Option<String>,
            #[arg(long)]
            port: Option<u16>,
            #[arg(long)]
            tls_cert: Option<String>,
            #[arg(long)]
            namespace: Vec<String>,
            #[arg(long)]
            headless: bool,
        },
    }

    fn expanded(args: &[&str]) -> Result<Vec<String>, String> {
        let args = args.iter().map(OsString::from).collect();
        Ok(expand::<Cli>(args)?.into_iter().map(|a| a.into_string().unwrap()).collect())
    }

    #[test]
    fn a_file_stands_for_flags_before_the_command_lines() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("uhrwerk.yaml");
        std::fs::write(&file, "port: 7000\ntls_cert: /etc/c.pem\nnamespace: [a, b]\nheadless: true\n").unwrap();
        let file = file.to_str().unwrap();
        let args = expanded(&["uhrwerk", "server", "start", "--config", file, "--port", "7001"]).unwrap();
        assert_eq!(
            args,
            [
                "uhrwerk",
                "server",
                "start",
                "--port=7000",
                "--tls-cert=/etc/c.pem",
                "--namespace=a",
                "--namespace=b",
                "--headless",
                "--config",
                file,
                "--port",
                "7001"
            ]
        );
        use clap::Parser;
        let Top::Server { command: Server::Start { port, namespace, headless, .. } } = Cli::parse_from(&args).command;
        assert_eq!(port, Some(7001), "the command line wins");
        assert_eq!(namespace, ["a", "b"]);
        assert!(headless);
        let equals = format!("--config={file}");
        assert_eq!(expanded(&["uhrwerk", "server", "start", &equals]).unwrap().len(), 9);
    }

    #[test]
    fn mistakes_in_the_file_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.yaml");
        let file_s = file.to_str().unwrap();
        let run = |text: &str| {
            std::fs::write(&file, text).unwrap();
            expanded(&["uhrwerk", "server", "start", "--config", file_s])
        };
        assert!(run("prot: 7000\n").unwrap_err().contains("unknown setting \"prot\""));
        assert!(run("headless: yes-please\n").unwrap_err().contains("switch"));
        assert!(run("- port\n").unwrap_err().contains("mapping"));
        assert!(run("port: {a: 1}\n").is_err());
        assert!(
            expanded(&["uhrwerk", "server", "start", "--config", "/nonexistent.yaml"])
                .unwrap_err()
                .contains("cannot read")
        );
        let untouched = expanded(&["uhrwerk", "doctor", "--config", "x"]).unwrap();
        assert_eq!(untouched, ["uhrwerk", "doctor", "--config", "x"]);
    }
}
