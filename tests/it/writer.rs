//! The storage layer's streaming writer against both S3 servers: objects on either side of the part
//! boundary, one request for an object that fits in one part, and nothing left behind when a part
//! fails, the writer is dropped mid-upload, or a finished object is not kept.

use bytes::Bytes;
use pawfile::{
    storage::{ObjectWriter, PART_SIZE},
    testing::{S3Backend, TestBucket},
};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// `size` bytes that differ from part to part.
fn bytes(size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| (i % 251) as u8 ^ (i / PART_SIZE) as u8)
        .collect()
}

/// Writes `data` in chunks of an odd size; whether a multipart upload was begun.
async fn write_all(writer: &mut ObjectWriter, data: &[u8]) -> bool {
    let mut multipart = false;
    for chunk in data.chunks(700 * 1024 + 13) {
        writer.write(Bytes::copy_from_slice(chunk)).await.unwrap();
        multipart |= writer.upload_id().is_some();
    }
    multipart
}

/// Waits (a bounded while) until the bucket holds nothing: no object, no unfinished upload.
async fn wait_until_empty(bucket: &TestBucket) -> (Vec<String>, usize) {
    let mut left = (Vec::new(), 0);
    for _ in 0..100 {
        left = (bucket.keys().await, bucket.pending_uploads().await);
        if left.0.is_empty() && left.1 == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    left
}

async fn objects_round_trip_on_both_sides_of_the_part_boundary(backend: S3Backend) {
    let bucket = TestBucket::new(backend).await;
    for size in [0, 1, PART_SIZE - 1, PART_SIZE, PART_SIZE + 1] {
        let key = format!("documents/size-{size}");
        let data = bytes(size);
        let mut writer = bucket.store.writer(&key);
        writer.set_content_type("application/pdf");
        let multipart = write_all(&mut writer, &data).await;
        let written = writer.finish().await.unwrap();
        writer.keep();

        assert_eq!(
            multipart,
            size > PART_SIZE,
            "{size} bytes: one request unless the object is larger than a part"
        );
        assert_eq!(written.size, size as u64, "{size} bytes");
        assert_eq!(
            written.sha256,
            <[u8; 32]>::from(Sha256::digest(&data)),
            "{size} bytes"
        );
        assert_eq!(
            bucket.store.sha256_of(&key).await.unwrap(),
            (written.sha256, size as u64),
            "{size} bytes: S3 holds exactly the bytes written"
        );
    }
    assert_eq!(bucket.keys().await.len(), 5);
    assert_eq!(
        bucket.pending_uploads().await,
        0,
        "every multipart upload was completed"
    );
}

async fn an_unkept_object_is_removed(backend: S3Backend) {
    let bucket = TestBucket::new(backend).await;
    for size in [10, PART_SIZE + 10] {
        let mut writer = bucket.store.writer("documents/discarded");
        write_all(&mut writer, &bytes(size)).await;
        writer.finish().await.unwrap();
        assert_eq!(bucket.keys().await, vec!["documents/discarded".to_owned()]);
        writer.discard().await.unwrap();
        assert_eq!(
            wait_until_empty(&bucket).await,
            (Vec::new(), 0),
            "{size}: discarded"
        );

        let mut writer = bucket.store.writer("documents/dropped");
        write_all(&mut writer, &bytes(size)).await;
        writer.finish().await.unwrap();
        drop(writer);
        assert_eq!(
            wait_until_empty(&bucket).await,
            (Vec::new(), 0),
            "{size}: dropped"
        );
    }
}

async fn dropping_a_writer_mid_upload_aborts_it(backend: S3Backend) {
    let bucket = TestBucket::new(backend).await;
    let mut writer = bucket.store.writer("documents/abandoned");
    assert!(write_all(&mut writer, &bytes(2 * PART_SIZE + 5)).await);
    assert_eq!(bucket.pending_uploads().await, 1, "the check below can fail");
    drop(writer);
    assert_eq!(wait_until_empty(&bucket).await, (Vec::new(), 0));
}

/// A part that S3 refuses (here because the upload was aborted behind the writer's back, which any S3
/// server can be made to do) ends the write with the error, and nothing is left.
async fn a_refused_part_ends_the_write_and_leaves_nothing(backend: S3Backend) {
    let bucket = TestBucket::new(backend).await;
    let mut writer = bucket.store.writer("documents/cut-off");
    let data = bytes(3 * PART_SIZE + 5);
    let (first, rest) = data.split_at(PART_SIZE + 1);
    writer.write(Bytes::copy_from_slice(first)).await.unwrap();
    let upload_id = writer.upload_id().expect("a multipart upload began").to_owned();
    bucket
        .store
        .sdk()
        .abort_multipart_upload()
        .bucket(bucket.store.bucket())
        .key("documents/cut-off")
        .upload_id(upload_id)
        .send()
        .await
        .unwrap();
    let mut failed = None;
    for chunk in rest.chunks(1024 * 1024) {
        if let Err(err) = writer.write(Bytes::copy_from_slice(chunk)).await {
            failed = Some(err);
            break;
        }
    }
    // Garage may answer before it has read the part, so the error can be a broken connection.
    if failed.is_none() {
        writer.finish().await.unwrap_err();
    }
    assert_eq!(
        (bucket.keys().await, bucket.pending_uploads().await),
        (Vec::new(), 0),
        "nothing is left"
    );
    assert!(writer.finish().await.is_err(), "a failed writer cannot finish");
}

on_both_s3_servers!(
    objects_round_trip_on_both_sides_of_the_part_boundary,
    an_unkept_object_is_removed,
    dropping_a_writer_mid_upload_aborts_it,
);

/// Garage's turn of the failing-part case (the embedded endpoint's is `a_failing_part_aborts_the_upload`:
/// there an abort racing a part in flight can leave the part's file behind, which is why the writer
/// itself waits for the part in flight before it aborts).
#[tokio::test]
async fn garage_a_refused_part_ends_the_write_and_leaves_nothing() {
    a_refused_part_ends_the_write_and_leaves_nothing(S3Backend::Garage).await;
}

/// A part S3 refuses ends the upload with the error and aborts it (the embedded endpoint is the one a
/// test can make refuse an operation).
#[tokio::test]
async fn a_failing_part_aborts_the_upload() {
    let bucket = TestBucket::embedded().await;
    bucket.endpoint().refuse("UploadPart");
    let mut writer = bucket.store.writer("documents/refused");
    let data = bytes(2 * PART_SIZE + 5);
    let mut failed = None;
    for chunk in data.chunks(1024 * 1024) {
        if let Err(err) = writer.write(Bytes::copy_from_slice(chunk)).await {
            failed = Some(err);
            break;
        }
    }
    let err = match failed {
        Some(err) => err,
        None => writer.finish().await.unwrap_err(),
    };
    assert!(err.to_string().contains("refused by a test"), "{err}");
    assert!(
        writer.write(Bytes::from_static(b"more")).await.is_err(),
        "a failed writer takes no more bytes"
    );
    assert_eq!(
        (bucket.keys().await, bucket.pending_uploads().await),
        (Vec::new(), 0),
        "the multipart upload was aborted before the error was returned"
    );
    writer.discard().await.unwrap();
}

/// On Garage, which verifies checksums: every part of a multipart object was sent with its SHA-256,
/// so the object carries the composite checksum (the SHA-256 of the parts' SHA-256s, with their
/// count), equal to the one computed here from the bytes.
#[tokio::test]
async fn garage_keeps_the_composite_of_the_part_checksums_pawfile_sent() {
    let bucket = TestBucket::new(S3Backend::Garage).await;
    let data = bytes(2 * PART_SIZE + 1000);
    let mut writer = bucket.store.writer("documents/checked");
    writer.set_content_type("application/pdf");
    assert!(write_all(&mut writer, &data).await, "a multipart upload");
    writer.finish().await.unwrap();
    writer.keep();

    let head = bucket
        .store
        .sdk()
        .head_object()
        .bucket(bucket.store.bucket())
        .key("documents/checked")
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();

    use base64::Engine;
    let mut digests = Vec::new();
    for part in data.chunks(PART_SIZE) {
        digests.extend_from_slice(&Sha256::digest(part));
    }
    let composite = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&digests));
    assert_eq!(
        head.checksum_sha256(),
        Some(format!("{composite}-3").as_str()),
        "{head:?}"
    );
}
