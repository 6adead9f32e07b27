//! Backups, for administrators: "Back up now", the running backup's progress, the history, the next
//! scheduled run, the last drill, and a red banner when backups are stale or the last one failed.

use super::components::{ErrorNotice, FormError, action_error, format_bytes};
use crate::api::{RunBackup, backups};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use pawfile::domain::{BackupOverview, BackupRun, BackupStatus};
use time::OffsetDateTime;

/// How often the page reads the progress again while a backup runs.
const POLL_MS: u64 = 1000;

fn utc(at: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}

fn duration(run: &BackupRun) -> String {
    let Some(finished) = run.finished_at else {
        return "…".to_owned();
    };
    let seconds = (finished - run.started_at).whole_seconds().max(0);
    if seconds < 60 {
        format!("{seconds} s")
    } else {
        format!("{} min {} s", seconds / 60, seconds % 60)
    }
}

/// The backups page.
#[component]
pub fn BackupsPage() -> impl IntoView {
    let run = ServerAction::<RunBackup>::new();
    let (tick, set_tick) = signal(0u32);
    // The page's own polls (ticks) do not keep the admin's session alive; loading it and running a
    // backup do.
    let overview = Resource::new(
        move || (run.version().get(), tick.get()),
        |(_, tick)| backups(tick > 0),
    );
    let running = move || {
        overview.get().and_then(Result::ok).is_some_and(|overview| {
            overview
                .runs
                .first()
                .is_some_and(|run| run.status == BackupStatus::Running)
        })
    };
    // While a backup runs, read its progress again every second (in the browser only).
    Effect::new(move |_| {
        if (running() || run.pending().get())
            && let Ok(handle) = set_timeout_with_handle(
                move || set_tick.update(|tick| *tick += 1),
                std::time::Duration::from_millis(POLL_MS),
            )
        {
            on_cleanup(move || handle.clear());
        }
    });
    let error = action_error(run);
    view! {
        <Title text="Backups · Pawfile" />
        <section class="card">
            <h1>"Backups"</h1>
            <p><A href="/admin">"Administration"</A></p>
            <ActionForm action=run>
                <FormError error=error fields=&[] />
                <button type="submit" data-testid="backup-now">"Back up now"</button>
            </ActionForm>
        </section>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match overview.await {
                    Ok(overview) => view! { <Overview overview /> }.into_any(),
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Overview(overview: BackupOverview) -> impl IntoView {
    let current = overview
        .runs
        .first()
        .filter(|run| run.status == BackupStatus::Running)
        .cloned();
    view! {
        {overview.alarm.map(|alarm| view! {
            <p class="form-error" role="alert" data-testid="backup-alarm">{alarm}</p>
        })}
        {overview.warnings.into_iter().map(|warning| view! {
            <p class="warning" role="status">{warning}</p>
        }).collect_view()}
        {current.map(|run| view! { <Progress run /> })}
        <section class="card">
            <h2>"Schedule"</h2>
            <dl>
                <dt>"Next backup"</dt>
                <dd>{overview.next_run.map_or_else(|| "not scheduled (PAWFILE_BACKUP_SCHEDULE=off)".to_owned(), utc)}</dd>
                <dt>"Last complete backup"</dt>
                <dd data-testid="last-complete">{overview.last_complete.map_or_else(|| "none yet".to_owned(), utc)}</dd>
                <dt>"Last restore drill"</dt>
                <dd>{overview.last_drill.map_or_else(
                    || "none yet".to_owned(),
                    |(at, passed)| format!("{at}: {}", if passed { "passed" } else { "FAILED" }),
                )}</dd>
                <dt>"Signed with"</dt>
                <dd class="key" data-testid="signing-key">{overview.signing_key.unwrap_or_else(|| "no signing key".to_owned())}</dd>
            </dl>
        </section>
        {(!overview.refused.is_empty()).then(|| view! {
            <section class="card" data-testid="refused-objects">
                <h2>"Refused objects in the backup bucket"</h2>
                <p>"Pawfile did not believe these: they are not signed by this installation's key. They are never restored or applied."</p>
                <ul>
                    {overview.refused.into_iter().map(|(name, why)| view! {
                        <li><code>{name}</code>": "{why}</li>
                    }).collect_view()}
                </ul>
            </section>
        })}
        {(!overview.damaged.is_empty()).then(|| view! {
            <section class="card" data-testid="damaged-objects">
                <h2>"Damaged objects in the backup bucket"</h2>
                <p>"The daily re-read found these altered or missing. The next backup stores them again; until then, snapshots that use them may not restore whole."</p>
                <ul>
                    {overview.damaged.into_iter().map(|(name, why)| view! {
                        <li><code>{name}</code>": "{why}</li>
                    }).collect_view()}
                </ul>
            </section>
        })}
        <section class="card">
            <h2>"History"</h2>
            <div class="table-scroll" tabindex="0" role="region" aria-label="Backup history">
                <table data-testid="backup-history">
                    <thead>
                        <tr>
                            <th>"Started"</th><th>"Trigger"</th><th>"Status"</th><th>"Duration"</th>
                            <th>"Size"</th><th>"Copied"</th><th>"Reused"</th><th>"Error"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {overview.runs.into_iter().map(|run| {
                            let trigger = match &run.triggered_by {
                                Some(who) => format!("{} ({who})", run.trigger),
                                None => run.trigger.clone(),
                            };
                            let status = match (run.pruned, run.manifest_missing) {
                                (true, _) => "pruned".to_owned(),
                                (false, true) => format!("{} (manifest missing)", run.status.as_str()),
                                (false, false) => run.status.as_str().to_owned(),
                            };
                            let problem = run.manifest_missing
                                || matches!(run.status, BackupStatus::Failed | BackupStatus::Interrupted);
                            view! {
                                <tr data-status=run.status.as_str()>
                                    <td class="nowrap">{utc(run.started_at)}</td>
                                    <td>{trigger}</td>
                                    <td class:problem=problem>{status}</td>
                                    <td>{duration(&run)}</td>
                                    <td>{format_bytes(run.snapshot_bytes.max(0) as u64)}</td>
                                    <td>{format!("{} ({})", run.objects_copied, format_bytes(run.bytes_copied.max(0) as u64))}</td>
                                    <td>{run.objects_reused}</td>
                                    <td>{run.error.clone().unwrap_or_default()}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}

#[component]
fn Progress(run: BackupRun) -> impl IntoView {
    // Tables come first (one snapshot of the database), then the files.
    let label = if run.objects_total == 0 {
        "Copying the database…".to_owned()
    } else {
        format!(
            "{} of {} files, {} of {}",
            run.objects_done,
            run.objects_total,
            format_bytes(run.bytes_done.max(0) as u64),
            format_bytes(run.bytes_total.max(0) as u64)
        )
    };
    view! {
        <section class="card" data-testid="backup-progress">
            <h2>"Backing up now"</h2>
            <progress max=run.objects_total.max(1) value=run.objects_done aria-label="Backup progress"></progress>
            <p role="status">{label}</p>
        </section>
    }
}
