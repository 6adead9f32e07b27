//! Typed settings. Every setting has a command-line flag and an environment variable (`DATABASE_URL`,
//! `PAWFILE_*`); secrets are wrapped so they never reach logs or `Debug` output. One file per
//! subsystem; `ServeSettings` gathers them for `pawfile serve`.

mod backup;
mod database;
mod documents;
mod http;
mod limits;
mod mail;
mod records;
mod sessions;
mod stores;

pub use crate::backup::schedule::BackupSchedule;
pub use crate::storage::{DEFAULT_S3_TIMEOUT, S3Credentials, S3Settings, separation_problems};
pub use backup::{BackupSettings, SIGNING_KEY_FILE};
pub use database::{DatabaseSettings, redact_url};
pub use documents::DocumentSettings;
pub use http::{ConnectionSettings, HttpSettings};
pub use limits::LimitSettings;
pub use mail::MailSettings;
pub use records::RecordSettings;
pub use sessions::SessionSettings;
pub use stores::{BackupStoreSettings, DocumentStoreSettings};

use clap::{Args, FromArgMatches, ValueEnum};
use secrecy::SecretString;
use std::{convert::Infallible, path::PathBuf, time::Duration};

/// Parses a secret from the command line or environment without ever printing it.
fn parse_secret(value: &str) -> Result<SecretString, Infallible> {
    Ok(SecretString::from(value.to_owned()))
}

/// Parses a value without the spaces around it (a list written `a, b` gives `a` and `b`).
fn parse_trimmed(value: &str) -> Result<String, Infallible> {
    Ok(value.trim().to_owned())
}

fn parse_duration(value: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(value)
}

/// Parses a switch: on, true, 1, yes or off, false, 0, no.
fn parse_on_off(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => Err(format!("{value:?}: expected on or off")),
    }
}

/// The settings `T` as their defaults say, whatever the environment holds: each group's `Default`, so
/// a default is said once, in its `#[arg]`.
///
/// # Panics
/// If a setting of `T` has no default (a programming error).
pub fn defaults<T: Args + FromArgMatches>() -> T {
    let command = T::augment_args(clap::Command::new("pawfile")).mut_args(|arg| arg.env(None::<&str>));
    let matches = command
        .try_get_matches_from(["pawfile"])
        .unwrap_or_else(|err| panic!("every setting has a default: {err}"));
    T::from_arg_matches(&matches).unwrap_or_else(|err| panic!("every setting has a default: {err}"))
}

/// How logs are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Everything `pawfile serve` needs.
#[derive(Debug, Clone, Args)]
pub struct ServeSettings {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub http: HttpSettings,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub connections: ConnectionSettings,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub sessions: SessionSettings,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub limits: LimitSettings,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub document_rules: DocumentSettings,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub records: RecordSettings,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub documents: DocumentStoreSettings,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub backups: BackupStoreSettings,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub backup: BackupSettings,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub mail: MailSettings,
    /// Folder for the embedded defaults (the embedded S3 endpoints' objects).
    #[arg(long = "data-dir", env = "PAWFILE_DATA_DIR", default_value = "pawfile-data")]
    pub data_dir: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_are_on_or_off() {
        assert!(parse_on_off("on").unwrap());
        assert!(!parse_on_off("off").unwrap());
        assert!(parse_on_off("maybe").is_err());
    }
}
