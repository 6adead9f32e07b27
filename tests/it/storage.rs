//! The S3 wiring: the client settings (endpoint, path style, credentials, checksums, timeouts) and the
//! error mapping work against both the embedded endpoint and Garage.

use aws_sdk_s3::{
    error::ProvideErrorMetadata,
    primitives::ByteStream,
    types::{CompletedMultipartUpload, CompletedPart},
};
use bytes::Bytes;
use pawfile::{
    config::{S3Credentials, S3Settings},
    storage::{ObjectStore, StorageError},
    testing::{S3Backend, TestBucket},
};
use secrecy::SecretString;

async fn objects_round_trip_with_a_verified_checksum(backend: S3Backend) {
    let bucket = TestBucket::new(backend).await;
    let body = Bytes::from_static(b"%PDF-1.7 lab result for Biscuit");

    bucket
        .store
        .put_bytes("documents/one", body.clone(), "application/pdf")
        .await
        .unwrap();

    assert_eq!(bucket.store.get_bytes("documents/one").await.unwrap(), body);
    assert_eq!(
        bucket.store.head("documents/one").await.unwrap().size,
        body.len() as u64
    );
    assert_eq!(bucket.keys().await, vec!["documents/one".to_owned()]);
}

async fn a_wrong_checksum_is_refused(backend: S3Backend) {
    let bucket = TestBucket::new(backend).await;
    let result = bucket
        .store
        .sdk()
        .put_object()
        .bucket(bucket.store.bucket())
        .key("documents/corrupt")
        .checksum_sha256("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=") // SHA-256 of nothing
        .body(ByteStream::from_static(b"not empty"))
        .send()
        .await;
    assert!(result.is_err(), "S3 must verify the SHA-256 we send");
    // Garage stores nothing; s3s-fs reports the mismatch but keeps the bytes. Either way the caller
    // deletes after a failed put, which leaves the bucket empty.
    bucket.store.delete("documents/corrupt").await.unwrap();
    assert!(bucket.keys().await.is_empty());
}

async fn missing_objects_are_not_found(backend: S3Backend) {
    let bucket = TestBucket::new(backend).await;
    assert!(matches!(
        bucket.store.head("documents/none").await,
        Err(StorageError::NotFound)
    ));
    assert!(matches!(
        bucket.store.get_bytes("documents/none").await,
        Err(StorageError::NotFound)
    ));
    bucket
        .store
        .delete("documents/none")
        .await
        .expect("deleting a missing object succeeds");
}

async fn deleted_objects_are_gone(backend: S3Backend) {
    let bucket = TestBucket::new(backend).await;
    bucket
        .store
        .put_bytes("thumbnails/x", Bytes::from_static(b"x"), "image/webp")
        .await
        .unwrap();
    bucket.store.delete("thumbnails/x").await.unwrap();
    assert!(bucket.keys().await.is_empty());
}

async fn listing_follows_pagination(backend: S3Backend) {
    let bucket = TestBucket::new(backend).await;
    // More than one page when the page size is small: ask for pages of 2.
    for i in 0..5 {
        bucket
            .store
            .put_bytes(
                &format!("documents/{i}"),
                Bytes::from(vec![b'a'; i + 1]),
                "text/plain",
            )
            .await
            .unwrap();
    }
    let mut pages = bucket
        .store
        .sdk()
        .list_objects_v2()
        .bucket(bucket.store.bucket())
        .max_keys(2)
        .into_paginator()
        .send();
    let mut seen = 0;
    while let Some(page) = pages.next().await {
        seen += page.unwrap().contents().len();
    }
    assert_eq!(seen, 5);
    let listed = bucket.store.list("documents/").await.unwrap();
    assert_eq!(listed.len(), 5);
    assert_eq!(listed.iter().map(|o| o.size).sum::<u64>(), 15);
}

/// Multipart upload as the upload pipeline will use it: parts sent with Content-MD5-free bodies, no part
/// checksums copied into the completion (the upload was not created with a checksum algorithm).
async fn multipart_uploads_complete_and_abort(backend: S3Backend) {
    let bucket = TestBucket::new(backend).await;
    let client = bucket.store.sdk();
    let part_size = 5 * 1024 * 1024;
    let parts = [vec![1u8; part_size], vec![2u8; part_size], vec![3u8; 1234]];

    let upload = client
        .create_multipart_upload()
        .bucket(bucket.store.bucket())
        .key("documents/big")
        .content_type("application/octet-stream")
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap();
    let mut completed = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        let number = index as i32 + 1;
        let uploaded = client
            .upload_part()
            .bucket(bucket.store.bucket())
            .key("documents/big")
            .upload_id(upload_id)
            .part_number(number)
            .content_length(part.len() as i64)
            .body(ByteStream::from(part.clone()))
            .send()
            .await
            .unwrap();
        completed.push(
            CompletedPart::builder()
                .part_number(number)
                .e_tag(uploaded.e_tag().unwrap())
                .build(),
        );
    }
    client
        .complete_multipart_upload()
        .bucket(bucket.store.bucket())
        .key("documents/big")
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let stored = bucket.store.get_bytes("documents/big").await.unwrap();
    assert_eq!(stored, parts.concat());

    // An aborted upload leaves nothing behind.
    let upload = client
        .create_multipart_upload()
        .bucket(bucket.store.bucket())
        .key("documents/aborted")
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap();
    client
        .upload_part()
        .bucket(bucket.store.bucket())
        .key("documents/aborted")
        .upload_id(upload_id)
        .part_number(1)
        .body(ByteStream::from(vec![9u8; 1024]))
        .send()
        .await
        .unwrap();
    client
        .abort_multipart_upload()
        .bucket(bucket.store.bucket())
        .key("documents/aborted")
        .upload_id(upload_id)
        .send()
        .await
        .unwrap();
    assert_eq!(bucket.keys().await, vec!["documents/big".to_owned()]);
    let late_part = client
        .upload_part()
        .bucket(bucket.store.bucket())
        .key("documents/aborted")
        .upload_id(upload_id)
        .part_number(2)
        .body(ByteStream::from(vec![9u8; 1024]))
        .send()
        .await;
    assert!(late_part.is_err(), "an aborted upload takes no more parts");
    match client
        .list_multipart_uploads()
        .bucket(bucket.store.bucket())
        .send()
        .await
    {
        Ok(pending) => assert!(
            pending.uploads().is_empty(),
            "no multipart upload is left pending"
        ),
        // s3s-fs does not implement ListMultipartUploads.
        Err(err) => assert_eq!(err.code(), Some("NotImplemented"), "{err:?}"),
    }
}

async fn wrong_credentials_are_reported_as_access_denied(backend: S3Backend) {
    let bucket = TestBucket::new(backend).await;
    let mut settings: S3Settings = bucket.settings.clone();
    let id = settings.credentials.as_ref().unwrap().access_key_id.clone();
    settings.credentials = Some(S3Credentials {
        access_key_id: id,
        secret_access_key: SecretString::from("wrong-secret-wrong-secret-wrong-secret00".to_owned()),
    });
    let store = ObjectStore::connect(&settings).await;
    let err = store.check_bucket().await.unwrap_err();
    assert!(matches!(err, StorageError::AccessDenied { .. }), "{err:?}");
    assert!(err.to_string().contains("access key"), "{err}");
}

async fn a_missing_bucket_is_named(backend: S3Backend) {
    let bucket = TestBucket::new(backend).await;
    let mut settings = bucket.settings.clone();
    settings.bucket = format!("{}-missing", settings.bucket);
    let store = ObjectStore::connect(&settings).await;
    let err = store.check_bucket().await.unwrap_err();
    assert!(matches!(err, StorageError::NoSuchBucket { .. }), "{err:?}");
    assert!(err.to_string().contains(&settings.bucket), "{err}");
}

async fn an_unreachable_endpoint_is_reported_quickly() {
    let bucket = TestBucket::embedded().await;
    let mut settings = bucket.settings.clone();
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    settings.endpoint = Some(format!("http://127.0.0.1:{port}/").parse().unwrap());
    let store = ObjectStore::connect(&settings).await;
    let err = store.check_bucket().await.unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")), "{err}");
}

on_both_s3_servers!(
    objects_round_trip_with_a_verified_checksum,
    a_wrong_checksum_is_refused,
    missing_objects_are_not_found,
    deleted_objects_are_gone,
    listing_follows_pagination,
    multipart_uploads_complete_and_abort,
    wrong_credentials_are_reported_as_access_denied,
    a_missing_bucket_is_named,
);

#[tokio::test]
async fn unreachable_endpoints_are_reported_as_unreachable() {
    an_unreachable_endpoint_is_reported_quickly().await;
}

#[tokio::test]
async fn a_stopped_embedded_endpoint_cuts_open_connections() {
    let mut bucket = TestBucket::embedded().await;
    bucket
        .store
        .put_bytes("documents/a", Bytes::from_static(b"a"), "text/plain")
        .await
        .unwrap();
    bucket.stop_endpoint();
    let err = bucket.store.head("documents/a").await.unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
}
