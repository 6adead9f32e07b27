//! Hardening found by probing a running server and by reading the code: second-factor codes outside
//! sign-in, the sign-up pre-hijack, admin reads that did work first, uploads broken off, reset links a
//! password change leaves, text PostgreSQL cannot store, quotas two uploads share, device names, what a
//! deleted owner leaves to a clinic, search and address limits, downloads from a stalling store,
//! malformed ranges, a missing manifest, and where a photo was taken.

use crate::documents::{Setup, file, png, with_a_pet};
use crate::security::{a_pet_of, error_of, upload_pdf};
use crate::support::{PASSWORD, client_with_jar, count, spawn_app, spawn_app_with, test_config};
use pawfile::{domain::Role, net::TrustedProxies, rate_limit::Limit, testing::TestBucket};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use std::time::Duration;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    time::Instant,
};

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn wrong_second_factor_codes_outside_sign_in_count_as_failed_sign_ins(pool: PgPool) {
    use pawfile::auth::two_factor::code_for;
    let app = spawn_app(pool).await;
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

    // Confirming the enrolment, new recovery codes, turning it off: every wrong code counts.
    for _ in 0..3 {
        let wrong = app
            .post_form("/api/account/2fa/confirm", &[("code", "000000")])
            .await;
        assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let on = app
        .post_form(
            "/api/account/2fa/confirm",
            &[("code", &code_for(&secret, 0).unwrap())],
        )
        .await;
    assert_eq!(on.status(), StatusCode::OK);
    for _ in 0..4 {
        let wrong = app
            .post_form("/api/account/2fa/recovery-codes", &[("code", "000000")])
            .await;
        assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    for _ in 0..3 {
        let wrong = app
            .post_form("/api/account/2fa/disable", &[("code", "111111")])
            .await;
        assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    let eleventh = app
        .post_form("/api/account/2fa/recovery-codes", &[("code", "000000")])
        .await;

    assert_eq!(eleventh.status(), StatusCode::TOO_MANY_REQUESTS);
    let audited = count(
        &app.pool,
        "select count(*) from audit_events where action = 'sign_in_failed' and detail->>'reason' = 'wrong_code'",
    )
    .await;
    assert_eq!(audited, 10, "every wrong code is audited");
    // A right code is refused too while the window lasts: the guessing stops, not just the wrong ones.
    let right = app
        .post_form(
            "/api/account/2fa/recovery-codes",
            &[("code", &code_for(&secret, 1).unwrap())],
        )
        .await;
    assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_sign_up_link_creates_nothing_without_the_password_chosen_at_sign_up(pool: PgPool) {
    let app = spawn_app(pool).await;
    // Someone signs up a stranger's address with a password of their own.
    let registered = app
        .register("stranger@example.org", "Stranger", "the registrant's own words")
        .await;
    assert_eq!(registered.status(), StatusCode::ACCEPTED);
    let mail = app.mail_to("stranger@example.org", 1).await;
    let token = mail[0].token("/verify-email").unwrap();

    // The stranger follows the link from their mail: without that password, nothing is created.
    let (stranger, _) = client_with_jar();
    let confirm = |password: &'static str| {
        stranger
            .post(app.url("/api/verify-email"))
            .form(&[("token", token.as_str()), ("password", password)])
            .send()
    };
    let (status, body) = error_of(confirm("my own password guess").await.unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "password");
    assert_eq!(body["error"], pawfile::auth::WRONG_SIGN_UP_PASSWORD);
    assert_eq!(
        count(&app.pool, "select count(*) from users").await,
        0,
        "nothing created"
    );
    assert_eq!(
        count(
            &app.pool,
            "select count(*) from audit_events where action = 'sign_in_failed'
             and detail->>'reason' = 'wrong_sign_up_password'"
        )
        .await,
        1,
        "counted and audited as a failed sign-in"
    );

    // The stranger signs up for themselves: their link, their password; the account is theirs.
    let registered = app.register("stranger@example.org", "Stranger", PASSWORD).await;
    assert_eq!(registered.status(), StatusCode::ACCEPTED);
    let mail = app.mail_to("stranger@example.org", 2).await;
    let own_token = mail
        .iter()
        .filter_map(|mail| mail.token("/verify-email"))
        .find(|own| *own != token)
        .unwrap();
    let own = app
        .post_form(
            "/api/verify-email",
            &[("token", &own_token), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(own.status(), StatusCode::OK, "{}", own.text().await.unwrap());
    let (other, _) = client_with_jar();
    let registrant = other
        .post(app.url("/api/login"))
        .form(&[
            ("email", "stranger@example.org"),
            ("password", "the registrant's own words"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        registrant.status(),
        StatusCode::UNAUTHORIZED,
        "the registrant's password opens nothing"
    );
    let old_link = confirm("the registrant's own words").await.unwrap();
    assert_eq!(
        old_link.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "the first link ended with the sign-up"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn guessing_the_password_on_a_sign_up_link_is_limited_like_a_sign_in(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.register("stranger@example.org", "Stranger", "the registrant's own words")
        .await;
    let mail = app.mail_to("stranger@example.org", 1).await;
    let token = mail[0].token("/verify-email").unwrap();
    let confirm = |password: &'static str| {
        app.client
            .post(app.url("/api/verify-email"))
            .form(&[("token", token.as_str()), ("password", password)])
            .send()
    };
    for _ in 0..10 {
        let wrong = confirm("a guess at it").await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let limited = confirm("the registrant's own words").await.unwrap();
    assert_eq!(
        limited.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right one, once limited"
    );
    assert_eq!(count(&app.pool, "select count(*) from users").await, 0);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_right_password_on_the_link_opens_the_account(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.register("olivia@example.org", "Olivia", PASSWORD).await;
    let response = app.verify_newest("olivia@example.org", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.me().await.unwrap().email.as_str(), "olivia@example.org");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_backups_overview_checks_the_role_before_any_work_and_never_lists_the_bucket(pool: PgPool) {
    let app = spawn_app(pool).await;
    // The start-up reconcile lists the documents bucket: counted before, not during.
    let reconciled = r#"pawfile_task_runs_total{task="reconcile",outcome="ok"}"#;
    pawfile::testing::eventually(pawfile::testing::SETTLE, "the start-up reconcile ran", || async {
        app.metric(reconciled).await >= 1.0
    })
    .await;
    let lists = r#"pawfile_s3_requests_total{operation="ListObjectsV2",outcome="ok"}"#;
    let before = app.metric(lists).await;
    app.signed_in_owner("olivia@example.org").await;

    let refused = app
        .client
        .get(app.url("/api/admin/backups"))
        .send()
        .await
        .unwrap();

    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.metric(lists).await,
        before,
        "an owner made the server list S3"
    );

    app.create_user("admin@example.org", &[Role::Admin], None).await;
    let admin = app.browser_for("admin@example.org").await;
    let overview = admin.get(app.url("/api/admin/backups")).send().await.unwrap();
    assert_eq!(overview.status(), StatusCode::OK);
    assert_eq!(
        app.metric(lists).await,
        before,
        "a page read lists nothing either"
    );
}

/// Starts a chunked (length unknown) upload of a PDF to `pet` as `cookie`; returns the open connection.
async fn chunked_upload(app: &crate::support::TestApp, cookie: &str, pet: &str) -> tokio::net::TcpStream {
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/pets/{pet}/documents HTTP/1.1\r\nHost: {address}\r\nCookie: {cookie}\r\n\
         X-Pawfile-Client: 1\r\nContent-Type: multipart/form-data; boundary=XYZ\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    write_chunk(
        &mut stream,
        b"--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"scan.pdf\"\r\n\
          Content-Type: application/pdf\r\n\r\n%PDF-1.7\n",
    )
    .await
    .unwrap();
    stream
}

async fn write_chunk(stream: &mut tokio::net::TcpStream, data: &[u8]) -> std::io::Result<()> {
    stream
        .write_all(format!("{:x}\r\n", data.len()).as_bytes())
        .await?;
    stream.write_all(data).await?;
    stream.write_all(b"\r\n").await
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn an_upload_of_unknown_length_broken_off_is_charged_for_what_arrived(pool: PgPool) {
    let app = spawn_app(pool).await;
    let user = app.signed_in_owner("olivia@example.org").await;
    let pet: Value = app
        .post_form("/api/pets/create", &[("name", "Biscuit"), ("species", "dog")])
        .await
        .json()
        .await
        .unwrap();
    let cookie = app.session_cookie().unwrap();
    let mut stream = chunked_upload(&app, &cookie, pet.as_str().unwrap()).await;
    for _ in 0..3 {
        write_chunk(&mut stream, &vec![b'x'; 1 << 20]).await.unwrap();
    }

    drop(stream);

    let key = format!("upload_bytes:user:{}", user.id);
    let started = Instant::now();
    loop {
        let charged: Option<i64> =
            sqlx::query_scalar("select sum(hits)::int8 from rate_limit_hits where key = $1")
                .bind(&key)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        if charged.unwrap_or(0) >= 3 << 20 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "charged {charged:?} bytes for 3 MiB received"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&app.pool, "select count(*) from documents").await, 0);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_changed_password_spends_the_reset_links_sent_before(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.signed_in_owner("olivia@example.org").await;
    let (anonymous, _) = client_with_jar();
    anonymous
        .post(app.url("/api/password/forgot"))
        .form(&[("email", "olivia@example.org")])
        .send()
        .await
        .unwrap();
    let mail = app.mail_to("olivia@example.org", 2).await;
    let token = mail
        .iter()
        .find_map(|mail| mail.token("/reset-password"))
        .unwrap();

    let changed = app
        .post_form(
            "/api/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "a fresh secret phrase"),
            ],
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);

    let (status, body) = error_of(
        anonymous
            .post(app.url("/api/password/reset"))
            .form(&[
                ("token", token.as_str()),
                ("new_password", "the attacker's choice here"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "token");
    let signed_in = anonymous
        .post(app.url("/api/login"))
        .form(&[
            ("email", "olivia@example.org"),
            ("password", "the attacker's choice here"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn text_holding_nul_is_refused_naming_the_field_on_every_kind_of_route(pool: PgPool) {
    let app = spawn_app(pool).await;
    let pet = a_pet_of(&app).await;
    let invalid = |field: &'static str| {
        move |(status, body): (StatusCode, Value)| {
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(body["kind"], "invalid", "{body}");
            assert_eq!(body["field"], field, "{body}");
            assert_eq!(body["error"], pawfile::domain::UNSTORABLE, "{body}");
        }
    };
    let get = |path: String| app.client.get(app.url(&path)).send();

    invalid("q")(error_of(get("/api/records/search?q=a%00b".to_owned()).await.unwrap()).await);
    invalid("category")(
        error_of(
            get(format!("/api/pets/{pet}/documents?category=%00"))
                .await
                .unwrap(),
        )
        .await,
    );
    // A server function reads any body as a form, whatever it claims to be: so is it checked.
    for content_type in [
        "text/plain",
        "application/octet-stream",
        "application/json",
        "multipart/form-data; boundary=x",
    ] {
        invalid("name")(
            error_of(
                app.client
                    .post(app.url("/api/pets/create"))
                    .header("content-type", content_type)
                    .body("name=Rex%00&species=dog")
                    .send()
                    .await
                    .unwrap(),
            )
            .await,
        );
    }
    invalid("id")(error_of(get("/api/documents/%00".to_owned()).await.unwrap()).await);
    let (status, body) = error_of(get("/api/records/search?%00=1".to_owned()).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    invalid("caption")(
        error_of(
            app.client
                .post(app.url(&format!("/api/pets/{pet}/documents")))
                .multipart(file(b"%PDF-1.7\nx".to_vec(), "scan.pdf").text("caption", "a\u{0}b".to_owned()))
                .send()
                .await
                .unwrap(),
        )
        .await,
    );
    // A page address: an answer, not a 500.
    let page = app
        .client
        .get(app.url("/search?q=%00"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // A plain form goes back to its page with the error for the field.
    let form = app
        .client
        .post(app.url("/api/pets/create"))
        .header("accept", "text/html")
        .header("sec-fetch-site", "same-origin")
        .header("referer", app.url("/pets/new"))
        .form(&[("name", "Rex\u{0}"), ("species", "dog")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::FOUND);
    let location = form.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&app.url("/pets/new?")), "{location}");
    assert!(location.contains("__err="), "{location}");
    let page = app
        .client
        .get(&location)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(pawfile::domain::UNSTORABLE),
        "the form shows the message"
    );
    assert_eq!(
        count(&app.pool, "select count(*) from pets").await,
        1,
        "nothing created"
    );
}

/// Streams a PDF of `chunks` MiB to the pet, one MiB each time `pacing` says so.
fn paced_upload(
    setup: &Setup,
    chunks: usize,
    pacing: tokio::sync::mpsc::Receiver<()>,
    declared: bool,
) -> tokio::task::JoinHandle<StatusCode> {
    let url = setup.app.url(&format!("/api/pets/{}/documents", setup.pet));
    let client = setup.owner.clone();
    tokio::spawn(async move {
        let body = paced_body(chunks, pacing);
        let part = if declared {
            reqwest::multipart::Part::stream_with_length(body, (chunks << 20) as u64)
        } else {
            reqwest::multipart::Part::stream(body)
        };
        client
            .post(url)
            .multipart(reqwest::multipart::Form::new().part("file", part.file_name("scan.pdf")))
            .send()
            .await
            .map_or(StatusCode::REQUEST_TIMEOUT, |response| response.status())
    })
}

/// The body of [`paced_upload`].
fn paced_body(chunks: usize, pacing: tokio::sync::mpsc::Receiver<()>) -> reqwest::Body {
    let stream = futures::stream::unfold((0, pacing), move |(sent, mut pacing)| async move {
        if sent == chunks {
            return None;
        }
        pacing.recv().await?;
        let mut chunk = vec![b'x'; 1 << 20];
        if sent == 0 {
            chunk[..9].copy_from_slice(b"%PDF-1.7\n");
        }
        Some((Ok::<_, std::io::Error>(chunk), (sent + 1, pacing)))
    });
    reqwest::Body::wrap_stream(stream)
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn of_two_uploads_that_fit_alone_but_not_together_one_is_stored_whichever_way_the_lengths_come(
    pool: PgPool,
) {
    let mut config = test_config();
    config.documents.quota_per_owner = bytesize::ByteSize::mib(12);
    config.limits.concurrent_uploads = 4;
    let setup = with_a_pet(spawn_app_with(pool, config).await).await;
    for declared in [false, true] {
        let (go_a, pace_a) = tokio::sync::mpsc::channel(16);
        let (go_b, pace_b) = tokio::sync::mpsc::channel(16);
        let first = paced_upload(&setup, 10, pace_a, declared);
        go_a.send(()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let second = paced_upload(&setup, 10, pace_b, declared);
        // The two interleave, a MiB each in turn.
        for _ in 0..10 {
            let _ = go_b.send(()).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = go_a.send(()).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop((go_a, go_b));
        let statuses = [first.await.unwrap(), second.await.unwrap()];
        assert!(
            statuses.contains(&StatusCode::CREATED),
            "declared lengths {declared}: neither was stored: {statuses:?}"
        );
        let stored = count(&setup.app.pool, "select count(*) from documents").await;
        assert_eq!(stored, 1, "declared lengths {declared}: {statuses:?}");
        sqlx::query("delete from documents")
            .execute(&setup.app.pool)
            .await
            .unwrap();
    }
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_reserved_device_name_keeps_its_extension(pool: PgPool) {
    let setup = with_a_pet(spawn_app(pool).await).await;
    for (sent, kept) in [("CON.pdf", "CON_.pdf"), ("con.txt.pdf", "con_.txt.pdf")] {
        let (status, body) = setup.upload(file(b"%PDF-1.7\nx".to_vec(), sent)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body[0]["filename"], kept);
        let download = setup
            .download(&setup.app.address, body[0]["id"].as_str().unwrap())
            .await;
        let disposition = download.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(disposition.contains(kept), "{disposition}");
    }
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_clinic_keeps_what_its_staff_uploaded_for_a_pet_whose_owner_deleted_the_account(pool: PgPool) {
    let setup = with_a_pet(spawn_app(pool).await).await;
    let app = &setup.app;
    let vet = setup.shared_with_a_vet().await;
    let uploaded: Value = vet
        .post(app.url(&format!("/api/pets/{}/documents", setup.pet)))
        .multipart(file(
            b"%PDF-1.7\nthe clinic's x-ray report".to_vec(),
            "report.pdf",
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = uploaded[0]["id"].as_str().unwrap().to_owned();
    let deleted = setup
        .owner
        .post(app.url("/api/account/delete"))
        .form(&[("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    sqlx::query("update users set deletion_requested_at = now() - interval '31 days' where email = 'alice@example.org'")
        .execute(&app.pool)
        .await
        .unwrap();

    let purged = pawfile::deletion::purge_due(
        &app.pool,
        &app.documents.store,
        &app.backups.store,
        &pawfile::testing::backup_keys(),
        Duration::from_secs(3600),
    )
    .await
    .unwrap();

    assert_eq!(purged, 1);
    let download = vet
        .get(app.url(&format!("/api/documents/{id}/content")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        download.status(),
        StatusCode::OK,
        "the clinic still opens its own upload"
    );
    assert_eq!(
        download.bytes().await.unwrap(),
        &b"%PDF-1.7\nthe clinic's x-ray report"[..]
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn record_searches_are_limited_per_user(pool: PgPool) {
    let mut config = test_config();
    config.limits.searches_per_user = Limit::new(3, Duration::from_secs(60));
    let app = spawn_app_with(pool, config).await;
    app.signed_in_owner("olivia@example.org").await;
    for _ in 0..3 {
        let search = app
            .client
            .get(app.url("/api/records/search?q=kidney"))
            .send()
            .await
            .unwrap();
        assert_eq!(search.status(), StatusCode::OK);
    }
    let fourth = app
        .client
        .get(app.url("/api/records/search?q=kidney"))
        .send()
        .await
        .unwrap();
    assert_eq!(fourth.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn an_ipv6_client_is_counted_by_its_64_in_address_limits(pool: PgPool) {
    let mut config = test_config();
    config.trusted_proxies = TrustedProxies::new(vec!["127.0.0.1/32".parse().unwrap()]);
    let app = spawn_app_with(pool, config).await;
    app.create_user("olivia@example.org", &[Role::Owner], None).await;
    let (client, _) = client_with_jar();
    let sign_in = |from: String| {
        client
            .post(app.url("/api/login"))
            .header("x-forwarded-for", from)
            .form(&[("email", "olivia@example.org"), ("password", "not the password")])
            .send()
    };
    // Ten failures, each from another address of one /64.
    for n in 1..=10 {
        let failed = sign_in(format!("2001:db8:1:2::{n:x}")).await.unwrap();
        assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
    }
    let same_network = sign_in("2001:db8:1:2:ffff::1".to_owned()).await.unwrap();
    assert_eq!(same_network.status(), StatusCode::TOO_MANY_REQUESTS);
    let other_network = sign_in("2001:db8:1:3::1".to_owned()).await.unwrap();
    assert_eq!(other_network.status(), StatusCode::UNAUTHORIZED);
}

/// A proxy in front of an S3 endpoint that forwards requests whole but answers only the first `bytes`
/// of each response, then holds the connection open without another byte.
async fn stalling_after(upstream: std::net::SocketAddr, bytes: usize) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                });
                let mut sent = 0;
                let mut buffer = vec![0u8; 64 * 1024];
                while let Ok(read) = server_read.read(&mut buffer).await {
                    if read == 0 {
                        break;
                    }
                    let allowed = read.min(bytes.saturating_sub(sent));
                    if client_write.write_all(&buffer[..allowed]).await.is_err() {
                        break;
                    }
                    sent += allowed;
                    if sent >= bytes {
                        // Stalled: the connection stays open, silent.
                        tokio::time::sleep(Duration::from_secs(600)).await;
                    }
                }
                up.abort();
            });
        }
    });
    addr
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_download_whose_store_stalls_half_way_ends_within_the_s3_timeout(pool: PgPool) {
    let mut documents = TestBucket::embedded().await;
    let direct = documents.store.clone();
    let endpoint = documents.settings.endpoint.clone().unwrap();
    let upstream = format!("{}:{}", endpoint.host_str().unwrap(), endpoint.port().unwrap())
        .parse()
        .unwrap();
    // The response head and a first stretch of the body get through; then nothing.
    let proxy = stalling_after(upstream, 300_000).await;
    let mut settings = documents.settings.clone();
    settings.endpoint = Some(format!("http://{proxy}").parse().unwrap());
    settings.timeout = Duration::from_secs(2);
    documents.store = pawfile::storage::ObjectStore::connect(&settings).await;
    let app =
        crate::support::spawn_app_on(pool, documents, TestBucket::embedded().await, test_config()).await;
    let pet = a_pet_of(&app).await;
    // Stored directly (the proxy would stall the upload's answer too).
    let id = pawfile::domain::DocumentId::new();
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.resize(2 << 20, b'x');
    direct
        .put_bytes(&format!("documents/{id}"), bytes.into(), "application/pdf")
        .await
        .unwrap();
    let owner: uuid::Uuid = sqlx::query_scalar("select id from users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        "insert into documents (id, pet_id, uploaded_by, original_filename, content_type, size_bytes, sha256,
                                crc32, bucket, object_key, thumbnail_state)
         values ($1, $2::uuid, $3, 'big.pdf', 'application/pdf', $4, $5, 0, $6, $7, 'none')",
    )
    .bind(id.0)
    .bind(&pet)
    .bind(owner)
    .bind(2i64 << 20)
    .bind(vec![0u8; 32])
    .bind(direct.bucket())
    .bind(format!("documents/{id}"))
    .execute(&app.pool)
    .await
    .unwrap();

    let started = Instant::now();
    let response = app
        .client
        .get(app.url(&format!("/api/documents/{id}/content")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "the download starts");
    let body = tokio::time::timeout(Duration::from_secs(15), response.bytes()).await;

    let took = started.elapsed();
    assert!(
        matches!(body, Ok(Err(_))),
        "the download ends with its connection cut, not with a short or whole body"
    );
    assert!(took < Duration::from_secs(8), "it ended after {took:?}");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_malformed_range_is_ignored(pool: PgPool) {
    let app = spawn_app(pool).await;
    let pet = a_pet_of(&app).await;
    let stored: Value = upload_pdf(&app, &pet, 5_000).await.json().await.unwrap();
    let id = stored[0]["id"].as_str().unwrap();
    for range in ["bytes=nonsense", "bytes=--1", "bytes="] {
        let response = app
            .client
            .get(app.url(&format!("/api/documents/{id}/content")))
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{range}");
        assert_eq!(response.bytes().await.unwrap().len(), 5_000, "{range}");
    }
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_backups_page_and_list_say_when_a_snapshot_lost_its_manifest(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.create_user("admin@example.org", &[Role::Admin], None).await;
    let admin = app.browser_for("admin@example.org").await;
    let backups = crate::support::test_backups(&app.pool, &app.documents, &app.backups);
    let by = pawfile::backup::StartedBy {
        trigger: pawfile::backup::Trigger::Cli,
        user: None,
        client_addr: None,
    };
    let report = backups.run(by).await.unwrap().unwrap();
    let manifest: String = sqlx::query_scalar("select manifest_object from backup_runs where id = $1")
        .bind(report.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    app.backups.store.delete(&manifest).await.unwrap();

    let check =
        pawfile::backup::check_manifests(&app.pool, &app.backups.store, &pawfile::testing::backup_keys())
            .await
            .unwrap();

    assert_eq!(check.missing, vec![report.id]);
    let listed = pawfile::backup::list_runs(&app.pool, 10).await.unwrap();
    assert!(listed[0].manifest_missing, "the list says so");
    let overview: Value = admin
        .get(app.url("/api/admin/backups"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(overview["runs"][0]["manifest_missing"], true, "{overview}");
    assert!(
        overview["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|warning| warning.as_str().unwrap().contains("lost their manifest")),
        "{overview}"
    );

    // An object someone else wrote into the bucket is listed as refused once a check has read it.
    app.backups
        .store
        .put_bytes(
            "manifests/planted",
            b"not signed".to_vec().into(),
            "application/octet-stream",
        )
        .await
        .unwrap();
    pawfile::backup::check_manifests(&app.pool, &app.backups.store, &pawfile::testing::backup_keys())
        .await
        .unwrap();
    let overview: Value = admin
        .get(app.url("/api/admin/backups"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(overview["refused"][0][0], "manifests/planted", "{overview}");
    assert_eq!(overview["refused"][0][1], "it is not signed", "{overview}");
    assert!(
        overview["signing_key"]
            .as_str()
            .unwrap()
            .starts_with("pawfile-backup-verify-key-1:"),
        "{overview}"
    );
}

/// Runs exiftool (Debian's `libimage-exiftool-perl`) with `args`; its standard output.
fn exiftool(args: &[&str]) -> String {
    let output = std::process::Command::new("exiftool")
        .args(args)
        .output()
        .expect("exiftool is installed (scripts/test installs libimage-exiftool-perl)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A photo in `format` with a phone's location written into its EXIF and XMP by exiftool, and an
/// orientation.
fn photo_with_location(format: image::ImageFormat, extension: &str) -> Vec<u8> {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join(format!("photo.{extension}"));
    let image = image::DynamicImage::ImageRgb8(image::ImageBuffer::from_fn(48, 32, |x, y| {
        image::Rgb([(x * 5) as u8, (y * 7) as u8, 90])
    }));
    image.save_with_format(&path, format).unwrap();
    let path = path.to_str().unwrap();
    exiftool(&[
        "-overwrite_original",
        "-EXIF:GPSLatitude=51.501",
        "-EXIF:GPSLatitudeRef=N",
        "-EXIF:GPSLongitude=0.142",
        "-EXIF:GPSLongitudeRef=W",
        "-EXIF:Orientation#=6",
        "-EXIF:Make=Pawfile Test Phone",
        "-XMP-exif:GPSLatitude=51.501",
        "-XMP-exif:GPSLongitude=-0.142",
        "-XMP-dc:Title=Rex at home",
        path,
    ]);
    let tags = exiftool(&["-s", "-G", path]);
    assert!(tags.contains("GPSLatitude"), "the fixture has a position: {tags}");
    std::fs::read(path).unwrap()
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn where_a_photo_was_taken_is_removed_at_upload_and_the_rest_kept(pool: PgPool) {
    let setup = with_a_pet(spawn_app(pool).await).await;
    for (format, extension) in [
        (image::ImageFormat::Jpeg, "jpg"),
        (image::ImageFormat::Png, "png"),
        (image::ImageFormat::WebP, "webp"),
    ] {
        let original = photo_with_location(format, extension);
        let (status, body) = setup
            .upload(file(original.clone(), &format!("rex.{extension}")))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{extension}: {body}");
        assert_eq!(body[0]["location_removed"], true, "{extension}: the page says so");
        let download = setup
            .download(&setup.app.address, body[0]["id"].as_str().unwrap())
            .await;
        let stored = download.bytes().await.unwrap().to_vec();

        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join(format!("stored.{extension}"));
        std::fs::write(&path, &stored).unwrap();
        let tags = exiftool(&["-s", "-G", path.to_str().unwrap()]);
        assert!(!tags.to_ascii_lowercase().contains("gps"), "{extension}: {tags}");
        assert!(
            tags.contains("Orientation"),
            "{extension}: the orientation stays: {tags}"
        );
        assert!(
            tags.contains("Pawfile Test Phone"),
            "{extension}: the rest of the EXIF stays: {tags}"
        );
        assert!(
            tags.contains("Rex at home"),
            "{extension}: the rest of the XMP stays: {tags}"
        );
        let sha256: String = {
            use sha2::Digest;
            sha2::Sha256::digest(&stored)
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect()
        };
        assert_eq!(
            body[0]["sha256"], sha256,
            "{extension}: the SHA-256 is of what is stored"
        );
        assert_eq!(
            image::load_from_memory(&stored).unwrap().to_rgb8(),
            image::load_from_memory(&original).unwrap().to_rgb8(),
            "{extension}: the picture is not re-encoded"
        );
        if extension == "webp" {
            assert_eq!(
                stored.len(),
                original.len(),
                "a WebP keeps its length (its RIFF size)"
            );
        }
    }
    // A photo without a position is stored exactly as it came.
    let plain = png(40, 30);
    let (status, body) = setup.upload(file(plain.clone(), "plain.png")).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body[0]["location_removed"], false);
    let download = setup
        .download(&setup.app.address, body[0]["id"].as_str().unwrap())
        .await;
    assert_eq!(download.bytes().await.unwrap().to_vec(), plain);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn what_pawfile_writes_in_its_data_folder_only_its_own_user_may_read(pool: PgPool) {
    use std::os::unix::fs::PermissionsExt;
    let served = crate::hostile::Served::start(&pool, &[]).await;
    let (cookie, pet) = crate::hostile::owner_with_pet(&pool, &served, "olivia@example.org").await;
    let uploaded = reqwest::Client::new()
        .post(served.url(&format!("/api/pets/{pet}/documents")))
        .header("cookie", &cookie)
        .header("x-pawfile-client", "1")
        .multipart(file(b"%PDF-1.7\nthe scan".to_vec(), "scan.pdf"))
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    // Mail, too: a password reset link written into the mail folder.
    reqwest::Client::new()
        .post(served.url("/api/password/forgot"))
        .header("x-pawfile-client", "1")
        .form(&[("email", "olivia@example.org")])
        .send()
        .await
        .unwrap();
    crate::support::wait_for_mail(&served.data.path().join("mail"), "olivia@example.org", 1).await;

    let mut seen = (0, 0);
    let mut folders = vec![served.data.path().to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            if path.is_dir() {
                assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
                folders.push(path);
                seen.0 += 1;
            } else {
                assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
                seen.1 += 1;
            }
        }
    }
    for kept in [
        "backup-key.txt",
        "backup-signing-key.txt",
        "s3.credentials",
        "backup-s3.credentials",
    ] {
        let mode = std::fs::metadata(served.data.path().join(kept))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{kept}");
    }
    assert!(
        seen.0 >= 3 && seen.1 >= 5,
        "the folder holds what the test expects: {seen:?}"
    );
}
