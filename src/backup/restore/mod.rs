//! Restore: a snapshot into an empty database and an empty documents bucket. Objects first (idempotent:
//! a failed restore can simply be run again), then, in one transaction committed last, the snapshot's
//! migrations and every table; then the binary's newer migrations, and the catalogue rebuilt from all
//! manifests in the backup bucket (so the restored server's first prune keeps newer snapshots).

mod catalogue;
mod documents;

pub use catalogue::rebuild_catalogue;
pub use documents::{BroughtBack, Selection, restore_documents};

use super::{
    BackupKeys, FILES_AT_ONCE, MANIFEST_PREFIX,
    crypto::{self, Identities, OpenError, UNENCRYPTED},
    dump::{self, PORTABLE_SETTINGS},
    manifest::{FORMAT, Manifest, Stored, sha256_from_hex},
};
use crate::{
    audit::{self, Action},
    db::MIGRATOR,
    error::{Error, Result},
    storage::ObjectStore,
};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor, PgPool};
use std::collections::HashMap;
use tokio::io::{AsyncRead, AsyncReadExt};
use uuid::Uuid;

/// Which snapshot to restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The newest readable one.
    Latest,
    /// This one.
    Id(Uuid),
}

impl std::str::FromStr for Which {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "latest" {
            return Ok(Which::Latest);
        }
        Uuid::parse_str(text).map(Which::Id).map_err(|_| {
            format!("{text:?} is neither a snapshot id (see `pawfile backup list`) nor `latest`")
        })
    }
}

/// Why a restore refused or failed, in words for the operator.
fn refuse(message: impl Into<String>) -> Error {
    Error::Conflict(message.into())
}

/// A manifest as found in the backup bucket.
#[derive(Debug, Clone)]
pub struct FoundManifest {
    /// Its object name.
    pub name: String,
    /// What it says.
    pub manifest: Manifest,
}

/// Every manifest in the backup bucket that `identities` can read and a trusted key signed, oldest
/// first, and the names (with the reason) of those refused: encrypted to other keys, unsigned or forged.
pub async fn read_manifests(
    store: &ObjectStore,
    identities: Option<&Identities>,
    keys: &BackupKeys,
) -> Result<(Vec<FoundManifest>, Vec<String>)> {
    let mut found = Vec::new();
    let mut unreadable = Vec::new();
    for object in store.list(MANIFEST_PREFIX).await? {
        match read_manifest(store, &object.key, identities, keys).await {
            Ok(manifest) => found.push(FoundManifest {
                name: object.key,
                manifest,
            }),
            Err(Error::Conflict(message)) => {
                tracing::warn!(manifest = %object.key, %message, "cannot read a manifest");
                unreadable.push(message);
            }
            Err(err) => return Err(err),
        }
    }
    found.sort_by_key(|found| (found.manifest.taken_at, found.manifest.snapshot));
    Ok((found, unreadable))
}

/// Reads one manifest: checks its signature (before anything decrypts or parses it), then decrypts it
/// (manifests are small: metadata, never file bytes). A manifest stored unencrypted is refused where
/// backups are read with a key.
pub async fn read_manifest(
    store: &ObjectStore,
    name: &str,
    identities: Option<&Identities>,
    keys: &BackupKeys,
) -> Result<Manifest> {
    let ciphertext = super::signing::read_signed(store, keys, name, super::signing::MANIFEST_MAX_BYTES)
        .await?
        .map_err(|why| refuse(format!("the manifest {name} is refused: {why}")))?;
    let ciphertext = &ciphertext[..];
    let encrypted = crypto::is_age(ciphertext);
    if !encrypted && identities.is_some() {
        return Err(refuse(format!(
            "the manifest {name} is refused: it is not encrypted, and this installation's backups are"
        )));
    }
    let reader = std::io::Cursor::new(ciphertext.to_vec());
    let mut plaintext = open_object(reader, encrypted, identities, name).await?;
    let mut json = Vec::new();
    plaintext
        .read_to_end(&mut json)
        .await
        .map_err(|err| refuse(format!("the manifest {name} cannot be read: {err}")))?;
    let manifest: Manifest = serde_json::from_slice(&json)
        .map_err(|err| refuse(format!("the manifest {name} is not a Pawfile manifest: {err}")))?;
    if manifest.format != FORMAT {
        return Err(refuse(format!(
            "the manifest {name} has format {} and this Pawfile reads format {FORMAT}",
            manifest.format
        )));
    }
    Ok(manifest)
}

async fn open_object<R>(
    reader: R,
    encrypted: bool,
    identities: Option<&Identities>,
    name: &str,
) -> Result<Box<dyn AsyncRead + Send + Unpin>>
where
    R: tokio::io::AsyncBufRead + Send + Unpin + 'static,
{
    crypto::open(reader, encrypted, identities)
        .await
        .map_err(|err| match err {
            OpenError::WrongKey | OpenError::NoKey => refuse(format!("cannot decrypt {name}: {err}")),
            OpenError::Damaged(_) => refuse(format!("{name}: {err}")),
        })
}

/// Writes one file of a snapshot into the documents bucket as `key`, or nothing if it fails.
async fn restore_file(
    documents: &ObjectStore,
    backups: &ObjectStore,
    key: &str,
    stored: &Stored,
    encrypted: bool,
    identities: Option<&Identities>,
) -> Result<()> {
    let mut writer = documents.writer(key);
    let written = async {
        let mut plaintext = Plaintext::open(backups, stored, encrypted, identities).await?;
        while let Some(chunk) = plaintext.next_chunk().await? {
            writer.write(chunk).await?;
        }
        plaintext.check()
    }
    .await;
    if let Err(err) = written {
        let _ = writer.discard().await;
        return Err(err);
    }
    writer.finish().await?;
    writer.keep();
    Ok(())
}

/// A stored backup object's plaintext, read chunk by chunk and checked against the manifest at the end.
pub struct Plaintext {
    reader: Box<dyn AsyncRead + Send + Unpin>,
    hasher: Sha256,
    size: u64,
    buffer: Vec<u8>,
    stored: Stored,
}

impl Plaintext {
    /// Opens `stored` (decrypting it when `encrypted`).
    pub async fn open(
        store: &ObjectStore,
        stored: &Stored,
        encrypted: bool,
        identities: Option<&Identities>,
    ) -> Result<Self> {
        let body = store.get_stream(&stored.object, None).await?;
        let reader = open_object(body.into_reader(), encrypted, identities, &stored.object).await?;
        Ok(Self {
            reader,
            hasher: Sha256::new(),
            size: 0,
            buffer: vec![0u8; 256 * 1024],
            stored: stored.clone(),
        })
    }

    /// The next chunk, or `None` at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        let read = self.reader.read(&mut self.buffer).await.map_err(|err| {
            refuse(format!(
                "the backup object {} is damaged: {err}",
                self.stored.object
            ))
        })?;
        if read == 0 {
            return Ok(None);
        }
        self.hasher.update(&self.buffer[..read]);
        self.size += read as u64;
        Ok(Some(Bytes::copy_from_slice(&self.buffer[..read])))
    }

    /// Checks, after the last chunk, that the plaintext is what the manifest says.
    pub fn check(self) -> Result<()> {
        let sha256: [u8; 32] = self.hasher.finalize().into();
        if Some(sha256) != sha256_from_hex(&self.stored.sha256) || self.size != self.stored.size {
            return Err(refuse(format!(
                "the backup object {} does not hold what the manifest says (SHA-256 or size differ)",
                self.stored.object
            )));
        }
        Ok(())
    }

    /// Reads to the end and checks (hashing only, writing nowhere).
    pub async fn drain(mut self) -> Result<u64> {
        let mut newlines = 0u64;
        while let Some(chunk) = self.next_chunk().await? {
            newlines += chunk.iter().filter(|byte| **byte == b'\n').count() as u64;
        }
        self.check()?;
        Ok(newlines)
    }
}

/// What a restore did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// The snapshot restored.
    pub snapshot: Uuid,
    /// Files written into the documents bucket.
    pub objects_written: usize,
    /// Files already there, with the right bytes (a restore run again).
    pub objects_present: usize,
    /// Rows loaded, over all tables.
    pub rows: u64,
    /// Snapshots the rebuilt catalogue knows.
    pub catalogued_snapshots: usize,
    /// Manifests not read, each with why: encrypted to other keys, unsigned or forged.
    pub unreadable_manifests: Vec<String>,
    /// Accounts deleted since the snapshot, deleted again.
    pub deletions_reapplied: u64,
    /// Deletion markers refused (unsigned or forged), with the reason: not applied.
    pub refused_markers: Vec<String>,
}

/// Where a restore reads from: which snapshot, the private key(s) to decrypt it, and the keys whose
/// signatures are believed.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The snapshot.
    pub which: Which,
    /// The private key(s), unless backups are unencrypted.
    pub identities: Option<&'a Identities>,
    /// The trusted signing keys.
    pub keys: &'a BackupKeys,
}

/// Progress callbacks for the command line.
pub trait Progress: Send + Sync {
    /// A stage began, with how many steps it has.
    fn stage(&self, name: &str, steps: u64);
    /// One step of the stage is done.
    fn step(&self, bytes: u64);
}

/// No progress output.
#[derive(Debug, Clone, Copy)]
pub struct Quiet;

impl Progress for Quiet {
    fn stage(&self, _: &str, _: u64) {}
    fn step(&self, _: u64) {}
}

/// Restores `which` into the empty database behind `pool` and the empty documents bucket `documents`,
/// without deleting again the accounts deleted since: the whole restore is `recovery::restore`.
pub(crate) async fn restore_snapshot(
    pool: &PgPool,
    documents: &ObjectStore,
    backups: &ObjectStore,
    source: Source<'_>,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    let Source {
        which,
        identities,
        keys,
    } = source;
    let (manifests, unreadable) = read_manifests(backups, identities, keys).await?;
    let Some(chosen) = choose(&manifests, which, keys)?.cloned() else {
        return Err(refuse(match (which, unreadable.is_empty()) {
            (_, false) if manifests.is_empty() => format!(
                "none of the {} manifests in the backup bucket can be read: {}",
                unreadable.len(),
                unreadable.join("; ")
            ),
            (Which::Id(id), false) => format!(
                "no readable snapshot {id}; {} manifests could not be read: {}",
                unreadable.len(),
                unreadable.join("; ")
            ),
            (Which::Id(id), true) => {
                format!("the backup bucket holds no snapshot {id} (see `pawfile backup list`)")
            }
            (Which::Latest, _) => "the backup bucket holds no snapshot".to_owned(),
        }));
    };
    let manifest = &chosen.manifest;
    let encrypted = manifest.recipients != UNENCRYPTED;
    check_database_is_empty(pool).await?;
    check_migrations(manifest)?;
    let expected: HashMap<&str, &Stored> = manifest
        .objects
        .iter()
        .map(|object| (object.key.as_str(), &object.stored))
        .collect();
    let mut present = HashMap::new();
    for prefix in ["documents/", "thumbnails/"] {
        for object in documents.list(prefix).await? {
            if !expected.contains_key(object.key.as_str()) {
                return Err(refuse(format!(
                    "the documents bucket {} is not empty: it holds {}, which the snapshot does not; restore into an empty bucket",
                    documents.bucket(),
                    object.key
                )));
            }
            present.insert(object.key, object.size);
        }
    }

    let mut report = RestoreReport {
        snapshot: manifest.snapshot,
        unreadable_manifests: unreadable,
        ..RestoreReport::default()
    };
    progress.stage("files", manifest.objects.len() as u64);
    // Several files at once: each is mostly waiting on the two stores. On a failure the files in
    // flight are abandoned (their partial uploads removed); those already written stay, and a
    // restore run again into the same bucket skips them.
    let mut files = futures::stream::iter(&manifest.objects)
        .map(|object| async {
            let stored = &object.stored;
            let was_present = present.get(&object.key) == Some(&stored.size)
                && documents.sha256_of(&object.key).await?.0
                    == sha256_from_hex(&stored.sha256).unwrap_or_default();
            if !was_present {
                restore_file(documents, backups, &object.key, stored, encrypted, identities).await?;
            }
            progress.step(stored.size);
            Ok::<_, Error>(was_present)
        })
        .buffer_unordered(FILES_AT_ONCE);
    while let Some(was_present) = files.try_next().await? {
        if was_present {
            report.objects_present += 1;
        } else {
            report.objects_written += 1;
        }
    }
    drop(files);

    progress.stage("tables", manifest.tables.len() as u64);
    report.rows = load_database(pool, manifest, backups, encrypted, identities, progress).await?;
    crate::db::migrate(pool).await.map_err(|err| {
        refuse(format!(
            "the restored database cannot be migrated to this version: {err}"
        ))
    })?;

    let all: Vec<FoundManifest> = read_manifests(backups, identities, keys).await?.0;
    report.catalogued_snapshots = rebuild_catalogue(pool, &all).await?;
    audit::record(
        pool,
        audit::Event::new(Action::RestoreBackup, None, None)
            .target("backup", manifest.snapshot)
            .detail(serde_json::json!({
                "taken_at": manifest.taken_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                "objects": manifest.objects.len(),
                "rows": report.rows,
            })),
    )
    .await?;
    Ok(report)
}

/// In one transaction committed last: the snapshot's migrations (with sqlx's bookkeeping table, so the
/// binary's newer migrations apply afterwards) and every table of `manifest`, each checked against its
/// SHA-256 and row count. Returns the rows loaded.
pub(crate) async fn load_database(
    pool: &PgPool,
    manifest: &Manifest,
    backups: &ObjectStore,
    encrypted: bool,
    identities: Option<&Identities>,
    progress: &dyn Progress,
) -> Result<u64> {
    let mut total = 0u64;
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    (&mut *tx)
        .execute(
            "create table if not exists _sqlx_migrations (
                version bigint primary key,
                description text not null,
                installed_on timestamptz not null default now(),
                success boolean not null,
                checksum bytea not null,
                execution_time bigint not null
            )",
        )
        .await?;
    for entry in &manifest.migrations {
        let migration = MIGRATOR
            .iter()
            .find(|migration| migration.version == entry.version)
            .expect("checked above");
        (&mut *tx).execute(migration.sql.as_ref()).await?;
        sqlx::query!(
            "insert into _sqlx_migrations (version, description, success, checksum, execution_time)
             values ($1, $2, true, $3, 0)",
            migration.version,
            migration.description.as_ref(),
            migration.checksum.as_ref()
        )
        .execute(&mut *tx)
        .await?;
    }
    (&mut *tx).execute(PORTABLE_SETTINGS).await?;
    for table in &manifest.tables {
        let statement = dump::load_statement(&table.name, &table.columns);
        let rows = copy_dump(&mut tx, &statement, backups, &table.stored, encrypted, identities).await?;
        if rows != table.rows {
            return Err(refuse(format!(
                "the table {} has {rows} rows in its dump and {} in the manifest",
                table.name, table.rows
            )));
        }
        total += rows;
        progress.step(table.stored.size);
    }
    tx.commit().await?;
    drop(conn);
    Ok(total)
}

/// The snapshot `which` names among `manifests` (oldest first). Where unsigned manifests are believed,
/// anyone who could write to the bucket could have written one dated in the future, so `latest` means
/// nothing: the snapshot must be named. Two manifests claiming the same id are refused, not chosen
/// between.
fn choose<'a>(
    manifests: &'a [FoundManifest],
    which: Which,
    keys: &BackupKeys,
) -> Result<Option<&'a FoundManifest>> {
    match which {
        Which::Latest if keys.accepts_unsigned_manifests() => {
            let readable: Vec<String> = manifests
                .iter()
                .rev()
                .map(|found| {
                    format!(
                        "{} (taken {}, {})",
                        found.manifest.snapshot,
                        found
                            .manifest
                            .taken_at
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default(),
                        found.name
                    )
                })
                .collect();
            Err(refuse(format!(
                "a restore that accepts unsigned manifests must name its snapshot: `latest` could be a \
                 manifest anyone with the bucket's credentials wrote. Readable here, newest first: {}",
                if readable.is_empty() {
                    "none".to_owned()
                } else {
                    readable.join("; ")
                }
            )))
        }
        Which::Latest => Ok(manifests.last()),
        Which::Id(id) => {
            let mut matching = manifests.iter().filter(|found| found.manifest.snapshot == id);
            let first = matching.next();
            if let Some(other) = matching.next() {
                return Err(refuse(format!(
                    "two manifests claim to be snapshot {id} ({} and {}); remove the one that is not yours",
                    first.map(|found| found.name.as_str()).unwrap_or_default(),
                    other.name
                )));
            }
            Ok(first)
        }
    }
}

/// Streams a stored table dump into `COPY … FROM STDIN` (`statement`), checking its SHA-256; aborts the
/// COPY if the object cannot be read. Returns its rows (lines, in text format).
async fn copy_dump(
    conn: &mut sqlx::PgConnection,
    statement: &str,
    backups: &ObjectStore,
    stored: &Stored,
    encrypted: bool,
    identities: Option<&Identities>,
) -> Result<u64> {
    let mut copy = conn.copy_in_raw(statement).await?;
    let mut rows = 0u64;
    let loaded = async {
        let mut plaintext = Plaintext::open(backups, stored, encrypted, identities).await?;
        while let Some(chunk) = plaintext.next_chunk().await? {
            rows += chunk.iter().filter(|byte| **byte == b'\n').count() as u64;
            copy.send(chunk).await?;
        }
        plaintext.check()
    }
    .await;
    if let Err(err) = loaded {
        let _ = copy.abort("the backup object could not be read").await;
        return Err(err);
    }
    copy.finish().await?;
    Ok(rows)
}

/// Refuses a database that holds any table: restore never overwrites (the schema's triggers forbid
/// deleting medical history, so replacing a database is the operator's `DROP DATABASE`).
async fn check_database_is_empty(pool: &PgPool) -> Result<()> {
    let tables: Vec<String> = sqlx::query_scalar!(
        r#"select schemaname || '.' || tablename as "name!" from pg_catalog.pg_tables
           where schemaname not in ('pg_catalog', 'information_schema') order by 1 limit 3"#
    )
    .fetch_all(pool)
    .await?;
    if tables.is_empty() {
        Ok(())
    } else {
        Err(refuse(format!(
            "the database is not empty (it holds {}{}): restore needs an empty database. Create a new one \
             (createdb), or drop this one and create it again (DROP DATABASE), then run the restore again",
            tables.join(", "),
            if tables.len() == 3 { ", …" } else { "" }
        )))
    }
}

/// Refuses a snapshot whose migrations this binary does not have, or has with other contents.
fn check_migrations(manifest: &Manifest) -> Result<()> {
    for entry in &manifest.migrations {
        let Some(migration) = MIGRATOR
            .iter()
            .find(|migration| migration.version == entry.version)
        else {
            return Err(refuse(format!(
                "the snapshot was taken by a newer Pawfile ({}, migration {} {}): restore it with that version or later",
                manifest.pawfile_version, entry.version, entry.description
            )));
        };
        if hex::encode(migration.checksum.as_ref()) != entry.checksum {
            return Err(refuse(format!(
                "migration {} ({}) differs between the snapshot and this Pawfile: restore with the version that took it ({})",
                entry.version, entry.description, manifest.pawfile_version
            )));
        }
    }
    Ok(())
}
