//! What a signed-in owner's requests ask of PostgreSQL, read from sqlx's statement log in this process:
//! the server runs on the test's own thread (each `sqlx::test` has a runtime of one thread), so a
//! subscriber set for the test sees every statement it sends. A page reads the account once however
//! many server functions it calls and writes no session; an upload answers with what it wrote without
//! reading it back; a download reads the document and the access to its pet in one statement.

use crate::{
    documents::{file, pdf, with_a_pet},
    support::spawn_app,
};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use std::sync::{Arc, Mutex};
use tracing::{
    Event, Subscriber,
    field::{Field, Visit},
};
use tracing_subscriber::{
    filter::Targets,
    layer::{Context, Layer, SubscriberExt},
};

/// The statements sqlx logged since the recorder was set (their SQL, in order).
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    /// Records this thread's statements until the guard is dropped.
    fn start(&self) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::registry().with(
            self.clone()
                .with_filter(Targets::new().with_target("sqlx::query", tracing::Level::TRACE)),
        );
        tracing::subscriber::set_default(subscriber)
    }

    /// The statements recorded while `during` ran (and the answer it gave).
    async fn during<T>(&self, during: impl Future<Output = T>) -> (T, Vec<String>) {
        let before = self.0.lock().unwrap().len();
        let answer = during.await;
        let statements = self.0.lock().unwrap()[before..].to_vec();
        (answer, statements)
    }
}

struct Statement(Option<String>);

impl Visit for Statement {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "db.statement" || (field.name() == "summary" && self.0.is_none()) {
            self.0 = Some(value.to_owned());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "db.statement" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl<S: Subscriber> Layer<S> for Recorder {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut statement = Statement(None);
        event.record(&mut statement);
        if let Some(sql) = statement.0 {
            self.0
                .lock()
                .unwrap()
                .push(sql.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
}

/// How many of `statements` contain `fragment`.
fn count(statements: &[String], fragment: &str) -> usize {
    statements.iter().filter(|sql| sql.contains(fragment)).count()
}

/// `load_session_user`: the signed-in account, checked against its session generation.
const ACCOUNT: &str =
    "from users u left join clinics c on c.id = u.clinic_id where u.id = $1 and u.session_generation";
/// `access::pet_permissions`.
const PET_PERMISSIONS: &str = r#"select coalesce(p.owner_id = $2, false) as "owner!""#;
/// A write of the session row.
const SESSION_WRITE: &str = r#"insert into "tower_sessions"."session""#;

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_pet_page_reads_the_account_once_and_writes_no_session(pool: PgPool) {
    let setup = with_a_pet(spawn_app(pool).await).await;
    let recorder = Recorder::default();
    let _recording = recorder.start();
    let page = setup.app.url(&format!("/pets/{}", setup.pet));

    let (response, statements) = recorder
        .during(async { setup.owner.get(&page).send().await.unwrap() })
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("Biscuit"));
    // The page calls five server functions (who is signed in, the pet, its documents, the clinics, the
    // flash): one read of the account serves them all, and taking a flash that is not there writes
    // nothing.
    assert_eq!(count(&statements, ACCOUNT), 1, "{statements:#?}");
    assert_eq!(count(&statements, SESSION_WRITE), 0, "{statements:#?}");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn an_upload_answers_without_reading_back_and_a_download_checks_access_in_its_read(pool: PgPool) {
    let setup = with_a_pet(spawn_app(pool).await).await;
    let recorder = Recorder::default();
    let _recording = recorder.start();

    let ((status, uploaded), statements) = recorder
        .during(setup.upload(file(pdf(5000), "scan.pdf").text("caption", "After the walk")))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{uploaded}");
    assert_eq!(count(&statements, ACCOUNT), 1, "{statements:#?}");
    // Access is checked before the body is read; the write transaction checks it again under a lock.
    assert_eq!(count(&statements, PET_PERMISSIONS), 1, "{statements:#?}");
    assert_eq!(count(&statements, "from documents d"), 0, "{statements:#?}");
    // What the upload answers is what the pet's list shows.
    let listed: Value = setup
        .owner
        .get(setup.app.url(&format!("/api/pets/{}/documents", setup.pet)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(uploaded, listed);
    assert_eq!(uploaded[0]["caption"], "After the walk");

    let id = uploaded[0]["id"].as_str().unwrap();
    let (response, statements) = recorder.during(setup.download(&setup.app.url(""), id)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap().len(), 5000);
    assert_eq!(count(&statements, ACCOUNT), 1, "{statements:#?}");
    assert_eq!(count(&statements, PET_PERMISSIONS), 0, "{statements:#?}");
    assert_eq!(
        count(&statements, "from documents d join pets p"),
        1,
        "{statements:#?}"
    );
}
