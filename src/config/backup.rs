//! What backups do: when (a `backup::schedule::BackupSchedule`), to whom they are encrypted, what prune
//! keeps, the signing key and the drill.

use super::{parse_on_off, parse_secret};
use crate::backup::schedule::BackupSchedule;
use clap::Args;
use secrecy::SecretString;
use std::{path::PathBuf, time::Duration};

/// What backups do: when, to whom they are encrypted, what prune keeps, and the restore drill.
#[derive(Debug, Clone, Args)]
pub struct BackupSettings {
    /// Daily backup time, `HH:MM` in UTC, `every DURATION` (every 6h: more often than daily), or `off`.
    /// The server also backs up at start-up when the last complete backup is older than a day.
    #[arg(
        long = "backup-schedule",
        env = "PAWFILE_BACKUP_SCHEDULE",
        default_value = "02:00"
    )]
    pub schedule: BackupSchedule,
    /// age public keys (`age1…`, separated by commas) backups are encrypted to. Make a pair with
    /// `pawfile backup keygen`; keep the private key off this server.
    #[arg(long = "backup-recipients", env = "PAWFILE_BACKUP_RECIPIENTS")]
    pub recipients: Option<String>,
    /// Which snapshots prune keeps: the newest of each of the last N days, weeks and months.
    #[arg(
        long = "backup-retention",
        env = "PAWFILE_BACKUP_RETENTION",
        default_value = "7d,4w,12m"
    )]
    pub retention: crate::backup::Retention,
    /// Whether the server prunes after each successful backup (`off`: the hardened mode, where the
    /// server's key cannot delete and `pawfile backup prune` runs elsewhere).
    #[arg(long = "backup-prune", env = "PAWFILE_BACKUP_PRUNE", default_value = "on", value_parser = parse_on_off)]
    pub prune: bool,
    /// Store backups unencrypted when no recipient is set (not recommended).
    #[arg(
        long = "allow-unencrypted-backups",
        env = "PAWFILE_ALLOW_UNENCRYPTED_BACKUPS",
        default_value_t = false,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub allow_unencrypted: bool,
    /// age identity file the weekly restore drill decrypts with (unset: no drill, except on the
    /// embedded store, whose key sits in the data folder).
    #[arg(long = "backup-drill-identity", env = "PAWFILE_BACKUP_DRILL_IDENTITY")]
    pub drill_identity: Option<PathBuf>,
    /// Scratch database the drill restores into (emptied first; never the live one).
    #[arg(long = "backup-drill-database-url", env = "PAWFILE_BACKUP_DRILL_DATABASE_URL", value_parser = parse_secret, hide_env_values = true)]
    pub drill_database_url: Option<SecretString>,
    /// Test-only: pause this long after each stored object, so progress can be watched.
    #[arg(long = "backup-test-pace", env = "PAWFILE_BACKUP_TEST_PACE", value_parser = humantime::parse_duration, hide = true)]
    pub test_pace: Option<Duration>,
    /// The key manifests, drill reports and deletion markers are signed with (`pawfile backup
    /// signing-keygen` makes one). Unset: generated once into the data folder. Every replica must use
    /// the same key (or trust the others' with PAWFILE_BACKUP_TRUSTED_KEYS).
    #[arg(long = "backup-signing-key", env = "PAWFILE_BACKUP_SIGNING_KEY", value_parser = parse_secret, hide_env_values = true)]
    pub signing_key: Option<SecretString>,
    /// Public keys (`pawfile-backup-verify-key-1:…`, comma-separated) whose signatures are believed
    /// besides the signing key's own: older keys, and the key of an installation restored here.
    #[arg(
        long = "backup-trusted-keys",
        env = "PAWFILE_BACKUP_TRUSTED_KEYS",
        value_delimiter = ','
    )]
    pub trusted_keys: Vec<crate::backup::VerifyingKey>,
}

impl BackupSettings {
    /// The signing key: the configured one, or the one in `data_dir` (generated there the first time;
    /// the returned flag says it was just made).
    pub fn signing_key(
        &self,
        data_dir: &std::path::Path,
    ) -> Result<(crate::backup::SigningKey, bool), String> {
        crate::backup::signing::load_or_generate(self.signing_key.as_ref(), &data_dir.join(SIGNING_KEY_FILE))
    }

    /// The keys to check backups with where nothing is signed (a restore): the configured signing key
    /// or the one in `data_dir` if either exists (never generated), and the trusted keys.
    pub fn verifying_keys(&self, data_dir: &std::path::Path) -> Result<crate::backup::BackupKeys, String> {
        let path = data_dir.join(SIGNING_KEY_FILE);
        let signing = match &self.signing_key {
            Some(_) => Some(self.signing_key(data_dir)?.0),
            None if path.exists() => Some(self.signing_key(data_dir)?.0),
            None => None,
        };
        let public = signing.map(|key| key.verifying_key());
        let mut trusted = self.trusted_keys.clone();
        trusted.extend(public);
        Ok(crate::backup::BackupKeys::new(None, trusted))
    }
}

/// Where the generated backup signing key is kept, in the data folder.
pub const SIGNING_KEY_FILE: &str = "backup-signing-key.txt";
