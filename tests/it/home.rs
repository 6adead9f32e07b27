//! Each role's start page: an owner's pet cards, a staff member's desk, the admin's glance; the pet photo.

use crate::fixtures::{clinic, owner, pet, staff, user};
use pawfile::{
    access::Actor,
    domain::{DocumentId, PetId, RecordDetails, RecordForm, Role},
    error::Error,
    home, pets, records,
};
use sqlx::PgPool;

/// A document row (the start page reads rows only), `thumbnail` saying whether it has a preview.
pub(crate) async fn document(
    pool: &PgPool,
    pet: PetId,
    by: &Actor,
    name: &str,
    thumbnail: bool,
    age_minutes: i32,
) -> DocumentId {
    let id = DocumentId::new();
    sqlx::query(
        "insert into documents (id, pet_id, uploaded_by, original_filename, content_type, size_bytes, sha256, crc32,
                                bucket, object_key, thumbnail_state, created_at)
         values ($1, $2, $3, $4, $5, 1000, $6, 0, 'documents', $7, $8, now() - make_interval(mins => $9))",
    )
    .bind(id.0)
    .bind(pet.0)
    .bind(by.user.id.0)
    .bind(name)
    .bind(if thumbnail { "image/png" } else { "application/pdf" })
    .bind(vec![0u8; 32])
    .bind(format!("documents/{id}"))
    .bind(if thumbnail { "done" } else { "none" })
    .bind(age_minutes)
    .execute(pool)
    .await
    .unwrap();
    id
}

fn visit(days_ago: i64, title: &str, body: &str) -> RecordDetails {
    let today = time::OffsetDateTime::now_utc().date();
    RecordDetails::parse(
        &RecordForm {
            visit_date: (today - time::Duration::days(days_ago)).to_string(),
            kind: "consultation".into(),
            title: title.into(),
            body: body.into(),
        },
        today,
    )
    .unwrap()
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn an_owners_home_shows_each_pet_with_its_photo_counts_and_clinics(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let bob = owner(&pool, "bob@example.org").await;
    let riverside = clinic(&pool, "Riverside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    let archived = pet(&pool, &alice, "Old Tom").await;
    pets::set_archived(&pool, &alice, archived, true).await.unwrap();
    let rex = pet(&pool, &bob, "Rex").await;
    pets::share_pet(&pool, &alice, biscuit, riverside).await.unwrap();
    records::create_record(&pool, &vet, biscuit, &visit(10, "Check-up", "All well."))
        .await
        .unwrap();
    records::create_record(&pool, &vet, biscuit, &visit(3, "Vaccination", "Rabies booster."))
        .await
        .unwrap();
    let older_photo = document(&pool, biscuit, &alice, "garden.png", true, 60).await;
    let newer_photo = document(&pool, biscuit, &alice, "sofa.png", true, 30).await;
    let x_ray = document(&pool, biscuit, &vet, "x-ray.png", true, 1).await;
    document(&pool, biscuit, &alice, "invoice.pdf", false, 5).await;
    let trashed = document(&pool, biscuit, &alice, "blurry.png", true, 2).await;
    sqlx::query("update documents set deleted_at = now() where id = $1")
        .bind(trashed.0)
        .execute(&pool)
        .await
        .unwrap();
    document(&pool, rex, &bob, "rex.png", true, 1).await;

    let cards = home::owner_pets(&pool, &alice).await.unwrap();
    assert_eq!(
        cards.iter().map(|card| card.name.as_str()).collect::<Vec<_>>(),
        ["Biscuit"]
    );
    let card = &cards[0];
    assert_eq!(card.records, 2);
    assert_eq!(card.documents, 4, "the trash is not counted");
    assert_eq!(
        card.last_visit,
        Some(time::OffsetDateTime::now_utc().date() - time::Duration::days(3))
    );
    assert_eq!(card.clinics, ["Riverside"]);
    // No photo picked: the newest photo the owner uploaded (not the clinic's x-ray, not the trash).
    assert_eq!(card.photo, Some(newer_photo));

    // The owner picks another; only photos of this pet, not in the trash, and only the owner.
    home::set_profile_photo(&pool, &alice, biscuit, older_photo)
        .await
        .unwrap();
    assert_eq!(
        home::owner_pets(&pool, &alice).await.unwrap()[0].photo,
        Some(older_photo)
    );
    home::set_profile_photo(&pool, &alice, biscuit, x_ray)
        .await
        .unwrap();
    assert_eq!(
        home::owner_pets(&pool, &alice).await.unwrap()[0].photo,
        Some(x_ray)
    );
    let flagged: i64 = sqlx::query_scalar("select count(*) from documents where profile_photo")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(flagged, 1, "one photo per pet");
    let pdf: DocumentId =
        sqlx::query_scalar("select id from documents where original_filename = 'invoice.pdf'")
            .fetch_one(&pool)
            .await
            .map(DocumentId)
            .unwrap();
    assert!(matches!(
        home::set_profile_photo(&pool, &alice, biscuit, pdf).await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        home::set_profile_photo(&pool, &alice, biscuit, trashed).await,
        Err(Error::NotFound)
    ));
    let rex_photo: DocumentId =
        sqlx::query_scalar("select id from documents where original_filename = 'rex.png'")
            .fetch_one(&pool)
            .await
            .map(DocumentId)
            .unwrap();
    assert!(matches!(
        home::set_profile_photo(&pool, &alice, biscuit, rex_photo).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        home::set_profile_photo(&pool, &alice, rex, rex_photo).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        home::set_profile_photo(&pool, &vet, biscuit, older_photo).await,
        Err(Error::Forbidden(_))
    ));
    assert_eq!(
        home::owner_pets(&pool, &alice).await.unwrap()[0].photo,
        Some(x_ray)
    );
    assert_eq!(crate::fixtures::audited(&pool, "set_profile_photo").await, 2);

    // The picked photo goes to the trash: the newest of the owner's photos again.
    sqlx::query("update documents set deleted_at = now() where id = $1")
        .bind(x_ray.0)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        home::owner_pets(&pool, &alice).await.unwrap()[0].photo,
        Some(newer_photo)
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_staff_home_shows_the_patients_they_opened_and_their_clinics_week(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let riverside = clinic(&pool, "Riverside").await;
    let hillside = clinic(&pool, "Hillside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let colleague = staff(&pool, "nurse@riverside.example", riverside).await;
    let other_vet = staff(&pool, "vet@hillside.example", hillside).await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    let pepper = pet(&pool, &alice, "Pepper").await;
    for pet in [biscuit, pepper] {
        pets::share_pet(&pool, &alice, pet, riverside).await.unwrap();
    }
    pets::share_pet(&pool, &alice, biscuit, hillside).await.unwrap();

    // Nothing opened yet.
    let desk = home::staff_desk(&pool, &vet).await.unwrap();
    assert!(desk.recent_patients.is_empty());
    assert_eq!(desk.clinic_name, "Riverside");

    pets::view_pet(&pool, &vet, pepper).await.unwrap();
    pets::view_pet(&pool, &vet, biscuit).await.unwrap();
    pets::view_pet(&pool, &colleague, pepper).await.unwrap();
    let desk = home::staff_desk(&pool, &vet).await.unwrap();
    let names: Vec<&str> = desk
        .recent_patients
        .iter()
        .map(|patient| patient.name.as_str())
        .collect();
    assert_eq!(names, ["Biscuit", "Pepper"], "most recent first");
    assert_eq!(desk.recent_patients[0].owner_name.as_deref(), Some("alice"));
    // A patient no longer shared with the clinic leaves the list.
    pets::revoke_share(&pool, &alice, biscuit, riverside)
        .await
        .unwrap();
    let desk = home::staff_desk(&pool, &vet).await.unwrap();
    assert_eq!(
        desk.recent_patients
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["Pepper"]
    );

    // The clinic's records of the week, by anyone at the clinic; not another clinic's.
    records::create_record(&pool, &colleague, pepper, &visit(1, "Dental check", "Tartar."))
        .await
        .unwrap();
    records::create_record(&pool, &other_vet, biscuit, &visit(0, "Limping", "Left foreleg."))
        .await
        .unwrap();
    let old = records::create_record(&pool, &vet, pepper, &visit(20, "Old visit", "Written long ago."))
        .await
        .unwrap();
    sqlx::query("update medical_records set created_at = now() - interval '8 days' where id = $1")
        .bind(old.0)
        .execute(&pool)
        .await
        .unwrap();
    let desk = home::staff_desk(&pool, &vet).await.unwrap();
    let titles: Vec<&str> = desk
        .this_week
        .iter()
        .map(|record| record.title.as_str())
        .collect();
    assert_eq!(titles, ["Dental check"]);
    assert_eq!(desk.this_week[0].author, "nurse");
    assert_eq!(desk.this_week[0].pet_name, "Pepper");

    // Not staff: refused.
    assert!(home::staff_desk(&pool, &alice).await.is_err());
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_admin_glance_counts_without_medical_content_and_each_role_gets_its_parts(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let riverside = clinic(&pool, "Riverside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let admin = user(&pool, "admin@example.org", &[Role::Admin], None).await;
    let vet_admin = user(
        &pool,
        "chief@riverside.example",
        &[Role::Staff, Role::Admin],
        Some(riverside),
    )
    .await;
    let gone = owner(&pool, "gone@example.org").await;
    pawfile::auth::disable_user(&pool, gone.user.id, Some(admin.user.id), None)
        .await
        .unwrap();
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    pets::share_pet(&pool, &alice, biscuit, riverside).await.unwrap();
    records::create_record(
        &pool,
        &vet,
        biscuit,
        &visit(1, "Seizure episode", "Phenobarbital started."),
    )
    .await
    .unwrap();
    pets::view_pet(&pool, &vet, biscuit).await.unwrap();
    document(&pool, biscuit, &alice, "epilepsy-diary.png", true, 1).await;
    sqlx::query("update documents set integrity_problem = 'missing object', integrity_checked_at = now()")
        .execute(&pool)
        .await
        .unwrap();

    let glance = home::system_glance(&pool, &admin).await.unwrap();
    assert_eq!(
        (glance.owners, glance.staff, glance.admins, glance.disabled),
        (1, 2, 2, 1)
    );
    assert_eq!(
        (
            glance.clinics,
            glance.documents,
            glance.stored_bytes,
            glance.integrity_problems
        ),
        (1, 1, 1000, 1)
    );
    assert!((1..=home::LATEST_EVENTS).contains(&glance.latest_events.len()));
    assert_eq!(glance.latest_events[0].action, "view_pet", "newest first");
    let shown = serde_json::to_string(&glance).unwrap();
    for medical in ["Biscuit", "Seizure", "Phenobarbital", "epilepsy"] {
        assert!(!shown.contains(medical), "{medical} in {shown}");
    }
    assert!(!shown.contains("alice@example.org"), "no e-mail addresses either");
    assert!(home::system_glance(&pool, &vet).await.is_err());

    // Each person gets the parts of their roles.
    let parts =
        |home: &pawfile::domain::Home| (home.owner.is_some(), home.staff.is_some(), home.admin.is_some());
    assert_eq!(
        parts(&home::home(&pool, &alice).await.unwrap()),
        (true, false, false)
    );
    assert_eq!(
        parts(&home::home(&pool, &vet).await.unwrap()),
        (false, true, false)
    );
    assert_eq!(
        parts(&home::home(&pool, &admin).await.unwrap()),
        (false, false, true)
    );
    assert_eq!(
        parts(&home::home(&pool, &vet_admin).await.unwrap()),
        (false, true, true)
    );
}
