//! What a signed-in owner's requests ask of PostgreSQL, read from sqlx's statement log in this process:
//! the server runs on the test's own thread (each `sqlx::test` has a runtime of one thread), so the
//! statements sent from that thread are the test's. A page reads the account once however
//! many server functions it calls and writes no session; an upload answers with what it wrote without
//! reading it back; a download reads the document and the access to its pet in one statement.

use crate::{
    documents::{file, pdf, with_a_pet},
    support::spawn_app,
};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use std::{
    cell::RefCell,
    sync::{Arc, Mutex, OnceLock},
};
use tracing::{
    Event, Subscriber,
    field::{Field, Visit},
};
use tracing_subscriber::{
    filter::Targets,
    layer::{Context, Layer, SubscriberExt},
};

/// The statements sqlx logged on this thread since the recorder was started (their SQL, in order).
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

thread_local! {
    /// Where this thread's statements go while a test records them.
    static RECORDING: RefCell<Option<Recorder>> = const { RefCell::new(None) };
}

/// One subscriber for the whole test binary, set once: it hands each statement to the recorder of the
/// thread that sent it. (A subscriber per test, set with `set_default`, loses events at random while
/// tests start and stop theirs at once: `tracing` shares its notion of who listens between threads.)
fn listen() {
    static LISTENING: OnceLock<()> = OnceLock::new();
    LISTENING.get_or_init(|| {
        let subscriber = tracing_subscriber::registry()
            .with(ToRecorder.with_filter(Targets::new().with_target("sqlx::query", tracing::Level::TRACE)));
        tracing::subscriber::set_global_default(subscriber).expect("no other subscriber in this test binary");
    });
}

/// Stops recording when dropped.
struct Recording;

impl Drop for Recording {
    fn drop(&mut self) {
        RECORDING.with(|recording| recording.borrow_mut().take());
    }
}

impl Recorder {
    /// Records this thread's statements until the guard is dropped.
    fn start(&self) -> Recording {
        listen();
        RECORDING.with(|recording| *recording.borrow_mut() = Some(self.clone()));
        Recording
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

/// The layer that hands statements to the thread's recorder.
struct ToRecorder;

impl<S: Subscriber> Layer<S> for ToRecorder {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let Some(recorder) = RECORDING.with(|recording| recording.borrow().clone()) else {
            return;
        };
        let mut statement = Statement(None);
        event.record(&mut statement);
        if let Some(sql) = statement.0 {
            recorder
                .0
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

/// The pet listing of `list_documents`.
const DOCUMENT_LIST: &str = "and ($6::uuid[] is null or d.id = any($6))";
/// `pets::list_clinics`, which the sharing panel offers.
const CLINIC_LIST: &str = "from clinics order by lower(name)";
/// `two_factor::status`.
const TWO_FACTOR_STATUS: &str = "from totp_recovery_codes r where r.user_id = u.id and r.used_at is null";
/// `quota::usage` of an owner.
const OWNER_USAGE: &str = "select display_name from users where id = $1";

/// Each server function a page calls runs once while the server renders it. A resource made inside a
/// `Suspense`'s children is made again when the `Suspense` walks them a second time, so the server
/// would fetch it twice and send both answers; the browser, which makes it once, would then hydrate
/// with the first answer over markup rendered from the second (a thumbnail made in between was enough
/// to break the pet page).
#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn each_server_function_of_a_page_runs_once(pool: PgPool) {
    let setup = with_a_pet(spawn_app(pool).await).await;
    let app = &setup.app;
    let vet = setup.shared_with_a_vet().await;
    let record = setup.record_by(&vet, "Bloods").await;
    let recorder = Recorder::default();
    let _recording = recorder.start();
    let page = |client: &reqwest::Client, path: String| {
        let request = client.get(app.url(&path));
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            response.text().await.unwrap()
        }
    };

    let (html, statements) = recorder
        .during(page(&setup.owner, format!("/pets/{}", setup.pet)))
        .await;
    assert!(html.contains("Shared with clinics"), "{html}");
    assert_eq!(count(&statements, DOCUMENT_LIST), 1, "{statements:#?}");
    assert_eq!(count(&statements, CLINIC_LIST), 1, "{statements:#?}");

    // Only the owner is offered the clinics to share with: a vet's view of the pet asks for none.
    let (html, statements) = recorder.during(page(&vet, format!("/pets/{}", setup.pet))).await;
    assert!(
        html.contains("Biscuit") && !html.contains("Shared with clinics"),
        "{html}"
    );
    assert_eq!(count(&statements, DOCUMENT_LIST), 1, "{statements:#?}");
    assert_eq!(count(&statements, CLINIC_LIST), 0, "{statements:#?}");

    let (html, statements) = recorder.during(page(&vet, format!("/records/{record}"))).await;
    assert!(html.contains("Bloods"), "{html}");
    assert_eq!(count(&statements, DOCUMENT_LIST), 1, "{statements:#?}");

    let (html, statements) = recorder.during(page(&setup.owner, "/account".to_owned())).await;
    assert!(html.contains("Two-factor sign-in"), "{html}");
    assert!(html.contains("Storage"), "{html}");
    assert_eq!(count(&statements, TWO_FACTOR_STATUS), 1, "{statements:#?}");
    assert_eq!(count(&statements, OWNER_USAGE), 1, "{statements:#?}");
}
