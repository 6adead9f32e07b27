//! What every request handler, server function and background task can reach ([`AppState`]), and the
//! settings the running server consults ([`RuntimeConfig`]).

pub use pawfile::backup::schedule::DrillSetup;

use pawfile::{
    auth::PasswordHasher, backup::Backups, config::BackupSchedule, net::TrustedProxies, storage::ObjectStore,
};
use sqlx::PgPool;
use std::{sync::Arc, time::Duration};
use url::Url;

/// Settings the running server consults on requests.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The URL people reach Pawfile at.
    pub public_url: Url,
    /// Proxies whose forwarded headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// A session ends after this long without a request.
    pub session_idle_timeout: Duration,
    /// A session ends this long after sign-in.
    pub session_absolute_timeout: Duration,
    /// How the server treats connections: slow clients, how many at once, shutting down.
    pub connections: ConnectionLimits,
    /// How much one user may do per hour.
    pub limits: UsageLimits,
    /// The text-search configuration records are searched with.
    pub search_language: String,
    /// Storage per owner and per clinic.
    pub quotas: pawfile::documents::quota::Quotas,
    /// Largest accepted upload, in bytes.
    pub max_upload_bytes: u64,
    /// Accepted document types (sniffed MIME types).
    pub accepted_types: Vec<String>,
    /// Whether location metadata is removed from photos at upload.
    pub strip_photo_location: bool,
    /// How long mail written as files (no SMTP server) is kept.
    pub mail_file_retention: Duration,
    /// How long documents stay in the trash.
    pub trash_retention: Duration,
    /// How often the bucket is compared with the database.
    pub reconcile_interval: Duration,
    /// How long an unfinished upload may sit before reconcile removes its pieces.
    pub stale_upload_after: Duration,
    /// Every document is re-hashed at least once per this period.
    pub scrub_period: Duration,
    /// Whether the backup store is an embedded endpoint on this machine (so not a separate backup).
    pub backups_on_this_machine: bool,
    /// When the server backs up by itself.
    pub backup_schedule: BackupSchedule,
    /// Whether the backup key was generated into the data folder (beside the data it protects).
    pub backup_key_beside_data: bool,
    /// Why the backup store is not separate from the documents store (NR-9), if it is not.
    pub backup_separation: Vec<String>,
    /// The weekly restore drill: the key it decrypts with and its scratch database, when configured
    /// (or the embedded default, whose key sits in the data folder).
    pub backup_drill: Option<DrillSetup>,
    /// Whether admins are told by mail of failed backups and drills, stale backups and flagged
    /// documents (checked every ten minutes; off in tests that do not test it).
    pub admin_alerts: bool,
    /// Roles that must sign in with a second factor.
    pub two_factor_required_for: Vec<pawfile::domain::Role>,
    /// How often the periodic background tasks run (tests shorten them).
    pub intervals: TaskIntervals,
}

/// How often the periodic background tasks run on each replica (each run is done by one replica at a
/// time, under an advisory lock).
#[derive(Debug, Clone, Copy)]
pub struct TaskIntervals {
    /// Clearing expired sessions, stale counters and old links.
    pub housekeeping: Duration,
    /// Purging the trash and due account deletions.
    pub purge: Duration,
    /// Looking for thumbnails to make without a wake-up call (another replica's uploads).
    pub thumbnails: Duration,
    /// Re-reading a share of the backup objects (see `pawfile::backup::reread`).
    pub backup_reread: Duration,
    /// Recording the day's storage figures for the dashboard.
    pub usage: Duration,
}

impl Default for TaskIntervals {
    fn default() -> Self {
        Self {
            housekeeping: Duration::from_secs(10 * 60),
            purge: Duration::from_secs(60 * 60),
            thumbnails: Duration::from_secs(60),
            backup_reread: Duration::from_secs(24 * 60 * 60),
            usage: Duration::from_secs(60 * 60),
        }
    }
}

impl RuntimeConfig {
    /// Whether `user` must have a second factor on and has not: then they may only set it up.
    pub fn needs_two_factor_setup(&self, user: &pawfile::domain::SessionUser) -> bool {
        !user.two_factor
            && self
                .two_factor_required_for
                .iter()
                .any(|role| user.has_role(*role))
    }
}

/// How much one user may do per hour, counted in PostgreSQL so the limits hold across replicas.
#[derive(Debug, Clone, Copy)]
pub struct UsageLimits {
    /// Bytes uploaded per hour.
    pub upload_bytes_per_hour: u64,
    /// Bytes downloaded per hour (files and thumbnails).
    pub download_bytes_per_hour: u64,
    /// Zip exports per hour.
    pub exports_per_hour: u32,
    /// Uploads one user runs at once.
    pub concurrent_uploads: usize,
    /// Sign-in failures, registrations, password changes and claim attempts.
    pub accounts: pawfile::rate_limit::AccountLimits,
}

impl Default for UsageLimits {
    fn default() -> Self {
        Self {
            upload_bytes_per_hour: 10 << 30,
            download_bytes_per_hour: 50 << 30,
            exports_per_hour: 20,
            concurrent_uploads: 10,
            accounts: pawfile::rate_limit::AccountLimits::DEFAULT,
        }
    }
}

impl UsageLimits {
    fn per_hour(max: u64) -> pawfile::rate_limit::Limit {
        pawfile::rate_limit::Limit {
            max_hits: i64::try_from(max).unwrap_or(i64::MAX),
            window: Duration::from_secs(60 * 60),
        }
    }

    /// Uploaded bytes, as a rate limit.
    pub fn uploads(&self) -> pawfile::rate_limit::Limit {
        Self::per_hour(self.upload_bytes_per_hour)
    }

    /// Downloaded bytes, as a rate limit.
    pub fn downloads(&self) -> pawfile::rate_limit::Limit {
        Self::per_hour(self.download_bytes_per_hour)
    }

    /// Exports, as a rate limit.
    pub fn exports(&self) -> pawfile::rate_limit::Limit {
        Self::per_hour(u64::from(self.exports_per_hour))
    }
}

/// How the server treats its clients' connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A request's headers must arrive within this time.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight is closed after this long.
    pub keep_alive_timeout: Duration,
    /// A request body that sends nothing for this long ends with an error (a small body: that does not
    /// arrive whole within it), and a client that reads nothing for this long is disconnected.
    pub body_idle_timeout: Duration,
    /// Most connections served at once.
    pub max_connections: usize,
    /// Most connections open at once from one client address.
    pub max_per_address: usize,
    /// How long requests in flight may take to finish at shutdown.
    pub shutdown_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(5),
            body_idle_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_per_address: 256,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// What every request handler and server function can reach. Cheap to clone; holds no per-user state,
/// so any replica can serve any request.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Postgres.
    pub db: PgPool,
    /// Password hashing, bounded in concurrency.
    pub hasher: PasswordHasher,
    /// The documents bucket.
    pub documents: ObjectStore,
    /// The backup bucket (separate credentials, maybe another endpoint).
    pub backups: ObjectStore,
    /// Backup runs into that bucket.
    pub backup: Backups,
    /// Request-time settings.
    pub config: Arc<RuntimeConfig>,
    /// Wake-up calls for the background tasks of this process.
    pub tasks: Arc<TaskSignals>,
    /// How queued mail is sent (by the background task; requests only queue it).
    pub mailer: Arc<pawfile::mail::Mailer>,
    /// This process's metrics (the stores above count their S3 calls into it).
    pub metrics: Arc<pawfile::metrics::Metrics>,
}

/// Ways to wake this process's background tasks early (they also run on their own schedule, and on
/// whichever replica takes the lock).
#[derive(Debug, Default)]
pub struct TaskSignals {
    /// New images are waiting for thumbnails.
    pub thumbnails: tokio::sync::Notify,
    /// Mail was queued.
    pub mail: tokio::sync::Notify,
}
