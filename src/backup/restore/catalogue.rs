//! The catalogue a restored server starts with, rebuilt from every manifest in the backup bucket.

use super::{FoundManifest, refuse};
use crate::{backup::manifest::sha256_from_hex, error::Result};
use sqlx::PgPool;
use std::collections::HashSet;

/// Rebuilds the catalogue from `manifests`: each a complete snapshot, each stored object catalogued and
/// referenced, so prune protects what they need. Returns how many snapshots it knows.
pub async fn rebuild_catalogue(pool: &PgPool, manifests: &[FoundManifest]) -> Result<usize> {
    let mut tx = pool.begin().await?;
    let mut known = HashSet::new();
    for found in manifests {
        let manifest = &found.manifest;
        let stored = manifest.stored();
        let snapshot_bytes: u64 = stored.iter().map(|stored| stored.size).sum();
        sqlx::query!(
            "insert into backup_runs (id, trigger, status, recipients, started_at, finished_at, objects_total,
                                      objects_done, manifest_object, snapshot_bytes)
             values ($1, 'restored', 'complete', $2, $3, $4, $5, $5, $6, $7)
             on conflict (id) do update set manifest_object = excluded.manifest_object, status = 'complete',
                 pruned_at = null",
            manifest.snapshot,
            manifest.recipients,
            manifest.started_at,
            manifest.taken_at,
            manifest.objects.len() as i32,
            found.name,
            snapshot_bytes as i64
        )
        .execute(&mut *tx)
        .await?;
        for stored in stored {
            let (Some(sha256), Some(ciphertext_sha256)) = (
                sha256_from_hex(&stored.sha256),
                sha256_from_hex(&stored.ciphertext_sha256),
            ) else {
                return Err(refuse(format!(
                    "the manifest {} holds a malformed checksum",
                    found.name
                )));
            };
            sqlx::query!(
                "insert into backup_objects (name, plaintext_sha256, plaintext_size, recipients, ciphertext_size,
                                             ciphertext_sha256)
                 values ($1, $2, $3, $4, $5, $6) on conflict do nothing",
                stored.object,
                &sha256[..],
                stored.size as i64,
                manifest.recipients,
                stored.ciphertext_size as i64,
                &ciphertext_sha256[..]
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query!(
                "insert into backup_snapshot_objects (run_id, object_name) values ($1, $2) on conflict do nothing",
                manifest.snapshot,
                stored.object
            )
            .execute(&mut *tx)
            .await?;
        }
        known.insert(manifest.snapshot);
    }
    tx.commit().await?;
    Ok(known.len())
}
