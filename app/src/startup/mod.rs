//! Building and running the server: connecting to Postgres and the buckets (starting embedded S3
//! endpoints where none is configured), the shared [`AppState`], the background tasks, logging, and the
//! [`Application`] that binds the router to a listener.

mod background;
mod backup_setup;
mod router;
pub mod serve;
pub mod telemetry;

pub use backup_setup::embedded_key_path;

pub use crate::state::{AppState, DrillSetup, RuntimeConfig, TaskIntervals, TaskSignals};

use axum::Router;
use leptos::prelude::*;
use pawfile::{
    auth::PasswordHasher,
    backup::{Backups, Policy},
    config::ServeSettings,
    db,
    error::StartupError,
    net::TrustedProxies,
    storage::{EmbeddedS3, ObjectStore, StorageError},
};
use std::{net::SocketAddr, sync::Arc};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Most connections the metrics port serves at once.
const METRICS_CONNECTIONS: usize = 64;
/// Most of them from one address (a scraper needs one or two; one address must not fill the port).
const METRICS_PER_ADDRESS: usize = 8;

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
    let search_language = &settings.records.search_language;
    match pawfile::records::use_search_language(&pool, search_language).await {
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

    let (recipients, backup_key_beside_data) =
        backup_setup::backup_recipients(settings, backups_on_this_machine)?;
    let config = RuntimeConfig {
        public_url: settings.http.public_url(),
        trusted_proxies: TrustedProxies::new(settings.http.trusted_proxies.clone()),
        connections: settings.connections,
        sessions: settings.sessions.clone(),
        limits: settings.limits,
        documents: settings.document_rules.clone(),
        records: settings.records.clone(),
        mail_file_retention: settings.mail.mail_file_retention,
        backups_on_this_machine,
        backup_schedule: settings.backup.schedule,
        backup_key_beside_data,
        backup_separation,
        backup_drill: backup_setup::drill_setup(settings, backup_key_beside_data)?,
        admin_alerts: true,
        intervals: TaskIntervals::default(),
    };
    let policy = Policy {
        recipients,
        allow_unencrypted: settings.backup.allow_unencrypted,
        retention: settings.backup.retention,
        prune: settings.backup.prune,
        pace: settings.backup.test_pace,
        keys: backup_setup::backup_keys(settings)?,
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
        let background = background::spawn_background_tasks(&self.state, &self.shutdown);
        let limits = self.state.config.connections;
        let policy = serve::ConnectionPolicy {
            listener: "public",
            header_read_timeout: limits.header_read_timeout,
            keep_alive_timeout: limits.keep_alive_timeout,
            send_timeout: limits.body_idle_timeout,
            max_connections: limits.max_client_connections,
            max_per_address: limits.max_connections_per_address,
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
                max_per_address: limits.max_connections_per_address.min(METRICS_PER_ADDRESS),
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
