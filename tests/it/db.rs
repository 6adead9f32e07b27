//! The server's connection pool against a real Postgres.

use pawfile::{
    db::{MIGRATOR, PING_AFTER_IDLE, pool},
    testing::SETTLE,
};
use sqlx::{
    Connection, PgConnection, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use std::time::Duration;

async fn backend(pool: &PgPool) -> sqlx::Result<i32> {
    sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(pool)
        .await
}

/// Ends the backend `pid` from a connection of its own and waits until it is gone.
async fn terminate(options: &PgConnectOptions, pid: i32) {
    let mut admin = PgConnection::connect_with(options).await.unwrap();
    let ended: bool = sqlx::query_scalar("select pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(ended, "backend {pid} was not there to end");
    let deadline = tokio::time::Instant::now() + SETTLE;
    while tokio::time::Instant::now() < deadline {
        let alive: bool = sqlx::query_scalar("select exists (select from pg_stat_activity where pid = $1)")
            .bind(pid)
            .fetch_one(&mut admin)
            .await
            .unwrap();
        if !alive {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("backend {pid} did not end within {SETTLE:?}");
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_connection_postgres_closed_while_idle_is_replaced_not_handed_out(
    _: PgPoolOptions,
    options: PgConnectOptions,
) {
    let pool = pool(options.clone(), 1).await.unwrap();
    let first = backend(&pool).await.unwrap();

    // Idle past the threshold: checked before use, so the request never sees the dead connection.
    terminate(&options, first).await;
    tokio::time::sleep(PING_AFTER_IDLE + Duration::from_millis(200)).await;
    let second = backend(&pool)
        .await
        .expect("the closed connection was handed out");
    assert_ne!(second, first);

    // Closed between two statements of steady use (no check): at most the next statement fails, and the
    // pool does not keep the broken connection.
    terminate(&options, second).await;
    let _ = backend(&pool).await;
    let third = backend(&pool)
        .await
        .expect("the broken connection went back into the pool");
    assert_ne!(third, second);
}

/// Background runs that hold their locks at the same moment, each then asking the pool for a connection,
/// all finish even when the pool is smaller than their number: a run's lock never takes a pooled
/// connection.
#[sqlx::test(migrator = "MIGRATOR")]
async fn background_runs_at_once_never_wait_on_connections_they_hold(pool: PgPool) {
    use pawfile::db::{ExclusiveTask, run_exclusive};
    let small = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(3))
        .connect_with((*pool.connect_options()).clone())
        .await
        .unwrap();
    let tasks = [
        ExclusiveTask::Housekeeping,
        ExclusiveTask::PurgeTrash,
        ExclusiveTask::Thumbnails,
        ExclusiveTask::Reconcile,
    ];
    let all_locked = std::sync::Arc::new(tokio::sync::Barrier::new(tasks.len()));
    let runs = tasks.map(|task| {
        let (small, all_locked) = (small.clone(), all_locked.clone());
        async move {
            run_exclusive(&small, task, || async {
                all_locked.wait().await;
                let one: i32 = sqlx::query_scalar("select 1").fetch_one(&small).await?;
                Ok(one)
            })
            .await
        }
    });
    let finished = tokio::time::timeout(Duration::from_secs(20), futures::future::join_all(runs))
        .await
        .expect("the runs finished: none waited on another's connection");
    for run in finished {
        assert_eq!(run.unwrap(), Some(1));
    }
}
