//! Restore drills: proof that the newest snapshot restores.

use crate::error::Result;
use sqlx::PgPool;
use uuid::Uuid;

/// The newest snapshot a drill passed on, if any.
pub async fn newest_passed(pool: &PgPool) -> Result<Option<Uuid>> {
    Ok(
        sqlx::query_scalar!("select run_id from backup_drills where passed order by at desc limit 1")
            .fetch_optional(pool)
            .await?,
    )
}
