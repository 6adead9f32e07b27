//! Typed settings. Every setting has a command-line flag and an environment variable (`DATABASE_URL`,
//! `PAWFILE_*`); secrets are wrapped so they never reach logs or `Debug` output.

pub use crate::storage::{DEFAULT_S3_TIMEOUT, S3Credentials, S3Settings, separation_problems};

use crate::error::{StartupError, root_cause};
use bytesize::ByteSize;
use clap::{Args, ValueEnum};
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use std::{convert::Infallible, net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};
use url::Url;

/// Parses a secret from the command line or environment without ever printing it.
fn parse_secret(value: &str) -> Result<SecretString, Infallible> {
    Ok(SecretString::from(value.to_owned()))
}

fn parse_duration(value: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(value)
}

/// Parses one trusted proxy: an address (`10.0.0.7`) or a network (`10.0.0.0/8`).
/// A role that must sign in with a second factor, or `none`.
fn parse_two_factor_role(value: &str) -> Result<Option<crate::domain::Role>, String> {
    use crate::domain::Role;
    match value.trim() {
        "none" | "" => Ok(None),
        "owner" => Ok(Some(Role::Owner)),
        "staff" => Ok(Some(Role::Staff)),
        "admin" => Ok(Some(Role::Admin)),
        other => Err(format!("{other:?}: expected owner, staff, admin or none")),
    }
}

fn parse_proxy(value: &str) -> Result<IpNet, String> {
    let value = value.trim();
    value
        .parse::<IpNet>()
        .or_else(|_| value.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{value:?} is neither an IP address nor a network such as 10.0.0.0/8"))
}

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

fn credentials(
    access_key_id: Option<&String>,
    secret: Option<&SecretString>,
    env_prefix: &str,
) -> Result<Option<S3Credentials>, String> {
    match (access_key_id, secret) {
        (Some(id), Some(secret)) => Ok(Some(S3Credentials {
            access_key_id: id.clone(),
            secret_access_key: secret.clone(),
        })),
        (None, None) => Ok(None),
        _ => Err(format!(
            "{env_prefix}ACCESS_KEY_ID and {env_prefix}SECRET_ACCESS_KEY must be set together"
        )),
    }
}

/// The documents bucket. With no endpoint, Pawfile serves an embedded S3 endpoint on loopback.
#[derive(Debug, Clone, Args)]
pub struct DocumentStoreSettings {
    /// S3 endpoint of the documents bucket (https://s3.eu-central-1.amazonaws.com, http://garage:3900).
    /// Unset: an embedded S3 endpoint on loopback, backed by the data folder.
    #[arg(id = "s3-endpoint", long = "s3-endpoint", env = "PAWFILE_S3_ENDPOINT")]
    pub endpoint: Option<Url>,
    /// Region of the documents bucket.
    #[arg(
        id = "s3-region",
        long = "s3-region",
        env = "PAWFILE_S3_REGION",
        default_value = "us-east-1"
    )]
    pub region: String,
    /// Name of the private documents bucket.
    #[arg(
        id = "s3-bucket",
        long = "s3-bucket",
        env = "PAWFILE_S3_BUCKET",
        default_value = "pawfile-documents"
    )]
    pub bucket: String,
    /// Access key id for the documents bucket (unset: the default AWS credential chain).
    #[arg(
        id = "s3-access-key-id",
        long = "s3-access-key-id",
        env = "PAWFILE_S3_ACCESS_KEY_ID"
    )]
    pub access_key_id: Option<String>,
    /// Secret access key for the documents bucket.
    #[arg(id = "s3-secret-access-key", long = "s3-secret-access-key", env = "PAWFILE_S3_SECRET_ACCESS_KEY", value_parser = parse_secret, hide_env_values = true)]
    pub secret_access_key: Option<SecretString>,
    /// Path-style addressing (default: on with a custom endpoint).
    #[arg(
        id = "s3-force-path-style",
        long = "s3-force-path-style",
        env = "PAWFILE_S3_FORCE_PATH_STYLE"
    )]
    pub force_path_style: Option<bool>,
    /// How long an S3 operation (or a pause in a download) may take before the request fails.
    #[arg(id = "s3-timeout", long = "s3-timeout", env = "PAWFILE_S3_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
}

impl DocumentStoreSettings {
    /// The store's settings, or a message naming the setting that is wrong.
    pub fn s3(&self) -> Result<S3Settings, String> {
        const PREFIX: &str = "PAWFILE_S3_";
        Ok(S3Settings {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            bucket: self.bucket.clone(),
            credentials: credentials(
                self.access_key_id.as_ref(),
                self.secret_access_key.as_ref(),
                PREFIX,
            )?,
            force_path_style: self.force_path_style,
            env_prefix: PREFIX,
            timeout: self.timeout,
        })
    }
}

/// The backup bucket: separate from the documents bucket, with its own credentials.
#[derive(Debug, Clone, Args)]
pub struct BackupStoreSettings {
    /// S3 endpoint of the backup bucket. Unset: the documents endpoint, or a second embedded endpoint
    /// (on the same machine, so not a real off-site backup) when that one is embedded too.
    #[arg(
        id = "backup-s3-endpoint",
        long = "backup-s3-endpoint",
        env = "PAWFILE_BACKUP_S3_ENDPOINT"
    )]
    pub endpoint: Option<Url>,
    /// Region of the backup bucket.
    #[arg(
        id = "backup-s3-region",
        long = "backup-s3-region",
        env = "PAWFILE_BACKUP_S3_REGION",
        default_value = "us-east-1"
    )]
    pub region: String,
    /// Name of the private backup bucket.
    #[arg(
        id = "backup-s3-bucket",
        long = "backup-s3-bucket",
        env = "PAWFILE_BACKUP_S3_BUCKET",
        default_value = "pawfile-backups"
    )]
    pub bucket: String,
    /// Access key id for the backup bucket (unset: the default AWS credential chain).
    #[arg(
        id = "backup-s3-access-key-id",
        long = "backup-s3-access-key-id",
        env = "PAWFILE_BACKUP_S3_ACCESS_KEY_ID"
    )]
    pub access_key_id: Option<String>,
    /// Secret access key for the backup bucket.
    #[arg(id = "backup-s3-secret-access-key", long = "backup-s3-secret-access-key", env = "PAWFILE_BACKUP_S3_SECRET_ACCESS_KEY", value_parser = parse_secret, hide_env_values = true)]
    pub secret_access_key: Option<SecretString>,
    /// Path-style addressing for the backup bucket (default: on with a custom endpoint).
    #[arg(
        id = "backup-s3-force-path-style",
        long = "backup-s3-force-path-style",
        env = "PAWFILE_BACKUP_S3_FORCE_PATH_STYLE"
    )]
    pub force_path_style: Option<bool>,
    /// How long an operation on the backup store (or a pause in a download) may take.
    #[arg(id = "backup-s3-timeout", long = "backup-s3-timeout", env = "PAWFILE_BACKUP_S3_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
}

impl BackupStoreSettings {
    /// The store's settings, or a message naming the setting that is wrong. `documents_endpoint` is
    /// the default endpoint.
    pub fn s3(&self, documents_endpoint: Option<&Url>) -> Result<S3Settings, String> {
        const PREFIX: &str = "PAWFILE_BACKUP_S3_";
        Ok(S3Settings {
            endpoint: self.endpoint.clone().or_else(|| documents_endpoint.cloned()),
            region: self.region.clone(),
            bucket: self.bucket.clone(),
            credentials: credentials(
                self.access_key_id.as_ref(),
                self.secret_access_key.as_ref(),
                PREFIX,
            )?,
            force_path_style: self.force_path_style,
            env_prefix: PREFIX,
            timeout: self.timeout,
        })
    }
}

/// When the server backs up by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupSchedule {
    /// Never (tests, and operators who run `pawfile backup run` from elsewhere).
    Off,
    /// Every day at this UTC time (hour, minute).
    Daily(u8, u8),
    /// Every so often (`every 6h`), in slots counted from the Unix epoch, so every replica agrees on
    /// them. For installations that want more than the daily backup.
    Every(Duration),
}

impl BackupSchedule {
    /// The start of the next slot after `now` (`None` when off): when a scheduled backup runs, and the
    /// instant a run must have started after to count as that slot's.
    pub fn next_after(self, now: time::OffsetDateTime) -> Option<time::OffsetDateTime> {
        let now = now.to_offset(time::UtcOffset::UTC);
        match self {
            Self::Off => None,
            Self::Daily(hour, minute) => {
                let at = time::Time::from_hms(hour, minute, 0).unwrap_or(time::Time::MIDNIGHT);
                let today = now.replace_time(at);
                Some(if today > now {
                    today
                } else {
                    today + time::Duration::days(1)
                })
            }
            Self::Every(every) => {
                let every = i128::from(every.as_secs().max(1)) * 1_000_000_000;
                let nanos = now.unix_timestamp_nanos();
                let next = nanos - nanos.rem_euclid(every) + every;
                Some(time::OffsetDateTime::from_unix_timestamp_nanos(next).unwrap_or(now))
            }
        }
    }
}

impl FromStr for BackupSchedule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.trim().eq_ignore_ascii_case("off") {
            return Ok(Self::Off);
        }
        if let Some(every) = text.trim().strip_prefix("every ") {
            return match humantime::parse_duration(every.trim()) {
                Ok(every) if every >= Duration::from_secs(1) => Ok(Self::Every(every)),
                Ok(_) => Err(format!("{text:?}: at least every 1s")),
                Err(err) => Err(format!("{text:?}: {err}")),
            };
        }
        let parsed = text
            .trim()
            .split_once(':')
            .and_then(|(h, m)| Some((h.parse::<u8>().ok()?, m.parse::<u8>().ok()?)))
            .filter(|(h, m)| *h < 24 && *m < 60 && text.trim().len() == 5);
        parsed.map(|(h, m)| Self::Daily(h, m)).ok_or_else(|| {
            format!("{text:?}: expected HH:MM (UTC, such as 02:00), every DURATION (every 6h) or off")
        })
    }
}

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

fn parse_on_off(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => Err(format!("{value:?}: expected on or off")),
    }
}

/// How the HTTP server listens and whom it believes.
#[derive(Debug, Clone, Args)]
pub struct HttpSettings {
    /// Address and port to listen on. This is the one place the address is set.
    #[arg(long = "listen", env = "PAWFILE_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// The URL people reach Pawfile at (default: http:// and the listen address).
    #[arg(long = "public-url", env = "PAWFILE_PUBLIC_URL")]
    pub public_url: Option<Url>,
    /// Address and port for Prometheus metrics at /metrics (for example 0.0.0.0:9300). Unset: no
    /// metrics. Keep it off the public network: it answers anyone who reaches it.
    #[arg(long = "metrics-listen", env = "PAWFILE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Proxies (addresses or networks, comma-separated) whose X-Forwarded-For and X-Forwarded-Proto
    /// headers are believed. Default: none.
    #[arg(long = "trusted-proxies", env = "PAWFILE_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_proxy)]
    pub trusted_proxies: Vec<IpNet>,
    /// Largest file a user may upload (for example 256MiB, 1GiB).
    #[arg(
        long = "max-upload-size",
        env = "PAWFILE_MAX_UPLOAD_SIZE",
        default_value = "256MiB"
    )]
    pub max_upload_size: ByteSize,
    /// Accepted document types, as MIME types sniffed from the bytes (comma-separated).
    #[arg(
        long = "accepted-types",
        env = "PAWFILE_ACCEPTED_TYPES",
        value_delimiter = ',',
        default_value = "application/pdf,image/jpeg,image/png,image/webp,image/gif,image/heif,image/tiff,application/dicom"
    )]
    pub accepted_types: Vec<String>,
    /// How long deleted documents stay in the trash before they are purged.
    #[arg(long = "trash-retention", env = "PAWFILE_TRASH_RETENTION", default_value = "30days", value_parser = parse_duration)]
    pub trash_retention: Duration,
    /// An upload that has not finished after this long is abandoned (its server died): the next
    /// reconcile removes its pieces from the bucket. Longer than the slowest upload you expect.
    #[arg(long = "stale-upload-after", env = "PAWFILE_STALE_UPLOAD_AFTER", default_value = "24h", value_parser = parse_duration)]
    pub stale_upload_after: Duration,
    /// How often the bucket is compared with the database.
    #[arg(long = "reconcile-interval", env = "PAWFILE_RECONCILE_INTERVAL", default_value = "6h", value_parser = parse_duration)]
    pub reconcile_interval: Duration,
    /// Every document's bytes are read back and re-hashed at least once per this period (the scrub
    /// shares the work between the reconcile runs).
    #[arg(long = "scrub-period", env = "PAWFILE_SCRUB_PERIOD", default_value = "30days", value_parser = parse_duration)]
    pub scrub_period: Duration,
    /// A session ends after this long without a request (for example 30m, 2h).
    #[arg(long = "session-idle-timeout", env = "PAWFILE_SESSION_IDLE_TIMEOUT", default_value = "30m", value_parser = parse_duration)]
    pub session_idle_timeout: Duration,
    /// A session ends this long after sign-in, active or not.
    #[arg(long = "session-absolute-timeout", env = "PAWFILE_SESSION_ABSOLUTE_TIMEOUT", default_value = "12h", value_parser = parse_duration)]
    pub session_absolute_timeout: Duration,
    /// A client must send a request's headers within this time, or its connection is closed.
    #[arg(long = "header-read-timeout", env = "PAWFILE_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// Remove where a photo was taken (EXIF GPS, maker notes, XMP GPS) from JPEG, PNG and WebP uploads,
    /// without re-encoding them (`off`: store photos exactly as they came).
    #[arg(long = "strip-photo-location", env = "PAWFILE_STRIP_PHOTO_LOCATION", default_value = "on", value_parser = parse_on_off)]
    pub strip_photo_location: bool,
    /// A connection with no request in flight (kept alive between requests) is closed after this long.
    #[arg(long = "keep-alive-timeout", env = "PAWFILE_KEEP_ALIVE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub keep_alive_timeout: Duration,
    /// Most connections one client address may hold open (an IPv6 client: its /64); more are closed at
    /// once. A clinic's browsers often share one address. Trusted proxies are exempt.
    #[arg(
        long = "max-connections-per-address",
        env = "PAWFILE_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 256
    )]
    pub max_connections_per_address: usize,
    /// A request body (an upload) that sends no byte for this long ends, and what it sent is cleaned up;
    /// every other request's body (a form, at most 2 MiB) must arrive whole within it; and a client that
    /// reads nothing of a response for this long is disconnected.
    #[arg(long = "body-idle-timeout", env = "PAWFILE_BODY_IDLE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub body_idle_timeout: Duration,
    /// Most client connections open at once; more wait to be accepted.
    #[arg(
        long = "max-client-connections",
        env = "PAWFILE_MAX_CLIENT_CONNECTIONS",
        default_value_t = 1024
    )]
    pub max_client_connections: usize,
    /// Bytes one user may upload per hour (counted in PostgreSQL across replicas); more answers 429.
    #[arg(
        long = "limit-upload-per-hour",
        env = "PAWFILE_LIMIT_UPLOAD_PER_HOUR",
        default_value = "10GiB"
    )]
    pub limit_upload_per_hour: ByteSize,
    /// Bytes one user may download per hour (files and thumbnails; a PDF viewer's many range requests
    /// count only their bytes); more answers 429.
    #[arg(
        long = "limit-download-per-hour",
        env = "PAWFILE_LIMIT_DOWNLOAD_PER_HOUR",
        default_value = "50GiB"
    )]
    pub limit_download_per_hour: ByteSize,
    /// Zip exports one user may start per hour.
    #[arg(
        long = "limit-exports-per-hour",
        env = "PAWFILE_LIMIT_EXPORTS_PER_HOUR",
        default_value_t = 20
    )]
    pub limit_exports_per_hour: u32,
    /// Uploads one user may run at once (counted across replicas; a server that dies frees its
    /// uploads' slots within a minute).
    #[arg(
        long = "limit-concurrent-uploads",
        env = "PAWFILE_LIMIT_CONCURRENT_UPLOADS",
        default_value_t = 10
    )]
    pub limit_concurrent_uploads: usize,
    /// The language medical records are searched in: a PostgreSQL text-search configuration (english,
    /// german, french, simple, ...). Changing it re-indexes every record at start-up.
    #[arg(
        long = "search-language",
        env = "PAWFILE_SEARCH_LANGUAGE",
        default_value = "english"
    )]
    pub search_language: String,
    /// Storage one owner's uploads may hold (documents in the trash count until purged); an upload
    /// that does not fit is refused before its bytes are stored.
    #[arg(
        long = "quota-per-owner",
        env = "PAWFILE_QUOTA_PER_OWNER",
        default_value = "2GiB"
    )]
    pub quota_per_owner: ByteSize,
    /// Storage one clinic's staff's uploads may hold, together.
    #[arg(
        long = "quota-per-clinic",
        env = "PAWFILE_QUOTA_PER_CLINIC",
        default_value = "500GiB"
    )]
    pub quota_per_clinic: ByteSize,
    /// Failed sign-ins to one account from one client address, per window (`COUNT/WINDOW`); more
    /// answers 429 with `Retry-After`, and the owner at another address can still sign in.
    #[arg(
        long = "limit-sign-in-failures-per-account-and-address",
        env = "PAWFILE_LIMIT_SIGN_IN_FAILURES_PER_ACCOUNT_AND_ADDRESS",
        default_value = "10/15m"
    )]
    pub limit_sign_in_failures_per_account_and_address: crate::rate_limit::Limit,
    /// Failed sign-ins from one client address to any accounts, per window (a clinic behind one NAT
    /// address has many users).
    #[arg(
        long = "limit-sign-in-failures-per-address",
        env = "PAWFILE_LIMIT_SIGN_IN_FAILURES_PER_ADDRESS",
        default_value = "50/15m"
    )]
    pub limit_sign_in_failures_per_address: crate::rate_limit::Limit,
    /// Failed sign-ins to one account from everywhere together, per window (ASVS 2.2.1: at most 100
    /// an hour): the ceiling for guessing spread over many addresses.
    #[arg(
        long = "limit-sign-in-failures-per-account",
        env = "PAWFILE_LIMIT_SIGN_IN_FAILURES_PER_ACCOUNT",
        default_value = "100/1h"
    )]
    pub limit_sign_in_failures_per_account: crate::rate_limit::Limit,
    /// New accounts registered from one client address, per window.
    #[arg(
        long = "limit-registrations-per-address",
        env = "PAWFILE_LIMIT_REGISTRATIONS_PER_ADDRESS",
        default_value = "20/1h"
    )]
    pub limit_registrations_per_address: crate::rate_limit::Limit,
    /// Password changes per account, per window (counted before the current password is checked).
    #[arg(
        long = "limit-password-changes",
        env = "PAWFILE_LIMIT_PASSWORD_CHANGES",
        default_value = "10/1h"
    )]
    pub limit_password_changes: crate::rate_limit::Limit,
    /// "Forgot password" requests per client address, per window.
    #[arg(
        long = "limit-password-resets-per-address",
        env = "PAWFILE_LIMIT_PASSWORD_RESETS_PER_ADDRESS",
        default_value = "20/1h"
    )]
    pub limit_password_resets_per_address: crate::rate_limit::Limit,
    /// Mails that sign-up and "forgot password" requests may send to one address, per window (beyond
    /// it the answer is the same and nothing is sent).
    #[arg(
        long = "limit-mails-per-recipient",
        env = "PAWFILE_LIMIT_MAILS_PER_RECIPIENT",
        default_value = "5/1h"
    )]
    pub limit_mails_per_recipient: crate::rate_limit::Limit,
    /// Roles that must sign in with a second factor (a TOTP app), comma-separated, or `none`. Someone
    /// in such a role without one can only set it up until they have.
    #[arg(
        long = "require-two-factor",
        env = "PAWFILE_REQUIRE_TWO_FACTOR",
        value_delimiter = ',',
        default_value = "staff,admin",
        value_parser = parse_two_factor_role
    )]
    pub require_two_factor: Vec<Option<crate::domain::Role>>,
    /// Claim-code attempts per user, per window (only wrong codes count).
    #[arg(
        long = "limit-claim-attempts",
        env = "PAWFILE_LIMIT_CLAIM_ATTEMPTS",
        default_value = "10/1h"
    )]
    pub limit_claim_attempts: crate::rate_limit::Limit,
    /// Record searches per user, per window.
    #[arg(
        long = "limit-searches",
        env = "PAWFILE_LIMIT_SEARCHES",
        default_value = "60/1m"
    )]
    pub limit_searches: crate::rate_limit::Limit,
    /// On SIGTERM, how long requests in flight may take to finish before they are cut.
    #[arg(long = "shutdown-grace", env = "PAWFILE_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

impl HttpSettings {
    /// Why Pawfile cannot serve with this `PAWFILE_PUBLIC_URL` (or its absence), as one line; `None`
    /// when it can.
    ///
    /// Listening where other machines can connect needs the address people use: it is the origin
    /// requests must come from, whether cookies are `Secure`, and the base of links.
    pub fn problem(&self) -> Option<String> {
        const EXAMPLE: &str = "for example https://records.example-clinic.org";
        match &self.public_url {
            Some(url) if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() => {
                Some(format!("{url} is not an http:// or https:// address ({EXAMPLE})"))
            }
            Some(url) if url.path() != "/" || url.query().is_some() || url.fragment().is_some() => Some(
                format!("{url}: Pawfile is served at the root of its address; leave out the path"),
            ),
            Some(url) if !url.username().is_empty() || url.password().is_some() => {
                Some("the address must not carry a user name or password".to_owned())
            }
            Some(_) => None,
            None if !self.listen.ip().is_loopback() => Some(format!(
                "Pawfile listens on {}, which other machines can reach; set \
                 PAWFILE_PUBLIC_URL to the address people use ({EXAMPLE})",
                self.listen
            )),
            None => None,
        }
    }

    /// The storage quotas.
    pub fn quotas(&self) -> crate::documents::quota::Quotas {
        crate::documents::quota::Quotas {
            per_owner: self.quota_per_owner.as_u64(),
            per_clinic: self.quota_per_clinic.as_u64(),
        }
    }

    /// The limits on what accounts do that an attacker would repeat.
    pub fn account_limits(&self) -> crate::rate_limit::AccountLimits {
        crate::rate_limit::AccountLimits {
            sign_in_failures_per_account_and_address: self.limit_sign_in_failures_per_account_and_address,
            sign_in_failures_per_address: self.limit_sign_in_failures_per_address,
            sign_in_failures_per_account: self.limit_sign_in_failures_per_account,
            registrations_per_address: self.limit_registrations_per_address,
            password_changes_per_account: self.limit_password_changes,
            claim_attempts_per_user: self.limit_claim_attempts,
            password_resets_per_address: self.limit_password_resets_per_address,
            mails_per_recipient: self.limit_mails_per_recipient,
            searches_per_user: self.limit_searches,
        }
    }

    /// The public URL, defaulting to the listen address over plain HTTP.
    pub fn public_url(&self) -> Url {
        self.public_url.clone().unwrap_or_else(|| {
            Url::parse(&format!("http://{}/", self.listen)).expect("a socket address makes a URL")
        })
    }
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

/// How Pawfile sends mail. Without `PAWFILE_SMTP_HOST`, mail is written as `.eml` files into the data
/// folder's `mail/` (the log says where), so every link can be followed when trying Pawfile locally.
#[derive(Debug, Clone, Args)]
pub struct MailSettings {
    /// SMTP server to send mail through (for example smtp.example.org). Unset: mail goes to files.
    #[arg(long = "smtp-host", env = "PAWFILE_SMTP_HOST")]
    pub smtp_host: Option<String>,
    /// SMTP port (default: 587 for starttls, 465 for tls, 25 for none).
    #[arg(long = "smtp-port", env = "PAWFILE_SMTP_PORT")]
    pub smtp_port: Option<u16>,
    /// How the SMTP connection is secured: starttls (required, not opportunistic), tls, or none (only
    /// for a relay on this machine).
    #[arg(
        long = "smtp-tls",
        env = "PAWFILE_SMTP_TLS",
        value_enum,
        default_value = "starttls"
    )]
    pub smtp_tls: crate::mail::SmtpTls,
    /// SMTP user name, if the server asks for one.
    #[arg(long = "smtp-username", env = "PAWFILE_SMTP_USERNAME")]
    pub smtp_username: Option<String>,
    /// SMTP password.
    #[arg(long = "smtp-password", env = "PAWFILE_SMTP_PASSWORD", value_parser = parse_secret, hide_env_values = true)]
    pub smtp_password: Option<SecretString>,
    /// The sender of every mail, for example "Pawfile <records@clinic.example.org>" (default: Pawfile
    /// <noreply@ the public URL's host>).
    #[arg(long = "mail-from", env = "PAWFILE_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// Wait after a failed send; it doubles after each further failure, up to an hour.
    #[arg(long = "mail-retry-after", env = "PAWFILE_MAIL_RETRY_AFTER", default_value = "30s", value_parser = parse_duration)]
    pub mail_retry_after: Duration,
    /// Sends tried before a message is given up (admins see it on their page).
    #[arg(
        long = "mail-max-attempts",
        env = "PAWFILE_MAIL_MAX_ATTEMPTS",
        default_value_t = 12
    )]
    pub mail_max_attempts: u32,
    /// Without an SMTP server, mail is written as `.eml` files into the data folder's `mail/`; they are
    /// deleted after this long (they hold sign-in links and people's addresses).
    #[arg(long = "mail-file-retention", env = "PAWFILE_MAIL_FILE_RETENTION", default_value = "30days", value_parser = parse_duration)]
    pub mail_file_retention: Duration,
}

impl MailSettings {
    /// The SMTP server, when one is set.
    pub fn smtp_server(&self) -> Result<Option<crate::mail::SmtpServer>, StartupError> {
        let Some(host) = self.smtp_host.clone().filter(|host| !host.trim().is_empty()) else {
            return Ok(None);
        };
        let credentials = match (&self.smtp_username, &self.smtp_password) {
            (Some(user), Some(password)) => Some((user.clone(), password.clone())),
            (None, None) => None,
            _ => {
                return Err(StartupError::new(
                    "PAWFILE_SMTP_USERNAME",
                    "set both PAWFILE_SMTP_USERNAME and PAWFILE_SMTP_PASSWORD, or neither",
                ));
            }
        };
        Ok(Some(crate::mail::SmtpServer {
            host,
            port: self.smtp_port,
            tls: self.smtp_tls,
            credentials,
        }))
    }

    /// The sender: the configured one, or `Pawfile <noreply@host>` for the public URL's host.
    pub fn from(&self, public_url: &Url) -> Result<lettre::message::Mailbox, StartupError> {
        let text = self.mail_from.clone().unwrap_or_else(|| {
            let host = public_url.host_str().unwrap_or("localhost");
            let host = if host.parse::<std::net::IpAddr>().is_ok() || !host.contains('.') {
                "localhost"
            } else {
                host
            };
            format!("Pawfile <noreply@{host}>")
        });
        text.parse().map_err(|err| {
            StartupError::new(
                "PAWFILE_MAIL_FROM",
                format!("{text:?} is not a mail address: {err}"),
            )
        })
    }

    /// When failed sends are tried again.
    pub fn retry(&self) -> crate::mail::RetryPolicy {
        crate::mail::RetryPolicy {
            first_wait: self.mail_retry_after,
            max_attempts: self.mail_max_attempts.max(1),
        }
    }
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
    use super::BackupSchedule;
    use std::time::Duration;
    use time::macros::datetime;

    #[test]
    fn the_next_daily_backup_is_today_if_its_time_is_ahead_else_tomorrow() {
        let at_two = BackupSchedule::Daily(2, 0);
        assert_eq!(
            at_two.next_after(datetime!(2026-11-30 01:00 UTC)),
            Some(datetime!(2026-11-30 02:00 UTC))
        );
        assert_eq!(
            at_two.next_after(datetime!(2026-11-30 02:00 UTC)),
            Some(datetime!(2026-12-01 02:00 UTC))
        );
        // 03:00 at UTC+2 is 01:00 UTC: the 02:00 UTC backup is still ahead today.
        assert_eq!(
            at_two.next_after(datetime!(2026-11-30 03:00 +02:00)),
            Some(datetime!(2026-11-30 02:00 UTC))
        );
        assert_eq!(
            BackupSchedule::Daily(0, 15).next_after(datetime!(2026-11-30 23:30 UTC)),
            Some(datetime!(2026-12-01 00:15 UTC))
        );
        assert_eq!(
            BackupSchedule::Off.next_after(datetime!(2026-11-30 23:30 UTC)),
            None
        );
    }

    #[test]
    fn every_replica_agrees_on_the_slots_of_a_schedule_in_hours() {
        let every = BackupSchedule::Every(Duration::from_secs(6 * 60 * 60));
        assert_eq!(
            every.next_after(datetime!(2026-11-30 13:59:59 UTC)),
            Some(datetime!(2026-11-30 18:00 UTC))
        );
        assert_eq!(
            every.next_after(datetime!(2026-11-30 18:00 +00:00)),
            Some(datetime!(2026-12-01 00:00 UTC))
        );
        assert_eq!("every 6h".parse::<BackupSchedule>(), Ok(every));
        assert!("every 0s".parse::<BackupSchedule>().is_err());
        assert!("every".parse::<BackupSchedule>().is_err());
    }

    fn http(listen: &str, public_url: Option<&str>) -> HttpSettings {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            http: HttpSettings,
        }
        let mut args = vec!["pawfile".to_owned(), format!("--listen={listen}")];
        if let Some(url) = public_url {
            args.push(format!("--public-url={url}"));
        }
        Wrap::try_parse_from(args).unwrap().http
    }

    #[test]
    fn listening_beyond_this_machine_needs_the_public_url() {
        let problem = http("0.0.0.0:3000", None).problem().unwrap();
        assert!(problem.contains("set PAWFILE_PUBLIC_URL"), "{problem}");
        assert!(!problem.contains('\n'));
        assert!(http("[::]:3000", None).problem().is_some());
        assert_eq!(http("127.0.0.1:3000", None).problem(), None);
        assert_eq!(http("[::1]:3000", None).problem(), None);
        assert_eq!(
            http("0.0.0.0:3000", Some("https://records.example.org")).problem(),
            None
        );
    }

    #[test]
    fn a_public_url_is_an_http_origin() {
        for bad in [
            "ftp://records.example.org",
            "https://records.example.org/pawfile",
            "https://records.example.org/?x=1",
            "https://user:pw@records.example.org",
        ] {
            assert!(http("0.0.0.0:3000", Some(bad)).problem().is_some(), "{bad}");
        }
    }

    use super::*;

    #[test]
    fn account_limits_default_to_the_documented_ones_and_are_settings() {
        assert_eq!(
            http("127.0.0.1:3000", None).account_limits(),
            crate::rate_limit::AccountLimits::DEFAULT
        );
        assert_eq!(
            http("127.0.0.1:3000", None).quotas(),
            crate::documents::quota::Quotas::DEFAULT
        );
        use clap::Parser;
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            http: HttpSettings,
        }
        let set = Wrap::try_parse_from([
            "pawfile",
            "--limit-sign-in-failures-per-account=5/10m",
            "--limit-claim-attempts=3/1day",
        ])
        .unwrap()
        .http
        .account_limits();
        assert_eq!(
            set.sign_in_failures_per_account,
            crate::rate_limit::Limit::new(5, Duration::from_secs(600))
        );
        assert_eq!(
            set.claim_attempts_per_user,
            crate::rate_limit::Limit::new(3, Duration::from_secs(86_400))
        );
        let refused = Wrap::try_parse_from(["pawfile", "--limit-password-changes=lots"])
            .err()
            .unwrap()
            .to_string();
        assert!(refused.contains("such as 10/15m"), "{refused}");
    }

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
    fn every_known_file_type_is_accepted_by_default() {
        let command = HttpSettings::augment_args(clap::Command::new("pawfile"));
        let defaults: Vec<String> = command
            .get_arguments()
            .find(|arg| arg.get_id() == "accepted_types")
            .expect("the accepted types setting")
            .get_default_values()
            .iter()
            .map(|value| value.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            defaults.join(","),
            crate::domain::FileType::DEFAULT_ACCEPTED.join(",")
        );
    }

    #[test]
    fn proxies_parse_as_addresses_or_networks() {
        assert_eq!(parse_proxy("10.0.0.7").unwrap().to_string(), "10.0.0.7/32");
        assert_eq!(parse_proxy(" 10.0.0.0/8 ").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_proxy("::1").unwrap().to_string(), "::1/128");
        assert!(parse_proxy("proxy.internal").is_err());
    }

    #[test]
    fn backup_schedules_are_utc_times_or_off() {
        assert_eq!(
            "02:00".parse::<BackupSchedule>().unwrap(),
            BackupSchedule::Daily(2, 0)
        );
        assert_eq!(
            "23:59".parse::<BackupSchedule>().unwrap(),
            BackupSchedule::Daily(23, 59)
        );
        assert_eq!("OFF".parse::<BackupSchedule>().unwrap(), BackupSchedule::Off);
        for bad in ["24:00", "2:00", "02:60", "noon", ""] {
            assert!(bad.parse::<BackupSchedule>().is_err(), "{bad}");
        }
        assert!(parse_on_off("on").unwrap());
        assert!(!parse_on_off("off").unwrap());
        assert!(parse_on_off("maybe").is_err());
    }

    #[test]
    fn a_backup_store_sharing_a_key_or_an_endpoint_with_the_documents_is_named() {
        let store = |endpoint: &str, key: Option<&str>| S3Settings {
            endpoint: Some(Url::parse(endpoint).unwrap()),
            region: "r".to_owned(),
            bucket: "b".to_owned(),
            credentials: key.map(|key| S3Credentials {
                access_key_id: key.to_owned(),
                secret_access_key: SecretString::from("s".to_owned()),
            }),
            force_path_style: None,
            env_prefix: "X_",
            timeout: DEFAULT_S3_TIMEOUT,
        };
        let separate = separation_problems(
            &store("https://s3.one.example", Some("AK1")),
            &store("https://s3.two.example", Some("AK2")),
        );
        assert!(separate.is_empty(), "{separate:?}");
        let same_key = separation_problems(
            &store("https://s3.one.example", Some("AK1")),
            &store("https://s3.two.example", Some("AK1")),
        );
        assert_eq!(same_key.len(), 1);
        assert!(same_key[0].contains("same access key"));
        let default_chain = separation_problems(
            &store("https://s3.one.example", None),
            &store("https://s3.two.example", None),
        );
        assert!(default_chain[0].contains("default AWS credential chain"));
        let same_endpoint = separation_problems(
            &store("https://s3.one.example", Some("AK1")),
            &store("https://s3.one.example/", Some("AK2")),
        );
        assert_eq!(same_endpoint.len(), 1);
        assert!(same_endpoint[0].contains("same endpoint"));
    }

    #[test]
    fn credentials_come_in_pairs() {
        let secret = SecretString::from("s".to_owned());
        let id = "AK".to_owned();
        assert!(
            credentials(Some(&id), None, "PAWFILE_S3_")
                .unwrap_err()
                .contains("PAWFILE_S3_SECRET_ACCESS_KEY")
        );
        assert!(credentials(None, Some(&secret), "X_").is_err());
        assert!(credentials(None, None, "X_").unwrap().is_none());
        assert!(credentials(Some(&id), Some(&secret), "X_").unwrap().is_some());
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
