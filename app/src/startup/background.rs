//! The background tasks beside the server, each a loop that stops with the shutdown token.

use crate::state::AppState;
use pawfile::{backup::schedule::BackupSchedule, tasks};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long after start-up the daily re-read of backup objects first runs.
const REREAD_FIRST_AFTER: Duration = Duration::from_secs(10 * 60);

/// How often the server looks for mail that is due (a retry, or mail queued by another replica); mail
/// queued here is sent at once.
const MAIL_INTERVAL: Duration = Duration::from_secs(5);

/// How often the server looks for problems to tell admins of by mail.
const ALERT_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// The background tasks beside the server, all stopping with `shutdown`.
pub(super) fn spawn_background_tasks(
    state: &AppState,
    shutdown: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let housekeeping = {
        let db = state.db.clone();
        tasks::run_periodically(
            "housekeeping",
            state.config.intervals.housekeeping,
            shutdown.clone(),
            state.metrics.clone(),
            move || {
                let db = db.clone();
                async move { tasks::housekeeping_once(&db).await }
            },
        )
    };
    let purge = {
        let (db, store, backups, keys, retention) = (
            state.db.clone(),
            state.documents.clone(),
            state.backups.clone(),
            state.backup.policy().keys.clone(),
            state.config.documents.trash_retention,
        );
        tasks::run_periodically(
            "purge trash",
            state.config.intervals.purge,
            shutdown.clone(),
            state.metrics.clone(),
            move || {
                let (db, store, backups, keys) = (db.clone(), store.clone(), backups.clone(), keys.clone());
                // Accounts whose deletion is due first: their uploads join the trash's purge.
                async move { pawfile::deletion::purge_due(&db, &store, &backups, &keys, retention).await }
            },
        )
    };
    let reconcile = {
        let (db, store) = (state.db.clone(), state.documents.clone());
        let defaults = pawfile::documents::reconcile::Options::default();
        let options = pawfile::documents::reconcile::Options {
            scrub_period: state.config.documents.scrub_period,
            run_interval: state.config.documents.reconcile_interval,
            upload_grace: state.config.documents.stale_upload_after,
            // An object without a document is an orphan once no upload can still be recording it.
            grace: defaults.grace.min(state.config.documents.stale_upload_after),
            ..defaults
        };
        tasks::run_periodically(
            "reconcile",
            state.config.documents.reconcile_interval,
            shutdown.clone(),
            state.metrics.clone(),
            move || {
                let (db, store) = (db.clone(), store.clone());
                async move { pawfile::documents::reconcile::reconcile_on_schedule(&db, &store, options).await }
            },
        )
    };
    let thumbnails = {
        let (db, store, signals, shutdown, metrics, every) = (
            state.db.clone(),
            state.documents.clone(),
            state.tasks.clone(),
            shutdown.clone(),
            state.metrics.clone(),
            state.config.intervals.thumbnails,
        );
        async move {
            loop {
                let result = pawfile::documents::thumbnails::make_pending(&db, &store).await;
                metrics.task_result("thumbnails", &result);
                if let Ok(Some(made)) = result {
                    metrics.thumbnails_made(made);
                }
                if let Err(err) = result {
                    tracing::warn!(error = %err, "thumbnail task failed; will retry");
                }
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = signals.thumbnails.notified() => {}
                    () = tokio::time::sleep(every) => {}
                }
            }
        }
    };
    let mail = {
        let (db, mailer, signals, shutdown, metrics) = (
            state.db.clone(),
            state.mailer.clone(),
            state.tasks.clone(),
            shutdown.clone(),
            state.metrics.clone(),
        );
        async move {
            loop {
                let result = pawfile::mail::deliver_due(&db, &mailer).await;
                metrics.task_run("mail", if result.is_ok() { "ok" } else { "failed" });
                let full = match result {
                    Ok(report) => {
                        if report.taken() > 0 {
                            tracing::debug!(?report, "mail delivery pass");
                        }
                        i64::from(report.taken()) >= pawfile::mail::BATCH
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "mail delivery failed; will retry");
                        false
                    }
                };
                if full {
                    continue;
                }
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = signals.mail.notified() => {}
                    () = tokio::time::sleep(MAIL_INTERVAL) => {}
                }
            }
        }
    };
    let usage = {
        let db = state.db.clone();
        tasks::run_periodically(
            "daily usage",
            state.config.intervals.usage,
            shutdown.clone(),
            state.metrics.clone(),
            move || {
                let db = db.clone();
                async move { pawfile::usage::record_today(&db).await }
            },
        )
    };
    let mut tasks = vec![
        tokio::spawn(usage),
        tokio::spawn(mail_files(state, shutdown)),
        tokio::spawn(mail),
        tokio::spawn(housekeeping),
        tokio::spawn(purge),
        tokio::spawn(reconcile),
        tokio::spawn(thumbnails),
    ];
    if state.config.admin_alerts {
        let (db, signals) = (state.db.clone(), state.tasks.clone());
        tasks.push(tokio::spawn(tasks::run_periodically(
            "admin alerts",
            ALERT_INTERVAL,
            shutdown.clone(),
            state.metrics.clone(),
            move || {
                let (db, signals) = (db.clone(), signals.clone());
                async move {
                    let new = pawfile::alerts::notify_admins(&db).await?;
                    if new > 0 {
                        signals.mail.notify_one();
                    }
                    Ok(new)
                }
            },
        )));
    }
    if state.config.backup_schedule != BackupSchedule::Off {
        let (backups, every, stop, metrics) = (
            state.backup.clone(),
            state.config.intervals.backup_reread,
            shutdown.clone(),
            state.metrics.clone(),
        );
        tasks.push(tokio::spawn(async move {
            // Not at start-up: the start-up backup goes first (both take the backup lock).
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every.min(REREAD_FIRST_AFTER)) => {}
            }
            tasks::run_periodically("backup re-read", every, stop, metrics, move || {
                let backups = backups.clone();
                async move { backups.reread_share().await }
            })
            .await;
        }));
        tasks.push(tokio::spawn(pawfile::backup::schedule::run_backups(
            state.backup.clone(),
            state.config.backup_schedule,
            shutdown.clone(),
        )));
        if let Some(drill) = state.config.backup_drill.clone() {
            tasks.push(tokio::spawn(pawfile::backup::schedule::run_drills(
                state.backup.clone(),
                drill,
                shutdown.clone(),
            )));
        }
    }
    tasks
}

/// Deletes mail written as files (no SMTP server) once it is older than its retention, hourly. Each
/// replica has its own data folder, so each does its own.
fn mail_files(state: &AppState, shutdown: &CancellationToken) -> impl Future<Output = ()> + use<> {
    let folder = match &state.mailer.transport {
        pawfile::mail::Transport::Folder(folder) => Some(folder.clone()),
        pawfile::mail::Transport::Smtp(_) => None,
    };
    let (retention, every) = (
        state.config.mail_file_retention,
        state.config.intervals.housekeeping,
    );
    tasks::run_periodically(
        "mail files",
        every,
        shutdown.clone(),
        state.metrics.clone(),
        move || {
            let folder = folder.clone();
            async move {
                let Some(folder) = folder else { return Ok(0) };
                tokio::task::spawn_blocking(move || pawfile::mail::prune_mail_files(&folder, retention))
                    .await
                    .map_err(anyhow::Error::from)?
                    .map_err(|err| pawfile::error::Error::Internal(anyhow::Error::from(err)))
            }
        },
    )
}
