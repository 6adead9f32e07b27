//! One backup run: take the lock, settle runs that died, check the bucket against the catalogue, dump
//! the tables in one snapshot transaction, copy every file (GET with the documents credentials →
//! encrypt → PUT with the backup credentials), write the manifest last, then commit the run complete.

use super::{
    Backups, DATA_PREFIX, MANIFEST_PREFIX, RunLock, StartedBy, random_name,
    signing::{MANIFEST_MAX_BYTES, read_signed},
};
use crate::{
    audit::{self, Action},
    db::ExclusiveTask,
    error::{Error, Result},
    storage::StorageError,
};
use bytes::Bytes;
use std::{collections::HashMap, time::Instant};
use time::OffsetDateTime;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// What a finished run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// The run (snapshot) id.
    pub id: Uuid,
    /// Objects written.
    pub objects_copied: u32,
    /// Catalogued objects referenced again.
    pub objects_reused: u32,
    /// Ciphertext bytes written.
    pub bytes_copied: u64,
    /// Files in the snapshot.
    pub files: u32,
    /// Tables in the snapshot.
    pub tables: u32,
    /// Snapshots prune removed after the run.
    pub pruned: usize,
}

/// A run that has the lock and its row; the work goes on in the background.
#[derive(Debug)]
pub struct Started {
    /// The run's id.
    pub id: Uuid,
    /// The work; its error is recorded in the run's row too.
    pub handle: JoinHandle<Result<RunReport>>,
}

impl Backups {
    /// Starts a run unless one is running somewhere: `Ok(None)` then. The lock is taken and the run's
    /// row written before this returns, so the caller can answer with the run's id at once.
    pub async fn start(&self, by: StartedBy) -> Result<Option<Started>> {
        self.start_unless_done_since(by, None).await
    }

    /// Starts a backup unless one is running, or (with `since`) one started at or after `since` has
    /// completed: a schedule's slot is backed up once, whichever replica comes first, however late the
    /// others arrive. The check is made under the run lock.
    pub async fn start_unless_done_since(
        &self,
        by: StartedBy,
        since: Option<OffsetDateTime>,
    ) -> Result<Option<Started>> {
        if let Some(refusal) = self.policy.refusal() {
            return Err(Error::Conflict(refusal));
        }
        let Some(mut lock) = RunLock::try_take(&self.pool).await? else {
            return Ok(None);
        };
        if self.shutdown.is_cancelled() {
            lock.release().await;
            return Err(Error::Conflict("the server is shutting down".to_owned()));
        }
        self.settle_dead_runs(&mut lock).await?;
        if let Some(since) = since {
            let done = sqlx::query_scalar!(
                r#"select exists (select 1 from backup_runs where status = 'complete' and started_at >= $1) as "done!""#,
                since
            )
            .fetch_one(&mut *lock.conn())
            .await?;
            if done {
                lock.release().await;
                return Ok(None);
            }
        }
        let id = Uuid::now_v7();
        let mut tx = self.pool.begin().await?;
        sqlx::query!(
            "insert into backup_runs (id, trigger, triggered_by, status, recipients) values ($1, $2, $3, 'running', $4)",
            id,
            by.trigger.as_str(),
            by.user.map(|user| user.0),
            self.policy.recipients.fingerprint()
        )
        .execute(&mut *tx)
        .await?;
        audit::record(
            &mut *tx,
            audit::Event::new(Action::StartBackup, by.user, by.client_addr)
                .target("backup", id)
                .detail(serde_json::json!({ "trigger": by.trigger.as_str() })),
        )
        .await?;
        tx.commit().await?;
        let backups = self.clone();
        let handle = self.runs.spawn(async move { backups.execute(lock, id).await });
        Ok(Some(Started { id, handle }))
    }

    /// Runs a backup to the end: `Ok(None)` when another is running.
    pub async fn run(&self, by: StartedBy) -> Result<Option<RunReport>> {
        self.run_unless_done_since(by, None).await
    }

    /// Runs a backup to the end unless one is running or one started at or after `since` completed
    /// (see [`Backups::start_unless_done_since`]).
    pub async fn run_unless_done_since(
        &self,
        by: StartedBy,
        since: Option<OffsetDateTime>,
    ) -> Result<Option<RunReport>> {
        let Some(started) = self.start_unless_done_since(by, since).await? else {
            return Ok(None);
        };
        match started.handle.await {
            Ok(report) => report.map(Some),
            Err(err) => Err(anyhow::anyhow!("the backup task failed: {err}").into()),
        }
    }

    /// Under the lock: runs still marked running belong to processes that died. One whose manifest
    /// was stored is complete (it died between the manifest and its row); the others are interrupted and
    /// their open multipart uploads aborted.
    pub(crate) async fn settle_dead_runs(&self, lock: &mut RunLock) -> Result<()> {
        let dead = sqlx::query!("select id, manifest_object from backup_runs where status = 'running'")
            .fetch_all(&mut *lock.conn())
            .await?;
        let someone_died = !dead.is_empty();
        for run in dead {
            // Stored, and signed by us: an object an attacker put at that name does not complete it.
            let manifest_stored = match &run.manifest_object {
                Some(name) => {
                    match read_signed(&self.store, &self.policy.keys, name, MANIFEST_MAX_BYTES).await {
                        Ok(read) => read.is_ok(),
                        Err(StorageError::NotFound) => false,
                        Err(err) => return Err(err.into()),
                    }
                }
                None => false,
            };
            if manifest_stored {
                sqlx::query!(
                    "update backup_runs set status = 'complete', finished_at = coalesce(finished_at, now()) where id = $1",
                    run.id
                )
                .execute(&mut *lock.conn())
                .await?;
                tracing::info!(run = %run.id, "settled a backup whose manifest was stored as complete");
            } else {
                sqlx::query!(
                    "update backup_runs set status = 'interrupted', finished_at = now(),
                            error = 'the process running it stopped before it finished'
                     where id = $1",
                    run.id
                )
                .execute(&mut *lock.conn())
                .await?;
                tracing::warn!(run = %run.id, "marked a backup interrupted: the process running it stopped");
            }
        }
        // Aborting what dead runs left is tidying up: a store that cannot be reached now is the run's
        // problem to report (it fails on its first request, with the error recorded), not a reason to
        // refuse to start it. What is left is aborted by the next run.
        let uploads = sqlx::query!("select run_id, object_name, upload_id from backup_uploads")
            .fetch_all(&mut *lock.conn())
            .await?;
        for upload in uploads {
            match self
                .store
                .abort_upload(&upload.object_name, &upload.upload_id)
                .await
            {
                Ok(()) | Err(StorageError::NotFound) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "cannot abort a dead backup run's upload yet");
                    continue;
                }
            }
            sqlx::query!(
                "delete from backup_uploads where run_id = $1 and object_name = $2",
                upload.run_id,
                upload.object_name
            )
            .execute(&mut *lock.conn())
            .await?;
        }
        // Holding the lock, no run is alive: any multipart upload in the backup bucket is a dead run's,
        // including one a crash left before its id could be recorded (stores that list them). Looked
        // for only after a run died: nothing else leaves one.
        if !someone_died {
            return Ok(());
        }
        match self.store.abort_stale_uploads(OffsetDateTime::now_utc()).await {
            Ok(0) => {}
            Ok(aborted) => tracing::info!(aborted, "aborted multipart uploads that dead backup runs left"),
            Err(err) => tracing::warn!(error = %err, "cannot list the backup bucket's multipart uploads"),
        }
        Ok(())
    }

    /// The run itself, holding the lock; records how it ended.
    async fn execute(&self, mut lock: RunLock, id: Uuid) -> Result<RunReport> {
        let started = Instant::now();
        let outcome = tokio::select! {
            outcome = self.back_up(&mut lock, id) => outcome.map(Some),
            () = self.shutdown.cancelled() => Ok(None),
        };
        let result = match outcome {
            Ok(Some(mut report)) => {
                if self.policy.prune {
                    match self.prune_locked(&mut lock).await {
                        Ok(pruned) => report.pruned = pruned.snapshots,
                        Err(err) => {
                            tracing::warn!(error = %err, "pruning old backups failed; will retry after the next run");
                        }
                    }
                }
                tracing::info!(run = %id, copied = report.objects_copied, reused = report.objects_reused,
                    bytes = report.bytes_copied, seconds = started.elapsed().as_secs_f64(), "backup complete");
                Ok(report)
            }
            Ok(None) => {
                self.finish_run(id, "cancelled", Some("the server shut down while it ran"))
                    .await;
                Err(Error::Conflict(
                    "the backup was cancelled: the server is shutting down".to_owned(),
                ))
            }
            Err(err) => {
                tracing::error!(run = %id, error = %err, "backup failed");
                self.finish_run(id, "failed", Some(&err.to_string())).await;
                Err(err)
            }
        };
        // Uploads the run had open were aborted by their writers; forget them.
        let _ = sqlx::query!("delete from backup_uploads where run_id = $1", id)
            .execute(&self.pool)
            .await;
        lock.release().await;
        result
    }

    async fn finish_run(&self, id: Uuid, status: &str, error: Option<&str>) {
        if let Err(err) = sqlx::query!(
            "update backup_runs set status = $2, finished_at = now(), error = $3 where id = $1 and status = 'running'",
            id,
            status,
            error
        )
        .execute(&self.pool)
        .await
        {
            tracing::error!(run = %id, error = %err, "cannot record how the backup ended");
        }
    }

    async fn back_up(&self, lock: &mut RunLock, id: Uuid) -> Result<RunReport> {
        let started_at = OffsetDateTime::now_utc();
        self.check_catalogue().await?;
        // Purge may not delete an object the snapshot lists until the files are copied.
        sqlx::query("select pg_advisory_lock($1)")
            .bind(ExclusiveTask::PurgeTrash as i64)
            .execute(&mut *lock.conn())
            .await?;
        let result = self.copy_snapshot(id, started_at).await;
        sqlx::query("select pg_advisory_unlock($1)")
            .bind(ExclusiveTask::PurgeTrash as i64)
            .execute(&mut *lock.conn())
            .await?;
        let (manifest, mut report) = result?;
        let name = random_name(MANIFEST_PREFIX);
        sqlx::query!(
            "update backup_runs set manifest_object = $2 where id = $1",
            id,
            name
        )
        .execute(&self.pool)
        .await?;
        // Encrypted, then signed over the ciphertext and the name (see `signing`): whoever reads it back
        // checks the signature before anything decrypts or parses it.
        let json = serde_json::to_vec(&manifest).map_err(anyhow::Error::from)?;
        let mut sealer = self.policy.recipients.sealer().map_err(anyhow::Error::from)?;
        let mut ciphertext = sealer
            .push(Bytes::from(json))
            .map_err(anyhow::Error::from)?
            .to_vec();
        ciphertext.extend_from_slice(&sealer.finish().map_err(anyhow::Error::from)?);
        let signed = self
            .policy
            .keys
            .seal(&name, &ciphertext)
            .map_err(Error::Conflict)?;
        self.store
            .put_bytes(&name, Bytes::from(signed), "application/octet-stream")
            .await?;
        let snapshot_bytes: u64 = manifest.stored().iter().map(|stored| stored.size).sum();
        sqlx::query!(
            "update backup_runs set status = 'complete', finished_at = now(), snapshot_bytes = $2 where id = $1",
            id,
            snapshot_bytes as i64
        )
        .execute(&self.pool)
        .await?;
        report.id = id;
        Ok(report)
    }

    /// Lists the backup bucket once and compares it with the catalogue: an object that is gone or has
    /// the wrong size (or that the re-read found altered) is marked missing, so the next snapshot that
    /// needs it uploads it again. Every
    /// manifest's signature is checked too; one that fails is recorded as refused (see `refusals`).
    async fn check_catalogue(&self) -> Result<()> {
        super::check_manifests(&self.pool, &self.store, &self.policy.keys).await?;
        let listed: HashMap<String, u64> = self
            .store
            .list(DATA_PREFIX)
            .await?
            .into_iter()
            .map(|object| (object.key, object.size))
            .collect();
        let catalogued = sqlx::query!(
            "select name, ciphertext_size, missing_since is not null as \"missing!\",
                    damage is not null as \"damaged!\"
               from backup_objects"
        )
        .fetch_all(&self.pool)
        .await?;
        let mut missing = Vec::new();
        let mut found = Vec::new();
        for row in catalogued {
            // An object the re-read found altered is there, of the right size, and still not to be
            // reused: it stays missing until a backup stores it again.
            let present = listed.get(&row.name) == Some(&(row.ciphertext_size as u64)) && !row.damaged;
            if !present && !row.missing {
                missing.push(row.name);
            } else if present && row.missing {
                found.push(row.name);
            }
        }
        if !missing.is_empty() {
            tracing::warn!(objects = ?missing, "catalogued backup objects are missing from the backup bucket; they will be uploaded again");
        }
        sqlx::query!(
            "update backup_objects set missing_since = now() where name = any($1)",
            &missing
        )
        .execute(&self.pool)
        .await?;
        sqlx::query!(
            "update backup_objects set missing_since = null, damage = null where name = any($1)",
            &found
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
