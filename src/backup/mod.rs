//! Backups (NR-8, NR-9): the database and every file, encrypted to age recipients before they leave the
//! server, into a separate private bucket with its own credentials; incremental, verified, restorable.
//!
//! Layout of the backup bucket: `data/<random>` holds one encrypted object each (a table dump or a
//! file), stored once and referenced by every snapshot that holds the same plaintext for the same
//! recipients; `manifests/<random>` holds one encrypted [`manifest::Manifest`] per snapshot, written last.
//! The catalogue (tables `backup_runs`, `backup_objects`, `backup_snapshot_objects`) lets the server
//! deduplicate, prune and verify presence without the private key; it is not part of a dump and a
//! restore rebuilds it from the manifests.
//!
//! One backup, prune, drill or catalogue rebuild runs at a time across all replicas: a session advisory
//! lock held on a dedicated connection for the whole run.

mod copy;
pub mod crypto;
pub mod drill;
mod dump;
pub mod manifest;
pub mod markers;
mod prune;
pub mod refusals;
pub mod reread;
pub mod restore;
pub mod retention;
mod run;
pub mod schedule;
pub mod signing;
pub mod verify;

pub use crypto::{Identities, Recipients};
pub use prune::PruneReport;
pub use retention::Retention;
pub use run::{RunReport, Started};
pub use signing::{BackupKeys, SigningKey, Unauthentic, VerifyingKey};

use crate::{domain::UserId, error::Result, storage::ObjectStore};
use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgConnection, PgPool};
use std::{collections::HashMap, sync::Arc, time::Duration};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The tables a backup dumps, in the order a restore loads them (each after those it references).
pub const TABLES: &[&str] = &[
    "clinics",
    "users",
    "totp_recovery_codes",
    "pets",
    "pet_clinic_access",
    "pet_claim_codes",
    "medical_records",
    "medical_record_revisions",
    "documents",
    "audit_events",
    "daily_usage",
];

/// Tables left out of a backup, and why: sessions (everyone signs in again after a restore), rate-limit
/// counters, upload announcements and audit view marks (short-lived), the mail queue, pending sign-ups,
/// reset links and invitations (short-lived, and they hold tokens), the alerts already mailed, when
/// background tasks last ran, the migrations table (the manifest records the migrations), and the
/// backup catalogue itself (rebuilt from the manifests).
pub const EXCLUDED: &[&str] = &[
    "tower_sessions.session",
    "rate_limit_hits",
    "upload_intents",
    "upload_slots",
    "audit_view_marks",
    "mail_outbox",
    "pending_registrations",
    "password_resets",
    "staff_invitations",
    "admin_alerts",
    "background_runs",
    "_sqlx_migrations",
    "backup_runs",
    "backup_objects",
    "backup_snapshot_objects",
    "backup_uploads",
    "backup_drills",
    "backup_refused_objects",
];

/// Prefix of stored objects in the backup bucket.
pub const DATA_PREFIX: &str = "data/";
/// Prefix of manifests in the backup bucket.
pub const MANIFEST_PREFIX: &str = "manifests/";

/// Files a backup copies, or a restore writes, at once: each is mostly waiting on the two stores, and
/// each holds at most a part or two of memory.
const FILES_AT_ONCE: usize = 8;

/// Advisory lock key for backup, prune, drill and catalogue rebuild.
const BACKUP_LOCK: i64 = 0x7061_7766_0010;

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The daily schedule.
    Schedule,
    /// Start-up, because the last complete backup was older than a day.
    Startup,
    /// An admin, from the page or the API.
    Admin,
    /// The command line.
    Cli,
}

impl Trigger {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Startup => "startup",
            Trigger::Admin => "admin",
            Trigger::Cli => "cli",
        }
    }
}

/// Settings of the backup runs.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Who backups are encrypted to; empty only when unencrypted backups are allowed.
    pub recipients: Recipients,
    /// Whether unencrypted backups were allowed explicitly.
    pub allow_unencrypted: bool,
    /// Which snapshots prune keeps.
    pub retention: Retention,
    /// Whether a successful run prunes (off in the hardened mode: the server's key cannot delete).
    pub prune: bool,
    /// Test-only: a pause after each stored object, so progress can be watched.
    pub pace: Option<Duration>,
    /// What manifests, drill reports and deletion markers are signed and checked with.
    pub keys: BackupKeys,
}

impl Policy {
    /// Why backups cannot run with these settings, if they cannot.
    pub fn refusal(&self) -> Option<String> {
        if self.recipients.is_unencrypted() && !self.allow_unencrypted {
            return Some(
                "backups need an age public key to encrypt to: set PAWFILE_BACKUP_RECIPIENTS (make a key pair with \
                 `pawfile backup keygen`), or PAWFILE_ALLOW_UNENCRYPTED_BACKUPS=true to store them unencrypted"
                    .to_owned(),
            );
        }
        self.keys.verifying_key().is_none().then(|| {
            "backups need a signing key: set PAWFILE_BACKUP_SIGNING_KEY (make one with `pawfile backup signing-keygen`)"
                .to_owned()
        })
    }
}

/// Everything a run needs: the database, the documents bucket (read), the backup bucket (write).
#[derive(Debug, Clone)]
pub struct Backups {
    pool: PgPool,
    documents: ObjectStore,
    store: ObjectStore,
    policy: Arc<Policy>,
    shutdown: CancellationToken,
    /// The runs started here (each a task of its own), so a shutdown can wait for them to record how
    /// they ended.
    runs: tokio_util::task::TaskTracker,
}

impl Backups {
    /// Backups of `pool` and `documents` into `store`. `shutdown` cancels a run in progress.
    pub fn new(
        pool: PgPool,
        documents: ObjectStore,
        store: ObjectStore,
        policy: Policy,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            pool,
            documents,
            store,
            policy: Arc::new(policy),
            shutdown,
            runs: tokio_util::task::TaskTracker::new(),
        }
    }

    /// The settings.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The backup bucket.
    pub fn store(&self) -> &ObjectStore {
        &self.store
    }

    /// The database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Cancels a run in progress (the server is shutting down): it is recorded as cancelled. No new run
    /// starts afterwards.
    pub fn cancel(&self) {
        self.shutdown.cancel();
    }

    /// Cancels a run in progress and waits until every run started here has recorded how it ended and
    /// released the lock (otherwise the process would exit with its row still `running`).
    pub async fn stop(&self) {
        self.shutdown.cancel();
        self.runs.close();
        self.runs.wait().await;
    }
}

/// The lock that makes a run the only one: a session advisory lock on a connection of its own (a
/// transaction held open for hours would die with `idle_in_transaction_session_timeout`). Released when
/// the connection closes, also when the process dies.
pub struct RunLock {
    conn: PgConnection,
}

impl std::fmt::Debug for RunLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunLock")
    }
}

impl RunLock {
    /// Takes the lock, or `None` when another process (or task) holds it.
    pub async fn try_take(pool: &PgPool) -> Result<Option<Self>> {
        let mut conn = pool.acquire().await?.detach();
        let taken: bool = sqlx::query_scalar!(r#"select pg_try_advisory_lock($1) as "taken!""#, BACKUP_LOCK)
            .fetch_one(&mut conn)
            .await?;
        if taken {
            Ok(Some(Self { conn }))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }

    /// The connection that holds the lock.
    fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// Releases the lock (closing its connection).
    pub async fn release(self) {
        let _ = self.conn.close().await;
    }
}

pub use crate::domain::{BackupRun as RunSummary, BackupStatus as RunStatus};

/// Runs, newest first (at most `limit`).
pub async fn list_runs(pool: &PgPool, limit: i64) -> Result<Vec<RunSummary>> {
    let rows = sqlx::query!(
        r#"select r.id, r.status, r.trigger, u.email as "email?", r.started_at, r.finished_at,
                  r.objects_done, r.objects_total, r.bytes_done, r.bytes_total, r.objects_copied,
                  r.objects_reused, r.bytes_copied, r.snapshot_bytes, r.recipients, r.pruned_at, r.error,
                  r.manifest_missing_since is not null as "manifest_missing!"
           from backup_runs r left join users u on u.id = r.triggered_by
           order by r.started_at desc, r.id desc limit $1"#,
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| RunSummary {
            id: row.id,
            status: RunStatus::parse(&row.status),
            trigger: row.trigger,
            triggered_by: row.email,
            started_at: row.started_at,
            finished_at: row.finished_at,
            objects_done: row.objects_done,
            objects_total: row.objects_total,
            bytes_done: row.bytes_done,
            bytes_total: row.bytes_total,
            objects_copied: row.objects_copied,
            objects_reused: row.objects_reused,
            bytes_copied: row.bytes_copied,
            snapshot_bytes: row.snapshot_bytes,
            recipients: row.recipients,
            pruned: row.pruned_at.is_some(),
            manifest_missing: row.manifest_missing,
            error: row.error,
        })
        .collect())
}

/// One run by id.
pub async fn find_run(pool: &PgPool, id: Uuid) -> Result<Option<RunSummary>> {
    // Few rows are ever kept; the list is cheap.
    Ok(list_runs(pool, 10_000)
        .await?
        .into_iter()
        .find(|run| run.id == id))
}

/// When the newest complete snapshot was taken, if there is one.
pub async fn last_complete(pool: &PgPool) -> Result<Option<OffsetDateTime>> {
    Ok(sqlx::query_scalar!(
        "select max(started_at) from backup_runs where status = 'complete' and pruned_at is null"
    )
    .fetch_one(pool)
    .await?)
}

/// What [`check_manifests`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestCheck {
    /// Manifests in the bucket.
    pub listed: usize,
    /// Complete, unpruned snapshots whose manifest is not in the bucket.
    pub missing: Vec<Uuid>,
    /// Manifests refused, each with why.
    pub refused: Vec<String>,
}

/// Lists the manifests in the backup bucket and checks each one's signature (recording refusals, see
/// [`refusals`]), and marks the complete snapshots whose manifest is gone (`manifest_missing_since`,
/// which the list and the Backups page show) or back. Runs with every backup, `backup list` and
/// `backup verify`, and the daily re-read; never on a page read.
pub async fn check_manifests(pool: &PgPool, store: &ObjectStore, keys: &BackupKeys) -> Result<ManifestCheck> {
    let names: Vec<String> = store
        .list(MANIFEST_PREFIX)
        .await?
        .into_iter()
        .map(|object| object.key)
        .collect();
    refusals::forget_gone(pool, MANIFEST_PREFIX, &names).await?;
    let mut check = ManifestCheck {
        listed: names.len(),
        ..ManifestCheck::default()
    };
    // One refused for its signature (it names a trusted key, so it was read whole: it could be large,
    // and anyone holding the bucket's credentials could have put it there to be read at every backup)
    // is not read again: no change of keys makes it right, and removing it clears it. One refused as
    // unsigned or signed by another key is judged again, from its first bytes, in case the trusted keys
    // changed.
    let bad_signature = Unauthentic::BadSignature.to_string();
    let refused_before: HashMap<String, String> = refusals::list(pool)
        .await?
        .into_iter()
        .map(|refusal| (refusal.name, refusal.reason))
        .collect();
    let mut believed_now = Vec::new();
    for name in &names {
        if let Some(why) = refused_before.get(name).filter(|why| **why == bad_signature) {
            check.refused.push(format!("{name}: {why}"));
            continue;
        }
        match signing::read_signed(store, keys, name, signing::MANIFEST_MAX_BYTES).await? {
            Err(why) => {
                tracing::warn!(manifest = %name, %why, "a manifest in the backup bucket is refused");
                refusals::record(pool, name, &why).await?;
                check.refused.push(format!("{name}: {why}"));
            }
            // Believed now (a key was added to the trusted ones): no longer refused.
            Ok(_) if refused_before.contains_key(name) => believed_now.push(name.clone()),
            Ok(_) => {}
        }
    }
    refusals::forget(pool, &believed_now).await?;
    check.missing = sqlx::query_scalar!(
        "update backup_runs set manifest_missing_since = coalesce(manifest_missing_since, now())
         where status = 'complete' and pruned_at is null and manifest_object <> all($1)
         returning id",
        &names
    )
    .fetch_all(pool)
    .await?;
    sqlx::query!(
        "update backup_runs set manifest_missing_since = null
         where manifest_missing_since is not null and manifest_object = any($1)",
        &names
    )
    .execute(pool)
    .await?;
    if !check.missing.is_empty() {
        tracing::error!(snapshots = ?check.missing, "complete snapshots whose manifest is gone from the backup bucket");
    }
    Ok(check)
}

/// A random object name under `prefix`.
fn random_name(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode(rand::random::<[u8; 16]>()))
}

/// Whom a run was started by, for the audit trail.
#[derive(Debug, Clone, Copy)]
pub struct StartedBy {
    /// What started it.
    pub trigger: Trigger,
    /// The admin, if one did.
    pub user: Option<UserId>,
    /// Their address.
    pub client_addr: Option<std::net::IpAddr>,
}
