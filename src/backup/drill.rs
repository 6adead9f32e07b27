//! Restore drills: proof that the newest snapshot restores. The drill loads the snapshot's database into
//! a scratch database (emptied first; never the live one), streams and hashes every object without
//! writing it anywhere, compares everything with the manifest, and records the result twice: as a row
//! in the live database when it can reach it, and always as a small report object in the backup bucket
//! (`drills/…`), which the server imports, so a drill run where the key lives, without access to the
//! live database, still shows on the admin page. The report holds no medical data (a snapshot id, a
//! time, counts and problems naming backup objects), so it is stored unencrypted (the server, which has
//! no private key, must read it) and signed (so the bucket's credentials cannot forge one). The scratch
//! database is emptied again after each drill: the restored records do not stay there.

use super::{
    BackupKeys, Identities,
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

/// What identifies a database wherever it is reached from (a Unix socket, `127.0.0.1`, `::1`, a host
/// name): the cluster's system identifier and the database's oid in it.
async fn identity_of(pool: &PgPool) -> Result<(i64, u32)> {
    let row: (i64, sqlx::postgres::types::Oid) = sqlx::query_as(
        "select (select system_identifier from pg_control_system()),
                (select oid from pg_database where datname = current_database())",
    )
    .fetch_one(pool)
    .await
    .map_err(|err| {
        Error::Conflict(format!(
            "cannot tell which database the drill would empty (it reads pg_control_system()): {err}"
        ))
    })?;
    Ok((row.0, row.1.0))
}

/// Empties the scratch database: every schema dropped, an empty `public` made again.
async fn empty_database(pool: &PgPool) -> Result<()> {
    let schemas: Vec<String> = sqlx::query_scalar(
        "select nspname::text from pg_namespace
         where nspname not in ('pg_catalog', 'information_schema', 'pg_toast') and nspname not like 'pg_temp%'
           and nspname not like 'pg_toast_temp%'",
    )
    .fetch_all(pool)
    .await?;
    for schema in schemas {
        let statement = format!("drop schema {} cascade", super::dump::quote(&schema));
        pool.execute(statement.as_str()).await?;
    }
    pool.execute("create schema public").await?;
    Ok(())
}

/// Runs a drill of the newest snapshot readable with `identities` into the scratch database `scratch`.
/// `live` is the live database when reachable (the result is recorded there too, and the scratch
/// database is refused if it is the live one).
pub async fn drill(
    store: &ObjectStore,
    identities: &Identities,
    keys: &BackupKeys,
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
        scratch_pool.close().await;
        return Err(Error::Conflict(
            "PAWFILE_BACKUP_DRILL_DATABASE_URL names the live database: a drill empties its database first, \
             so it needs a scratch database of its own"
                .to_owned(),
        ));
    }
    let (manifests, _) = read_manifests(store, Some(identities), keys).await?;
    let Some(newest) = manifests.last() else {
        scratch_pool.close().await;
        return Err(Error::Conflict(
            "no snapshot in the backup bucket can be read with the drill key (and is signed by a trusted key)"
                .to_owned(),
        ));
    };
    let manifest = &newest.manifest;
    let encrypted = manifest.recipients != UNENCRYPTED;
    empty_database(&scratch_pool).await?;

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
    // The restored medical data does not stay in the scratch database between drills.
    if let Err(err) = empty_database(&scratch_pool).await {
        problems.push(format!(
            "the scratch database could not be emptied afterwards: {err}"
        ));
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
    let name = format!("{DRILL_PREFIX}{}", report.id.simple());
    let signed = keys.seal(&name, &json).map_err(Error::Conflict)?;
    store
        .put_bytes(&name, Bytes::from(signed), "application/octet-stream")
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
/// the key lives, without access to the live database). A report no trusted key signed for its name is
/// refused and recorded as such (see [`super::refusals`]). Returns how many were new.
pub async fn import_reports(pool: &PgPool, store: &ObjectStore, keys: &BackupKeys) -> Result<usize> {
    let known: Vec<Uuid> = sqlx::query_scalar!("select id from backup_drills")
        .fetch_all(pool)
        .await?;
    let refused: Vec<String> = super::refusals::list(pool)
        .await?
        .into_iter()
        .map(|refusal| refusal.name)
        .collect();
    let mut imported = 0;
    let listed = store.list(DRILL_PREFIX).await?;
    let names: Vec<String> = listed.iter().map(|object| object.key.clone()).collect();
    super::refusals::forget_gone(pool, DRILL_PREFIX, &names).await?;
    for object in listed {
        let Some(id) = object
            .key
            .strip_prefix(DRILL_PREFIX)
            .and_then(|name| Uuid::parse_str(name).ok())
        else {
            continue;
        };
        if known.contains(&id) || refused.contains(&object.key) {
            continue;
        }
        let report =
            super::signing::read_signed(store, keys, &object.key, super::signing::SMALL_OBJECT_MAX_BYTES)
                .await?
                .and_then(|json| {
                    serde_json::from_slice::<DrillReport>(&json)
                        .ok()
                        .filter(|report| report.id == id)
                        .ok_or_else(|| "it is not a drill report of that id".to_owned())
                });
        match report {
            Ok(report) => {
                record(pool, &report).await?;
                imported += 1;
            }
            Err(why) => {
                tracing::warn!(object = %object.key, %why, "a drill report in the backup bucket is refused");
                super::refusals::record(pool, &object.key, &why).await?;
            }
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
        let keys = &self.policy.keys;
        let result = async {
            import_reports(&self.pool, &self.store, keys).await?;
            drill(&self.store, identities, keys, scratch, Some(&self.pool)).await
        }
        .await;
        lock.release().await;
        result.map(Some)
    }

    /// Whether a drill is due: none in the last 7 days, and a complete snapshot to drill.
    pub async fn drill_due(&self) -> Result<bool> {
        import_reports(&self.pool, &self.store, &self.policy.keys).await?;
        Ok(sqlx::query_scalar!(
            r#"select exists (select 1 from backup_runs where status = 'complete' and pruned_at is null)
                  and not exists (select 1 from backup_drills where at > now() - interval '7 days') as "due!""#
        )
        .fetch_one(&self.pool)
        .await?)
    }
}
