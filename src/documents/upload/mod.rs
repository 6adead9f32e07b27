//! The upload protocol, in one place. An [`UploadBatch`] takes the files of one request:
//!
//! 1. [`UploadBatch::begin`] checks that the caller may upload to the pet, before a byte is read;
//!    [`UploadBatch::admit`] does that and takes what the request is allowed: one of the user's upload
//!    slots, the storage it declares from the payer's quota, and its length from the user's hourly
//!    allowance;
//! 2. [`UploadBatch::add_file`] streams each file into its own object (key `documents/<new id>`): the
//!    upload is announced in `upload_intents` first (with its multipart upload id once S3 gives one), and
//!    the bytes are counted, sniffed and checksummed on their way through the storage layer's
//!    [`ObjectWriter`](crate::storage::ObjectWriter), one part buffered and one in flight, so memory stays flat whatever the size;
//! 3. [`UploadBatch::finish`] checks access again inside the write transaction, records every row, its
//!    audit entry and the end of its announcement in that one transaction, and keeps the objects only if
//!    it commits.
//!
//! Any failure, or the caller going away, removes the objects (aborting multipart uploads) and their
//! announcements: all files of a batch are stored, or none. If S3 cannot be told, the announcement stays
//! so that reconcile finishes the job later.
mod object;

pub use object::{PendingObject, Policy, StoredObject, store_stream};

use super::{
    quota::{Payer, Quotas, Reservation},
    slots::UploadSlot,
};
use crate::{
    access::{Actor, Need, lock_live_share, lock_ownership, require_pet},
    audit::{self, Action},
    clock::localize,
    domain::{
        ClinicId, DocumentCategory, DocumentId, DocumentView, FileType, InvalidInput, PetId, PetPermissions,
        RecordId, UserId,
    },
    error::{Error, Result},
    storage::ObjectStore,
};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;

pub use crate::error::UploadError;
pub use crate::storage::PART_SIZE;

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

/// What an upload request may take before its body is read (see [`UploadBatch::admit`]).
#[derive(Debug, Clone, Copy)]
pub struct Admission {
    /// Uploads one user may run at once.
    pub concurrent_uploads: usize,
    /// The payers' storage quotas.
    pub quotas: Quotas,
    /// Bytes one user may upload per hour.
    pub allowance: crate::rate_limit::Limit,
    /// The request's length, when it says: taken whole from the quota and the allowance before a byte
    /// is read. Without it, storage is reserved as bytes arrive, and the caller charges the allowance
    /// with what arrived ([`crate::rate_limit::count_amount`]).
    pub declared: Option<u64>,
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
    /// What the caller may do to the pet, as `begin` found it (the write transaction checks it again).
    permissions: PetPermissions,
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
            permissions,
            reservation: None,
            files: Vec::new(),
        })
    }

    /// [`Self::begin`], then what the request may take before its body is read, in this order: one of
    /// the user's upload slots (held until the batch ends), storage from the payer's quota (the
    /// declared length, or as bytes arrive), and the declared length from the user's hourly allowance.
    /// Whatever was taken is given back if a later step refuses.
    pub async fn admit(
        db: &PgPool,
        store: &ObjectStore,
        policy: Policy,
        actor: &Actor,
        pet: PetId,
        admission: Admission,
    ) -> Result<Self> {
        let mut batch = Self::begin(db, store, policy, actor, pet).await?;
        let slot = UploadSlot::take(db, actor.user.id, admission.concurrent_uploads).await?;
        batch.reserve(slot, &admission.quotas, admission.declared).await?;
        if let Some(length) = admission.declared {
            let key = crate::rate_limit::Key::UploadBytes(actor.user.id);
            // (Refused: dropping the batch gives the slot and its reservation back.)
            crate::rate_limit::take_amount(db, &key, length, admission.allowance).await?;
        }
        Ok(batch)
    }

    /// Who the batch's documents count against: the clinic when its staff upload, the owner otherwise.
    pub fn payer(&self) -> Payer {
        payer(&self.permissions, &self.actor)
    }

    /// Reserves storage for the batch on `slot` before any byte is read: `declared` bytes when the
    /// request says how long it is, otherwise step by step as bytes arrive. Fails with
    /// [`Error::QuotaExceeded`] when that does not fit in the payer's quota. The reservation (and the
    /// slot) is given back when the batch ends.
    pub async fn reserve(&mut self, slot: UploadSlot, quotas: &Quotas, declared: Option<u64>) -> Result<()> {
        let reservation =
            Reservation::new(&self.db, slot, self.payer(), quotas, declared.unwrap_or(0)).await?;
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
                Ok(created_at) => {
                    // What was just written, as the pet's list would show it (newest first), without
                    // reading it back.
                    let mut views: Vec<DocumentView> = files
                        .iter()
                        .map(|file| self.view(file, &details, created_at))
                        .collect();
                    views.sort_by_key(|view| std::cmp::Reverse(view.id.0));
                    for file in files {
                        file.pending.keep();
                    }
                    Ok(views)
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

    /// A file of the batch as the pet's document list shows it, recorded at `created_at`.
    fn view(&self, file: &Received, details: &UploadDetails, created_at: OffsetDateTime) -> DocumentView {
        let stored = &file.stored;
        DocumentView {
            id: stored.id,
            pet_id: self.pet,
            record_id: details.record,
            filename: file.filename.clone(),
            content_type: stored.content_type.clone(),
            size_bytes: stored.size as i64,
            sha256: stored.sha256.iter().map(|byte| format!("{byte:02x}")).collect(),
            caption: details.caption.clone(),
            category: details.category,
            uploaded_by: self.actor.user.display_name.clone(),
            uploaded_at: localize(created_at, self.actor.zone()),
            has_thumbnail: false,
            deleted_at: None,
            can_delete: true,
            profile_photo: false,
            location_removed: stored.location_removed,
        }
    }

    /// Records the batch in one transaction; returns when (the transaction's time, every row's).
    async fn record(&self, details: &UploadDetails) -> Result<OffsetDateTime> {
        // `begin`'s permissions chose the payer: the documents are charged and locked by them. The
        // transaction below checks the ownership or the share again under a lock; a record is checked
        // here (staff of its clinic only), and must be of the clinic `begin` found.
        let permissions = self.permissions;
        if details.record.is_some() {
            let now = authorize_upload(&self.db, &self.actor, self.pet, details.record).await?;
            if now.clinic != permissions.clinic {
                return Err(Error::Conflict(
                    "The pet's sharing changed during the upload; please send the files again.".to_owned(),
                ));
            }
        }
        let mut tx = self.db.begin().await?;
        let still_allowed = match permissions.clinic {
            Some(clinic) => lock_live_share(&mut tx, self.pet, clinic).await?,
            None => lock_ownership(&mut tx, self.pet, self.actor.user.id).await?,
        };
        if !still_allowed {
            drop(tx);
            // Access ended during the upload (a share revoked, the pet given away): refused like any
            // other access, and audited.
            audit::record(
                &self.db,
                self.actor
                    .event(Action::AccessDenied)
                    .target("pet", self.pet.0)
                    .pet(self.pet)
                    .detail(json!({ "needed": "upload", "record": details.record.map(|record| record.0) })),
            )
            .await?;
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
        let mut created_at = OffsetDateTime::UNIX_EPOCH;
        for file in &self.files {
            let stored = &file.stored;
            created_at = sqlx::query_scalar!(
                r#"insert into documents (id, pet_id, record_id, uploaded_by, original_filename, content_type, size_bytes,
                                          sha256, crc32, bucket, object_key, caption, category, thumbnail_state,
                                          charged_clinic_id, location_removed)
                   values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
                   returning created_at"#,
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
            .fetch_one(&mut *tx)
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
        Ok(created_at)
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
