//! Storage quotas against a real Postgres and S3: space is reserved before bytes reach the store,
//! concurrent uploads cannot overshoot together, a refused upload stores nothing, the trash counts
//! until it is purged, and staff uploads count against their clinic.

use crate::fixtures::{clinic, owner, pet, staff};
use bytes::Bytes;
use futures::stream;
use pawfile::{
    documents::{
        self, Admission, UploadBatch, UploadDetails,
        quota::{self, Payer, Quotas, Reservation},
        slots::UploadSlot,
        upload::Policy,
    },
    error::Error,
    pets,
    rate_limit::Limit,
    testing::{SETTLE, TestBucket, eventually},
};
use sqlx::PgPool;
use std::{convert::Infallible, time::Duration};

const MIB: u64 = 1 << 20;
const HOUR: Duration = Duration::from_secs(60 * 60);

fn policy() -> Policy {
    Policy {
        max_bytes: 1 << 30,
        accepted: vec!["application/pdf".to_owned()],
        strip_location: true,
    }
}

fn quotas(per_owner: u64, per_clinic: u64) -> Quotas {
    Quotas {
        per_owner,
        per_clinic,
    }
}

fn pdf(size: u64) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.resize(usize::try_from(size).unwrap(), b'x');
    bytes
}

fn chunks(bytes: Vec<u8>) -> impl futures::Stream<Item = Result<Bytes, Infallible>> + Unpin {
    stream::iter(
        bytes
            .chunks(64 * 1024)
            .map(|part| Ok(Bytes::copy_from_slice(part)))
            .collect::<Vec<_>>(),
    )
}

/// Uploads one PDF of `size` bytes as `actor`, with a reservation of `declared` bytes (or growing, for
/// `None`) against `quotas`.
async fn upload(
    pool: &PgPool,
    bucket: &TestBucket,
    actor: &pawfile::access::Actor,
    pet: pawfile::domain::PetId,
    size: u64,
    declared: Option<u64>,
    quotas: &Quotas,
) -> Result<pawfile::domain::DocumentId, Error> {
    let admission = Admission {
        concurrent_uploads: 10,
        quotas: *quotas,
        allowance: Limit::new(1 << 40, HOUR),
        declared,
    };
    let mut batch = UploadBatch::admit(pool, &bucket.store, policy(), actor, pet, admission).await?;
    batch.add_file("scan.pdf", chunks(pdf(size))).await?;
    Ok(batch.finish(UploadDetails::default()).await?[0].id)
}

/// Nothing of a refused upload is left: no row, no object, no announcement, and (once its slot is
/// given back) no reservation.
async fn nothing_left_beyond(pool: &PgPool, bucket: &TestBucket, documents: i64) {
    let rows: i64 = sqlx::query_scalar("select count(*) from documents")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(rows, documents);
    let objects = bucket
        .keys()
        .await
        .into_iter()
        .filter(|key| key.starts_with("documents/"))
        .count();
    assert_eq!(objects as i64, documents, "no object beyond the rows");
    assert_eq!(bucket.pending_uploads().await, 0);
    let announced: i64 = sqlx::query_scalar("select count(*) from upload_intents")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(announced, 0);
    // The slot is given back by a task its drop spawned.
    eventually(SETTLE, "the reservation was given back", || async {
        sqlx::query_scalar::<_, i64>("select coalesce(sum(reserved_bytes), 0)::bigint from upload_slots")
            .fetch_one(pool)
            .await
            .unwrap()
            == 0
    })
    .await;
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn concurrent_reservations_cannot_overshoot_the_quota_together(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let quotas = quotas(10 * MIB, 0);
    let payer = Payer::Owner(alice.user.id);
    // Eight uploads of 3 MiB each ask at once: three fit in 10 MiB, the others must be refused.
    let attempts = (0..8).map(|_| {
        let pool = pool.clone();
        async move {
            let slot = UploadSlot::take(&pool, alice.user.id, 100).await.unwrap();
            Reservation::new(&pool, slot, payer, &quotas, 3 * MIB).await
        }
    });
    let results = futures::future::join_all(attempts).await;

    let granted: Vec<&Reservation> = results.iter().filter_map(|result| result.as_ref().ok()).collect();
    assert_eq!(granted.len(), 3);
    for refused in results.iter().filter_map(|result| result.as_ref().err()) {
        assert!(matches!(refused, Error::QuotaExceeded(_)), "{refused:?}");
    }
    let usage = quota::usage(&pool, payer, &quotas).await.unwrap();
    assert_eq!(usage.reserved, 9 * MIB);
    assert_eq!(usage.used, 0);
    drop(results);
    // Each slot is given back by a task its drop spawned.
    eventually(SETTLE, "every reservation was given back", || async {
        quota::usage(&pool, payer, &quotas).await.unwrap().reserved == 0
    })
    .await;
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_declared_upload_that_does_not_fit_is_refused_before_a_byte_is_stored(pool: PgPool) {
    let bucket = TestBucket::embedded().await;
    let alice = owner(&pool, "alice@example.org").await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    let quotas = quotas(2 * MIB, 100 * MIB);
    upload(&pool, &bucket, &alice, biscuit, MIB, Some(MIB + 1000), &quotas)
        .await
        .unwrap();

    let err = upload(&pool, &bucket, &alice, biscuit, MIB, Some(MIB + 1000), &quotas)
        .await
        .unwrap_err();

    let Error::QuotaExceeded(message) = &err else {
        panic!("{err:?}")
    };
    assert!(message.contains("use 1.0 MiB of 2.0 MiB"), "{message}");
    nothing_left_beyond(&pool, &bucket, 1).await;
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn an_upload_of_unknown_length_reserves_as_it_goes_and_stops_at_the_quota(pool: PgPool) {
    let bucket = TestBucket::embedded().await;
    let alice = owner(&pool, "alice@example.org").await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    let quotas = quotas(20 * MIB, 100 * MIB);
    // A body larger than the quota and larger than a part: refused mid-stream, nothing kept.
    let err = upload(&pool, &bucket, &alice, biscuit, 30 * MIB, None, &quotas)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::QuotaExceeded(_)), "{err:?}");
    nothing_left_beyond(&pool, &bucket, 0).await;

    // One that fits is stored whole, and then counts.
    upload(&pool, &bucket, &alice, biscuit, 12 * MIB, None, &quotas)
        .await
        .unwrap();
    let usage = quota::usage(&pool, Payer::Owner(alice.user.id), &quotas)
        .await
        .unwrap();
    assert_eq!((usage.used, usage.documents, usage.reserved), (12 * MIB, 1, 0));
    nothing_left_beyond(&pool, &bucket, 1).await;
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_document_counts_in_the_trash_until_it_is_purged(pool: PgPool) {
    let bucket = TestBucket::embedded().await;
    let alice = owner(&pool, "alice@example.org").await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    let quotas = quotas(MIB, 100 * MIB);
    let first = upload(
        &pool,
        &bucket,
        &alice,
        biscuit,
        600 * 1024,
        Some(600 * 1024),
        &quotas,
    )
    .await
    .unwrap();
    documents::set_trashed(&pool, &alice, first, true).await.unwrap();

    let refused = upload(
        &pool,
        &bucket,
        &alice,
        biscuit,
        600 * 1024,
        Some(600 * 1024),
        &quotas,
    )
    .await;
    assert!(matches!(refused, Err(Error::QuotaExceeded(_))), "{refused:?}");

    documents::purge_trash(&pool, &bucket.store, Duration::ZERO)
        .await
        .unwrap();
    upload(
        &pool,
        &bucket,
        &alice,
        biscuit,
        600 * 1024,
        Some(600 * 1024),
        &quotas,
    )
    .await
    .unwrap();
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn staff_uploads_count_against_their_clinic_and_owners_against_themselves(pool: PgPool) {
    let bucket = TestBucket::embedded().await;
    let alice = owner(&pool, "alice@example.org").await;
    let riverside = clinic(&pool, "Riverside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    pets::share_pet(&pool, &alice, biscuit, riverside).await.unwrap();
    let quotas = quotas(MIB, MIB);
    upload(
        &pool,
        &bucket,
        &alice,
        biscuit,
        700 * 1024,
        Some(700 * 1024),
        &quotas,
    )
    .await
    .unwrap();
    // The owner's quota is nearly full; the clinic's is not touched by it.
    upload(
        &pool,
        &bucket,
        &vet,
        biscuit,
        700 * 1024,
        Some(700 * 1024),
        &quotas,
    )
    .await
    .unwrap();
    let refused = upload(
        &pool,
        &bucket,
        &vet,
        biscuit,
        700 * 1024,
        Some(700 * 1024),
        &quotas,
    )
    .await;
    assert!(matches!(refused, Err(Error::QuotaExceeded(_))), "{refused:?}");

    let owner_usage = quota::usage(&pool, Payer::Owner(alice.user.id), &quotas)
        .await
        .unwrap();
    let clinic_usage = quota::usage(&pool, Payer::Clinic(riverside), &quotas)
        .await
        .unwrap();
    assert_eq!((owner_usage.used, owner_usage.documents), (700 * 1024, 1));
    assert_eq!((clinic_usage.used, clinic_usage.documents), (700 * 1024, 1));
    assert_eq!(clinic_usage.name, "Riverside");
    let vet_sees = quota::usage_of(&pool, &vet, &quotas).await.unwrap();
    assert_eq!(vet_sees, vec![clinic_usage.clone()]);
    assert!(matches!(
        quota::usage_report(&pool, &alice, &quotas).await,
        Err(Error::Forbidden(_))
    ));
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn two_uploads_of_unknown_length_that_fit_alone_never_block_each_other(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let quotas = quotas(12 * MIB, 0);
    let payer = Payer::Owner(alice.user.id);
    let reservation = || async {
        let slot = UploadSlot::take(&pool, alice.user.id, 100).await.unwrap();
        Reservation::new(&pool, slot, payer, &quotas, 0).await.unwrap()
    };
    // Two uploads of 10 MiB start, one just after the other: each reserves a step ahead of its bytes.
    let first = reservation().await;
    let second = reservation().await;
    first.arrive(&pool, MIB).await.unwrap();
    second.arrive(&pool, MIB).await.unwrap();
    assert_eq!(first.reserved(), 9 * MIB);
    assert_eq!(
        second.reserved(),
        3 * MIB,
        "what the quota leaves beside the first"
    );

    // Both now need more than they hold. The first (the older) gets it: the second's step ahead is not
    // in its way, only the MiB that arrived there.
    first.arrive(&pool, 9 * MIB).await.unwrap();
    let refused = second.arrive(&pool, 3 * MIB).await;

    assert!(matches!(refused, Err(Error::QuotaExceeded(_))), "{refused:?}");
    assert!(first.reserved() >= 10 * MIB);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn an_older_upload_goes_on_at_once_when_a_faster_younger_one_is_refused(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let quotas = quotas(20 * MIB, 0);
    let payer = Payer::Owner(alice.user.id);
    let reservation = || async {
        let slot = UploadSlot::take(&pool, alice.user.id, 100).await.unwrap();
        Reservation::new(&pool, slot, payer, &quotas, 0).await.unwrap()
    };
    let older = reservation().await;
    let younger = reservation().await;
    older.arrive(&pool, MIB).await.unwrap();
    // The younger one is faster: 8 MiB arrived while the older one has 1.
    younger.arrive(&pool, 8 * MIB).await.unwrap();
    older.arrive(&pool, 9 * MIB).await.unwrap();
    // At 12 MiB the younger no longer fits beside the older's reservation: refused.
    let refused = younger.arrive(&pool, 4 * MIB).await;
    assert!(matches!(refused, Err(Error::QuotaExceeded(_))), "{refused:?}");
    // The older goes on at once, while the refused upload's request is still unwinding (its
    // reservation not dropped yet): what the refused one held no longer counts.
    older.arrive(&pool, 3 * MIB).await.unwrap();
    older.arrive(&pool, 7 * MIB).await.unwrap();
    assert_eq!(older.reserved(), 20 * MIB);
    drop(younger);
}

/// What `admit` took before a refusal later in its order is given back: the slot and the reservation
/// when the hourly allowance refuses, and nothing is taken from the allowance when the slot or the
/// quota refuses.
#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn an_admission_refused_at_any_step_keeps_nothing_it_took(pool: PgPool) {
    let bucket = TestBucket::embedded().await;
    let alice = owner(&pool, "alice@example.org").await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    let quotas = quotas(10 * MIB, 0);
    let admit = |concurrent_uploads: usize, allowance: i64, declared: u64| {
        let (pool, store, alice) = (pool.clone(), bucket.store.clone(), alice.clone());
        async move {
            let admission = Admission {
                concurrent_uploads,
                quotas,
                allowance: Limit::new(allowance, HOUR),
                declared: Some(declared),
            };
            UploadBatch::admit(&pool, &store, policy(), &alice, biscuit, admission).await
        }
    };
    // A slot is given back by a task its drop spawns.
    let slots_given_back = || {
        eventually(SETTLE, "the slot was given back", || async {
            sqlx::query_scalar::<_, i64>("select count(*) from upload_slots")
                .fetch_one(&pool)
                .await
                .unwrap()
                == 0
        })
    };
    let allowance_used = || async {
        sqlx::query_scalar::<_, i64>("select coalesce(sum(hits), 0)::bigint from rate_limit_hits")
            .fetch_one(&pool)
            .await
            .unwrap()
    };

    // The allowance refuses 2 MiB of 1 MiB: the slot and the 2 MiB reserved are given back.
    let refused = admit(10, MIB as i64, 2 * MIB).await.unwrap_err();
    assert!(matches!(refused, Error::RateLimited { .. }), "{refused:?}");
    nothing_left_beyond(&pool, &bucket, 0).await;
    slots_given_back().await;
    assert_eq!(allowance_used().await, 0);

    // The quota refuses 11 MiB of 10: nothing is taken from the allowance, and the slot goes back.
    let refused = admit(10, 1 << 40, 11 * MIB).await.unwrap_err();
    assert!(matches!(refused, Error::QuotaExceeded(_)), "{refused:?}");
    assert_eq!(allowance_used().await, 0);
    slots_given_back().await;

    // One upload running, one allowed at once: the second is refused before it reserves or charges.
    let running = admit(1, 1 << 40, MIB).await.unwrap();
    assert_eq!(allowance_used().await, MIB as i64);
    let refused = admit(1, 1 << 40, MIB).await.unwrap_err();
    assert!(matches!(refused, Error::RateLimited { .. }), "{refused:?}");
    assert_eq!(allowance_used().await, MIB as i64);
    let reserved: i64 =
        sqlx::query_scalar("select coalesce(sum(reserved_bytes), 0)::bigint from upload_slots")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(reserved, MIB as i64, "only the running upload's reservation");
    running.discard().await;
    nothing_left_beyond(&pool, &bucket, 0).await;
}
