//! Objects in the backup bucket that Pawfile refused to believe (unsigned, signed by an unknown key,
//! altered, or copied under another name), as the background work that reads them back found them.
//! The Backups page lists them from here (a page never reads the bucket) and `pawfile backup verify`
//! names them; each stays until an operator removes the object and the next check no longer finds it.

use crate::error::Result;
use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;

/// One refused object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// Its name in the backup bucket.
    pub name: String,
    /// Why it was refused.
    pub reason: String,
    /// When it was first found.
    #[serde(with = "time::serde::rfc3339")]
    pub found_at: OffsetDateTime,
}

/// Records that `name` was refused, for `reason` (once; a later finding updates the reason).
pub async fn record(pool: &PgPool, name: &str, reason: &str) -> Result<()> {
    sqlx::query!(
        "insert into backup_refused_objects (name, reason) values ($1, $2)
         on conflict (name) do update set reason = excluded.reason",
        name,
        reason
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets refusals under `prefix` whose objects are no longer in `present` (an operator removed them).
pub async fn forget_gone(pool: &PgPool, prefix: &str, present: &[String]) -> Result<()> {
    sqlx::query!(
        "delete from backup_refused_objects where starts_with(name, $1) and name <> all($2)",
        prefix,
        present
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets the refusals of `names` (they are believed now).
pub async fn forget(pool: &PgPool, names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    sqlx::query!("delete from backup_refused_objects where name = any($1)", names)
        .execute(pool)
        .await?;
    Ok(())
}

/// Every refusal, newest first.
pub async fn list(pool: &PgPool) -> Result<Vec<Refusal>> {
    Ok(sqlx::query_as!(
        Refusal,
        "select name, reason, found_at from backup_refused_objects order by found_at desc, name"
    )
    .fetch_all(pool)
    .await?)
}
