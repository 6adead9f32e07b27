//! The files of a snapshot: each looked up in the catalogue by its SHA-256 (a batch at a time), reused
//! when an earlier run stored it, else encrypted and stored once; the references recorded in batches.

use super::super::{Backups, DATA_PREFIX, manifest::Stored, random_name, run::RunReport};
use super::FinishedWriter;
use crate::{
    error::{Error, Result},
    storage::StorageError,
};
use bytes::Bytes;
use futures::{StreamExt, stream::BoxStream};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use uuid::Uuid;

/// How a stored object was obtained.
pub(super) enum Obtained {
    Copied(Stored),
    Reused(Stored),
}

impl Obtained {
    pub(super) fn stored(&self) -> &Stored {
        match self {
            Obtained::Copied(stored) | Obtained::Reused(stored) => stored,
        }
    }
}

/// A catalogued object, as dedup finds it.
#[derive(Clone)]
pub(super) struct Catalogued {
    pub(super) stored: Stored,
    pub(super) missing: bool,
}

/// Files looked up in the catalogue with one query (an unchanged backup of many documents is mostly
/// these look-ups).
pub(super) const LOOKUP_BATCH: usize = 500;

impl Backups {
    /// One file of the documents bucket that [`plan`] did not find catalogued. A document carries its
    /// SHA-256 (looked up beforehand: `found`); a thumbnail is hashed and looked up here, and reused
    /// when catalogued.
    pub(super) async fn copy_file(
        &self,
        id: Uuid,
        key: &str,
        known: Option<[u8; 32]>,
        found: Option<Catalogued>,
    ) -> Result<Obtained> {
        let (sha256, found) = match known {
            Some(sha256) => (sha256, found),
            None => {
                let sha256 = self.documents.sha256_of(key).await?.0;
                (sha256, self.find_catalogued(&sha256).await?)
            }
        };
        if let Some(found) = &found
            && !found.missing
        {
            return Ok(Obtained::Reused(found.stored.clone()));
        }
        self.copy_new_file(id, key, known, sha256, found).await
    }

    /// [`Backups::copy_file`] for a file not (or no longer) in the backup bucket.
    async fn copy_new_file(
        &self,
        id: Uuid,
        key: &str,
        known: Option<[u8; 32]>,
        sha256: [u8; 32],
        found: Option<Catalogued>,
    ) -> Result<Obtained> {
        let body = self.documents.get_stream(key, None).await?;
        let length = body.length;
        let name = found.map(|found| found.stored.object);
        match self
            .copy_in(id, name, body.into_stream().boxed(), Some((sha256, length)), key)
            .await
        {
            Err(Error::Internal(err)) if err.to_string().contains("changed while") && known.is_some() => {
                // The stored bytes differ from the document's recorded SHA-256 (the integrity check
                // flags that): back up what is there, under its real hash.
                tracing::warn!(
                    object = key,
                    "a document's bytes differ from its recorded SHA-256; backing up what is stored"
                );
                let body = self.documents.get_stream(key, None).await?;
                self.copy_in(id, None, body.into_stream().boxed(), None, key)
                    .await
            }
            other => other,
        }
    }

    /// [`Backups::find_catalogued`] for many plaintexts at once: those catalogued, by SHA-256.
    pub(super) async fn find_catalogued_many(
        &self,
        hashes: &[[u8; 32]],
    ) -> Result<HashMap<[u8; 32], Catalogued>> {
        let keys: Vec<Vec<u8>> = hashes.iter().map(|sha256| sha256.to_vec()).collect();
        let rows = sqlx::query!(
            r#"select plaintext_sha256, name, plaintext_size, ciphertext_size, ciphertext_sha256,
                      missing_since is not null as "missing!"
               from backup_objects where plaintext_sha256 = any($1) and recipients = $2"#,
            &keys[..],
            self.policy.recipients.fingerprint()
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let sha256: [u8; 32] = row.plaintext_sha256.as_slice().try_into().ok()?;
                Some((
                    sha256,
                    Catalogued {
                        stored: Stored {
                            object: row.name,
                            size: row.plaintext_size as u64,
                            sha256: hex::encode(sha256),
                            ciphertext_size: row.ciphertext_size as u64,
                            ciphertext_sha256: hex::encode(row.ciphertext_sha256),
                        },
                        missing: row.missing,
                    },
                ))
            })
            .collect())
    }

    pub(super) async fn find_catalogued(&self, sha256: &[u8; 32]) -> Result<Option<Catalogued>> {
        let row = sqlx::query!(
            r#"select name, plaintext_size, ciphertext_size, ciphertext_sha256, missing_since is not null as "missing!"
               from backup_objects where plaintext_sha256 = $1 and recipients = $2"#,
            &sha256[..],
            self.policy.recipients.fingerprint()
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| Catalogued {
            stored: Stored {
                object: row.name,
                size: row.plaintext_size as u64,
                sha256: hex::encode(sha256),
                ciphertext_size: row.ciphertext_size as u64,
                ciphertext_sha256: hex::encode(row.ciphertext_sha256),
            },
            missing: row.missing,
        }))
    }

    /// Encrypts `body` into a new backup object (or the catalogued name `name`, when that object went
    /// missing), checks its plaintext against `expected` (SHA-256 and size), and catalogues it.
    pub(super) async fn copy_in(
        &self,
        id: Uuid,
        name: Option<String>,
        body: BoxStream<'_, std::io::Result<Bytes>>,
        expected: Option<([u8; 32], u64)>,
        what: &str,
    ) -> Result<Obtained> {
        let name = name.unwrap_or_else(|| random_name(DATA_PREFIX));
        let (writer, sha256, size) = self.seal_into(id, &name, body).await?;
        if let Some((expected_sha, expected_size)) = expected
            && (expected_sha != sha256 || expected_size != size)
        {
            let _ = writer.discard().await;
            return Err(anyhow::anyhow!("{what} changed while it was being backed up").into());
        }
        let (ciphertext_size, ciphertext_sha256) = writer.written_summary();
        let stored = Stored {
            object: name.clone(),
            size,
            sha256: hex::encode(sha256),
            ciphertext_size,
            ciphertext_sha256: hex::encode(ciphertext_sha256),
        };
        let catalogued = sqlx::query!(
            "insert into backup_objects (name, plaintext_sha256, plaintext_size, recipients, ciphertext_size, ciphertext_sha256)
             values ($1, $2, $3, $4, $5, $6)
             on conflict (name) do update set ciphertext_size = excluded.ciphertext_size,
                 ciphertext_sha256 = excluded.ciphertext_sha256, missing_since = null, damage = null",
            name,
            &sha256[..],
            size as i64,
            self.policy.recipients.fingerprint(),
            ciphertext_size as i64,
            &ciphertext_sha256[..]
        )
        .execute(&self.pool)
        .await;
        match catalogued {
            Ok(_) => {
                writer.keep();
                Ok(Obtained::Copied(stored))
            }
            // Files copied at once whose bytes were not known beforehand (two identical thumbnails):
            // the other was catalogued first; keep its object and drop this one.
            Err(sqlx::Error::Database(err)) if err.constraint() == Some("backup_objects_dedup_key") => {
                let _ = writer.discard().await;
                match self.find_catalogued(&sha256).await? {
                    Some(found) => Ok(Obtained::Reused(found.stored)),
                    None => {
                        Err(anyhow::anyhow!("{what} was catalogued twice at once and then not at all").into())
                    }
                }
            }
            Err(err) => {
                let _ = writer.discard().await;
                Err(err.into())
            }
        }
    }

    /// Streams `body` through the sealer into the backup object `name`, recording its multipart upload
    /// id while it is open. Returns the finished (not yet kept) writer and the plaintext SHA-256 and size.
    async fn seal_into(
        &self,
        id: Uuid,
        name: &str,
        mut body: BoxStream<'_, std::io::Result<Bytes>>,
    ) -> Result<(FinishedWriter, [u8; 32], u64)> {
        let mut writer = self.store.writer(name);
        let mut sealer = self.policy.recipients.sealer().map_err(anyhow::Error::from)?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut recorded = false;
        while let Some(chunk) = body.next().await {
            let chunk = chunk
                .map_err(|err| StorageError::Other(format!("reading what is backed up as {name}: {err}")))?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
            let sealed = sealer.push(chunk).map_err(anyhow::Error::from)?;
            if !sealed.is_empty() {
                writer.write(sealed).await?;
            }
            if !recorded && let Some(upload_id) = writer.upload_id() {
                sqlx::query!(
                    "insert into backup_uploads (run_id, object_name, upload_id) values ($1, $2, $3)
                     on conflict do nothing",
                    id,
                    name,
                    upload_id
                )
                .execute(&self.pool)
                .await?;
                recorded = true;
            }
        }
        writer
            .write(sealer.finish().map_err(anyhow::Error::from)?)
            .await?;
        let written = writer.finish().await?;
        if recorded {
            sqlx::query!(
                "delete from backup_uploads where run_id = $1 and object_name = $2",
                id,
                name
            )
            .execute(&self.pool)
            .await?;
        }
        Ok((
            FinishedWriter {
                writer,
                size: written.size,
                sha256: written.sha256,
            },
            hasher.finalize().into(),
            size,
        ))
    }

    /// Records the snapshot's references collected so far (one statement for a batch of files).
    pub(super) async fn flush_references(&self, id: Uuid, references: &mut References) -> Result<()> {
        if references.pending.is_empty() {
            return Ok(());
        }
        sqlx::query!(
            "insert into backup_snapshot_objects (run_id, object_name)
             select $1, unnest($2::text[]) on conflict do nothing",
            id,
            &references.pending[..]
        )
        .execute(&self.pool)
        .await?;
        references.pending.clear();
        Ok(())
    }
}

/// The objects a snapshot refers to: counted as they come, recorded in `backup_snapshot_objects` a
/// batch at a time ([`Backups::flush_references`]). Until then a crash leaves them catalogued but
/// unreferenced, which the next prune removes, as it does a failed run's.
#[derive(Default)]
pub(super) struct References {
    /// Each object referenced so far, and whether it was counted as copied.
    seen: HashMap<String, bool>,
    pending: Vec<String>,
}

impl References {
    pub(super) fn add(&mut self, obtained: &Obtained, report: &mut RunReport) {
        let stored = obtained.stored();
        let copied = matches!(obtained, Obtained::Copied(_));
        match self.seen.get_mut(&stored.object) {
            // The same plaintext twice in one snapshot (two identical files): counted once, as copied
            // if this run copied it. (Of two identical thumbnails copied at once, the one that lost the
            // race to the catalogue may come first, as reused.)
            Some(counted_as_copied) => {
                if copied && !*counted_as_copied {
                    *counted_as_copied = true;
                    report.objects_reused -= 1;
                    report.objects_copied += 1;
                    report.bytes_copied += stored.ciphertext_size;
                }
            }
            None => {
                self.seen.insert(stored.object.clone(), copied);
                self.pending.push(stored.object.clone());
                if copied {
                    report.objects_copied += 1;
                    report.bytes_copied += stored.ciphertext_size;
                } else {
                    report.objects_reused += 1;
                }
            }
        }
    }
}

/// What a batch does with one of its files.
pub(super) enum Step {
    /// Catalogued and present in the backup bucket: referenced again.
    Reuse(Stored),
    /// Copied: the bytes are not catalogued, or their object went missing (then its name is reused),
    /// or they are not known before reading (a thumbnail).
    Copy(Option<Catalogued>),
    /// The same bytes as the file at this earlier index of the batch: it gets that file's object.
    Same(usize),
}

/// A file of the batch once its step is done.
pub(super) enum Copied {
    Obtained(Obtained),
    Same(usize),
}

/// Decides each file's step from the catalogue, so that files copied at once never copy the same bytes
/// twice: the first file with a plaintext copies it, later ones wait for its object.
pub(super) fn plan(
    batch: &[(String, Option<[u8; 32]>, u64)],
    catalogued: &HashMap<[u8; 32], Catalogued>,
) -> Vec<Step> {
    let mut first: HashMap<[u8; 32], usize> = HashMap::new();
    batch
        .iter()
        .enumerate()
        .map(|(index, (_, known, _))| {
            let Some(sha256) = known else {
                return Step::Copy(None);
            };
            match catalogued.get(sha256) {
                Some(found) if !found.missing => Step::Reuse(found.stored.clone()),
                found => match first.entry(*sha256) {
                    std::collections::hash_map::Entry::Occupied(earlier) => Step::Same(*earlier.get()),
                    std::collections::hash_map::Entry::Vacant(entry) => {
                        entry.insert(index);
                        Step::Copy(found.cloned())
                    }
                },
            }
        })
        .collect()
}
