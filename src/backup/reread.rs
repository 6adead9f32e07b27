//! The daily re-read: a share of the catalogued backup objects is downloaded each day and its
//! ciphertext re-hashed (no private key needed), the least recently read first, so that every object
//! is read back within the retention period and damage or loss is found while a good copy can still be
//! made. A missing or altered object is marked missing, with what is wrong with it, until a backup
//! stores it again (the next one that needs it does); the Backups page lists it meanwhile.

use super::{Backups, RunLock};
use crate::{error::Result, storage::StorageError};
use sqlx::PgPool;

/// What one day's share found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RereadReport {
    /// Objects read.
    pub read: usize,
    /// Objects gone or altered, each with why.
    pub problems: Vec<String>,
}

/// How many of `total` objects one day reads, so that all are read within `days` days.
pub fn daily_share(total: u64, days: u32) -> u64 {
    total.div_ceil(u64::from(days.max(1)))
}

impl Backups {
    /// Re-reads today's share of the catalogue (see the module), under the backup lock: `None` while a
    /// backup, prune or drill runs (the next day's share catches up).
    pub async fn reread_share(&self) -> Result<Option<RereadReport>> {
        let Some(lock) = RunLock::try_take(&self.pool).await? else {
            return Ok(None);
        };
        let result = self.reread_locked().await;
        lock.release().await;
        result.map(Some)
    }

    async fn reread_locked(&self) -> Result<RereadReport> {
        let total: i64 = sqlx::query_scalar!(r#"select count(*) as "count!" from backup_objects"#)
            .fetch_one(&self.pool)
            .await?;
        let share = daily_share(
            u64::try_from(total).unwrap_or(0),
            self.policy.retention.horizon_days(),
        );
        let objects = sqlx::query!(
            "select name, ciphertext_size, ciphertext_sha256 from backup_objects
             order by last_read_at nulls first, name limit $1",
            i64::try_from(share).unwrap_or(i64::MAX)
        )
        .fetch_all(&self.pool)
        .await?;
        let mut report = RereadReport::default();
        for object in objects {
            let problem = match self.store.sha256_of(&object.name).await {
                Ok((sha256, size))
                    if sha256[..] == object.ciphertext_sha256[..]
                        && size as i64 == object.ciphertext_size =>
                {
                    None
                }
                Ok(_) => Some("its bytes changed: the SHA-256 differs from the catalogue".to_owned()),
                Err(StorageError::NotFound) => Some("it is missing from the backup bucket".to_owned()),
                Err(err) => return Err(err.into()),
            };
            report.read += 1;
            if let Some(why) = problem {
                damaged(&self.pool, &object.name, &why).await?;
                report.problems.push(format!("{}: {why}", object.name));
            }
            sqlx::query!(
                "update backup_objects set last_read_at = now() where name = $1",
                object.name
            )
            .execute(&self.pool)
            .await?;
        }
        if !report.problems.is_empty() {
            tracing::error!(problems = ?report.problems, "the daily re-read found damaged backup objects");
        }
        Ok(report)
    }
}

/// Marks `name` missing (so the next backup that needs it stores it again), with what is wrong with it
/// (shown on the Backups page until then).
async fn damaged(pool: &PgPool, name: &str, why: &str) -> Result<()> {
    sqlx::query!(
        "update backup_objects set missing_since = coalesce(missing_since, now()), damage = $2 where name = $1",
        name,
        why
    )
    .execute(pool)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::daily_share;

    #[test]
    fn every_object_is_read_within_the_horizon() {
        for (total, days) in [(0, 30), (1, 372), (1000, 372), (372, 372), (373, 372), (5, 1)] {
            let share = daily_share(total, days);
            assert!(share * u64::from(days) >= total, "{total} objects in {days} days");
            assert!(share <= total.max(1));
        }
        assert_eq!(daily_share(1000, 372), 3);
    }
}
