//! The admin dashboard: storage over time (the whole installation and each clinic), uploads per day,
//! backup sizes and durations, the integrity status and the backup banner, drawn on the server from the
//! rows it records each day.

use super::{
    charts::{BarChart, LineChart, Series, Unit},
    components::{ErrorNotice, format_date},
};
use crate::api::dashboard;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use pawfile::domain::Dashboard;

fn short_date(date: time::Date) -> String {
    date.format(time::macros::format_description!(
        "[day padding:none] [month repr:short]"
    ))
    .unwrap_or_else(|_| date.to_string())
}

/// The dashboard page (admins).
#[component]
pub fn DashboardPage() -> impl IntoView {
    let figures = Resource::new(|| (), |_| dashboard());
    view! {
        <Title text="Dashboard · Pawfile" />
        <section class="card">
            <h1>"Dashboard"</h1>
            <p>
                <A href="/admin">"Administration"</A> " · " <A href="/admin/backups">"Backups"</A> " · "
                <A href="/admin/audit">"Audit trail"</A>
            </p>
        </section>
        <Suspense fallback=|| view! { <section class="card"><p>"Loading…"</p></section> }>
            {move || Suspend::new(async move {
                match figures.await {
                    Ok(figures) => view! { <Figures figures /> }.into_any(),
                    Err(error) => view! { <section class="card"><ErrorNotice error /></section> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Figures(figures: Dashboard) -> impl IntoView {
    let days: Vec<time::Date> = figures.total.iter().map(|row| row.day).collect();
    let labels: Vec<String> = days.iter().copied().map(short_date).collect();
    let mut storage = vec![Series {
        name: "All clinics and owners".to_owned(),
        values: figures
            .total
            .iter()
            .map(|row| Some(row.stored_bytes as f64))
            .collect(),
    }];
    storage.extend(figures.per_clinic.iter().map(|clinic| {
        Series {
            name: clinic.clinic.clone(),
            values: days
                .iter()
                .map(|day| {
                    clinic
                        .days
                        .iter()
                        .find(|point| point.day == *day)
                        .map(|point| point.stored_bytes as f64)
                })
                .collect(),
        }
    }));
    let uploads: Vec<f64> = figures.total.iter().map(|row| row.uploads as f64).collect();
    let backup_labels: Vec<String> = figures
        .backups
        .iter()
        .map(|backup| {
            format!(
                "{} {:02}:{:02}",
                short_date(backup.started_at.date()),
                backup.started_at.hour(),
                backup.started_at.minute()
            )
        })
        .collect();
    let backup_sizes: Vec<f64> = figures.backups.iter().map(|backup| backup.bytes as f64).collect();
    let backup_times: Vec<f64> = figures.backups.iter().map(|backup| backup.seconds).collect();
    let coverage = if figures.documents == 0 {
        1.0
    } else {
        figures.scrubbed as f64 / figures.documents as f64
    };
    let reconciled = figures.last_reconcile.map_or_else(
        || "never".to_owned(),
        |at| {
            format!(
                "{} {:02}:{:02} UTC",
                format_date(at.date()),
                at.hour(),
                at.minute()
            )
        },
    );
    view! {
        {figures.backup_alarm.map(|alarm| view! {
            <section class="card">
                <p class="form-error" role="alert" data-testid="backup-alarm">{alarm}" " <A href="/admin/backups">"Backups"</A></p>
            </section>
        })}
        {view! {
        <section class="card" aria-labelledby="integrity-status">
            <h2 id="integrity-status">"Integrity"</h2>
            <dl class="glance" data-testid="integrity-status">
                <div><dt>"Last comparison of bucket and database"</dt><dd data-testid="last-reconcile">{reconciled}</dd></div>
                <div>
                    <dt>"Flagged documents"</dt>
                    <dd class:problem=figures.flagged != 0 data-testid="flagged">
                        {if figures.flagged == 0 {
                            view! { "none" }.into_any()
                        } else {
                            view! { <A href="/admin">{figures.flagged}</A> }.into_any()
                        }}
                    </dd>
                </div>
                <div>
                    <dt>"Re-hashed this period"</dt>
                    <dd data-testid="scrub">
                        {format!("{} of {}", figures.scrubbed, figures.documents)}
                        <meter min="0" max="1" value=coverage low="0.5" optimum="1" aria-label="Share of documents re-hashed this period"></meter>
                    </dd>
                </div>
            </dl>
        </section>
        }
        .into_any()}
        {view! {
        <section class="card">
            <h2>"Storage"</h2>
            <LineChart title="Storage used, by day" id="storage-chart" labels=labels.clone() series=storage unit=Unit::Bytes />
            <BarChart title="Uploads per day" id="uploads-chart" labels=labels values=uploads unit=Unit::Count />
        </section>
        <section class="card">
            <h2>"Backups"</h2>
            <BarChart title="Backup size" id="backup-size-chart" labels=backup_labels.clone() values=backup_sizes unit=Unit::Bytes />
            <BarChart title="Backup duration" id="backup-time-chart" labels=backup_labels values=backup_times unit=Unit::Seconds />
        </section>
        }
        .into_any()}
    }
    .into_any()
}
