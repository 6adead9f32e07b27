//! Prometheus metrics, in the OpenMetrics text format, for `/metrics` on a listen address of its own
//! (`PAWFILE_METRICS_LISTEN`, off by default).
//!
//! Two kinds of series. Counters and histograms this process adds to as it works (requests by matched
//! route, uploads, downloads, S3 calls, background-task runs). And gauges read from PostgreSQL when
//! scraped (the backup, drill and integrity state, the database pool, readiness), so every replica
//! answers the same for what is shared and nothing is polled between scrapes.
//!
//! Each [`Metrics`] has its own registry (a process may run several servers, as the tests do). This
//! module knows nothing of the core; the gauges read at a scrape are in `gauges`.

mod gauges;

use aws_sdk_s3::config::{
    ConfigBag, Intercept, RuntimeComponents,
    interceptors::{BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef},
};
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::{Registry, Unit},
};
use std::{
    sync::{Arc, atomic::AtomicU64},
    time::{Duration, Instant},
};

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// An HTTP request's series: its method, the route it matched (never the raw path) and its status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The request method.
    pub method: String,
    /// The matched route pattern, `unmatched` when none did.
    pub route: String,
    /// The response status.
    pub status: u16,
}

/// A route's latency series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The request method.
    pub method: String,
    /// The matched route pattern.
    pub route: String,
}

/// How a transfer or a task run ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `ok` or `failed`.
    pub outcome: &'static str,
}

/// An S3 call: the operation (`PutObject`, `UploadPart`…) and how it ended: `ok`, `refused` (a 4xx
/// answer such as a missing key, which callers often expect, or 501: not implemented by this store) or
/// `error` (no answer, or another 5xx).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct S3Labels {
    /// The S3 operation.
    pub operation: String,
    /// `ok`, `refused` or `error`.
    pub outcome: &'static str,
}

/// An S3 operation's latency series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// The S3 operation.
    pub operation: String,
}

/// A background task's run: which task and `ok`, `failed` or `skipped` (another replica held it).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    /// The task's name.
    pub task: &'static str,
    /// `ok`, `failed` or `skipped`.
    pub outcome: &'static str,
}

/// A listener's connections: `public` or `metrics`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    /// The listener.
    pub listener: &'static str,
}

/// A connection the server closed before serving it: the listener, and why (`address_cap`: its address
/// had too many open).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    /// The listener.
    pub listener: &'static str,
    /// Why it was closed.
    pub reason: &'static str,
}

/// The database pool's connections by state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// `idle` or `in_use`.
    pub state: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;
/// A gauge of a fractional value (seconds, a ratio).
type FloatGauge = Gauge<f64, AtomicU64>;

fn latency_histogram() -> Histogram {
    // 1 ms to about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Every series the server exposes.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http_requests: Family<RequestLabels, Counter>,
    http_duration: Histograms<RouteLabels>,
    uploads: Family<OutcomeLabels, Counter>,
    upload_bytes: Counter,
    downloads: Family<OutcomeLabels, Counter>,
    download_bytes: Counter,
    s3_requests: Family<S3Labels, Counter>,
    s3_duration: Histograms<OperationLabels>,
    task_runs: Family<TaskLabels, Counter>,
    thumbnails: Counter,
    open_connections: Family<ListenerLabels, Gauge>,
    refused_connections: Family<RefusalLabels, Counter>,
    timed_out_connections: Family<ListenerLabels, Counter>,
    pool_connections: Family<PoolLabels, Gauge>,
    pool_max: Gauge,
    backup_last_success: FloatGauge,
    backup_last_duration: FloatGauge,
    backup_last_bytes: Gauge,
    backup_last_run_failed: Gauge,
    drill_last_success: Gauge,
    drill_last_at: FloatGauge,
    flagged_documents: Gauge,
    scrub_coverage: FloatGauge,
    last_reconcile: FloatGauge,
    ready: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every series registered (at zero until something happens).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("pawfile");
        let metrics = Self {
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram),
            uploads: Family::default(),
            upload_bytes: Counter::default(),
            downloads: Family::default(),
            download_bytes: Counter::default(),
            s3_requests: Family::default(),
            s3_duration: Family::new_with_constructor(latency_histogram),
            task_runs: Family::default(),
            thumbnails: Counter::default(),
            open_connections: Family::default(),
            refused_connections: Family::default(),
            timed_out_connections: Family::default(),
            pool_connections: Family::default(),
            pool_max: Gauge::default(),
            backup_last_success: FloatGauge::default(),
            backup_last_duration: FloatGauge::default(),
            backup_last_bytes: Gauge::default(),
            backup_last_run_failed: Gauge::default(),
            drill_last_success: Gauge::default(),
            drill_last_at: FloatGauge::default(),
            flagged_documents: Gauge::default(),
            scrub_coverage: FloatGauge::default(),
            last_reconcile: FloatGauge::default(),
            ready: Gauge::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "http_requests",
            "HTTP requests by method, matched route and status",
            metrics.http_requests.clone(),
        );
        r.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request (until the response head), by method and matched route",
            Unit::Seconds,
            metrics.http_duration.clone(),
        );
        r.register("uploads", "Files uploaded, by outcome", metrics.uploads.clone());
        r.register_with_unit(
            "upload",
            "Bytes of files stored by uploads",
            Unit::Bytes,
            metrics.upload_bytes.clone(),
        );
        r.register(
            "downloads",
            "File and thumbnail downloads started, by outcome",
            metrics.downloads.clone(),
        );
        r.register_with_unit(
            "download",
            "Bytes of files and thumbnails sent",
            Unit::Bytes,
            metrics.download_bytes.clone(),
        );
        r.register(
            "s3_requests",
            "S3 calls by operation and outcome (ok; refused: a 4xx or 501 answer; error: no answer or another 5xx)",
            metrics.s3_requests.clone(),
        );
        r.register_with_unit(
            "s3_request_duration",
            "Time an S3 call took, retries included",
            Unit::Seconds,
            metrics.s3_duration.clone(),
        );
        r.register(
            "task_runs",
            "Background-task runs by task and outcome (skipped: another replica held it)",
            metrics.task_runs.clone(),
        );
        r.register("thumbnails", "Thumbnails made", metrics.thumbnails.clone());
        r.register(
            "http_open_connections",
            "Client connections open now, by listener",
            metrics.open_connections.clone(),
        );
        r.register(
            "http_connections_refused",
            "Connections closed as soon as they were accepted, by listener and reason (address_cap: that \
             address had the most connections it may open)",
            metrics.refused_connections.clone(),
        );
        r.register(
            "http_connections_timed_out",
            "Connections closed because no request's headers arrived in time, or idle too long between \
             requests, by listener",
            metrics.timed_out_connections.clone(),
        );
        r.register(
            "db_pool_connections",
            "Database pool connections by state",
            metrics.pool_connections.clone(),
        );
        r.register(
            "db_pool_max_connections",
            "The database pool's size limit",
            metrics.pool_max.clone(),
        );
        r.register_with_unit(
            "backup_last_success_timestamp",
            "When the newest complete backup started (Unix time; 0: none yet)",
            Unit::Seconds,
            metrics.backup_last_success.clone(),
        );
        r.register_with_unit(
            "backup_last_duration",
            "How long the newest complete backup took",
            Unit::Seconds,
            metrics.backup_last_duration.clone(),
        );
        r.register_with_unit(
            "backup_last",
            "Size of the newest complete backup's snapshot",
            Unit::Bytes,
            metrics.backup_last_bytes.clone(),
        );
        r.register(
            "backup_last_run_failed",
            "1 when the newest finished backup run failed or was interrupted",
            metrics.backup_last_run_failed.clone(),
        );
        r.register(
            "backup_drill_last_success",
            "1 when the newest restore drill passed (or none has run yet), 0 when it failed",
            metrics.drill_last_success.clone(),
        );
        r.register_with_unit(
            "backup_drill_last_timestamp",
            "When the newest restore drill ran (Unix time; 0: none yet)",
            Unit::Seconds,
            metrics.drill_last_at.clone(),
        );
        r.register(
            "integrity_flagged_documents",
            "Documents the integrity check flagged",
            metrics.flagged_documents.clone(),
        );
        r.register(
            "integrity_scrub_coverage_ratio",
            "Share of documents re-hashed within the scrub period",
            metrics.scrub_coverage.clone(),
        );
        r.register_with_unit(
            "integrity_last_reconcile_timestamp",
            "When the bucket was last compared with the database (Unix time; 0: never)",
            Unit::Seconds,
            metrics.last_reconcile.clone(),
        );
        r.register(
            "ready",
            "1 when PostgreSQL and the documents bucket answer",
            metrics.ready.clone(),
        );
        // Outcomes exist at zero from the start, so rates and alerts see them before the first failure.
        for outcome in ["ok", "failed"] {
            let _ = metrics.uploads.get_or_create(&OutcomeLabels { outcome });
            let _ = metrics.downloads.get_or_create(&OutcomeLabels { outcome });
        }
        for listener in ["public", "metrics"] {
            let _ = metrics
                .open_connections
                .get_or_create(&ListenerLabels { listener });
            let _ = metrics
                .timed_out_connections
                .get_or_create(&ListenerLabels { listener });
            let _ = metrics.refused_connections.get_or_create(&RefusalLabels {
                listener,
                reason: "address_cap",
            });
        }
        Self { registry, ..metrics }
    }

    /// Counts an HTTP request that was answered.
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.http_requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// A client connection was accepted on `listener`.
    pub fn connection_opened(&self, listener: &'static str) {
        self.open_connections
            .get_or_create(&ListenerLabels { listener })
            .inc();
    }

    /// A client connection on `listener` closed.
    pub fn connection_closed(&self, listener: &'static str) {
        self.open_connections
            .get_or_create(&ListenerLabels { listener })
            .dec();
    }

    /// A connection on `listener` was closed at once, for `reason`.
    pub fn connection_refused(&self, listener: &'static str, reason: &'static str) {
        self.refused_connections
            .get_or_create(&RefusalLabels { listener, reason })
            .inc();
    }

    /// A connection on `listener` was closed at its deadline.
    pub fn connection_timed_out(&self, listener: &'static str) {
        self.timed_out_connections
            .get_or_create(&ListenerLabels { listener })
            .inc();
    }

    /// Counts an upload's files: `stored` bytes in `files` files, or one failed upload.
    pub fn upload(&self, result: Result<(usize, u64), ()>) {
        match result {
            Ok((files, bytes)) => {
                self.uploads
                    .get_or_create(&OutcomeLabels { outcome: "ok" })
                    .inc_by(files as u64);
                self.upload_bytes.inc_by(bytes);
            }
            Err(()) => {
                self.uploads
                    .get_or_create(&OutcomeLabels { outcome: "failed" })
                    .inc();
            }
        }
    }

    /// Counts a download that started sending `bytes`, or one that failed before it could.
    pub fn download(&self, result: Result<u64, ()>) {
        match result {
            Ok(bytes) => {
                self.downloads
                    .get_or_create(&OutcomeLabels { outcome: "ok" })
                    .inc();
                self.download_bytes.inc_by(bytes);
            }
            Err(()) => {
                self.downloads
                    .get_or_create(&OutcomeLabels { outcome: "failed" })
                    .inc();
            }
        }
    }

    /// Counts a background task's run.
    pub fn task_run(&self, task: &'static str, outcome: &'static str) {
        self.task_runs.get_or_create(&TaskLabels { task, outcome }).inc();
    }

    /// Counts thumbnails made.
    pub fn thumbnails_made(&self, made: usize) {
        self.thumbnails.inc_by(made as u64);
    }

    /// Counts a run from its result: `Ok(None)` means another replica held the task.
    pub fn task_result<T, E>(&self, task: &'static str, result: &Result<Option<T>, E>) {
        let outcome = match result {
            Ok(Some(_)) => "ok",
            Ok(None) => "skipped",
            Err(_) => "failed",
        };
        self.task_run(task, outcome);
    }

    fn s3_call(&self, operation: &str, outcome: &'static str, took: Duration) {
        self.s3_requests
            .get_or_create(&S3Labels {
                operation: operation.to_owned(),
                outcome,
            })
            .inc();
        self.s3_duration
            .get_or_create(&OperationLabels {
                operation: operation.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Every series, encoded for a scrape.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(err) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %err, "metrics: cannot encode");
        }
        text
    }

    /// An S3 interceptor that counts and times every call of the client it is added to.
    pub fn s3_interceptor(self: &Arc<Self>) -> S3Observer {
        S3Observer(self.clone())
    }
}

/// Counts and times S3 calls (added to a client with [`ObjectStore::observed`]).
#[derive(Debug, Clone)]
pub struct S3Observer(Arc<Metrics>);

#[derive(Debug, Clone, Copy)]
struct CallStarted(Instant);

impl Storable for CallStarted {
    type Storer = StoreReplace<Self>;
}

impl Intercept for S3Observer {
    fn name(&self) -> &'static str {
        "pawfile-metrics"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        cfg.interceptor_state().store_put(CallStarted(Instant::now()));
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        let took = cfg
            .load::<CallStarted>()
            .map_or(Duration::ZERO, |started| started.0.elapsed());
        let operation = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map_or("unknown", |metadata| metadata.name());
        let status = context.response().map(|response| response.status().as_u16());
        let outcome = match (context.output_or_error(), status) {
            (Some(Ok(_)), _) => "ok",
            // A 4xx, or 501 from a store without the operation (the embedded one lists no multipart
            // uploads): an answer, not a failing store.
            (_, Some(status)) if (400..500).contains(&status) || status == 501 => "refused",
            _ => "error",
        };
        self.0.s3_call(operation, outcome, took);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_named_and_labelled_as_documented() {
        let metrics = Metrics::new();
        metrics.request("GET", "/api/pets/{id}", 200, Duration::from_millis(3));
        metrics.upload(Ok((2, 10)));
        metrics.task_run("reconcile", "skipped");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &metrics.registry).unwrap();
        for line in [
            r#"pawfile_http_requests_total{method="GET",route="/api/pets/{id}",status="200"} 1"#,
            r#"pawfile_http_request_duration_seconds_count{method="GET",route="/api/pets/{id}"} 1"#,
            r#"pawfile_uploads_total{outcome="ok"} 2"#,
            "pawfile_upload_bytes_total 10",
            r#"pawfile_task_runs_total{task="reconcile",outcome="skipped"} 1"#,
            "pawfile_ready 0",
            "pawfile_backup_last_success_timestamp_seconds 0.0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from:\n{text}");
        }
    }
}
