//! The admin dashboard: drawn from the daily rows the server records (never a scan of the bucket),
//! admins only.

use crate::documents::{file, pdf, with_a_pet};
use pawfile::{
    backup::{StartedBy, Trigger},
    domain::Role,
};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;

/// The page at `url` (answered 200), as `client` sees it.
async fn page(client: &reqwest::Client, url: &str) -> String {
    let page = client.get(url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    page.text().await.unwrap()
}

/// The chart `id` in `html`: from its figure's opening to its end.
fn figure(html: &str, id: &str) -> String {
    let start = html
        .find(&format!("data-testid=\"{id}\""))
        .unwrap_or_else(|| panic!("{id} missing"));
    let end = html[start..].find("</figure>").unwrap() + start;
    html[start..end].to_owned()
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_dashboard_draws_storage_uploads_and_backups_from_the_recorded_rows(pool: PgPool) {
    let setup = with_a_pet(crate::support::spawn_app(pool.clone()).await).await;
    let app = &setup.app;
    let riverside = app.create_clinic("Riverside").await;
    // Two earlier days, as the server recorded them then.
    sqlx::query(
        "insert into daily_usage (day, clinic_id, stored_bytes, documents, uploads) values
           (current_date - 2, null, 1000, 1, 1), (current_date - 1, null, 3000, 2, 1),
           (current_date - 1, $1, 2000, 1, 1)",
    )
    .bind(riverside.0)
    .execute(&pool)
    .await
    .unwrap();
    let (status, _) = setup.upload(file(pdf(5_000), "scan.pdf")).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(pawfile::usage::record_today(&pool).await.unwrap() >= 2);
    // Uploaded after today's recording: not on the dashboard until the next one.
    let (status, _) = setup.upload(file(pdf(7_000), "later.pdf")).await;
    assert_eq!(status, StatusCode::CREATED);

    let as_owner = setup
        .owner
        .get(app.url("/api/admin/dashboard"))
        .send()
        .await
        .unwrap();
    assert_eq!(as_owner.status(), StatusCode::FORBIDDEN);
    app.create_user("admin@example.org", &[Role::Admin], None).await;
    let admin = app.browser_for("admin@example.org").await;
    let figures: Value = admin
        .get(app.url("/api/admin/dashboard"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stored: Vec<i64> = figures["total"]
        .as_array()
        .unwrap()
        .iter()
        .map(|day| day["stored_bytes"].as_i64().unwrap())
        .collect();
    assert_eq!(stored, [1000, 3000, 5000], "{figures}");
    assert_eq!(figures["total"][2]["uploads"], 1);
    assert_eq!(figures["per_clinic"][0]["clinic"], "Riverside");
    assert_eq!(figures["per_clinic"][0]["days"].as_array().unwrap().len(), 2);
    assert_eq!(figures["backup_alarm"], "There is no complete backup yet.");
    assert_eq!(figures["flagged"], 0);

    let html = page(&admin, &app.url("/admin/dashboard")).await;
    let chart = |id: &str| figure(&html, id);
    let storage = chart("storage-chart");
    assert_eq!(storage.matches("<polyline").count(), 2, "all, and Riverside");
    assert!(storage.contains("Riverside"));
    assert!(storage.contains("4.9 KiB"), "today's figure in its table");
    assert!(storage.contains("role=\"img\""));
    assert_eq!(chart("uploads-chart").matches("<rect").count(), 3);
    assert!(chart("backup-size-chart").contains("Nothing yet."));
    assert!(html.contains("There is no complete backup yet."));

    let by = StartedBy {
        trigger: Trigger::Cli,
        user: None,
        client_addr: None,
    };
    crate::support::test_backups(&pool, &app.documents, &app.backups)
        .run(by)
        .await
        .unwrap()
        .unwrap();
    let html = page(&admin, &app.url("/admin/dashboard")).await;
    assert!(!html.contains("There is no complete backup yet."));
    assert_eq!(figure(&html, "backup-size-chart").matches("<rect").count(), 1);
}
