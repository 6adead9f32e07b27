//! Backups against a real Postgres and real S3 servers: round trip byte for byte, incremental runs, no
//! plaintext in the bucket, one run at a time, crashes and an unreachable store, prune, verification and
//! the catalogue a restore rebuilds.

use crate::{
    fixtures::{clinic, owner, pet, staff},
    records::visit,
};
use bytes::Bytes;
use futures::stream;
use pawfile::{
    access::Actor,
    backup::{
        self, Backups, Identities, Policy, Recipients, Retention, StartedBy, Trigger,
        crypto::generate_key_pair,
        restore::{self, Quiet, Source, Which},
        verify::{self, Depth},
    },
    documents::{self, UploadBatch, UploadDetails, upload::PART_SIZE},
    domain::{DocumentId, PetId},
    error::Error,
    pets, records, recovery,
    testing::{S3Backend, SETTLE, TestBucket, backup_keys, eventually},
};
use sqlx::{PgPool, postgres::PgPoolOptions};
use std::{collections::BTreeMap, convert::Infallible, io::Write, time::Duration};
use tokio_util::sync::CancellationToken;

const PHOTO: &[u8] = include_bytes!("../../end2end/fixtures/paw-photo.png");

/// A key pair in a temporary file.
struct Key {
    file: tempfile::NamedTempFile,
    recipients: Recipients,
}

impl Key {
    fn new() -> Self {
        let (text, public) = generate_key_pair();
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        Self {
            file,
            recipients: Recipients::parse(&public).unwrap(),
        }
    }

    fn identities(&self) -> Identities {
        Identities::from_files(&[self.file.path()]).unwrap()
    }
}

fn policy(key: &Key) -> Policy {
    Policy {
        recipients: key.recipients.clone(),
        allow_unencrypted: false,
        retention: Retention::default(),
        prune: false,
        pace: None,
        keys: backup_keys(),
    }
}

/// An installation to back up: the database, the documents bucket, the backup bucket.
struct Site {
    documents: TestBucket,
    backups_bucket: TestBucket,
    backups: Backups,
}

async fn site(pool: &PgPool, backend: S3Backend, policy: Policy) -> Site {
    let documents = TestBucket::new(backend).await;
    let backups_bucket = TestBucket::new(backend).await;
    let backups = Backups::new(
        pool.clone(),
        documents.store.clone(),
        backups_bucket.store.clone(),
        policy,
        CancellationToken::new(),
    );
    Site {
        documents,
        backups_bucket,
        backups,
    }
}

fn by_cli() -> StartedBy {
    StartedBy {
        trigger: Trigger::Cli,
        user: None,
        client_addr: None,
    }
}

fn pdf(size: usize, seed: u8) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.extend((0..size.saturating_sub(9)).map(|i| ((i % 251) as u8).wrapping_add(seed)));
    bytes
}

async fn upload(
    pool: &PgPool,
    site: &Site,
    actor: &Actor,
    pet: PetId,
    name: &str,
    bytes: &[u8],
) -> DocumentId {
    let policy = documents::upload::Policy {
        max_bytes: 1 << 30,
        accepted: documents::sniff::DEFAULT_ACCEPTED
            .iter()
            .map(|mime| (*mime).to_owned())
            .collect(),
        strip_location: true,
    };
    let mut batch = UploadBatch::begin(pool, &site.documents.store, policy, actor, pet)
        .await
        .unwrap();
    let chunks: Vec<Result<Bytes, Infallible>> = bytes
        .chunks(65536)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    batch.add_file(name, stream::iter(chunks)).await.unwrap();
    batch.finish(UploadDetails::default()).await.unwrap()[0].id
}

/// People, a pet, a record with a revision, a small PDF, one above 8 MiB, a photo with its thumbnail,
/// a trashed document, and the audit events all that wrote.
async fn populate(pool: &PgPool, site: &Site) -> Vec<DocumentId> {
    let alice = owner(pool, "alice@example.org").await;
    let riverside = clinic(pool, "Riverside").await;
    let vet = staff(pool, "vet@riverside.example", riverside).await;
    let biscuit = pet(pool, &alice, "Biscuit").await;
    pets::share_pet(pool, &alice, biscuit, riverside).await.unwrap();
    let record = records::create_record(pool, &vet, biscuit, &visit())
        .await
        .unwrap();
    records::update_record(
        pool,
        &vet,
        record,
        1,
        &crate::records::visit_titled("Revised check-up"),
    )
    .await
    .unwrap();
    let small = upload(pool, site, &alice, biscuit, "lab.pdf", &pdf(3000, 1)).await;
    let large = upload(pool, site, &vet, biscuit, "x-ray.pdf", &pdf(PART_SIZE + 12345, 2)).await;
    let photo = upload(pool, site, &alice, biscuit, "paw.png", PHOTO).await;
    let trashed = upload(pool, site, &alice, biscuit, "old.pdf", &pdf(5000, 3)).await;
    documents::set_trashed(pool, &alice, trashed, true).await.unwrap();
    documents::thumbnails::make_pending(pool, &site.documents.store)
        .await
        .unwrap();
    vec![small, large, photo, trashed]
}

/// A new, empty database (`pawfile_restore_…`; scripts/test drops them when the run ends).
async fn empty_database(pool: &PgPool) -> PgPool {
    let name = format!("pawfile_restore_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("create database {name}"))
        .execute(pool)
        .await
        .unwrap();
    let options = pool.connect_options().as_ref().clone().database(&name);
    PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .unwrap()
}

/// Restores `site`'s newest snapshot (opened with `key`) into a new database and an empty embedded
/// bucket; returns the bucket and the report.
async fn restore_latest(pool: &PgPool, site: &Site, key: &Key) -> (TestBucket, restore::RestoreReport) {
    let (_, bucket, report) = restore_latest_into(pool, site, key).await;
    (bucket, report)
}

/// As [`restore_latest`], also answering the restored database.
async fn restore_latest_into(
    pool: &PgPool,
    site: &Site,
    key: &Key,
) -> (PgPool, TestBucket, restore::RestoreReport) {
    let target = empty_database(pool).await;
    let target_bucket = TestBucket::new(S3Backend::Embedded).await;
    let restored = recovery::restore(
        &target,
        &target_bucket.store,
        &site.backups_bucket.store,
        Source {
            which: Which::Latest,
            identities: Some(&key.identities()),
            keys: &backup_keys(),
        },
        &Quiet,
    )
    .await
    .unwrap();
    (target, target_bucket, restored)
}

/// Every row of every backed-up table, as text, in a stable order (without the restore's own audit event).
async fn all_rows(pool: &PgPool) -> BTreeMap<&'static str, Vec<String>> {
    let mut rows = BTreeMap::new();
    for table in backup::TABLES {
        let filter = if *table == "audit_events" {
            "where action <> 'restore_backup'"
        } else {
            ""
        };
        let text: Vec<String> =
            sqlx::query_scalar(&format!("select t::text from {table} t {filter} order by 1"))
                .fetch_all(pool)
                .await
                .unwrap();
        rows.insert(*table, text);
    }
    rows
}

/// Every object of a bucket with its SHA-256.
async fn all_objects(bucket: &TestBucket) -> BTreeMap<String, [u8; 32]> {
    let mut objects = BTreeMap::new();
    for key in bucket.keys().await {
        objects.insert(key.clone(), bucket.store.sha256_of(&key).await.unwrap().0);
    }
    objects
}

async fn round_trip(backend: S3Backend, pool: PgPool) {
    let key = Key::new();
    let site = site(&pool, backend, policy(&key)).await;
    let ids = populate(&pool, &site).await;
    let report = site.backups.run(by_cli()).await.unwrap().expect("no other run");
    assert_eq!(report.tables as usize, backup::TABLES.len());
    assert_eq!(report.files, 5, "four documents and one thumbnail");
    let runs = backup::list_runs(&pool, 10).await.unwrap();
    assert_eq!(runs[0].status, backup::RunStatus::Complete);
    assert_eq!(site.backups_bucket.pending_uploads().await, 0);

    let target = empty_database(&pool).await;
    let target_bucket = TestBucket::new(backend).await;
    let restored = recovery::restore(
        &target,
        &target_bucket.store,
        &site.backups_bucket.store,
        Source {
            which: Which::Id(report.id),
            identities: Some(&key.identities()),
            keys: &backup_keys(),
        },
        &Quiet,
    )
    .await
    .unwrap();
    assert_eq!(restored.objects_written, 5);
    assert_eq!(
        all_rows(&target).await,
        all_rows(&pool).await,
        "every row comes back"
    );
    assert_eq!(
        all_objects(&target_bucket).await,
        all_objects(&site.documents).await,
        "every object comes back byte for byte"
    );
    // The restored system serves a document: its row points at bytes that match its checksum.
    let large = ids[1];
    let stored: (String, Vec<u8>) = sqlx::query_as("select object_key, sha256 from documents where id = $1")
        .bind(large.0)
        .fetch_one(&target)
        .await
        .unwrap();
    assert_eq!(
        target_bucket.store.sha256_of(&stored.0).await.unwrap().0.to_vec(),
        stored.1
    );
    // The catalogue was rebuilt and the restore audited.
    let catalogued = backup::list_runs(&target, 10).await.unwrap();
    assert_eq!(catalogued.len(), 1);
    assert_eq!(catalogued[0].id, report.id);
    assert_eq!(crate::fixtures::audited(&target, "restore_backup").await, 1);
    // Restoring again over the result is refused: the database is not empty.
    let again = recovery::restore(
        &target,
        &target_bucket.store,
        &site.backups_bucket.store,
        Source {
            which: Which::Latest,
            identities: Some(&key.identities()),
            keys: &backup_keys(),
        },
        &Quiet,
    )
    .await;
    assert!(
        matches!(&again, Err(Error::Conflict(message)) if message.contains("not empty")),
        "{again:?}"
    );
}

async fn a_crash_leaves_no_snapshot_and_the_next_run_succeeds(backend: S3Backend, pool: PgPool) {
    let key = Key::new();
    let mut slow = policy(&key);
    slow.pace = Some(Duration::from_millis(300));
    let site = site(&pool, backend, slow).await;
    let alice = owner(&pool, "alice@example.org").await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    upload(
        &pool,
        &site,
        &alice,
        biscuit,
        "big.pdf",
        &pdf(2 * PART_SIZE + 5, 7),
    )
    .await;
    for n in 0..3 {
        upload(&pool, &site, &alice, biscuit, "small.pdf", &pdf(2000 + n, 8)).await;
    }
    let started = site.backups.start(by_cli()).await.unwrap().unwrap();
    // The process dies mid-run, with the large file's multipart upload open (a run records it in
    // `backup_uploads` while it is): the task stops where it is and its lock connection goes.
    eventually(
        SETTLE,
        "the run began the large file's multipart upload",
        || async {
            sqlx::query_scalar::<_, i64>("select count(*) from backup_uploads")
                .fetch_one(&pool)
                .await
                .unwrap()
                > 0
        },
    )
    .await;
    started.handle.abort();
    let _ = started.handle.await;
    let runs = backup::list_runs(&pool, 10).await.unwrap();
    assert_eq!(
        runs[0].status,
        backup::RunStatus::Running,
        "nobody has noticed yet"
    );
    assert!(
        site.backups_bucket
            .store
            .list(backup::MANIFEST_PREFIX)
            .await
            .unwrap()
            .is_empty()
    );

    // Postgres releases the dead run's advisory lock once it sees the dropped connection, which is not
    // at once: wait for that rather than count on it having happened by the next run.
    eventually(SETTLE, "the dead run's lock was released", || async {
        match backup::RunLock::try_take(&pool).await.unwrap() {
            Some(lock) => {
                lock.release().await;
                true
            }
            None => false,
        }
    })
    .await;
    let report = site
        .backups
        .run(by_cli())
        .await
        .unwrap()
        .expect("the lock was released");
    let runs = backup::list_runs(&pool, 10).await.unwrap();
    assert_eq!(runs[0].id, report.id);
    assert_eq!(runs[0].status, backup::RunStatus::Complete);
    assert_eq!(runs[1].status, backup::RunStatus::Interrupted);
    assert!(runs[1].error.as_deref().unwrap().contains("stopped"));
    // The dead run's writer aborts its upload from a task its drop spawned: not necessarily done yet.
    eventually(SETTLE, "no multipart upload is left", || async {
        site.backups_bucket.pending_uploads().await == 0
    })
    .await;
    let verified = verify::verify(
        &pool,
        &site.backups_bucket.store,
        &backup_keys(),
        Depth::Full(Some(&key.identities())),
    )
    .await
    .unwrap();
    assert!(verified.is_clean(), "{:?}", verified.problems);
}

on_both_s3_servers_with_pool!(round_trip, a_crash_leaves_no_snapshot_and_the_next_run_succeeds);

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_second_run_copies_nothing_and_a_new_upload_copies_just_that(pool: PgPool) {
    let key = Key::new();
    let site = site(&pool, S3Backend::Embedded, policy(&key)).await;
    populate(&pool, &site).await;
    let first = site.backups.run(by_cli()).await.unwrap().unwrap();
    assert_eq!(first.files, 5);
    let tables_changed = |report: &backup::RunReport| report.objects_copied;

    let second = site.backups.run(by_cli()).await.unwrap().unwrap();
    // Only the audit table changed (the run's own audit event); no file was copied.
    assert_eq!(
        second.objects_reused as usize + tables_changed(&second) as usize,
        first.objects_copied as usize
    );
    assert_eq!(
        tables_changed(&second),
        1,
        "only the audit_events dump: {second:?}"
    );

    let alice: (uuid::Uuid,) = sqlx::query_as("select id from users where email = 'alice@example.org'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let alice = Actor::new(
        pawfile::auth::load_session_user(&pool, pawfile::domain::UserId(alice.0), 0)
            .await
            .unwrap()
            .unwrap(),
        None,
    );
    let biscuit: (uuid::Uuid,) = sqlx::query_as("select id from pets limit 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    let new = pdf(40_000, 9);
    upload(&pool, &site, &alice, PetId(biscuit.0), "new.pdf", &new).await;
    let third = site.backups.run(by_cli()).await.unwrap().unwrap();
    // The new document, and the tables the upload changed (documents, audit_events).
    assert_eq!(third.files, 6);
    assert_eq!(third.objects_copied, 3, "{third:?}");
    let new_plaintext: i64 = sqlx::query_scalar(
        "select count(*) from backup_objects o join backup_snapshot_objects s on s.object_name = o.name
         where s.run_id = $1 and o.plaintext_size = $2",
    )
    .bind(third.id)
    .bind(new.len() as i64)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(new_plaintext, 1);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn identical_files_are_stored_once_and_each_comes_back(pool: PgPool) {
    let key = Key::new();
    let site = site(&pool, S3Backend::Embedded, policy(&key)).await;
    let alice = owner(&pool, "alice@example.org").await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    let same = pdf(20_000, 7);
    upload(&pool, &site, &alice, biscuit, "scan.pdf", &same).await;
    upload(&pool, &site, &alice, biscuit, "scan again.pdf", &same).await;
    upload(&pool, &site, &alice, biscuit, "other.pdf", &pdf(20_000, 8)).await;

    let report = site.backups.run(by_cli()).await.unwrap().unwrap();
    assert_eq!(report.files, 3);
    let stored_as = |size: usize, seed: u8| {
        let pool = pool.clone();
        async move {
            let sha256 = <sha2::Sha256 as sha2::Digest>::digest(pdf(size, seed)).to_vec();
            sqlx::query_scalar::<_, i64>("select count(*) from backup_objects where plaintext_sha256 = $1")
                .bind(sha256)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(stored_as(20_000, 7).await, 1, "the same bytes are stored once");
    assert_eq!(stored_as(20_000, 8).await, 1);

    let (target_bucket, restored) = restore_latest(&pool, &site, &key).await;
    assert_eq!(restored.objects_written, 3);
    assert_eq!(
        all_objects(&target_bucket).await,
        all_objects(&site.documents).await,
        "each document comes back byte for byte"
    );
}

/// Files are copied several at once; two photos with the same bytes have thumbnails with the same
/// bytes too, which nobody knows until they are read. Each plaintext is still stored once.
#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn files_copied_at_once_store_each_plaintext_once(pool: PgPool) {
    let key = Key::new();
    let site = site(&pool, S3Backend::Embedded, policy(&key)).await;
    let alice = owner(&pool, "alice@example.org").await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    for copy in 0..3 {
        upload(&pool, &site, &alice, biscuit, &format!("paw {copy}.png"), PHOTO).await;
    }
    for seed in 0..20 {
        upload(
            &pool,
            &site,
            &alice,
            biscuit,
            &format!("lab {seed}.pdf"),
            &pdf(4000, seed),
        )
        .await;
    }
    documents::thumbnails::make_pending(&pool, &site.documents.store)
        .await
        .unwrap();
    let in_documents = all_objects(&site.documents).await;
    assert_eq!(in_documents.len(), 26, "23 documents and 3 thumbnails");

    let report = site.backups.run(by_cli()).await.unwrap().unwrap();
    assert_eq!(report.files, 26);
    let plaintexts: std::collections::BTreeSet<[u8; 32]> = in_documents.values().copied().collect();
    assert_eq!(plaintexts.len(), 22, "one photo, one thumbnail and 20 PDFs");
    let catalogued: Vec<Vec<u8>> = sqlx::query_scalar("select plaintext_sha256 from backup_objects")
        .fetch_all(&pool)
        .await
        .unwrap();
    for sha256 in &plaintexts {
        let times = catalogued
            .iter()
            .filter(|stored| stored[..] == sha256[..])
            .count();
        assert_eq!(times, 1, "each plaintext is stored once");
    }
    assert_eq!(
        report.objects_copied as usize,
        catalogued.len(),
        "what was copied is what is catalogued: files and table dumps, each plaintext once"
    );
    let stored_objects = site.backups_bucket.store.list(backup::DATA_PREFIX).await.unwrap();
    assert_eq!(
        stored_objects.len(),
        catalogued.len(),
        "no object is left in the backup bucket beside the catalogued ones"
    );

    let (target_bucket, _) = restore_latest(&pool, &site, &key).await;
    assert_eq!(
        all_objects(&target_bucket).await,
        in_documents,
        "each file comes back byte for byte"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_restore_stopped_by_a_damaged_file_leaves_whole_files_and_resumes(pool: PgPool) {
    let key = Key::new();
    let site = site(&pool, S3Backend::Embedded, policy(&key)).await;
    populate(&pool, &site).await;
    site.backups.run(by_cli()).await.unwrap().unwrap();
    let objects = site.backups_bucket.store.list(backup::DATA_PREFIX).await.unwrap();
    let largest = objects
        .iter()
        .max_by_key(|object| object.size)
        .unwrap()
        .key
        .clone();
    let original = site.backups_bucket.store.get_bytes(&largest).await.unwrap();
    let mut damaged = original.to_vec();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x01;
    site.backups_bucket
        .store
        .put_bytes(&largest, Bytes::from(damaged), "application/octet-stream")
        .await
        .unwrap();

    let target = empty_database(&pool).await;
    let target_bucket = TestBucket::new(S3Backend::Embedded).await;
    let identities = key.identities();
    let keys = backup_keys();
    let restore_into = || {
        recovery::restore(
            &target,
            &target_bucket.store,
            &site.backups_bucket.store,
            Source {
                which: Which::Latest,
                identities: Some(&identities),
                keys: &keys,
            },
            &Quiet,
        )
    };
    let failed = restore_into().await;
    assert!(failed.is_err(), "{failed:?}");
    // The files in flight were abandoned: no partial upload stays, and what was written is whole.
    eventually(SETTLE, "the abandoned uploads were aborted", || async {
        target_bucket.pending_uploads().await == 0
    })
    .await;
    let source = all_objects(&site.documents).await;
    let written = all_objects(&target_bucket).await;
    assert!(written.len() < source.len(), "the damaged file was not written");
    for (object, sha256) in &written {
        assert_eq!(source.get(object), Some(sha256), "{object} is whole");
    }
    let loaded: bool = sqlx::query_scalar("select to_regclass('public.pets') is not null")
        .fetch_one(&target)
        .await
        .unwrap();
    assert!(!loaded, "the database is loaded only after every file");

    // With the file repaired, the same restore finishes and skips what is already there.
    site.backups_bucket
        .store
        .put_bytes(&largest, original, "application/octet-stream")
        .await
        .unwrap();
    let resumed = restore_into().await.unwrap();
    assert_eq!(resumed.objects_present, written.len());
    assert_eq!(resumed.objects_present + resumed.objects_written, source.len());
    assert_eq!(all_objects(&target_bucket).await, source);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn nothing_in_the_bucket_is_plaintext_and_a_wrong_key_fails_clearly(pool: PgPool) {
    let key = Key::new();
    let site = site(&pool, S3Backend::Embedded, policy(&key)).await;
    populate(&pool, &site).await;
    let secret_text = "Heart and lungs normal. Weight 14.2 kg.";
    let document = pdf(3000, 1);
    site.backups.run(by_cli()).await.unwrap().unwrap();
    let mut seen = 0;
    for key in site.backups_bucket.keys().await {
        let bytes = site.backups_bucket.store.get_bytes(&key).await.unwrap();
        assert!(
            !bytes
                .windows(secret_text.len())
                .any(|w| w == secret_text.as_bytes()),
            "{key}"
        );
        assert!(!bytes.windows(200).any(|w| w == &document[1000..1200]), "{key}");
        assert!(
            !bytes.windows(8).any(|w| w == b"Riverside"[..8].as_ref()),
            "{key}"
        );
        // Manifests are signed: their envelope holds the age file.
        let payload = if key.starts_with(backup::MANIFEST_PREFIX) {
            backup_keys().open(&key, &bytes).unwrap().to_vec()
        } else {
            bytes.to_vec()
        };
        assert!(backup::crypto::is_age(&payload), "{key} is an age file");
        let head = site.backups_bucket.store.head(&key).await.unwrap();
        assert!(head.size > 0);
        seen += 1;
    }
    assert!(seen > 10);

    let target = empty_database(&pool).await;
    let target_bucket = TestBucket::embedded().await;
    let other = Key::new();
    let wrong = recovery::restore(
        &target,
        &target_bucket.store,
        &site.backups_bucket.store,
        Source {
            which: Which::Latest,
            identities: Some(&other.identities()),
            keys: &backup_keys(),
        },
        &Quiet,
    )
    .await;
    assert!(
        matches!(&wrong, Err(Error::Conflict(message)) if message.contains("none of the given keys")),
        "{wrong:?}"
    );
    assert!(target_bucket.keys().await.is_empty(), "nothing was written");
    let tables: i64 = sqlx::query_scalar("select count(*) from pg_tables where schemaname = 'public'")
        .fetch_one(&target)
        .await
        .unwrap();
    assert_eq!(tables, 0);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn two_servers_triggering_at_once_run_one_backup(pool: PgPool) {
    let key = Key::new();
    let mut slow = policy(&key);
    slow.pace = Some(Duration::from_millis(200));
    let site = site(&pool, S3Backend::Embedded, slow.clone()).await;
    let other = Backups::new(
        pool.clone(),
        site.documents.store.clone(),
        site.backups_bucket.store.clone(),
        slow,
        CancellationToken::new(),
    );
    populate(&pool, &site).await;
    let (one, two) = tokio::join!(site.backups.start(by_cli()), other.start(by_cli()));
    let (one, two) = (one.unwrap(), two.unwrap());
    assert!(one.is_some() != two.is_some(), "exactly one started");
    let started = one.or(two).unwrap();
    // While it runs, a third trigger is refused too.
    assert!(other.start(by_cli()).await.unwrap().is_none());
    started.handle.await.unwrap().unwrap();
    let runs = backup::list_runs(&pool, 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(crate::fixtures::audited(&pool, "start_backup").await, 1);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_store_refusing_mid_run_is_recorded_and_the_next_run_succeeds(pool: PgPool) {
    let key = Key::new();
    let site = site(&pool, S3Backend::Embedded, policy(&key)).await;
    populate(&pool, &site).await;
    site.backups_bucket.endpoint().refuse("UploadPart");
    let failed = site.backups.run(by_cli()).await;
    assert!(failed.is_err(), "{failed:?}");
    let runs = backup::list_runs(&pool, 10).await.unwrap();
    assert_eq!(runs[0].status, backup::RunStatus::Failed);
    assert!(
        runs[0].error.as_deref().unwrap().contains("object store"),
        "{:?}",
        runs[0].error
    );
    assert!(
        site.backups_bucket
            .store
            .list(backup::MANIFEST_PREFIX)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(site.backups_bucket.pending_uploads().await, 0);

    site.backups_bucket.endpoint().allow_all();
    site.backups.run(by_cli()).await.unwrap().unwrap();
    assert_eq!(
        backup::list_runs(&pool, 10).await.unwrap()[0].status,
        backup::RunStatus::Complete
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn an_unreachable_backup_store_fails_with_a_recorded_error(pool: PgPool) {
    let key = Key::new();
    let mut site = site(&pool, S3Backend::Embedded, policy(&key)).await;
    populate(&pool, &site).await;
    site.backups_bucket.stop_endpoint();
    let failed = site.backups.run(by_cli()).await;
    assert!(matches!(&failed, Err(err) if err.is_unavailable()), "{failed:?}");
    let runs = backup::list_runs(&pool, 10).await.unwrap();
    assert_eq!(runs[0].status, backup::RunStatus::Failed);
    assert!(
        runs[0].error.as_deref().unwrap().contains("cannot reach"),
        "{:?}",
        runs[0].error
    );
    // The documents keep being served.
    assert!(!site.documents.keys().await.is_empty());
    let again = site.backups.start(by_cli()).await.unwrap();
    assert!(again.is_some(), "the lock was released");
    let _ = again.unwrap().handle.await;
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn every_table_is_backed_up_or_named_as_excluded(pool: PgPool) {
    let tables: Vec<String> = sqlx::query_scalar(
        "select case when schemaname = 'public' then tablename else schemaname || '.' || tablename end
         from pg_tables where schemaname not in ('pg_catalog', 'information_schema') order by 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for table in &tables {
        let backed_up = backup::TABLES.contains(&table.as_str());
        let excluded = backup::EXCLUDED.contains(&table.as_str());
        assert!(
            backed_up != excluded,
            "{table} must be either backed up or excluded, once"
        );
    }
    for table in backup::TABLES.iter().chain(backup::EXCLUDED) {
        assert!(
            tables.contains(&(*table).to_owned()),
            "{table} is listed but does not exist"
        );
    }
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn prune_keeps_the_policy_set_and_objects_kept_snapshots_need(pool: PgPool) {
    let key = Key::new();
    let mut keep_two_days = policy(&key);
    keep_two_days.retention = Retention {
        days: 2,
        weeks: 0,
        months: 0,
    };
    let site = site(&pool, S3Backend::Embedded, keep_two_days).await;
    populate(&pool, &site).await;
    let mut runs = Vec::new();
    for _ in 0..4 {
        runs.push(site.backups.run(by_cli()).await.unwrap().unwrap().id);
    }
    // Fabricated history: runs 0 and 1 four and three days ago, 2 and 3 today.
    for (run, days) in [(runs[0], 4), (runs[1], 3)] {
        sqlx::query("update backup_runs set started_at = now() - make_interval(days => $2) where id = $1")
            .bind(run)
            .bind(days)
            .execute(&pool)
            .await
            .unwrap();
    }
    let report = site.backups.prune().await.unwrap().unwrap();
    // Kept: the newest (3, today) and the newest of the second day that has one (1).
    assert_eq!(report.snapshots, 2);
    let kept: Vec<uuid::Uuid> = backup::list_runs(&pool, 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|run| !run.pruned)
        .map(|run| run.id)
        .collect();
    assert_eq!(kept, vec![runs[3], runs[1]]);
    assert_eq!(
        site.backups_bucket
            .store
            .list(backup::MANIFEST_PREFIX)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        report.objects >= 1,
        "the audit dumps only pruned snapshots held went: {report:?}"
    );
    // Every object the kept snapshots need (including the files all four shared) is still there.
    let verified = verify::verify(
        &pool,
        &site.backups_bucket.store,
        &backup_keys(),
        Depth::Full(Some(&key.identities())),
    )
    .await
    .unwrap();
    assert!(verified.is_clean(), "{:?}", verified.problems);
    assert_eq!(verified.snapshots, 2);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_flipped_byte_and_a_deleted_object_are_named_and_the_next_run_heals(pool: PgPool) {
    let key = Key::new();
    let site = site(&pool, S3Backend::Embedded, policy(&key)).await;
    populate(&pool, &site).await;
    site.backups.run(by_cli()).await.unwrap().unwrap();
    let objects = site.backups_bucket.store.list(backup::DATA_PREFIX).await.unwrap();
    let largest = objects
        .iter()
        .max_by_key(|object| object.size)
        .unwrap()
        .key
        .clone();
    let smallest = objects
        .iter()
        .min_by_key(|object| object.size)
        .unwrap()
        .key
        .clone();

    let mut bytes = site
        .backups_bucket
        .store
        .get_bytes(&largest)
        .await
        .unwrap()
        .to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    site.backups_bucket
        .store
        .put_bytes(&largest, Bytes::from(bytes), "application/octet-stream")
        .await
        .unwrap();
    let presence = verify::verify(&pool, &site.backups_bucket.store, &backup_keys(), Depth::Presence)
        .await
        .unwrap();
    assert!(
        presence.is_clean(),
        "same size: presence cannot see it {:?}",
        presence.problems
    );
    let read = verify::verify(&pool, &site.backups_bucket.store, &backup_keys(), Depth::Read)
        .await
        .unwrap();
    assert_eq!(read.problems.len(), 1, "{:?}", read.problems);
    assert!(read.problems[0].starts_with(&largest), "{:?}", read.problems);
    let full = verify::verify(
        &pool,
        &site.backups_bucket.store,
        &backup_keys(),
        Depth::Full(Some(&key.identities())),
    )
    .await
    .unwrap();
    assert!(
        full.problems.iter().any(|p| p.starts_with(&largest)),
        "{:?}",
        full.problems
    );

    site.backups_bucket.store.delete(&smallest).await.unwrap();
    let presence = verify::verify(&pool, &site.backups_bucket.store, &backup_keys(), Depth::Presence)
        .await
        .unwrap();
    assert_eq!(
        presence.problems,
        vec![format!("{smallest}: missing from the backup bucket")]
    );
    site.backups.run(by_cli()).await.unwrap().unwrap();
    assert!(
        site.backups_bucket.store.head(&smallest).await.is_ok(),
        "the next run uploaded the missing object again, under its name"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_restored_catalogue_keeps_newer_snapshots_through_prune(pool: PgPool) {
    let key = Key::new();
    let site = site(&pool, S3Backend::Embedded, policy(&key)).await;
    populate(&pool, &site).await;
    let alice = sqlx::query_scalar::<_, uuid::Uuid>("select id from users where email = 'alice@example.org'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let alice = Actor::new(
        pawfile::auth::load_session_user(&pool, pawfile::domain::UserId(alice), 0)
            .await
            .unwrap()
            .unwrap(),
        None,
    );
    let biscuit = PetId(
        sqlx::query_scalar("select id from pets limit 1")
            .fetch_one(&pool)
            .await
            .unwrap(),
    );
    let mut snapshots = Vec::new();
    for n in 0..3u8 {
        upload(&pool, &site, &alice, biscuit, "more.pdf", &pdf(7000, 20 + n)).await;
        snapshots.push(site.backups.run(by_cli()).await.unwrap().unwrap().id);
    }
    // Restore the first of three into a new installation that uses the same backup bucket.
    let target = empty_database(&pool).await;
    let target_bucket = TestBucket::embedded().await;
    let restored = recovery::restore(
        &target,
        &target_bucket.store,
        &site.backups_bucket.store,
        Source {
            which: Which::Id(snapshots[0]),
            identities: Some(&key.identities()),
            keys: &backup_keys(),
        },
        &Quiet,
    )
    .await
    .unwrap();
    assert_eq!(restored.catalogued_snapshots, 3);
    // Its first prune: snapshot 2 was drilled there, 3 is the newest; neither may lose an object.
    sqlx::query("insert into backup_drills (id, run_id, passed, detail) values ($1, $2, true, 'test')")
        .bind(uuid::Uuid::now_v7())
        .bind(snapshots[1])
        .execute(&target)
        .await
        .unwrap();
    let restored_backups = Backups::new(
        target.clone(),
        target_bucket.store.clone(),
        site.backups_bucket.store.clone(),
        policy(&key),
        CancellationToken::new(),
    );
    let pruned = restored_backups.prune().await.unwrap().unwrap();
    assert_eq!(
        pruned.snapshots, 1,
        "only the first, same day as the others: {pruned:?}"
    );
    for snapshot in [snapshots[1], snapshots[2]] {
        let again = empty_database(&pool).await;
        let bucket = TestBucket::embedded().await;
        recovery::restore(
            &again,
            &bucket.store,
            &site.backups_bucket.store,
            Source {
                which: Which::Id(snapshot),
                identities: Some(&key.identities()),
                keys: &backup_keys(),
            },
            &Quiet,
        )
        .await
        .unwrap_or_else(|err| panic!("snapshot {snapshot} restores after the prune: {err}"));
    }
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn without_a_recipient_backups_refuse_unless_allowed(pool: PgPool) {
    let key = Key::new();
    let mut none = policy(&key);
    none.recipients = Recipients::unencrypted();
    let site = site(&pool, S3Backend::Embedded, none.clone()).await;
    let refused = site.backups.run(by_cli()).await;
    assert!(
        matches!(&refused, Err(Error::Conflict(message)) if message.contains("PAWFILE_BACKUP_RECIPIENTS")),
        "{refused:?}"
    );
    none.allow_unencrypted = true;
    let allowed = Backups::new(
        pool.clone(),
        site.documents.store.clone(),
        site.backups_bucket.store.clone(),
        none,
        CancellationToken::new(),
    );
    populate(&pool, &site).await;
    let report = allowed.run(by_cli()).await.unwrap().unwrap();
    let target = empty_database(&pool).await;
    let target_bucket = TestBucket::embedded().await;
    recovery::restore(
        &target,
        &target_bucket.store,
        &site.backups_bucket.store,
        Source {
            which: Which::Id(report.id),
            identities: None,
            keys: &backup_keys(),
        },
        &Quiet,
    )
    .await
    .unwrap();
    assert_eq!(all_rows(&target).await, all_rows(&pool).await);
}

/// The URL of database `name` on the test server (`DATABASE_URL` with another database).
fn url_of(name: &str) -> secrecy::SecretString {
    let mut url = url::Url::parse(&std::env::var("DATABASE_URL").expect("DATABASE_URL is set")).unwrap();
    url.set_path(name);
    secrecy::SecretString::from(url.to_string())
}

/// A scratch database URL for drills (a new, empty database).
async fn scratch_url(pool: &PgPool) -> secrecy::SecretString {
    let scratch = empty_database(pool).await;
    let name = scratch.connect_options().get_database().unwrap().to_owned();
    scratch.close().await;
    url_of(&name)
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_drill_passes_on_a_good_snapshot_and_names_a_flipped_byte(pool: PgPool) {
    let key = Key::new();
    let site = site(&pool, S3Backend::Embedded, policy(&key)).await;
    populate(&pool, &site).await;
    let snapshot = site.backups.run(by_cli()).await.unwrap().unwrap().id;
    let scratch = scratch_url(&pool).await;

    let report = site
        .backups
        .drill(&key.identities(), &scratch)
        .await
        .unwrap()
        .unwrap();
    assert!(report.passed, "{:?}", report.problems);
    assert_eq!(report.snapshot, snapshot);
    assert_eq!(report.objects, 5);
    assert!(report.rows > 10);
    assert_eq!(backup::drill::newest_passed(&pool).await.unwrap(), Some(snapshot));
    assert_eq!(
        site.backups_bucket
            .store
            .list(backup::drill::DRILL_PREFIX)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(crate::fixtures::audited(&pool, "backup_drill").await, 1);

    // The live database is never a drill's scratch database.
    let live = url_of(pool.connect_options().get_database().unwrap());
    let refused = site.backups.drill(&key.identities(), &live).await;
    assert!(
        matches!(&refused, Err(Error::Conflict(message)) if message.contains("live database")),
        "{refused:?}"
    );

    // A flipped byte in a file's backup object fails the drill, naming the object.
    let large: String =
        sqlx::query_scalar("select o.name from backup_objects o order by o.plaintext_size desc limit 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    let mut bytes = site
        .backups_bucket
        .store
        .get_bytes(&large)
        .await
        .unwrap()
        .to_vec();
    let last = bytes.len() - 100;
    bytes[last] ^= 0x80;
    site.backups_bucket
        .store
        .put_bytes(&large, Bytes::from(bytes), "application/octet-stream")
        .await
        .unwrap();
    let failed = site
        .backups
        .drill(&key.identities(), &scratch)
        .await
        .unwrap()
        .unwrap();
    assert!(!failed.passed);
    assert!(
        failed.problems.iter().any(|problem| problem.starts_with(&large)),
        "{:?}",
        failed.problems
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_drill_run_where_the_key_lives_shows_through_its_report(pool: PgPool) {
    let key = Key::new();
    let site = site(&pool, S3Backend::Embedded, policy(&key)).await;
    populate(&pool, &site).await;
    let snapshot = site.backups.run(by_cli()).await.unwrap().unwrap().id;
    let scratch = scratch_url(&pool).await;
    // No access to the live database: only the report in the bucket.
    let report = backup::drill::drill(
        &site.backups_bucket.store,
        &key.identities(),
        &backup_keys(),
        &scratch,
        None,
    )
    .await
    .unwrap();
    assert!(report.passed, "{:?}", report.problems);
    assert_eq!(backup::drill::newest_passed(&pool).await.unwrap(), None);
    assert_eq!(
        backup::drill::import_reports(&pool, &site.backups_bucket.store, &backup_keys())
            .await
            .unwrap(),
        1
    );
    assert_eq!(backup::drill::newest_passed(&pool).await.unwrap(), Some(snapshot));
    assert_eq!(
        backup::drill::import_reports(&pool, &site.backups_bucket.store, &backup_keys())
            .await
            .unwrap(),
        0,
        "imported once"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_purged_document_comes_back_into_its_pets_trash_byte_for_byte(pool: PgPool) {
    let key = Key::new();
    let site = site(&pool, S3Backend::Embedded, policy(&key)).await;
    let ids = populate(&pool, &site).await;
    let large = ids[1];
    let (original_key, original_sha): (String, Vec<u8>) =
        sqlx::query_as("select object_key, sha256 from documents where id = $1")
            .bind(large.0)
            .fetch_one(&pool)
            .await
            .unwrap();
    site.backups.run(by_cli()).await.unwrap().unwrap();

    // Still there: refused.
    let live = restore::restore_documents(
        &pool,
        &site.documents.store,
        &site.backups_bucket.store,
        Source {
            which: Which::Latest,
            identities: Some(&key.identities()),
            keys: &backup_keys(),
        },
        restore::Selection::Document(large),
    )
    .await;
    assert!(
        matches!(&live, Err(Error::Conflict(message)) if message.contains("still exists")),
        "{live:?}"
    );

    // Deleted by mistake, and the trash purged.
    let vet: uuid::Uuid = sqlx::query_scalar("select id from users where email = 'vet@riverside.example'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let vet = Actor::new(
        pawfile::auth::load_session_user(&pool, pawfile::domain::UserId(vet), 0)
            .await
            .unwrap()
            .unwrap(),
        None,
    );
    documents::set_trashed(&pool, &vet, large, true).await.unwrap();
    documents::purge_trash(&pool, &site.documents.store, Duration::ZERO)
        .await
        .unwrap();
    assert!(site.documents.store.head(&original_key).await.is_err());

    let brought = restore::restore_documents(
        &pool,
        &site.documents.store,
        &site.backups_bucket.store,
        Source {
            which: Which::Latest,
            identities: Some(&key.identities()),
            keys: &backup_keys(),
        },
        restore::Selection::Document(large),
    )
    .await
    .unwrap();
    assert_eq!(brought.len(), 1);
    assert_eq!(brought[0].was, large.0);
    let (new_key, sha, trashed): (String, Vec<u8>, bool) =
        sqlx::query_as("select object_key, sha256, deleted_at is not null from documents where id = $1")
            .bind(brought[0].now)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(trashed, "it comes back into the trash");
    assert_eq!(sha, original_sha);
    assert_eq!(
        site.documents.store.sha256_of(&new_key).await.unwrap().0.to_vec(),
        original_sha
    );
    assert_eq!(crate::fixtures::audited(&pool, "restore_from_backup").await, 1);
    // Its uploader sees it in the trash and can restore it.
    documents::set_trashed(&pool, &vet, DocumentId(brought[0].now), false)
        .await
        .unwrap();
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_hardened_mode_keeps_what_the_server_key_cannot_delete_until_prune_runs_with_a_key_that_can(
    pool: PgPool,
) {
    let key = Key::new();
    // The server: prune off, and its backup key may not delete.
    let mut server_policy = policy(&key);
    server_policy.prune = false;
    server_policy.retention = Retention {
        days: 1,
        weeks: 0,
        months: 0,
    };
    let site = site(&pool, S3Backend::Embedded, server_policy).await;
    populate(&pool, &site).await;
    site.backups_bucket.endpoint().deny("DeleteObject");
    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(site.backups.run(by_cli()).await.unwrap().unwrap().id);
    }
    assert_eq!(
        backup::list_runs(&pool, 10)
            .await
            .unwrap()
            .iter()
            .filter(|run| run.pruned)
            .count(),
        0,
        "with prune off, runs prune nothing"
    );
    // A prune with the server's key: every delete is refused, nothing is lost from the catalogue.
    let refused = site.backups.prune().await.unwrap().unwrap();
    assert_eq!(refused.snapshots, 0, "{refused:?}");
    assert!(refused.locked >= 2, "{refused:?}");
    let catalogued: i64 = sqlx::query_scalar("select count(*) from backup_objects")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        site.backups_bucket
            .store
            .list(backup::DATA_PREFIX)
            .await
            .unwrap()
            .len() as i64,
        catalogued
    );
    // `pawfile backup prune` elsewhere, with a key that may delete (or once Object Lock retention is over).
    site.backups_bucket.endpoint().allow_all();
    let pruned = site.backups.prune().await.unwrap().unwrap();
    assert_eq!(pruned.snapshots, 2, "{pruned:?}");
    let verified = verify::verify(
        &pool,
        &site.backups_bucket.store,
        &backup_keys(),
        Depth::Full(Some(&key.identities())),
    )
    .await
    .unwrap();
    assert!(verified.is_clean(), "{:?}", verified.problems);
    assert_eq!(verified.snapshots, 1);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_new_key_re_encrypts_everything_and_each_snapshot_opens_with_its_own_key(pool: PgPool) {
    let old = Key::new();
    let site = site(&pool, S3Backend::Embedded, policy(&old)).await;
    populate(&pool, &site).await;
    let first = site.backups.run(by_cli()).await.unwrap().unwrap();
    let new = Key::new();
    let rotated = Backups::new(
        pool.clone(),
        site.documents.store.clone(),
        site.backups_bucket.store.clone(),
        policy(&new),
        CancellationToken::new(),
    );
    let second = rotated.run(by_cli()).await.unwrap().unwrap();
    assert_eq!(
        second.objects_reused, 0,
        "nothing encrypted to the old key is reused: {second:?}"
    );
    assert_eq!(second.objects_copied, first.objects_copied);
    let runs = backup::list_runs(&pool, 10).await.unwrap();
    assert_eq!(runs[0].recipients, new.recipients.fingerprint());
    assert_eq!(runs[1].recipients, old.recipients.fingerprint());
    // The new snapshot opens with the new key only; the old one with the old key.
    for (snapshot, right, wrong) in [(second.id, &new, &old), (first.id, &old, &new)] {
        let target = empty_database(&pool).await;
        let bucket = TestBucket::embedded().await;
        let refused = recovery::restore(
            &target,
            &bucket.store,
            &site.backups_bucket.store,
            Source {
                which: Which::Id(snapshot),
                identities: Some(&wrong.identities()),
                keys: &backup_keys(),
            },
            &Quiet,
        )
        .await;
        assert!(refused.is_err());
        recovery::restore(
            &target,
            &bucket.store,
            &site.backups_bucket.store,
            Source {
                which: Which::Id(snapshot),
                identities: Some(&right.identities()),
                keys: &backup_keys(),
            },
            &Quiet,
        )
        .await
        .unwrap();
    }
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_run_that_died_after_storing_its_manifest_is_settled_as_complete(pool: PgPool) {
    let key = Key::new();
    let site = site(&pool, S3Backend::Embedded, policy(&key)).await;
    populate(&pool, &site).await;
    let first = site.backups.run(by_cli()).await.unwrap().unwrap();
    // As if the process died between writing the manifest and committing its row.
    sqlx::query("update backup_runs set status = 'running', finished_at = null where id = $1")
        .bind(first.id)
        .execute(&pool)
        .await
        .unwrap();
    site.backups.run(by_cli()).await.unwrap().unwrap();
    let runs = backup::list_runs(&pool, 10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert!(
        runs.iter().all(|run| run.status == backup::RunStatus::Complete),
        "{runs:?}"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_restore_deletes_again_the_accounts_deleted_after_its_snapshot(pool: PgPool) {
    let key = Key::new();
    let site = site(&pool, S3Backend::Embedded, policy(&key)).await;
    populate(&pool, &site).await;
    site.backups.run(by_cli()).await.unwrap().unwrap();
    // After the snapshot Alice deletes her account, and her grace period ends.
    let alice: uuid::Uuid = sqlx::query_scalar("select id from users where email = 'alice@example.org'")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query("update users set deletion_requested_at = now() - interval '31 days' where id = $1")
        .bind(alice)
        .execute(&pool)
        .await
        .unwrap();
    let deleted = pawfile::deletion::purge_due(
        &pool,
        &site.documents.store,
        &site.backups_bucket.store,
        &backup_keys(),
        Duration::from_secs(3600),
    )
    .await
    .unwrap();
    assert_eq!(deleted, 1);

    let (target, restored_bucket, report) = restore_latest_into(&pool, &site, &key).await;

    assert_eq!(report.deletions_reapplied, 1);
    let (email, deleted): (String, bool) =
        sqlx::query_as("select email, deleted_at is not null from users where id = $1")
            .bind(alice)
            .fetch_one(&target)
            .await
            .unwrap();
    assert_eq!((email.ends_with("@deleted.invalid"), deleted), (true, true));
    let hers: i64 = sqlx::query_scalar("select count(*) from documents where uploaded_by = $1")
        .bind(alice)
        .fetch_one(&target)
        .await
        .unwrap();
    assert_eq!(hers, 0, "her uploads are purged from the restored installation");
    let left: Vec<String> = sqlx::query_scalar("select object_key from documents")
        .fetch_all(&target)
        .await
        .unwrap();
    let mut expected = left;
    expected.sort();
    let keys: Vec<String> = restored_bucket
        .keys()
        .await
        .into_iter()
        .filter(|key| key.starts_with("documents/"))
        .collect();
    assert_eq!(
        keys, expected,
        "the restored bucket holds only the documents still recorded"
    );
}

/// `manifest`, encrypted to `key`'s public half as anyone who can read the bucket could (the recipients
/// are public): what someone holding only the backup bucket's credentials can write.
fn encrypted_to(key: &Key, manifest: &backup::manifest::Manifest) -> Vec<u8> {
    let mut sealer = key.recipients.sealer().unwrap();
    let mut ciphertext = sealer
        .push(Bytes::from(serde_json::to_vec(manifest).unwrap()))
        .unwrap()
        .to_vec();
    ciphertext.extend_from_slice(&sealer.finish().unwrap());
    ciphertext
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn forged_manifests_drill_reports_and_deletion_markers_are_refused_and_named(pool: PgPool) {
    let key = Key::new();
    let site = site(&pool, S3Backend::Embedded, policy(&key)).await;
    populate(&pool, &site).await;
    let real = site.backups.run(by_cli()).await.unwrap().unwrap().id;
    let store = &site.backups_bucket.store;
    let real_name: String = sqlx::query_scalar("select manifest_object from backup_runs where id = $1")
        .bind(real)
        .fetch_one(&pool)
        .await
        .unwrap();
    let manifest = restore::read_manifest(store, &real_name, Some(&key.identities()), &backup_keys())
        .await
        .unwrap();

    // Someone with only the bucket's credentials: a newer snapshot (unsigned, then signed by a key of
    // their own), a plaintext one, the real one copied under a new name, a passed drill dated 2099 that
    // would stop drills for good, and a deletion marker for an account nobody deleted.
    let mut newer = manifest.clone();
    newer.snapshot = uuid::Uuid::now_v7();
    newer.taken_at = time::macros::datetime!(2099-01-01 0:00 UTC);
    newer.tables.clear();
    newer.objects.clear();
    let forged = encrypted_to(&key, &newer);
    let theirs = backup::BackupKeys::new(Some(backup::SigningKey::generate()), Vec::new());
    let put = |name: &'static str, bytes: Vec<u8>| async move {
        store
            .put_bytes(name, Bytes::from(bytes), "application/octet-stream")
            .await
            .unwrap();
    };
    put("manifests/forged", forged.clone()).await;
    put(
        "manifests/forged-signed",
        theirs.seal("manifests/forged-signed", &forged).unwrap(),
    )
    .await;
    put("manifests/plain", serde_json::to_vec(&newer).unwrap()).await;
    put(
        "manifests/copied",
        store.get_bytes(&real_name).await.unwrap().to_vec(),
    )
    .await;
    let drill = backup::drill::DrillReport {
        id: uuid::Uuid::now_v7(),
        snapshot: real,
        at: time::macros::datetime!(2099-01-01 0:00 UTC),
        passed: true,
        rows: 1,
        objects: 1,
        problems: Vec::new(),
    };
    let drill_name: &'static str = Box::leak(format!("drills/{}", drill.id.simple()).into_boxed_str());
    put(drill_name, serde_json::to_vec(&drill).unwrap()).await;
    let bob: uuid::Uuid = sqlx::query_scalar("select id from users where email = 'vet@riverside.example'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let marker_name: &'static str = Box::leak(format!("deletions/{bob}").into_boxed_str());
    put(
        marker_name,
        serde_json::json!({ "account": bob, "deleted_at": 0 })
            .to_string()
            .into_bytes(),
    )
    .await;

    // Verification names each one.
    let verified = verify::verify(&pool, store, &backup_keys(), Depth::Presence)
        .await
        .unwrap();
    for name in [
        "manifests/forged",
        "manifests/forged-signed",
        "manifests/plain",
        "manifests/copied",
        drill_name,
        marker_name,
    ] {
        assert!(
            verified.problems.iter().any(|problem| problem.contains(name)),
            "{name} not named: {:?}",
            verified.problems
        );
    }
    let refused: Vec<String> = backup::refusals::list(&pool)
        .await
        .unwrap()
        .into_iter()
        .map(|refusal| refusal.name)
        .collect();
    assert_eq!(refused.len(), 6, "the Backups page lists them: {refused:?}");

    // The forged drill report is not imported, so drills are not stopped.
    assert_eq!(
        backup::drill::import_reports(&pool, store, &backup_keys())
            .await
            .unwrap(),
        0
    );
    assert!(site.backups.drill_due().await.unwrap(), "a drill is still due");

    // A restore of the newest takes the real snapshot and applies no forged deletion.
    let (target, _bucket, report) = restore_latest_into(&pool, &site, &key).await;
    assert_eq!(report.snapshot, real);
    assert_eq!(
        report.unreadable_manifests.len(),
        4,
        "{:?}",
        report.unreadable_manifests
    );
    assert_eq!(report.deletions_reapplied, 0);
    assert_eq!(report.refused_markers.len(), 1, "{:?}", report.refused_markers);
    let bob_deleted: bool = sqlx::query_scalar("select deleted_at is not null from users where id = $1")
        .bind(bob)
        .fetch_one(&target)
        .await
        .unwrap();
    assert!(!bob_deleted, "nobody deleted the vet's account");
    assert_eq!(all_rows(&target).await, all_rows(&pool).await);

    // A restore that believes unsigned manifests (of backups from before signing) cannot take `latest`,
    // which would be the forged one dated 2099 …
    let lenient = backup_keys().accepting_unsigned_manifests();
    let lenient_restore = |which: Which, target: PgPool| {
        let (site, key, lenient) = (&site, &key, &lenient);
        async move {
            let bucket = TestBucket::new(S3Backend::Embedded).await;
            let result = recovery::restore(
                &target,
                &bucket.store,
                &site.backups_bucket.store,
                Source {
                    which,
                    identities: Some(&key.identities()),
                    keys: lenient,
                },
                &Quiet,
            )
            .await;
            (result, bucket)
        }
    };
    let (refused, _) = lenient_restore(Which::Latest, empty_database(&pool).await).await;
    let refused = refused.unwrap_err().to_string();
    assert!(refused.contains("must name its snapshot"), "{refused}");
    assert!(
        refused.contains(&real.to_string()),
        "the snapshots it can read are listed: {refused}"
    );
    // … and with the snapshot named it still applies no unsigned deletion marker.
    let target = empty_database(&pool).await;
    let (report, _bucket) = lenient_restore(Which::Id(real), target.clone()).await;
    let report = report.unwrap();
    assert_eq!(report.snapshot, real);
    assert_eq!(report.deletions_reapplied, 0);
    assert_eq!(report.refused_markers.len(), 1, "{:?}", report.refused_markers);
    let bob_deleted: bool = sqlx::query_scalar("select deleted_at is not null from users where id = $1")
        .bind(bob)
        .fetch_one(&target)
        .await
        .unwrap();
    assert!(!bob_deleted, "an unsigned marker deletes nobody");
    // An unsigned manifest claiming the named snapshot's id: neither is chosen.
    let mut twin = manifest.clone();
    twin.tables.clear();
    twin.objects.clear();
    put("manifests/twin", encrypted_to(&key, &twin)).await;
    let (refused, _) = lenient_restore(Which::Id(real), empty_database(&pool).await).await;
    let refused = refused.unwrap_err().to_string();
    assert!(
        refused.contains("two manifests claim to be snapshot") && refused.contains("manifests/twin"),
        "{refused}"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_plaintext_manifest_is_refused_where_backups_are_read_with_a_key(pool: PgPool) {
    let key = Key::new();
    let site = site(&pool, S3Backend::Embedded, policy(&key)).await;
    populate(&pool, &site).await;
    let real = site.backups.run(by_cli()).await.unwrap().unwrap().id;
    let store = &site.backups_bucket.store;
    let real_name: String = sqlx::query_scalar("select manifest_object from backup_runs where id = $1")
        .bind(real)
        .fetch_one(&pool)
        .await
        .unwrap();
    let manifest = restore::read_manifest(store, &real_name, Some(&key.identities()), &backup_keys())
        .await
        .unwrap();
    // Even signed with the installation's own key (as an unencrypted installation writes them).
    let plain = backup_keys()
        .seal("manifests/plain", &serde_json::to_vec(&manifest).unwrap())
        .unwrap();
    store
        .put_bytes("manifests/plain", Bytes::from(plain), "application/octet-stream")
        .await
        .unwrap();

    let read =
        restore::read_manifest(store, "manifests/plain", Some(&key.identities()), &backup_keys()).await;

    assert!(
        matches!(&read, Err(Error::Conflict(message)) if message.contains("not encrypted")),
        "{read:?}"
    );
}

/// The OS user this test runs as (the scripts give it a PostgreSQL role for the Unix socket).
fn os_user() -> String {
    let output = std::process::Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_live_database_is_refused_as_a_drill_scratch_however_it_is_reached(pool: PgPool) {
    let key = Key::new();
    let site = site(&pool, S3Backend::Embedded, policy(&key)).await;
    populate(&pool, &site).await;
    site.backups.run(by_cli()).await.unwrap().unwrap();
    let name = pool.connect_options().get_database().unwrap().to_owned();
    let url = url::Url::parse(&std::env::var("DATABASE_URL").unwrap()).unwrap();
    let port = url.port().unwrap_or(5432);
    let spellings = [
        format!(
            "postgres:///{name}?host=/var/run/postgresql&port={port}&user={}",
            os_user()
        ),
        format!("postgres://pawfile:pawfile@127.0.0.1:{port}/{name}?sslmode=disable"),
        format!("postgres://pawfile:pawfile@localhost:{port}/{name}?sslmode=disable"),
        format!("postgres://pawfile:pawfile@[::1]:{port}/{name}?sslmode=disable"),
    ];
    for spelling in spellings {
        let refused = site
            .backups
            .drill(&key.identities(), &secrecy::SecretString::from(spelling.clone()))
            .await;
        assert!(
            matches!(&refused, Err(Error::Conflict(message)) if message.contains("live database")),
            "{spelling}: {refused:?}"
        );
    }
    let users: i64 = sqlx::query_scalar("select count(*) from users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(users > 0, "nothing was dropped");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_drill_empties_its_scratch_database_afterwards(pool: PgPool) {
    let key = Key::new();
    let site = site(&pool, S3Backend::Embedded, policy(&key)).await;
    populate(&pool, &site).await;
    site.backups.run(by_cli()).await.unwrap().unwrap();
    let scratch = scratch_url(&pool).await;

    let report = site
        .backups
        .drill(&key.identities(), &scratch)
        .await
        .unwrap()
        .unwrap();

    assert!(report.passed, "{:?}", report.problems);
    let scratch_pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(secrecy::ExposeSecret::expose_secret(&scratch))
        .await
        .unwrap();
    let tables: i64 = sqlx::query_scalar("select count(*) from pg_tables where schemaname = 'public'")
        .fetch_one(&scratch_pool)
        .await
        .unwrap();
    assert_eq!(tables, 0, "no restored record stays in the scratch database");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_daily_re_read_covers_every_object_within_the_retention_and_finds_damage(pool: PgPool) {
    let key = Key::new();
    let mut policy = policy(&key);
    policy.retention = "2d".parse().unwrap();
    let site = site(&pool, S3Backend::Embedded, policy).await;
    populate(&pool, &site).await;
    site.backups.run(by_cli()).await.unwrap().unwrap();
    let total: i64 = sqlx::query_scalar("select count(*) from backup_objects")
        .fetch_one(&pool)
        .await
        .unwrap();

    let first = site.backups.reread_share().await.unwrap().unwrap();
    let second = site.backups.reread_share().await.unwrap().unwrap();

    assert_eq!(first.read as i64, (total + 1) / 2);
    assert!(first.problems.is_empty() && second.problems.is_empty());
    let unread: i64 = sqlx::query_scalar("select count(*) from backup_objects where last_read_at is null")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(unread, 0, "every object read within the two days");

    // Damage one object: the next day's share (the least recently read first) finds it.
    let damaged: String =
        sqlx::query_scalar("select name from backup_objects order by plaintext_size desc limit 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    let mut bytes = site
        .backups_bucket
        .store
        .get_bytes(&damaged)
        .await
        .unwrap()
        .to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    site.backups_bucket
        .store
        .put_bytes(&damaged, Bytes::from(bytes), "application/octet-stream")
        .await
        .unwrap();
    sqlx::query("update backup_objects set last_read_at = null where name = $1")
        .bind(&damaged)
        .execute(&pool)
        .await
        .unwrap();

    let third = site.backups.reread_share().await.unwrap().unwrap();

    assert_eq!(third.problems.len(), 1, "{:?}", third.problems);
    assert!(third.problems[0].starts_with(&damaged));
    let missing: bool =
        sqlx::query_scalar("select missing_since is not null from backup_objects where name = $1")
            .bind(&damaged)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(missing, "marked for the next backup to store again");
    let damage: Option<String> = sqlx::query_scalar("select damage from backup_objects where name = $1")
        .bind(&damaged)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        damage.is_some_and(|why| why.contains("SHA-256")),
        "what is wrong is kept for the Backups page"
    );
    assert!(
        backup::refusals::list(&pool).await.unwrap().is_empty(),
        "a damaged object is not one someone else wrote"
    );

    // The next backup stores it again (the altered object is there, of the right size: not reused),
    // and the re-read then finds it whole.
    site.backups.run(by_cli()).await.unwrap().unwrap();
    let (missing, damage): (bool, Option<String>) =
        sqlx::query_as("select missing_since is not null, damage from backup_objects where name = $1")
            .bind(&damaged)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(!missing && damage.is_none(), "stored again");
    sqlx::query("update backup_objects set last_read_at = null where name = $1")
        .bind(&damaged)
        .execute(&pool)
        .await
        .unwrap();
    let fourth = site.backups.reread_share().await.unwrap().unwrap();
    assert!(fourth.problems.is_empty(), "{:?}", fourth.problems);
}

#[tokio::test]
async fn the_embedded_store_keeps_its_credentials_so_a_dead_runs_upload_can_still_be_aborted() {
    use pawfile::storage::{EmbeddedS3, ObjectStore};
    let folder = tempfile::tempdir().unwrap();
    let root = folder.path().join("backup-s3");
    let first = EmbeddedS3::start_persistent(&root).await.unwrap();
    let store = ObjectStore::connect(&first.settings("backups")).await;
    store.create_bucket_if_missing().await.unwrap();
    let mut writer = store.writer("data/left-behind");
    writer.write(Bytes::from(vec![7u8; PART_SIZE + 1])).await.unwrap();
    let upload_id = writer.upload_id().expect("a multipart upload").to_owned();
    // The process dies: nothing aborts the upload.
    writer.keep();
    let credentials = first.settings("backups").credentials.unwrap();
    drop(first);

    let second = EmbeddedS3::start_persistent(&root).await.unwrap();
    let again = second.settings("backups").credentials.unwrap();
    assert_eq!(again.access_key_id, credentials.access_key_id);
    let store = ObjectStore::connect(&second.settings("backups")).await;

    store.abort_upload("data/left-behind", &upload_id).await.unwrap();

    use std::os::unix::fs::PermissionsExt;
    let file = folder.path().join("backup-s3.credentials");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_sign_in_during_the_purge_cancels_the_deletion_whole(pool: PgPool) {
    let key = Key::new();
    let site = site(&pool, S3Backend::Embedded, policy(&key)).await;
    populate(&pool, &site).await;
    let alice: uuid::Uuid = sqlx::query_scalar("select id from users where email = 'alice@example.org'")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query("update users set deletion_requested_at = now() - interval '31 days' where id = $1")
        .bind(alice)
        .execute(&pool)
        .await
        .unwrap();
    // A sign-in cancelling the deletion holds the account's row while the purge comes for it.
    let mut signing_in = pool.begin().await.unwrap();
    sqlx::query("update users set deletion_requested_at = null where id = $1")
        .bind(alice)
        .execute(&mut *signing_in)
        .await
        .unwrap();
    let purge = tokio::spawn({
        let (pool, documents, backups) = (
            pool.clone(),
            site.documents.store.clone(),
            site.backups_bucket.store.clone(),
        );
        async move {
            pawfile::deletion::purge_due(
                &pool,
                &documents,
                &backups,
                &backup_keys(),
                Duration::from_secs(3600),
            )
            .await
        }
    });
    // The purge waits on the row (a lock wait on its `for update`) …
    let started = std::time::Instant::now();
    loop {
        let waiting: bool = sqlx::query_scalar(
            "select exists (select from pg_stat_activity
                             where datname = current_database() and wait_event_type = 'Lock'
                               and query ilike '%for update%')",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if waiting {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the purge never reached the account"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // … and has written no record yet: it writes one only once it holds the row and the deletion is
    // still due (a record of a cancelled deletion, left behind where it cannot be removed, would make
    // a later restore delete her).
    assert!(
        site.backups_bucket
            .store
            .list(backup::markers::DELETIONS_PREFIX)
            .await
            .unwrap()
            .is_empty(),
        "no record while the deletion may still be cancelled"
    );
    signing_in.commit().await.unwrap();

    let deleted = purge.await.unwrap().unwrap();

    assert_eq!(deleted, 0, "the signed-in account stays");
    let email: String = sqlx::query_scalar("select email from users where id = $1")
        .bind(alice)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(email, "alice@example.org", "whole, not pseudonymised");
    assert!(
        site.backups_bucket
            .store
            .list(backup::markers::DELETIONS_PREFIX)
            .await
            .unwrap()
            .is_empty(),
        "no record is left for a restore to delete her with"
    );
}
