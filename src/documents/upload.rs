//! The upload pipeline: a request body streams into one S3 object while it is counted, hashed
//! (SHA-256 and CRC-32) and sniffed. Small files go up in one request with their SHA-256 for S3 to
//! verify; larger ones as a multipart upload, one part buffered and one in flight, so memory stays flat
//! whatever the size. Any failure, or the caller going away, aborts the multipart upload or deletes the
//! object: nothing is left behind.

use super::sniff::{SNIFF_BYTES, sniff};
use crate::storage::{ObjectStore, StorageError};
use aws_sdk_s3::{
    primitives::ByteStream,
    types::{CompletedMultipartUpload, CompletedPart},
};
use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tokio::task::JoinHandle;

/// Size of each multipart part (S3's minimum is 5 MiB, except for the last part).
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// Why an upload was refused or failed. The messages are for the person uploading.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Nothing was sent.
    #[error("The file is empty.")]
    Empty,
    /// More than the limit was sent.
    #[error("The file is larger than the limit of {}.", bytesize::ByteSize(*limit))]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The bytes are not of an accepted type, whatever the name says.
    #[error("This file is not one of the accepted types ({accepted}){}.", detected.as_deref().map(|d| format!("; its content looks like {d}")).unwrap_or_default())]
    Refused {
        /// What the bytes look like, if known.
        detected: Option<String>,
        /// The accepted types, for the message.
        accepted: String,
    },
    /// The request body ended early or broke off (the client went away).
    #[error("The upload was interrupted before the file was complete.")]
    Interrupted(String),
    /// The object store failed.
    #[error("The file could not be stored: {0}")]
    Storage(#[from] StorageError),
    /// The database, where the upload is announced before it starts, failed.
    #[error("The upload could not be announced in the database: {0}")]
    Database(#[from] sqlx::Error),
}

/// What an upload must satisfy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Largest accepted file, in bytes.
    pub max_bytes: u64,
    /// Accepted MIME types (as the sniffer names them).
    pub accepted: Vec<String>,
}

impl Policy {
    fn check_type(&self, head: &[u8]) -> Result<String, UploadError> {
        match sniff(head) {
            Some(mime) if self.accepted.iter().any(|accepted| accepted == mime) => Ok(mime.to_owned()),
            detected => Err(UploadError::Refused {
                detected: detected.map(str::to_owned),
                accepted: self
                    .accepted
                    .iter()
                    .map(|mime| super::sniff::label(mime))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }
}

/// A stored object, as S3 confirmed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// Its key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256 of its bytes.
    pub sha256: [u8; 32],
    /// CRC-32 of its bytes (zip archives need it).
    pub crc32: u32,
    /// The sniffed MIME type.
    pub content_type: String,
}

/// An object (or multipart upload) that exists in S3 but is not yet recorded in Postgres, and its
/// announcement in `upload_intents`. Unless [`PendingObject::keep`] is called, both are removed: by
/// [`PendingObject::discard`], or in the background when dropped (a request cancelled mid-way).
#[derive(Debug)]
pub struct PendingObject {
    store: ObjectStore,
    intents: PgPool,
    key: String,
    upload_id: Option<String>,
    /// A part upload still under way; it must end before the upload is aborted, or a part landing
    /// after the abort could linger on S3 where nothing lists it.
    in_flight: Option<JoinHandle<Result<CompletedPart, StorageError>>>,
    /// Whether S3 may hold something under the key (an object or a multipart upload).
    armed: bool,
    /// Whether cleaning up is still due (not yet kept or discarded).
    open: bool,
}

impl PendingObject {
    fn new(store: &ObjectStore, intents: &PgPool, key: &str) -> Self {
        Self {
            store: store.clone(),
            intents: intents.clone(),
            key: key.to_owned(),
            upload_id: None,
            in_flight: None,
            armed: false,
            open: true,
        }
    }

    /// The object is recorded (and its announcement removed, by [`super::record_uploads`]): leave it.
    pub fn keep(mut self) {
        self.open = false;
    }

    /// Removes the object or aborts the multipart upload, then the announcement, now.
    pub async fn discard(mut self) {
        if let Some(cleanup) = self.cleanup() {
            cleanup.run().await;
        }
    }

    fn cleanup(&mut self) -> Option<Cleanup> {
        if !std::mem::replace(&mut self.open, false) {
            return None;
        }
        Some(Cleanup {
            store: self.store.clone(),
            intents: self.intents.clone(),
            key: self.key.clone(),
            armed: self.armed,
            upload_id: self.upload_id.take(),
            in_flight: self.in_flight.take(),
        })
    }
}

impl Drop for PendingObject {
    fn drop(&mut self) {
        let Some(cleanup) = self.cleanup() else { return };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(cleanup.run());
        } else {
            tracing::error!(key = %self.key, "upload dropped outside the runtime; reconcile will remove it");
        }
    }
}

/// What cleaning up an unrecorded upload takes.
struct Cleanup {
    store: ObjectStore,
    intents: PgPool,
    key: String,
    armed: bool,
    upload_id: Option<String>,
    in_flight: Option<JoinHandle<Result<CompletedPart, StorageError>>>,
}

impl Cleanup {
    async fn run(self) {
        if self.armed && !remove(&self.store, &self.key, self.upload_id.as_deref(), self.in_flight).await {
            // The announcement stays, so reconcile leaves the object alone until the upload grace
            // period has passed, then removes both.
            return;
        }
        if let Err(err) = sqlx::query!("delete from upload_intents where object_key = $1", self.key)
            .execute(&self.intents)
            .await
        {
            tracing::error!(key = %self.key, error = %err, "cannot remove an upload's announcement; reconcile will");
        }
    }
}

/// Removes what S3 holds under `key`; whether that worked.
async fn remove(
    store: &ObjectStore,
    key: &str,
    upload_id: Option<&str>,
    in_flight: Option<JoinHandle<Result<CompletedPart, StorageError>>>,
) -> bool {
    if let Some(part) = in_flight {
        let _ = part.await;
    }
    let result = match upload_id {
        Some(upload_id) => store
            .client()
            .abort_multipart_upload()
            .bucket(store.bucket())
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .map(drop)
            .map_err(|err| store.classify(&err)),
        None => store.delete(key).await,
    };
    match result {
        Ok(()) => {
            tracing::info!(%key, "removed an unfinished upload");
            true
        }
        Err(err) => {
            tracing::error!(%key, error = %err, "cannot remove an unfinished upload; reconcile will");
            false
        }
    }
}

/// Streams `body` into a new object `key`, enforcing `policy`. The upload is first announced in
/// `upload_intents` (in `intents`), so reconcile leaves the object alone until it is recorded. On success
/// the object is confirmed by S3 (its size read back) and returned with a [`PendingObject`] the caller
/// keeps once the metadata row is committed. On failure nothing is left in the bucket or the database.
pub async fn store_stream<S, E>(
    store: &ObjectStore,
    intents: &PgPool,
    key: &str,
    body: S,
    policy: &Policy,
) -> Result<(StoredObject, PendingObject), UploadError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    sqlx::query!("insert into upload_intents (object_key) values ($1)", key)
        .execute(intents)
        .await?;
    let mut pending = PendingObject::new(store, intents, key);
    match transfer(&mut pending, body, policy).await {
        Ok(stored) => Ok((stored, pending)),
        Err(err) => {
            pending.discard().await;
            Err(err)
        }
    }
}

async fn transfer<S, E>(
    pending: &mut PendingObject,
    mut body: S,
    policy: &Policy,
) -> Result<StoredObject, UploadError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let store = pending.store.clone();
    let key = pending.key.clone();
    let mut sha256 = Sha256::new();
    let mut crc32 = crc32fast::Hasher::new();
    let mut size: u64 = 0;
    let mut content_type: Option<String> = None;
    let mut buffer = BytesMut::new();
    let mut parts: Vec<CompletedPart> = Vec::new();

    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|err| UploadError::Interrupted(err.to_string()))?;
        size += chunk.len() as u64;
        if size > policy.max_bytes {
            wait_for(pending.in_flight.take()).await.ok();
            return Err(UploadError::TooLarge {
                limit: policy.max_bytes,
            });
        }
        sha256.update(&chunk);
        crc32.update(&chunk);
        buffer.extend_from_slice(&chunk);
        if content_type.is_none() && buffer.len() >= SNIFF_BYTES {
            content_type = Some(policy.check_type(&buffer)?);
        }
        while buffer.len() >= PART_SIZE {
            let upload_id = match &pending.upload_id {
                Some(upload_id) => upload_id.clone(),
                None => {
                    let created = store
                        .client()
                        .create_multipart_upload()
                        .bucket(store.bucket())
                        .key(&key)
                        .content_type(content_type.as_deref().unwrap_or("application/octet-stream"))
                        .send()
                        .await
                        .map_err(|err| store.classify(&err))?;
                    let upload_id = created
                        .upload_id()
                        .ok_or_else(|| StorageError::Other("S3 returned no upload id".to_owned()))?
                        .to_owned();
                    pending.upload_id = Some(upload_id.clone());
                    pending.armed = true;
                    upload_id
                }
            };
            let part = buffer.split_to(PART_SIZE).freeze();
            if let Some(previous) = wait_for(pending.in_flight.take()).await? {
                parts.push(previous);
            }
            let number = parts.len() as i32 + 1;
            pending.in_flight = Some(tokio::spawn(upload_part(
                store.clone(),
                key.clone(),
                upload_id,
                number,
                part,
            )));
        }
    }
    if let Some(previous) = wait_for(pending.in_flight.take()).await? {
        parts.push(previous);
    }
    if size == 0 {
        return Err(UploadError::Empty);
    }
    let content_type = match content_type {
        Some(content_type) => content_type,
        None => policy.check_type(&buffer)?,
    };
    let sha256: [u8; 32] = sha256.finalize().into();

    match pending.upload_id.clone() {
        None => {
            pending.armed = true;
            store
                .client()
                .put_object()
                .bucket(store.bucket())
                .key(&key)
                .content_type(&content_type)
                .content_length(size as i64)
                .checksum_sha256(BASE64.encode(sha256))
                .body(ByteStream::from(buffer.freeze()))
                .send()
                .await
                .map_err(|err| store.classify(&err))?;
        }
        Some(upload_id) => {
            if !buffer.is_empty() {
                let number = parts.len() as i32 + 1;
                parts.push(
                    upload_part(
                        store.clone(),
                        key.clone(),
                        upload_id.clone(),
                        number,
                        buffer.freeze(),
                    )
                    .await?,
                );
            }
            store
                .client()
                .complete_multipart_upload()
                .bucket(store.bucket())
                .key(&key)
                .upload_id(&upload_id)
                .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                .send()
                .await
                .map_err(|err| store.classify(&err))?;
            // The upload id is spent: from here on, cleaning up means deleting the object.
            pending.upload_id = None;
        }
    }
    let confirmed = store.head(&key).await?;
    if confirmed.size != size {
        return Err(StorageError::Other(format!("S3 stored {} bytes of {size}", confirmed.size)).into());
    }
    Ok(StoredObject {
        key,
        size,
        sha256,
        crc32: crc32.finalize(),
        content_type,
    })
}

async fn wait_for(
    handle: Option<JoinHandle<Result<CompletedPart, StorageError>>>,
) -> Result<Option<CompletedPart>, UploadError> {
    match handle {
        None => Ok(None),
        Some(handle) => match handle.await {
            Ok(part) => Ok(Some(part?)),
            Err(err) => Err(StorageError::Other(format!("part upload task failed: {err}")).into()),
        },
    }
}

/// Sends one part. Its bytes are in memory, so the SDK signs their SHA-256 and S3 verifies it.
async fn upload_part(
    store: ObjectStore,
    key: String,
    upload_id: String,
    number: i32,
    bytes: Bytes,
) -> Result<CompletedPart, StorageError> {
    let length = bytes.len() as i64;
    let uploaded = store
        .client()
        .upload_part()
        .bucket(store.bucket())
        .key(&key)
        .upload_id(upload_id)
        .part_number(number)
        .content_length(length)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .map_err(|err| store.classify(&err))?;
    Ok(CompletedPart::builder()
        .part_number(number)
        .set_e_tag(uploaded.e_tag().map(str::to_owned))
        .build())
}
