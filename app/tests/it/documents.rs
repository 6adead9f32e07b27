//! The document routes over HTTP: upload, download, preview, ranges, ETags, access, trash, export, and
//! the failure paths, against a real Postgres and the embedded S3 endpoint.

use crate::support::{TestApp, spawn_app, spawn_app_with, test_config};
use pawfile::{
    domain::Role,
    testing::{SETTLE, eventually},
};
use reqwest::{
    Client, StatusCode,
    multipart::{Form, Part},
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::time::Duration;

pub(crate) fn pdf(size: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    bytes.extend((0..size.saturating_sub(bytes.len())).map(|i| (i % 253) as u8));
    bytes
}

pub(crate) fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::ImageBuffer::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut out = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

pub(crate) fn file(bytes: Vec<u8>, name: &str) -> Form {
    Form::new().part("file", Part::bytes(bytes).file_name(name.to_owned()))
}

pub(crate) struct Setup {
    pub(crate) app: TestApp,
    pub(crate) owner: Client,
    pub(crate) pet: String,
}

/// An app with an owner who has a pet.
pub(crate) async fn with_a_pet(app: TestApp) -> Setup {
    app.create_user("alice@example.org", &[Role::Owner], None).await;
    let owner = app.browser_for("alice@example.org").await;
    let pet: Value = owner
        .post(app.url("/api/pets/create"))
        .form(&[("name", "Biscuit"), ("species", "dog")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Setup {
        app,
        owner,
        pet: pet.as_str().unwrap().to_owned(),
    }
}

impl Setup {
    /// Shares the pet with a new clinic, Riverside, whose vet (`vet@riverside.example`) is signed in
    /// on the client returned.
    pub(crate) async fn shared_with_a_vet(&self) -> Client {
        let app = &self.app;
        let riverside = app.create_clinic("Riverside").await;
        app.create_user("vet@riverside.example", &[Role::Staff], Some(riverside))
            .await;
        let vet = app.browser_for("vet@riverside.example").await;
        let shared = self
            .owner
            .post(app.url("/api/pets/share"))
            .form(&[
                ("pet_id", self.pet.as_str()),
                ("clinic_id", &riverside.to_string()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(shared.status(), StatusCode::OK);
        vet
    }

    /// A lab result `vet` writes for the pet: its id.
    pub(crate) async fn record_by(&self, vet: &Client, title: &str) -> String {
        let record: Value = vet
            .post(self.app.url("/api/records/create"))
            .form(&[
                ("pet_id", self.pet.as_str()),
                ("visit_date", "2026-01-02"),
                ("kind", "lab_result"),
                ("title", title),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        record.as_str().unwrap().to_owned()
    }

    pub(crate) async fn upload(&self, form: Form) -> (StatusCode, Value) {
        let response = self
            .owner
            .post(self.app.url(&format!("/api/pets/{}/documents", self.pet)))
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Downloads document `id` through the server at `from` (an address: this app's, or a replica's).
    pub(crate) async fn download(&self, from: &str, id: &str) -> reqwest::Response {
        self.owner
            .get(format!("{from}/api/documents/{id}/content"))
            .send()
            .await
            .unwrap()
    }

    /// Uploads `bytes` as a PDF through the server at `through` and downloads them through the one at
    /// `from` (the same server, or replicas): the document's id, once the same bytes came back.
    pub(crate) async fn round_trip(&self, through: &str, from: &str, bytes: Vec<u8>) -> String {
        let uploaded = self
            .owner
            .post(format!("{through}/api/pets/{}/documents", self.pet))
            .multipart(file(bytes.clone(), "scan.pdf"))
            .send()
            .await
            .unwrap();
        assert_eq!(uploaded.status(), StatusCode::CREATED, "upload through {through}");
        let created: Value = uploaded.json().await.unwrap();
        let id = created[0]["id"].as_str().unwrap().to_owned();
        let downloaded = self.download(from, &id).await;
        assert_eq!(downloaded.status(), StatusCode::OK, "download through {from}");
        assert_eq!(downloaded.bytes().await.unwrap(), bytes, "the same bytes");
        id
    }

    /// The bucket's keys, and the rows in `documents` and `upload_intents` (an upload's announcement
    /// must go with it, whatever the outcome).
    pub(crate) async fn stored(&self) -> (Vec<String>, i64) {
        let rows: i64 = sqlx::query_scalar(
            "select (select count(*) from documents) + (select count(*) from upload_intents)",
        )
        .fetch_one(&self.app.pool)
        .await
        .unwrap();
        (self.app.documents.keys().await, rows)
    }
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn uploads_round_trip_byte_for_byte(pool: PgPool) {
    let setup = with_a_pet(spawn_app(pool).await).await;
    let small = pdf(10_000);
    let large = pdf(20 * 1024 * 1024 + 77);
    let form = Form::new()
        .text("caption", "Blood panel, March")
        .text("category", "lab_result")
        .part("file", Part::bytes(small.clone()).file_name("small.pdf"))
        .part("file", Part::bytes(large.clone()).file_name("large.pdf"));

    let (status, created) = setup.upload(form).await;

    assert_eq!(status, StatusCode::CREATED, "{created}");
    let created = created.as_array().unwrap();
    assert_eq!(created.len(), 2);
    for bytes in [&small, &large] {
        let hash = format!("{:x}", Sha256::digest(bytes));
        let document = created
            .iter()
            .find(|document| document["sha256"] == hash)
            .expect("a document per file");
        assert_eq!(document["size_bytes"], bytes.len());
        assert_eq!(document["content_type"], "application/pdf");
        assert_eq!(document["caption"], "Blood panel, March");
        assert_eq!(document["category"], "lab_result");
        let id = document["id"].as_str().unwrap();
        let download = setup
            .owner
            .get(setup.app.url(&format!("/api/documents/{id}/content")))
            .send()
            .await
            .unwrap();
        assert_eq!(download.status(), StatusCode::OK);
        assert_eq!(download.headers()["content-type"], "application/pdf");
        assert_eq!(
            &download.bytes().await.unwrap()[..],
            &bytes[..],
            "identical bytes"
        );
        let metadata: Value = setup
            .owner
            .get(setup.app.url(&format!("/api/documents/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(metadata["sha256"], hash);
    }
    let (keys, rows) = setup.stored().await;
    assert_eq!((keys.len(), rows), (2, 2));
    assert!(
        keys.iter().all(|key| key.starts_with("documents/")),
        "server-made keys: {keys:?}"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn files_over_the_limit_are_refused_with_and_without_content_length(pool: PgPool) {
    let mut config = test_config();
    config.documents.max_upload_size = bytesize::ByteSize::kib(64);
    let setup = with_a_pet(spawn_app_with(pool, config).await).await;

    // With a Content-Length that cannot fit, nothing is read.
    let huge = setup
        .owner
        .post(setup.app.url(&format!("/api/pets/{}/documents", setup.pet)))
        .header("content-type", "multipart/form-data; boundary=x")
        .header("content-length", (64 * 1024 * 20 + 2 * 1024 * 1024).to_string())
        .body(vec![0u8; 10])
        .send()
        .await;
    if let Ok(response) = huge {
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    // With a Content-Length (one file just over), refused at the byte that crosses the limit.
    let (status, body) = setup.upload(file(pdf(64 * 1024 + 1), "big.pdf")).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("larger than the limit of 64.0 KiB"),
        "{body}"
    );
    // Without a Content-Length (a streamed, chunked body).
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        pdf(200 * 1024).chunks(8 * 1024).map(|c| Ok(c.to_vec())).collect();
    let part =
        Part::stream(reqwest::Body::wrap_stream(futures::stream::iter(chunks))).file_name("streamed.pdf");
    let (status, _) = setup.upload(Form::new().part("file", part)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    assert_eq!(
        setup.stored().await,
        (Vec::new(), 0),
        "nothing in the bucket or the database"
    );
}

/// Resident memory of this process (the app under test runs in it), in bytes.
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn an_oversized_text_field_is_refused_before_it_is_read(pool: PgPool) {
    use futures::StreamExt;
    use std::sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    };
    const MIB: u64 = 1024 * 1024;
    let setup = with_a_pet(spawn_app(pool).await).await;
    for field in ["caption", "record_id", "category"] {
        // A 1 GiB field, made as it is sent; `sent` counts what the server pulled through the connection.
        let sent = Arc::new(AtomicU64::new(0));
        let chunks = {
            let sent = sent.clone();
            futures::stream::iter(0..1024).map(move |_| {
                sent.fetch_add(MIB, Ordering::Relaxed);
                Ok::<_, std::io::Error>(vec![b'a'; MIB as usize])
            })
        };
        let form = Form::new()
            .part(field, Part::stream(reqwest::Body::wrap_stream(chunks)))
            .part("file", Part::bytes(pdf(5000)).file_name("scan.pdf"));
        let before = rss();

        let (status, body) = setup.upload(form).await;

        let grown = rss().saturating_sub(before);
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{field}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains(&format!("The {field} field is longer")),
            "the answer names the field: {body}"
        );
        let sent = sent.load(Ordering::Relaxed);
        assert!(
            sent < 64 * MIB,
            "{field}: the server read on ({} MiB sent)",
            sent / MIB
        );
        assert!(
            grown < 256 * MIB,
            "{field}: the server's memory grew by {} MiB",
            grown / MIB
        );
    }
    assert_eq!(setup.stored().await, (Vec::new(), 0), "nothing stored");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn disguised_and_empty_files_are_refused(pool: PgPool) {
    let setup = with_a_pet(spawn_app(pool).await).await;
    let cases = [
        (
            b"<html><body><script>alert(document.cookie)</script></body></html>".to_vec(),
            "photo.jpg",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"><script>alert(2)</script></svg>"
                .to_vec(),
            "x-ray.png",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (Vec::new(), "empty.pdf", StatusCode::UNPROCESSABLE_ENTITY),
    ];
    for (bytes, name, expected) in cases {
        let (status, body) = setup.upload(file(bytes, name)).await;
        assert_eq!(status, expected, "{name}: {body}");
        assert!(
            body["error"].as_str().unwrap().starts_with(name),
            "the message names the file: {body}"
        );
    }
    // One bad file spoils the whole request: the good one beside it is not kept either.
    let form = file(pdf(1000), "good.pdf").part(
        "file",
        Part::bytes(b"<html></html>".to_vec()).file_name("bad.pdf"),
    );
    let (status, _) = setup.upload(form).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    assert_eq!(setup.stored().await, (Vec::new(), 0));
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn hostile_file_names_become_safe_metadata(pool: PgPool) {
    let setup = with_a_pet(spawn_app(pool).await).await;
    let long = format!("{}.pdf", "a".repeat(300));
    let names = [
        ("../../etc/x.pdf", "x.pdf".to_owned()),
        // HTTP headers cannot carry NUL or CR LF (those are unit-tested); a tab can.
        ("evil\tname.pdf", "evil_name.pdf".to_owned()),
        (long.as_str(), format!("{}.pdf", "a".repeat(251))),
        (
            "report \"final\"; v2 🐶.pdf",
            "report _final_; v2 🐶.pdf".to_owned(),
        ),
    ];
    for (name, expected) in names {
        let (status, created) = setup.upload(file(pdf(500), name)).await;
        assert_eq!(status, StatusCode::CREATED, "{name:?}: {created}");
        let document = &created[0];
        assert_eq!(document["filename"], expected.as_str(), "{name:?}");
        let id = document["id"].as_str().unwrap();
        let response = setup
            .owner
            .get(setup.app.url(&format!("/api/documents/{id}/content")))
            .send()
            .await
            .unwrap();
        let disposition = response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_owned();
        // One parameter each: the quoted fallback holds no quote or semicolon; filename* decodes back.
        let fallback = disposition
            .split("filename=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!(
            !fallback.contains(';') && !fallback.contains('\\'),
            "{disposition}"
        );
        let encoded = disposition.split("filename*=UTF-8''").nth(1).unwrap();
        assert!(
            !encoded.contains(' ') && !encoded.contains(';') && !encoded.contains('"'),
            "{disposition}"
        );
        let decoded = percent_encoding::percent_decode_str(encoded)
            .decode_utf8()
            .unwrap();
        assert_eq!(decoded, expected.as_str());
    }
    let (keys, _) = setup.stored().await;
    assert!(
        keys.iter().all(|key| key.len() == "documents/".len() + 36),
        "{keys:?}"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn ranges_etags_and_headers_follow_the_rules(pool: PgPool) {
    let setup = with_a_pet(spawn_app(pool).await).await;
    let bytes = pdf(100_000);
    let (_, created) = setup.upload(file(bytes.clone(), "scan.pdf")).await;
    let id = created[0]["id"].as_str().unwrap().to_owned();
    let url = setup.app.url(&format!("/api/documents/{id}/content"));

    let full = setup.owner.get(&url).send().await.unwrap();
    let etag = full.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(full.headers()["x-content-type-options"], "nosniff");
    assert_eq!(full.headers()["cache-control"], "no-store");
    assert_eq!(full.headers()["accept-ranges"], "bytes");
    assert!(
        full.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    assert_eq!(full.headers()["content-length"], "100000");

    let partial = setup
        .owner
        .get(&url)
        .header("range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(partial.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(partial.headers()["content-range"], "bytes 1000-1999/100000");
    assert_eq!(&partial.bytes().await.unwrap()[..], &bytes[1000..2000]);
    let tail = setup
        .owner
        .get(&url)
        .header("range", "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(&tail.bytes().await.unwrap()[..], &bytes[99_990..]);

    let beyond = setup
        .owner
        .get(&url)
        .header("range", "bytes=200000-")
        .send()
        .await
        .unwrap();
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(beyond.headers()["content-range"], "bytes */100000");

    let cached = setup
        .owner
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    assert!(cached.bytes().await.unwrap().is_empty());
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn previews_are_inline_only_for_safe_types_with_strict_policies(pool: PgPool) {
    let setup = with_a_pet(spawn_app(pool).await).await;
    let mut tiff = b"II*\x00\x08\x00\x00\x00".to_vec();
    tiff.extend(vec![0u8; 100]);
    let form = file(pdf(2000), "scan.pdf")
        .part("file", Part::bytes(png(40, 30)).file_name("photo.png"))
        .part("file", Part::bytes(tiff).file_name("scan.tif"));
    let (status, created) = setup.upload(form).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let by_type = |mime: &str| {
        created
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["content_type"] == mime)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let inline = |id: String| {
        let url = setup.app.url(&format!("/api/documents/{id}/content?inline=1"));
        let client = setup.owner.clone();
        async move { client.get(url).send().await.unwrap() }
    };

    let pdf_preview = inline(by_type("application/pdf")).await;
    let csp = pdf_preview.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        pdf_preview.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline;")
    );
    assert!(
        !csp.contains("sandbox"),
        "Chromium's PDF viewer refuses to open under a sandbox CSP"
    );
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(pdf_preview.headers()["x-content-type-options"], "nosniff");

    let image_preview = inline(by_type("image/png")).await;
    assert!(
        image_preview.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline;")
    );
    assert!(
        image_preview.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("sandbox")
    );

    let tiff_preview = inline(by_type("image/tiff")).await;
    assert!(
        tiff_preview.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;"),
        "never inline"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn every_document_route_answers_404_to_other_owners_and_clinics(pool: PgPool) {
    let setup = with_a_pet(spawn_app(pool).await).await;
    let app = &setup.app;
    let (_, created) = setup.upload(file(png(20, 20), "photo.png")).await;
    let id = created[0]["id"].as_str().unwrap().to_owned();
    app.create_user("bob@example.org", &[Role::Owner], None).await;
    let hillside = app.create_clinic("Hillside").await;
    app.create_user("vet@hillside.example", &[Role::Staff], Some(hillside))
        .await;
    for stranger in [
        app.browser_for("bob@example.org").await,
        app.browser_for("vet@hillside.example").await,
    ] {
        let pet = &setup.pet;
        let responses = [
            stranger
                .get(app.url(&format!("/api/documents/{id}")))
                .send()
                .await
                .unwrap(),
            stranger
                .get(app.url(&format!("/api/documents/{id}/content")))
                .send()
                .await
                .unwrap(),
            stranger
                .get(app.url(&format!("/api/documents/{id}/content?inline=1")))
                .send()
                .await
                .unwrap(),
            stranger
                .get(app.url(&format!("/api/documents/{id}/content")))
                .header("range", "bytes=0-10")
                .send()
                .await
                .unwrap(),
            stranger
                .get(app.url(&format!("/api/documents/{id}/thumbnail")))
                .send()
                .await
                .unwrap(),
            stranger
                .delete(app.url(&format!("/api/documents/{id}")))
                .send()
                .await
                .unwrap(),
            stranger
                .post(app.url(&format!("/api/documents/{id}/trash")))
                .send()
                .await
                .unwrap(),
            stranger
                .post(app.url(&format!("/api/documents/{id}/restore")))
                .send()
                .await
                .unwrap(),
            stranger
                .get(app.url(&format!("/api/pets/{pet}/documents")))
                .send()
                .await
                .unwrap(),
            stranger
                .get(app.url(&format!("/api/pets/{pet}/export")))
                .send()
                .await
                .unwrap(),
            stranger
                .get(app.url(&format!("/api/pets/{pet}/documents?trashed=1")))
                .send()
                .await
                .unwrap(),
            stranger
                .post(app.url(&format!("/api/pets/{pet}/documents")))
                .multipart(file(pdf(100), "x.pdf"))
                .send()
                .await
                .unwrap(),
        ];
        for response in responses {
            let url = response.url().to_string();
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{url}");
            let body = response.text().await.unwrap();
            assert!(!body.contains("photo.png"), "{url} leaks: {body}");
        }
    }
    let documents = app
        .documents
        .keys()
        .await
        .into_iter()
        .filter(|key| key.starts_with("documents/"))
        .count();
    assert_eq!(documents, 1, "the stranger's upload stored nothing");
    let anonymous = Client::new()
        .get(app.url(&format!("/api/documents/{id}/content")))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn views_and_downloads_are_audited_once_per_session_and_window(pool: PgPool) {
    let setup = with_a_pet(spawn_app(pool).await).await;
    let (_, created) = setup.upload(file(pdf(50_000), "scan.pdf")).await;
    let id = created[0]["id"].as_str().unwrap().to_owned();
    let content = setup.app.url(&format!("/api/documents/{id}/content"));

    // A PDF viewer fetches many ranges, several at once.
    let ranges = [
        "bytes=0-999",
        "bytes=1000-1999",
        "bytes=2000-",
        "bytes=100-199",
        "bytes=0-",
    ];
    let views = ranges.map(|range| {
        let request = setup
            .owner
            .get(format!("{content}?inline=1"))
            .header("range", range);
        async move { request.send().await.unwrap().status() }
    });
    for status in futures::future::join_all(views).await {
        assert!(status.is_success(), "{status}");
    }
    setup.owner.get(&content).send().await.unwrap();
    setup.owner.get(&content).send().await.unwrap();
    // The same owner signed in a second time (another device) is another session: its view counts.
    let second_device = setup.app.browser_for("alice@example.org").await;
    let status = second_device
        .get(format!("{content}?inline=1"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);

    let rows: Vec<(String, Option<uuid::Uuid>)> = sqlx::query_as(
        "select action, session_ref from audit_events where target_id = $1::uuid and action in ('view_document', 'download_document') order by at, id",
    )
    .bind(&id)
    .fetch_all(&setup.app.pool)
    .await
    .unwrap();
    let actions: Vec<&str> = rows.iter().map(|(action, _)| action.as_str()).collect();
    assert_eq!(
        actions,
        vec!["view_document", "download_document", "view_document"]
    );
    let sessions: Vec<uuid::Uuid> = rows
        .iter()
        .map(|(_, session)| session.expect("a session reference"))
        .collect();
    assert_eq!(sessions[0], sessions[1], "one session viewed and downloaded");
    assert_ne!(sessions[0], sessions[2], "the second sign-in is another session");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn plain_forms_upload_trash_and_restore_with_a_message_on_the_page(pool: PgPool) {
    let setup = with_a_pet(spawn_app(pool).await).await;
    let pet_page = setup.app.url(&format!("/pets/{}", setup.pet));

    let response = setup
        .owner
        .post(setup.app.url(&format!("/api/pets/{}/documents", setup.pet)))
        .header("accept", "text/html")
        .header("sec-fetch-site", "same-origin")
        .header("referer", &pet_page)
        .multipart(file(pdf(3000), "vaccination.pdf").text("category", "vaccination_certificate"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], format!("/pets/{}", setup.pet));
    let page = setup
        .owner
        .get(&pet_page)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Uploaded vaccination.pdf."),
        "the result is shown on the page"
    );
    assert!(page.contains("vaccination.pdf"));
    let again = setup
        .owner
        .get(&pet_page)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!again.contains("Uploaded vaccination.pdf."), "shown once");

    let id: String = sqlx::query_scalar("select id::text from documents")
        .fetch_one(&setup.app.pool)
        .await
        .unwrap();
    let trashed = setup
        .owner
        .post(setup.app.url(&format!("/api/documents/{id}/trash")))
        .header("accept", "text/html")
        .header("sec-fetch-site", "same-origin")
        .header("referer", &pet_page)
        .send()
        .await
        .unwrap();
    assert_eq!(trashed.status(), StatusCode::SEE_OTHER);
    let listed: Value = setup
        .owner
        .get(setup.app.url(&format!("/api/pets/{}/documents", setup.pet)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, serde_json::json!([]));
    let trash: Value = setup
        .owner
        .get(
            setup
                .app
                .url(&format!("/api/pets/{}/documents?trashed=1", setup.pet)),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(trash.as_array().unwrap().len(), 1);

    let restored = setup
        .owner
        .post(setup.app.url(&format!("/api/documents/{id}/restore")))
        .send()
        .await
        .unwrap();
    assert_eq!(restored.status(), StatusCode::NO_CONTENT);
    let listed: Value = setup
        .owner
        .get(setup.app.url(&format!(
            "/api/pets/{}/documents?category=vaccination_certificate",
            setup.pet
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "back, and found by its category"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn images_get_thumbnails(pool: PgPool) {
    let setup = with_a_pet(spawn_app(pool).await).await;
    let (_, created) = setup.upload(file(png(800, 400), "paw.png")).await;
    let id = created[0]["id"].as_str().unwrap().to_owned();

    let mut has_thumbnail = false;
    for _ in 0..100 {
        let metadata: Value = setup
            .owner
            .get(setup.app.url(&format!("/api/documents/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        has_thumbnail = metadata["has_thumbnail"] == true;
        if has_thumbnail {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(has_thumbnail, "the thumbnail task ran");
    let thumbnail = setup
        .owner
        .get(setup.app.url(&format!("/api/documents/{id}/thumbnail")))
        .send()
        .await
        .unwrap();
    assert_eq!(thumbnail.status(), StatusCode::OK);
    assert_eq!(thumbnail.headers()["content-type"], "image/jpeg");
    let decoded = image::load_from_memory(&thumbnail.bytes().await.unwrap()).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (320, 160));
    assert_eq!(
        setup.app.documents.keys().await.len(),
        2,
        "the document and its thumbnail"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn staff_attach_files_to_their_records_and_owners_cannot(pool: PgPool) {
    let setup = with_a_pet(spawn_app(pool).await).await;
    let app = &setup.app;
    let vet = setup.shared_with_a_vet().await;
    let record = &setup.record_by(&vet, "Bloods").await;

    let by_vet = vet
        .post(app.url(&format!("/api/pets/{}/documents", setup.pet)))
        .multipart(file(pdf(1000), "bloods.pdf").text("record_id", record.to_owned()))
        .send()
        .await
        .unwrap();
    let by_owner = setup
        .upload(file(pdf(1000), "mine.pdf").text("record_id", record.to_owned()))
        .await;

    assert_eq!(by_vet.status(), StatusCode::CREATED);
    assert_eq!(by_owner.0, StatusCode::FORBIDDEN);
    let attached: Value = vet
        .get(app.url(&format!("/api/pets/{}/documents?record_id={record}", setup.pet)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(attached.as_array().unwrap().len(), 1);
    assert_eq!(attached[0]["filename"], "bloods.pdf");
    assert_eq!(
        app.documents.keys().await.len(),
        1,
        "the refused upload left nothing"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn postgres_failing_the_insert_leaves_no_object(pool: PgPool) {
    let setup = with_a_pet(spawn_app(pool).await).await;
    sqlx::raw_sql(
        "create function refuse_inserts() returns trigger language plpgsql as $$ begin raise exception 'disk full'; end; $$;",
    )
    .execute(&setup.app.pool)
    .await
    .unwrap();
    // The announcement before the upload starts, and the document row after S3 confirmed the object.
    for table in ["upload_intents", "documents"] {
        sqlx::raw_sql(&format!(
            "create trigger refuse before insert on {table} for each row execute function refuse_inserts();"
        ))
        .execute(&setup.app.pool)
        .await
        .unwrap();

        let (status, body) = setup.upload(file(pdf(20_000), "scan.pdf")).await;

        assert!(status.is_server_error(), "{table}: {status}: {body}");
        let message = body["error"].as_str().unwrap();
        assert!(
            !message.contains("disk full"),
            "{table}: internal detail stays in the log"
        );
        assert_eq!(setup.stored().await, (Vec::new(), 0), "{table}");
        if table == "upload_intents" {
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            assert!(message.contains("not saved"), "{message}");
        }
        sqlx::raw_sql(&format!("drop trigger refuse on {table};"))
            .execute(&setup.app.pool)
            .await
            .unwrap();
    }
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn s3_down_or_refusing_gives_a_clear_error_and_no_orphan(pool: PgPool) {
    let mut setup = with_a_pet(spawn_app(pool).await).await;
    setup.app.documents.endpoint().refuse("PutObject");
    let (status, body) = setup.upload(file(pdf(5000), "scan.pdf")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["error"].as_str().unwrap().contains("not saved"), "{body}");
    assert_eq!(setup.stored().await, (Vec::new(), 0));

    setup.app.documents.stop_endpoint();
    let (status, body) = setup.upload(file(pdf(5000), "scan.pdf")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    setup.app.documents.restart_endpoint().await;
    // S3 could not be asked to remove whatever it might hold: the upload stays announced (reconcile
    // removes both once the upload grace period has passed), but no document row exists.
    assert_eq!(setup.stored().await, (Vec::new(), 1));
    let documents: i64 = sqlx::query_scalar("select count(*) from documents")
        .fetch_one(&setup.app.pool)
        .await
        .unwrap();
    assert_eq!(documents, 0);
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_client_vanishing_mid_upload_leaves_no_orphan(pool: PgPool) {
    use tokio::io::AsyncWriteExt;
    let setup = with_a_pet(spawn_app(pool).await).await;
    let cookie = setup.app.jar_cookie_for(&setup.owner).await;
    let mut stream = setup.app.raw_upload(&cookie, &setup.pet, 30_000_000).await;
    // Send a full part's worth and more, then vanish.
    let body = pdf(12 * 1024 * 1024);
    stream.write_all(&body).await.unwrap();
    // Vanish once the server has begun the multipart upload (its id is recorded with the announcement).
    let mut begun = false;
    for _ in 0..200 {
        let recorded: i64 =
            sqlx::query_scalar("select count(*) from upload_intents where upload_id is not null")
                .fetch_one(&setup.app.pool)
                .await
                .unwrap();
        if recorded > 0 {
            begun = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(begun, "the server began a multipart upload within 10 seconds");
    drop(stream);

    // The clean-up runs once the server notices the client is gone, and S3 may take a while on a busy box.
    eventually(
        SETTLE,
        "no object, no row and no unfinished multipart upload after the client went away",
        || async {
            setup.stored().await == (Vec::new(), 0) && setup.app.documents.pending_uploads().await == 0
        },
    )
    .await;
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn an_upload_that_stalls_ends_with_a_clear_error_and_leaves_nothing(pool: PgPool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config = test_config();
    config.connections.body_idle_timeout = Duration::from_secs(1);
    let setup = with_a_pet(spawn_app_with(pool, config).await).await;
    let cookie = setup.app.jar_cookie_for(&setup.owner).await;
    let mut stream = setup.app.raw_upload(&cookie, &setup.pet, 30_000_000).await;
    // More than a part, so a multipart upload has begun in S3; then nothing more, connection open.
    stream.write_all(&pdf(10 * 1024 * 1024)).await.unwrap();

    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(15), stream.read(&mut answer))
        .await
        .expect("the server answers a stalled upload by itself")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("interrupted"), "{answer}");

    assert_eq!(setup.stored().await, (Vec::new(), 0), "no object, no row");
    assert_eq!(
        setup.app.documents.pending_uploads().await,
        0,
        "no unfinished multipart upload"
    );

    // A stall inside a text field says so too.
    let mut stream = setup
        .app
        .raw_upload_part(&cookie, &setup.pet, 1000, "name=\"caption\"")
        .await;
    stream.write_all(b"Sick").await.unwrap();
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(15), stream.read(&mut answer))
        .await
        .expect("the server answers a stalled field by itself")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("The upload stalled"), "{answer}");
    assert_eq!(setup.stored().await, (Vec::new(), 0));
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_pets_history_exports_as_a_zip_that_opens_offline(pool: PgPool) {
    let mut config = test_config();
    config.public_url = "http://records.example-clinic.test:8080/".parse().unwrap();
    let setup = with_a_pet(spawn_app_with(pool, config).await).await;
    let scan = pdf(30_000);
    setup.upload(file(scan.clone(), "scan \"1\".pdf")).await;
    setup.upload(file(png(50, 50), "photo.png")).await;

    let response = setup
        .owner
        .get(setup.app.url(&format!("/api/pets/{}/export", setup.pet)))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/zip");
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("Biscuit")
    );
    // A file answer, sandboxed like every other: never rendered as a page of ours, never embedded elsewhere.
    assert_eq!(
        response.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; sandbox"
    );
    assert_eq!(response.headers()["cross-origin-resource-policy"], "same-origin");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let zip = response.bytes().await.unwrap().to_vec();
    // Read it with another implementation (the zip crate), as any unzip tool would.
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let names: Vec<String> = archive
        .file_names()
        .map(|name| name.unwrap().into_owned())
        .collect();
    let mut read = |name: &str| {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut archive.by_name(name).unwrap(), &mut out).unwrap();
        out
    };
    assert!(names.contains(&"index.html".to_owned()));
    assert_eq!(names.len(), 3, "{names:?}");
    let index = String::from_utf8(read("index.html")).unwrap();
    assert!(index.contains("<h1>Biscuit</h1>"));
    // Read away from Pawfile, the export links back to the pet at the public address.
    let pet_url = format!("http://records.example-clinic.test:8080/pets/{}", setup.pet);
    assert!(index.contains(&format!("<a href=\"{pet_url}\">")), "{index}");
    for name in names.iter().filter(|name| *name != "index.html") {
        assert!(name.starts_with("documents/") && !name.contains(".."), "{name}");
        let escaped = name.replace('"', "&#34;");
        assert!(
            index.contains(&format!("href=\"{escaped}\"")),
            "index links {name}: {index}"
        );
    }
    let scan_name = names.iter().find(|name| name.ends_with(".pdf")).unwrap().clone();
    assert_eq!(read(&scan_name), scan, "the document's bytes, unchanged");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn admins_see_documents_the_integrity_check_flagged(pool: PgPool) {
    let setup = with_a_pet(spawn_app(pool).await).await;
    let (_, created) = setup.upload(file(pdf(4000), "scan.pdf")).await;
    let id = created[0]["id"].as_str().unwrap().to_owned();
    setup
        .app
        .documents
        .store
        .delete(&format!("documents/{id}"))
        .await
        .unwrap();
    pawfile::documents::reconcile::reconcile(
        &setup.app.pool,
        &setup.app.documents.store,
        pawfile::documents::reconcile::Options {
            grace: Duration::ZERO,
            verify_sample: 10,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    setup
        .app
        .create_user("admin@example.org", &[Role::Admin], None)
        .await;
    let admin = setup.app.browser_for("admin@example.org").await;

    let issues: Value = admin
        .get(setup.app.url("/api/admin/integrity"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let as_owner = setup
        .owner
        .get(setup.app.url("/api/admin/integrity"))
        .send()
        .await
        .unwrap();

    assert_eq!(issues[0]["document_id"], id.as_str());
    assert!(issues[0]["problem"].as_str().unwrap().contains("missing"));
    assert_eq!(as_owner.status(), StatusCode::FORBIDDEN);
    let page = admin
        .get(setup.app.url("/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&id), "the admin page lists it");
    let download = setup
        .owner
        .get(setup.app.url(&format!("/api/documents/{id}/content")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        download.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "a clear error, not a broken download"
    );
}
