//! Where Postgres is, and opening the pool there.

use super::parse_secret;
use crate::error::{StartupError, root_cause};
use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use std::str::FromStr;
use url::Url;

/// Where Postgres is.
#[derive(Debug, Clone, Args)]
pub struct DatabaseSettings {
    /// Postgres connection URL, for example postgres://pawfile:secret@db.internal:5432/pawfile.
    #[arg(long = "database-url", env = "DATABASE_URL", value_parser = parse_secret, hide_env_values = true)]
    pub url: SecretString,

    /// Most connections the server keeps open to Postgres.
    #[arg(
        long = "database-max-connections",
        env = "PAWFILE_DATABASE_MAX_CONNECTIONS",
        default_value_t = 16
    )]
    pub max_connections: u32,
}

impl DatabaseSettings {
    /// Opens a pool and checks that Postgres answers, or says in one line why it cannot.
    pub async fn connect(&self) -> Result<sqlx::PgPool, StartupError> {
        let options =
            sqlx::postgres::PgConnectOptions::from_str(self.url.expose_secret()).map_err(|err| {
                StartupError::new(
                    "DATABASE_URL",
                    format!("is not a Postgres URL: {}", root_cause(&err)),
                )
            })?;
        crate::db::pool(options.application_name("pawfile"), self.max_connections)
            .await
            .map_err(|err| {
                StartupError::new(
                    "DATABASE_URL",
                    format!("cannot connect to {}: {}", self.redacted_url(), root_cause(&err)),
                )
            })
    }

    /// The URL with its password replaced by `***`, for messages.
    pub fn redacted_url(&self) -> String {
        redact_url(self.url.expose_secret())
    }
}

/// `url` with any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "<unparsable URL>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://pawfile:s3cret@db:5432/pawfile"),
            "postgres://pawfile:***@db:5432/pawfile"
        );
        assert_eq!(redact_url("postgres://db/pawfile"), "postgres://db/pawfile");
        assert_eq!(redact_url("::"), "<unparsable URL>");
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let settings = DatabaseSettings {
            url: SecretString::from("postgres://u:topsecret@h/d".to_owned()),
            max_connections: 1,
        };
        assert!(!format!("{settings:?}").contains("topsecret"));
    }
}
