//! What every request handler, server function and background task can reach ([`AppState`]), and the
//! settings the running server consults ([`RuntimeConfig`]).

pub use pawfile::backup::schedule::DrillSetup;

use pawfile::{
    auth::PasswordHasher,
    backup::Backups,
    config::{
        BackupSchedule, ConnectionSettings, DocumentSettings, LimitSettings, RecordSettings, SessionSettings,
    },
    net::TrustedProxies,
    storage::ObjectStore,
};
use sqlx::PgPool;
use std::{sync::Arc, time::Duration};
use url::Url;

/// What the running server consults on requests: the settings groups as they were parsed (each said
/// once, in `pawfile::config`), and what start-up found out.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The URL people reach Pawfile at.
    pub public_url: Url,
    /// Proxies whose forwarded headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// How the server treats connections: slow clients, how many at once, shutting down.
    pub connections: ConnectionSettings,
    /// How long a sign-in lasts, and who needs a second factor.
    pub sessions: SessionSettings,
    /// How much one user may do per hour.
    pub limits: LimitSettings,
    /// What the document store accepts and keeps, and how often it checks itself.
    pub documents: DocumentSettings,
    /// How records are searched (the language, as start-up checked it).
    pub records: RecordSettings,
    /// How long mail written as files (no SMTP server) is kept.
    pub mail_file_retention: Duration,
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
