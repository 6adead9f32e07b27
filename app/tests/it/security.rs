//! The adversarial suite: each test is one way someone might try to abuse Pawfile, asserting the exact
//! answer and that nothing was written or leaked.

use crate::support::{
    PASSWORD, client_with_jar, spawn_app, spawn_app_with, spawn_app_with_hasher, test_config,
};
use pawfile::{
    auth::PasswordHasher,
    domain::Role,
    net::TrustedProxies,
    rate_limit::AccountLimits,
    testing::{SETTLE, TestBucket, eventually},
};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use sqlx::PgPool;
use std::time::Duration;

pub(crate) async fn error_of(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not JSON: {text}"));
    (status, body)
}

/// The seconds of a 429's `Retry-After` (the test fails without one).
fn retry_after(response: &Response) -> u64 {
    let header = response
        .headers()
        .get("retry-after")
        .unwrap_or_else(|| panic!("{}: no Retry-After", response.status()));
    header.to_str().unwrap().parse().unwrap()
}

async fn audit_count(pool: &PgPool, action: &str) -> i64 {
    sqlx::query_scalar("select count(*) from audit_events where action = $1")
        .bind(action)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A sign-in from `addr` (through the trusted proxy on loopback).
async fn sign_in_from(
    client: &reqwest::Client,
    url: &str,
    addr: &str,
    email: &str,
    password: &str,
) -> Response {
    client
        .post(url)
        .header("x-forwarded-for", addr)
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .unwrap()
}

fn behind_proxy() -> pawfile_app::startup::RuntimeConfig {
    let mut config = test_config();
    config.trusted_proxies = TrustedProxies::new(vec!["127.0.0.1/32".parse().unwrap()]);
    config
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn sign_ins_dropped_by_their_clients_never_run_more_hashes_than_allowed(pool: PgPool) {
    let hasher = PasswordHasher::new(2);
    let app = spawn_app_with_hasher(
        pool,
        TestBucket::embedded().await,
        TestBucket::embedded().await,
        behind_proxy(),
        hasher.clone(),
    )
    .await;
    let url = app.url("/api/login");

    for i in 0..200u32 {
        let started = hasher.started();
        let (client, _) = client_with_jar();
        let addr = format!("10.9.{}.{}", i / 250, i % 250 + 1);
        let url = url.clone();
        let request = tokio::spawn(async move {
            sign_in_from(
                &client,
                &url,
                &addr,
                &format!("nobody{i}@example.org"),
                "a guess of sorts",
            )
            .await
        });
        // Wait until the server hashes for this request (or queues it behind the permits), then hang up.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        while hasher.started() == started && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        request.abort();
    }
    // A leaked permit (the bug this looks for) would keep a hash running for ever: fail, do not hang.
    eventually(
        SETTLE,
        "every hash the abandoned sign-ins started has ended",
        || async { hasher.running() == 0 },
    )
    .await;

    assert!(hasher.started() > 2, "the sign-ins reached the hasher");
    assert!(
        hasher.peak() <= 2,
        "{} hashes ran at once with 2 permits",
        hasher.peak()
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn password_changes_are_rate_limited(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.signed_in_owner("olivia@example.org").await;
    let change = || {
        app.post_form(
            "/api/account/password",
            &[
                ("current_password", "not the password"),
                ("new_password", "a brand new passphrase"),
            ],
        )
    };
    for _ in 0..AccountLimits::DEFAULT.password_changes_per_account.max_hits {
        assert_eq!(change().await.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    let response = change().await;

    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after = retry_after(&response);
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    let (_, body) = error_of(response).await;
    assert_eq!(body["kind"], "rate_limited");
    assert_eq!(audit_count(&app.pool, "change_password").await, 0);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn dates_and_numbers_from_requests_are_checked_not_unwrapped(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.create_user("admin@example.org", &[Role::Admin], None).await;
    assert_eq!(
        app.login("admin@example.org", PASSWORD).await.status(),
        StatusCode::OK
    );
    let audit = |query: &str| {
        app.client
            .get(app.url(&format!("/api/admin/audit?{query}")))
            .send()
    };

    let last_day = audit("until=9999-12-31").await.unwrap();
    assert_eq!(
        last_day.status(),
        StatusCode::OK,
        "the last day has no end to bound by"
    );
    let (status, body) = error_of(audit("from=9999-12-31&until=9999-12-31").await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    for query in [
        "until=0000-01-01",
        "from=-0001-01-01",
        "until=2026-02-30",
        "from=12026-01-01",
    ] {
        let (status, body) = error_of(audit(query).await.unwrap()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        assert_eq!(body["kind"], "invalid", "{query}");
    }
    let (status, body) = error_of(audit("page=99999999999").await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["kind"], "bad_request");
    let (status, _) = error_of(audit("page=4294967295").await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "the largest page is an empty page");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn framework_rejections_answer_in_the_documented_shape(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.signed_in_owner("olivia@example.org").await;

    // A form far larger than any form: 413, not 500 with the framework's text.
    let huge = "x".repeat(3 * 1024 * 1024);
    let response = app
        .client
        .post(app.url("/api/login"))
        .form(&[("email", "olivia@example.org"), ("password", huge.as_str())])
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(response).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["kind"], "too_large");
    assert!(
        !body["error"].as_str().unwrap().contains("limit exceeded"),
        "{body}"
    );

    // A body that is not the form the function takes: 400.
    let response = app
        .client
        .post(app.url("/api/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("%%%")
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["kind"], "bad_request");

    // A path parameter that is not an id, a query of the wrong type, a method a route lacks.
    for (method, path, expected) in [
        (
            reqwest::Method::GET,
            "/api/documents/not-an-id",
            StatusCode::BAD_REQUEST,
        ),
        (
            reqwest::Method::GET,
            "/api/pets/0190a6e4-0000-7000-8000-000000000000/documents?category=a&category=b",
            StatusCode::BAD_REQUEST,
        ),
        (
            reqwest::Method::PUT,
            "/api/documents/0190a6e4-0000-7000-8000-000000000000",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (reqwest::Method::GET, "/api/no-such-route", StatusCode::NOT_FOUND),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        let (status, body) = error_of(response).await;
        assert_eq!(status, expected, "{method} {path}: {body}");
        assert!(
            body["kind"].is_string() && body["error"].is_string(),
            "{method} {path}: {body}"
        );
    }
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_plain_form_is_never_redirected_to_another_site(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.create_user("olivia@example.org", &[Role::Owner], None).await;

    for referer in [
        "https://evil.example/login".to_owned(),
        app.url("//evil.example/login"),
        app.url("/\\evil.example/login"),
    ] {
        for password in ["wrong password", PASSWORD] {
            let response = app
                .client
                .post(app.url("/api/login"))
                .header("accept", "text/html")
                .header("sec-fetch-site", "same-origin")
                .header("referer", &referer)
                .form(&[("email", "olivia@example.org"), ("password", password)])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::FOUND, "{referer}");
            let location = response.headers()["location"].to_str().unwrap();
            let target = reqwest::Url::parse(&app.url("/"))
                .unwrap()
                .join(location)
                .unwrap();
            assert_eq!(
                target.host_str(),
                Some("127.0.0.1"),
                "{referer} sent the form to {location}"
            );
            assert!(!target.path().starts_with("//"), "{location}");
            assert!(!location.contains("evil.example"), "{location}");
        }
    }
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn guesses_from_elsewhere_do_not_lock_the_owner_out_of_their_own_address(pool: PgPool) {
    let app = spawn_app_with(pool, behind_proxy()).await;
    app.create_user("olivia@example.org", &[Role::Owner], None).await;
    let url = app.url("/api/login");
    let (attacker, _) = client_with_jar();
    for _ in 0..AccountLimits::DEFAULT
        .sign_in_failures_per_account_and_address
        .max_hits
    {
        let response = sign_in_from(&attacker, &url, "198.51.100.66", "olivia@example.org", "guess").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }

    // The guesser is throttled, with Retry-After, even with the right password...
    let throttled = sign_in_from(&attacker, &url, "198.51.100.66", "olivia@example.org", PASSWORD).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after = retry_after(&throttled);
    assert!((1..=15 * 60).contains(&retry_after), "{retry_after}");
    let (_, body) = error_of(throttled).await;
    assert_eq!(body["kind"], "rate_limited");
    assert_eq!(body["retry_after"], retry_after);

    // ...while the owner, from their own address, signs in.
    let (owner, _) = client_with_jar();
    let response = sign_in_from(&owner, &url, "203.0.113.10", "olivia@example.org", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn guesses_spread_over_many_addresses_meet_an_hourly_ceiling(pool: PgPool) {
    let app = spawn_app_with(pool, behind_proxy()).await;
    app.create_user("olivia@example.org", &[Role::Owner], None).await;
    let url = app.url("/api/login");
    let (attacker, _) = client_with_jar();
    // Below every per-address limit: 5 guesses from each of 20 addresses.
    for i in 0..100 {
        let addr = format!("198.51.100.{}", i / 5 + 1);
        let response = sign_in_from(&attacker, &url, &addr, "olivia@example.org", "guess").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "guess {i}");
    }

    let response = sign_in_from(&attacker, &url, "198.51.100.99", "olivia@example.org", "guess").await;

    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&response) >= 1);
    let (_, body) = error_of(response).await;
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("too many failed sign-ins in the last hour"),
        "{message}"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn throttled_sign_ins_are_audited_once_per_window_not_once_per_attempt(pool: PgPool) {
    let app = spawn_app_with(pool, behind_proxy()).await;
    let url = app.url("/api/login");
    let (attacker, _) = client_with_jar();
    for _ in 0..AccountLimits::DEFAULT
        .sign_in_failures_per_account_and_address
        .max_hits
    {
        sign_in_from(&attacker, &url, "198.51.100.66", "olivia@example.org", "guess").await;
    }
    let audited_guesses = audit_count(&app.pool, "sign_in_failed").await;

    for _ in 0..30 {
        let response = sign_in_from(&attacker, &url, "198.51.100.66", "olivia@example.org", "guess").await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    }

    assert_eq!(
        audit_count(&app.pool, "sign_in_failed").await,
        audited_guesses + 1,
        "one row says the throttle began"
    );
    let counted: i64 = sqlx::query_scalar("select hits from rate_limit_hits where key like '%:addr:198.51.100.66' and key like 'sign_in:account:%'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        counted,
        AccountLimits::DEFAULT
            .sign_in_failures_per_account_and_address
            .max_hits
            + 30,
        "the counter keeps the count"
    );
}

/// The app as a clinic deploys it: behind TLS at its public address.
fn over_https() -> pawfile_app::startup::RuntimeConfig {
    let mut config = test_config();
    config.public_url = "https://records.example.org/".parse().unwrap();
    config
}

fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect()
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn over_https_the_session_cookie_is_a_secure_host_cookie_that_ends_with_the_browser(pool: PgPool) {
    let app = spawn_app_with(pool, over_https()).await;
    app.create_user("olivia@example.org", &[Role::Owner], None).await;

    let response = app.login("olivia@example.org", PASSWORD).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=63072000"
    );
    let cookies = set_cookies(&response);
    let cookie = cookies
        .iter()
        .find(|cookie| cookie.starts_with("__Host-pawfile_session="))
        .unwrap_or_else(|| panic!("{cookies:?}"));
    for part in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(part), "{part} missing: {cookie}");
    }
    for part in ["Max-Age", "Expires", "Domain"] {
        assert!(!cookie.contains(part), "{part} present: {cookie}");
    }
    let value = cookie.split(';').next().unwrap().to_owned();
    let id = value.trim_start_matches("__Host-pawfile_session=").to_owned();

    let me = |cookie: String| {
        reqwest::Client::new()
            .get(app.url("/api/me"))
            .header("cookie", cookie)
            .send()
    };
    let signed_in: Value = me(value.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(signed_in["email"], "olivia@example.org");
    // The plain name, which a sibling subdomain could plant, is not believed over HTTPS.
    let planted: Value = me(format!("pawfile_session={id}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(planted.is_null(), "{planted}");

    // Signing out clears the same cookie.
    let out = reqwest::Client::new()
        .post(app.url("/api/logout"))
        .header("cookie", value.clone())
        .header("x-pawfile-client", "1")
        .send()
        .await
        .unwrap();
    let cleared = set_cookies(&out);
    assert!(
        cleared
            .iter()
            .any(|cookie| cookie.starts_with("__Host-pawfile_session=;") && cookie.contains("Max-Age=0")),
        "{cleared:?}"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn pages_and_answers_carry_the_isolation_headers(pool: PgPool) {
    let app = spawn_app(pool).await;
    for path in ["/", "/login", "/api/me", "/healthz"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        let headers = response.headers();
        assert_eq!(headers["cross-origin-opener-policy"], "same-origin", "{path}");
        assert_eq!(headers["cross-origin-resource-policy"], "same-origin", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert!(
            !headers.contains_key("strict-transport-security"),
            "{path}: no HSTS over plain HTTP"
        );
    }
    let page = app.client.get(app.url("/login")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self' 'nonce-"), "{csp}");
    let api = app.client.get(app.url("/api/me")).send().await.unwrap();
    let csp = api.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("sandbox"),
        "{csp}"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn an_idle_session_is_refused_by_the_server_and_polling_does_not_keep_it_alive(pool: PgPool) {
    let mut config = test_config();
    config.sessions.idle_timeout = Duration::from_secs(3);
    let app = spawn_app_with(pool, config).await;
    app.create_user("admin@example.org", &[Role::Admin], None).await;
    let response = app.login("admin@example.org", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = set_cookies(&response)
        .into_iter()
        .find(|cookie| cookie.starts_with("pawfile_session="))
        .unwrap();
    assert!(
        !cookie.contains("Max-Age") && !cookie.contains("Expires"),
        "{cookie}"
    );

    // A person's requests keep the session alive past the idle timeout...
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert!(app.me().await.is_some());
    }
    // ...a page polling by itself does not.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let poll = app
            .client
            .get(app.url("/api/admin/backups?background=true"))
            .send()
            .await
            .unwrap();
        if poll.status() == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(poll.status(), StatusCode::OK);
    }

    assert!(app.me().await.is_none(), "the idle session was refused");
    let live: i64 =
        sqlx::query_scalar("select count(*) from tower_sessions.session where expiry_date > now()")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(live, 0, "no live session is left on the server");
}

/// Every server function, as the framework registered it.
pub fn server_functions() -> Vec<(String, String)> {
    let mut functions: Vec<(String, String)> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, method)| (path.to_owned(), method.to_string()))
        .collect();
    functions.sort();
    assert!(functions.len() > 20, "the registry is linked: {functions:?}");
    functions
}

/// The server functions a GET may reach: each only reads (the audit row of a view is the one write a
/// GET makes, by design). A new GET function must be added here, after checking that it changes
/// nothing.
const READ_ONLY: &[&str] = &[
    "/api/account/storage",
    "/api/account/2fa",
    "/api/account/time-zones",
    "/api/invitation",
    "/api/admin/audit",
    "/api/admin/backups",
    "/api/admin/clinics",
    "/api/admin/dashboard",
    "/api/admin/mail",
    "/api/admin/integrity",
    "/api/admin/integrity/coverage",
    "/api/admin/storage-status",
    "/api/admin/storage-usage",
    "/api/admin/users",
    "/api/clinic/patients",
    "/api/clinics",
    "/api/documents/rules",
    "/api/home",
    "/api/me",
    "/api/pets",
    "/api/pets/get",
    "/api/pets/history",
    "/api/records/get",
    "/api/records/search",
];

#[test]
fn no_server_function_reachable_by_get_changes_anything() {
    let unlisted: Vec<String> = server_functions()
        .into_iter()
        .filter(|(_, method)| method == "GET")
        .map(|(path, _)| path)
        .filter(|path| !READ_ONLY.contains(&path.as_str()))
        .collect();
    assert!(
        unlisted.is_empty(),
        "GET server functions not known to be read-only: {unlisted:?}"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn every_write_needs_proof_that_it_comes_from_pawfile_itself(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.signed_in_owner("olivia@example.org").await;
    let some_id = "0190a6e4-0000-7000-8000-000000000000";
    let mut writes: Vec<(reqwest::Method, String)> = server_functions()
        .into_iter()
        .filter(|(_, method)| method != "GET")
        .map(|(path, method)| (method.parse().unwrap(), path))
        .collect();
    for path in [
        format!("/api/pets/{some_id}/documents"),
        format!("/api/documents/{some_id}/trash"),
        format!("/api/documents/{some_id}/restore"),
    ] {
        writes.push((reqwest::Method::POST, path));
    }
    writes.push((reqwest::Method::DELETE, format!("/api/documents/{some_id}")));
    let sessions = app.stored_sessions().await;
    let cookie = app.session_cookie().unwrap();
    let audit_rows: i64 = sqlx::query_scalar("select count(*) from audit_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    // A bare client (what a cross-site form or an old browser sends), another site's origin or page, a
    // browser saying the request is cross-site even with the script header: all refused before any
    // handler runs.
    let bare = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (method, path) in &writes {
        let attempts = [
            bare.request(method.clone(), app.url(path)),
            bare.request(method.clone(), app.url(path))
                .header("origin", "https://evil.example"),
            bare.request(method.clone(), app.url(path))
                .header("referer", "https://evil.example/page"),
            bare.request(method.clone(), app.url(path))
                .header("sec-fetch-site", "cross-site")
                .header("x-pawfile-client", "1"),
            bare.request(method.clone(), app.url(path))
                .header("sec-fetch-site", "same-site")
                .header("origin", "http://127.0.0.1"),
            bare.request(method.clone(), app.url(path))
                .header("origin", "null")
                .header("accept", "text/html"),
        ];
        for (i, attempt) in attempts.into_iter().enumerate() {
            let response = attempt
                .header("cookie", &cookie)
                .form(&[("email", "olivia@example.org"), ("password", PASSWORD)])
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "{method} {path} (attempt {i})"
            );
        }
    }
    assert_eq!(app.stored_sessions().await, sessions, "no sign-in, no sign-out");
    let after: i64 = sqlx::query_scalar("select count(*) from audit_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(after, audit_rows, "nothing happened");

    // What Pawfile's pages and scripts send is let through (to the handler, which answers for itself).
    let me = "/api/account/time-zone";
    for request in [
        bare.post(app.url(me)).header("sec-fetch-site", "same-origin"),
        bare.post(app.url(me)).header("origin", "http://127.0.0.1"),
        bare.post(app.url(me))
            .header("referer", "http://127.0.0.1/account"),
        bare.post(app.url(me)).header("x-pawfile-client", "1"),
    ] {
        let response = request
            .header("cookie", &cookie)
            .form(&[("time_zone", "Europe/Berlin")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn guessable_passwords_are_refused_with_a_reason_the_person_understands(pool: PgPool) {
    let app = spawn_app(pool).await;
    for (password, expected) in [
        (
            "Password1234",
            "This password would be easy to guess: This is similar to a commonly used password.",
        ),
        ("short pass", "Choose a password of at least 12 characters."),
        (
            &"long enough ".repeat(11),
            "A password has at most 128 characters.",
        ),
        ("olivia quellomar", "This password would be easy to guess"),
    ] {
        let response = app
            .register("olivia.quellomar@example.org", "Olivia Quellomar", password)
            .await;
        let (status, body) = error_of(response).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{password}: {body}");
        assert_eq!(body["field"], "password");
        let message = body["error"].as_str().unwrap();
        assert!(message.starts_with(expected), "{password}: {message}");
    }
    let accounts: i64 = sqlx::query_scalar("select count(*) from users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(accounts, 0);

    app.signed_in_owner("olivia@example.org").await;
    let response = app
        .post_form(
            "/api/account/password",
            &[("current_password", PASSWORD), ("new_password", "qwertyuiopas")],
        )
        .await;
    let (status, body) = error_of(response).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "new_password");
    assert_eq!(audit_count(&app.pool, "change_password").await, 0);
}

fn with_connections(
    change: impl FnOnce(&mut pawfile::config::ConnectionSettings),
) -> pawfile_app::startup::RuntimeConfig {
    let mut config = test_config();
    change(&mut config.connections);
    config
}

/// Reads what the server sends on `stream` until it closes the connection (or `within` passes).
async fn read_until_closed(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let read = tokio::time::timeout(within, stream.read_to_end(&mut received)).await;
    read.ok().map(|_| String::from_utf8_lossy(&received).into_owned())
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_client_that_never_finishes_its_headers_is_disconnected(pool: PgPool) {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app_with(
        pool,
        with_connections(|limits| limits.header_read_timeout = Duration::from_secs(1)),
    )
    .await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();

    let started = tokio::time::Instant::now();
    let answer = read_until_closed(&mut slow, Duration::from_secs(10)).await;

    let answer = answer.expect("the server closed the connection");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let healthy = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(healthy.status(), StatusCode::OK, "others are served meanwhile");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn connections_beyond_the_cap_wait_until_one_ends(pool: PgPool) {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app_with(pool, with_connections(|limits| limits.max_client_connections = 2)).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        held.push(stream);
    }
    eventually(SETTLE, "the server holds both connections", || async {
        app.metric(r#"pawfile_http_open_connections{listener="public"}"#)
            .await
            >= 2.0
    })
    .await;
    let (client, _) = client_with_jar();

    let waiting = tokio::time::timeout(
        Duration::from_millis(1500),
        client.get(app.url("/healthz")).send(),
    )
    .await;
    assert!(
        waiting.is_err(),
        "a third connection is not served while two are open"
    );

    drop(held.pop());
    let served = tokio::time::timeout(Duration::from_secs(5), client.get(app.url("/healthz")).send())
        .await
        .expect("served once a connection ended")
        .unwrap();
    assert_eq!(served.status(), StatusCode::OK);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn shutting_down_lets_requests_in_flight_finish_and_accepts_no_more(pool: PgPool) {
    use tokio::io::AsyncWriteExt;
    let mut app = spawn_app_with(
        pool,
        with_connections(|limits| limits.shutdown_grace = Duration::from_secs(20)),
    )
    .await;
    let address = app.address.trim_start_matches("http://").to_owned();
    // A sign-in whose body arrives slowly: in flight when the shutdown begins.
    let body = "email=olivia%40example.org&password=not+the+right+one";
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /api/login HTTP/1.1\r\nHost: {address}\r\nX-Pawfile-Client: 1\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..10]).await.unwrap();
    eventually(SETTLE, "the server holds the sign-in's connection", || async {
        app.metric(r#"pawfile_http_open_connections{listener="public"}"#)
            .await
            >= 1.0
    })
    .await;

    let token = app.shutdown_token();
    token.cancel();
    // The listener closes at once, but how soon that shows depends on the machine.
    eventually(
        SETTLE,
        "no new connection is accepted (the listener closed)",
        || async { tokio::net::TcpStream::connect(&address).await.is_err() },
    )
    .await;
    // A moment in which the server would wrongly stop, were it not waiting for the request in flight.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!app.stopped(), "the server waits for the request in flight");
    stream.write_all(&body.as_bytes()[10..]).await.unwrap();

    let answer = read_until_closed(&mut stream, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 401"),
        "the request finished: {answer}"
    );
    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("the server stops once nothing is in flight");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn requests_outliving_the_shutdown_grace_are_cut(pool: PgPool) {
    use tokio::io::AsyncWriteExt;
    let mut app = spawn_app_with(
        pool,
        with_connections(|limits| limits.shutdown_grace = Duration::from_secs(1)),
    )
    .await;
    // An upload whose body stalls: its handler runs (and holds an upload slot) when the shutdown begins.
    let pet = a_pet_of(&app).await;
    let cookie = app.session_cookie().unwrap();
    let mut stream = app.raw_upload(&cookie, &pet, 300_000).await;
    stream.write_all(b"%PDF-1.7\n").await.unwrap();
    eventually(
        SETTLE,
        "the upload's handler runs (it holds its slot)",
        || async {
            sqlx::query_scalar::<_, i64>("select count(*) from upload_slots")
                .fetch_one(&app.pool)
                .await
                .unwrap()
                == 1
        },
    )
    .await;

    let started = tokio::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("the server stops after the grace");

    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "it waited for the grace"
    );
    let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.is_some(), "the stalled request's connection was closed");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn postgres_going_away_answers_503_stores_nothing_and_pawfile_recovers_by_itself(pool: PgPool) {
    let options = pool.connect_options().as_ref().clone();
    let upstream: std::net::SocketAddr = format!("127.0.0.1:{}", options.get_port()).parse().unwrap();
    let proxy = crate::support::TcpProxy::start(upstream).await;
    let through_proxy = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(2))
        .connect_with(options.host("127.0.0.1").port(proxy.addr.port()))
        .await
        .unwrap();

    let app = spawn_app_with(through_proxy, test_config()).await;
    let pet = a_pet_of(&app).await;

    proxy.cut();

    let me = app.client.get(app.url("/api/me")).send().await.unwrap();
    let (status, body) = error_of(me).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["kind"], "unavailable");
    let page = app
        .client
        .get(app.url(&format!("/pets/{pet}")))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    let page = page.text().await.unwrap();
    let main = page.split("<main").nth(1).unwrap_or(&page);
    assert!(
        main.contains("database is unavailable"),
        "a page that says what happened: {main}"
    );
    assert!(!page.contains("Biscuit"));
    let (status, body) = error_of(upload_pdf(&app, &pet, 1_800_000).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(app.documents.keys().await.is_empty(), "nothing reached S3");
    assert_eq!(app.documents.pending_uploads().await, 0);

    proxy.restore();

    let mut recovered = false;
    for _ in 0..50 {
        let response = app.client.get(app.url("/api/me")).send().await.unwrap();
        if response.status() == StatusCode::OK {
            let me: Value = response.json().await.unwrap();
            assert_eq!(me["email"], "olivia@example.org", "still signed in");
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "Pawfile recovered by itself");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_stalled_s3_fails_uploads_and_downloads_within_its_timeout_and_the_rest_stays_responsive(
    pool: PgPool,
) {
    let mut documents = TestBucket::embedded().await;
    let endpoint = documents.settings.endpoint.clone().unwrap();
    let upstream = format!("{}:{}", endpoint.host_str().unwrap(), endpoint.port().unwrap())
        .parse()
        .unwrap();
    let proxy = crate::support::TcpProxy::start(upstream).await;
    let mut settings = documents.settings.clone();
    settings.endpoint = Some(format!("http://{}", proxy.addr).parse().unwrap());
    settings.timeout = Duration::from_secs(2);
    let direct = documents.store.clone();
    documents.store = pawfile::storage::ObjectStore::connect(&settings).await;
    let app =
        crate::support::spawn_app_on(pool, documents, TestBucket::embedded().await, test_config()).await;
    let pet = a_pet_of(&app).await;
    let upload = || upload_pdf(&app, &pet, 180_000);
    let stored: Value = upload().await.json().await.unwrap();
    let id = stored[0]["id"].as_str().unwrap().to_owned();

    proxy.stall();

    let started = tokio::time::Instant::now();
    let (refused, healthy) = tokio::join!(upload(), async {
        // The upload is announced before its first S3 call (the first upload's announcement went at its
        // finish): once it is, the upload waits on the stalled store.
        eventually(SETTLE, "the upload is waiting on the stalled store", || async {
            sqlx::query_scalar::<_, i64>("select count(*) from upload_intents")
                .fetch_one(&app.pool)
                .await
                .unwrap()
                > 0
        })
        .await;
        let started = tokio::time::Instant::now();
        let response = app.client.get(app.url("/api/me")).send().await.unwrap();
        (response.status(), started.elapsed())
    });
    let (status, body) = error_of(refused).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("file store is unavailable"),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "failed after {:?}",
        started.elapsed()
    );
    assert_eq!(healthy.0, StatusCode::OK, "the rest of Pawfile answers meanwhile");
    assert!(healthy.1 < Duration::from_secs(2), "{:?}", healthy.1);

    let started = tokio::time::Instant::now();
    let download = app
        .client
        .get(app.url(&format!("/api/documents/{id}/content")))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(download).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "failed after {:?}",
        started.elapsed()
    );

    proxy.restore();

    let rows: i64 = sqlx::query_scalar("select count(*) from documents")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1, "no row for the refused upload");
    let objects = direct.list("documents/").await.unwrap();
    assert_eq!(objects.len(), 1, "no object for the refused upload: {objects:?}");
    let again = upload().await;
    assert_eq!(again.status(), StatusCode::CREATED, "Pawfile recovers by itself");
}

pub(crate) async fn a_pet_of(app: &crate::support::TestApp) -> String {
    app.signed_in_owner("olivia@example.org").await;
    let pet: Value = app
        .post_form("/api/pets/create", &[("name", "Biscuit"), ("species", "dog")])
        .await
        .json()
        .await
        .unwrap();
    pet.as_str().unwrap().to_owned()
}

pub(crate) async fn upload_pdf(app: &crate::support::TestApp, pet: &str, size: usize) -> Response {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.resize(size, b'x');
    app.client
        .post(app.url(&format!("/api/pets/{pet}/documents")))
        .multipart(reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name("scan.pdf"),
        ))
        .send()
        .await
        .unwrap()
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn downloaded_bytes_are_limited_per_user_and_hour_by_weight_not_by_request(pool: PgPool) {
    let mut config = test_config();
    config.limits.download_per_hour = bytesize::ByteSize(100_000);
    let app = spawn_app_with(pool, config).await;
    let pet = a_pet_of(&app).await;
    let stored: Value = upload_pdf(&app, &pet, 60_000).await.json().await.unwrap();
    let content = app.url(&format!(
        "/api/documents/{}/content",
        stored[0]["id"].as_str().unwrap()
    ));
    let get = |range: Option<&'static str>| {
        let mut request = app.client.get(&content);
        if let Some(range) = range {
            request = request.header("range", range);
        }
        request.send()
    };

    assert_eq!(get(None).await.unwrap().status(), StatusCode::OK);
    // A viewer's many small range requests cost only their bytes: 300 × 100 bytes.
    for _ in 0..300 {
        assert_eq!(
            get(Some("bytes=0-99")).await.unwrap().status(),
            StatusCode::PARTIAL_CONTENT
        );
    }
    let refused = get(None).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after = retry_after(&refused);
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    let (_, body) = error_of(refused).await;
    assert_eq!(body["kind"], "rate_limited");
    // The refused request took nothing: what is left (10,000 bytes) can still be read.
    assert_eq!(
        get(Some("bytes=0-9999")).await.unwrap().status(),
        StatusCode::PARTIAL_CONTENT
    );
    assert_eq!(
        get(Some("bytes=0-0")).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn uploaded_bytes_are_limited_per_user_and_hour_and_a_refused_upload_stores_nothing(pool: PgPool) {
    let mut config = test_config();
    config.limits.upload_per_hour = bytesize::ByteSize(300_000);
    let app = spawn_app_with(pool, config).await;
    let pet = a_pet_of(&app).await;
    assert_eq!(
        upload_pdf(&app, &pet, 200_000).await.status(),
        StatusCode::CREATED
    );

    let refused = upload_pdf(&app, &pet, 200_000).await;

    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&refused) >= 1);
    let rows: i64 = sqlx::query_scalar("select count(*) from documents")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    let objects = app.documents.keys().await;
    assert_eq!(
        objects.iter().filter(|key| key.starts_with("documents/")).count(),
        1,
        "{objects:?}"
    );
    assert_eq!(
        upload_pdf(&app, &pet, 50_000).await.status(),
        StatusCode::CREATED,
        "what fits still does"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn an_upload_beyond_the_owners_quota_is_refused_whole_and_usage_is_shown(pool: PgPool) {
    let mut config = test_config();
    config.documents.quota_per_owner = bytesize::ByteSize(500_000);
    let app = spawn_app_with(pool, config).await;
    let pet = a_pet_of(&app).await;
    assert_eq!(
        upload_pdf(&app, &pet, 300_000).await.status(),
        StatusCode::CREATED
    );

    let (status, body) = error_of(upload_pdf(&app, &pet, 300_000).await).await;

    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["kind"], "quota_exceeded");
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("Not enough storage left: your documents use 293 KiB of 488 KiB"),
        "{message}"
    );
    let rows: i64 = sqlx::query_scalar("select count(*) from documents")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    let objects = app.documents.keys().await;
    assert_eq!(
        objects.iter().filter(|key| key.starts_with("documents/")).count(),
        1,
        "{objects:?}"
    );
    // The owner sees the usage on their account page (and through the API).
    let usage: Value = app
        .client
        .get(app.url("/api/account/storage"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(usage[0]["payer"], "owner");
    assert_eq!(usage[0]["used"], 300_000);
    assert_eq!(usage[0]["quota"], 500_000);
    assert_eq!(usage[0]["documents"], 1);
    let page = app
        .client
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("293 KiB of 488 KiB used · 1 document"), "{page}");
    assert!(page.contains("<meter"), "{page}");
    // Admins see it beside every clinic's; others may not.
    let (status, _) = error_of(
        app.client
            .get(app.url("/api/admin/storage-usage"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.create_user("admin@example.org", &[Role::Admin], None).await;
    let admin = app.browser_for("admin@example.org").await;
    let report: Value = admin
        .get(app.url("/api/admin/storage-usage"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report[0]["payer"], "owner");
    assert_eq!(report[0]["used"], 300_000);
    assert!(
        report[0]["name"].as_str().unwrap().contains("olivia@example.org"),
        "{report}"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn exports_are_limited_per_user_and_hour(pool: PgPool) {
    let mut config = test_config();
    config.limits.exports_per_hour = 2;
    let app = spawn_app_with(pool, config).await;
    let pet = a_pet_of(&app).await;
    let export = || app.client.get(app.url(&format!("/api/pets/{pet}/export"))).send();
    // Tries at someone else's pet answer 404 like a missing pet and take nothing from the allowance.
    app.create_user("mallory@example.org", &[Role::Owner], None).await;
    let stranger = app.browser_for("mallory@example.org").await;
    for _ in 0..3 {
        let response = stranger
            .get(app.url(&format!("/api/pets/{pet}/export")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    let own: Value = stranger
        .post(app.url("/api/pets/create"))
        .form(&[("name", "Rex"), ("species", "dog")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for _ in 0..2 {
        let response = stranger
            .get(app.url(&format!("/api/pets/{}/export", own.as_str().unwrap())))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "the 404s counted nothing");
        response.bytes().await.unwrap();
    }
    for _ in 0..2 {
        let response = export().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.bytes().await.unwrap();
    }
    let refused = export().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&refused) >= 1);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_user_runs_a_bounded_number_of_uploads_at_once_and_a_dead_servers_slots_free_themselves(
    pool: PgPool,
) {
    use tokio::io::AsyncWriteExt;
    let mut config = test_config();
    config.limits.concurrent_uploads = 2;
    let app = spawn_app_with(pool, config).await;
    let pet = a_pet_of(&app).await;
    let cookie = app.session_cookie().unwrap();
    // Two uploads in flight (their bodies still arriving).
    let mut running = Vec::new();
    for _ in 0..2 {
        let mut stream = app.raw_upload(&cookie, &pet, 300_000).await;
        stream.write_all(b"%PDF-1.7\n").await.unwrap();
        running.push(stream);
    }
    let mut taken = 0;
    for _ in 0..100 {
        taken = sqlx::query_scalar::<_, i64>("select count(*) from upload_slots")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        if taken == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(taken, 2);

    let refused = upload_pdf(&app, &pet, 10_000).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&refused) >= 1);
    let (_, body) = error_of(refused).await;
    assert!(
        body["error"].as_str().unwrap().contains("2 uploads running"),
        "{body}"
    );

    // One ends: its slot is given back.
    drop(running.pop());
    let mut accepted = StatusCode::TOO_MANY_REQUESTS;
    for _ in 0..50 {
        accepted = upload_pdf(&app, &pet, 10_000).await.status();
        if accepted != StatusCode::TOO_MANY_REQUESTS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(accepted, StatusCode::CREATED);

    // A server that died mid-upload left a slot whose lease has ended: it does not count.
    drop(running);
    // Their handlers end with their connections, and each slot is given back by a task its drop spawned.
    eventually(SETTLE, "the dropped uploads gave their slots back", || async {
        sqlx::query_scalar::<_, i64>("select count(*) from upload_slots")
            .fetch_one(&app.pool)
            .await
            .unwrap()
            == 0
    })
    .await;
    let user: uuid::Uuid = sqlx::query_scalar("select id from users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    for _ in 0..2 {
        sqlx::query("insert into upload_slots (id, user_id, lease_until) values ($1, $2, now() - interval '1 second')")
            .bind(uuid::Uuid::new_v4())
            .bind(user)
            .execute(&app.pool)
            .await
            .unwrap();
    }
    assert_eq!(upload_pdf(&app, &pet, 10_000).await.status(), StatusCode::CREATED);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_scrub_coverage_is_shown_to_admins_only(pool: PgPool) {
    let app = spawn_app(pool).await;
    let pet = a_pet_of(&app).await;
    assert_eq!(upload_pdf(&app, &pet, 5_000).await.status(), StatusCode::CREATED);
    let as_owner = app
        .client
        .get(app.url("/api/admin/integrity/coverage"))
        .send()
        .await
        .unwrap();
    assert_eq!(as_owner.status(), StatusCode::FORBIDDEN);

    app.create_user("admin@example.org", &[Role::Admin], None).await;
    let admin = app.browser_for("admin@example.org").await;
    let coverage: Value = admin
        .get(app.url("/api/admin/integrity/coverage"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(coverage["documents"], 1);
    assert_eq!(coverage["rehashed"], 0, "nothing scrubbed yet");
    assert_eq!(coverage["period_days"], 30);
    let page = admin
        .get(app.url("/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Re-hashed in the last 30 days: 0 of 1 documents."),
        "the admin page shows it"
    );
}
