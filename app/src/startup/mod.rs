//! Building and running the server: connecting to Postgres and the buckets (starting embedded S3
//! endpoints where none is configured), the shared [`AppState`], the background tasks, logging, and the
//! [`Application`] that binds the router to a listener.

mod router;
pub mod serve;
pub mod telemetry;

pub use crate::state::{
    AppState, ConnectionLimits, DrillSetup, RuntimeConfig, TaskIntervals, TaskSignals, UsageLimits,
};

use axum::Router;
use leptos::prelude::*;
use pawfile::{
    auth::PasswordHasher,
    backup::{Backups, Policy, Recipients, StartedBy, Trigger},
    config::{BackupSchedule, ServeSettings},
    db,
    error::StartupError,
    net::TrustedProxies,
    storage::{EmbeddedS3, ObjectStore, StorageError},
    tasks,
};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The background tasks beside the server, all stopping with `shutdown`.
fn spawn_background_tasks(
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
            state.config.trash_retention,
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
            scrub_period: state.config.scrub_period,
            run_interval: state.config.reconcile_interval,
            upload_grace: state.config.stale_upload_after,
            // An object without a document is an orphan once no upload can still be recording it.
            grace: defaults.grace.min(state.config.stale_upload_after),
            ..defaults
        };
        tasks::run_periodically(
            "reconcile",
            state.config.reconcile_interval,
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
        tasks.push(tokio::spawn(backup_schedule(
            state.backup.clone(),
            state.config.backup_schedule,
            shutdown.clone(),
        )));
        if let Some(drill) = state.config.backup_drill.clone() {
            tasks.push(tokio::spawn(drill_schedule(
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

/// How long after start-up the daily re-read of backup objects first runs.
const REREAD_FIRST_AFTER: Duration = Duration::from_secs(10 * 60);

/// Most connections the metrics port serves at once.
const METRICS_CONNECTIONS: usize = 64;
/// Most of them from one address (a scraper needs one or two; one address must not fill the port).
const METRICS_PER_ADDRESS: usize = 8;

/// How often the server looks for mail that is due (a retry, or mail queued by another replica); mail
/// queued here is sent at once.
const MAIL_INTERVAL: Duration = Duration::from_secs(5);

/// How often the server looks for problems to tell admins of by mail.
const ALERT_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// How often the server looks whether a weekly drill is due.
const DRILL_CHECK_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// The weekly restore drill: checked hourly (first after ten minutes, so a start-up backup goes first);
/// runs when no drill ran for 7 days and there is a snapshot to drill.
async fn drill_schedule(backups: Backups, drill: DrillSetup, shutdown: CancellationToken) {
    let mut wait = Duration::from_secs(10 * 60);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = DRILL_CHECK_INTERVAL;
        match backups.drill_due().await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(err) => {
                tracing::warn!(error = %err, "cannot tell whether a restore drill is due");
                continue;
            }
        }
        let scratch = match &drill.database_url {
            Some(url) => url.clone(),
            None => match scratch_database(&drill.live_url).await {
                Ok(url) => url,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot prepare the drill's scratch database: set PAWFILE_BACKUP_DRILL_DATABASE_URL");
                    continue;
                }
            },
        };
        match backups.drill(&drill.identities, &scratch).await {
            Ok(Some(report)) if report.passed => {
                tracing::info!(snapshot = %report.snapshot, "restore drill passed");
            }
            Ok(Some(report)) => {
                tracing::error!(snapshot = %report.snapshot, problems = ?report.problems, "restore drill FAILED");
            }
            Ok(None) => tracing::info!("a backup runs; the drill waits for the next check"),
            Err(err) => tracing::error!(error = %err, "restore drill could not run"),
        }
    }
}

/// The live database's name with `_drill`, created when missing (needs the CREATEDB right).
async fn scratch_database(live: &secrecy::SecretString) -> Result<secrecy::SecretString, String> {
    use secrecy::ExposeSecret;
    let mut url = url::Url::parse(live.expose_secret()).map_err(|err| err.to_string())?;
    let name = format!("{}_drill", url.path().trim_start_matches('/'));
    let pool = sqlx::PgPool::connect(live.expose_secret())
        .await
        .map_err(|err| err.to_string())?;
    let exists: bool = sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
        .bind(&name)
        .fetch_one(&pool)
        .await
        .map_err(|err| err.to_string())?;
    if !exists {
        sqlx::query(&format!("create database \"{}\"", name.replace('"', "\"\"")))
            .execute(&pool)
            .await
            .map_err(|err| err.to_string())?;
    }
    pool.close().await;
    url.set_path(&name);
    Ok(secrecy::SecretString::from(url.to_string()))
}

/// The weekly drill's settings: a configured identity, or on the embedded default the generated key.
fn drill_setup(settings: &ServeSettings, key_beside_data: bool) -> Result<Option<DrillSetup>, StartupError> {
    let path = match (&settings.backup.drill_identity, key_beside_data) {
        (Some(path), _) => path.clone(),
        (None, true) => embedded_key_path(settings),
        (None, false) => return Ok(None),
    };
    let identities = pawfile::backup::Identities::from_files(&[&path])
        .map_err(|message| StartupError::new("PAWFILE_BACKUP_DRILL_IDENTITY", message))?;
    if settings.backup.drill_database_url.is_none() && !key_beside_data {
        return Err(StartupError::new(
            "PAWFILE_BACKUP_DRILL_DATABASE_URL",
            "the drill needs a scratch database of its own (PAWFILE_BACKUP_DRILL_IDENTITY is set)",
        ));
    }
    Ok(Some(DrillSetup {
        identities: Arc::new(identities),
        database_url: settings.backup.drill_database_url.clone(),
        live_url: settings.database.url.clone(),
    }))
}

/// Backups on `schedule` (each slot once, whichever replica comes first: the others find it done or
/// running), and one at start-up when the newest complete backup is older than a day (or there is none).
async fn backup_schedule(backups: Backups, schedule: BackupSchedule, shutdown: CancellationToken) {
    let run = |trigger, since| {
        let backups = backups.clone();
        async move {
            let by = StartedBy {
                trigger,
                user: None,
                client_addr: None,
            };
            match backups.run_unless_done_since(by, since).await {
                Ok(Some(report)) => tracing::info!(run = %report.id, "scheduled backup complete"),
                Ok(None) => tracing::info!("a backup is running elsewhere or this one is done; skipped"),
                Err(err) => tracing::error!(error = %err, "scheduled backup failed"),
            }
        }
    };
    let stale = match pawfile::backup::last_complete(backups.pool()).await {
        Ok(last) => last.is_none_or(|at| time::OffsetDateTime::now_utc() - at > time::Duration::days(1)),
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the last backup time");
            false
        }
    };
    // A run is not raced against `shutdown`: a shutdown cancels it through `Backups`, and it records
    // that (a run dropped half-way would stay `running`).
    if stale && !shutdown.is_cancelled() {
        // Another replica starting at the same moment backs up once between them.
        let since = time::OffsetDateTime::now_utc() - time::Duration::days(1);
        run(Trigger::Startup, Some(since)).await;
    }
    loop {
        let Some(next) = schedule.next_after(time::OffsetDateTime::now_utc()) else {
            return;
        };
        let wait = (next - time::OffsetDateTime::now_utc())
            .try_into()
            .unwrap_or(Duration::ZERO);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        run(Trigger::Schedule, Some(next)).await;
    }
}

/// The recipients backups are encrypted to: the configured keys; on the embedded store without keys,
/// a key pair generated once into the data folder (the admin page warns that it sits beside the data);
/// otherwise none (backups then refuse to run unless unencrypted backups are allowed).
fn backup_recipients(
    settings: &ServeSettings,
    embedded_store: bool,
) -> Result<(Recipients, bool), StartupError> {
    if let Some(keys) = settings
        .backup
        .recipients
        .as_deref()
        .filter(|keys| !keys.trim().is_empty())
    {
        let recipients = Recipients::parse(keys)
            .map_err(|message| StartupError::new("PAWFILE_BACKUP_RECIPIENTS", message))?;
        return Ok((recipients, false));
    }
    if !embedded_store {
        return Ok((Recipients::unencrypted(), false));
    }
    let path = embedded_key_path(settings);
    if !path.exists() {
        let (text, public) = pawfile::backup::crypto::generate_key_pair();
        write_private_file(&path, &text).map_err(|err| {
            StartupError::new(
                "PAWFILE_DATA_DIR",
                format!("cannot write {}: {err}", path.display()),
            )
        })?;
        tracing::warn!(key = %path.display(), %public, "generated a backup key in the data folder: copy it somewhere safe, away from this machine");
    }
    let identities = pawfile::backup::Identities::from_files(&[&path])
        .map_err(|message| StartupError::new("PAWFILE_DATA_DIR", message))?;
    Ok((identities.recipients(), true))
}

/// The keys backup objects are signed and checked with: the configured signing key, or one generated
/// once into the data folder (its public half logged, for the operator to keep with the age key).
fn backup_keys(settings: &ServeSettings) -> Result<pawfile::backup::BackupKeys, StartupError> {
    let (key, generated) = settings
        .backup
        .signing_key(&settings.data_dir)
        .map_err(|message| StartupError::new("PAWFILE_BACKUP_SIGNING_KEY", message))?;
    let public = key.verifying_key();
    if generated {
        tracing::warn!(%public, "generated the backup signing key in the data folder: keep this public key with the backup's private key (a restore elsewhere needs it as PAWFILE_BACKUP_TRUSTED_KEYS), and give every replica the same PAWFILE_BACKUP_SIGNING_KEY");
    } else {
        tracing::info!(%public, "backup objects are signed with this key");
    }
    Ok(pawfile::backup::BackupKeys::new(
        Some(key),
        settings.backup.trusted_keys.clone(),
    ))
}

/// Where the embedded default keeps its generated backup key.
pub fn embedded_key_path(settings: &ServeSettings) -> std::path::PathBuf {
    settings.data_dir.join("backup-key.txt")
}

fn write_private_file(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    pawfile::files::write_private(path, text.as_bytes())
}

/// Leptos's options, with the listen address from `PAWFILE_LISTEN` (the one place it is set). The site
/// folder (compiled wasm, CSS, public files) is `LEPTOS_SITE_ROOT`, by default `target/site`.
fn leptos_options(listen: SocketAddr) -> LeptosOptions {
    let site_root = std::env::var("LEPTOS_SITE_ROOT").unwrap_or_else(|_| "target/site".to_owned());
    LeptosOptions::builder()
        .output_name(option_env!("LEPTOS_OUTPUT_NAME").unwrap_or("pawfile"))
        .site_root(site_root)
        .site_pkg_dir("pkg")
        .site_addr(listen)
        .build()
}

fn storage_startup_error(err: &StorageError, prefix: &str) -> StartupError {
    let setting = match err {
        StorageError::NoSuchBucket { .. } => format!("{prefix}BUCKET"),
        StorageError::AccessDenied { .. } => format!("{prefix}ACCESS_KEY_ID/{prefix}SECRET_ACCESS_KEY"),
        _ => format!("{prefix}ENDPOINT"),
    };
    StartupError::new(setting, err.to_string())
}

/// Connects to everything `settings` names, checking each (Postgres, migrations, the documents bucket),
/// and starts embedded S3 endpoints where no endpoint is configured. An unreachable backup store is
/// logged, not fatal. The embedded endpoints run as long as the returned handles live.
pub async fn build_state(settings: &ServeSettings) -> Result<(AppState, Vec<EmbeddedS3>), StartupError> {
    if let Some(problem) = settings.http.problem() {
        return Err(StartupError::new("PAWFILE_PUBLIC_URL", problem));
    }
    let pool = settings.database.connect().await?;
    db::migrate(&pool).await?;
    let search_language = settings.http.search_language.trim().to_lowercase();
    match pawfile::records::use_search_language(&pool, &search_language).await {
        Ok(0) => {}
        Ok(moved) => {
            tracing::info!(language = %search_language, records = moved, "records re-indexed for search");
        }
        Err(err) => return Err(StartupError::new("PAWFILE_SEARCH_LANGUAGE", err.to_string())),
    }

    let metrics = Arc::new(pawfile::metrics::Metrics::new());
    let mut embedded = Vec::new();
    let document_settings = settings
        .documents
        .s3()
        .map_err(|message| StartupError::new("PAWFILE_S3_*", message))?;
    let documents = match &document_settings.endpoint {
        Some(_) => {
            let store = ObjectStore::connect(&document_settings).await;
            store
                .check_bucket()
                .await
                .map_err(|err| storage_startup_error(&err, "PAWFILE_S3_"))?;
            store
        }
        None => {
            let endpoint = EmbeddedS3::start_persistent(&settings.data_dir.join("s3"))
                .await
                .map_err(|err| StartupError::new("PAWFILE_DATA_DIR", format!("{err:#}")))?;
            let store = ObjectStore::connect(&endpoint.settings(&document_settings.bucket)).await;
            store
                .create_bucket_if_missing()
                .await
                .map_err(|err| StartupError::new("PAWFILE_DATA_DIR", err.to_string()))?;
            tracing::info!(endpoint = %endpoint.endpoint(), folder = %endpoint.root().display(), "embedded S3 endpoint for documents");
            embedded.push(endpoint);
            store
        }
    };

    let backup_settings = settings
        .backups
        .s3(document_settings.endpoint.as_ref())
        .map_err(|message| StartupError::new("PAWFILE_BACKUP_S3_*", message))?;
    let backups_on_this_machine = backup_settings.endpoint.is_none();
    let backups = match &backup_settings.endpoint {
        Some(_) => ObjectStore::connect(&backup_settings).await,
        None => {
            let endpoint = EmbeddedS3::start_persistent(&settings.data_dir.join("backup-s3"))
                .await
                .map_err(|err| StartupError::new("PAWFILE_DATA_DIR", format!("{err:#}")))?;
            let store = ObjectStore::connect(&endpoint.settings(&backup_settings.bucket)).await;
            if let Err(err) = store.create_bucket_if_missing().await {
                tracing::warn!(error = %err, "cannot create the embedded backup bucket");
            }
            embedded.push(endpoint);
            store
        }
    };
    let (documents, backups) = (
        documents.observed(metrics.s3_interceptor()),
        backups.observed(metrics.s3_interceptor()),
    );
    if let Err(err) = backups.check_bucket().await {
        let setting = storage_startup_error(&err, "PAWFILE_BACKUP_S3_").setting;
        tracing::warn!(%setting, error = %err, "the backup store is unavailable; serving anyway (admins see this on their start page)");
    }
    // (The embedded endpoints cannot say: they sit in the data folder, on this machine.)
    let configured = [
        (document_settings.endpoint.is_some(), &documents),
        (!backups_on_this_machine, &backups),
    ];
    for (_, store) in configured.into_iter().filter(|(configured, _)| *configured) {
        for problem in store.exposure().await {
            tracing::warn!("{problem}");
        }
    }
    let backup_separation = if backups_on_this_machine {
        tracing::warn!(
            "backups go to an embedded store on this machine: set PAWFILE_BACKUP_S3_ENDPOINT for off-site backups"
        );
        Vec::new()
    } else if document_settings.endpoint.is_none() {
        // Embedded documents with their own generated key: nothing is shared with the backup store.
        Vec::new()
    } else {
        pawfile::config::separation_problems(&document_settings, &backup_settings)
    };
    for problem in &backup_separation {
        tracing::warn!("backups are not separate from the documents: {problem}");
    }

    let (recipients, backup_key_beside_data) = backup_recipients(settings, backups_on_this_machine)?;
    let config = RuntimeConfig {
        public_url: settings.http.public_url(),
        trusted_proxies: TrustedProxies::new(settings.http.trusted_proxies.clone()),
        session_idle_timeout: settings.http.session_idle_timeout,
        session_absolute_timeout: settings.http.session_absolute_timeout,
        connections: ConnectionLimits {
            header_read_timeout: settings.http.header_read_timeout,
            keep_alive_timeout: settings.http.keep_alive_timeout,
            body_idle_timeout: settings.http.body_idle_timeout,
            max_connections: settings.http.max_client_connections.max(1),
            max_per_address: settings.http.max_connections_per_address.max(1),
            shutdown_grace: settings.http.shutdown_grace,
        },
        limits: UsageLimits {
            upload_bytes_per_hour: settings.http.limit_upload_per_hour.as_u64(),
            download_bytes_per_hour: settings.http.limit_download_per_hour.as_u64(),
            exports_per_hour: settings.http.limit_exports_per_hour,
            concurrent_uploads: settings.http.limit_concurrent_uploads.max(1),
            accounts: settings.http.account_limits(),
        },
        quotas: settings.http.quotas(),
        search_language,
        max_upload_bytes: settings.http.max_upload_size.as_u64(),
        accepted_types: settings
            .http
            .accepted_types
            .iter()
            .map(|mime| mime.trim().to_owned())
            .collect(),
        strip_photo_location: settings.http.strip_photo_location,
        mail_file_retention: settings.mail.mail_file_retention,
        trash_retention: settings.http.trash_retention,
        reconcile_interval: settings.http.reconcile_interval,
        stale_upload_after: settings.http.stale_upload_after,
        scrub_period: settings.http.scrub_period,
        backups_on_this_machine,
        backup_schedule: settings.backup.schedule,
        backup_key_beside_data,
        backup_separation,
        backup_drill: drill_setup(settings, backup_key_beside_data)?,
        admin_alerts: true,
        two_factor_required_for: settings
            .http
            .require_two_factor
            .iter()
            .flatten()
            .copied()
            .collect(),
        intervals: TaskIntervals::default(),
    };
    let policy = Policy {
        recipients,
        allow_unencrypted: settings.backup.allow_unencrypted,
        retention: settings.backup.retention,
        prune: settings.backup.prune,
        pace: settings.backup.test_pace,
        keys: backup_keys(settings)?,
    };
    if let Some(refusal) = policy.refusal() {
        tracing::warn!("{refusal}");
    } else if policy.recipients.is_unencrypted() {
        tracing::warn!("backups are stored unencrypted (PAWFILE_ALLOW_UNENCRYPTED_BACKUPS)");
    }
    let backup = Backups::new(
        pool.clone(),
        documents.clone(),
        backups.clone(),
        policy,
        CancellationToken::new(),
    );
    let mailer = mailer(settings, &config.public_url)?;
    let state = AppState {
        db: pool,
        hasher: PasswordHasher::for_this_machine(),
        documents,
        backups,
        backup,
        config: Arc::new(config),
        tasks: Arc::default(),
        mailer: Arc::new(mailer),
        metrics,
    };
    Ok((state, embedded))
}

/// How mail leaves: the SMTP server when one is set, else `.eml` files in the data folder's `mail/`.
fn mailer(settings: &ServeSettings, public_url: &url::Url) -> Result<pawfile::mail::Mailer, StartupError> {
    use pawfile::mail::Transport;
    let transport = match settings.mail.smtp_server()? {
        Some(server) => {
            tracing::info!(host = %server.host, tls = ?server.tls, "mail goes through SMTP");
            Transport::smtp(&server).map_err(|err| StartupError::new("PAWFILE_SMTP_HOST", err.to_string()))?
        }
        None => {
            let folder = settings.data_dir.join("mail");
            tracing::info!(folder = %folder.display(), "no SMTP server set (PAWFILE_SMTP_HOST): mail is written into this folder");
            Transport::Folder(folder)
        }
    };
    Ok(pawfile::mail::Mailer {
        transport,
        from: settings.mail.from(public_url)?,
        site: public_url.clone(),
        retry: settings.mail.retry(),
    })
}

/// What a restore needs: a pool on the (empty, unmigrated) database, the documents bucket and the
/// backup bucket, with embedded endpoints started where none is configured.
pub async fn build_state_for_restore(
    settings: &ServeSettings,
) -> Result<((sqlx::PgPool, ObjectStore, ObjectStore), Vec<EmbeddedS3>), StartupError> {
    let pool = settings.database.connect().await?;
    let mut embedded = Vec::new();
    let document_settings = settings
        .documents
        .s3()
        .map_err(|message| StartupError::new("PAWFILE_S3_*", message))?;
    let documents = match &document_settings.endpoint {
        Some(_) => ObjectStore::connect(&document_settings).await,
        None => {
            let endpoint = EmbeddedS3::start_persistent(&settings.data_dir.join("s3"))
                .await
                .map_err(|err| StartupError::new("PAWFILE_DATA_DIR", format!("{err:#}")))?;
            let store = ObjectStore::connect(&endpoint.settings(&document_settings.bucket)).await;
            store
                .create_bucket_if_missing()
                .await
                .map_err(|err| StartupError::new("PAWFILE_DATA_DIR", err.to_string()))?;
            embedded.push(endpoint);
            store
        }
    };
    documents
        .check_bucket()
        .await
        .map_err(|err| storage_startup_error(&err, "PAWFILE_S3_"))?;
    let backup_settings = settings
        .backups
        .s3(document_settings.endpoint.as_ref())
        .map_err(|message| StartupError::new("PAWFILE_BACKUP_S3_*", message))?;
    let backups = match &backup_settings.endpoint {
        Some(_) => ObjectStore::connect(&backup_settings).await,
        None => {
            let endpoint = EmbeddedS3::start_persistent(&settings.data_dir.join("backup-s3"))
                .await
                .map_err(|err| StartupError::new("PAWFILE_DATA_DIR", format!("{err:#}")))?;
            let store = ObjectStore::connect(&endpoint.settings(&backup_settings.bucket)).await;
            embedded.push(endpoint);
            store
        }
    };
    backups
        .check_bucket()
        .await
        .map_err(|err| storage_startup_error(&err, "PAWFILE_BACKUP_S3_"))?;
    Ok(((pool, documents, backups), embedded))
}

/// Pawfile's HTTP server, bound to its listener and ready to run.
pub struct Application {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    router: Router,
    state: AppState,
    shutdown: CancellationToken,
    _embedded: Vec<EmbeddedS3>,
}

impl Application {
    /// Connects, checks and binds everything `settings` describe.
    pub async fn build(settings: ServeSettings) -> Result<Self, StartupError> {
        let (state, embedded) = build_state(&settings).await?;
        let app = Self::with_state(state, settings.http.listen, embedded).await?;
        match settings.http.metrics_listen {
            Some(address) => app.serve_metrics_on(address).await,
            None => Ok(app),
        }
    }

    /// Also serves Prometheus metrics at `/metrics` on `address` (a port of its own, never the public one).
    pub async fn serve_metrics_on(mut self, address: SocketAddr) -> Result<Self, StartupError> {
        let listener = TcpListener::bind(address).await.map_err(|err| {
            StartupError::new(
                "PAWFILE_METRICS_LISTEN",
                format!("cannot listen on {address}: {err}"),
            )
        })?;
        self.metrics_listener = Some(listener);
        Ok(self)
    }

    /// The address metrics are served on, if they are.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// Binds an application over existing state (tests bring their own database and buckets).
    pub async fn with_state(
        state: AppState,
        listen: SocketAddr,
        embedded: Vec<EmbeddedS3>,
    ) -> Result<Self, StartupError> {
        let listener = TcpListener::bind(listen).await.map_err(|err| {
            StartupError::new("PAWFILE_LISTEN", format!("cannot listen on {listen}: {err}"))
        })?;
        let addr = listener
            .local_addr()
            .map_err(|err| StartupError::new("PAWFILE_LISTEN", err.to_string()))?;
        Ok(Self {
            router: router::router(state.clone(), leptos_options(addr)),
            listener,
            metrics_listener: None,
            state,
            shutdown: CancellationToken::new(),
            _embedded: embedded,
        })
    }

    /// The address the server listens on (port 0 in the settings picks a free port).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Cancelling this token stops the server gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled, with the background tasks beside it. Then it stops
    /// accepting, lets requests in flight finish for up to the shutdown grace, and cuts the rest (an
    /// upload cut off cleans up after itself). See [`serve`] for how connections are bounded.
    pub async fn run_until_stopped(mut self) -> std::io::Result<()> {
        let background = spawn_background_tasks(&self.state, &self.shutdown);
        let limits = self.state.config.connections;
        let policy = serve::ConnectionPolicy {
            listener: "public",
            header_read_timeout: limits.header_read_timeout,
            keep_alive_timeout: limits.keep_alive_timeout,
            send_timeout: limits.body_idle_timeout,
            max_connections: limits.max_connections,
            max_per_address: limits.max_per_address,
            trusted_proxies: self.state.config.trusted_proxies.clone(),
            shutdown_grace: limits.shutdown_grace,
        };
        let metrics = self.metrics_listener.take().map(|listener| {
            if let Ok(address) = listener.local_addr() {
                tracing::info!(%address, "metrics at /metrics");
            }
            // A scraper needs few connections; the same timeouts and per-address cap hold.
            let policy = serve::ConnectionPolicy {
                listener: "metrics",
                max_connections: METRICS_CONNECTIONS,
                max_per_address: limits.max_per_address.min(METRICS_PER_ADDRESS),
                ..policy.clone()
            };
            tokio::spawn(serve::serve(
                listener,
                router::metrics_router(self.state.clone()),
                policy,
                self.state.metrics.clone(),
                self.shutdown.clone(),
            ))
        });
        tracing::info!(address = %self.local_addr(), "Pawfile is listening");
        // The backup in progress is cancelled as soon as the server stops (it is recorded so).
        let backup = self.state.backup.clone();
        let shutdown = self.shutdown.clone();
        let cancel_backup = tokio::spawn(async move {
            shutdown.cancelled().await;
            backup.cancel();
        });
        serve::serve(
            self.listener,
            self.router,
            policy,
            self.state.metrics.clone(),
            self.shutdown.clone(),
        )
        .await;
        let _ = cancel_backup.await;
        for task in background {
            let _ = task.await;
        }
        // Requests and the schedule have ended, so nothing starts a run any more: wait for the one
        // cancelled above to record that and release its lock.
        self.state.backup.stop().await;
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        Ok(())
    }
}
