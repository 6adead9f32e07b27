//! Several replicas on one database and one S3: nothing one needs lives in another's memory. Sessions,
//! files and shares hold across them; background work happens once between them; a replica killed
//! mid-upload leaves nothing behind once the stale-upload time has passed, and the other keeps serving.

use crate::{
    documents::{file, pdf, png, with_a_pet},
    startup::{database_url, serve_binary, unused_port, wait_until_ready},
    support::{ReplicaOptions, TestApp, count, spawn_app, spawn_app_with, test_config},
};
use pawfile::{
    config::BackupSchedule,
    domain::Role,
    testing::{SETTLE, eventually},
};
use pawfile_app::startup::{RuntimeConfig, TaskIntervals};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use std::time::Duration;

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn sessions_files_and_revoked_shares_hold_across_two_replicas(pool: PgPool) {
    let setup = with_a_pet(spawn_app(pool).await).await;
    let a = &setup.app;
    let b = a.replica(test_config()).await;
    let me = |url: String| {
        let owner = setup.owner.clone();
        async move {
            owner
                .get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    // The session made on A is known to B.
    assert_eq!(me(b.url("/api/me")).await["email"], "alice@example.org");

    // Uploaded through one, downloaded through the other, both ways.
    setup.round_trip(&a.address, &b.address, pdf(300_000)).await;
    setup.round_trip(&b.address, &a.address, pdf(300_000)).await;

    // A share revoked on A ends the clinic's access on B at once.
    let clinic = a.create_clinic("Riverside").await;
    a.create_user("vet@riverside.example", &[Role::Staff], Some(clinic))
        .await;
    let vet = a.browser_for("vet@riverside.example").await;
    let share = [("pet_id", setup.pet.as_str()), ("clinic_id", &clinic.to_string())];
    let shared = setup
        .owner
        .post(a.url("/api/pets/share"))
        .form(&share)
        .send()
        .await
        .unwrap();
    assert!(shared.status().is_success());
    let documents_on_b = b.url(&format!("/api/pets/{}/documents", setup.pet));
    assert_eq!(
        vet.get(&documents_on_b).send().await.unwrap().status(),
        StatusCode::OK
    );
    let revoked = setup
        .owner
        .post(a.url("/api/pets/revoke"))
        .form(&share)
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success());
    assert_eq!(
        vet.get(&documents_on_b).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    // Signing out on B ends the session on A too.
    let signed_out = setup.owner.post(b.url("/api/logout")).send().await.unwrap();
    assert!(signed_out.status().is_success());
    assert_eq!(me(a.url("/api/me")).await, Value::Null);
    b.stop().await;
}

/// Background work every second or two, trash kept one second.
fn busy_config() -> RuntimeConfig {
    let mut config = test_config();
    let second = Duration::from_secs(1);
    config.intervals = TaskIntervals {
        housekeeping: second,
        purge: second,
        thumbnails: second,
        usage: second,
        backup_reread: Duration::from_secs(60 * 60),
    };
    config.documents.trash_retention = second;
    config.documents.reconcile_interval = Duration::from_secs(2);
    config.backup_schedule = BackupSchedule::Every(Duration::from_secs(2));
    config
}

/// `pawfile_task_runs_total` of `task` with `outcome` on the server whose metrics are at `url`.
async fn runs(url: &str, task: &str, outcome: &str) -> f64 {
    crate::support::metric_value(
        url,
        &format!(r#"pawfile_task_runs_total{{task="{task}",outcome="{outcome}"}}"#),
    )
    .await
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn backups_purges_reconciles_and_thumbnails_happen_once_between_two_replicas(pool: PgPool) {
    let mut setup = with_a_pet(spawn_app_with(pool.clone(), busy_config()).await).await;
    let a = &setup.app;
    let b = a.replica(busy_config()).await;
    for n in 0..3 {
        let (status, _) = setup
            .upload(file(png(64 + n, 48), &format!("photo{n}.png")))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    for n in 0..2 {
        let (status, created) = setup.upload(file(pdf(2_000), &format!("old{n}.pdf"))).await;
        assert_eq!(status, StatusCode::CREATED);
        let id = created[0]["id"].as_str().unwrap();
        let trashed = setup
            .owner
            .delete(a.url(&format!("/api/documents/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(trashed.status(), StatusCode::NO_CONTENT);
    }
    eventually(SETTLE, "the trash was purged and the thumbnails made", || async {
        count(
            &pool,
            "select count(*) from documents where deleted_at is not null",
        )
        .await
            == 0
            && count(
                &pool,
                "select count(*) from documents where thumbnail_state = 'done'",
            )
            .await
                == 3
    })
    .await;
    // Several schedule slots and reconcile intervals go by with both replicas running: three slots backed
    // up, reconcile run twice, every thumbnail counted by the replica that made it (the counter moves just
    // after the row says `done`, so the row alone is not enough).
    eventually(
        SETTLE,
        "3 scheduled backups, 2 reconciles, 3 thumbnails counted",
        || async {
            count(
                &pool,
                "select count(*) from backup_runs where trigger = 'schedule' and status = 'complete'",
            )
            .await
                >= 3
                && runs(&a.metrics_address, "reconcile", "ok").await
                    + runs(&b.metrics_address, "reconcile", "ok").await
                    >= 2.0
                && a.metric("pawfile_thumbnails_total").await + b.metric("pawfile_thumbnails_total").await
                    >= 3.0
        },
    )
    .await;
    let thumbnails = a.metric("pawfile_thumbnails_total").await + b.metric("pawfile_thumbnails_total").await;
    // Each replica's counters from one scrape, so `ok` and `skipped` are of the same moment.
    let ((ok_a, skipped_a), (ok_b, skipped_b)) = (
        reconcile_runs(&a.metrics_address).await,
        reconcile_runs(&b.metrics_address).await,
    );
    // Both stop, so no backup is running while the rows are counted. A stop returns once the backup it
    // cancelled, if any, is recorded.
    b.stop().await;
    setup.app.stop().await;

    // Each purged document purged (and audited) once, each thumbnail made once.
    assert_eq!(
        count(
            &pool,
            "select count(*) from audit_events where action = 'purge_document'"
        )
        .await,
        2
    );
    assert_eq!(thumbnails, 3.0);
    // Reconcile: at most one run per interval between them, however many times each replica looked.
    assert!(ok_a + ok_b >= 2.0, "reconcile ran: {ok_a} + {ok_b}");
    assert!(
        ok_a + ok_b <= (ok_a + skipped_a).max(ok_b + skipped_b),
        "reconcile ran once per interval, not on both: ok {ok_a}/{ok_b}, skipped {skipped_a}/{skipped_b}"
    );
    assert_eq!(
        count(
            &pool,
            "select count(*) from background_runs where task = 'reconcile'"
        )
        .await,
        1
    );
    // Every run, printed when an assertion below fails: which rows are left tells the cases apart.
    let all: Vec<(String, String, Option<String>)> =
        sqlx::query_as("select trigger, status, error from backup_runs order by started_at")
            .fetch_all(&pool)
            .await
            .unwrap();
    // Backups: one at start-up between them, then one complete run per two-second slot.
    let startup = count(
        &pool,
        "select count(*) from backup_runs where trigger = 'startup'",
    )
    .await;
    assert_eq!(startup, 1, "{all:?}");
    let slots: Vec<(f64, i64)> = sqlx::query_as(
        "select floor(extract(epoch from started_at) / 2)::float8, count(*) from backup_runs
         where trigger = 'schedule' and status = 'complete' group by 1 order by 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(slots.len() >= 3, "{slots:?}\n{all:?}");
    assert!(
        slots.iter().all(|(_, runs)| *runs == 1),
        "one backup per slot: {slots:?}\n{all:?}"
    );
    // Nothing is left running. The only runs that did not complete are ones a stop cancelled: at most one
    // per stop, since one run at a time goes on between them.
    assert_eq!(
        count(
            &pool,
            "select count(*) from backup_runs where status not in ('complete', 'cancelled')"
        )
        .await,
        0,
        "{all:?}"
    );
    assert!(
        count(
            &pool,
            "select count(*) from backup_runs where status = 'cancelled'"
        )
        .await
            <= 2,
        "{all:?}"
    );
}

/// `pawfile_task_runs_total` of reconcile, `ok` and `skipped`, from one scrape (the same moment).
async fn reconcile_runs(url: &str) -> (f64, f64) {
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    let series = |outcome: &str| {
        crate::support::parse_metric(
            &text,
            &format!(r#"pawfile_task_runs_total{{task="reconcile",outcome="{outcome}"}}"#),
        )
    };
    (series("ok"), series("skipped"))
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_backup_started_on_one_replica_shows_its_progress_on_the_other(pool: PgPool) {
    let setup = with_a_pet(spawn_app(pool.clone()).await).await;
    for n in 0..6 {
        let (status, _) = setup.upload(file(pdf(1_000 + n), &format!("scan{n}.pdf"))).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let a: &TestApp = &setup.app;
    let b = a
        .replica_with(
            test_config(),
            ReplicaOptions {
                backup_pace: Some(Duration::from_millis(300)),
                ..Default::default()
            },
        )
        .await;
    a.create_user("admin@example.org", &[Role::Admin], None).await;
    let admin = a.browser_for("admin@example.org").await;
    let started = admin.post(b.url("/api/admin/backups/run")).send().await.unwrap();
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let id: String = started.json().await.unwrap();

    let mut seen_running_with_progress = false;
    let mut finished = String::new();
    // The run's pacing alone takes about 5 s (17 objects, 300 ms each): a deadline with room for a busy box.
    let deadline = tokio::time::Instant::now() + SETTLE;
    while tokio::time::Instant::now() < deadline {
        let overview: Value = admin
            .get(a.url("/api/admin/backups"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let run = &overview["runs"][0];
        assert_eq!(run["id"], id.as_str(), "A lists the run B started");
        let status = run["status"].as_str().unwrap();
        if status == "running" && run["objects_done"].as_i64().unwrap() > 0 {
            seen_running_with_progress = true;
        }
        if status != "running" {
            finished = status.to_owned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen_running_with_progress, "A showed B's run in progress");
    assert_eq!(finished, "complete");
    b.stop().await;
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_replica_killed_mid_upload_leaves_no_orphan_and_the_other_keeps_serving(pool: PgPool) {
    use tokio::io::AsyncWriteExt;
    let mut config = test_config();
    config.documents.stale_upload_after = Duration::from_secs(2);
    config.documents.reconcile_interval = Duration::from_secs(1);
    let setup = with_a_pet(spawn_app_with(pool.clone(), config).await).await;
    let a = &setup.app;
    // B: `pawfile serve` as its own process on the same database and bucket.
    let data = tempfile::tempdir().unwrap();
    let port = unused_port();
    let mut b = serve_binary(
        &database_url(&pool).await,
        &a.documents,
        data.path(),
        port,
        &[
            ("PAWFILE_BACKUP_SCHEDULE", "off"),
            ("PAWFILE_REQUIRE_TWO_FACTOR", "none"),
        ],
    );
    wait_until_ready(port, data.path()).await;

    let cookie = a.jar_cookie_for(&setup.owner).await;
    let address = format!("127.0.0.1:{port}");
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /api/pets/{}/documents HTTP/1.1\r\nHost: {address}\r\nCookie: {cookie}\r\n\
         X-Pawfile-Client: 1\r\nContent-Type: multipart/form-data; boundary=XYZ\r\n\
         Content-Length: 30000000\r\n\r\n\
         --XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.pdf\"\r\n\
         Content-Type: application/pdf\r\n\r\n",
        setup.pet
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&pdf(12 * 1024 * 1024)).await.unwrap();
    eventually(SETTLE, "B began a multipart upload", || async {
        count(
            &pool,
            "select count(*) from upload_intents where upload_id is not null",
        )
        .await
            > 0
            && a.documents.pending_uploads().await > 0
    })
    .await;
    b.kill().unwrap();
    b.wait().unwrap();
    drop(stream);

    // A keeps serving, reads and writes.
    assert_eq!(
        a.me_with_cookie(&cookie).await.unwrap().email.as_str(),
        "alice@example.org"
    );
    let (status, created) = setup.upload(file(pdf(3_000), "after.pdf")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");

    // Once the stale-upload time has passed, A's reconcile removes what B left.
    eventually(
        SETTLE,
        "no announcement, no unfinished multipart upload, only A's document",
        || async {
            count(&pool, "select count(*) from upload_intents").await == 0
                && a.documents.pending_uploads().await == 0
                && a.documents.keys().await.len() == 1
        },
    )
    .await;
    assert_eq!(count(&pool, "select count(*) from documents").await, 1);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn two_replicas_keep_uploading_and_downloading_with_one_of_three_garage_nodes_down(pool: PgPool) {
    let cluster = pawfile::testing::GarageCluster::from_env();
    let documents = cluster.bucket().await;
    let backups = cluster.bucket().await;
    // A talks to node 1, B to node 2; the bucket is replicated on all three.
    let through_second_node =
        pawfile::storage::ObjectStore::connect(&cluster.settings(1, documents.store.bucket())).await;
    let setup = with_a_pet(crate::support::spawn_app_on(pool, documents, backups, test_config()).await).await;
    let a = &setup.app;
    let b = a
        .replica_with(
            test_config(),
            ReplicaOptions {
                documents: Some(through_second_node),
                ..Default::default()
            },
        )
        .await;
    let before = setup
        .round_trip(&a.address, &b.address, pdf(9 * 1024 * 1024))
        .await;

    cluster.kill_node(2);
    // Both replicas go on: small and multipart uploads, both ways, and what was stored before.
    setup.round_trip(&a.address, &b.address, pdf(200_000)).await;
    setup
        .round_trip(&b.address, &a.address, pdf(9 * 1024 * 1024))
        .await;
    for server in [&a.address, &b.address] {
        let old = setup.download(server, &before).await;
        assert_eq!(old.status(), StatusCode::OK);
        assert_eq!(old.bytes().await.unwrap().len(), 9 * 1024 * 1024);
    }
    b.stop().await;
}
