//! Medical records: who writes and edits them, optimistic concurrency, revisions kept.

use crate::fixtures::{audited, clinic, owner, pet, staff};
use pawfile::{
    domain::{RecordDetails, RecordForm, RecordKind},
    error::Error,
    pets,
    records::{self, STALE_EDIT},
};
use sqlx::PgPool;

/// A valid record from last week.
pub fn visit() -> RecordDetails {
    visit_titled("Annual check-up")
}

pub fn visit_titled(title: &str) -> RecordDetails {
    let today = time::OffsetDateTime::now_utc().date();
    RecordDetails::parse(
        &RecordForm {
            visit_date: (today - time::Duration::days(7)).to_string(),
            kind: "consultation".into(),
            title: title.into(),
            body: "Heart and lungs normal. Weight 14.2 kg.".into(),
        },
        today,
    )
    .unwrap()
}

/// Enough searches for any test.
const SEARCHES: pawfile::rate_limit::Limit =
    pawfile::rate_limit::Limit::new(1000, std::time::Duration::from_secs(60));

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn staff_write_records_that_owners_read(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let riverside = clinic(&pool, "Riverside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    pets::share_pet(&pool, &alice, biscuit, riverside).await.unwrap();

    let record = records::create_record(&pool, &vet, biscuit, &visit())
        .await
        .unwrap();

    let seen = records::view_record(&pool, &alice, record).await.unwrap();
    assert_eq!(seen.details.title, "Annual check-up");
    assert_eq!(seen.clinic_name, "Riverside");
    assert_eq!(seen.author, "vet");
    assert!(!seen.can_edit, "owners never edit records");
    assert!(records::view_record(&pool, &vet, record).await.unwrap().can_edit);
    let listed = records::list_records(&pool, &alice, biscuit).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].kind, RecordKind::Consultation);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_most_recent_visits_come_first_and_a_limit_keeps_them(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let riverside = clinic(&pool, "Riverside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    pets::share_pet(&pool, &alice, biscuit, riverside).await.unwrap();
    let today = time::OffsetDateTime::now_utc().date();
    for (days_ago, title) in [(30, "Older"), (1, "Newest"), (10, "Middle")] {
        let mut details = visit_titled(title);
        details.visit_date = today - time::Duration::days(days_ago);
        records::create_record(&pool, &vet, biscuit, &details)
            .await
            .unwrap();
    }

    let titles = |records: Vec<pawfile::domain::RecordSummary>| -> Vec<String> {
        records.into_iter().map(|record| record.title).collect()
    };
    let two = records::recent_records(&pool, &alice, biscuit, Some(2))
        .await
        .unwrap();
    assert_eq!(titles(two), ["Newest", "Middle"]);
    let all = records::recent_records(&pool, &alice, biscuit, None)
        .await
        .unwrap();
    assert_eq!(titles(all), ["Newest", "Middle", "Older"]);
    let stranger = owner(&pool, "mallory@example.org").await;
    assert!(matches!(
        records::recent_records(&pool, &stranger, biscuit, Some(2)).await,
        Err(Error::NotFound)
    ));
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn owners_cannot_write_or_edit_records(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let riverside = clinic(&pool, "Riverside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    pets::share_pet(&pool, &alice, biscuit, riverside).await.unwrap();
    let record = records::create_record(&pool, &vet, biscuit, &visit())
        .await
        .unwrap();

    let create = records::create_record(&pool, &alice, biscuit, &visit()).await;
    let edit = records::update_record(&pool, &alice, record, 1, &visit_titled("Rewritten")).await;

    assert!(matches!(create, Err(Error::Forbidden(_))), "{create:?}");
    assert!(matches!(edit, Err(Error::Forbidden(_))), "{edit:?}");
    assert_eq!(
        records::view_record(&pool, &alice, record)
            .await
            .unwrap()
            .details
            .title,
        "Annual check-up"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn staff_edit_only_their_own_clinics_records(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let riverside = clinic(&pool, "Riverside").await;
    let hillside = clinic(&pool, "Hillside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let other_vet = staff(&pool, "vet@hillside.example", hillside).await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    pets::share_pet(&pool, &alice, biscuit, riverside).await.unwrap();
    pets::share_pet(&pool, &alice, biscuit, hillside).await.unwrap();
    let record = records::create_record(&pool, &vet, biscuit, &visit())
        .await
        .unwrap();

    let seen = records::view_record(&pool, &other_vet, record).await.unwrap();
    let edit =
        records::update_record(&pool, &other_vet, record, 1, &visit_titled("Hillside's version")).await;

    assert!(!seen.can_edit);
    assert!(matches!(edit, Err(Error::Forbidden(_))), "{edit:?}");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn revoking_a_share_ends_reading_and_editing_records(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let riverside = clinic(&pool, "Riverside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    pets::share_pet(&pool, &alice, biscuit, riverside).await.unwrap();
    let record = records::create_record(&pool, &vet, biscuit, &visit())
        .await
        .unwrap();

    pets::revoke_share(&pool, &alice, biscuit, riverside)
        .await
        .unwrap();

    assert!(matches!(
        records::view_record(&pool, &vet, record).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        records::update_record(&pool, &vet, record, 1, &visit_titled("Too late")).await,
        Err(Error::NotFound)
    ));
    assert!(
        records::view_record(&pool, &alice, record).await.is_ok(),
        "the owner keeps the history"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn every_edit_keeps_the_earlier_version_and_stale_edits_are_refused(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let riverside = clinic(&pool, "Riverside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let nurse = staff(&pool, "nurse@riverside.example", riverside).await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    pets::share_pet(&pool, &alice, biscuit, riverside).await.unwrap();
    let record = records::create_record(&pool, &vet, biscuit, &visit())
        .await
        .unwrap();

    // Both open version 1; the nurse saves first.
    assert_eq!(
        records::update_record(&pool, &nurse, record, 1, &visit_titled("Check-up, weight added"))
            .await
            .unwrap(),
        2
    );
    let stale = records::update_record(&pool, &vet, record, 1, &visit_titled("Vet's stale edit")).await;

    assert!(
        matches!(&stale, Err(Error::Conflict(message)) if message == STALE_EDIT),
        "{stale:?}"
    );
    assert_eq!(
        records::update_record(&pool, &vet, record, 2, &visit_titled("Check-up, final"))
            .await
            .unwrap(),
        3
    );
    let seen = records::view_record(&pool, &alice, record).await.unwrap();
    assert_eq!(seen.version, 3);
    assert_eq!(seen.details.title, "Check-up, final");
    assert_eq!(seen.updated_by, "vet");
    let history: Vec<(i32, String, String)> = seen
        .revisions
        .iter()
        .map(|revision| {
            (
                revision.version,
                revision.details.title.clone(),
                revision.edited_by.clone(),
            )
        })
        .collect();
    assert_eq!(
        history,
        vec![
            (2, "Check-up, weight added".to_owned(), "nurse".to_owned()),
            (1, "Annual check-up".to_owned(), "vet".to_owned()),
        ]
    );
    assert_eq!(audited(&pool, "update_record").await, 2);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn simultaneous_edits_of_one_version_save_exactly_once(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let riverside = clinic(&pool, "Riverside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    pets::share_pet(&pool, &alice, biscuit, riverside).await.unwrap();
    let record = records::create_record(&pool, &vet, biscuit, &visit())
        .await
        .unwrap();

    let edits = (0..8).map(|i| {
        let (pool, vet) = (pool.clone(), vet.clone());
        tokio::spawn(async move {
            records::update_record(&pool, &vet, record, 1, &visit_titled(&format!("Edit {i}"))).await
        })
    });
    let results = futures::future::join_all(edits).await;

    let saved = results
        .iter()
        .filter(|result| matches!(result, Ok(Ok(2))))
        .count();
    let refused = results
        .iter()
        .filter(|result| matches!(result, Ok(Err(Error::Conflict(_)))))
        .count();
    assert_eq!((saved, refused), (1, 7));
    assert_eq!(
        records::view_record(&pool, &vet, record)
            .await
            .unwrap()
            .revisions
            .len(),
        1
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn records_and_their_revisions_are_never_deleted_or_rewritten(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let riverside = clinic(&pool, "Riverside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    pets::share_pet(&pool, &alice, biscuit, riverside).await.unwrap();
    let record = records::create_record(&pool, &vet, biscuit, &visit())
        .await
        .unwrap();
    records::update_record(&pool, &vet, record, 1, &visit_titled("Second"))
        .await
        .unwrap();

    for statement in [
        "delete from medical_records",
        "delete from medical_record_revisions",
        "update medical_record_revisions set title = 'forged'",
    ] {
        let err = sqlx::query(statement).execute(&pool).await.unwrap_err();
        assert!(err.to_string().contains("never deleted"), "{statement}: {err}");
    }
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn viewing_a_record_is_audited_once_per_window(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let riverside = clinic(&pool, "Riverside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    pets::share_pet(&pool, &alice, biscuit, riverside).await.unwrap();
    let record = records::create_record(&pool, &vet, biscuit, &visit())
        .await
        .unwrap();

    for _ in 0..3 {
        records::view_record(&pool, &vet, record).await.unwrap();
    }
    records::view_record(&pool, &alice, record).await.unwrap();

    assert_eq!(
        audited(&pool, "view_record").await,
        2,
        "once per person within the window"
    );
}

fn record_about(title: &str, body: &str) -> RecordDetails {
    let today = time::OffsetDateTime::now_utc().date();
    RecordDetails::parse(
        &RecordForm {
            visit_date: (today - time::Duration::days(3)).to_string(),
            kind: "lab_result".into(),
            title: title.into(),
            body: body.into(),
        },
        today,
    )
    .unwrap()
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn records_are_found_by_their_words_only_by_those_who_may_read_them(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let bob = owner(&pool, "bob@example.org").await;
    let riverside = clinic(&pool, "Riverside").await;
    let hillside = clinic(&pool, "Hillside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let other_vet = staff(&pool, "vet@hillside.example", hillside).await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    let rex = pet(&pool, &bob, "Rex").await;
    pets::share_pet(&pool, &alice, biscuit, riverside).await.unwrap();
    pets::share_pet(&pool, &bob, rex, hillside).await.unwrap();
    let found = records::create_record(
        &pool,
        &vet,
        biscuit,
        &record_about(
            "Blood panel",
            "Mild anaemia; the kidneys look fine. Recheck in two weeks.",
        ),
    )
    .await
    .unwrap();
    records::create_record(
        &pool,
        &other_vet,
        rex,
        &record_about("Blood panel", "Anaemia again, worse than last month."),
    )
    .await
    .unwrap();

    // English stemming: "kidney" finds "kidneys"; the owner and the clinic both find it.
    for reader in [&alice, &vet] {
        let hits = records::search_records(&pool, reader, "english", "kidney", SEARCHES)
            .await
            .unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].id, found);
        assert_eq!(hits[0].pet_name, "Biscuit");
        let marked: Vec<&str> = hits[0]
            .passage
            .iter()
            .filter(|part| part.hit)
            .map(|part| part.text.as_str())
            .collect();
        assert_eq!(marked, ["kidneys"]);
        let text: String = hits[0].passage.iter().map(|part| part.text.as_str()).collect();
        assert!(text.contains("the kidneys look fine"), "{text}");
    }
    // "anaemia" is in both records; each reader gets only the one they may read.
    let for_alice = records::search_records(&pool, &alice, "english", "anaemia", SEARCHES)
        .await
        .unwrap();
    assert_eq!(for_alice.iter().map(|hit| hit.id).collect::<Vec<_>>(), [found]);
    let for_bob = records::search_records(&pool, &bob, "english", "anaemia", SEARCHES)
        .await
        .unwrap();
    assert_eq!(for_bob.len(), 1);
    assert_eq!(for_bob[0].pet_name, "Rex");
    assert!(
        records::search_records(&pool, &other_vet, "english", "kidney", SEARCHES)
            .await
            .unwrap()
            .is_empty()
    );
    // A share that ends ends the clinic's results.
    pets::revoke_share(&pool, &alice, biscuit, riverside)
        .await
        .unwrap();
    assert!(
        records::search_records(&pool, &vet, "english", "kidney", SEARCHES)
            .await
            .unwrap()
            .is_empty()
    );
    // Each search is audited with its count, never its words.
    let detail: Vec<serde_json::Value> =
        sqlx::query_scalar("select detail from audit_events where action = 'search_records' order by id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(detail.len(), 6);
    assert_eq!(detail[0], serde_json::json!({ "results": 1 }));
    assert!(!detail.iter().any(|detail| detail.to_string().contains("kidney")));
    // Nothing to search for: nothing found, nothing audited; text that is not a query is no error.
    assert!(
        records::search_records(&pool, &alice, "english", "  ", SEARCHES)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        records::search_records(&pool, &alice, "english", "\"( & | !", SEARCHES)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(audited(&pool, "search_records").await, 7);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_search_language_is_a_setting_that_moves_every_record(pool: PgPool) {
    let alice = owner(&pool, "alice@example.org").await;
    let riverside = clinic(&pool, "Riverside").await;
    let vet = staff(&pool, "vet@riverside.example", riverside).await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    pets::share_pet(&pool, &alice, biscuit, riverside).await.unwrap();
    records::create_record(
        &pool,
        &vet,
        biscuit,
        &record_about("Wounds", "Two wounds were cleaned."),
    )
    .await
    .unwrap();
    // English stems "wounds" to "wound"; the simple configuration keeps words as they are.
    assert_eq!(
        records::search_records(&pool, &alice, "english", "wound", SEARCHES)
            .await
            .unwrap()
            .len(),
        1
    );

    assert_eq!(records::use_search_language(&pool, "simple").await.unwrap(), 1);
    assert_eq!(
        records::use_search_language(&pool, "simple").await.unwrap(),
        0,
        "nothing left to move"
    );
    assert!(
        records::search_records(&pool, &alice, "simple", "wound", SEARCHES)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        records::search_records(&pool, &alice, "simple", "wounds", SEARCHES)
            .await
            .unwrap()
            .len(),
        1
    );
    // New records use it too.
    records::create_record(
        &pool,
        &vet,
        biscuit,
        &record_about("Stitches", "Stitches removed."),
    )
    .await
    .unwrap();
    let languages: Vec<String> =
        sqlx::query_scalar("select distinct search_language::text from medical_records")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(languages, ["simple"]);

    let err = records::use_search_language(&pool, "klingon").await.unwrap_err();
    assert!(
        err.to_string().contains("PAWFILE_SEARCH_LANGUAGE")
            || format!("{err:?}").contains("PAWFILE_SEARCH_LANGUAGE"),
        "{err:?}"
    );
}
