//! `/healthz` and `/readyz`.

use crate::support::spawn_app;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn healthz_answers_while_the_process_lives(pool: PgPool) {
    let app = spawn_app(pool).await;

    let response = app.client.get(app.url("/healthz")).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "alive");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn readyz_is_ready_when_postgres_and_s3_answer(pool: PgPool) {
    let app = spawn_app(pool).await;

    let response = app.client.get(app.url("/readyz")).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "ready");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn readyz_reports_a_stopped_s3_endpoint(pool: PgPool) {
    let mut app = spawn_app(pool).await;

    app.documents.stop_endpoint();

    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    let reason = body["error"].as_str().unwrap();
    assert!(reason == "document storage: unreachable", "{reason}");
    assert!(!reason.contains("database"), "Postgres is fine: {reason}");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn readyz_reports_an_unreachable_database(pool: PgPool) {
    let app = spawn_app(pool).await;

    app.pool.close().await;

    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let reason = response.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(reason, "database: unreachable");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_database_outage_is_a_clear_503_for_server_functions(pool: PgPool) {
    let app = spawn_app(pool).await;

    app.pool.close().await;

    let response = app.login("olivia@example.org", "whatever password").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["kind"], "unavailable");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("database is unavailable"),
        "{body}"
    );
}
