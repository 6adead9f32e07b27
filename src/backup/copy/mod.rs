//! The copy a run makes: the tables dumped in one snapshot and every file the snapshot lists, each
//! encrypted and stored once (the catalogue finds what an earlier run stored already).
mod files;

use files::{Copied, LOOKUP_BATCH, Obtained, References, Step, plan};

use super::{
    Backups, FILES_AT_ONCE, TABLES,
    dump::{self, PORTABLE_SETTINGS},
    manifest::{FORMAT, Manifest, MigrationEntry, ObjectEntry, TableEntry},
    run::RunReport,
};
use crate::{error::Result, storage::StorageError};
use futures::{StreamExt, TryStreamExt, future::BoxFuture};
use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor, PgConnection};
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};
use time::OffsetDateTime;
use uuid::Uuid;

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
