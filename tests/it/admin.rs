//! Administration: clinics, staff accounts, disabling accounts, the audit trail.

use crate::fixtures::{HASHER, clinic, owner, pet, user};
use pawfile::{
    admin,
    audit::{Action, Filter},
    auth::{
        SignInAttempt, SignInOutcome, StaffInvitation, accept_invitation, invitation, invite_staff,
        load_session_user, sign_in,
    },
    domain::{ClinicName, DisplayName, Email, Role},
    error::Error,
    pets,
};
use sqlx::PgPool;

fn staff_invitation(email: &str, clinic: pawfile::domain::ClinicId) -> StaffInvitation {
    StaffInvitation {
        email: Email::parse(email).unwrap(),
        display_name: DisplayName::parse("Nina Nurse").unwrap(),
        clinic_id: clinic,
        also_admin: false,
    }
}

/// The token of the newest invitation queued for `email` (no sender runs in these tests).
async fn invitation_token(pool: &PgPool, email: &str) -> String {
    sqlx::query_scalar(
        "select message->>'token' from mail_outbox
         where recipient = $1 and kind = 'staff_invitation' order by id desc limit 1",
    )
    .bind(email)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn only_admins_administer(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let riverside = clinic(&pool, "Riverside").await;

    let results = [
        admin::create_clinic(&pool, &alice, &ClinicName::parse("Mine").unwrap())
            .await
            .map(drop),
        admin::list_clinics(&pool, &alice).await.map(drop),
        invite_staff(&pool, &alice, staff_invitation("x@example.org", riverside)).await,
        admin::list_users(&pool, &alice, "").await.map(drop),
        admin::disable_user(&pool, &alice, alice.user.id).await,
        admin::audit_trail(&pool, &alice, &Filter::default(), 1)
            .await
            .map(drop),
    ];

    for result in results {
        assert!(matches!(result, Err(Error::Forbidden(_))), "{result:?}");
    }
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn admins_create_clinics_and_their_staff(pool: PgPool) {
    let root = user(&pool, "root@example.org", &[Role::Admin], None).await;

    let riverside = admin::create_clinic(&pool, &root, &ClinicName::parse("Riverside").unwrap())
        .await
        .unwrap();
    let duplicate = admin::create_clinic(&pool, &root, &ClinicName::parse("RIVERSIDE").unwrap()).await;
    invite_staff(&pool, &root, staff_invitation("nina@example.org", riverside))
        .await
        .unwrap();
    // A second invitation replaces the first.
    let first = invitation_token(&pool, "nina@example.org").await;
    invite_staff(&pool, &root, staff_invitation("nina@example.org", riverside))
        .await
        .unwrap();
    let token = invitation_token(&pool, "nina@example.org").await;
    assert!(invitation(&pool, &first).await.is_err(), "replaced");
    let view = invitation(&pool, &token).await.unwrap();
    assert_eq!(
        (
            view.email.as_str(),
            view.display_name.as_str(),
            view.clinic_name.as_str()
        ),
        ("nina@example.org", "Nina Nurse", "Riverside")
    );
    let too_short = accept_invitation(&pool, &HASHER, &token, "short", None).await;
    assert!(
        matches!(&too_short, Err(Error::Invalid(invalid)) if invalid.field == "password"),
        "{too_short:?}"
    );
    let nina = accept_invitation(&pool, &HASHER, &token, "initial password", None)
        .await
        .unwrap();
    let again = accept_invitation(&pool, &HASHER, &token, "another password", None).await;
    assert!(
        matches!(&again, Err(Error::Invalid(invalid)) if invalid.field == "token"),
        "{again:?}"
    );
    let taken = invite_staff(&pool, &root, staff_invitation("nina@example.org", riverside)).await;
    assert!(
        matches!(&taken, Err(Error::Invalid(invalid)) if invalid.field == "email"),
        "{taken:?}"
    );

    assert!(matches!(duplicate, Err(Error::Conflict(_))));
    let clinics = admin::list_clinics(&pool, &root).await.unwrap();
    assert_eq!((clinics[0].name.as_str(), clinics[0].staff), ("Riverside", 1));
    let outcome = sign_in(
        &pool,
        &HASHER,
        &pawfile::rate_limit::AccountLimits::DEFAULT,
        SignInAttempt {
            email: "nina@example.org",
            password: "initial password",
            code: None,
            client_addr: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        outcome,
        SignInOutcome::SignedIn {
            user_id: nina,
            generation: 0,
            deletion_cancelled: false,
        }
    );
    let nina = load_session_user(&pool, nina, 0).await.unwrap().unwrap();
    assert_eq!(nina.clinic_name.as_deref(), Some("Riverside"));
    assert!(nina.has_role(Role::Staff));
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn disabling_an_account_ends_its_sessions_but_not_ones_own(pool: PgPool) {
    let root = user(&pool, "root@example.org", &[Role::Admin], None).await;
    let alice = owner(&pool, "alice@example.org").await;

    admin::disable_user(&pool, &root, alice.user.id).await.unwrap();
    let own = admin::disable_user(&pool, &root, root.user.id).await;

    assert!(
        load_session_user(&pool, alice.user.id, 0)
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(own, Err(Error::Conflict(_))));
    let listed = admin::list_users(&pool, &root, "alice").await.unwrap();
    assert!(listed[0].disabled_at.is_some());
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_audit_trail_filters_and_pages(pool: PgPool) {
    let root = user(&pool, "root@example.org", &[Role::Admin], None).await;
    let alice = owner(&pool, "alice@example.org").await;
    let bob = owner(&pool, "bob@example.org").await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    pet(&pool, &bob, "Rex").await;
    for _ in 0..60 {
        pets::update_pet(&pool, &alice, biscuit, &crate::fixtures::pet_details("Biscuit"))
            .await
            .unwrap();
    }

    let by_bob = admin::audit_trail(
        &pool,
        &root,
        &Filter {
            actor: Some("BOB@".into()),
            ..Filter::default()
        },
        1,
    )
    .await
    .unwrap();
    assert_eq!(by_bob.entries.len(), 1);
    assert_eq!(by_bob.entries[0].action, "create_pet");
    assert_eq!(by_bob.entries[0].actor_email.as_deref(), Some("bob@example.org"));

    let for_biscuit = Filter {
        pet: Some(biscuit),
        action: Some(Action::UpdatePet),
        ..Filter::default()
    };
    let first = admin::audit_trail(&pool, &root, &for_biscuit, 1).await.unwrap();
    let second = admin::audit_trail(&pool, &root, &for_biscuit, 2).await.unwrap();
    assert_eq!((first.entries.len(), first.has_more), (50, true));
    assert_eq!((second.entries.len(), second.has_more), (10, false));
    assert!(
        first.entries[0].at.utc >= first.entries[49].at.utc,
        "newest first"
    );

    let future = Filter {
        from: Some(time::OffsetDateTime::now_utc() + time::Duration::hours(1)),
        ..Filter::default()
    };
    assert!(
        admin::audit_trail(&pool, &root, &future, 1)
            .await
            .unwrap()
            .entries
            .is_empty()
    );
    let past = Filter {
        until: Some(time::OffsetDateTime::now_utc() - time::Duration::hours(1)),
        ..Filter::default()
    };
    assert!(
        admin::audit_trail(&pool, &root, &past, 1)
            .await
            .unwrap()
            .entries
            .is_empty()
    );
}
