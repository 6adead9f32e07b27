//! One object of an upload: streamed into S3 through the storage layer's writer, its type sniffed from
//! its first bytes, a photo's location removed on the way, announced in `upload_intents` until its row
//! commits, and removed if it never does.

use super::super::{
    location::LocationFilter,
    sniff::{SNIFF_BYTES, sniff},
};
use crate::error::UploadError;
use crate::{
    domain::DocumentId,
    error::Result,
    storage::{ObjectStore, ObjectWriter, StorageKey},
};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use sqlx::PgPool;

/// What an upload must satisfy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Largest accepted file, in bytes.
    pub max_bytes: u64,
    /// Accepted MIME types (as the sniffer names them).
    pub accepted: Vec<String>,
    /// Whether location metadata is removed from JPEG, PNG and WebP photos (see [`crate::documents::location`]).
    pub strip_location: bool,
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
                    .map(|mime| super::super::sniff::label(mime))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }
}

/// A stored object, as S3 confirmed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// The document id its key was made from.
    pub id: DocumentId,
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
    /// Whether location metadata was removed on the way (what is stored, and hashed, is without it).
    pub location_removed: bool,
}

/// An object (or multipart upload) that exists in S3 but is not yet recorded in Postgres, and its
/// announcement in `upload_intents`. Unless [`PendingObject::keep`] is called, both are removed: by
/// [`PendingObject::discard`], or in the background when dropped (a request cancelled mid-way).
#[derive(Debug)]
pub struct PendingObject {
    writer: Option<ObjectWriter>,
    intents: PgPool,
    key: String,
}

impl PendingObject {
    /// The object is recorded (and its announcement removed with the row): leave it.
    pub fn keep(mut self) {
        if let Some(writer) = self.writer.take() {
            writer.keep();
        }
    }

    /// Removes the object or aborts the multipart upload, then the announcement, now.
    pub async fn discard(mut self) {
        if let Some(writer) = self.writer.take() {
            forget(writer, &self.intents, &self.key).await;
        }
    }
}

impl Drop for PendingObject {
    fn drop(&mut self) {
        let Some(writer) = self.writer.take() else { return };
        let (intents, key) = (self.intents.clone(), self.key.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { forget(writer, &intents, &key).await });
        } else {
            tracing::error!(%key, "upload dropped outside the runtime; reconcile will remove it");
        }
    }
}

/// Removes what S3 holds of an unrecorded upload, then (only if that worked) its announcement.
async fn forget(writer: ObjectWriter, intents: &PgPool, key: &str) {
    if let Err(err) = writer.discard().await {
        // The announcement stays, so reconcile leaves the object alone until the upload grace
        // period has passed, then removes both.
        tracing::error!(%key, error = %err, "cannot remove an unfinished upload; reconcile will");
        return;
    }
    if let Err(err) = sqlx::query!("delete from upload_intents where object_key = $1", key)
        .execute(intents)
        .await
    {
        tracing::error!(%key, error = %err, "cannot remove an upload's announcement; reconcile will");
    }
}

/// Streams `body` into the new object of document `id`, enforcing `policy`. The upload is first
/// announced in `upload_intents` (in `intents`), so reconcile leaves the object alone until it is
/// recorded; a multipart upload's id is recorded there as soon as S3 gives it. On success the object is
/// confirmed by S3 (its size read back) and returned with a [`PendingObject`] the caller keeps once the
/// metadata row is committed. On failure nothing is left in the bucket or the database.
#[tracing::instrument(skip_all, fields(document = %id))]
pub async fn store_stream<S, E>(
    store: &ObjectStore,
    intents: &PgPool,
    id: DocumentId,
    body: S,
    policy: &Policy,
) -> Result<(StoredObject, PendingObject), UploadError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let key = StorageKey::Document(id).key();
    sqlx::query!("insert into upload_intents (object_key) values ($1)", key)
        .execute(intents)
        .await?;
    let mut pending = PendingObject {
        writer: Some(store.writer(&key)),
        intents: intents.clone(),
        key,
    };
    match transfer(&mut pending, id, body, policy).await {
        Ok(stored) => Ok((stored, pending)),
        Err(err) => {
            pending.discard().await;
            Err(err)
        }
    }
}

async fn transfer<S, E>(
    pending: &mut PendingObject,
    id: DocumentId,
    mut body: S,
    policy: &Policy,
) -> Result<StoredObject, UploadError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let writer = pending.writer.as_mut().expect("a pending upload has its writer");
    let mut crc32 = crc32fast::Hasher::new();
    let mut head: Vec<u8> = Vec::with_capacity(SNIFF_BYTES);
    // Chunks that arrived before the type was known (the head is small: 8 KiB).
    let mut held: Vec<Bytes> = Vec::new();
    let mut received = 0u64;
    let mut content_type: Option<String> = None;
    let mut filter: Option<LocationFilter> = None;
    let mut location_removed = false;
    let mut upload_id_recorded = false;

    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|err| UploadError::Interrupted(err.to_string()))?;
        received += chunk.len() as u64;
        if received > policy.max_bytes {
            return Err(UploadError::TooLarge {
                limit: policy.max_bytes,
            });
        }
        let ready = if content_type.is_some() {
            vec![chunk]
        } else {
            // The type is known before the first part leaves (a part is far larger than the head).
            let wanted = SNIFF_BYTES - head.len();
            head.extend_from_slice(&chunk[..wanted.min(chunk.len())]);
            held.push(chunk);
            if head.len() < SNIFF_BYTES {
                continue;
            }
            let sniffed = policy.check_type(&head)?;
            writer.set_content_type(&sniffed);
            filter = policy
                .strip_location
                .then(|| LocationFilter::for_type(&sniffed))
                .flatten();
            content_type = Some(sniffed);
            std::mem::take(&mut held)
        };
        for chunk in ready {
            let stored = match filter.as_mut() {
                Some(filter) => filter.push(chunk),
                None => vec![chunk],
            };
            for piece in stored {
                crc32.update(&piece);
                writer.write(piece).await?;
            }
        }
        if !upload_id_recorded && let Some(upload_id) = writer.upload_id() {
            sqlx::query!(
                "update upload_intents set upload_id = $2 where object_key = $1",
                pending.key,
                upload_id
            )
            .execute(&pending.intents)
            .await?;
            upload_id_recorded = true;
        }
    }
    if received == 0 {
        return Err(UploadError::Empty);
    }
    let content_type = match content_type {
        Some(content_type) => content_type,
        None => {
            // A file smaller than the head.
            let sniffed = policy.check_type(&head)?;
            writer.set_content_type(&sniffed);
            filter = policy
                .strip_location
                .then(|| LocationFilter::for_type(&sniffed))
                .flatten();
            for chunk in std::mem::take(&mut held) {
                let stored = match filter.as_mut() {
                    Some(filter) => filter.push(chunk),
                    None => vec![chunk],
                };
                for piece in stored {
                    crc32.update(&piece);
                    writer.write(piece).await?;
                }
            }
            sniffed
        }
    };
    if let Some(filter) = filter {
        location_removed = filter.removed();
        for piece in filter.finish() {
            crc32.update(&piece);
            writer.write(piece).await?;
        }
    }
    let written = writer.finish().await?;
    Ok(StoredObject {
        id,
        key: written.key,
        size: written.size,
        sha256: written.sha256,
        crc32: crc32.finalize(),
        content_type,
        location_removed,
    })
}
