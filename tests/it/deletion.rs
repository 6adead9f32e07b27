//! Owners deleting their own account: the grace period, cancelling by signing in, and what remains.

use crate::fixtures::{HASHER, clinic, owner, pet, staff};
use pawfile::{
    access::{Need, require_pet},
    auth::{self, SignInAttempt, SignInOutcome, load_session_user, sign_in},
    deletion,
    domain::DocumentId,
    error::Error,
    pets, records,
    testing::{S3Backend, TestBucket},
};
use sqlx::PgPool;
use std::time::Duration;

const LIMITS: pawfile::rate_limit::AccountLimits = pawfile::rate_limit::AccountLimits::DEFAULT;

async fn sign_in_as(pool: &PgPool, email: &str) -> SignInOutcome {
    sign_in(
        pool,
        &HASHER,
        &LIMITS,
        SignInAttempt {
            email,
            password: "correct horse battery",
            code: None,
            client_addr: None,
        },
    )
    .await
    .unwrap()
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_deleted_owner_leaves_only_what_a_clinic_wrote_and_a_pseudonym(pool: PgPool) {
    let bucket = TestBucket::new(S3Backend::Embedded).await;
    let backups = TestBucket::new(S3Backend::Embedded).await;
    let alice = owner(&pool, "alice@example.org").await;
    let riverside = clinic(&pool, "Riverside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    let pepper = pet(&pool, &alice, "Pepper").await;
    pets::share_pet(&pool, &alice, biscuit, riverside).await.unwrap();
    pets::share_pet(&pool, &alice, pepper, riverside).await.unwrap();
    records::create_record(&pool, &vet, biscuit, &crate::records::visit())
        .await
        .unwrap();
    let mut uploads: Vec<DocumentId> = Vec::new();
    for (pet, name) in [(biscuit, "biscuit-scan.pdf"), (pepper, "pepper-scan.pdf")] {
        let id = crate::home::document(&pool, pet, &alice, name, false, 5).await;
        bucket
            .store
            .put_bytes(
                &format!("documents/{id}"),
                bytes::Bytes::from_static(b"%PDF-1.7 scan"),
                "application/pdf",
            )
            .await
            .unwrap();
        uploads.push(id);
    }
    let audit_rows: i64 = sqlx::query_scalar("select count(*) from audit_events where actor_id = $1")
        .bind(alice.user.id.0)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(audit_rows > 0);

    // The password is asked again; the request ends every session.
    let wrong = deletion::request_deletion(&pool, &HASHER, &LIMITS, &alice, "not my password").await;
    assert!(
        matches!(&wrong, Err(Error::Invalid(invalid)) if invalid.field == "password"),
        "{wrong:?}"
    );
    let vet_refused =
        deletion::request_deletion(&pool, &HASHER, &LIMITS, &vet, "correct horse battery").await;
    assert!(matches!(vet_refused, Err(Error::Forbidden(_))), "{vet_refused:?}");
    deletion::request_deletion(&pool, &HASHER, &LIMITS, &alice, "correct horse battery")
        .await
        .unwrap();
    assert!(
        load_session_user(&pool, alice.user.id, 0)
            .await
            .unwrap()
            .is_none()
    );

    // Signing in within the grace period cancels it.
    let SignInOutcome::SignedIn {
        deletion_cancelled, ..
    } = sign_in_as(&pool, "alice@example.org").await
    else {
        panic!("the owner can still sign in");
    };
    assert!(deletion_cancelled);
    let alice = crate::fixtures::actor_of(&pool, alice.user.id).await;
    deletion::request_deletion(&pool, &HASHER, &LIMITS, &alice, "correct horse battery")
        .await
        .unwrap();
    // Not yet due: nothing happens.
    assert_eq!(
        deletion::purge_due(
            &pool,
            &bucket.store,
            &backups.store,
            &pawfile::testing::backup_keys(),
            Duration::from_secs(3600),
        )
        .await
        .unwrap(),
        0
    );
    sqlx::query("update users set deletion_requested_at = now() - interval '31 days' where id = $1")
        .bind(alice.user.id.0)
        .execute(&pool)
        .await
        .unwrap();

    assert_eq!(
        deletion::purge_due(
            &pool,
            &bucket.store,
            &backups.store,
            &pawfile::testing::backup_keys(),
            Duration::from_secs(3600),
        )
        .await
        .unwrap(),
        1
    );

    // The person is gone: a pseudonym, no sign-in.
    let (email, name, deleted): (String, String, bool) =
        sqlx::query_as("select email, display_name, deleted_at is not null from users where id = $1")
            .bind(alice.user.id.0)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(email, format!("deleted-{}@deleted.invalid", alice.user.id.0));
    assert_eq!(
        backups.keys().await,
        [format!("deletions/{}", alice.user.id.0)],
        "recorded for restores from older snapshots"
    );
    assert_eq!((name.as_str(), deleted), ("Deleted account", true));
    assert!(matches!(
        sign_in_as(&pool, "alice@example.org").await,
        SignInOutcome::Refused(_)
    ));
    // Their uploads are purged, objects and rows.
    assert!(bucket.keys().await.is_empty(), "{:?}", bucket.keys().await);
    let left: i64 = sqlx::query_scalar("select count(*) from documents")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    // Biscuit, whom the clinic wrote a record for, stays as the clinic's record, detached and archived;
    // Pepper, with nothing from a clinic, is detached too, keeps no notes or microchip, and its share
    // ended: nobody can open it.
    for (pet, kept) in [(biscuit, true), (pepper, false)] {
        let (owner, detached, archived, microchip): (Option<uuid::Uuid>, bool, bool, Option<String>) =
            sqlx::query_as(
                "select owner_id, detached_at is not null, archived_at is not null, microchip from pets where id = $1",
            )
            .bind(pet.0)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!((owner, detached, archived), (None, true, true));
        assert_eq!(microchip.is_some(), kept);
        assert_eq!(require_pet(&pool, &vet, pet, Need::Read).await.is_ok(), kept);
    }
    // The audit trail still points at the (pseudonymised) account, and never names the address.
    let after: i64 = sqlx::query_scalar("select count(*) from audit_events where actor_id = $1")
        .bind(alice.user.id.0)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(after >= audit_rows);
    let named: i64 =
        sqlx::query_scalar("select count(*) from audit_events where detail::text like '%alice@%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(named, 0);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_deletion_waits_while_the_backup_store_cannot_record_it(pool: PgPool) {
    let bucket = TestBucket::new(S3Backend::Embedded).await;
    let mut backups = TestBucket::new(S3Backend::Embedded).await;
    let alice = owner(&pool, "alice@example.org").await;
    deletion::request_deletion(&pool, &HASHER, &LIMITS, &alice, "correct horse battery")
        .await
        .unwrap();
    sqlx::query("update users set deletion_requested_at = now() - interval '31 days' where id = $1")
        .bind(alice.user.id.0)
        .execute(&pool)
        .await
        .unwrap();
    let deleted = || async {
        sqlx::query_scalar::<_, bool>("select deleted_at is not null from users where id = $1")
            .bind(alice.user.id.0)
            .fetch_one(&pool)
            .await
            .unwrap()
    };

    // Without its record a restore could bring the account back: the deletion waits.
    backups.stop_endpoint();
    let waited = deletion::purge_due(
        &pool,
        &bucket.store,
        &backups.store,
        &pawfile::testing::backup_keys(),
        Duration::from_secs(3600),
    )
    .await;
    assert_eq!(waited.unwrap(), 0);
    assert!(!deleted().await);

    backups.restart_endpoint().await;
    let done = deletion::purge_due(
        &pool,
        &bucket.store,
        &backups.store,
        &pawfile::testing::backup_keys(),
        Duration::from_secs(3600),
    )
    .await;
    assert_eq!(done.unwrap(), 1);
    assert!(deleted().await);
    assert_eq!(backups.keys().await, [format!("deletions/{}", alice.user.id.0)]);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn two_sign_ins_at_once_during_a_pending_deletion_both_sign_in(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    deletion::request_deletion(&pool, &HASHER, &LIMITS, &alice, "correct horse battery")
        .await
        .unwrap();
    // Both read the deletion as pending; the first cancels it, the second finds nothing to cancel and
    // signs in all the same (it used to be told the password was wrong).
    assert_eq!(
        auth::cancel_on_sign_in(&pool, alice.user.id, None).await.unwrap(),
        auth::SignInDeletion::Cancelled
    );
    assert_eq!(
        auth::cancel_on_sign_in(&pool, alice.user.id, None).await.unwrap(),
        auth::SignInDeletion::NotPending
    );
    // A double submit: both sign in, one of them cancelled the deletion.
    let alice = crate::fixtures::actor_of(&pool, alice.user.id).await;
    deletion::request_deletion(&pool, &HASHER, &LIMITS, &alice, "correct horse battery")
        .await
        .unwrap();
    let (first, second) = tokio::join!(
        sign_in_as(&pool, "alice@example.org"),
        sign_in_as(&pool, "alice@example.org")
    );
    let cancelled: Vec<bool> = [first, second]
        .into_iter()
        .map(|outcome| match outcome {
            SignInOutcome::SignedIn {
                deletion_cancelled, ..
            } => deletion_cancelled,
            other => panic!("refused: {other:?}"),
        })
        .collect();
    assert_eq!(cancelled.iter().filter(|c| **c).count(), 1, "{cancelled:?}");
    // A sign-in that comes while the purge holds the account's row waits, and then finds it deleted.
    let mut purge = pool.begin().await.unwrap();
    sqlx::query("select 1 from users where id = $1 for update")
        .bind(alice.user.id.0)
        .execute(&mut *purge)
        .await
        .unwrap();
    sqlx::query("update users set deletion_requested_at = now() where id = $1")
        .bind(alice.user.id.0)
        .execute(&mut *purge)
        .await
        .unwrap();
    let signing_in = tokio::spawn({
        let (pool, user) = (pool.clone(), alice.user.id);
        async move { auth::cancel_on_sign_in(&pool, user, None).await }
    });
    let started = std::time::Instant::now();
    loop {
        let waiting: bool = sqlx::query_scalar(
            "select exists (select from pg_stat_activity
                             where datname = current_database() and wait_event_type = 'Lock')",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if waiting {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the sign-in never waited"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sqlx::query("update users set deleted_at = now() where id = $1")
        .bind(alice.user.id.0)
        .execute(&mut *purge)
        .await
        .unwrap();
    purge.commit().await.unwrap();
    assert_eq!(
        signing_in.await.unwrap().unwrap(),
        auth::SignInDeletion::Deleted,
        "not signed in to a deleted account"
    );
}
