//! Backups through the API: "Back up now" answers 202 with the run's id and 409 while one runs; the
//! run's progress and result are readable by admins only.

use crate::support::{PASSWORD, spawn_app};
use pawfile::domain::Role;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use std::time::Duration;

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn an_admin_starts_a_backup_and_watches_it_complete(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    app.signed_in_owner("olivia@example.org").await;
    let as_owner = app
        .client
        .post(app.url("/api/admin/backups/run"))
        .send()
        .await
        .unwrap();
    assert_eq!(as_owner.status(), StatusCode::FORBIDDEN);
    let list_as_owner = app
        .client
        .get(app.url("/api/admin/backups"))
        .send()
        .await
        .unwrap();
    assert_eq!(list_as_owner.status(), StatusCode::FORBIDDEN);
    app.logout().await;
    app.create_user("admin@example.org", &[Role::Admin], None).await;
    assert_eq!(
        app.login("admin@example.org", PASSWORD).await.status(),
        StatusCode::OK
    );

    // While another replica holds the backup lock, a trigger is refused with 409.
    let held = pawfile::backup::RunLock::try_take(&pool).await.unwrap().unwrap();
    let busy = app
        .client
        .post(app.url("/api/admin/backups/run"))
        .send()
        .await
        .unwrap();
    assert_eq!(busy.status(), StatusCode::CONFLICT);
    held.release().await;

    let started = app
        .client
        .post(app.url("/api/admin/backups/run"))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let id: String = started.json().await.unwrap();
    let mut status = String::new();
    for _ in 0..100 {
        let overview: Value = app
            .client
            .get(app.url("/api/admin/backups"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let run = &overview["runs"][0];
        assert_eq!(run["id"], id.as_str());
        status = run["status"].as_str().unwrap().to_owned();
        if status != "running" {
            assert_eq!(overview["alarm"], Value::Null, "{overview}");
            assert_eq!(run["triggered_by"], "admin@example.org");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "complete");
    assert!(!app.backups.keys().await.is_empty());
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from audit_events where action = 'start_backup' and actor_id is not null",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);
}
