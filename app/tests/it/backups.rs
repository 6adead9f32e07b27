//! Backups through the API: "Back up now" answers 202 with the run's id and 409 while one runs; the
//! run's progress and result are readable by admins only.

use crate::support::{BACKUP_KEY, PASSWORD, spawn_app, spawn_app_on, test_config};
use pawfile::{
    domain::Role,
    testing::{SETTLE, TestBucket, eventually},
};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::Value;
use sqlx::PgPool;
use std::{io::Write, process::Stdio, time::Duration};

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

/// `pawfile …` with the test app's database and buckets, backups encrypted to the test key.
/// (A `tokio` command: the test's embedded S3 endpoints run on this runtime, so the test must not block
/// it while the process talks to them.)
pub(crate) fn pawfile(
    database_url: &str,
    documents: &TestBucket,
    backups: &TestBucket,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_pawfile"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("DATABASE_URL", database_url)
        .env("PAWFILE_BACKUP_RECIPIENTS", &BACKUP_KEY.1)
        // The key the test servers sign with, so the command and they trust each other's objects.
        .env(
            "PAWFILE_BACKUP_SIGNING_KEY",
            pawfile::testing::backup_signing_key().to_text().expose_secret(),
        )
        .env("PAWFILE_DATA_DIR", std::env::temp_dir().join("pawfile-cli-tests"))
        .env("PAWFILE_LOG_FORMAT", "text");
    for (prefix, bucket) in [("PAWFILE_S3_", documents), ("PAWFILE_BACKUP_S3_", backups)] {
        let settings = &bucket.settings;
        let credentials = settings.credentials.as_ref().unwrap();
        command
            .env(
                format!("{prefix}ENDPOINT"),
                settings.endpoint.as_ref().unwrap().as_str(),
            )
            .env(format!("{prefix}REGION"), &settings.region)
            .env(format!("{prefix}BUCKET"), &settings.bucket)
            .env(format!("{prefix}ACCESS_KEY_ID"), &credentials.access_key_id)
            .env(
                format!("{prefix}SECRET_ACCESS_KEY"),
                credentials.secret_access_key.expose_secret(),
            );
    }
    command
}

fn url_of(name: &str) -> String {
    let mut url: url::Url = std::env::var("DATABASE_URL").unwrap().parse().unwrap();
    url.set_path(name);
    url.to_string()
}

fn succeeded(output: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_killed_backup_process_is_settled_and_a_restored_installation_serves_the_document(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    app.create_user("alice@example.org", &[Role::Owner], None).await;
    let alice = app.browser_for("alice@example.org").await;
    let pet: Value = alice
        .post(app.url("/api/pets/create"))
        .form(&[("name", "Biscuit"), ("species", "dog")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut scan = b"%PDF-1.7\n".to_vec();
    scan.extend((0..9_000_000u32).map(|i| (i % 241) as u8));
    let uploaded: Value = alice
        .post(app.url(&format!("/api/pets/{}/documents", pet.as_str().unwrap())))
        .multipart(reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(scan.clone()).file_name("x-ray.pdf"),
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let document = uploaded[0]["id"].as_str().unwrap().to_owned();
    let live_url = url_of(pool.connect_options().get_database().unwrap());

    // A backup process killed mid-run (SIGKILL: no clean-up of its own).
    let mut slow = pawfile(&live_url, &app.documents, &app.backups)
        .args(["backup", "run"])
        .env("PAWFILE_BACKUP_TEST_PACE", "2s")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Its row says `running` once the run has begun; paced at 2 s a table, it is mid-run when killed.
    eventually(SETTLE, "the backup process began its run", || async {
        sqlx::query_scalar::<_, i64>("select count(*) from backup_runs where status = 'running'")
            .fetch_one(&pool)
            .await
            .unwrap()
            == 1
    })
    .await;
    slow.kill().await.unwrap();
    // Postgres releases the killed process's advisory lock once it sees the connection gone, which is not
    // at once: the next run would find a backup running.
    eventually(SETTLE, "the killed run's lock was released", || async {
        match pawfile::backup::RunLock::try_take(&pool).await.unwrap() {
            Some(lock) => {
                lock.release().await;
                true
            }
            None => false,
        }
    })
    .await;

    // The next run settles it and completes; list and verify agree.
    succeeded(
        &pawfile(&live_url, &app.documents, &app.backups)
            .args(["backup", "run"])
            .output()
            .await
            .unwrap(),
    );
    let listed = succeeded(
        &pawfile(&live_url, &app.documents, &app.backups)
            .args(["backup", "list"])
            .output()
            .await
            .unwrap(),
    );
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(
        lines[0].contains("complete") && lines[1].contains("interrupted"),
        "{listed}"
    );
    assert!(
        lines[0].contains(&BACKUP_KEY.1),
        "each snapshot shows its recipients: {listed}"
    );
    succeeded(
        &pawfile(&live_url, &app.documents, &app.backups)
            .args(["backup", "verify", "--read"])
            .output()
            .await
            .unwrap(),
    );
    assert_eq!(
        app.backups.pending_uploads().await,
        0,
        "no multipart upload is left"
    );

    // A wiped installation: a new database and an empty documents bucket, restored from the backups.
    let target_name = format!("pawfile_restore_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("create database {target_name}"))
        .execute(&pool)
        .await
        .unwrap();
    let target_documents = TestBucket::embedded().await;
    let mut identity = tempfile::NamedTempFile::new().unwrap();
    identity.write_all(BACKUP_KEY.0.as_bytes()).unwrap();
    let restored = succeeded(
        &pawfile(&url_of(&target_name), &target_documents, &app.backups)
            .args(["restore", "latest", "--identity"])
            .arg(identity.path())
            .output()
            .await
            .unwrap(),
    );
    assert!(restored.contains("1 files written"), "{restored}");

    // Pawfile starts on it, Alice signs in again and downloads her scan byte for byte.
    let target = PgPool::connect(&url_of(&target_name)).await.unwrap();
    let backups = TestBucket::embedded().await;
    let restored_app = spawn_app_on(target, target_documents, backups, test_config()).await;
    let alice = restored_app.browser_for("alice@example.org").await;
    let downloaded = alice
        .get(restored_app.url(&format!("/api/documents/{document}/content")))
        .send()
        .await
        .unwrap();
    assert_eq!(downloaded.status(), StatusCode::OK);
    assert_eq!(downloaded.bytes().await.unwrap().to_vec(), scan);
}
