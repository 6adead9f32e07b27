//! Prune: after a successful run, under the lock, drop the snapshots the retention policy does not keep
//! (manifest first, then the objects no kept snapshot references). With S3 Object Lock, an object still
//! under retention cannot be deleted: it stays catalogued and the next prune tries again.

use super::{
    Backups, RunLock,
    retention::{self, Snapshot},
};
use crate::{
    audit::{self, Action},
    error::Result,
    storage::StorageError,
};

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Snapshots removed.
    pub snapshots: usize,
    /// Stored objects deleted.
    pub objects: usize,
    /// Objects the bucket refused to delete (Object Lock, or a key without delete rights).
    pub locked: usize,
}

impl Backups {
    /// Prunes now (`pawfile backup prune`); `None` while a backup or another prune runs.
    pub async fn prune(&self) -> Result<Option<PruneReport>> {
        let Some(mut lock) = RunLock::try_take(&self.pool).await? else {
            return Ok(None);
        };
        let result = self.prune_locked(&mut lock).await;
        lock.release().await;
        result.map(Some)
    }

    pub(crate) async fn prune_locked(&self, lock: &mut RunLock) -> Result<PruneReport> {
        self.settle_dead_runs(lock).await?;
        let complete = sqlx::query!(
            "select id, started_at, manifest_object from backup_runs
             where status = 'complete' and pruned_at is null"
        )
        .fetch_all(&self.pool)
        .await?;
        let snapshots: Vec<Snapshot> = complete
            .iter()
            .map(|row| Snapshot {
                id: row.id,
                at: row.started_at,
            })
            .collect();
        let kept = retention::keep(
            &snapshots,
            self.policy.retention,
            super::drill::newest_passed(&self.pool).await?,
        );
        let mut report = PruneReport::default();
        let dropped: Vec<_> = complete
            .into_iter()
            .filter(|run| !kept.contains(&run.id))
            .collect();
        for run in dropped {
            if let Some(manifest) = &run.manifest_object {
                match self.store.delete(manifest).await {
                    Ok(()) | Err(StorageError::NotFound) => {}
                    Err(StorageError::AccessDenied { .. }) => {
                        report.locked += 1;
                        continue;
                    }
                    Err(err) => return Err(err.into()),
                }
            }
            sqlx::query!("update backup_runs set pruned_at = now() where id = $1", run.id)
                .execute(&self.pool)
                .await?;
            report.snapshots += 1;
        }
        // Only kept snapshots protect objects; references of pruned and unfinished runs go.
        sqlx::query!(
            "delete from backup_snapshot_objects s using backup_runs r
             where r.id = s.run_id and (r.pruned_at is not null or r.status <> 'complete')"
        )
        .execute(&self.pool)
        .await?;
        let orphans = sqlx::query_scalar!(
            "select name from backup_objects o
             where not exists (select 1 from backup_snapshot_objects s where s.object_name = o.name)
             order by name"
        )
        .fetch_all(&self.pool)
        .await?;
        for name in orphans {
            match self.store.delete(&name).await {
                Ok(()) | Err(StorageError::NotFound) => {}
                Err(StorageError::AccessDenied { .. }) => {
                    report.locked += 1;
                    continue;
                }
                Err(err) => return Err(err.into()),
            }
            sqlx::query!("delete from backup_objects where name = $1", name)
                .execute(&self.pool)
                .await?;
            report.objects += 1;
        }
        if report.snapshots > 0 || report.objects > 0 {
            audit::record(
                &self.pool,
                audit::Event::new(Action::PruneBackups, None, None).detail(serde_json::json!({
                    "snapshots": report.snapshots,
                    "objects": report.objects,
                    "locked": report.locked,
                })),
            )
            .await?;
        }
        if report.locked > 0 {
            tracing::warn!(
                locked = report.locked,
                "some backup objects could not be deleted yet (Object Lock or no delete rights); prune will try again"
            );
        }
        Ok(report)
    }
}
