//! Memory and throughput of a large upload through Pawfile, side by side with a baseline: the same
//! bytes sent straight to the same S3 endpoint with aws-sdk-s3 (no Pawfile in between).
//!
//! Needs `DATABASE_URL` (a role that may create databases). Size: `PAWFILE_BENCH_MIB` (default 1024).
//! Run: `cargo bench -p pawfile-app --bench upload_memory`.

// A benchmark's printed table is its result.
#![allow(clippy::print_stdout)]

use bytes::Bytes;
use futures::stream;
use pawfile::{
    auth::PasswordHasher,
    documents::upload::{Policy, store_stream},
    domain::DocumentId,
    testing::TestBucket,
};
use pawfile_app::startup::{AppState, Application, RuntimeConfig, TaskSignals};
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

const CHUNK: usize = 256 * 1024;

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// A PDF-looking body of `total` bytes, generated as it is sent (the client holds one chunk).
fn body(total: u64) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let chunk = Bytes::from((0..CHUNK).map(|i| (i % 251) as u8).collect::<Vec<_>>());
    let mut first = b"%PDF-1.7\n".to_vec();
    first.extend_from_slice(&chunk[9..]);
    let first = Bytes::from(first);
    let chunks = total.div_ceil(CHUNK as u64);
    stream::iter((0..chunks).map(move |index| {
        let bytes = if index == 0 { first.clone() } else { chunk.clone() };
        let left = (total - index * CHUNK as u64).min(CHUNK as u64) as usize;
        Ok(bytes.slice(..left))
    }))
}

/// Samples RSS every 20 ms while `work` runs; returns its output, the peak and the duration.
async fn measure<T>(work: impl Future<Output = T>) -> (T, u64, Duration) {
    let peak = Arc::new(AtomicU64::new(rss()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let started = Instant::now();
    let output = work.await;
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    (output, peak.load(Ordering::Relaxed), elapsed)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let size_mib: u64 = std::env::var("PAWFILE_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let total = size_mib * 1024 * 1024;
    let url = std::env::var("DATABASE_URL").map_err(|_| anyhow::anyhow!("set DATABASE_URL"))?;
    let admin = sqlx::PgPool::connect(&url).await?;
    let database = format!("pawfile_bench_{}", std::process::id());
    sqlx::query(&format!("create database {database}"))
        .execute(&admin)
        .await?;
    let mut bench_url: url::Url = url.parse()?;
    bench_url.set_path(&database);
    let pool = sqlx::PgPool::connect(bench_url.as_str()).await?;
    pawfile::db::MIGRATOR.run(&pool).await?;

    let documents = TestBucket::embedded().await;
    let backups = TestBucket::embedded().await;
    let state = AppState {
        db: pool.clone(),
        hasher: PasswordHasher::new(2),
        documents: documents.store.clone(),
        backups: backups.store.clone(),
        backup: pawfile::backup::Backups::new(
            pool.clone(),
            documents.store.clone(),
            backups.store.clone(),
            pawfile::backup::Policy {
                recipients: pawfile::backup::Recipients::unencrypted(),
                allow_unencrypted: true,
                retention: pawfile::backup::Retention::default(),
                prune: false,
                pace: None,
            },
            tokio_util::sync::CancellationToken::new(),
        ),
        config: Arc::new(RuntimeConfig {
            public_url: "http://127.0.0.1/".parse()?,
            trusted_proxies: Default::default(),
            session_idle_timeout: Duration::from_secs(3600),
            session_absolute_timeout: Duration::from_secs(3600),
            connections: Default::default(),
            limits: Default::default(),
            search_language: "english".to_owned(),
            quotas: pawfile::documents::quota::Quotas {
                per_owner: u64::MAX,
                per_clinic: u64::MAX,
            },
            max_upload_bytes: total + 1,
            accepted_types: vec!["application/pdf".to_owned()],
            trash_retention: Duration::from_secs(86400),
            reconcile_interval: Duration::from_secs(86400),
            scrub_period: Duration::from_secs(30 * 86400),
            backups_on_this_machine: true,
            backup_schedule: pawfile::config::BackupSchedule::Off,
            backup_key_beside_data: false,
            backup_separation: Vec::new(),
            backup_drill: None,
        }),
        tasks: Arc::new(TaskSignals::default()),
    };
    let app = Application::with_state(state, "127.0.0.1:0".parse()?, Vec::new()).await?;
    let address = format!("http://{}", app.local_addr());
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run_until_stopped());

    // A script says so (Pawfile's CSRF rule); browsers send `Sec-Fetch-Site` instead.
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-pawfile-client", reqwest::header::HeaderValue::from_static("1"));
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .cookie_store(true)
        .build()?;
    client
        .post(format!("{address}/api/register"))
        .form(&[
            ("email", "bench@example.org"),
            ("display_name", "Bench"),
            ("password", "benchmark password"),
        ])
        .send()
        .await?
        .error_for_status()?;
    let pet: String = client
        .post(format!("{address}/api/pets/create"))
        .form(&[("name", "Bench"), ("species", "dog")])
        .send()
        .await?
        .json()
        .await?;

    // Warm up both paths with a small file, so allocator pools and connections exist before measuring.
    let warm = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(body(1 << 20))).file_name("warm.pdf"),
    );
    client
        .post(format!("{address}/api/pets/{pet}/documents"))
        .multipart(warm)
        .send()
        .await?
        .error_for_status()?;
    let policy = Policy {
        max_bytes: u64::MAX,
        accepted: vec!["application/pdf".to_owned()],
    };
    let (_, pending) =
        store_stream(&documents.store, &pool, DocumentId::new(), body(1 << 20), &policy).await?;
    pending.keep();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let idle = rss();
    let (baseline, baseline_peak, baseline_time) = measure(Box::pin(async {
        store_stream(&documents.store, &pool, DocumentId::new(), body(total), &policy)
            .await
            .map(|(stored, pending)| {
                pending.keep();
                stored.size
            })
    }))
    .await;
    baseline?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let idle_before_http = rss();
    let (through_pawfile, pawfile_peak, pawfile_time) = measure(async {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(body(total))).file_name("big.pdf"),
        );
        client
            .post(format!("{address}/api/pets/{pet}/documents"))
            .multipart(form)
            .send()
            .await
    })
    .await;
    let status = through_pawfile?.status();

    println!("upload of {size_mib} MiB, one process (client, Pawfile, embedded S3 all included in RSS)");
    println!(
        "{:<34} {:>12} {:>14} {:>12}",
        "", "peak RSS", "RSS increase", "MiB/s"
    );
    println!(
        "{:<34} {:>9.1} MiB {:>10.1} MiB {:>12.1}",
        "baseline: SDK straight to S3",
        mib(baseline_peak),
        mib(baseline_peak.saturating_sub(idle)),
        size_mib as f64 / baseline_time.as_secs_f64()
    );
    println!(
        "{:<34} {:>9.1} MiB {:>10.1} MiB {:>12.1}",
        format!("Pawfile HTTP upload ({status})"),
        mib(pawfile_peak),
        mib(pawfile_peak.saturating_sub(idle_before_http)),
        size_mib as f64 / pawfile_time.as_secs_f64()
    );
    println!(
        "idle RSS before: {:.1} MiB / {:.1} MiB",
        mib(idle),
        mib(idle_before_http)
    );

    shutdown.cancel();
    let _ = server.await;
    pool.close().await;
    sqlx::query(&format!("drop database {database} with (force)"))
        .execute(&admin)
        .await?;
    Ok(())
}
