//! Postgres: the pool, the migrations, and advisory locks for work only one replica may do at a time.

use crate::error::{Result, StartupError, root_cause};
use sqlx::{
    Connection, PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use std::time::Duration;

/// The schema migrations in `migrations/`.
pub static MIGRATOR: Migrator = sqlx::migrate!();

/// A pooled connection idle for longer than this is pinged before it is handed out, so one that
/// Postgres closed meanwhile (a restart, an idle timeout, a failover) is replaced instead of failing a
/// request. Connections in steady use skip the round trip (sqlx would otherwise ping every time).
pub const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The server's pool on `options`: at most `max_connections`, a connection idle for
/// [`PING_AFTER_IDLE`] checked before use.
pub async fn pool(options: PgConnectOptions, max_connections: u32) -> sqlx::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_AFTER_IDLE {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_with(options)
        .await
}

/// Brings the schema up to date.
pub async fn migrate(pool: &PgPool) -> Result<(), StartupError> {
    MIGRATOR
        .run(pool)
        .await
        .map_err(|err| StartupError::new("DATABASE_URL", format!("migrations failed: {}", root_cause(&err))))
}

/// Work that must run on one replica at a time. The number is the Postgres advisory lock key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i64)]
pub enum ExclusiveTask {
    /// Deleting expired sessions and stale rate-limit counters.
    Housekeeping = 0x7061_7766_0001,
    /// Purging documents whose time in the trash is over.
    PurgeTrash = 0x7061_7766_0002,
    /// Making thumbnails.
    Thumbnails = 0x7061_7766_0003,
    /// Comparing the bucket with the database.
    Reconcile = 0x7061_7766_0004,
}

/// Runs `work` if no other replica is running `task`, holding a transaction-scoped advisory lock for its
/// duration. Returns `None` when another replica holds the lock. If `work` fails, the transaction (and
/// with it the lock) is rolled back and its error returned.
///
/// The lock lives on a connection of its own, outside the pool: `work` takes pool connections as it
/// needs them, so background tasks running at once never wait on connections they hold themselves
/// (with a small pool, tasks each holding one pooled connection while asking for another would wait on
/// each other until the acquire timeout).
#[tracing::instrument(level = "debug", skip_all, fields(task = ?task))]
pub async fn run_exclusive<T, F, Fut>(pool: &PgPool, task: ExclusiveTask, work: F) -> Result<Option<T>>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect_with(&pool.connect_options()).await?;
    let mut tx = connection.begin().await?;
    let locked: bool = sqlx::query_scalar!(
        r#"select pg_try_advisory_xact_lock($1) as "locked!""#,
        task as i64
    )
    .fetch_one(&mut *tx)
    .await?;
    if !locked {
        drop(tx);
        let _ = connection.close().await;
        return Ok(None);
    }
    let result = work().await;
    let finished = match result {
        Ok(result) => tx.commit().await.map(|()| result).map_err(Into::into),
        Err(err) => {
            drop(tx);
            Err(err)
        }
    };
    let _ = connection.close().await;
    finished.map(Some)
}

/// `%text%` for `LIKE`/`ILIKE`, with the wildcards and escape character in `text` taken literally.
pub fn contains_pattern(text: &str) -> String {
    format!(
        "%{}%",
        text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(super::contains_pattern("a%b_c\\d"), "%a\\%b\\_c\\\\d%");
    }
}
