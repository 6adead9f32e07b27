//! Background work that runs beside the server under one shutdown signal. Each run takes a Postgres
//! advisory lock, so with several replicas only one does it at a time; tests call a run directly.

use crate::{
    audit,
    db::{ExclusiveTask, run_exclusive},
    error::Result,
    rate_limit,
};
use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What one housekeeping run removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HousekeepingReport {
    /// Expired sessions deleted.
    pub expired_sessions: u64,
    /// Stale rate-limit counters deleted.
    pub stale_counters: u64,
    /// Marks of ended view windows deleted (see [`audit::record_view`]).
    pub ended_view_marks: u64,
    /// Sent or given-up mail older than 30 days deleted.
    pub old_mail: u64,
    /// Expired sign-up and password-reset links deleted.
    pub expired_links: u64,
}

/// Deletes expired sessions, stale rate-limit counters, the marks of ended view windows, old mail and
/// expired account links. `None` when another replica is doing it.
#[tracing::instrument(skip_all)]
pub async fn housekeeping_once(pool: &PgPool) -> Result<Option<HousekeepingReport>> {
    let report = run_exclusive(pool, ExclusiveTask::Housekeeping, || async {
        let expired_sessions = sqlx::query!("delete from tower_sessions.session where expiry_date < now()")
            .execute(pool)
            .await?
            .rows_affected();
        Ok(expired_sessions)
    })
    .await?;
    let Some(expired_sessions) = report else {
        return Ok(None);
    };
    let stale_counters = rate_limit::prune(pool).await?;
    let ended_view_marks = audit::prune_view_marks(pool).await?;
    let old_mail = crate::mail::prune(pool).await?;
    let expired_links = crate::auth::prune_links(pool).await?;
    Ok(Some(HousekeepingReport {
        expired_sessions,
        stale_counters,
        ended_view_marks,
        old_mail,
        expired_links,
    }))
}

/// What a background run's result says about whether it ran: `None` from a task under an advisory lock
/// means another replica was running it.
pub trait Ran {
    /// Whether another replica held the task, so this run did nothing.
    fn skipped(&self) -> bool {
        false
    }
}

impl<T> Ran for Option<T> {
    fn skipped(&self) -> bool {
        self.is_none()
    }
}

impl Ran for u64 {}
impl Ran for usize {}

/// Runs `work` every `every` until `shutdown` fires, logging failures and carrying on, and counting each
/// run in `metrics` (`pawfile_task_runs_total`).
#[tracing::instrument(skip_all, fields(task = name))]
pub async fn run_periodically<F, Fut, T>(
    name: &'static str,
    every: Duration,
    shutdown: CancellationToken,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    mut work: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
    T: std::fmt::Debug + Ran,
{
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticks.tick() => {}
        }
        match work().await {
            Ok(outcome) => {
                metrics.task_run(name, if outcome.skipped() { "skipped" } else { "ok" });
                tracing::debug!(task = name, ?outcome, "background task ran");
            }
            Err(err) => {
                metrics.task_run(name, "failed");
                tracing::warn!(task = name, error = %err, "background task failed; will retry");
            }
        }
    }
}
