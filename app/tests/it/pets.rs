//! The access rules through every server function over HTTP, the stale-save refusal, and the plain-form
//! flows of issue 3.

use crate::support::{PASSWORD, spawn_app};
use pawfile::domain::Role;
use reqwest::{Client, StatusCode};
use serde_json::Value;
use sqlx::PgPool;

async fn post(client: &Client, url: String, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = client.post(url).form(form).send().await.unwrap();
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn get(client: &Client, url: String) -> (StatusCode, Value) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

const PET: &[(&str, &str)] = &[
    ("name", "Biscuit"),
    ("species", "dog"),
    ("microchip", "276098106512345"),
];

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn every_pet_function_answers_404_for_another_owners_pet(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.create_user("alice@example.org", &[Role::Owner], None).await;
    app.create_user("bob@example.org", &[Role::Owner], None).await;
    let riverside = app.create_clinic("Riverside").await;
    let alice = app.browser_for("alice@example.org").await;
    let bob = app.browser_for("bob@example.org").await;
    let (status, pet) = post(&alice, app.url("/api/pets/create"), PET).await;
    assert_eq!(status, StatusCode::OK);
    let pet = pet.as_str().unwrap().to_owned();
    let clinic = riverside.to_string();
    let (status, _) = post(
        &alice,
        app.url("/api/pets/share"),
        &[("pet_id", &pet), ("clinic_id", &clinic)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, record) = post(
        &alice,
        app.url("/api/records/create"),
        &[
            ("pet_id", &pet),
            ("visit_date", "2026-01-02"),
            ("kind", "consultation"),
            ("title", "x"),
        ],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "owners never write records: {record}"
    );

    let mut update = vec![("pet_id", pet.as_str())];
    update.extend_from_slice(PET);
    let attempts = [
        get(&bob, app.url(&format!("/api/pets/get?pet_id={pet}"))).await,
        get(&bob, app.url(&format!("/api/pets/history?pet_id={pet}"))).await,
        post(&bob, app.url("/api/pets/update"), &update).await,
        post(&bob, app.url("/api/pets/archive"), &[("pet_id", &pet)]).await,
        post(&bob, app.url("/api/pets/restore"), &[("pet_id", &pet)]).await,
        post(
            &bob,
            app.url("/api/pets/share"),
            &[("pet_id", &pet), ("clinic_id", &clinic)],
        )
        .await,
        post(
            &bob,
            app.url("/api/pets/revoke"),
            &[("pet_id", &pet), ("clinic_id", &clinic)],
        )
        .await,
        post(&bob, app.url("/api/pets/claim-code"), &[("pet_id", &pet)]).await,
        post(
            &bob,
            app.url("/api/records/create"),
            &[
                ("pet_id", &pet),
                ("visit_date", "2026-01-02"),
                ("kind", "consultation"),
                ("title", "x"),
            ],
        )
        .await,
    ];

    for (status, body) in attempts {
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["kind"], "not_found");
    }
    let (_, listed) = get(&bob, app.url("/api/pets?archived=true")).await;
    assert_eq!(listed, serde_json::json!([]));
    let (_, page) = get(&alice, app.url(&format!("/api/pets/get?pet_id={pet}"))).await;
    assert_eq!(page["pet"]["details"]["name"], "Biscuit", "nothing changed");
    assert_eq!(page["pet"]["shares"].as_array().unwrap().len(), 1);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn clinics_see_shared_pets_until_the_share_is_revoked(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.create_user("alice@example.org", &[Role::Owner], None).await;
    let riverside = app.create_clinic("Riverside").await;
    let hillside = app.create_clinic("Hillside").await;
    app.create_user("vet@riverside.example", &[Role::Staff], Some(riverside))
        .await;
    app.create_user("vet@hillside.example", &[Role::Staff], Some(hillside))
        .await;
    let alice = app.browser_for("alice@example.org").await;
    let vet = app.browser_for("vet@riverside.example").await;
    let other_vet = app.browser_for("vet@hillside.example").await;
    let (_, pet) = post(&alice, app.url("/api/pets/create"), PET).await;
    let pet = pet.as_str().unwrap().to_owned();
    post(
        &alice,
        app.url("/api/pets/share"),
        &[("pet_id", &pet), ("clinic_id", &riverside.to_string())],
    )
    .await;

    let (status, record) = post(
        &vet,
        app.url("/api/records/create"),
        &[
            ("pet_id", &pet),
            ("visit_date", "2026-01-02"),
            ("kind", "vaccination"),
            ("title", "Rabies"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{record}");
    let record = record.as_str().unwrap().to_owned();
    let (_, patients) = get(&vet, app.url("/api/clinic/patients?q=bisc")).await;
    assert_eq!(patients.as_array().unwrap().len(), 1);
    for (status, _) in [
        get(&other_vet, app.url(&format!("/api/pets/get?pet_id={pet}"))).await,
        get(
            &other_vet,
            app.url(&format!("/api/records/get?record_id={record}")),
        )
        .await,
    ] {
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "a clinic the pet is not shared with"
        );
    }

    post(
        &alice,
        app.url("/api/pets/revoke"),
        &[("pet_id", &pet), ("clinic_id", &riverside.to_string())],
    )
    .await;

    assert_eq!(
        get(&vet, app.url(&format!("/api/pets/get?pet_id={pet}"))).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&vet, app.url(&format!("/api/records/get?record_id={record}")))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, patients) = get(&vet, app.url("/api/clinic/patients")).await;
    assert_eq!(patients, serde_json::json!([]));
    let (status, page) = get(&alice, app.url(&format!("/api/records/get?record_id={record}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["details"]["title"], "Rabies");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_stale_record_save_answers_409_and_keeps_both_versions(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.create_user("alice@example.org", &[Role::Owner], None).await;
    let riverside = app.create_clinic("Riverside").await;
    app.create_user("vet@riverside.example", &[Role::Staff], Some(riverside))
        .await;
    let alice = app.browser_for("alice@example.org").await;
    let vet = app.browser_for("vet@riverside.example").await;
    let (_, pet) = post(&alice, app.url("/api/pets/create"), PET).await;
    let pet = pet.as_str().unwrap().to_owned();
    post(
        &alice,
        app.url("/api/pets/share"),
        &[("pet_id", &pet), ("clinic_id", &riverside.to_string())],
    )
    .await;
    let (_, record) = post(
        &vet,
        app.url("/api/records/create"),
        &[
            ("pet_id", &pet),
            ("visit_date", "2026-01-02"),
            ("kind", "consultation"),
            ("title", "First"),
        ],
    )
    .await;
    let record = record.as_str().unwrap().to_owned();
    let edit = |title: &'static str| {
        let record = record.clone();
        let vet = vet.clone();
        let url = app.url("/api/records/update");
        async move {
            post(
                &vet,
                url,
                &[
                    ("record_id", &record),
                    ("version", "1"),
                    ("visit_date", "2026-01-02"),
                    ("kind", "consultation"),
                    ("title", title),
                ],
            )
            .await
        }
    };

    assert_eq!(edit("Second").await, (StatusCode::OK, serde_json::json!(2)));
    let (status, body) = edit("Stale").await;

    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("changed since you opened it")
    );
    let (_, page) = get(&alice, app.url(&format!("/api/records/get?record_id={record}"))).await;
    assert_eq!(page["details"]["title"], "Second");
    assert_eq!(page["revisions"][0]["details"]["title"], "First");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn walk_in_registration_claim_and_registration_with_a_code(pool: PgPool) {
    let app = spawn_app(pool).await;
    let riverside = app.create_clinic("Riverside").await;
    app.create_user("vet@riverside.example", &[Role::Staff], Some(riverside))
        .await;
    let vet = app.browser_for("vet@riverside.example").await;
    let mut form = vec![
        ("owner_name", "Walter Walkin"),
        ("owner_email", "walter@example.org"),
    ];
    form.extend_from_slice(PET);
    let (status, issued) = post(&vet, app.url("/api/clinic/walk-in"), &form).await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    let code = issued["code"].as_str().unwrap().to_owned();
    let pet = issued["pet_id"].as_str().unwrap().to_owned();
    // The owner the clinic named gets the code by mail too.
    let mail = app.mail_to("walter@example.org", 1).await;
    assert!(mail[0].subject.contains("claim code"), "{}", mail[0].subject);
    assert!(mail[0].text.contains(&code), "{}", mail[0].text);
    assert!(mail[0].text.contains("Walter Walkin"), "{}", mail[0].text);

    let response = app
        .client
        .post(app.url("/api/register"))
        .form(&[
            ("email", "walter@example.org"),
            ("display_name", "Walter"),
            ("password", PASSWORD),
            ("claim_code", &code),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let owner: Option<uuid::Uuid> = sqlx::query_scalar("select owner_id from pets where id = $1::uuid")
        .bind(&pet)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(owner, None, "claimed only once the address is confirmed");

    let response = app.verify_newest("walter@example.org", PASSWORD).await;

    assert_eq!(response.status(), StatusCode::OK);
    let (status, page) = get(&app.client, app.url(&format!("/api/pets/get?pet_id={pet}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["pet"]["permissions"]["owner"], true);
    let (status, body) = post(&app.client, app.url("/api/pets/claim"), &[("code", &code)]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a code works once");
    assert_eq!(body["field"], "code");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn plain_forms_create_a_pet_and_land_on_its_page(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.signed_in_owner("alice@example.org").await;

    let response = app
        .client
        .post(app.url("/api/pets/create"))
        .header("accept", "text/html")
        .header("sec-fetch-site", "same-origin")
        .header("referer", app.url("/pets/new"))
        .form(PET)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/pets/"), "{location}");
    let page = app
        .client
        .get(app.url(&location))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Biscuit"));
    assert!(page.contains("276098106512345"));

    let bad = app
        .client
        .post(app.url("/api/pets/create"))
        .header("accept", "text/html")
        .header("sec-fetch-site", "same-origin")
        .header("referer", app.url("/pets/new"))
        .form(&[("name", "Rex"), ("species", "dog"), ("birth_date", "2999-01-01")])
        .send()
        .await
        .unwrap();
    let back = bad.headers()["location"].to_str().unwrap().to_owned();
    let page = app.client.get(&back).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("The birth date cannot be in the future."),
        "the error shows next to the form"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn pages_for_someone_elses_pet_answer_404(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.create_user("alice@example.org", &[Role::Owner], None).await;
    let alice = app.browser_for("alice@example.org").await;
    let (_, pet) = post(&alice, app.url("/api/pets/create"), PET).await;
    let pet = pet.as_str().unwrap().to_owned();
    app.signed_in_owner("bob@example.org").await;

    for path in [
        format!("/pets/{pet}"),
        format!("/pets/{pet}/edit"),
        format!("/pets/{pet}/history"),
    ] {
        let response = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(
            !response.text().await.unwrap().contains("276098106512345"),
            "nothing leaks into the page"
        );
    }
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_plain_form_walk_in_shows_the_claim_code_once_on_the_pet_page(pool: PgPool) {
    let app = spawn_app(pool).await;
    let riverside = app.create_clinic("Riverside").await;
    app.create_user("vet@riverside.example", &[Role::Staff], Some(riverside))
        .await;
    let vet = app.browser_for("vet@riverside.example").await;
    let mut form = vec![
        ("owner_name", "Walter Walkin"),
        ("owner_email", "walter@example.org"),
    ];
    form.extend_from_slice(PET);

    let response = vet
        .post(app.url("/api/clinic/walk-in"))
        .header("accept", "text/html")
        .header("sec-fetch-site", "same-origin")
        .header("referer", app.url("/clinic/walk-in"))
        .form(&form)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let pet = location
        .strip_prefix("/pets/")
        .expect("the pet's page")
        .to_owned();
    let (status, data) = get(&vet, app.url(&format!("/api/pets/get?pet_id={pet}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(data["pet"]["details"]["name"], "Biscuit");
    let page = vet
        .get(app.url(&location))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"data-testid="claim-code""#),
        "the page shows the code (the GET function above did not take it)"
    );
    let again = vet
        .get(app.url(&location))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!again.contains(r#"data-testid="claim-code""#), "shown once");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_pet_page_shows_the_recent_records_and_files_and_links_to_all_of_them(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.create_user("alice@example.org", &[Role::Owner], None).await;
    let riverside = app.create_clinic("Riverside").await;
    app.create_user("vet@riverside.example", &[Role::Staff], Some(riverside))
        .await;
    let alice = app.browser_for("alice@example.org").await;
    let vet = app.browser_for("vet@riverside.example").await;
    let (_, pet) = post(&alice, app.url("/api/pets/create"), PET).await;
    let pet = pet.as_str().unwrap().to_owned();
    let clinic = riverside.to_string();
    post(
        &alice,
        app.url("/api/pets/share"),
        &[("pet_id", &pet), ("clinic_id", &clinic)],
    )
    .await;
    for day in 1..=23 {
        let date = format!("2026-01-{day:02}");
        let title = format!("Visit {day:02}");
        let (status, _) = post(
            &vet,
            app.url("/api/records/create"),
            &[
                ("pet_id", &pet),
                ("visit_date", &date),
                ("kind", "consultation"),
                ("title", &title),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    for batch in [0..20, 20..23] {
        let mut form = reqwest::multipart::Form::new();
        for n in batch {
            let bytes = format!("%PDF-1.7\nfile {n}\n").into_bytes();
            form = form.part(
                "file",
                reqwest::multipart::Part::bytes(bytes).file_name(format!("file-{n:02}.pdf")),
            );
        }
        let response = alice
            .post(app.url(&format!("/api/pets/{pet}/documents")))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let page = |query: &'static str| {
        let request = alice.get(app.url(&format!("/pets/{pet}{query}")));
        async move { request.send().await.unwrap().text().await.unwrap() }
    };

    // The 20 latest visits and files, and a link to each whole list.
    let html = page("").await;
    assert_eq!(html.matches("href=\"/records/").count(), 20);
    assert_eq!(html.matches("data-testid=\"document\"").count(), 20);
    assert!(html.contains("Visit 23") && html.contains("Visit 04"));
    assert!(
        !html.contains("Visit 03"),
        "older visits are neither rendered nor sent for hydration"
    );
    assert!(html.contains(&format!("href=\"/pets/{pet}?records=all#records\"")));
    assert!(html.contains(&format!("href=\"/pets/{pet}?documents=all#documents\"")));

    // Following both links shows everything, without the links.
    let html = page("?records=all&documents=all").await;
    assert_eq!(html.matches("href=\"/records/").count(), 23);
    assert_eq!(html.matches("data-testid=\"document\"").count(), 23);
    assert!(!html.contains("Show all"));

    // The JSON routes page the same way.
    let (_, data) = get(&alice, app.url(&format!("/api/pets/get?pet_id={pet}"))).await;
    assert_eq!(data["records"].as_array().unwrap().len(), 20);
    assert_eq!(data["more_records"], true);
    let (_, data) = get(
        &alice,
        app.url(&format!("/api/pets/get?pet_id={pet}&all_records=true")),
    )
    .await;
    assert_eq!(data["records"].as_array().unwrap().len(), 23);
    assert_eq!(data["more_records"], false);
    let (_, listed) = get(&alice, app.url(&format!("/api/pets/{pet}/documents?limit=5"))).await;
    assert_eq!(listed.as_array().unwrap().len(), 5);
    let (_, listed) = get(&alice, app.url(&format!("/api/pets/{pet}/documents"))).await;
    assert_eq!(listed.as_array().unwrap().len(), 23);
}
