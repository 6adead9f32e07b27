//! Mail and the account flows that depend on it: sign-up confirmed by a link, password reset,
//! invitations, the queue and its retries, end to end through a real SMTP server on loopback (every
//! test app sends to one; the binary's file default is tested in `startup`).

use crate::support::{
    PASSWORD, TEST_MAIL_RETRY, client_with_jar, count, spawn_app, spawn_app_with, spawn_app_with_mail,
    test_config,
};
use pawfile::{
    auth::{CHECK_YOUR_MAIL, LINK_NOT_VALID, RESET_LINK_NOT_VALID, RESET_REQUESTED},
    domain::Role,
    mail::Transport,
    rate_limit::Limit,
    testing::{SETTLE, SmtpSink, eventually},
};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use std::time::Duration;

async fn json(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_sign_up_link_creates_the_account_once_and_no_account_exists_before(pool: PgPool) {
    let app = spawn_app(pool).await;

    let (status, body) = json(app.register("Olivia@Example.org", "Olivia Owner", PASSWORD).await).await;

    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body, CHECK_YOUR_MAIL);
    assert_eq!(count(&app.pool, "select count(*) from users").await, 0);
    assert!(app.me().await.is_none());
    let (status, _) = json(app.login("olivia@example.org", PASSWORD).await).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "no sign-in before the address is confirmed"
    );

    let mail = app.mail_to("olivia@example.org", 1).await;
    assert_eq!(mail[0].from, "noreply@pawfile.test");
    let link = mail[0].link("/verify-email").expect("a link in the plain text");
    assert!(
        link.as_str().starts_with("http://127.0.0.1/verify-email?token="),
        "{link}"
    );
    assert!(
        mail[0].html.contains("/verify-email?token="),
        "the HTML part links too"
    );

    let (status, user) = json(app.verify_newest("olivia@example.org", PASSWORD).await).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["email"], "olivia@example.org");
    assert_eq!(user["display_name"], "Olivia Owner");
    assert_eq!(app.me().await.unwrap().email.as_str(), "olivia@example.org");
    assert_eq!(
        count(
            &app.pool,
            "select count(*) from audit_events where action = 'register'"
        )
        .await,
        1
    );

    // Once only.
    let (status, body) = json(app.verify_newest("olivia@example.org", PASSWORD).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"], LINK_NOT_VALID);
    // The sent message no longer holds its token.
    assert_eq!(
        count(
            &app.pool,
            "select count(*) from mail_outbox where sent_at is not null and message is null"
        )
        .await,
        1
    );
    assert_eq!(count(&app.pool, "select count(*) from mail_outbox").await, 1);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_sign_up_link_expires_after_48_hours(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.register("olivia@example.org", "Olivia", PASSWORD).await;
    app.mail_to("olivia@example.org", 1).await;
    let hours_left: f64 = sqlx::query_scalar(
        "select extract(epoch from expires_at - now())::float8 / 3600 from pending_registrations",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!((47.9..=48.0).contains(&hours_left), "{hours_left}");
    sqlx::query("update pending_registrations set expires_at = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();

    let (status, body) = json(app.verify_newest("olivia@example.org", PASSWORD).await).await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"], LINK_NOT_VALID);
    assert_eq!(count(&app.pool, "select count(*) from users").await, 0);
    assert_eq!(
        count(&app.pool, "select count(*) from pending_registrations").await,
        0
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn one_address_gets_a_bounded_number_of_mails_from_anonymous_requests(pool: PgPool) {
    let mut config = test_config();
    config.limits.mails_per_recipient = Limit::new(2, Duration::from_secs(3600));
    let app = spawn_app_with(pool, config).await;

    for _ in 0..3 {
        let (status, body) = json(app.register("olivia@example.org", "Olivia", PASSWORD).await).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::ACCEPTED, Some(CHECK_YOUR_MAIL))
        );
    }
    let (status, body) = json(
        app.post_form("/api/password/forgot", &[("email", "olivia@example.org")])
            .await,
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::ACCEPTED, Some(RESET_REQUESTED))
    );

    assert_eq!(
        count(
            &app.pool,
            "select count(*) from mail_outbox where recipient = 'olivia@example.org'"
        )
        .await,
        2
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_password_reset_answers_alike_for_unknown_addresses_works_once_and_ends_every_session(
    pool: PgPool,
) {
    let mut config = test_config();
    config.limits.sign_in_failures_per_account = Limit::new(3, Duration::from_secs(3600));
    let app = spawn_app_with(pool, config).await;
    app.signed_in_owner("olivia@example.org").await;
    let (laptop, _) = client_with_jar();
    let signed_in = laptop
        .post(app.url("/api/login"))
        .form(&[("email", "olivia@example.org"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::OK);
    // Someone guessing from elsewhere has locked the account's sign-in.
    for _ in 0..4 {
        let (stranger, _) = client_with_jar();
        stranger
            .post(app.url("/api/login"))
            .form(&[("email", "olivia@example.org"), ("password", "wrong guess")])
            .send()
            .await
            .unwrap();
    }
    let (status, _) = json(app.login("olivia@example.org", PASSWORD).await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    let unknown = app
        .post_form("/api/password/forgot", &[("email", "nobody@example.org")])
        .await;
    let known = app
        .post_form("/api/password/forgot", &[("email", "Olivia@example.org")])
        .await;
    assert_eq!(unknown.status(), StatusCode::ACCEPTED);
    assert_eq!(known.status(), StatusCode::ACCEPTED);
    assert_eq!(unknown.text().await.unwrap(), known.text().await.unwrap());
    let mail = app.mail_to("olivia@example.org", 2).await;
    let token = mail[1].token("/reset-password").expect("a reset link");
    assert!(
        recipients(&app).await.iter().all(|to| to != "nobody@example.org"),
        "no mail for an address without an account"
    );
    let hours_left: f64 = sqlx::query_scalar(
        "select extract(epoch from expires_at - now())::float8 / 3600 from password_resets",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!((0.9..=1.0).contains(&hours_left), "{hours_left}");
    let stored: Vec<u8> = sqlx::query_scalar("select token_hash from password_resets")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_ne!(stored, token.as_bytes(), "only a hash of the token is stored");

    let (status, body) = json(
        app.post_form(
            "/api/password/reset",
            &[("token", &token), ("new_password", "a brand new passphrase")],
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Every session ended: this browser's and the laptop's.
    assert!(app.me().await.is_none());
    let me: Option<Value> = laptop
        .get(app.url("/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me, None);
    // The throttle on the account is lifted, the old password is gone, the new one works.
    let (status, _) = json(app.login("olivia@example.org", PASSWORD).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = json(app.login("olivia@example.org", "a brand new passphrase").await).await;
    assert_eq!(status, StatusCode::OK);
    // Once only.
    let (status, body) = json(
        app.post_form(
            "/api/password/reset",
            &[("token", &token), ("new_password", "yet another passphrase")],
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"], RESET_LINK_NOT_VALID);
    assert_eq!(
        count(
            &app.pool,
            "select count(*) from audit_events where action = 'reset_password'"
        )
        .await,
        1
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_reset_link_expires_after_an_hour(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.signed_in_owner("olivia@example.org").await;
    app.post_form("/api/password/forgot", &[("email", "olivia@example.org")])
        .await;
    let token = app.mail_to("olivia@example.org", 2).await[1]
        .token("/reset-password")
        .unwrap();
    sqlx::query("update password_resets set expires_at = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();

    let (status, body) = json(
        app.post_form(
            "/api/password/reset",
            &[("token", &token), ("new_password", "a brand new passphrase")],
        )
        .await,
    )
    .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"], RESET_LINK_NOT_VALID);
    let (status, _) = json(app.login("olivia@example.org", PASSWORD).await).await;
    assert_eq!(status, StatusCode::OK, "the password is unchanged");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn mail_goes_through_a_real_smtp_server(pool: PgPool) {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with_mail(pool, test_config(), Transport::smtp(&sink.server()).unwrap()).await;

    app.register("olivia@example.org", "Olivia Owner", PASSWORD).await;

    let mail = sink
        .wait_for("olivia@example.org", 1, Duration::from_secs(10))
        .await;
    assert_eq!(mail[0].subject, "Confirm your e-mail address for Pawfile");
    let token = mail[0].token("/verify-email").expect("a sign-up link");
    let (status, user) = json(
        app.post_form("/api/verify-email", &[("token", &token), ("password", PASSWORD)])
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["email"], "olivia@example.org");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_queue_retries_while_the_smtp_server_is_down_and_delivers_when_it_returns(pool: PgPool) {
    let mut sink = SmtpSink::start().await;
    sink.stop().await;
    let app = spawn_app_with_mail(pool, test_config(), Transport::smtp(&sink.server()).unwrap()).await;
    app.create_user("admin@example.org", &[Role::Admin], None).await;
    let admin = app.browser_for("admin@example.org").await;

    let started = std::time::Instant::now();
    let (status, _) = json(app.register("olivia@example.org", "Olivia", PASSWORD).await).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the request does not wait on SMTP"
    );
    // The first try fails; admins see the message being retried.
    let problems = loop {
        let status: Value = admin
            .get(app.url("/api/admin/mail"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["problems"].as_array().is_some_and(|list| !list.is_empty()) {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no failed try within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(problems["waiting"], 1);
    assert_eq!(problems["problems"][0]["recipient"], "olivia@example.org");
    assert_eq!(problems["problems"][0]["given_up"], false);
    assert!(!problems["problems"][0]["error"].as_str().unwrap().is_empty());

    sink.restart().await;

    let mail = sink
        .wait_for("olivia@example.org", 1, Duration::from_secs(15))
        .await;
    assert!(mail[0].token("/verify-email").is_some());
    // The queue records the delivery once the SMTP server has taken the message: a moment after the
    // sink has it.
    eventually(SETTLE, "the delivery recorded", || async {
        sqlx::query_scalar::<_, bool>("select exists (select from mail_outbox where sent_at is not null)")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    })
    .await;
    let attempts: i32 = sqlx::query_scalar("select attempts from mail_outbox where sent_at is not null")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(attempts >= 2, "{attempts}");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn mail_is_given_up_after_its_last_try_and_admins_see_it(pool: PgPool) {
    let mut sink = SmtpSink::start().await;
    sink.stop().await;
    let app = spawn_app_with_mail(pool, test_config(), Transport::smtp(&sink.server()).unwrap()).await;
    app.create_user("admin@example.org", &[Role::Admin], None).await;
    let admin = app.browser_for("admin@example.org").await;
    app.register("olivia@example.org", "Olivia", PASSWORD).await;

    let started = std::time::Instant::now();
    let status = loop {
        let status: Value = admin
            .get(app.url("/api/admin/mail"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["problems"][0]["given_up"] == true {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not given up: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    assert_eq!(status["waiting"], 0);
    assert_eq!(status["problems"][0]["attempts"], TEST_MAIL_RETRY.max_attempts);
    assert_eq!(
        count(
            &app.pool,
            "select count(*) from mail_outbox where failed_at is not null and message is null"
        )
        .await,
        1,
        "a message given up keeps no token"
    );
    // Owners may not read the queue.
    app.create_user("someone@example.org", &[Role::Owner], None).await;
    let owner = app.browser_for("someone@example.org").await;
    let response = owner.get(app.url("/api/admin/mail")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

/// Everyone the app's SMTP server received mail for, once the queue is empty (the test fails if it does
/// not empty: a mail still queued could be the one a caller says was never sent).
async fn recipients(app: &crate::support::TestApp) -> Vec<String> {
    eventually(SETTLE, "the mail queue emptied", || async {
        count(
            &app.pool,
            "select count(*) from mail_outbox where sent_at is null",
        )
        .await
            == 0
    })
    .await;
    app.inbox().messages().into_iter().map(|mail| mail.to).collect()
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn invited_staff_choose_their_own_password_from_the_link_once(pool: PgPool) {
    let app = spawn_app(pool).await;
    let riverside = app.create_clinic("Riverside").await;
    app.create_user("admin@example.org", &[Role::Admin], None).await;
    let admin = app.browser_for("admin@example.org").await;

    let response = admin
        .post(app.url("/api/admin/staff/invite"))
        .form(&[
            ("clinic_id", riverside.0.to_string()),
            ("email", "Nina@Example.org".to_owned()),
            ("display_name", "Nina Nurse".to_owned()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
    let mail = app.mail_to("nina@example.org", 1).await;
    assert_eq!(mail[0].subject, "You are invited to Pawfile");
    assert!(mail[0].text.contains("Riverside"), "{}", mail[0].text);
    let token = mail[0].token("/accept-invitation").expect("an invitation link");
    assert_eq!(
        count(
            &app.pool,
            "select count(*) from users where email = 'nina@example.org'"
        )
        .await,
        0
    );

    let (client, _) = client_with_jar();
    let (status, view) = json(
        client
            .get(app.url("/api/invitation"))
            .query(&[("token", &token)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["clinic_name"], "Riverside");
    assert_eq!(view["email"], "nina@example.org");
    let accept = |password: &'static str| {
        client
            .post(app.url("/api/invitation/accept"))
            .form(&[("token", token.as_str()), ("password", password)])
            .send()
    };
    let (status, user) = json(accept("nina's own passphrase").await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["roles"], serde_json::json!(["staff"]));
    assert_eq!(user["clinic_name"], "Riverside");
    let me: Value = client
        .get(app.url("/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "nina@example.org");

    let (status, body) = json(accept("another passphrase!").await.unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "token");
    let (status, _) = json(app.login("nina@example.org", "nina's own passphrase").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        count(
            &app.pool,
            "select count(*) from audit_events where action in ('invite_staff', 'create_staff')"
        )
        .await,
        2
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn an_invitation_expires_after_seven_days_and_only_admins_invite(pool: PgPool) {
    let app = spawn_app(pool).await;
    let riverside = app.create_clinic("Riverside").await;
    app.create_user("admin@example.org", &[Role::Admin], None).await;
    let admin = app.browser_for("admin@example.org").await;
    let form = [
        ("clinic_id", riverside.0.to_string()),
        ("email", "nina@example.org".to_owned()),
        ("display_name", "Nina Nurse".to_owned()),
    ];
    app.create_user("vet@example.org", &[Role::Staff], Some(riverside))
        .await;
    let vet = app.browser_for("vet@example.org").await;
    let refused = vet
        .post(app.url("/api/admin/staff/invite"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    admin
        .post(app.url("/api/admin/staff/invite"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let token = app.mail_to("nina@example.org", 1).await[0]
        .token("/accept-invitation")
        .unwrap();
    let days_left: f64 = sqlx::query_scalar(
        "select extract(epoch from expires_at - now())::float8 / 86400 from staff_invitations",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!((6.99..=7.0).contains(&days_left), "{days_left}");
    sqlx::query("update staff_invitations set expires_at = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();

    let (status, body) = json(
        app.post_form(
            "/api/invitation/accept",
            &[("token", &token), ("password", "nina's own passphrase")],
        )
        .await,
    )
    .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "token");
    assert_eq!(
        count(
            &app.pool,
            "select count(*) from users where email = 'nina@example.org'"
        )
        .await,
        0
    );
}
