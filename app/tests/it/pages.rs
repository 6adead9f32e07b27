//! Server-rendered pages: what they show to whom, and the headers that protect them.

use crate::support::spawn_app;
use reqwest::StatusCode;
use sqlx::PgPool;

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_home_page_invites_visitors_to_sign_in(pool: PgPool) {
    let app = spawn_app(pool).await;

    let response = app.client.get(app.url("/")).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    assert!(page.contains(r#"href="/login""#));
    assert!(page.contains("Create an account"));
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_home_page_shows_who_is_signed_in_and_their_role(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.signed_in_owner("olivia@example.org").await;

    let page = app
        .client
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert!(page.contains("Welcome, Olivia Owner"), "{page}");
    assert!(page.contains("olivia@example.org"));
    assert!(page.contains("Pet owner"));
    assert!(page.contains("Sign out"));
    assert!(!page.contains("Storage"), "owners do not see the admin panel");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn admins_see_the_storage_state_on_their_home_page(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.create_user("admin@example.org", &[pawfile::domain::Role::Admin], None)
        .await;
    app.login("admin@example.org", crate::support::PASSWORD).await;

    let page = app
        .client
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert!(page.contains("Administrator"));
    assert!(
        page.contains("Backups are stored on this machine"),
        "the same-machine warning"
    );
    assert!(page.contains(app.documents.store.bucket()));
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn pages_carry_a_nonce_csp_and_are_not_cached(pool: PgPool) {
    let app = spawn_app(pool).await;

    let response = app.client.get(app.url("/login")).send().await.unwrap();

    let headers = response.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a nonce");
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    let page = response.text().await.unwrap();
    assert!(
        page.contains(&format!(r#"nonce="{nonce}""#)),
        "inline scripts carry the nonce"
    );
    let other = app.client.get(app.url("/login")).send().await.unwrap();
    assert!(
        !other.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains(nonce),
        "fresh per page"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn unknown_paths_answer_404(pool: PgPool) {
    let app = spawn_app(pool).await;

    let response = app.client.get(app.url("/no/such/page")).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.text().await.unwrap().contains("Page not found"));
}

/// Each role's start page is rendered on the server with its own part and title, and nothing medical
/// reaches an administrator's.
#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn each_role_gets_its_own_start_page(pool: PgPool) {
    use pawfile::domain::Role;
    let app = spawn_app(pool).await;
    let clinic = app.create_clinic("Riverside").await;
    app.create_user("alice@example.org", &[Role::Owner], None).await;
    app.create_user("vet@riverside.example", &[Role::Staff], Some(clinic))
        .await;
    app.create_user("admin@example.org", &[Role::Admin], None).await;
    let owner = app.browser_for("alice@example.org").await;
    let pet: serde_json::Value = owner
        .post(app.url("/api/pets/create"))
        .form(&[
            ("name", "Biscuit"),
            ("species", "dog"),
            ("birth_date", "2020-01-15"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pet = pet.as_str().unwrap();
    let shared = owner
        .post(app.url("/api/pets/share"))
        .form(&[("pet_id", pet), ("clinic_id", &clinic.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(shared.status(), StatusCode::OK);
    let page = |client: reqwest::Client| {
        let url = app.url("/");
        async move {
            let response = client.get(url).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.text().await.unwrap()
        }
    };

    let home = page(owner).await;
    assert!(home.contains("<title>Your pets · Pawfile</title>"), "{home}");
    assert!(home.contains(r#"data-testid="pet-card""#));
    assert!(home.contains("0 records · 0 documents"));
    assert!(home.contains("Shared with Riverside"));
    assert!(
        home.contains(&format!(r#"action="/api/pets/{pet}/documents""#)),
        "the one-tap upload posts the file"
    );
    assert!(home.contains(r#"id="header-q""#), "owners search records");

    let vet = app.browser_for("vet@riverside.example").await;
    let opened = vet.get(app.url(&format!("/pets/{pet}"))).send().await.unwrap();
    assert_eq!(opened.status(), StatusCode::OK);
    let home = page(vet).await;
    assert!(home.contains("<title>Riverside · Pawfile</title>"), "{home}");
    assert!(home.contains(r#"data-testid="recent-patients""#), "{home}");
    assert!(home.contains("Biscuit"));
    assert!(home.contains(r#"href="/clinic/walk-in""#));

    let admin = app.browser_for("admin@example.org").await;
    let home = page(admin).await;
    assert!(
        home.contains("<title>System overview · Pawfile</title>"),
        "{home}"
    );
    assert!(home.contains("The system at a glance"));
    assert!(!home.contains("Biscuit"), "no medical content for admins");
    assert!(
        !home.contains(r#"id="header-q""#),
        "no record search for an admin without a clinic"
    );
}
