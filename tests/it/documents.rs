//! The upload pipeline, trash purge and reconcile against real S3 servers (embedded and Garage) and a
//! real Postgres.

use crate::fixtures::{audited, clinic, owner, pet, staff};
use bytes::Bytes;
use futures::stream;
use pawfile::{
    documents::{
        self, ListFilter, UploadBatch, UploadDetails, UploadError,
        reconcile::{self, Options},
        upload::{PART_SIZE, Policy, store_stream},
    },
    domain::DocumentId,
    error::Error,
    pets,
    storage::StorageKey,
    testing::{S3Backend, SETTLE, TestBucket, eventually},
};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::{convert::Infallible, time::Duration};

fn policy(max_bytes: u64) -> Policy {
    Policy {
        max_bytes,
        accepted: documents::sniff::DEFAULT_ACCEPTED
            .iter()
            .map(|mime| (*mime).to_owned())
            .collect(),
        strip_location: true,
    }
}

/// A PDF of `size` bytes (a real header, then filler), in chunks of `chunk` bytes.
fn pdf(size: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.extend((0..size.saturating_sub(9)).map(|i| (i % 251) as u8));
    bytes
}

fn chunks(bytes: &[u8], chunk: usize) -> impl futures::Stream<Item = Result<Bytes, Infallible>> + Unpin {
    stream::iter(
        bytes
            .chunks(chunk)
            .map(|part| Ok(Bytes::copy_from_slice(part)))
            .collect::<Vec<_>>(),
    )
}

/// Waits (a bounded while) until an upload's multipart upload is under way: S3 gave its id and it is
/// recorded beside the announcement.
async fn wait_for_multipart(pool: &PgPool) {
    for _ in 0..200 {
        let recorded: i64 =
            sqlx::query_scalar("select count(*) from upload_intents where upload_id is not null")
                .fetch_one(pool)
                .await
                .unwrap();
        if recorded > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no multipart upload began within 10 seconds");
}

/// Announcements of uploads not yet recorded or cleaned up.
async fn announced(pool: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from upload_intents")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn round_trip(backend: S3Backend, pool: PgPool, size: usize) {
    let bucket = TestBucket::new(backend).await;
    let bytes = pdf(size);
    let id = DocumentId::new();
    let key = StorageKey::Document(id).key();

    let (stored, pending) = store_stream(
        &bucket.store,
        &pool,
        id,
        chunks(&bytes, 64 * 1024),
        &policy(1 << 30),
    )
    .await
    .unwrap();
    pending.keep();

    assert_eq!(stored.size, bytes.len() as u64);
    assert_eq!(stored.content_type, "application/pdf");
    assert_eq!(stored.sha256, <[u8; 32]>::from(Sha256::digest(&bytes)));
    assert_eq!(stored.crc32, crc32fast::hash(&bytes));
    let (sha256, size) = bucket.store.sha256_of(&key).await.unwrap();
    assert_eq!(
        (sha256, size),
        (stored.sha256, stored.size),
        "S3 holds exactly the bytes sent"
    );
    assert_eq!(bucket.keys().await, vec![key]);
}

async fn a_small_file_round_trips(backend: S3Backend, pool: PgPool) {
    round_trip(backend, pool, 300 * 1024).await;
}

async fn a_multipart_file_round_trips(backend: S3Backend, pool: PgPool) {
    round_trip(backend, pool, 40 * 1024 * 1024 + 12345).await;
}

async fn refused(backend: S3Backend, pool: &PgPool, bytes: Vec<u8>, max: u64) -> UploadError {
    let bucket = TestBucket::new(backend).await;
    let id = DocumentId::new();
    let err = store_stream(&bucket.store, pool, id, chunks(&bytes, 4096), &policy(max))
        .await
        .unwrap_err();
    assert!(bucket.keys().await.is_empty(), "nothing is left in the bucket");
    assert_eq!(announced(pool).await, 0, "nor announced in the database");
    err
}

async fn refusals_leave_nothing_behind(backend: S3Backend, pool: PgPool) {
    let html = b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>".to_vec();
    assert!(
        matches!(refused(backend, &pool, html, 1 << 20).await, UploadError::Refused { detected: Some(ref d), .. } if d == "text/html")
    );
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec();
    assert!(matches!(
        refused(backend, &pool, svg, 1 << 20).await,
        UploadError::Refused { .. }
    ));
    assert!(matches!(
        refused(backend, &pool, Vec::new(), 1 << 20).await,
        UploadError::Empty
    ));
    // Over the limit, small and across parts.
    assert!(matches!(
        refused(backend, &pool, pdf(2048), 2047).await,
        UploadError::TooLarge { limit: 2047 }
    ));
    let big = pdf(PART_SIZE * 2 + 10);
    assert!(matches!(
        refused(backend, &pool, big, (PART_SIZE + 100) as u64).await,
        UploadError::TooLarge { .. }
    ));
}

async fn a_client_going_away_leaves_nothing_behind(backend: S3Backend, pool: PgPool) {
    let bucket = TestBucket::new(backend).await;
    let id = DocumentId::new();
    let bytes = pdf(2 * PART_SIZE + 1024);
    // Two full parts' worth of data arrive (so a part is up and another in flight), then the
    // connection breaks.
    let body = stream::iter(
        bytes
            .chunks(1024 * 1024)
            .map(|part| Ok::<_, &str>(Bytes::copy_from_slice(part)))
            .chain(std::iter::once(Err("connection reset by peer")))
            .collect::<Vec<_>>(),
    );

    let err = store_stream(&bucket.store, &pool, id, body, &policy(1 << 30))
        .await
        .unwrap_err();

    assert!(matches!(err, UploadError::Interrupted(_)), "{err:?}");
    assert!(bucket.keys().await.is_empty());
    assert_eq!(
        bucket.pending_uploads().await,
        0,
        "the multipart upload was aborted, its parts gone"
    );
    assert_eq!(announced(&pool).await, 0);
}

/// The helper the leak checks rely on sees an unfinished upload (so those checks can fail).
async fn unfinished_uploads_are_seen(backend: S3Backend, _pool: PgPool) {
    let bucket = TestBucket::new(backend).await;
    let client = bucket.store.sdk();
    let upload = client
        .create_multipart_upload()
        .bucket(bucket.store.bucket())
        .key("documents/x")
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap();
    client
        .upload_part()
        .bucket(bucket.store.bucket())
        .key("documents/x")
        .upload_id(upload_id)
        .part_number(1)
        .body(aws_sdk_s3::primitives::ByteStream::from(vec![1u8; 1024]))
        .send()
        .await
        .unwrap();

    assert_eq!(bucket.pending_uploads().await, 1);

    client
        .abort_multipart_upload()
        .bucket(bucket.store.bucket())
        .key("documents/x")
        .upload_id(upload_id)
        .send()
        .await
        .unwrap();
    assert_eq!(bucket.pending_uploads().await, 0);
}

/// A server that crashed mid-upload left a multipart upload in S3 and its announcement (with the
/// upload's id) in PostgreSQL; reconcile aborts it by that id, which works on a store that cannot list
/// multipart uploads (the embedded endpoint) as well as on one that can.
async fn a_crashed_servers_multipart_upload_is_swept_by_its_recorded_id(backend: S3Backend, pool: PgPool) {
    let bucket = TestBucket::new(backend).await;
    let client = bucket.store.sdk();
    let key = format!("documents/{}", DocumentId::new());
    let upload = client
        .create_multipart_upload()
        .bucket(bucket.store.bucket())
        .key(&key)
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap().to_owned();
    client
        .upload_part()
        .bucket(bucket.store.bucket())
        .key(&key)
        .upload_id(&upload_id)
        .part_number(1)
        .body(aws_sdk_s3::primitives::ByteStream::from(vec![1u8; 1024]))
        .send()
        .await
        .unwrap();
    sqlx::query(
        "insert into upload_intents (object_key, upload_id, started_at) values ($1, $2, now() - interval '2 days')",
    )
    .bind(&key)
    .bind(&upload_id)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(bucket.pending_uploads().await, 1);

    let report = reconcile::reconcile(&pool, &bucket.store, Options::default())
        .await
        .unwrap()
        .expect("no other reconcile runs");

    assert!(report.aborted_uploads >= 1, "{report:?}");
    assert_eq!(bucket.pending_uploads().await, 0, "the parts are gone");
    assert_eq!(announced(&pool).await, 0, "and so is the announcement");
}

macro_rules! on_both_servers {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
                async fn $name(pool: sqlx::PgPool) {
                    super::$name(pawfile::testing::S3Backend::Embedded, pool).await;
                }
            )*
        }
        mod garage {
            $(
                #[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
                async fn $name(pool: sqlx::PgPool) {
                    super::$name(pawfile::testing::S3Backend::Garage, pool).await;
                }
            )*
        }
    };
}

on_both_servers!(
    a_small_file_round_trips,
    a_multipart_file_round_trips,
    refusals_leave_nothing_behind,
    a_client_going_away_leaves_nothing_behind,
    unfinished_uploads_are_seen,
    a_crashed_servers_multipart_upload_is_swept_by_its_recorded_id,
);

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn s3_stopping_mid_upload_fails_cleanly(pool: PgPool) {
    let mut bucket = TestBucket::embedded().await;
    let id = DocumentId::new();
    let bytes = pdf(3 * PART_SIZE);
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(1);
    let upload = {
        let (store, pool) = (bucket.store.clone(), pool.clone());
        tokio::spawn(async move {
            store_stream(
                &store,
                &pool,
                id,
                tokio_stream::wrappers::ReceiverStream::new(receiver),
                &policy(1 << 30),
            )
            .await
        })
    };
    // More than a part arrives, so the multipart upload begins and its first part goes up; then S3
    // dies; then the rest arrives.
    let (first, rest) = bytes.split_at(PART_SIZE + 1);
    sender.send(Ok(Bytes::copy_from_slice(first))).await.unwrap();
    wait_for_multipart(&pool).await;
    bucket.stop_endpoint();
    for part in rest.chunks(PART_SIZE) {
        if sender.send(Ok(Bytes::copy_from_slice(part))).await.is_err() {
            break;
        }
    }
    drop(sender);

    let err = upload.await.unwrap().unwrap_err();

    assert!(
        matches!(err, UploadError::Storage(ref storage) if storage.is_unreachable()),
        "{err:?}"
    );
    bucket.restart_endpoint().await;
    assert!(bucket.keys().await.is_empty(), "no object appeared");
    assert_eq!(
        announced(&pool).await,
        1,
        "S3 could not be told to abort: the announcement stays, for reconcile to finish the job"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn an_upload_is_announced_before_it_reaches_s3_and_refused_without_the_database(pool: PgPool) {
    let bucket = TestBucket::embedded().await;
    let id = DocumentId::new();
    let (_, pending) = store_stream(
        &bucket.store,
        &pool,
        id,
        chunks(&pdf(4096), 1024),
        &policy(1 << 20),
    )
    .await
    .unwrap();
    assert_eq!(
        announced(&pool).await,
        1,
        "stored but not yet recorded: announced"
    );
    pending.discard().await;
    assert_eq!(
        announced(&pool).await,
        0,
        "discarded: the announcement goes with the object"
    );
    assert!(bucket.keys().await.is_empty());

    pool.close().await;
    let id = DocumentId::new();
    let err = store_stream(
        &bucket.store,
        &pool,
        id,
        chunks(&pdf(4096), 1024),
        &policy(1 << 20),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, UploadError::Database(_)), "{err:?}");
    assert!(bucket.keys().await.is_empty(), "nothing reached S3");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn s3_refusing_the_final_step_fails_cleanly(pool: PgPool) {
    for (size, operation) in [(1024, "PutObject"), (PART_SIZE + 1, "CompleteMultipartUpload")] {
        let bucket = TestBucket::embedded().await;
        bucket.endpoint().refuse(operation);
        let id = DocumentId::new();

        let err = store_stream(
            &bucket.store,
            &pool,
            id,
            chunks(&pdf(size), 65536),
            &policy(1 << 30),
        )
        .await
        .unwrap_err();

        assert!(matches!(err, UploadError::Storage(_)), "{operation}: {err:?}");
        assert!(bucket.keys().await.is_empty(), "{operation}: nothing is left");
        assert_eq!(announced(&pool).await, 0, "{operation}: nor announced");
    }
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn dropping_an_upload_half_way_cleans_up_in_the_background(pool: PgPool) {
    let bucket = TestBucket::new(S3Backend::Garage).await;
    let id = DocumentId::new();
    let bytes = pdf(2 * PART_SIZE + 10);
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(1);
    let upload = {
        let (store, pool) = (bucket.store.clone(), pool.clone());
        tokio::spawn(async move {
            store_stream(
                &store,
                &pool,
                id,
                tokio_stream::wrappers::ReceiverStream::new(receiver),
                &policy(1 << 30),
            )
            .await
        })
    };
    sender
        .send(Ok(Bytes::copy_from_slice(&bytes[..PART_SIZE + 10])))
        .await
        .unwrap();
    wait_for_multipart(&pool).await;

    // The request handler is cancelled (the client went away before the server read on).
    upload.abort();
    let _ = upload.await;

    // Both go in a task the dropped upload spawned, and Garage on a loaded box takes its time.
    eventually(
        SETTLE,
        "the multipart upload was aborted after the task was dropped",
        || async {
            bucket
                .store
                .sdk()
                .list_multipart_uploads()
                .bucket(bucket.store.bucket())
                .send()
                .await
                .unwrap()
                .uploads()
                .is_empty()
        },
    )
    .await;
    assert!(bucket.keys().await.is_empty());
    eventually(SETTLE, "the announcement went too", || async {
        announced(&pool).await == 0
    })
    .await;
}

async fn upload(
    pool: &PgPool,
    bucket: &TestBucket,
    actor: &pawfile::access::Actor,
    pet: pawfile::domain::PetId,
    size: usize,
) -> DocumentId {
    let mut batch = UploadBatch::begin(pool, &bucket.store, policy(1 << 30), actor, pet)
        .await
        .unwrap();
    batch
        .add_file("scan.pdf", chunks(&pdf(size), 65536))
        .await
        .unwrap();
    let written = batch.finish(UploadDetails::default()).await.unwrap();
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].filename, "scan.pdf");
    written[0].id
}

/// Access is checked when an upload begins and again, under a lock, when it is recorded: a share
/// revoked in between refuses the batch as any access is refused (404, audited), and nothing stays.
#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_share_revoked_during_an_upload_refuses_it_audited_and_keeps_nothing(pool: PgPool) {
    let bucket = TestBucket::embedded().await;
    let alice = owner(&pool, "alice@example.org").await;
    let riverside = clinic(&pool, "Riverside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    pets::share_pet(&pool, &alice, biscuit, riverside).await.unwrap();

    let mut batch = UploadBatch::begin(&pool, &bucket.store, policy(1 << 30), &vet, biscuit)
        .await
        .unwrap();
    batch
        .add_file("x-ray.pdf", chunks(&pdf(4096), 1024))
        .await
        .unwrap();
    pets::revoke_share(&pool, &alice, biscuit, riverside)
        .await
        .unwrap();
    let denied_before = audited(&pool, "access_denied").await;
    let refused = batch.finish(UploadDetails::default()).await;

    assert!(matches!(refused, Err(Error::NotFound)), "{refused:?}");
    assert_eq!(audited(&pool, "access_denied").await, denied_before + 1);
    eventually(SETTLE, "the refused upload's object is removed", || async {
        bucket.keys().await.is_empty()
    })
    .await;
    assert_eq!(announced(&pool).await, 0);
    let rows: i64 = sqlx::query_scalar("select count(*) from documents")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn documents_go_to_the_trash_come_back_and_are_purged_with_their_objects(pool: PgPool) {
    let bucket = TestBucket::embedded().await;
    let alice = owner(&pool, "alice@example.org").await;
    let riverside = clinic(&pool, "Riverside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    pets::share_pet(&pool, &alice, biscuit, riverside).await.unwrap();
    let document = upload(&pool, &bucket, &alice, biscuit, 2048).await;

    let by_vet = documents::set_trashed(&pool, &vet, document, true).await;
    assert!(
        matches!(by_vet, Err(Error::Forbidden(_))),
        "only the uploader deletes: {by_vet:?}"
    );
    documents::set_trashed(&pool, &alice, document, true)
        .await
        .unwrap();
    assert!(
        documents::list_documents(&pool, &alice, biscuit, ListFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        matches!(
            documents::find_readable(&pool, &vet, document).await,
            Err(Error::NotFound)
        ),
        "gone for others"
    );
    let trash = documents::list_documents(
        &pool,
        &alice,
        biscuit,
        ListFilter {
            trashed: true,
            ..ListFilter::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(trash.len(), 1);

    documents::set_trashed(&pool, &alice, document, false)
        .await
        .unwrap();
    assert_eq!(
        documents::list_documents(&pool, &vet, biscuit, ListFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );

    documents::set_trashed(&pool, &alice, document, true)
        .await
        .unwrap();
    // Not yet due: nothing is purged.
    assert_eq!(
        documents::purge_trash(&pool, &bucket.store, Duration::from_secs(3600))
            .await
            .unwrap(),
        Some(0)
    );
    sqlx::query("update documents set deleted_at = now() - interval '31 days' where id = $1")
        .bind(document.0)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        documents::purge_trash(&pool, &bucket.store, Duration::from_secs(30 * 86400))
            .await
            .unwrap(),
        Some(1)
    );

    assert!(bucket.keys().await.is_empty(), "the object is gone");
    let rows: i64 = sqlx::query_scalar("select count(*) from documents")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn reconcile_removes_orphans_and_flags_missing_and_damaged_objects(pool: PgPool) {
    let bucket = TestBucket::embedded().await;
    let alice = owner(&pool, "alice@example.org").await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    let kept = upload(&pool, &bucket, &alice, biscuit, 4096).await;
    let lost = upload(&pool, &bucket, &alice, biscuit, 4096).await;
    let damaged = upload(&pool, &bucket, &alice, biscuit, 4096).await;
    // An orphan (no row), a fresh upload in progress (no row yet), a missing object and damaged bytes.
    let orphan = StorageKey::Document(DocumentId::new()).key();
    bucket
        .store
        .put_bytes(&orphan, Bytes::from(pdf(100)), "application/pdf")
        .await
        .unwrap();
    bucket
        .store
        .delete(&StorageKey::Document(lost).key())
        .await
        .unwrap();
    let mut bytes = pdf(4096);
    bytes[4000] ^= 0xFF;
    bucket
        .store
        .put_bytes(
            &StorageKey::Document(damaged).key(),
            Bytes::from(bytes),
            "application/pdf",
        )
        .await
        .unwrap();

    // Within the grace period, the orphan might be an upload about to be recorded: it stays.
    let careful = reconcile::reconcile(
        &pool,
        &bucket.store,
        Options {
            grace: Duration::from_secs(3600),
            verify_sample: 100,
            ..Options::default()
        },
    )
    .await
    .unwrap()
    .unwrap();
    assert!(careful.removed_orphans.is_empty());

    let report = reconcile::reconcile(
        &pool,
        &bucket.store,
        Options {
            grace: Duration::ZERO,
            verify_sample: 100,
            ..Options::default()
        },
    )
    .await
    .unwrap()
    .unwrap();

    assert_eq!(report.removed_orphans, vec![orphan.clone()]);
    assert_eq!(report.missing, vec![lost]);
    assert_eq!(report.checksum_mismatches, vec![damaged]);
    assert!(report.verified >= 2);
    assert!(!bucket.keys().await.contains(&orphan));
    let flagged: Vec<(uuid::Uuid, String)> = sqlx::query_as(
        "select id, integrity_problem from documents where integrity_problem is not null order by id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(flagged.len(), 2);
    assert!(
        flagged
            .iter()
            .any(|(id, problem)| *id == lost.0 && problem.contains("missing"))
    );
    assert!(!flagged.iter().any(|(id, _)| *id == kept.0));

    // A later run that samples nothing still re-reads the damaged object: the flag stays.
    let quiet = Options {
        grace: Duration::ZERO,
        verify_sample: 0,
        ..Options::default()
    };
    let again = reconcile::reconcile(&pool, &bucket.store, quiet)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.checksum_mismatches, vec![damaged]);
    // Once the bytes are whole again, the flag goes.
    bucket
        .store
        .put_bytes(
            &StorageKey::Document(damaged).key(),
            Bytes::from(pdf(4096)),
            "application/pdf",
        )
        .await
        .unwrap();
    let healed = reconcile::reconcile(&pool, &bucket.store, quiet)
        .await
        .unwrap()
        .unwrap();
    assert!(healed.checksum_mismatches.is_empty());
    let still_flagged: Vec<uuid::Uuid> =
        sqlx::query_scalar("select id from documents where integrity_problem is not null")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        still_flagged,
        vec![lost.0],
        "only the missing object is still flagged"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn reconcile_spares_announced_uploads_until_they_are_stale(pool: PgPool) {
    let bucket = TestBucket::embedded().await;
    let alice = owner(&pool, "alice@example.org").await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    // A request with several files: the first is stored, the rest still streaming, nothing recorded.
    let mut batch = UploadBatch::begin(&pool, &bucket.store, policy(1 << 20), &alice, biscuit)
        .await
        .unwrap();
    batch
        .add_file("scan.pdf", chunks(&pdf(4096), 1024))
        .await
        .unwrap();
    let keys = bucket.keys().await;
    assert_eq!(keys.len(), 1);
    let key = keys[0].clone();
    let patient = Options {
        grace: Duration::ZERO,
        verify_sample: 0,
        ..Options::default()
    };

    let report = reconcile::reconcile(&pool, &bucket.store, patient)
        .await
        .unwrap()
        .unwrap();
    assert!(report.removed_orphans.is_empty(), "{report:?}");
    assert!(bucket.keys().await.contains(&key), "the announced object stays");

    // The upload outlived the upload grace period: reconcile gives it up.
    let impatient = Options {
        upload_grace: Duration::ZERO,
        ..patient
    };
    let report = reconcile::reconcile(&pool, &bucket.store, impatient)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.removed_orphans, vec![key.clone()]);
    assert_eq!(announced(&pool).await, 0);

    // Recording it now is refused, so no row points at the removed object.
    let err = batch.finish(UploadDetails::default()).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    let rows: i64 = sqlx::query_scalar("select count(*) from documents")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
    assert!(bucket.keys().await.is_empty());
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_file_beyond_the_most_a_batch_takes_removes_the_whole_batch(pool: PgPool) {
    let bucket = TestBucket::embedded().await;
    let alice = owner(&pool, "alice@example.org").await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    let mut batch = UploadBatch::begin(&pool, &bucket.store, policy(1 << 20), &alice, biscuit)
        .await
        .unwrap();
    for index in 0..UploadBatch::MAX_FILES {
        batch
            .add_file(&format!("scan-{index}.pdf"), chunks(&pdf(2048), 1024))
            .await
            .unwrap();
    }
    assert_eq!(bucket.keys().await.len(), UploadBatch::MAX_FILES);

    let err = batch
        .add_file("one-too-many.pdf", chunks(&pdf(2048), 1024))
        .await
        .unwrap_err();

    assert!(
        matches!(
            err,
            Error::Upload {
                error: UploadError::TooManyFiles { most: 20 },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        bucket.keys().await.is_empty(),
        "every file of the batch was removed"
    );
    assert_eq!(announced(&pool).await, 0);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_scrub_re_hashes_every_document_once_per_period_in_rotation(pool: PgPool) {
    let bucket = TestBucket::embedded().await;
    let alice = owner(&pool, "alice@example.org").await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    for _ in 0..10 {
        upload(&pool, &bucket, &alice, biscuit, 2048).await;
    }
    // A period of five runs: each run takes its fifth of the documents, the longest-unchecked first.
    let options = Options {
        verify_sample: 1,
        scrub_period: Duration::from_secs(5 * 3600),
        run_interval: Duration::from_secs(3600),
        ..Options::default()
    };
    assert_eq!(
        reconcile::scrub_batch(10, 1, options.scrub_period, options.run_interval),
        2
    );
    assert_eq!(
        reconcile::scrub_batch(10, 4, options.scrub_period, options.run_interval),
        4
    );
    assert_eq!(
        reconcile::scrub_coverage(&pool, options.scrub_period)
            .await
            .unwrap(),
        (0, 10)
    );

    for run in 1..=5 {
        let report = reconcile::reconcile(&pool, &bucket.store, options)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(report.verified, 2, "run {run}");
        assert_eq!(
            reconcile::scrub_coverage(&pool, options.scrub_period)
                .await
                .unwrap(),
            (2 * run, 10),
            "run {run}: no document twice before every one once"
        );
    }

    // The next run starts the rotation again with the documents checked longest ago.
    let first: Vec<uuid::Uuid> =
        sqlx::query_scalar("select id from documents order by rehashed_at, id limit 2")
            .fetch_all(&pool)
            .await
            .unwrap();
    reconcile::reconcile(&pool, &bucket.store, options)
        .await
        .unwrap()
        .unwrap();
    let newest: Vec<uuid::Uuid> =
        sqlx::query_scalar("select id from documents order by rehashed_at desc, id limit 2")
            .fetch_all(&pool)
            .await
            .unwrap();
    let (mut first, mut newest) = (first, newest);
    first.sort();
    newest.sort();
    assert_eq!(first, newest);
}
