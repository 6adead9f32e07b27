//! Streaming one object into S3 with flat memory: bytes are buffered into parts of [`PART_SIZE`]; an
//! object that fits in one part goes up as a single `PutObject` (with its SHA-256 for S3 to verify),
//! a larger one as a multipart upload with one part buffered and one in flight. Part bodies are `Bytes`
//! in memory, so the SDK can retry them; each carries its SHA-256 in the signed `x-amz-checksum-sha256`
//! header, which S3 verifies, so the payload itself is sent unsigned (no second hash of every byte).
//!
//! Nothing is left behind unless the caller says so: an error aborts the multipart upload (or deletes
//! the object), and so does dropping the writer or calling [`ObjectWriter::discard`]. A finished object
//! stays only once [`ObjectWriter::keep`] is called, so a caller can write the bytes first and keep them
//! only if what refers to them (a database row) commits.

use super::{ObjectStore, StorageError};
use aws_sdk_s3::{
    primitives::ByteStream,
    types::{CompletedMultipartUpload, CompletedPart},
};
use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use tokio::task::JoinHandle;

/// Size of each multipart part (S3's minimum is 5 MiB, except for the last part).
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// The content type used until the caller names one.
const UNKNOWN_TYPE: &str = "application/octet-stream";

/// An object S3 confirmed, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenObject {
    /// Its key.
    pub key: String,
    /// Its size in bytes (read back from S3).
    pub size: u64,
    /// SHA-256 of its bytes.
    pub sha256: [u8; 32],
}

/// What S3 may hold of this writer's that nobody has taken over.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Leftover {
    /// Nothing.
    Nothing,
    /// A multipart upload, begun and neither completed nor aborted.
    Upload(String),
    /// An object (written, or maybe written by a request whose answer was lost).
    Object,
}

type PartUpload = JoinHandle<Result<CompletedPart, StorageError>>;

/// Writes one object; see the module documentation. Made by [`ObjectStore::writer`].
#[derive(Debug)]
pub struct ObjectWriter {
    store: ObjectStore,
    key: String,
    content_type: String,
    /// Bytes not yet sent, as they arrived (no copy until a part is cut).
    buffer: VecDeque<Bytes>,
    /// How many bytes `buffer` holds.
    buffered: usize,
    size: u64,
    sha256: Sha256,
    parts: Vec<CompletedPart>,
    /// A part upload still under way; it must end before the upload is aborted, or a part landing
    /// after the abort could linger on S3 where nothing lists it.
    in_flight: Option<PartUpload>,
    leftover: Leftover,
    /// Set by an error: the writer takes no more bytes.
    failed: bool,
    /// Set by `finish`: the object is written and the writer takes no more bytes.
    finished: bool,
}

impl ObjectStore {
    /// A writer for a new object `key`. Nothing is sent until the first part is full or
    /// [`ObjectWriter::finish`] is called.
    pub fn writer(&self, key: &str) -> ObjectWriter {
        ObjectWriter {
            store: self.clone(),
            key: key.to_owned(),
            content_type: UNKNOWN_TYPE.to_owned(),
            buffer: VecDeque::new(),
            buffered: 0,
            size: 0,
            sha256: Sha256::new(),
            parts: Vec::new(),
            in_flight: None,
            leftover: Leftover::Nothing,
            failed: false,
            finished: false,
        }
    }
}

impl ObjectWriter {
    /// The object's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Sets the object's content type. It takes effect when the first request about the object leaves
    /// (a part is full, or the object is finished), so set it before writing more than one part.
    pub fn set_content_type(&mut self, content_type: &str) {
        content_type.clone_into(&mut self.content_type);
    }

    /// The id of the multipart upload this writer has begun and not yet completed or aborted, for a
    /// caller that records it (stores that cannot list multipart uploads need that record to abort an
    /// upload a crash left behind).
    pub fn upload_id(&self) -> Option<&str> {
        match &self.leftover {
            Leftover::Upload(upload_id) => Some(upload_id),
            _ => None,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.size
    }

    /// Appends `bytes`. Sends a part whenever more than a part's worth is buffered, after the previous
    /// part has arrived (one in flight). On error the upload is aborted and the writer is spent.
    pub async fn write(&mut self, bytes: Bytes) -> Result<(), StorageError> {
        self.usable()?;
        let result = self.push(bytes).await;
        self.fail_on(result).await
    }

    /// Sends what is buffered and completes the object, then reads its size back from S3. The object
    /// is removed again unless [`ObjectWriter::keep`] is called. On error nothing is left.
    pub async fn finish(&mut self) -> Result<WrittenObject, StorageError> {
        self.usable()?;
        let result = self.complete().await;
        let written = self.fail_on(result).await?;
        self.finished = true;
        Ok(written)
    }

    /// Keeps the finished object: from now on it belongs to the caller. (A writer that was not
    /// finished has nothing to keep: dropping it cleans up.)
    pub fn keep(mut self) {
        if self.finished {
            self.leftover = Leftover::Nothing;
        }
    }

    /// Removes whatever the writer left in S3 (an unfinished upload, or the finished object) now.
    /// `Ok` when S3 holds nothing of it any more.
    pub async fn discard(mut self) -> Result<(), StorageError> {
        self.clean_up().await
    }

    fn usable(&self) -> Result<(), StorageError> {
        if self.failed || self.finished {
            return Err(StorageError::Other(format!(
                "the writer for {} is {}",
                self.key,
                if self.failed { "spent" } else { "finished" }
            )));
        }
        Ok(())
    }

    async fn fail_on<T>(&mut self, result: Result<T, StorageError>) -> Result<T, StorageError> {
        if result.is_err() {
            self.failed = true;
            if let Err(err) = self.clean_up().await {
                tracing::error!(key = %self.key, error = %err, "cannot remove an unfinished upload");
            }
        }
        result
    }

    async fn push(&mut self, bytes: Bytes) -> Result<(), StorageError> {
        self.size += bytes.len() as u64;
        self.sha256.update(&bytes);
        self.buffered += bytes.len();
        self.buffer.push_back(bytes);
        // Strictly more than a part: an object of exactly one part goes up in one request.
        while self.buffered > PART_SIZE {
            let upload_id = self.begin_upload().await?;
            let part = self.take(PART_SIZE);
            if let Some(previous) = wait_for(self.in_flight.take()).await? {
                self.parts.push(previous);
            }
            let number = self.parts.len() as i32 + 1;
            self.in_flight = Some(tokio::spawn(upload_part(
                self.store.clone(),
                self.key.clone(),
                upload_id,
                number,
                part,
            )));
        }
        Ok(())
    }

    async fn begin_upload(&mut self) -> Result<String, StorageError> {
        if let Leftover::Upload(upload_id) = &self.leftover {
            return Ok(upload_id.clone());
        }
        let created = self
            .store
            .client
            .create_multipart_upload()
            .bucket(&self.store.bucket)
            .key(&self.key)
            .content_type(&self.content_type)
            // Every part carries its SHA-256, which S3 verifies, and the object a composite of them.
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
            .send()
            .await
            .map_err(|err| self.store.classify(&err))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| StorageError::Other("S3 returned no upload id".to_owned()))?
            .to_owned();
        self.leftover = Leftover::Upload(upload_id.clone());
        Ok(upload_id)
    }

    async fn complete(&mut self) -> Result<WrittenObject, StorageError> {
        if let Some(previous) = wait_for(self.in_flight.take()).await? {
            self.parts.push(previous);
        }
        let sha256: [u8; 32] = std::mem::take(&mut self.sha256).finalize().into();
        let rest = self.take(self.buffered);
        match self.leftover.clone() {
            Leftover::Upload(upload_id) => {
                if !rest.is_empty() {
                    let number = self.parts.len() as i32 + 1;
                    let part = upload_part(
                        self.store.clone(),
                        self.key.clone(),
                        upload_id.clone(),
                        number,
                        rest,
                    )
                    .await?;
                    self.parts.push(part);
                }
                self.store
                    .client
                    .complete_multipart_upload()
                    .bucket(&self.store.bucket)
                    .key(&self.key)
                    .upload_id(&upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(std::mem::take(&mut self.parts)))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|err| self.store.classify(&err))?;
            }
            Leftover::Nothing | Leftover::Object => {
                // A request whose answer is lost may still have stored the object: count it as there.
                self.leftover = Leftover::Object;
                self.store
                    .client
                    .put_object()
                    .bucket(&self.store.bucket)
                    .key(&self.key)
                    .content_type(&self.content_type)
                    .content_length(self.size as i64)
                    .checksum_sha256(BASE64.encode(sha256))
                    .body(ByteStream::from(rest))
                    .customize()
                    // The signed x-amz-checksum-sha256 header already binds the body (S3 refuses bytes
                    // that do not match it): signing the payload too would hash every byte again.
                    .disable_payload_signing()
                    .send()
                    .await
                    .map_err(|err| self.store.classify(&err))?;
            }
        }
        // From here on, cleaning up means deleting the object.
        let multipart = matches!(self.leftover, Leftover::Upload(_));
        self.leftover = Leftover::Object;
        // A single put carried its length and checksum, and S3 refused it unless both matched: it
        // needs no second look. An assembled multipart object is checked once more for its size.
        if multipart {
            let confirmed = self.store.head(&self.key).await?;
            if confirmed.size != self.size {
                return Err(StorageError::Other(format!(
                    "S3 stored {} bytes of {} for {}",
                    confirmed.size, self.size, self.key
                )));
            }
        }
        Ok(WrittenObject {
            key: self.key.clone(),
            size: self.size,
            sha256,
        })
    }

    /// The first `length` buffered bytes, copied into one allocation of exactly that size (so a part
    /// never holds a larger buffer alive while it is in flight).
    fn take(&mut self, length: usize) -> Bytes {
        let mut part = BytesMut::with_capacity(length);
        while part.len() < length {
            let Some(mut chunk) = self.buffer.pop_front() else {
                break;
            };
            let wanted = length - part.len();
            if chunk.len() > wanted {
                let rest = chunk.split_off(wanted);
                self.buffer.push_front(rest);
            }
            part.extend_from_slice(&chunk);
        }
        self.buffered -= part.len();
        part.freeze()
    }

    /// Waits for the part in flight, then aborts the upload or deletes the object.
    async fn clean_up(&mut self) -> Result<(), StorageError> {
        let in_flight = self.in_flight.take();
        let leftover = std::mem::replace(&mut self.leftover, Leftover::Nothing);
        let result = remove(&self.store, &self.key, leftover.clone(), in_flight).await;
        if result.is_err() {
            self.leftover = leftover;
        }
        result
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        if self.leftover == Leftover::Nothing && self.in_flight.is_none() {
            return;
        }
        let (store, key) = (self.store.clone(), self.key.clone());
        let leftover = std::mem::replace(&mut self.leftover, Leftover::Nothing);
        let in_flight = self.in_flight.take();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(err) = remove(&store, &key, leftover, in_flight).await {
                        tracing::error!(%key, error = %err, "cannot remove a dropped upload");
                    }
                });
            }
            Err(_) => tracing::error!(key = %self.key, "upload dropped outside the runtime; it stays in S3"),
        }
    }
}

/// Removes what S3 holds of an unkept write: waits for the part in flight, then aborts the multipart
/// upload (and deletes the key too if S3 no longer knows the upload: it may have completed) or deletes
/// the object.
async fn remove(
    store: &ObjectStore,
    key: &str,
    leftover: Leftover,
    in_flight: Option<PartUpload>,
) -> Result<(), StorageError> {
    if let Some(part) = in_flight {
        let _ = part.await;
    }
    match leftover {
        Leftover::Nothing => return Ok(()),
        Leftover::Upload(upload_id) => match store.abort_upload(key, &upload_id).await {
            Err(StorageError::NotFound) => store.delete(key).await?,
            other => other?,
        },
        Leftover::Object => store.delete(key).await?,
    }
    tracing::info!(%key, "removed an unkept upload");
    Ok(())
}

async fn wait_for(handle: Option<PartUpload>) -> Result<Option<CompletedPart>, StorageError> {
    match handle {
        None => Ok(None),
        Some(handle) => match handle.await {
            Ok(part) => Ok(Some(part?)),
            Err(err) => Err(StorageError::Other(format!("part upload task failed: {err}"))),
        },
    }
}

/// Sends one part with its SHA-256 (`x-amz-checksum-sha256`), which S3 verifies before it keeps the
/// part and repeats in the completed upload's composite checksum.
async fn upload_part(
    store: ObjectStore,
    key: String,
    upload_id: String,
    number: i32,
    bytes: Bytes,
) -> Result<CompletedPart, StorageError> {
    let length = bytes.len() as i64;
    let checksum = BASE64.encode(Sha256::digest(&bytes));
    let uploaded = store
        .client
        .upload_part()
        .bucket(&store.bucket)
        .key(&key)
        .upload_id(upload_id)
        .part_number(number)
        .content_length(length)
        .checksum_sha256(&checksum)
        .body(ByteStream::from(bytes))
        .customize()
        // As for a single PutObject: the signed checksum header binds the body.
        .disable_payload_signing()
        .send()
        .await
        .map_err(|err| store.classify(&err))?;
    Ok(CompletedPart::builder()
        .part_number(number)
        .set_e_tag(uploaded.e_tag().map(str::to_owned))
        .checksum_sha256(checksum)
        .build())
}
