//! The gauges read at each scrape: the pool, readiness, and the backup and integrity state PostgreSQL
//! holds.

use super::{Metrics, PoolLabels};
use crate::{documents::reconcile, error::Result, health, storage::ObjectStore};
use sqlx::PgPool;
use std::time::Duration;

impl Metrics {
    /// Refreshes the gauges read from PostgreSQL and the pool, then encodes every series. A gauge
    /// whose query fails keeps its last value (the failure shows in `pawfile_ready`).
    pub async fn render(&self, pool: &PgPool, documents: &ObjectStore, scrub_period: Duration) -> String {
        let idle = pool.num_idle() as i64;
        let size = i64::from(pool.size());
        self.pool_connections
            .get_or_create(&PoolLabels { state: "idle" })
            .set(idle);
        self.pool_connections
            .get_or_create(&PoolLabels { state: "in_use" })
            .set((size - idle).max(0));
        self.pool_max.set(i64::from(pool.options().get_max_connections()));
        let ready = health::readiness_problems(pool, documents).await.is_empty();
        self.ready.set(i64::from(ready));
        if let Err(err) = self.read_state(pool, scrub_period).await {
            tracing::warn!(error = %err, "metrics: cannot read the backup and integrity state");
        }
        self.encode()
    }

    /// The gauges PostgreSQL holds: the backups and drills in one statement, the integrity status in
    /// another.
    async fn read_state(&self, pool: &PgPool, scrub_period: Duration) -> Result<()> {
        let backups = sqlx::query!(
            r#"select complete.at as "complete_at?", complete.took as "complete_took?",
                      complete.bytes as "complete_bytes?", latest.failed as "latest_failed?",
                      drill.at as "drill_at?", drill.passed as "drill_passed?"
               from (select 1) as one
               left join lateral (
                   select extract(epoch from started_at)::float8 as at,
                          extract(epoch from finished_at - started_at)::float8 as took,
                          snapshot_bytes as bytes
                   from backup_runs where status = 'complete' order by started_at desc limit 1
               ) as complete on true
               left join lateral (
                   select status in ('failed', 'interrupted') as failed
                   from backup_runs where status <> 'running' order by started_at desc limit 1
               ) as latest on true
               left join lateral (
                   select extract(epoch from at)::float8 as at, passed
                   from backup_drills order by at desc limit 1
               ) as drill on true"#
        )
        .fetch_one(pool)
        .await?;
        self.backup_last_success.set(backups.complete_at.unwrap_or(0.0));
        self.backup_last_duration
            .set(backups.complete_took.unwrap_or(0.0));
        self.backup_last_bytes.set(backups.complete_bytes.unwrap_or(0));
        self.backup_last_run_failed
            .set(i64::from(backups.latest_failed.unwrap_or(false)));
        self.drill_last_at.set(backups.drill_at.unwrap_or(0.0));
        // No drill yet is not a failed drill: 1 keeps "== 0" alerts quiet until one has run.
        self.drill_last_success
            .set(i64::from(backups.drill_passed.unwrap_or(true)));
        let integrity = reconcile::integrity_status(pool, scrub_period).await?;
        self.flagged_documents.set(integrity.flagged);
        self.scrub_coverage.set(if integrity.documents == 0 {
            1.0
        } else {
            integrity.rehashed as f64 / integrity.documents as f64
        });
        self.last_reconcile.set(
            integrity
                .last_reconcile
                .map_or(0.0, |at| at.unix_timestamp_nanos() as f64 / 1e9),
        );
        Ok(())
    }
}
