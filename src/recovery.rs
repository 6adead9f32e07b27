//! The whole restore: a snapshot's objects and rows (`backup::restore`), then the accounts deleted since
//! the snapshot deleted again (`deletion`), so a restore never brings back an account its owner had
//! deleted.

use crate::{
    backup::restore::{self, Progress, RestoreReport, Source},
    error::Result,
    storage::ObjectStore,
};
use sqlx::PgPool;

/// Restores `source`'s snapshot into the empty database behind `pool` and the empty documents bucket
/// `documents`, then deletes again, with their uploads, the accounts whose deletion markers in `backups`
/// are signed by a trusted key (the others are refused and named in the report).
pub async fn restore(
    pool: &PgPool,
    documents: &ObjectStore,
    backups: &ObjectStore,
    source: Source<'_>,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    let mut report = restore::restore_snapshot(pool, documents, backups, source, progress).await?;
    let reapplied = crate::deletion::reapply_after_restore(pool, documents, backups, source.keys).await?;
    report.deletions_reapplied = reapplied.deleted;
    report.refused_markers = reapplied.refused;
    Ok(report)
}
