//! Prometheus metrics on their own port: the documented series exist, they move with what the server
//! does (requests by matched route, uploads, downloads, S3 calls, failures), and the backup, drill and
//! integrity gauges follow the database. And request ids.

use crate::{
    documents::{file, pdf, with_a_pet},
    support::{spawn_app, spawn_app_with, test_config},
};
use pawfile::{
    backup::{StartedBy, Trigger},
    net::TrustedProxies,
    testing::{SETTLE, eventually},
};
use reqwest::StatusCode;
use sqlx::PgPool;
use std::time::Duration;

/// Every series the README and the alert rules in `deploy/` name.
pub(crate) const DOCUMENTED: &[&str] = &[
    "pawfile_http_requests_total",
    "pawfile_http_request_duration_seconds",
    "pawfile_uploads_total",
    "pawfile_upload_bytes_total",
    "pawfile_downloads_total",
    "pawfile_download_bytes_total",
    "pawfile_s3_requests_total",
    "pawfile_s3_request_duration_seconds",
    "pawfile_db_pool_connections",
    "pawfile_db_pool_max_connections",
    "pawfile_task_runs_total",
    "pawfile_thumbnails_total",
    "pawfile_http_open_connections",
    "pawfile_http_connections_refused_total",
    "pawfile_http_connections_timed_out_total",
    "pawfile_backup_last_success_timestamp_seconds",
    "pawfile_backup_last_duration_seconds",
    "pawfile_backup_last_bytes",
    "pawfile_backup_last_run_failed",
    "pawfile_backup_drill_last_success",
    "pawfile_backup_drill_last_timestamp_seconds",
    "pawfile_integrity_flagged_documents",
    "pawfile_integrity_scrub_coverage_ratio",
    "pawfile_integrity_last_reconcile_timestamp_seconds",
    "pawfile_ready",
];

/// The series names an exposition declares (`# TYPE` lines name counters without `_total`).
pub(crate) fn exposed_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split(' ');
            let (name, kind) = (words.next().unwrap(), words.next().unwrap());
            names.push(if kind == "counter" {
                format!("{name}_total")
            } else {
                name.to_owned()
            });
        }
    }
    names
}

/// The sum of every series of `name` whose labels contain all of `labels`.
fn sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let rest = series.strip_prefix(name)?;
            let matches =
                (rest.is_empty() || rest.starts_with('{')) && labels.iter().all(|label| rest.contains(label));
            matches.then(|| value.parse::<f64>().unwrap())
        })
        .sum()
}

async fn scrape(url: &str) -> String {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    response.text().await.unwrap()
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn metrics_count_requests_by_route_uploads_downloads_and_s3_calls(pool: PgPool) {
    let setup = with_a_pet(spawn_app(pool).await).await;
    let app = &setup.app;
    // Not on the public port.
    let public = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND);

    let before = scrape(&app.metrics_address).await;
    let id = setup.round_trip(&app.address, &app.address, pdf(50_000)).await;

    let after = scrape(&app.metrics_address).await;
    let names = exposed_names(&after);
    for name in DOCUMENTED {
        assert!(
            names.iter().any(|exposed| exposed == name),
            "{name} missing:\n{after}"
        );
    }

    let delta = |name: &str, labels: &[&str]| sum(&after, name, labels) - sum(&before, name, labels);
    assert_eq!(delta("pawfile_uploads_total", &[r#"outcome="ok""#]), 1.0);
    assert_eq!(delta("pawfile_upload_bytes_total", &[]), 50_000.0);
    assert_eq!(delta("pawfile_downloads_total", &[r#"outcome="ok""#]), 1.0);
    assert_eq!(delta("pawfile_download_bytes_total", &[]), 50_000.0);
    assert!(
        delta(
            "pawfile_s3_requests_total",
            &[r#"operation="GetObject""#, r#"outcome="ok""#]
        ) >= 1.0
    );
    let stored = delta(
        "pawfile_s3_requests_total",
        &[r#"operation="PutObject""#, r#"outcome="ok""#],
    ) + delta(
        "pawfile_s3_requests_total",
        &[r#"operation="UploadPart""#, r#"outcome="ok""#],
    );
    assert!(stored >= 1.0, "{after}");
    assert!(
        delta(
            "pawfile_s3_request_duration_seconds_count",
            &[r#"operation="GetObject""#]
        ) >= 1.0
    );
    // By matched route, never the raw path.
    let upload_route = [
        r#"method="POST""#,
        r#"route="/api/pets/{pet_id}/documents""#,
        r#"status="201""#,
    ];
    assert_eq!(delta("pawfile_http_requests_total", &upload_route), 1.0);
    let content_route = [r#"route="/api/documents/{id}/content""#, r#"status="200""#];
    assert_eq!(delta("pawfile_http_requests_total", &content_route), 1.0);
    assert_eq!(
        delta(
            "pawfile_http_request_duration_seconds_count",
            &[r#"method="POST""#, r#"route="/api/pets/{pet_id}/documents""#]
        ),
        1.0
    );
    assert!(
        !after.contains(&setup.pet) && !after.contains(&id),
        "raw paths leaked:\n{after}"
    );
    assert!(sum(&after, "pawfile_db_pool_max_connections", &[]) >= 1.0);
    assert_eq!(sum(&after, "pawfile_ready", &[]), 1.0);
    // The background tasks count their runs (each ran once at start-up).
    let mut housekeeping = 0.0;
    for _ in 0..100 {
        let text = scrape(&app.metrics_address).await;
        housekeeping = sum(
            &text,
            "pawfile_task_runs_total",
            &[r#"task="housekeeping""#, r#"outcome="ok""#],
        );
        if housekeeping >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(housekeeping, 1.0);
    // The start-up reconcile asked the embedded store for its unfinished multipart uploads, which it
    // cannot list (501): an answer, not a failing store. That reconcile runs beside the test: wait until
    // it has counted its run (after its calls) before reading its calls.
    eventually(SETTLE, "the start-up reconcile ran", || async {
        sum(
            &scrape(&app.metrics_address).await,
            "pawfile_task_runs_total",
            &[r#"task="reconcile""#],
        ) >= 1.0
    })
    .await;
    let text = scrape(&app.metrics_address).await;
    let listing = r#"operation="ListMultipartUploads""#;
    assert!(
        sum(
            &text,
            "pawfile_s3_requests_total",
            &[listing, r#"outcome="refused""#]
        ) >= 1.0,
        "{text}"
    );
    assert_eq!(
        sum(
            &text,
            "pawfile_s3_requests_total",
            &[listing, r#"outcome="error""#]
        ),
        0.0
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn s3_failures_and_failed_transfers_are_counted_and_readiness_drops(pool: PgPool) {
    let mut setup = with_a_pet(spawn_app(pool).await).await;
    let (status, created) = setup.upload(file(pdf(5_000), "scan.pdf")).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created[0]["id"].as_str().unwrap().to_owned();
    let before = scrape(&setup.app.metrics_address).await;

    setup.app.documents.stop_endpoint();
    let download = setup.download(&setup.app.address, &id).await;
    assert_eq!(download.status(), StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = setup.upload(file(pdf(5_000), "again.pdf")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let after = scrape(&setup.app.metrics_address).await;
    setup.app.documents.restart_endpoint().await;

    let delta = |name: &str, labels: &[&str]| sum(&after, name, labels) - sum(&before, name, labels);
    assert_eq!(delta("pawfile_downloads_total", &[r#"outcome="failed""#]), 1.0);
    assert_eq!(delta("pawfile_uploads_total", &[r#"outcome="failed""#]), 1.0);
    assert!(
        delta(
            "pawfile_s3_requests_total",
            &[r#"operation="GetObject""#, r#"outcome="error""#]
        ) >= 1.0
    );
    assert_eq!(sum(&after, "pawfile_ready", &[]), 0.0);
    assert_eq!(
        sum(&scrape(&setup.app.metrics_address).await, "pawfile_ready", &[]),
        1.0
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn with_postgres_gone_metrics_still_answer_ready_0_and_keep_the_last_state(pool: PgPool) {
    let options = pool.connect_options().as_ref().clone();
    let upstream: std::net::SocketAddr = format!("127.0.0.1:{}", options.get_port()).parse().unwrap();
    let proxy = crate::support::TcpProxy::start(upstream).await;
    let through_proxy = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(2))
        .connect_with(options.host("127.0.0.1").port(proxy.addr.port()))
        .await
        .unwrap();
    let setup = with_a_pet(spawn_app_with(through_proxy, test_config()).await).await;
    let (status, created) = setup.upload(file(pdf(5_000), "scan.pdf")).await;
    assert_eq!(status, StatusCode::CREATED);
    sqlx::query("update documents set integrity_problem = 'checksum mismatch' where id = $1::uuid")
        .bind(created[0]["id"].as_str().unwrap())
        .execute(&pool)
        .await
        .unwrap();
    let text = scrape(&setup.app.metrics_address).await;
    assert_eq!(sum(&text, "pawfile_integrity_flagged_documents", &[]), 1.0);

    proxy.cut();
    let text = tokio::time::timeout(Duration::from_secs(20), scrape(&setup.app.metrics_address))
        .await
        .expect("a scrape answers while PostgreSQL is gone");
    assert_eq!(sum(&text, "pawfile_ready", &[]), 0.0);
    assert_eq!(
        sum(&text, "pawfile_integrity_flagged_documents", &[]),
        1.0,
        "the last state read stays"
    );

    proxy.restore();
    let mut ready = 0.0;
    for _ in 0..50 {
        ready = sum(&scrape(&setup.app.metrics_address).await, "pawfile_ready", &[]);
        if ready == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(ready, 1.0, "ready again once PostgreSQL is back");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn backup_drill_and_integrity_gauges_follow_the_database(pool: PgPool) {
    let setup = with_a_pet(spawn_app(pool.clone()).await).await;
    let app = &setup.app;
    let (status, created) = setup.upload(file(pdf(5_000), "scan.pdf")).await;
    assert_eq!(status, StatusCode::CREATED);
    let text = scrape(&app.metrics_address).await;
    assert_eq!(
        sum(&text, "pawfile_backup_last_success_timestamp_seconds", &[]),
        0.0
    );
    assert_eq!(sum(&text, "pawfile_integrity_flagged_documents", &[]), 0.0);

    let by = StartedBy {
        trigger: Trigger::Cli,
        user: None,
        client_addr: None,
    };
    let report = crate::support::test_backups(&pool, &app.documents, &app.backups)
        .run(by)
        .await
        .unwrap()
        .unwrap();
    sqlx::query("insert into backup_drills (id, run_id, passed, detail) values (gen_random_uuid(), $1, false, 'test')")
        .bind(report.id)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("update documents set integrity_problem = 'checksum mismatch' where id = $1::uuid")
        .bind(created[0]["id"].as_str().unwrap())
        .execute(&pool)
        .await
        .unwrap();

    let text = scrape(&app.metrics_address).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
    let backed_up = sum(&text, "pawfile_backup_last_success_timestamp_seconds", &[]);
    assert!((now - backed_up).abs() < 120.0, "{backed_up} vs {now}");
    assert!(sum(&text, "pawfile_backup_last_bytes", &[]) > 5_000.0);
    assert_eq!(sum(&text, "pawfile_backup_last_run_failed", &[]), 0.0);
    assert_eq!(sum(&text, "pawfile_backup_drill_last_success", &[]), 0.0);
    assert!(sum(&text, "pawfile_backup_drill_last_timestamp_seconds", &[]) > 0.0);
    assert_eq!(sum(&text, "pawfile_integrity_flagged_documents", &[]), 1.0);
    // One document, never re-hashed yet.
    assert_eq!(sum(&text, "pawfile_integrity_scrub_coverage_ratio", &[]), 0.0);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_request_id_is_answered_and_taken_only_from_a_trusted_proxy(pool: PgPool) {
    let direct = spawn_app(pool.clone()).await;
    let ask = |url: String, id: &'static str| async move {
        let response = reqwest::Client::new()
            .get(url)
            .header("x-request-id", id)
            .send()
            .await
            .unwrap();
        response.headers()["x-request-id"].to_str().unwrap().to_owned()
    };
    let made = ask(direct.url("/healthz"), "from-the-client").await;
    assert_ne!(made, "from-the-client");
    assert_eq!(made.len(), 32);
    assert!(made.bytes().all(|byte| byte.is_ascii_hexdigit()));
    assert_ne!(ask(direct.url("/healthz"), "from-the-client").await, made);

    let mut config = test_config();
    config.trusted_proxies = TrustedProxies::new(vec!["127.0.0.1/32".parse().unwrap()]);
    let proxied = spawn_app_with(pool, config).await;
    assert_eq!(ask(proxied.url("/healthz"), "edge-7f3a.1").await, "edge-7f3a.1");
    // Not a short token: a fresh one instead.
    let long: &'static str = "x".repeat(65).leak();
    assert_ne!(ask(proxied.url("/healthz"), long).await, long);
    assert_ne!(ask(proxied.url("/healthz"), "a,b").await, "a,b");
}
