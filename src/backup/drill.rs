//! Restore drills: proof that the newest snapshot restores. The drill loads the snapshot's database into
//! a scratch database (emptied first; never the live one), streams and hashes every object without
//! writing it anywhere, compares everything with the manifest, and records the result twice: as a row
//! in the live database when it can reach it, and always as a small report object in the backup bucket
//! (`drills/…`), which the server imports, so a drill run where the key lives, without access to the
//! live database, still shows on the admin page. The report holds no medical data (a snapshot id, a
//! time, counts and problems naming backup objects), so it is stored unencrypted: the server, which has
//! no private key, must read it.

use super::{
    Identities,
    crypto::UNENCRYPTED,
    restore::{Plaintext, Quiet, load_database, read_manifests},
};
use crate::{
    audit::{self, Action},
    error::{Error, Result},
    storage::ObjectStore,
};
use bytes::Bytes;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::{Executor, PgPool, postgres::PgPoolOptions};
use std::str::FromStr;
use time::OffsetDateTime;
use uuid::Uuid;

/// Prefix of drill reports in the backup bucket.
pub const DRILL_PREFIX: &str = "drills/";

/// What a drill found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DrillReport {
    /// The drill's id.
    pub id: Uuid,
    /// The snapshot it restored.
    pub snapshot: Uuid,
    /// When it ran.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Whether everything matched the manifest.
    pub passed: bool,
    /// Rows loaded into the scratch database.
    pub rows: u64,
    /// Objects read and hashed.
    pub objects: usize,
    /// What did not match, naming the backup object.
    pub problems: Vec<String>,
}

/// The newest snapshot a drill passed on, if any.
pub async fn newest_passed(pool: &PgPool) -> Result<Option<Uuid>> {
    Ok(
        sqlx::query_scalar!("select run_id from backup_drills where passed order by at desc limit 1")
            .fetch_optional(pool)
            .await?,
    )
}

/// Identifies a database server and database, to refuse drilling into the live one.
async fn identity_of(pool: &PgPool) -> Result<(String, String)> {
    let row: (String, String) = sqlx::query_as(
        "select coalesce(host(inet_server_addr()), 'socket') || ':' || coalesce(inet_server_port(), 0)::text
                || ' started ' || pg_postmaster_start_time()::text,
                current_database()::text",
    )
    .fetch_one(pool)
    .await?;
    Ok(row)
}

/// Runs a drill of the newest snapshot readable with `identities` into the scratch database `scratch`.
/// `live` is the live database when reachable (the result is recorded there too, and the scratch
/// database is refused if it is the live one).
pub async fn drill(
    store: &ObjectStore,
    identities: &Identities,
    scratch: &SecretString,
    live: Option<&PgPool>,
) -> Result<DrillReport> {
    let options = sqlx::postgres::PgConnectOptions::from_str(scratch.expose_secret()).map_err(|err| {
        Error::Conflict(format!(
            "PAWFILE_BACKUP_DRILL_DATABASE_URL is not a Postgres URL: {err}"
        ))
    })?;
    let scratch_pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .map_err(|err| Error::Conflict(format!("cannot connect to the drill database: {err}")))?;
    if let Some(live) = live
        && identity_of(live).await? == identity_of(&scratch_pool).await?
    {
        return Err(Error::Conflict(
            "PAWFILE_BACKUP_DRILL_DATABASE_URL names the live database: a drill empties its database first, \
             so it needs a scratch database of its own"
                .to_owned(),
        ));
    }
    let (manifests, _) = read_manifests(store, Some(identities)).await?;
    let Some(newest) = manifests.last() else {
        return Err(Error::Conflict(
            "no snapshot in the backup bucket can be read with the drill key".to_owned(),
        ));
    };
    let manifest = &newest.manifest;
    let encrypted = manifest.recipients != UNENCRYPTED;
    // Empty the scratch database.
    let schemas: Vec<String> = sqlx::query_scalar(
        "select nspname::text from pg_namespace
         where nspname not in ('pg_catalog', 'information_schema', 'pg_toast') and nspname not like 'pg_temp%'
           and nspname not like 'pg_toast_temp%'",
    )
    .fetch_all(&scratch_pool)
    .await?;
    for schema in schemas {
        let statement = format!("drop schema {} cascade", super::dump::quote(&schema));
        scratch_pool.execute(statement.as_str()).await?;
    }
    scratch_pool.execute("create schema public").await?;

    let mut problems = Vec::new();
    let rows = match load_database(
        &scratch_pool,
        manifest,
        store,
        encrypted,
        Some(identities),
        &Quiet,
    )
    .await
    {
        Ok(rows) => rows,
        Err(err) => {
            problems.push(format!("the database does not load: {err}"));
            0
        }
    };
    let mut objects = 0;
    for object in &manifest.objects {
        objects += 1;
        let drained = match Plaintext::open(store, &object.stored, encrypted, Some(identities)).await {
            Ok(plaintext) => plaintext.drain().await.map(|_| ()),
            Err(err) => Err(err),
        };
        if let Err(err) = drained {
            problems.push(format!("{} ({}): {err}", object.stored.object, object.key));
        }
    }
    scratch_pool.close().await;
    let report = DrillReport {
        id: Uuid::now_v7(),
        snapshot: manifest.snapshot,
        at: OffsetDateTime::now_utc(),
        passed: problems.is_empty(),
        rows,
        objects,
        problems,
    };
    let json = serde_json::to_vec(&report).map_err(anyhow::Error::from)?;
    store
        .put_bytes(
            &format!("{DRILL_PREFIX}{}", report.id.simple()),
            Bytes::from(json),
            "application/octet-stream",
        )
        .await?;
    if let Some(live) = live {
        record(live, &report).await?;
        audit::record(
            live,
            audit::Event::new(Action::BackupDrill, None, None)
                .target("backup", report.snapshot)
                .detail(serde_json::json!({ "passed": report.passed, "problems": report.problems.len() })),
        )
        .await?;
    }
    Ok(report)
}

async fn record(pool: &PgPool, report: &DrillReport) -> Result<()> {
    sqlx::query!(
        "insert into backup_drills (id, run_id, at, passed, detail) values ($1, $2, $3, $4, $5)
         on conflict (id) do nothing",
        report.id,
        report.snapshot,
        report.at,
        report.passed,
        if report.passed {
            format!("{} rows, {} objects", report.rows, report.objects)
        } else {
            report.problems.join("; ")
        }
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Imports drill reports from the backup bucket that the database does not know yet (drills run where
/// the key lives, without access to the live database). Returns how many were new.
pub async fn import_reports(pool: &PgPool, store: &ObjectStore) -> Result<usize> {
    let known: Vec<Uuid> = sqlx::query_scalar!("select id from backup_drills")
        .fetch_all(pool)
        .await?;
    let mut imported = 0;
    for object in store.list(DRILL_PREFIX).await? {
        let Some(id) = object
            .key
            .strip_prefix(DRILL_PREFIX)
            .and_then(|name| Uuid::parse_str(name).ok())
        else {
            continue;
        };
        if known.contains(&id) {
            continue;
        }
        let bytes = store.get_bytes(&object.key).await?;
        match serde_json::from_slice::<DrillReport>(&bytes) {
            Ok(report) if report.id == id => {
                record(pool, &report).await?;
                imported += 1;
            }
            _ => tracing::warn!(object = %object.key, "ignoring a drill report that does not parse"),
        }
    }
    Ok(imported)
}

impl super::Backups {
    /// Runs a drill under the backup lock (so no backup or prune changes the bucket meanwhile), after
    /// importing reports of drills run elsewhere. `None` while a backup, prune or drill runs.
    pub async fn drill(
        &self,
        identities: &Identities,
        scratch: &SecretString,
    ) -> Result<Option<DrillReport>> {
        let Some(lock) = super::RunLock::try_take(&self.pool).await? else {
            return Ok(None);
        };
        let result = async {
            import_reports(&self.pool, &self.store).await?;
            drill(&self.store, identities, scratch, Some(&self.pool)).await
        }
        .await;
        lock.release().await;
        result.map(Some)
    }

    /// Whether a drill is due: none in the last 7 days, and a complete snapshot to drill.
    pub async fn drill_due(&self) -> Result<bool> {
        import_reports(&self.pool, &self.store).await?;
        Ok(sqlx::query_scalar!(
            r#"select exists (select 1 from backup_runs where status = 'complete' and pruned_at is null)
                  and not exists (select 1 from backup_drills where at > now() - interval '7 days') as "due!""#
        )
        .fetch_one(&self.pool)
        .await?)
    }
}
