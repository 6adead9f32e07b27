//! The access rules for pets, sharing, walk-in patients and claim codes.

use crate::fixtures::{HASHER, audited, clinic, owner, pet, pet_details, staff, user};
use pawfile::{
    access::{Need, require_pet},
    auth::{Registration, load_session_user, register_owner},
    domain::{Email, OwnerContact, PetId, Role},
    error::Error,
    pets, records,
};
use sqlx::PgPool;

fn contact() -> OwnerContact {
    OwnerContact {
        name: "Walter Walkin".into(),
        email: Email::parse("walter@example.org").unwrap(),
    }
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn an_owner_cannot_reach_another_owners_pet_by_any_operation(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let bob = owner(&pool, "bob@example.org").await;
    let riverside = clinic(&pool, "Riverside").await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;

    let attempts: Vec<Result<(), Error>> = vec![
        pets::view_pet(&pool, &bob, biscuit).await.map(drop),
        pets::update_pet(&pool, &bob, biscuit, &pet_details("Stolen")).await,
        pets::set_archived(&pool, &bob, biscuit, true).await,
        pets::share_pet(&pool, &bob, biscuit, riverside).await,
        pets::revoke_share(&pool, &bob, biscuit, riverside).await,
        pets::access_history(&pool, &bob, biscuit).await.map(drop),
        records::list_records(&pool, &bob, biscuit).await.map(drop),
    ];

    for result in attempts {
        assert!(matches!(result, Err(Error::NotFound)), "{result:?}");
    }
    assert_eq!(
        audited(&pool, "access_denied").await,
        7,
        "every attempt is on record"
    );
    let view = pets::view_pet(&pool, &alice, biscuit).await.unwrap();
    assert_eq!(view.details.name, "Biscuit", "nothing changed");
    assert!(view.shares.is_empty());
    assert!(pets::list_own_pets(&pool, &bob, true).await.unwrap().is_empty());
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_missing_pet_and_a_forbidden_pet_look_the_same(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let bob = owner(&pool, "bob@example.org").await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;

    let forbidden = pets::view_pet(&pool, &bob, biscuit).await.unwrap_err();
    let missing = pets::view_pet(&pool, &bob, PetId::new()).await.unwrap_err();

    assert_eq!(forbidden.to_string(), missing.to_string());
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn staff_reach_a_pet_only_while_it_is_shared_with_their_clinic(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let riverside = clinic(&pool, "Riverside").await;
    let hillside = clinic(&pool, "Hillside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let other_vet = staff(&pool, "vet@hillside.example", hillside).await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;

    assert!(matches!(
        pets::view_pet(&pool, &vet, biscuit).await,
        Err(Error::NotFound)
    ));

    pets::share_pet(&pool, &alice, biscuit, riverside).await.unwrap();
    let seen = pets::view_pet(&pool, &vet, biscuit).await.unwrap();
    assert_eq!(seen.permissions.clinic, Some(riverside));
    assert!(!seen.permissions.owner);
    assert_eq!(pets::search_patients(&pool, &vet, "").await.unwrap().len(), 1);
    assert!(
        matches!(
            pets::view_pet(&pool, &other_vet, biscuit).await,
            Err(Error::NotFound)
        ),
        "only the clinic shared with"
    );
    assert!(
        pets::search_patients(&pool, &other_vet, "")
            .await
            .unwrap()
            .is_empty()
    );

    pets::revoke_share(&pool, &alice, biscuit, riverside)
        .await
        .unwrap();

    assert!(
        matches!(pets::view_pet(&pool, &vet, biscuit).await, Err(Error::NotFound)),
        "revoking ends access at once"
    );
    assert!(pets::search_patients(&pool, &vet, "").await.unwrap().is_empty());
    assert!(matches!(
        records::create_record(&pool, &vet, biscuit, &crate::records::visit()).await,
        Err(Error::NotFound)
    ));
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn staff_may_read_but_not_manage_a_shared_pet(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let riverside = clinic(&pool, "Riverside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    pets::share_pet(&pool, &alice, biscuit, riverside).await.unwrap();

    for result in [
        pets::update_pet(&pool, &vet, biscuit, &pet_details("Renamed")).await,
        pets::set_archived(&pool, &vet, biscuit, true).await,
        pets::revoke_share(&pool, &vet, biscuit, riverside).await,
        pets::access_history(&pool, &vet, biscuit).await.map(drop),
    ] {
        assert!(matches!(result, Err(Error::Forbidden(_))), "{result:?}");
    }
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn admins_do_not_read_medical_content_unless_also_staff(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let riverside = clinic(&pool, "Riverside").await;
    let admin = user(&pool, "admin@example.org", &[Role::Admin], None).await;
    let manager = user(
        &pool,
        "manager@riverside.example",
        &[Role::Admin, Role::Staff],
        Some(riverside),
    )
    .await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    pets::share_pet(&pool, &alice, biscuit, riverside).await.unwrap();

    assert!(matches!(
        pets::view_pet(&pool, &admin, biscuit).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        records::list_records(&pool, &admin, biscuit).await,
        Err(Error::NotFound)
    ));
    assert!(
        pets::view_pet(&pool, &manager, biscuit).await.is_ok(),
        "an admin who is also the clinic's staff"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn archived_pets_leave_the_lists_and_come_back(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let riverside = clinic(&pool, "Riverside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    pet(&pool, &alice, "Miso").await;
    pets::share_pet(&pool, &alice, biscuit, riverside).await.unwrap();

    pets::set_archived(&pool, &alice, biscuit, true).await.unwrap();

    let listed: Vec<String> = pets::list_own_pets(&pool, &alice, false)
        .await
        .unwrap()
        .into_iter()
        .map(|pet| pet.name)
        .collect();
    assert_eq!(listed, vec!["Miso"]);
    let all = pets::list_own_pets(&pool, &alice, true).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.iter().any(|pet| pet.name == "Biscuit" && pet.archived));
    assert!(pets::search_patients(&pool, &vet, "").await.unwrap().is_empty());
    assert!(
        pets::view_pet(&pool, &alice, biscuit)
            .await
            .unwrap()
            .archived_at
            .is_some(),
        "history is kept"
    );

    pets::set_archived(&pool, &alice, biscuit, false).await.unwrap();

    assert_eq!(pets::list_own_pets(&pool, &alice, false).await.unwrap().len(), 2);
    assert_eq!(pets::search_patients(&pool, &vet, "").await.unwrap().len(), 1);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn pets_are_never_deleted(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;

    let err = sqlx::query("delete from pets where id = $1")
        .bind(biscuit.0)
        .execute(&pool)
        .await
        .unwrap_err();

    assert!(err.to_string().contains("never deleted"), "{err}");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn clinics_search_patients_by_pet_owner_email_and_microchip(pool: PgPool) {
    let riverside = clinic(&pool, "Riverside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let alice = owner(&pool, "alice@example.org").await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    pets::share_pet(&pool, &alice, biscuit, riverside).await.unwrap();
    let mut walk_in = pet_details("Pepper");
    walk_in.microchip = Some(pawfile::domain::Microchip::parse("900111222333444").unwrap());
    pets::register_walk_in(&pool, &vet, &walk_in, &contact())
        .await
        .unwrap();

    let names = |query: &'static str| {
        let pool = pool.clone();
        let vet = vet.clone();
        async move {
            let mut names: Vec<String> = pets::search_patients(&pool, &vet, query)
                .await
                .unwrap()
                .into_iter()
                .map(|pet| pet.name)
                .collect();
            names.sort();
            names
        }
    };
    assert_eq!(names("").await, vec!["Biscuit", "Pepper"]);
    assert_eq!(names("bisc").await, vec!["Biscuit"]);
    assert_eq!(names("ALICE").await, vec!["Biscuit"], "owner name");
    assert_eq!(names("alice@example").await, vec!["Biscuit"], "owner e-mail");
    assert_eq!(names("walter").await, vec!["Pepper"], "a walk-in's contact name");
    assert_eq!(names("walter@example.org").await, vec!["Pepper"]);
    assert_eq!(
        names("900 111 222").await,
        vec!["Pepper"],
        "microchip prefix, spaces ignored"
    );
    assert_eq!(names("%").await, Vec::<String>::new(), "wildcards are literal");
    assert_eq!(names("bi").await, vec!["Biscuit"], "shorter than a trigram");
    assert_eq!(
        names("9001112223334445").await,
        Vec::<String>::new(),
        "longer than a microchip"
    );

    // Only this clinic's live, unarchived patients, however many others match.
    let elsewhere = clinic(&pool, "Elsewhere").await;
    let bob = owner(&pool, "bob@example.org").await;
    let other_biscuit = pet(&pool, &bob, "Biscuit Two").await;
    pets::share_pet(&pool, &bob, other_biscuit, elsewhere)
        .await
        .unwrap();
    let former = pet(&pool, &bob, "Biscuit Three").await;
    pets::share_pet(&pool, &bob, former, riverside).await.unwrap();
    pets::revoke_share(&pool, &bob, former, riverside).await.unwrap();
    let archived = pet(&pool, &alice, "Biscuit Four").await;
    pets::share_pet(&pool, &alice, archived, riverside).await.unwrap();
    pets::set_archived(&pool, &alice, archived, true).await.unwrap();
    let shared = pet(&pool, &bob, "Biscuit Five").await;
    pets::share_pet(&pool, &bob, shared, riverside).await.unwrap();
    assert_eq!(names("biscuit").await, vec!["Biscuit", "Biscuit Five"]);
    assert_eq!(
        names("bob@").await,
        vec!["Biscuit Five"],
        "a claimed pet by its owner's e-mail"
    );
    assert_eq!(names("").await, vec!["Biscuit", "Biscuit Five", "Pepper"]);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_walk_in_patient_is_shared_at_once_and_claimed_once(pool: PgPool) {
    let riverside = clinic(&pool, "Riverside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let walter = owner(&pool, "walter@example.org").await;
    let someone = owner(&pool, "someone@example.org").await;

    let issued = pets::register_walk_in(&pool, &vet, &pet_details("Pepper"), &contact())
        .await
        .unwrap();

    let seen = pets::view_pet(&pool, &vet, issued.pet_id).await.unwrap();
    assert_eq!(seen.owner_id, None);
    assert_eq!(seen.owner_name.as_deref(), Some("Walter Walkin"));
    assert!(seen.claim_code_expires.is_some());
    assert!(matches!(
        pets::view_pet(&pool, &walter, issued.pet_id).await,
        Err(Error::NotFound)
    ));

    // Typing variations are forgiven.
    let claimed = pets::claim_pet(
        &pool,
        &pawfile::rate_limit::AccountLimits::DEFAULT,
        &walter,
        &issued.code.to_lowercase().replace('-', " "),
    )
    .await
    .unwrap();

    assert_eq!(claimed, issued.pet_id);
    let mine = pets::view_pet(&pool, &walter, claimed).await.unwrap();
    assert!(mine.permissions.owner);
    assert_eq!(mine.shares.len(), 1, "still shared with the clinic");
    let again = pets::claim_pet(
        &pool,
        &pawfile::rate_limit::AccountLimits::DEFAULT,
        &someone,
        &issued.code,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&again, Error::Invalid(invalid) if invalid.field == "code"),
        "{again:?}"
    );
    assert!(matches!(
        pets::view_pet(&pool, &someone, claimed).await,
        Err(Error::NotFound)
    ));
    assert!(
        matches!(
            pets::reissue_claim_code(&pool, &vet, claimed).await,
            Err(Error::Conflict(_))
        ),
        "no new codes for a claimed pet"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_claim_code_works_only_for_its_pet_and_only_until_it_expires_or_is_replaced(pool: PgPool) {
    let riverside = clinic(&pool, "Riverside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let walter = owner(&pool, "walter@example.org").await;
    let pepper = pets::register_walk_in(&pool, &vet, &pet_details("Pepper"), &contact())
        .await
        .unwrap();
    let salt = pets::register_walk_in(&pool, &vet, &pet_details("Salt"), &contact())
        .await
        .unwrap();

    // Pepper's code takes Pepper, not Salt.
    assert_eq!(
        pets::claim_pet(
            &pool,
            &pawfile::rate_limit::AccountLimits::DEFAULT,
            &walter,
            &pepper.code
        )
        .await
        .unwrap(),
        pepper.pet_id
    );
    assert!(matches!(
        pets::view_pet(&pool, &walter, salt.pet_id).await,
        Err(Error::NotFound)
    ));

    // An expired code does nothing.
    sqlx::query("update pet_claim_codes set expires_at = now() - interval '1 second' where pet_id = $1")
        .bind(salt.pet_id.0)
        .execute(&pool)
        .await
        .unwrap();
    assert!(matches!(
        pets::claim_pet(
            &pool,
            &pawfile::rate_limit::AccountLimits::DEFAULT,
            &walter,
            &salt.code
        )
        .await,
        Err(Error::Invalid(_))
    ));

    // A re-issued code works; the one it replaced does not.
    let fresh = pets::reissue_claim_code(&pool, &vet, salt.pet_id).await.unwrap();
    let second_owner = owner(&pool, "second@example.org").await;
    sqlx::query("update pet_claim_codes set expires_at = now() + interval '1 day' where pet_id = $1")
        .bind(salt.pet_id.0)
        .execute(&pool)
        .await
        .unwrap();
    assert!(
        matches!(
            pets::claim_pet(
                &pool,
                &pawfile::rate_limit::AccountLimits::DEFAULT,
                &second_owner,
                &salt.code
            )
            .await,
            Err(Error::Invalid(_))
        ),
        "replaced"
    );
    assert_eq!(
        pets::claim_pet(
            &pool,
            &pawfile::rate_limit::AccountLimits::DEFAULT,
            &second_owner,
            &fresh.code
        )
        .await
        .unwrap(),
        salt.pet_id
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn guessing_claim_codes_is_rate_limited(pool: PgPool) {
    let mallory = owner(&pool, "mallory@example.org").await;
    for _ in 0..pawfile::rate_limit::AccountLimits::DEFAULT
        .claim_attempts_per_user
        .max_hits
    {
        assert!(matches!(
            pets::claim_pet(
                &pool,
                &pawfile::rate_limit::AccountLimits::DEFAULT,
                &mallory,
                "AAAA-BBBB-CCCC"
            )
            .await,
            Err(Error::Invalid(_))
        ));
    }

    let err = pets::claim_pet(
        &pool,
        &pawfile::rate_limit::AccountLimits::DEFAULT,
        &mallory,
        "AAAA-BBBB-CCCD",
    )
    .await
    .unwrap_err();

    assert!(matches!(err, Error::RateLimited { .. }), "{err:?}");
    assert_eq!(
        audited(&pool, "claim_failed").await,
        pawfile::rate_limit::AccountLimits::DEFAULT
            .claim_attempts_per_user
            .max_hits
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn registering_with_a_claim_code_takes_the_pet_or_creates_nothing(pool: PgPool) {
    let riverside = clinic(&pool, "Riverside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let issued = pets::register_walk_in(&pool, &vet, &pet_details("Pepper"), &contact())
        .await
        .unwrap();
    let registration = |email: &'static str, code: &'static str| Registration {
        email,
        display_name: "Walter",
        password: "correct horse battery",
        claim_code: Some(code),
        client_addr: None,
    };

    let err = register_owner(
        &pool,
        &HASHER,
        &pawfile::rate_limit::AccountLimits::DEFAULT,
        registration("walter@example.org", "ZZZZ-ZZZZ-ZZZZ"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(invalid) if invalid.field == "claim_code"),
        "{err:?}"
    );
    let users: i64 = sqlx::query_scalar("select count(*) from users where email = 'walter@example.org'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(users, 0, "no account without the pet");

    let code: &'static str = Box::leak(issued.code.clone().into_boxed_str());
    register_owner(
        &pool,
        &HASHER,
        &pawfile::rate_limit::AccountLimits::DEFAULT,
        registration("walter@example.org", code),
    )
    .await
    .unwrap();
    let verified =
        crate::fixtures::confirm_sign_up(&pool, "walter@example.org", "correct horse battery").await;
    assert_eq!(verified.claim, Some(Some(issued.pet_id)));
    let walter = verified.user_id;

    let walter =
        pawfile::access::Actor::new(load_session_user(&pool, walter, 0).await.unwrap().unwrap(), None);
    assert!(
        require_pet(&pool, &walter, issued.pet_id, Need::Own)
            .await
            .is_ok()
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn owners_see_who_accessed_their_pet(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let riverside = clinic(&pool, "Riverside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    pets::view_pet(&pool, &alice, biscuit).await.unwrap();
    pets::share_pet(&pool, &alice, biscuit, riverside).await.unwrap();

    pets::view_pet(&pool, &vet, biscuit).await.unwrap();
    pets::view_pet(&pool, &vet, biscuit).await.unwrap();
    records::create_record(&pool, &vet, biscuit, &crate::records::visit())
        .await
        .unwrap();

    let history = pets::access_history(&pool, &alice, biscuit).await.unwrap();
    let lines: Vec<(String, String)> = history
        .iter()
        .map(|entry| (entry.actor.clone().unwrap(), entry.action.clone()))
        .collect();
    assert_eq!(
        lines,
        vec![
            ("vet".to_owned(), "create_record".to_owned()),
            ("vet".to_owned(), "view_pet".to_owned())
        ],
        "the owner's own actions are left out; a repeated view within 10 minutes counts once"
    );
    assert_eq!(history[0].actor_clinic.as_deref(), Some("Riverside"));
    assert!(
        history
            .iter()
            .all(|entry| entry.client_addr.is_none() && entry.actor_email.is_none())
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn only_owners_add_pets_and_only_staff_register_walk_ins(pool: PgPool) {
    let riverside = clinic(&pool, "Riverside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let alice = owner(&pool, "alice@example.org").await;

    assert!(matches!(
        pets::create_pet(&pool, &vet, &pet_details("Nope")).await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        pets::register_walk_in(&pool, &alice, &pet_details("Nope"), &contact()).await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        pets::search_patients(&pool, &alice, "").await,
        Err(Error::Forbidden(_))
    ));
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn sharing_with_a_clinic_that_does_not_exist_is_refused(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;

    let err = pets::share_pet(&pool, &alice, biscuit, pawfile::domain::ClinicId::new())
        .await
        .unwrap_err();

    assert!(
        matches!(&err, Error::Invalid(invalid) if invalid.field == "clinic_id"),
        "{err:?}"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_view_is_audited_once_per_window_then_again_and_housekeeping_drops_ended_windows(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    let age_the_windows = || async {
        sqlx::query("update audit_view_marks set until = now() - interval '1 second'")
            .execute(&pool)
            .await
            .unwrap()
            .rows_affected()
    };

    // Reloads within the window, several at once, make one entry.
    let views = (0..4).map(|_| pets::view_pet(&pool, &alice, biscuit));
    for view in futures::future::join_all(views).await {
        view.unwrap();
    }
    pets::view_pet(&pool, &alice, biscuit).await.unwrap();
    assert_eq!(audited(&pool, "view_pet").await, 1);

    // Once the window has ended, the next view is recorded again.
    assert_eq!(age_the_windows().await, 1);
    pets::view_pet(&pool, &alice, biscuit).await.unwrap();
    pets::view_pet(&pool, &alice, biscuit).await.unwrap();
    assert_eq!(audited(&pool, "view_pet").await, 2);

    // Housekeeping deletes the marks of ended windows and keeps the open ones.
    let report = pawfile::tasks::housekeeping_once(&pool).await.unwrap().unwrap();
    assert_eq!(report.ended_view_marks, 0);
    age_the_windows().await;
    let report = pawfile::tasks::housekeeping_once(&pool).await.unwrap().unwrap();
    assert_eq!(report.ended_view_marks, 1);
    let marks: i64 = sqlx::query_scalar("select count(*) from audit_view_marks")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(marks, 0);
    assert_eq!(audited(&pool, "view_pet").await, 2, "the trail itself is kept");
}
