//! The upload protocol, in one place. An [`UploadBatch`] takes the files of one request:
//!
//! 1. [`UploadBatch::begin`] checks that the caller may upload to the pet, before a byte is read;
//! 2. [`UploadBatch::add_file`] streams each file into its own object (key `documents/<new id>`): the
//!    upload is announced in `upload_intents` first (with its multipart upload id once S3 gives one), and
//!    the bytes are counted, sniffed and checksummed on their way through the storage layer's
//!    [`ObjectWriter`], one part buffered and one in flight, so memory stays flat whatever the size;
//! 3. [`UploadBatch::finish`] checks access again inside the write transaction, records every row, its
//!    audit entry and the end of its announcement in that one transaction, and keeps the objects only if
//!    it commits.
//!
//! Any failure, or the caller going away, removes the objects (aborting multipart uploads) and their
//! announcements: all files of a batch are stored, or none. If S3 cannot be told, the announcement stays
//! so that reconcile finishes the job later.

use super::{
    location::LocationFilter,
    quota::{Payer, Quotas, Reservation},
    slots::UploadSlot,
    sniff::{SNIFF_BYTES, sniff},
};
use crate::{
    access::{Actor, Need, lock_live_share, lock_ownership, require_pet},
    audit::{self, Action},
    domain::{
        ClinicId, DocumentCategory, DocumentId, DocumentView, FileType, InvalidInput, PetId, PetPermissions,
        RecordId, UserId,
    },
    error::{Error, Result},
    storage::{ObjectStore, ObjectWriter, StorageKey},
};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde_json::json;
use sqlx::PgPool;

pub use crate::error::UploadError;
pub use crate::storage::PART_SIZE;

/// What an upload must satisfy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Largest accepted file, in bytes.
    pub max_bytes: u64,
    /// Accepted MIME types (as the sniffer names them).
    pub accepted: Vec<String>,
    /// Whether location metadata is removed from JPEG, PNG and WebP photos (see [`super::location`]).
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

/// What the files of one upload are attached to and how they are described (the form's text fields).
#[derive(Debug, Clone, Default)]
pub struct UploadDetails {
    /// The record they are attached to, if any.
    pub record: Option<RecordId>,
    /// A caption for every file of the upload.
    pub caption: Option<String>,
    /// A category for every file of the upload.
    pub category: Option<DocumentCategory>,
}

/// A file of a batch that reached S3, with the name it came with.
#[derive(Debug)]
struct Received {
    filename: String,
    stored: StoredObject,
    pending: PendingObject,
}

/// The files of one upload request, stored together or not at all. See the module documentation.
#[derive(Debug)]
pub struct UploadBatch {
    db: PgPool,
    store: ObjectStore,
    policy: Policy,
    actor: Actor,
    pet: PetId,
    payer: Payer,
    reservation: Option<Reservation>,
    files: Vec<Received>,
}

impl UploadBatch {
    /// Most files in one batch.
    pub const MAX_FILES: usize = 20;

    /// Starts a batch of files for `pet`, after checking that `actor` may add documents to it (its
    /// owner, or staff of a clinic it is shared with). Call before reading the request body.
    #[tracing::instrument(skip_all, fields(pet = %pet, actor = %actor.user.id))]
    pub async fn begin(
        db: &PgPool,
        store: &ObjectStore,
        policy: Policy,
        actor: &Actor,
        pet: PetId,
    ) -> Result<Self> {
        let permissions = authorize_upload(db, actor, pet, None).await?;
        Ok(Self {
            db: db.clone(),
            store: store.clone(),
            policy,
            actor: actor.clone(),
            pet,
            payer: payer(&permissions, actor),
            reservation: None,
            files: Vec::new(),
        })
    }

    /// Who the batch's documents count against: the clinic when its staff upload, the owner otherwise.
    pub fn payer(&self) -> Payer {
        self.payer
    }

    /// Reserves storage for the batch on `slot` before any byte is read: `declared` bytes when the
    /// request says how long it is, otherwise step by step as bytes arrive. Fails with
    /// [`Error::QuotaExceeded`] when that does not fit in the payer's quota. The reservation (and the
    /// slot) is given back when the batch ends.
    pub async fn reserve(&mut self, slot: UploadSlot, quotas: &Quotas, declared: Option<u64>) -> Result<()> {
        let reservation = Reservation::new(&self.db, slot, self.payer, quotas, declared.unwrap_or(0)).await?;
        self.reservation = Some(reservation);
        Ok(())
    }

    /// Streams one file (as the device named it) into the store. If it is refused or fails, every
    /// file of the batch is removed and the error names the file.
    #[tracing::instrument(skip_all, fields(pet = %self.pet, file = self.files.len()))]
    pub async fn add_file<S, E>(&mut self, name: &str, body: S) -> Result<()>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let filename = super::sanitise_filename(name);
        if self.files.len() == Self::MAX_FILES {
            self.discard_files().await;
            return Err(Error::Upload {
                file: filename,
                error: UploadError::TooManyFiles {
                    most: Self::MAX_FILES,
                },
            });
        }
        // With a reservation, each chunk is counted against it before it goes on to the store.
        let over_quota = std::sync::Mutex::new(None);
        let stored = match &self.reservation {
            None => store_stream(&self.store, &self.db, DocumentId::new(), body, &self.policy).await,
            Some(reservation) => {
                let db = &self.db;
                let over_quota = &over_quota;
                let counted = futures::stream::try_unfold(body, move |mut body| async move {
                    let Some(chunk) = body.next().await else {
                        return Ok(None);
                    };
                    let chunk = chunk.map_err(|err| err.to_string())?;
                    if let Err(err) = reservation.arrive(db, chunk.len() as u64).await {
                        let message = err.to_string();
                        *over_quota
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(err);
                        return Err(message);
                    }
                    Ok(Some((chunk, body)))
                });
                store_stream(
                    &self.store,
                    &self.db,
                    DocumentId::new(),
                    std::pin::pin!(counted),
                    &self.policy,
                )
                .await
            }
        };
        if let Some(err) = over_quota
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            self.discard_files().await;
            return Err(err);
        }
        match stored {
            Ok((stored, pending)) => {
                self.files.push(Received {
                    filename,
                    stored,
                    pending,
                });
                Ok(())
            }
            Err(error) => {
                self.discard_files().await;
                Err(Error::Upload {
                    file: filename,
                    error,
                })
            }
        }
    }

    /// Removes every file of the batch now (the request failed).
    pub async fn discard(mut self) {
        self.discard_files().await;
    }

    async fn discard_files(&mut self) {
        for file in self.files.drain(..) {
            file.pending.discard().await;
        }
    }

    /// Records the files: access is checked again (and locked) inside the transaction that writes
    /// every row and its audit entry; the objects are kept if it commits and removed otherwise. This
    /// runs to the end even if the caller goes away meanwhile (dropping the request after the commit
    /// must not remove the objects of saved rows). Returns the documents written.
    #[tracing::instrument(skip_all, fields(pet = %self.pet, files = self.files.len()))]
    pub async fn finish(mut self, details: UploadDetails) -> Result<Vec<DocumentView>> {
        if self.files.is_empty() {
            return Err(InvalidInput::new("file", "Choose at least one file.").into());
        }
        let recording = tokio::spawn(async move {
            let recorded = self.record(&details).await;
            let files = std::mem::take(&mut self.files);
            match recorded {
                Ok(()) => {
                    let ids: Vec<DocumentId> = files.iter().map(|file| file.stored.id).collect();
                    for file in files {
                        file.pending.keep();
                    }
                    super::documents_by_id(&self.db, &self.actor, self.pet, &ids).await
                }
                Err(err) => {
                    for file in files {
                        file.pending.discard().await;
                    }
                    Err(err)
                }
            }
        });
        recording
            .await
            .map_err(|err| Error::Internal(anyhow::anyhow!("recording an upload failed: {err}")))?
    }

    async fn record(&self, details: &UploadDetails) -> Result<()> {
        let permissions = authorize_upload(&self.db, &self.actor, self.pet, details.record).await?;
        let mut tx = self.db.begin().await?;
        let still_allowed = match permissions.clinic {
            Some(clinic) => lock_live_share(&mut tx, self.pet, clinic).await?,
            None => lock_ownership(&mut tx, self.pet, self.actor.user.id).await?,
        };
        if !still_allowed {
            return Err(Error::NotFound);
        }
        // The announcements go with the rows. One that is gone was given up by reconcile (the upload
        // took longer than its grace period), which may be removing the object: record nothing then.
        let keys: Vec<&str> = self.files.iter().map(|file| file.stored.key.as_str()).collect();
        let announced = sqlx::query!(
            "delete from upload_intents where object_key = any($1)",
            &keys as &[&str]
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if announced != self.files.len() as u64 {
            return Err(Error::Conflict(
                "The upload took too long and was given up; please send the files again.".to_owned(),
            ));
        }
        for file in &self.files {
            let stored = &file.stored;
            sqlx::query!(
                r#"insert into documents (id, pet_id, record_id, uploaded_by, original_filename, content_type, size_bytes,
                                          sha256, crc32, bucket, object_key, caption, category, thumbnail_state,
                                          charged_clinic_id, location_removed)
                   values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"#,
                stored.id as DocumentId,
                self.pet as PetId,
                details.record as Option<RecordId>,
                self.actor.user.id as UserId,
                file.filename,
                stored.content_type,
                stored.size as i64,
                &stored.sha256[..],
                i64::from(stored.crc32),
                self.store.bucket(),
                stored.key,
                details.caption,
                details.category.map(DocumentCategory::as_str),
                thumbnail_state(&stored.content_type),
                permissions.clinic as Option<ClinicId>,
                stored.location_removed,
            )
            .execute(&mut *tx)
            .await?;

            audit::record(
                &mut *tx,
                self.actor
                    .event(Action::UploadDocument)
                    .target("document", stored.id.0)
                    .pet(self.pet)
                    .detail(json!({ "size": stored.size, "content_type": stored.content_type })),
            )
            .await?;
        }
        if let Some(reservation) = &self.reservation {
            reservation.settle(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Who an upload with `permissions` is charged to (the same choice [`UploadBatch::finish`] makes
/// between the clinic's share and the ownership).
fn payer(permissions: &PetPermissions, actor: &Actor) -> Payer {
    match permissions.clinic {
        Some(clinic) => Payer::Clinic(clinic),
        None => Payer::Owner(actor.user.id),
    }
}

fn thumbnail_state(content_type: &str) -> &'static str {
    if FileType::from_mime(content_type).is_some_and(FileType::thumbnailable) {
        "pending"
    } else {
        "none"
    }
}

/// Checks that `actor` may upload to `pet` (its owner, or staff of a clinic it is shared with) and to
/// `record` (staff of the record's clinic only); refusals are audited.
async fn authorize_upload(
    pool: &PgPool,
    actor: &Actor,
    pet: PetId,
    record: Option<RecordId>,
) -> Result<PetPermissions> {
    let permissions = require_pet(pool, actor, pet, Need::Read).await?;
    let refusal = match record {
        None if permissions.owner || permissions.clinic.is_some() => return Ok(permissions),
        None => Error::Forbidden("You may not add documents to this pet.".to_owned()),
        Some(record) => {
            let clinic = sqlx::query_scalar!(
                r#"select clinic_id as "clinic_id: ClinicId" from medical_records where id = $1 and pet_id = $2"#,
                record as RecordId,
                pet as PetId,
            )
            .fetch_optional(pool)
            .await?;
            match clinic {
                Some(clinic) if permissions.clinic == Some(clinic) => return Ok(permissions),
                Some(_) => {
                    Error::Forbidden("Only staff of the record's clinic can attach files to it.".to_owned())
                }
                None => InvalidInput::new("record_id", "That record does not belong to this pet.").into(),
            }
        }
    };
    audit::record(
        pool,
        actor
            .event(Action::AccessDenied)
            .target("pet", pet.0)
            .pet(pet)
            .detail(json!({ "needed": "upload", "record": record.map(|record| record.0) })),
    )
    .await?;
    Err(refusal)
}
