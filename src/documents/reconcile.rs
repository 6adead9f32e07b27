//! Comparing the documents bucket with the database, both ways: objects without a row (older than a
//! grace period, so uploads in progress are safe) are removed; rows whose object is missing, or whose
//! size or checksum differs, are flagged for admins. A sample of objects is read back in full.

use crate::{
    db::{ExclusiveTask, run_exclusive},
    domain::DocumentId,
    error::Result,
    storage::{ObjectStore, StorageKey},
};
use sqlx::PgPool;
use std::{collections::HashMap, time::Duration};
use time::OffsetDateTime;

/// The problem recorded for bytes that no longer match their SHA-256. It stays until a later run reads
/// the object back and finds it whole again.
const CHECKSUM_PROBLEM: &str = "the object's bytes no longer match their SHA-256";

/// How a reconcile run behaves.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Objects younger than this are never removed (an upload may be about to record them).
    pub grace: Duration,
    /// How many objects to read back in full and check against their SHA-256 (besides those already
    /// flagged for a checksum mismatch, which are read back every time).
    pub verify_sample: i64,
    /// Multipart uploads started longer ago than this are aborted (a slow upload may take hours).
    pub upload_grace: Duration,
    /// Every document is read back and re-hashed at least once per this period: each run takes the
    /// longest-unchecked documents, as many as the period needs at `run_interval` (and at least
    /// `verify_sample`).
    pub scrub_period: Duration,
    /// How often runs happen (to share the period's work between them).
    pub run_interval: Duration,
}

/// How many documents a run re-hashes: its share of all of them over the scrub period, at least
/// `minimum`.
pub fn scrub_batch(documents: i64, minimum: i64, period: Duration, run_interval: Duration) -> i64 {
    let runs = (period.as_secs_f64() / run_interval.as_secs_f64().max(1.0)).max(1.0);
    ((documents as f64 / runs).ceil() as i64).max(minimum)
}

impl Default for Options {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(60 * 60),
            verify_sample: 20,
            upload_grace: Duration::from_secs(24 * 60 * 60),
            scrub_period: Duration::from_secs(30 * 24 * 60 * 60),
            run_interval: Duration::from_secs(6 * 60 * 60),
        }
    }
}

/// What a run found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Objects in the bucket.
    pub objects: usize,
    /// Documents in the database.
    pub documents: usize,
    /// Orphan objects removed.
    pub removed_orphans: Vec<String>,
    /// Documents flagged as missing their object.
    pub missing: Vec<DocumentId>,
    /// Documents whose object has another size.
    pub size_mismatches: Vec<DocumentId>,
    /// Documents whose bytes no longer match their SHA-256.
    pub checksum_mismatches: Vec<DocumentId>,
    /// Objects read back in full.
    pub verified: usize,
    /// Multipart uploads abandoned longer than the grace period, aborted.
    pub aborted_uploads: usize,
}

impl Report {
    /// Whether everything matched.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.size_mismatches.is_empty() && self.checksum_mismatches.is_empty()
    }
}

struct Row {
    id: DocumentId,
    size: i64,
    sha256: Vec<u8>,
    thumbnail_key: Option<String>,
}

/// How far the scrub's rotation has come: documents re-hashed within `period`, of all documents.
pub async fn scrub_coverage(pool: &PgPool, period: Duration) -> Result<(i64, i64)> {
    let status = integrity_status(pool, period).await?;
    Ok((status.rehashed, status.documents))
}

/// The state of the integrity checks, as the admin dashboard and the metrics show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntegrityStatus {
    /// All documents.
    pub documents: i64,
    /// Documents re-hashed within the scrub period.
    pub rehashed: i64,
    /// Documents the integrity check flagged.
    pub flagged: i64,
    /// When a reconcile run last finished, on any replica.
    pub last_reconcile: Option<OffsetDateTime>,
}

/// The integrity status, in one statement: the scrub's coverage over `period`, the flagged documents
/// and the last reconcile.
pub async fn integrity_status(pool: &PgPool, period: Duration) -> Result<IntegrityStatus> {
    let row = sqlx::query!(
        r#"select count(*) as "documents!",
                  count(*) filter (where rehashed_at > now() - make_interval(secs => $1::float8)) as "rehashed!",
                  count(*) filter (where integrity_problem is not null) as "flagged!",
                  (select finished_at from background_runs where task = 'reconcile') as "last_reconcile?"
           from documents"#,
        period.as_secs_f64()
    )
    .fetch_one(pool)
    .await?;
    Ok(IntegrityStatus {
        documents: row.documents,
        rehashed: row.rehashed,
        flagged: row.flagged,
        last_reconcile: row.last_reconcile,
    })
}

/// One reconcile run. `None` when another replica is running one.
#[tracing::instrument(skip_all, fields(bucket = store.bucket()))]
pub async fn reconcile(pool: &PgPool, store: &ObjectStore, options: Options) -> Result<Option<Report>> {
    let report = run_exclusive(pool, ExclusiveTask::Reconcile, || run(pool, store, options)).await?;
    if report.is_some() {
        record_run(pool).await?;
    }
    Ok(report)
}

/// A reconcile run of the schedule: like [`reconcile`], but `None` also when any replica finished one
/// within the last half interval, so several replicas on the same interval run it once between them.
pub async fn reconcile_on_schedule(
    pool: &PgPool,
    store: &ObjectStore,
    options: Options,
) -> Result<Option<Report>> {
    let report = run_exclusive(pool, ExclusiveTask::Reconcile, || async {
        let recent = sqlx::query_scalar!(
            r#"select exists (select 1 from background_runs where task = 'reconcile'
                              and finished_at > now() - make_interval(secs => $1::float8)) as "recent!""#,
            options.run_interval.as_secs_f64() / 2.0
        )
        .fetch_one(pool)
        .await?;
        if recent {
            return Ok(None);
        }
        let report = run(pool, store, options).await?;
        record_run(pool).await?;
        Ok(Some(report))
    })
    .await?;
    Ok(report.flatten())
}

async fn record_run(pool: &PgPool) -> sqlx::Result<()> {
    sqlx::query!(
        r#"insert into background_runs (task, finished_at) values ('reconcile', now())
           on conflict (task) do update set finished_at = excluded.finished_at"#
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Which of `candidates` (objects without a document when the run started) are orphans, asked again
/// now: still no document, and no upload announced within `upload_grace`. Stale announcements among them
/// are removed first, in their own statement, so an upload recording its rows at this moment either
/// finds its announcement gone (and records nothing) or has committed before the second look.
async fn orphans(pool: &PgPool, candidates: &[&str], upload_grace: Duration) -> sqlx::Result<Vec<String>> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let grace = upload_grace.as_secs_f64();
    let mut tx = pool.begin().await?;
    sqlx::query!(
        r#"delete from upload_intents
           where object_key = any($1) and started_at <= now() - make_interval(secs => $2::float8)"#,
        candidates as &[&str],
        grace,
    )
    .execute(&mut *tx)
    .await?;
    let orphans = sqlx::query_scalar!(
        r#"select key as "key!" from unnest($1::text[]) as key
           where not exists (select 1 from documents d where d.object_key = key or d.thumbnail_key = key)
             and not exists (select 1 from upload_intents i where i.object_key = key)"#,
        candidates as &[&str],
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(orphans)
}

async fn run(pool: &PgPool, store: &ObjectStore, options: Options) -> Result<Report> {
    let cutoff = OffsetDateTime::now_utc() - options.grace;
    let mut report = Report::default();
    let rows: HashMap<String, Row> = sqlx::query!(
        r#"select id as "id: DocumentId", object_key, size_bytes, sha256, thumbnail_key from documents"#
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|row| {
        (
            row.object_key,
            Row {
                id: row.id,
                size: row.size_bytes,
                sha256: row.sha256,
                thumbnail_key: row.thumbnail_key,
            },
        )
    })
    .collect();
    let thumbnails: std::collections::HashSet<&str> = rows
        .values()
        .filter_map(|row| row.thumbnail_key.as_deref())
        .collect();
    report.documents = rows.len();

    let mut objects = store.list(StorageKey::DOCUMENTS).await?;
    objects.extend(store.list(StorageKey::THUMBNAILS).await?);
    report.objects = objects.len();
    let mut present: HashMap<&str, u64> = HashMap::new();
    let mut candidates: Vec<&str> = Vec::new();
    for object in &objects {
        let known = rows.contains_key(&object.key) || thumbnails.contains(object.key.as_str());
        if known {
            present.insert(&object.key, object.size);
            continue;
        }
        let old_enough = object.last_modified.is_none_or(|modified| modified < cutoff);
        if StorageKey::parse(&object.key).is_some() && old_enough {
            candidates.push(&object.key);
        }
    }
    for key in orphans(pool, &candidates, options.upload_grace).await? {
        store.delete(&key).await?;
        tracing::warn!(%key, "removed an object no document refers to");
        report.removed_orphans.push(key);
    }

    let mut problems: Vec<(DocumentId, String)> = Vec::new();
    for (key, row) in &rows {
        match present.get(key.as_str()) {
            None => {
                report.missing.push(row.id);
                problems.push((row.id, "the object is missing from the bucket".to_owned()));
            }
            Some(size) if *size != row.size.max(0) as u64 => {
                report.size_mismatches.push(row.id);
                problems.push((
                    row.id,
                    format!("the object has {size} bytes, the database says {}", row.size),
                ));
            }
            Some(_) => {}
        }
    }

    // Read back everything already flagged for a checksum mismatch (so a flag is only cleared after the
    // bytes were checked again), plus this run's share of the rotation: the longest-unchecked first.
    let batch = scrub_batch(
        rows.len() as i64,
        options.verify_sample,
        options.scrub_period,
        options.run_interval,
    );
    let sample = sqlx::query_scalar!(
        r#"(select object_key as "key!" from documents where integrity_problem = $2)
           union
           (select object_key as "key!" from documents
            order by integrity_problem is not null, rehashed_at nulls first, id limit $1)"#,
        batch,
        CHECKSUM_PROBLEM
    )
    .fetch_all(pool)
    .await?;
    let mut verified_clean: Vec<uuid::Uuid> = Vec::new();
    let mut rehashed: Vec<uuid::Uuid> = Vec::new();
    for key in sample {
        let Some(row) = rows.get(&key) else { continue };
        if !present.contains_key(key.as_str()) || problems.iter().any(|(id, _)| *id == row.id) {
            continue;
        }
        let (sha256, _) = store.sha256_of(&key).await?;
        report.verified += 1;
        rehashed.push(row.id.0);
        if sha256[..] == row.sha256[..] {
            verified_clean.push(row.id.0);
        } else {
            report.checksum_mismatches.push(row.id);
            problems.push((row.id, CHECKSUM_PROBLEM.to_owned()));
        }
    }

    sqlx::query!(
        "update documents set rehashed_at = now() where id = any($1)",
        &rehashed
    )
    .execute(pool)
    .await?;
    let flagged: Vec<uuid::Uuid> = problems.iter().map(|(id, _)| id.0).collect();
    let messages: Vec<String> = problems.into_iter().map(|(_, message)| message).collect();
    let mut tx = pool.begin().await?;
    sqlx::query!(
        r#"update documents set integrity_problem = null, integrity_checked_at = now()
           where integrity_problem is not null and not (id = any($1))
             and (integrity_problem <> $2 or id = any($3))"#,
        &flagged,
        CHECKSUM_PROBLEM,
        &verified_clean
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        r#"update documents d set integrity_problem = p.problem, integrity_checked_at = now()
           from unnest($1::uuid[], $2::text[]) as p(id, problem) where d.id = p.id"#,
        &flagged,
        &messages
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;

    report.aborted_uploads = store
        .abort_stale_uploads(OffsetDateTime::now_utc() - options.upload_grace)
        .await?;
    // Announcements of uploads that never finished (a crashed server): their multipart uploads are
    // aborted by the id recorded with them (not every store can list them), then they go.
    let stale = sqlx::query!(
        r#"select object_key, upload_id as "upload_id!" from upload_intents
           where upload_id is not null and started_at <= now() - make_interval(secs => $1::float8)"#,
        options.upload_grace.as_secs_f64(),
    )
    .fetch_all(pool)
    .await?;
    for upload in stale {
        match store.abort_upload(&upload.object_key, &upload.upload_id).await {
            Ok(()) => report.aborted_uploads += 1,
            Err(crate::storage::StorageError::NotFound) => {}
            Err(err) => return Err(err.into()),
        }
    }
    sqlx::query!(
        "delete from upload_intents where started_at <= now() - make_interval(secs => $1::float8)",
        options.upload_grace.as_secs_f64(),
    )
    .execute(pool)
    .await?;
    Ok(report)
}
