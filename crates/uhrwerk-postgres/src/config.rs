//! A PostgreSQL connection URL as the operator gives it (`postgres://user[:password]@host:port/db
//! ?...`, libpq's syntax), with the password kept out of every display: [`DatabaseUrl`]'s
//! `Display` and `Debug` show user, hosts and database only.

use std::fmt;
use std::str::FromStr;

use tokio_postgres::config::Host;

#[derive(Clone)]
pub struct DatabaseUrl {
    config: tokio_postgres::Config,
}

#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("the database URL must start with postgres:// or postgresql://")]
    Scheme,
    #[error("the database URL is not valid: {0}")]
    Invalid(String),
}

impl DatabaseUrl {
    /// Whether `url` names PostgreSQL (the store it selects).
    pub fn is_postgres(url: &str) -> bool {
        url.starts_with("postgres://") || url.starts_with("postgresql://")
    }

    pub fn parse(url: &str) -> Result<Self, UrlError> {
        if !Self::is_postgres(url) {
            return Err(UrlError::Scheme);
        }
        // tokio-postgres' messages quote no part of the URL, so the password cannot leak here.
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| UrlError::Invalid(e.to_string()))?;
        if config.get_user().is_none() {
            // libpq's default: the operating system user.
            if let Ok(user) = std::env::var("USER") {
                config.user(user);
            }
        }
        if config.get_hosts().is_empty() {
            config.host("localhost");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("uhrwerk");
        }
        Ok(Self { config })
    }

    /// Uses `password` unless the URL carries one.
    pub fn with_password(mut self, password: &str) -> Self {
        if self.config.get_password().is_none() {
            self.config.password(password.trim_end_matches(['\r', '\n']));
        }
        self
    }

    pub fn has_password(&self) -> bool {
        self.config.get_password().is_some()
    }

    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The database's name (the user's name when the URL names none, as libpq does).
    pub fn database(&self) -> String {
        self.config.get_dbname().or(self.config.get_user()).unwrap_or_default().to_string()
    }

    /// This URL for another database on the same server, as the same user.
    pub fn for_database(&self, name: &str) -> Self {
        let mut config = self.config.clone();
        config.dbname(name);
        Self { config }
    }
}

impl fmt::Display for DatabaseUrl {
    /// `postgres://user@host:port/db`, never the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let host = match h {
                    Host::Tcp(name) => name.clone(),
                    #[cfg(unix)]
                    Host::Unix(path) => path.display().to_string(),
                };
                match self.config.get_ports().get(i).or(self.config.get_ports().first()) {
                    Some(port) => format!("{host}:{port}"),
                    None => format!("{host}:5432"),
                }
            })
            .collect();
        let user = self.config.get_user().unwrap_or_default();
        write!(f, "postgres://{user}@{}/{}", hosts.join(","), self.database())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows() {
        let url = DatabaseUrl::parse("postgres://app:s3cret@db.example:6543/uhrwerk?connect_timeout=5").unwrap();
        assert_eq!(url.to_string(), "postgres://app@db.example:6543/uhrwerk");
        assert!(!format!("{url:?}").contains("s3cret"));
        assert!(url.has_password());
    }

    #[test]
    fn defaults_and_password_from_elsewhere() {
        let url = DatabaseUrl::parse("postgresql://app@localhost/").unwrap();
        assert_eq!(url.to_string(), "postgres://app@localhost:5432/app");
        assert!(!url.has_password());
        let url = url.with_password("from-file\n");
        assert_eq!(url.config().get_password(), Some(&b"from-file"[..]));
        // A password in the URL wins.
        let url = DatabaseUrl::parse("postgres://app:inline@h/db").unwrap().with_password("other");
        assert_eq!(url.config().get_password(), Some(&b"inline"[..]));
    }

    #[test]
    fn other_schemes_and_bad_urls_are_refused() {
        assert!(matches!(DatabaseUrl::parse("mysql://x@y/z"), Err(UrlError::Scheme)));
        let err = DatabaseUrl::parse("postgres://app:pw@host:notaport/db").unwrap_err();
        assert!(matches!(err, UrlError::Invalid(_)));
        assert!(!err.to_string().contains("pw@"));
    }
}
