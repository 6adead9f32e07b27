//! The copy a run makes: the tables dumped in one snapshot and every file the snapshot lists, each
//! encrypted and stored once (the catalogue finds what an earlier run stored already).

use super::{
    Backups, DATA_PREFIX, FILES_AT_ONCE, TABLES,
    dump::{self, PORTABLE_SETTINGS},
    manifest::{FORMAT, Manifest, MigrationEntry, ObjectEntry, Stored, TableEntry},
    random_name,
    run::RunReport,
};
use crate::{
    error::{Error, Result},
    storage::StorageError,
};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, future::BoxFuture, stream::BoxStream};
use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor, PgConnection};
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};
use time::OffsetDateTime;
use uuid::Uuid;

/// How a stored object was obtained.
enum Obtained {
    Copied(Stored),
    Reused(Stored),
}

impl Obtained {
    fn stored(&self) -> &Stored {
        match self {
            Obtained::Copied(stored) | Obtained::Reused(stored) => stored,
        }
    }
}

/// A catalogued object, as dedup finds it.
#[derive(Clone)]
struct Catalogued {
    stored: Stored,
    missing: bool,
}

/// Files looked up in the catalogue with one query (an unchanged backup of many documents is mostly
/// these look-ups).
const LOOKUP_BATCH: usize = 500;

impl Backups {
    /// Dumps the tables in one snapshot, then copies the files that snapshot lists.
    pub(super) async fn copy_snapshot(
        &self,
        id: Uuid,
        started_at: OffsetDateTime,
    ) -> Result<(Manifest, RunReport)> {
        let mut report = RunReport::default();
        let mut conn = self.pool.acquire().await?.detach();
        // One snapshot for every table and the file list. (Statements on a connection of its own: it is
        // closed afterwards, so nothing of this session returns to the pool.)
        conn.execute("begin isolation level repeatable read, read only")
            .await?;
        conn.execute(PORTABLE_SETTINGS).await?;
        let taken_at: OffsetDateTime = sqlx::query_scalar!(r#"select now() as "now!""#)
            .fetch_one(&mut conn)
            .await?;
        let migrations = sqlx::query!(
            "select version, description, checksum from _sqlx_migrations where success order by version"
        )
        .fetch_all(&mut conn)
        .await?
        .into_iter()
        .map(|row| MigrationEntry {
            version: row.version,
            description: row.description,
            checksum: hex::encode(row.checksum),
        })
        .collect();
        let mut tables = Vec::new();
        let mut references = References::default();
        for table in TABLES {
            let described = dump::describe(&mut conn, table).await?;
            // First pass: hash and count, so an unchanged dump is reused without being stored again.
            let (sha256, size, rows) = hash_dump(&mut conn, &described.statement).await?;
            let obtained = match self.find_catalogued(&sha256).await? {
                Some(found) if !found.missing => Obtained::Reused(found.stored),
                found => {
                    let name = found.map(|found| found.stored.object);
                    self.store_dump(
                        &mut conn,
                        id,
                        name,
                        &described.statement,
                        (sha256, size),
                        &described.name,
                    )
                    .await?
                }
            };
            references.add(&obtained, &mut report);
            if let Some(pace) = self.policy.pace {
                tokio::time::sleep(pace).await;
            }
            tables.push(TableEntry {
                name: described.name,
                columns: described.columns,
                rows,
                stored: obtained.stored().clone(),
            });
            report.tables += 1;
        }
        self.flush_references(id, &mut references).await?;
        let files =
            sqlx::query!("select object_key, size_bytes, sha256, thumbnail_key from documents order by id")
                .fetch_all(&mut conn)
                .await?;
        conn.execute("commit").await?;
        let _ = conn.close().await;

        let thumbnails: HashMap<String, u64> = self
            .documents
            .list("thumbnails/")
            .await?
            .into_iter()
            .map(|object| (object.key, object.size))
            .collect();
        let mut work: Vec<(String, Option<[u8; 32]>, u64)> = Vec::new();
        for file in files {
            let sha256: Option<[u8; 32]> = file.sha256.as_slice().try_into().ok();
            work.push((file.object_key, sha256, file.size_bytes as u64));
            if let Some(thumbnail) = file.thumbnail_key
                && let Some(size) = thumbnails.get(&thumbnail)
            {
                work.push((thumbnail, None, *size));
            }
        }
        let (objects_total, bytes_total) = (
            work.len() as i32,
            work.iter().map(|(_, _, size)| *size as i64).sum::<i64>(),
        );
        sqlx::query!(
            "update backup_runs set objects_total = $2, bytes_total = $3 where id = $1",
            id,
            objects_total,
            bytes_total
        )
        .execute(&self.pool)
        .await?;
        let mut objects: Vec<ObjectEntry> = Vec::new();
        let (mut done, mut bytes_done) = (0i32, 0i64);
        let mut last_progress = Instant::now();
        for batch in work.chunks(LOOKUP_BATCH) {
            let hashes: Vec<[u8; 32]> = batch.iter().filter_map(|(_, known, _)| *known).collect();
            let catalogued = self.find_catalogued_many(&hashes).await?;
            // Several files at once, each mostly waiting on the two stores; results come back in the
            // batch's order, so the manifest, the references and the progress read as before.
            // (Items owned, not borrowed from the batch: the run's future must be `Send` for any lifetime.)
            let steps: Vec<(String, Option<[u8; 32]>, Step)> = batch
                .iter()
                .zip(plan(batch, &catalogued))
                .map(|((key, known, _), step)| (key.clone(), *known, step))
                .collect();
            let mut copies = futures::stream::iter(steps)
                .map(|(key, known, step)| async move {
                    match step {
                        Step::Reuse(stored) => Ok(Copied::Obtained(Obtained::Reused(stored))),
                        Step::Same(index) => Ok(Copied::Same(index)),
                        Step::Copy(found) => {
                            self.copy_file(id, &key, known, found).await.map(Copied::Obtained)
                        }
                    }
                })
                .buffered(FILES_AT_ONCE);
            // The batch's files done so far are the last entries of `objects`, in order.
            let batch_start = objects.len();
            while let Some(copied) = copies.try_next().await? {
                let (key, known, size) = &batch[objects.len() - batch_start];
                let obtained = match copied {
                    Copied::Obtained(obtained) => obtained,
                    Copied::Same(index) => {
                        let earlier = &objects[batch_start + index].stored;
                        if known.map(hex::encode).as_ref() == Some(&earlier.sha256) {
                            Obtained::Reused(earlier.clone())
                        } else {
                            // The earlier file's bytes were not what its document recorded (it was
                            // backed up under its real hash): this one is copied for itself.
                            self.copy_file(id, key, *known, None).await?
                        }
                    }
                };
                references.add(&obtained, &mut report);
                objects.push(ObjectEntry {
                    key: key.clone(),
                    stored: obtained.stored().clone(),
                });
                report.files += 1;
                done += 1;
                bytes_done += *size as i64;
                if let Some(pace) = self.policy.pace {
                    tokio::time::sleep(pace).await;
                }
                if last_progress.elapsed() > Duration::from_millis(500) || self.policy.pace.is_some() {
                    self.progress(id, done, bytes_done, &report).await?;
                    last_progress = Instant::now();
                }
            }
            self.flush_references(id, &mut references).await?;
        }
        self.progress(id, done, bytes_done, &report).await?;
        let manifest = Manifest {
            format: FORMAT,
            snapshot: id,
            started_at,
            taken_at,
            pawfile_version: env!("CARGO_PKG_VERSION").to_owned(),
            recipients: self.policy.recipients.fingerprint(),
            migrations,
            tables,
            objects,
        };
        Ok((manifest, report))
    }

    /// Second pass of a table whose dump is not catalogued: stream it into the backup bucket.
    fn store_dump<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        id: Uuid,
        name: Option<String>,
        statement: &'a str,
        expected: ([u8; 32], u64),
        what: &'a str,
    ) -> BoxFuture<'a, Result<Obtained>> {
        Box::pin(async move {
            let stream = conn
                .copy_out_raw(statement)
                .await?
                .map_err(std::io::Error::other)
                .boxed();
            self.copy_in(id, name, stream, Some(expected), what).await
        })
    }

    async fn progress(&self, id: Uuid, done: i32, bytes_done: i64, report: &RunReport) -> Result<()> {
        sqlx::query!(
            "update backup_runs set objects_done = $2, bytes_done = $3, objects_copied = $4, objects_reused = $5,
                    bytes_copied = $6 where id = $1",
            id,
            done,
            bytes_done,
            report.objects_copied as i32,
            report.objects_reused as i32,
            report.bytes_copied as i64
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One file of the documents bucket that [`plan`] did not find catalogued. A document carries its
    /// SHA-256 (looked up beforehand: `found`); a thumbnail is hashed and looked up here, and reused
    /// when catalogued.
    async fn copy_file(
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
    async fn find_catalogued_many(&self, hashes: &[[u8; 32]]) -> Result<HashMap<[u8; 32], Catalogued>> {
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

    async fn find_catalogued(&self, sha256: &[u8; 32]) -> Result<Option<Catalogued>> {
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
    async fn copy_in(
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
    async fn flush_references(&self, id: Uuid, references: &mut References) -> Result<()> {
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
struct References {
    /// Each object referenced so far, and whether it was counted as copied.
    seen: HashMap<String, bool>,
    pending: Vec<String>,
}

impl References {
    fn add(&mut self, obtained: &Obtained, report: &mut RunReport) {
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
enum Step {
    /// Catalogued and present in the backup bucket: referenced again.
    Reuse(Stored),
    /// Copied: the bytes are not catalogued, or their object went missing (then its name is reused),
    /// or they are not known before reading (a thumbnail).
    Copy(Option<Catalogued>),
    /// The same bytes as the file at this earlier index of the batch: it gets that file's object.
    Same(usize),
}

/// A file of the batch once its step is done.
enum Copied {
    Obtained(Obtained),
    Same(usize),
}

/// Decides each file's step from the catalogue, so that files copied at once never copy the same bytes
/// twice: the first file with a plaintext copies it, later ones wait for its object.
fn plan(batch: &[(String, Option<[u8; 32]>, u64)], catalogued: &HashMap<[u8; 32], Catalogued>) -> Vec<Step> {
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

/// First pass of a table's dump: its SHA-256, size and row count (each row is one line in text format).
fn hash_dump<'a>(
    conn: &'a mut PgConnection,
    statement: &'a str,
) -> BoxFuture<'a, Result<([u8; 32], u64, u64)>> {
    Box::pin(async move {
        let mut stream = conn.copy_out_raw(statement).await?;
        let mut hasher = Sha256::new();
        let (mut size, mut rows) = (0u64, 0u64);
        while let Some(chunk) = stream.try_next().await? {
            hasher.update(&chunk);
            size += chunk.len() as u64;
            rows += chunk.iter().filter(|byte| **byte == b'\n').count() as u64;
        }
        Ok((<[u8; 32]>::from(hasher.finalize()), size, rows))
    })
}

/// A finished object the caller keeps or discards.
struct FinishedWriter {
    writer: crate::storage::ObjectWriter,
    size: u64,
    sha256: [u8; 32],
}

impl FinishedWriter {
    fn written_summary(&self) -> (u64, [u8; 32]) {
        (self.size, self.sha256)
    }

    fn keep(self) {
        self.writer.keep();
    }

    async fn discard(self) -> Result<(), StorageError> {
        self.writer.discard().await
    }
}
