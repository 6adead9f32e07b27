//! Registration, sign-in, sessions and sign-out over HTTP, as browsers and scripts use them.

use crate::support::{PASSWORD, client_with_jar, session_set_cookie, spawn_app, spawn_app_with, test_config};
use pawfile::{auth::disable_user, domain::Role, net::TrustedProxies, rate_limit::AccountLimits};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::time::Duration;

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn signing_up_creates_an_owner_and_signs_them_in(pool: PgPool) {
    let app = spawn_app(pool).await;

    let response = app.sign_up("Olivia@Example.org", "Olivia Owner", PASSWORD).await;

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["email"], "olivia@example.org");
    assert_eq!(body["roles"], json!(["owner"]));
    let me = app.me().await.expect("registration signs the owner in");
    assert_eq!(me.display_name, "Olivia Owner");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn invalid_registrations_answer_422_naming_the_field(pool: PgPool) {
    let app = spawn_app(pool).await;
    for (email, name, password, field) in [
        ("not-an-email", "Olivia", PASSWORD, "email"),
        ("o@example.org", "", PASSWORD, "display_name"),
        ("o@example.org", "Olivia", "short", "password"),
    ] {
        let response = app.register(email, name, password).await;

        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["kind"], "invalid");
        assert_eq!(body["field"], field);
        assert!(!body["error"].as_str().unwrap().is_empty());
    }
    assert!(app.me().await.is_none());
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn registering_a_taken_address_answers_as_for_a_new_one_and_changes_nothing(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.signed_in_owner("olivia@example.org").await;
    let fresh = app
        .register("nobody@example.org", "Nobody", "another long password")
        .await;
    let (fresh_status, fresh_body) = (fresh.status(), fresh.text().await.unwrap());

    let response = app
        .register("OLIVIA@example.org", "Someone Else", "another long password")
        .await;

    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        (response.status(), response.text().await.unwrap()),
        (fresh_status, fresh_body)
    );
    let mail = app.mail_to("olivia@example.org", 2).await;
    assert!(
        mail[1].subject.contains("tried to register"),
        "{:?}",
        mail[1].subject
    );
    assert!(
        mail[1].token("/verify-email").is_none(),
        "no link that would take over the account"
    );
    let (client, _) = client_with_jar();
    let login = |password: &'static str| {
        client
            .post(app.url("/api/login"))
            .form(&[("email", "olivia@example.org"), ("password", password)])
            .send()
    };
    assert_eq!(login(PASSWORD).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        login("another long password").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let names: Vec<String> = sqlx::query_scalar("select display_name from users")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(names, ["Olivia Owner"]);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn signing_in_sets_a_http_only_same_site_cookie(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.signed_in_owner("olivia@example.org").await;
    let (client, _) = client_with_jar();

    let response = client
        .post(app.url("/api/login"))
        .form(&[("email", "olivia@example.org"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let cookie = session_set_cookie(&response).expect("a session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Max-Age") && !cookie.contains("Expires"),
        "a browser-session cookie (the server ends idle sessions): {cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP without a trusted proxy: {cookie}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["email"], "olivia@example.org");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_wrong_password_answers_401_like_an_unknown_email(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.signed_in_owner("olivia@example.org").await;
    app.logout().await;

    let wrong_password = app.login("olivia@example.org", "not the password").await;
    let unknown_email = app.login("nobody@example.org", "not the password").await;

    assert_eq!(wrong_password.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_email.status(), StatusCode::UNAUTHORIZED);
    assert!(session_set_cookie(&wrong_password).is_none());
    assert_eq!(
        wrong_password.text().await.unwrap(),
        unknown_email.text().await.unwrap()
    );
    assert!(app.me().await.is_none());
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_session_id_changes_at_sign_in(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.signed_in_owner("olivia@example.org").await;
    let before = app.session_cookie().unwrap();

    let response = app.login("olivia@example.org", PASSWORD).await;

    assert_eq!(response.status(), StatusCode::OK);
    let after = app.session_cookie().unwrap();
    assert_ne!(before, after, "a new session id at sign-in");
    assert!(
        app.me_with_cookie(&before).await.is_none(),
        "the old id is worthless"
    );
    assert!(app.me_with_cookie(&after).await.is_some());
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_session_survives_a_server_restart(pool: PgPool) {
    let app = spawn_app(pool).await;
    let owner = app.signed_in_owner("olivia@example.org").await;

    let app = app.restart().await;

    assert_eq!(app.me().await.map(|me| me.id), Some(owner.id));
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn signing_out_deletes_the_session_server_side(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.signed_in_owner("olivia@example.org").await;
    let cookie = app.session_cookie().unwrap();
    assert_eq!(app.stored_sessions().await, 1);

    let response = app.logout().await;

    assert_eq!(response.status(), StatusCode::OK);
    let removal = session_set_cookie(&response).expect("the cookie is cleared");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    assert_eq!(app.stored_sessions().await, 0);
    assert!(
        app.me_with_cookie(&cookie).await.is_none(),
        "a copied cookie is worthless after sign-out"
    );
    let last_action: String =
        sqlx::query_scalar("select action from audit_events order by at desc, id desc limit 1")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(last_action, "sign_out");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn disabling_an_account_ends_its_session_at_once(pool: PgPool) {
    let app = spawn_app(pool).await;
    let owner = app.signed_in_owner("olivia@example.org").await;

    disable_user(&app.pool, owner.id, None, None).await.unwrap();

    assert!(app.me().await.is_none());
    assert_eq!(
        app.stored_sessions().await,
        0,
        "the dead session is deleted when next seen"
    );
    let response = app.login("olivia@example.org", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("disabled"));
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn sessions_end_after_the_absolute_timeout(pool: PgPool) {
    let mut config = test_config();
    config.sessions.absolute_timeout = Duration::ZERO;
    let app = spawn_app_with(pool, config).await;
    app.signed_in_owner("olivia@example.org").await;

    // Timestamps have one-second resolution.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    assert!(app.me().await.is_none());
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_idle_timeout_sets_the_stored_expiry_of_a_browser_session_cookie(pool: PgPool) {
    let mut config = test_config();
    config.sessions.idle_timeout = Duration::from_secs(30 * 60);
    let app = spawn_app_with(pool, config).await;

    let response = app.sign_up("olivia@example.org", "Olivia", PASSWORD).await;

    let cookie = session_set_cookie(&response).unwrap();
    assert!(
        !cookie.contains("Max-Age") && !cookie.contains("Expires"),
        "{cookie}"
    );
    let seconds_left: f64 = sqlx::query_scalar(
        "select extract(epoch from expiry_date - now())::float8 from tower_sessions.session",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!((1790.0..=1800.0).contains(&seconds_left), "{seconds_left}");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn too_many_failed_sign_ins_answer_429(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.signed_in_owner("olivia@example.org").await;
    for _ in 0..AccountLimits::DEFAULT
        .sign_in_failures_per_account_and_address
        .max_hits
    {
        assert_eq!(
            app.login("olivia@example.org", "guess guess").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }

    let response = app.login("olivia@example.org", PASSWORD).await;

    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("Try again in"));
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn forwarded_headers_from_untrusted_peers_are_ignored(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.create_user("olivia@example.org", &[Role::Owner], None).await;

    let response = app
        .client
        .post(app.url("/api/login"))
        .header("x-forwarded-for", "198.51.100.7")
        .header("x-forwarded-proto", "https")
        .form(&[("email", "olivia@example.org"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let cookie = session_set_cookie(&response).unwrap();
    assert!(
        !cookie.contains("Secure"),
        "an untrusted peer cannot claim HTTPS: {cookie}"
    );
    let address: String =
        sqlx::query_scalar("select host(client_addr) from audit_events where action = 'sign_in'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(address, "127.0.0.1", "nor another address");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_trusted_proxy_sets_the_client_address_and_secure_cookie(pool: PgPool) {
    let mut config = test_config();
    config.trusted_proxies = TrustedProxies::new(vec!["127.0.0.1/32".parse().unwrap()]);
    let app = spawn_app_with(pool, config).await;
    app.create_user("olivia@example.org", &[Role::Owner], None).await;

    let response = app
        .client
        .post(app.url("/api/login"))
        .header("x-forwarded-for", "203.0.113.50, 198.51.100.7")
        .header("x-forwarded-proto", "https")
        .form(&[("email", "olivia@example.org"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let cookie = session_set_cookie(&response).unwrap();
    assert!(
        cookie.starts_with("__Host-pawfile_session=") && cookie.contains("Secure"),
        "{cookie}"
    );
    let address: String =
        sqlx::query_scalar("select host(client_addr) from audit_events where action = 'sign_in'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        address, "198.51.100.7",
        "the rightmost untrusted hop is the client"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn cross_site_posts_are_refused(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.create_user("olivia@example.org", &[Role::Owner], None).await;

    let response = app
        .client
        .post(app.url("/api/login"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("email", "olivia@example.org"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(session_set_cookie(&response).is_none());
    assert!(app.me().await.is_none());
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn plain_html_forms_are_redirected_with_the_result(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.create_user("olivia@example.org", &[Role::Owner], None).await;
    let form_post = |password: &'static str| {
        app.client
            .post(app.url("/api/login"))
            .header("accept", "text/html")
            .header("sec-fetch-site", "same-origin")
            .header("referer", app.url("/login"))
            .form(&[("email", "olivia@example.org"), ("password", password)])
            .send()
    };

    let failed = form_post("wrong password").await.unwrap();
    assert_eq!(failed.status(), StatusCode::FOUND);
    let back = failed.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        back.starts_with(&app.url("/login?")) && back.contains("__err="),
        "{back}"
    );
    let page = app.client.get(&back).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("Wrong e-mail address or password."),
        "the form shows the error"
    );

    let signed_in = form_post(PASSWORD).await.unwrap();
    assert_eq!(signed_in.status(), StatusCode::FOUND);
    assert_eq!(signed_in.headers()["location"], "/");
    assert!(app.me().await.is_some());
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn storage_status_is_for_admins_and_reports_a_dead_backup_store(pool: PgPool) {
    let mut app = spawn_app(pool).await;
    app.signed_in_owner("olivia@example.org").await;
    let as_owner = app
        .client
        .get(app.url("/api/admin/storage-status"))
        .send()
        .await
        .unwrap();
    assert_eq!(as_owner.status(), StatusCode::FORBIDDEN);
    app.logout().await;
    app.create_user("admin@example.org", &[Role::Admin], None).await;
    assert_eq!(
        app.login("admin@example.org", PASSWORD).await.status(),
        StatusCode::OK
    );

    app.backups.stop_endpoint();

    let response = app
        .client
        .get(app.url("/api/admin/storage-status"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let status: Value = response.json().await.unwrap();
    assert_eq!(status["documents"]["problem"], Value::Null);
    assert!(
        status["backups"]["problem"]
            .as_str()
            .unwrap()
            .contains("cannot reach"),
        "{status}"
    );
    assert_eq!(status["backups_on_this_machine"], true);
    // Pawfile keeps serving without its backup store.
    assert!(app.me().await.is_some());
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn anonymous_callers_get_401_from_admin_functions(pool: PgPool) {
    let app = spawn_app(pool).await;

    let response = app
        .client
        .get(app.url("/api/admin/storage-status"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["kind"], "unauthenticated");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn staff_must_set_up_two_factor_sign_in_and_then_sign_in_with_codes(pool: PgPool) {
    use pawfile::auth::two_factor::code_for;
    let mut config = test_config();
    config.sessions.require_two_factor = vec![Some(Role::Staff), Some(Role::Admin)];
    let app = spawn_app_with(pool, config).await;
    let riverside = app.create_clinic("Riverside").await;
    app.create_user("vet@example.org", &[Role::Staff], Some(riverside))
        .await;
    app.create_user("admin@example.org", &[Role::Admin], None).await;
    let vet = app.browser_for("vet@example.org").await;

    // Signed in, but nothing else works until the second factor is on.
    let me: Value = vet
        .get(app.url("/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        me["needs_two_factor_setup"], true,
        "the pages send them to set it up"
    );
    let refused = vet.get(app.url("/api/pets")).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("two-factor"), "{body}");
    let status: Value = vet
        .get(app.url("/api/account/2fa"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (status["enabled"].as_bool(), status["required"].as_bool()),
        (Some(false), Some(true))
    );
    let enrolment: Value = vet
        .post(app.url("/api/account/2fa/start"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    assert!(enrolment["qr_svg"].as_str().unwrap().contains("<svg"));
    let response = vet
        .post(app.url("/api/account/2fa/confirm"))
        .form(&[("code", code_for(&secret, 0).unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let recovery: Vec<String> = response.json().await.unwrap();
    assert_eq!(recovery.len(), 10);
    let me: Value = vet
        .get(app.url("/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (me["two_factor"].as_bool(), me["needs_two_factor_setup"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(
        vet.get(app.url("/api/pets")).send().await.unwrap().status(),
        StatusCode::OK
    );

    // Signing in now needs the code: without it, 422 naming the field; a code works once.
    let (fresh, _) = client_with_jar();
    let login = |code: Option<String>| {
        let mut form = vec![
            ("email", "vet@example.org".to_owned()),
            ("password", PASSWORD.to_owned()),
        ];
        if let Some(code) = code {
            form.push(("code", code));
        }
        fresh.post(app.url("/api/login")).form(&form).send()
    };
    let response = login(None).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["field"], "code");
    let next = code_for(&secret, 1).unwrap();
    assert_eq!(login(Some(next.clone())).await.unwrap().status(), StatusCode::OK);
    let replay = login(Some(next)).await.unwrap();
    assert_eq!(
        replay.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "a code is accepted once"
    );
    assert_eq!(
        login(Some(recovery[0].clone())).await.unwrap().status(),
        StatusCode::OK
    );

    // An admin resets it (the admin signs in with their own code first).
    let admin = app.browser_for("admin@example.org").await;
    let admin_enrolment: Value = admin
        .post(app.url("/api/account/2fa/start"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin_secret = admin_enrolment["secret"].as_str().unwrap().to_owned();
    admin
        .post(app.url("/api/account/2fa/confirm"))
        .form(&[("code", code_for(&admin_secret, 0).unwrap())])
        .send()
        .await
        .unwrap();
    let vet_id: uuid::Uuid = sqlx::query_scalar("select id from users where email = 'vet@example.org'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let reset = admin
        .post(app.url("/api/admin/users/reset-2fa"))
        .form(&[("user_id", vet_id.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::OK);
    let status: Value = vet
        .get(app.url("/api/account/2fa"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["enabled"], false);
    assert_eq!(
        vet.get(app.url("/api/pets")).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn an_owner_deletes_their_account_with_their_password_and_signing_in_cancels_it(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.signed_in_owner("olivia@example.org").await;

    let wrong = app
        .post_form("/api/account/delete", &[("password", "not my password")])
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let response = app
        .post_form("/api/account/delete", &[("password", PASSWORD)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let message: String = response.json().await.unwrap();
    assert!(message.contains("will be deleted on"), "{message}");
    assert!(app.me().await.is_none(), "signed out");
    let mail = app.mail_to("olivia@example.org", 2).await;
    assert_eq!(mail[1].subject, "Your Pawfile account will be deleted");
    let pending: bool = sqlx::query_scalar("select deletion_requested_at is not null from users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(pending);

    let signed_in = app.login("olivia@example.org", PASSWORD).await;
    assert_eq!(signed_in.status(), StatusCode::OK);
    let pending: bool = sqlx::query_scalar("select deletion_requested_at is not null from users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(!pending, "signing in cancelled it");
    let actions: Vec<String> = sqlx::query_scalar(
        "select action from audit_events where action in ('request_deletion', 'cancel_deletion') order by at",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(actions, ["request_deletion", "cancel_deletion"]);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn owners_may_turn_two_factor_sign_in_on_and_off_staff_may_not_turn_it_off(pool: PgPool) {
    use pawfile::auth::two_factor::code_for;
    let mut config = test_config();
    config.sessions.require_two_factor = vec![Some(Role::Staff)];
    let app = spawn_app_with(pool, config).await;
    app.signed_in_owner("olivia@example.org").await;
    let enrolment: Value = app
        .client
        .post(app.url("/api/account/2fa/start"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    let on = app
        .post_form(
            "/api/account/2fa/confirm",
            &[("code", &code_for(&secret, 0).unwrap())],
        )
        .await;
    assert_eq!(on.status(), StatusCode::OK);

    let wrong = app
        .post_form("/api/account/2fa/disable", &[("code", "000000")])
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let off = app
        .post_form(
            "/api/account/2fa/disable",
            &[("code", &code_for(&secret, 1).unwrap())],
        )
        .await;
    assert_eq!(off.status(), StatusCode::OK);
    let (client, _) = client_with_jar();
    let login = client
        .post(app.url("/api/login"))
        .form(&[("email", "olivia@example.org"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK, "no code needed any more");

    let riverside = app.create_clinic("Riverside").await;
    let vet_id = app
        .create_user("vet@example.org", &[Role::Staff], Some(riverside))
        .await;
    pawfile::auth::two_factor::set_known_secret(&app.pool, vet_id, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
        .await
        .unwrap();
    let (vet, _) = client_with_jar();
    let signed_in = vet
        .post(app.url("/api/login"))
        .form(&[
            ("email", "vet@example.org".to_owned()),
            ("password", PASSWORD.to_owned()),
            ("code", code_for("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", 0).unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::OK);
    let refused = vet
        .post(app.url("/api/account/2fa/disable"))
        .form(&[("code", code_for("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", 1).unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}
