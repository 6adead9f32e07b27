//! Start-up: bad configuration fails with one line naming the setting; an unreachable backup store does
//! not stop Pawfile; the binary's administration commands work.

use crate::support::count;
use pawfile::{
    backup::RunStatus,
    config::{
        BackupStoreSettings, ConnectionSettings, DatabaseSettings, DocumentSettings, DocumentStoreSettings,
        HttpSettings, LimitSettings, RecordSettings, ServeSettings, SessionSettings,
    },
    testing::{SETTLE, TestBucket, eventually},
};
use pawfile_app::startup::build_state;
use secrecy::SecretString;
use sqlx::PgPool;
use std::{io::Write, process::Stdio};

/// The URL of the database `pool` is connected to (the test's own database).
pub(crate) async fn database_url(pool: &PgPool) -> String {
    let name: String = sqlx::query_scalar("select current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    let mut url: url::Url = std::env::var("DATABASE_URL").unwrap().parse().unwrap();
    url.set_path(&name);
    url.to_string()
}

pub(crate) fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn settings(database_url: &str, documents: &TestBucket, data_dir: &std::path::Path) -> ServeSettings {
    let s3 = &documents.settings;
    let credentials = s3.credentials.as_ref().unwrap();
    ServeSettings {
        database: DatabaseSettings {
            url: SecretString::from(database_url.to_owned()),
            max_connections: 2,
        },
        http: HttpSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            public_url: None,
            metrics_listen: None,
            trusted_proxies: Vec::new(),
        },
        connections: ConnectionSettings {
            max_client_connections: 64,
            shutdown_grace: std::time::Duration::from_secs(5),
            ..ConnectionSettings::default()
        },
        sessions: SessionSettings {
            idle_timeout: std::time::Duration::from_secs(60),
            absolute_timeout: std::time::Duration::from_secs(600),
            require_two_factor: vec![None],
        },
        limits: LimitSettings {
            upload_per_hour: bytesize::ByteSize::gib(1),
            download_per_hour: bytesize::ByteSize::gib(1),
            exports_per_hour: 5,
            concurrent_uploads: 4,
            ..LimitSettings::default()
        },
        document_rules: DocumentSettings {
            max_upload_size: bytesize::ByteSize::mib(10),
            accepted_types: vec!["application/pdf".to_owned()],
            trash_retention: std::time::Duration::from_secs(86400),
            reconcile_interval: std::time::Duration::from_secs(3600),
            ..DocumentSettings::default()
        },
        records: RecordSettings::default(),
        documents: DocumentStoreSettings {
            endpoint: s3.endpoint.clone(),
            region: s3.region.clone(),
            bucket: s3.bucket.clone(),
            access_key_id: Some(credentials.access_key_id.clone()),
            secret_access_key: Some(credentials.secret_access_key.clone()),
            force_path_style: Some(true),
            timeout: std::time::Duration::from_secs(30),
        },
        backups: BackupStoreSettings {
            endpoint: s3.endpoint.clone(),
            region: s3.region.clone(),
            bucket: format!("{}-backups", s3.bucket),
            access_key_id: Some(credentials.access_key_id.clone()),
            secret_access_key: Some(credentials.secret_access_key.clone()),
            force_path_style: Some(true),
            timeout: std::time::Duration::from_secs(30),
        },
        backup: pawfile::config::BackupSettings {
            schedule: pawfile::config::BackupSchedule::Off,
            recipients: Some(crate::support::BACKUP_KEY.1.clone()),
            retention: pawfile::backup::Retention::default(),
            prune: true,
            allow_unencrypted: false,
            drill_identity: None,
            drill_database_url: None,
            test_pace: None,
            signing_key: None,
            trusted_keys: Vec::new(),
        },
        mail: pawfile::config::MailSettings {
            smtp_host: None,
            smtp_port: None,
            smtp_tls: pawfile::mail::SmtpTls::Starttls,
            smtp_username: None,
            smtp_password: None,
            mail_from: None,
            mail_retry_after: std::time::Duration::from_secs(1),
            mail_max_attempts: 3,
            mail_file_retention: std::time::Duration::from_secs(30 * 24 * 60 * 60),
        },
        data_dir: data_dir.to_owned(),
    }
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn an_unreachable_database_is_named(pool: PgPool) {
    let documents = TestBucket::embedded().await;
    let folder = tempfile::tempdir().unwrap();
    let url = format!(
        "postgres://pawfile:secret-password@127.0.0.1:{}/pawfile",
        unused_port()
    );

    let err = build_state(&settings(&url, &documents, folder.path()))
        .await
        .unwrap_err();

    let message = err.to_string();
    assert!(
        message.starts_with("DATABASE_URL: cannot connect to postgres://pawfile:***@127.0.0.1:"),
        "{message}"
    );
    assert!(
        !message.contains("secret-password"),
        "the password never reaches a message"
    );
    assert!(!message.contains('\n'), "one line");
    drop(pool);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_metrics_address_already_in_use_is_named(pool: PgPool) {
    let documents = TestBucket::embedded().await;
    let folder = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut settings = settings(&database_url(&pool).await, &documents, folder.path());
    settings.http.metrics_listen = Some(taken.local_addr().unwrap());

    let Err(err) = pawfile_app::startup::Application::build(settings).await else {
        panic!("Pawfile started with its metrics address taken");
    };

    assert_eq!(err.setting, "PAWFILE_METRICS_LISTEN");
    assert!(
        err.to_string().contains(&taken.local_addr().unwrap().to_string()),
        "{err}"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn wrong_s3_credentials_are_named(pool: PgPool) {
    let documents = TestBucket::embedded().await;
    let folder = tempfile::tempdir().unwrap();
    let mut settings = settings(&database_url(&pool).await, &documents, folder.path());
    settings.documents.secret_access_key = Some(SecretString::from("not-the-secret".to_owned()));

    let err = build_state(&settings).await.unwrap_err();

    assert_eq!(
        err.setting,
        "PAWFILE_S3_ACCESS_KEY_ID/PAWFILE_S3_SECRET_ACCESS_KEY"
    );
    assert!(err.to_string().contains("refused"), "{err}");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_missing_documents_bucket_is_named(pool: PgPool) {
    let documents = TestBucket::embedded().await;
    let folder = tempfile::tempdir().unwrap();
    let mut settings = settings(&database_url(&pool).await, &documents, folder.path());
    settings.documents.bucket = "no-such-bucket".to_owned();

    let err = build_state(&settings).await.unwrap_err();

    assert_eq!(err.setting, "PAWFILE_S3_BUCKET");
    assert!(
        err.to_string().contains("\"no-such-bucket\" does not exist"),
        "{err}"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn an_unreachable_s3_endpoint_is_named(pool: PgPool) {
    let documents = TestBucket::embedded().await;
    let folder = tempfile::tempdir().unwrap();
    let mut settings = settings(&database_url(&pool).await, &documents, folder.path());
    settings.documents.endpoint = Some(format!("http://127.0.0.1:{}/", unused_port()).parse().unwrap());

    let err = build_state(&settings).await.unwrap_err();

    assert_eq!(err.setting, "PAWFILE_S3_ENDPOINT");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn an_unreachable_backup_store_does_not_stop_pawfile(pool: PgPool) {
    let documents = TestBucket::embedded().await;
    let folder = tempfile::tempdir().unwrap();
    let mut settings = settings(&database_url(&pool).await, &documents, folder.path());
    settings.backups.endpoint = Some(format!("http://127.0.0.1:{}/", unused_port()).parse().unwrap());

    let (state, _embedded) = build_state(&settings)
        .await
        .expect("serving without the backup store");

    assert!(state.backups.check_bucket().await.unwrap_err().is_unreachable());
    assert!(!state.config.backups_on_this_machine);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_embedded_defaults_create_both_stores_and_keep_data_across_restarts(pool: PgPool) {
    let documents = TestBucket::embedded().await;
    let folder = tempfile::tempdir().unwrap();
    let mut settings = settings(&database_url(&pool).await, &documents, folder.path());
    settings.documents.endpoint = None;
    settings.documents.access_key_id = None;
    settings.documents.secret_access_key = None;
    settings.backups.endpoint = None;
    settings.backups.access_key_id = None;
    settings.backups.secret_access_key = None;

    let (state, embedded) = build_state(&settings).await.unwrap();
    state
        .documents
        .put_bytes("documents/kept", "kept".into(), "text/plain")
        .await
        .unwrap();
    assert!(state.config.backups_on_this_machine);
    assert_ne!(
        state.documents.endpoint(),
        state.backups.endpoint(),
        "a separate backup endpoint"
    );
    state.backups.check_bucket().await.unwrap();
    drop(embedded);

    let (state, _embedded) = build_state(&settings).await.unwrap();
    assert_eq!(state.documents.get_bytes("documents/kept").await.unwrap(), "kept");
}

/// A newcomer's first start (`scripts/run`: embedded stores, nothing configured) logs no error when
/// nothing went wrong: what the embedded endpoint refuses because Pawfile asked for something it cannot
/// do (listing multipart uploads) is Pawfile's to judge, not an error line.
#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_first_start_on_the_embedded_defaults_logs_no_error(pool: PgPool) {
    let folder = tempfile::tempdir().unwrap();
    let port = unused_port();
    let mut server = serve_command(&database_url(&pool).await, folder.path(), port)
        .env("PAWFILE_LOG_FORMAT", "json")
        .spawn()
        .unwrap();
    wait_until_ready(port, folder.path()).await;
    // The start-up backup and the first reconcile both ask the embedded stores to list multipart uploads.
    eventually(SETTLE, "the start-up backup settled", || async {
        let runs = pawfile::backup::list_runs(&pool, 1).await.unwrap();
        runs.first().is_some_and(|run| run.status != RunStatus::Running)
    })
    .await;
    eventually(SETTLE, "a reconcile finished", || async {
        count(
            &pool,
            "select count(*) from background_runs where task = 'reconcile'",
        )
        .await
            > 0
    })
    .await;
    server.kill().unwrap();
    server.wait().unwrap();

    let run = &pawfile::backup::list_runs(&pool, 1).await.unwrap()[0];
    assert_eq!(
        (run.trigger.as_str(), run.status),
        ("startup", RunStatus::Complete)
    );
    let errors: Vec<serde_json::Value> = json_log(folder.path())
        .into_iter()
        .filter(|line| line["level"] == "ERROR")
        .collect();
    assert!(errors.is_empty(), "error lines on a clean start: {errors:#?}");
}

fn pawfile_command(database_url: &str) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pawfile"));
    command
        .env_clear()
        .env("DATABASE_URL", database_url)
        .env("PATH", std::env::var("PATH").unwrap());
    command
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn create_admin_makes_an_admin_who_can_sign_in(pool: PgPool) {
    let url = database_url(&pool).await;
    let mut child = pawfile_command(&url)
        .args([
            "create-admin",
            "--email",
            "Boss@Example.org",
            "--name",
            "The Boss",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long admin password\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("Created administrator Boss@Example.org"));
    let app = crate::support::spawn_app(pool).await;
    let response = app.login("boss@example.org", "a long admin password").await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert!(app.me().await.unwrap().has_role(pawfile::domain::Role::Admin));
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn seed_demo_without_its_document_store_seeds_nothing_and_says_why(pool: PgPool) {
    let url = database_url(&pool).await;
    let data_dir = tempfile::tempdir().unwrap();

    let output = pawfile_command(&url)
        .arg("seed-demo")
        .env("PAWFILE_DATA_DIR", data_dir.path())
        .env(
            "PAWFILE_S3_ENDPOINT",
            format!("http://127.0.0.1:{}/", unused_port()),
        )
        .env("PAWFILE_S3_ACCESS_KEY_ID", "demo")
        .env("PAWFILE_S3_SECRET_ACCESS_KEY", "demo-secret")
        .output()
        .unwrap();

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PAWFILE_S3_ENDPOINT"), "{stderr}");
    // The store is checked before anything is written: no half-seeded demo to find "already present".
    assert_eq!(count(&pool, "select count(*) from users").await, 0);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn seed_demo_creates_the_demo_accounts_and_documents_once(pool: PgPool) {
    let url = database_url(&pool).await;
    // The embedded document store `serve` would use: seed-demo takes the same settings.
    let data_dir = tempfile::tempdir().unwrap();
    let command = |args: &[&str]| {
        let mut command = pawfile_command(&url);
        command.args(args).env("PAWFILE_DATA_DIR", data_dir.path());
        command.output().unwrap()
    };

    let first = command(&["seed-demo", "--if-empty"]);
    let second = command(&["seed-demo"]);

    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("vet@pawfile.test"));
    assert!(String::from_utf8_lossy(&first.stdout).contains("(3 documents)"));
    assert!(String::from_utf8_lossy(&second.stdout).contains("already present"));
    // A lab report and a certificate (PDF, the certificate on the vaccination record) and an x-ray
    // (JPEG), on Biscuit, by the vet and the owner.
    let documents: Vec<(String, String, String, bool)> = sqlx::query_as(
        "select d.category, d.content_type, u.email, d.record_id is not null from documents d
           join pets p on p.id = d.pet_id join users u on u.id = d.uploaded_by
          where p.name = 'Biscuit' order by d.category",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let expected = [
        ("lab_result", "application/pdf", "owner@pawfile.test", false),
        (
            "vaccination_certificate",
            "application/pdf",
            "vet@pawfile.test",
            true,
        ),
        ("x_ray", "image/jpeg", "vet@pawfile.test", false),
    ];
    let expected: Vec<(String, String, String, bool)> = expected
        .iter()
        .map(|(category, mime, email, on_record)| {
            (
                category.to_string(),
                mime.to_string(),
                email.to_string(),
                *on_record,
            )
        })
        .collect();
    assert_eq!(documents, expected);
    // Their bytes are in the store `serve` reads: reconcile finds each object and its checksum.
    let reconciled = command(&["reconcile", "--grace", "0s"]);
    assert!(
        reconciled.status.success(),
        "{}",
        String::from_utf8_lossy(&reconciled.stderr)
    );
    assert!(
        String::from_utf8_lossy(&reconciled.stdout).contains("3 objects, 3 documents; 3 verified"),
        "{}",
        String::from_utf8_lossy(&reconciled.stdout)
    );
    let app = crate::support::spawn_app(pool).await;
    for account in pawfile::demo::DEMO_ACCOUNTS {
        let mut form = vec![
            ("email", account.email.to_owned()),
            ("password", account.password.to_owned()),
        ];
        // The demo staff and admin sign in with the second factor the README prints the key of.
        if let Some(secret) = account.totp_secret {
            form.push(("code", pawfile::auth::two_factor::code_for(secret, 0).unwrap()));
        }
        let response = app
            .client
            .post(app.url("/api/login"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK, "{}", account.email);
        let without_code = app.login(account.email, account.password).await;
        let expected = if account.totp_secret.is_some() {
            reqwest::StatusCode::UNPROCESSABLE_ENTITY
        } else {
            reqwest::StatusCode::OK
        };
        assert_eq!(without_code.status(), expected, "{}", account.email);
    }
    let pets: i64 = sqlx::query_scalar("select count(*) from pets")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(pets, 3);
}

#[test]
fn serve_with_an_unreachable_database_exits_with_one_line() {
    let url = format!(
        "postgres://pawfile:hunter2hunter2@127.0.0.1:{}/pawfile",
        unused_port()
    );
    let output = pawfile_command(&url)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with("pawfile: DATABASE_URL: cannot connect to"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2hunter2"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn listening_beyond_this_machine_without_a_public_url_stops_start_up_with_one_line() {
    let output = pawfile_command("postgres://pawfile:pawfile@127.0.0.1:1/never-reached")
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env_remove("PAWFILE_PUBLIC_URL")
        .output()
        .unwrap();

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with("pawfile: PAWFILE_PUBLIC_URL: Pawfile listens on 0.0.0.0:0")
            && last.contains("set PAWFILE_PUBLIC_URL"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("DATABASE_URL"),
        "checked before anything is connected: {stderr}"
    );
}

#[test]
fn help_lists_every_setting_with_its_environment_variable() {
    let output = pawfile_command("unused")
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for variable in [
        "DATABASE_URL",
        "PAWFILE_LISTEN",
        "PAWFILE_PUBLIC_URL",
        "PAWFILE_TRUSTED_PROXIES",
        "PAWFILE_MAX_UPLOAD_SIZE",
        "PAWFILE_DATA_DIR",
        "PAWFILE_S3_ENDPOINT",
        "PAWFILE_S3_BUCKET",
        "PAWFILE_S3_SECRET_ACCESS_KEY",
        "PAWFILE_BACKUP_S3_ENDPOINT",
        "PAWFILE_BACKUP_S3_BUCKET",
        "PAWFILE_BACKUP_S3_SECRET_ACCESS_KEY",
        "PAWFILE_LOG_FORMAT",
    ] {
        assert!(help.contains(variable), "{variable} missing from serve --help");
    }
    // Secret values from the environment are never echoed.
    let output = pawfile_command("postgres://u:leaked-password@h/d")
        .env("PAWFILE_S3_SECRET_ACCESS_KEY", "leaked-secret")
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(!help.contains("leaked-password") && !help.contains("leaked-secret"));
}

/// `pawfile serve` as its own process, listening on `port` with its data in `data_dir` and nothing else
/// configured (embedded stores). Its log goes to `data_dir/serve.log`.
fn serve_command(database_url: &str, data_dir: &std::path::Path, port: u16) -> std::process::Command {
    let log = std::fs::File::create(data_dir.join("serve.log")).unwrap();
    let mut command = pawfile_command(database_url);
    command
        .arg("serve")
        .env("PAWFILE_LISTEN", format!("127.0.0.1:{port}"))
        .env("PAWFILE_DATA_DIR", data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    command
}

/// The JSON log `pawfile serve` wrote to `data_dir/serve.log` (`PAWFILE_LOG_FORMAT=json`), a value per
/// line; fails the test on a line that is not JSON.
fn json_log(data_dir: &std::path::Path) -> Vec<serde_json::Value> {
    let log = std::fs::read_to_string(data_dir.join("serve.log")).unwrap();
    log.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}")))
        .collect()
}

/// `pawfile serve` as its own process, configured through the environment like a deployment, documents
/// in `documents`, with `extra` settings on top. Its log goes to `data_dir/serve.log`.
pub(crate) fn serve_binary(
    database_url: &str,
    documents: &TestBucket,
    data_dir: &std::path::Path,
    port: u16,
    extra: &[(&str, &str)],
) -> std::process::Child {
    let s3 = &documents.settings;
    let credentials = s3.credentials.as_ref().unwrap();
    serve_command(database_url, data_dir, port)
        .env("PAWFILE_S3_ENDPOINT", s3.endpoint.as_ref().unwrap().as_str())
        .env("PAWFILE_S3_REGION", &s3.region)
        .env("PAWFILE_S3_BUCKET", &s3.bucket)
        .env("PAWFILE_S3_ACCESS_KEY_ID", &credentials.access_key_id)
        .env(
            "PAWFILE_S3_SECRET_ACCESS_KEY",
            secrecy::ExposeSecret::expose_secret(&credentials.secret_access_key),
        )
        .env("PAWFILE_S3_FORCE_PATH_STYLE", "true")
        .envs(extra.iter().copied())
        .spawn()
        .unwrap()
}

/// Waits until the server on `port` answers `/readyz` (or fails the test with its log).
pub(crate) async fn wait_until_ready(port: u16, data_dir: &std::path::Path) {
    for _ in 0..300 {
        if let Ok(response) = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await
            && response.status() == reqwest::StatusCode::OK
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "pawfile serve did not become ready: {}",
        std::fs::read_to_string(data_dir.join("serve.log")).unwrap_or_default()
    );
}

fn client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-pawfile-client", reqwest::header::HeaderValue::from_static("1"));
    reqwest::Client::builder()
        .cookie_store(true)
        .default_headers(headers)
        .build()
        .unwrap()
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_account_limits_are_read_from_the_environment(pool: PgPool) {
    let documents = TestBucket::embedded().await;
    let folder = tempfile::tempdir().unwrap();
    let port = unused_port();
    let mut server = serve_binary(
        &database_url(&pool).await,
        &documents,
        folder.path(),
        port,
        &[("PAWFILE_LIMIT_REGISTRATIONS_PER_ADDRESS", "2/1h")],
    );
    wait_until_ready(port, folder.path()).await;

    let mut statuses = Vec::new();
    for n in 0..3 {
        let response = client()
            .post(format!("http://127.0.0.1:{port}/api/register"))
            .form(&[
                ("email", format!("owner{n}@example.org")),
                ("display_name", format!("Owner {n}")),
                ("password", crate::support::PASSWORD.to_owned()),
            ])
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    server.kill().unwrap();
    server.wait().unwrap();

    assert_eq!(statuses, [202, 202, 429]);
    let sign_ups: i64 = sqlx::query_scalar("select count(*) from pending_registrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(sign_ups, 2);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn sigterm_lets_an_upload_in_flight_finish_cuts_the_one_past_the_grace_and_exits_0(pool: PgPool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let documents = TestBucket::embedded().await;
    let folder = tempfile::tempdir().unwrap();
    let port = unused_port();
    let mut server = serve_binary(
        &database_url(&pool).await,
        &documents,
        folder.path(),
        port,
        &[("PAWFILE_SHUTDOWN_GRACE", "3s")],
    );
    wait_until_ready(port, folder.path()).await;
    let base = format!("http://127.0.0.1:{port}");
    let browser = client();
    let registered = browser
        .post(format!("{base}/api/register"))
        .form(&[
            ("email", "olivia@example.org"),
            ("display_name", "Olivia"),
            ("password", crate::support::PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), reqwest::StatusCode::ACCEPTED);
    // Without SMTP settings the server writes its mail into the data folder.
    let mail = crate::support::wait_for_mail(&folder.path().join("mail"), "olivia@example.org", 1).await;
    let token = mail[0].token("/verify-email").expect("a sign-up link");
    let registered = browser
        .post(format!("{base}/api/verify-email"))
        .form(&[("token", token.as_str()), ("password", crate::support::PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), reqwest::StatusCode::OK);
    let cookie = registered
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|cookie| cookie.starts_with("pawfile_session="))
        .unwrap();
    let pet: String = browser
        .post(format!("{base}/api/pets/create"))
        .form(&[("name", "Biscuit"), ("species", "dog")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Two uploads whose bodies are still arriving when SIGTERM comes: one finishes within the grace,
    // the other never does.
    let pdf = {
        let mut bytes = b"%PDF-1.7\n".to_vec();
        bytes.resize(200_000, b'x');
        bytes
    };
    let tail = b"\r\n--XYZ--\r\n";
    let file_length = pdf.len() + tail.len();
    let upload = |pet: String, cookie: String| async move {
        let address = format!("127.0.0.1:{port}");
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let start = "--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"scan.pdf\"\r\n\
                     Content-Type: application/pdf\r\n\r\n";
        let head = format!(
            "POST /api/pets/{pet}/documents HTTP/1.1\r\nHost: {address}\r\nCookie: {cookie}\r\n\
             X-Pawfile-Client: 1\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary=XYZ\r\n\
             Content-Length: {}\r\n\r\n{start}",
            start.len() + file_length
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream
    };
    let mut finishing = upload(pet.clone(), cookie.clone()).await;
    let mut stalled = upload(pet.clone(), cookie.clone()).await;
    finishing.write_all(&pdf[..100_000]).await.unwrap();
    stalled.write_all(&pdf[..100_000]).await.unwrap();
    eventually(
        SETTLE,
        "both uploads are in the server's hands (each holds its slot)",
        || async {
            sqlx::query_scalar::<_, i64>("select count(*) from upload_slots")
                .fetch_one(&pool)
                .await
                .unwrap()
                == 2
        },
    )
    .await;

    let terminated = std::process::Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    // A process handling a signal on a loaded machine may take a while to close its listener.
    eventually(
        SETTLE,
        "no new connection is accepted (the listener closed after SIGTERM)",
        || async {
            tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
                .await
                .is_err()
        },
    )
    .await;
    // A moment in which the server would wrongly exit, were it not waiting for the uploads in flight.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        server.try_wait().unwrap().is_none(),
        "it waits for the uploads in flight"
    );
    finishing.write_all(&pdf[100_000..]).await.unwrap();
    finishing.write_all(tail).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        finishing.read_to_string(&mut answer),
    )
    .await
    .unwrap()
    .unwrap();

    let status = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            if let Some(status) = server.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("it stops after the grace");
    let log = std::fs::read_to_string(folder.path().join("serve.log")).unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}\n{log}");
    assert_eq!(status.code(), Some(0), "{log}");
    let mut rest = Vec::new();
    let cut = tokio::time::timeout(std::time::Duration::from_secs(5), stalled.read_to_end(&mut rest))
        .await
        .expect("the stalled upload's connection is closed");
    assert!(cut.is_err() || !String::from_utf8_lossy(&rest).starts_with("HTTP/1.1 201"));
    // Exactly the finished upload is stored: one row, one object, no upload left open.
    let rows: i64 = sqlx::query_scalar("select count(*) from documents")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    let objects: Vec<String> = documents
        .keys()
        .await
        .into_iter()
        .filter(|key| key.starts_with("documents/"))
        .collect();
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert_eq!(documents.pending_uploads().await, 0);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn an_unknown_search_language_is_named(pool: PgPool) {
    let documents = TestBucket::embedded().await;
    let folder = tempfile::tempdir().unwrap();
    let mut settings = settings(&database_url(&pool).await, &documents, folder.path());
    settings.records.search_language = "klingon".to_owned();

    let err = build_state(&settings).await.unwrap_err();

    assert_eq!(err.setting, "PAWFILE_SEARCH_LANGUAGE");
    assert!(err.to_string().contains("\"klingon\""), "{err}");
}

/// Runs `pawfile <args>` on `url` with `stdin` as its standard input; its output.
fn pawfile_with_input(url: &str, args: &[&str], stdin: &[u8]) -> std::process::Output {
    use std::{io::Write, process::Stdio};
    let mut child = pawfile_command(url)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn create_user_makes_confirmed_owner_and_staff_accounts(pool: PgPool) {
    let url = database_url(&pool).await;
    let app = crate::support::spawn_app(pool.clone()).await;
    app.create_clinic("Riverside").await;

    let owner = pawfile_with_input(
        &url,
        &[
            "create-user",
            "--email",
            "Olga@Example.org",
            "--role",
            "owner",
            "--password-stdin",
        ],
        b"olga's long password\n",
    );
    let staff = pawfile_with_input(
        &url,
        &[
            "create-user",
            "--email",
            "vet@example.org",
            "--role",
            "staff",
            "--clinic",
            "riverside",
            "--name",
            "Vera Vet",
            "--password-stdin",
        ],
        b"vera's long password\n",
    );
    let no_clinic = pawfile_with_input(
        &url,
        &[
            "create-user",
            "--email",
            "x@example.org",
            "--role",
            "staff",
            "--clinic",
            "Nowhere",
            "--password-stdin",
        ],
        b"some long password\n",
    );

    for output in [&owner, &staff] {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert!(!no_clinic.status.success());
    assert!(String::from_utf8_lossy(&no_clinic.stderr).contains("no clinic is named"));
    let response = app.login("olga@example.org", "olga's long password").await;
    assert_eq!(
        response.status(),
        reqwest::StatusCode::OK,
        "no confirmation link needed"
    );
    let (client, _) = crate::support::client_with_jar();
    let vet: serde_json::Value = client
        .post(app.url("/api/login"))
        .form(&[("email", "vet@example.org"), ("password", "vera's long password")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(vet["clinic_name"], "Riverside");
    assert_eq!(vet["display_name"], "Vera Vet");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn reset_2fa_turns_off_a_second_factor_from_the_command_line(pool: PgPool) {
    let url = database_url(&pool).await;
    let app = crate::support::spawn_app(pool.clone()).await;
    let admin = app
        .create_user("last-admin@example.org", &[pawfile::domain::Role::Admin], None)
        .await;
    pawfile::auth::two_factor::set_known_secret(&pool, admin, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
        .await
        .unwrap();
    let before = app
        .login("last-admin@example.org", crate::support::PASSWORD)
        .await;
    assert_eq!(
        before.status(),
        reqwest::StatusCode::UNPROCESSABLE_ENTITY,
        "a code is needed"
    );

    let output = pawfile_with_input(&url, &["reset-2fa", "--email", "last-admin@example.org"], b"");
    let unknown = pawfile_with_input(&url, &["reset-2fa", "--email", "nobody@example.org"], b"");

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!unknown.status.success());
    let after = app
        .login("last-admin@example.org", crate::support::PASSWORD)
        .await;
    assert_eq!(after.status(), reqwest::StatusCode::OK);
    let audited: i64 = sqlx::query_scalar("select count(*) from audit_events where action = 'reset_2fa'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(audited, 1);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn json_logs_carry_a_proxys_request_id_into_the_database_and_s3_calls(pool: PgPool) {
    let documents = TestBucket::embedded().await;
    let folder = tempfile::tempdir().unwrap();
    let port = unused_port();
    let metrics_port = unused_port();
    let mut server = serve_binary(
        &database_url(&pool).await,
        &documents,
        folder.path(),
        port,
        &[
            ("PAWFILE_LOG_FORMAT", "json"),
            (
                "RUST_LOG",
                "info,pawfile=debug,sqlx=debug,aws_smithy_runtime=debug",
            ),
            ("PAWFILE_TRUSTED_PROXIES", "127.0.0.1"),
            ("PAWFILE_METRICS_LISTEN", &format!("127.0.0.1:{metrics_port}")),
        ],
    );
    wait_until_ready(port, folder.path()).await;
    // `/readyz` asks PostgreSQL and the documents bucket.
    let response = client()
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
    let metrics = client()
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), reqwest::StatusCode::OK);
    assert!(metrics.text().await.unwrap().contains("pawfile_ready 1"));
    // `pawfile healthcheck`, as the container runs it: 0 while the server answers.
    let healthy = pawfile_command("unused")
        .args(["healthcheck"])
        .env("PAWFILE_LISTEN", format!("0.0.0.0:{port}"))
        .output()
        .unwrap();
    assert!(healthy.status.success(), "{healthy:?}");
    server.kill().unwrap();
    server.wait().unwrap();
    let stopped = pawfile_command("unused")
        .args(["healthcheck"])
        .env("PAWFILE_LISTEN", format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert_eq!(stopped.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&stopped.stderr).contains(&format!("127.0.0.1:{port}")));

    let lines = json_log(folder.path());
    let in_request = |line: &&serde_json::Value| {
        line["spans"].as_array().is_some_and(|spans| {
            spans
                .iter()
                .any(|span| span["name"] == "request" && span["id"] == "trace-me-42")
        })
    };
    let targets: Vec<&str> = lines
        .iter()
        .filter(in_request)
        .filter_map(|line| line["target"].as_str())
        .collect();
    assert!(
        targets.iter().any(|target| target.starts_with("sqlx")),
        "{targets:?}"
    );
    assert!(
        targets.iter().any(|target| target.starts_with("aws_smithy")),
        "{targets:?}"
    );
}
