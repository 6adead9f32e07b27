//! Verification in three tiers, each of which first checks the signature of every manifest, drill
//! report and deletion marker (see [`super::signing`]): presence and size of every catalogued object (a
//! listing, no download); `Read`: every object downloaded and its ciphertext re-hashed (no key); `Full`:
//! every snapshot's manifest decrypted and every object's plaintext hashed, every table's rows counted
//! (needs the key). Each problem names the object.

use super::{
    BackupKeys, DATA_PREFIX, Identities, MANIFEST_PREFIX,
    crypto::UNENCRYPTED,
    drill::DRILL_PREFIX,
    markers::DELETIONS_PREFIX,
    restore::{Plaintext, read_manifest},
    signing::{SMALL_OBJECT_MAX_BYTES, read_signed},
};
use crate::{error::Result, storage::ObjectStore};
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};

/// How deep to verify.
#[derive(Debug, Clone, Copy)]
pub enum Depth<'a> {
    /// Presence and size.
    Presence,
    /// Download and re-hash the ciphertext.
    Read,
    /// Decrypt and check plaintext hashes and row counts.
    Full(Option<&'a Identities>),
}

/// What verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Objects checked.
    pub objects: usize,
    /// Snapshots checked.
    pub snapshots: usize,
    /// Each problem, naming the object.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies the complete, unpruned snapshots in the catalogue against the backup bucket.
pub async fn verify(
    pool: &PgPool,
    store: &ObjectStore,
    keys: &BackupKeys,
    depth: Depth<'_>,
) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    // Every object Pawfile reads back (manifests, drill reports, deletion markers) must carry a trusted
    // signature for its name, in every tier: they are small, and a forged one is what an attacker with
    // the bucket's credentials alone would write.
    let manifests = super::check_manifests(pool, store, keys).await?;
    report
        .problems
        .extend(manifests.refused.iter().map(|why| format!("refused: {why}")));
    for prefix in [DRILL_PREFIX, DELETIONS_PREFIX] {
        let listed = store.list(prefix).await?;
        let names: Vec<String> = listed.iter().map(|object| object.key.clone()).collect();
        super::refusals::forget_gone(pool, prefix, &names).await?;
        for object in listed {
            let most = SMALL_OBJECT_MAX_BYTES;
            if let Err(why) = read_signed(store, keys, &object.key, most).await? {
                super::refusals::record(pool, &object.key, &why).await?;
                report.problems.push(format!("{}: refused: {why}", object.key));
            }
        }
    }
    let listed: HashMap<String, u64> = store
        .list(DATA_PREFIX)
        .await?
        .into_iter()
        .chain(store.list(MANIFEST_PREFIX).await?)
        .map(|object| (object.key, object.size))
        .collect();
    let snapshots = sqlx::query!(
        "select id, manifest_object from backup_runs where status = 'complete' and pruned_at is null order by started_at"
    )
    .fetch_all(pool)
    .await?;
    for snapshot in &snapshots {
        report.snapshots += 1;
        match &snapshot.manifest_object {
            Some(name) if listed.contains_key(name) => {}
            Some(name) => report.problems.push(format!(
                "snapshot {}: its manifest {name} is missing",
                snapshot.id
            )),
            None => report
                .problems
                .push(format!("snapshot {}: no manifest is recorded", snapshot.id)),
        }
    }
    let objects = sqlx::query!(
        r#"select distinct o.name, o.ciphertext_size, o.ciphertext_sha256
           from backup_objects o
           join backup_snapshot_objects s on s.object_name = o.name
           join backup_runs r on r.id = s.run_id and r.status = 'complete' and r.pruned_at is null
           order by o.name"#
    )
    .fetch_all(pool)
    .await?;
    for object in &objects {
        report.objects += 1;
        match listed.get(&object.name) {
            None => report
                .problems
                .push(format!("{}: missing from the backup bucket", object.name)),
            Some(size) if *size != object.ciphertext_size as u64 => report.problems.push(format!(
                "{}: {size} bytes in the bucket, {} catalogued",
                object.name, object.ciphertext_size
            )),
            Some(_) if matches!(depth, Depth::Read) => {
                let (sha256, _) = store.sha256_of(&object.name).await?;
                if sha256[..] != object.ciphertext_sha256[..] {
                    report.problems.push(format!(
                        "{}: its bytes changed (SHA-256 differs from the catalogue)",
                        object.name
                    ));
                }
            }
            Some(_) => {}
        }
    }
    if let Depth::Full(identities) = depth {
        let damaged: HashSet<String> = report
            .problems
            .iter()
            .filter_map(|p| p.split(':').next().map(str::to_owned))
            .collect();
        let mut checked = HashSet::new();
        for snapshot in &snapshots {
            let Some(name) = &snapshot.manifest_object else {
                continue;
            };
            if damaged.contains(name) || !listed.contains_key(name) {
                continue;
            }
            let manifest = match read_manifest(store, name, identities, keys).await {
                Ok(manifest) => manifest,
                Err(err) => {
                    report.problems.push(format!("{name}: {err}"));
                    continue;
                }
            };
            let encrypted = manifest.recipients != UNENCRYPTED;
            for table in &manifest.tables {
                if !checked.insert(table.stored.object.clone()) || damaged.contains(&table.stored.object) {
                    continue;
                }
                let rows = match Plaintext::open(store, &table.stored, encrypted, identities).await {
                    Ok(plaintext) => plaintext.drain().await,
                    Err(err) => Err(err),
                };
                match rows {
                    Ok(rows) if rows == table.rows => {}
                    Ok(rows) => report.problems.push(format!(
                        "{}: the dump of {} has {rows} rows, the manifest says {}",
                        table.stored.object, table.name, table.rows
                    )),
                    Err(err) => report.problems.push(format!("{}: {err}", table.stored.object)),
                }
            }
            for object in &manifest.objects {
                if !checked.insert(object.stored.object.clone()) || damaged.contains(&object.stored.object) {
                    continue;
                }
                let drained = match Plaintext::open(store, &object.stored, encrypted, identities).await {
                    Ok(plaintext) => plaintext.drain().await.map(|_| ()),
                    Err(err) => Err(err),
                };
                if let Err(err) = drained {
                    report
                        .problems
                        .push(format!("{} ({}): {err}", object.stored.object, object.key));
                }
            }
        }
    }
    Ok(report)
}
