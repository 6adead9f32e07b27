//! The document store: uploads stream into the private documents bucket (one object per file) and a
//! row per file is committed only after S3 confirmed the object; downloads stream back through the
//! server after the access check; deletion goes through a trash that a background task purges.

pub mod export;
pub mod headers;
pub mod reconcile;
pub mod sniff;
pub mod thumbnails;
pub mod upload;

use crate::{
    access::{Actor, Need, lock_live_share, lock_ownership, pet_permissions, require_pet},
    audit::{self, Action},
    clock::localize,
    db::{ExclusiveTask, run_exclusive},
    domain::{ClinicId, DocumentCategory, DocumentId, DocumentView, FileType, PetId, RecordId, UserId},
    error::{Error, Result},
    storage::ObjectStore,
};
use serde_json::json;
use sqlx::PgPool;
use std::time::Duration;
pub use upload::{PendingObject, Policy, StoredObject, UploadError};

/// Longest kept file name, in characters.
const FILENAME_MAX: usize = 255;

/// The file name a device sent, made safe to keep and to offer back: no path, no control characters,
/// no names that mean something to an operating system, at most 255 characters with the extension
/// kept. Only ever metadata: storage keys never come from it.
pub fn sanitise_filename(name: &str) -> String {
    // Browsers send a bare name; some tools send a path. Keep the last component.
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let options = sanitize_filename::Options {
        truncate: false,
        windows: true,
        replacement: "_",
    };
    let cleaned = sanitize_filename::sanitize_with_options(last, options);
    let cleaned = cleaned.trim().trim_start_matches('.').trim().to_owned();
    if cleaned.is_empty() {
        return "document".to_owned();
    }
    if cleaned.chars().count() <= FILENAME_MAX {
        return cleaned;
    }
    let (stem, extension) = match cleaned.rsplit_once('.') {
        Some((stem, extension)) if !stem.is_empty() && extension.chars().count() <= 16 => {
            (stem, Some(extension))
        }
        _ => (cleaned.as_str(), None),
    };
    let room = FILENAME_MAX - extension.map_or(0, |extension| extension.chars().count() + 1);
    let stem: String = stem.chars().take(room).collect();
    match extension {
        Some(extension) => format!("{stem}.{extension}"),
        None => stem,
    }
}

/// Where uploaded files go, and what they are.
#[derive(Debug, Clone)]
pub struct UploadTarget {
    /// The pet.
    pub pet: PetId,
    /// The record they are attached to, if any.
    pub record: Option<RecordId>,
    /// A caption for every file of the upload.
    pub caption: Option<String>,
    /// A category for every file of the upload.
    pub category: Option<DocumentCategory>,
}

/// Checks that `actor` may upload to `pet` (its owner, or staff of a clinic it is shared with) and to
/// `record` (staff of the record's clinic only). Call before streaming a single byte.
pub async fn authorize_upload(
    pool: &PgPool,
    actor: &Actor,
    pet: PetId,
    record: Option<RecordId>,
) -> Result<()> {
    let permissions = require_pet(pool, actor, pet, Need::Read).await?;
    let refusal = match record {
        None if permissions.owner || permissions.clinic.is_some() => return Ok(()),
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
                Some(clinic) if permissions.clinic == Some(clinic) => return Ok(()),
                Some(_) => {
                    Error::Forbidden("Only staff of the record's clinic can attach files to it.".to_owned())
                }
                None => {
                    crate::domain::InvalidInput::new("record_id", "That record does not belong to this pet.")
                        .into()
                }
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

/// A file that reached S3, with the name it came with.
#[derive(Debug)]
pub struct Upload {
    /// The sanitised file name.
    pub filename: String,
    /// The document id its key was made from.
    pub id: DocumentId,
    /// What S3 confirmed.
    pub stored: StoredObject,
}

fn thumbnail_state(content_type: &str) -> &'static str {
    if FileType::from_mime(content_type).is_some_and(FileType::thumbnailable) {
        "pending"
    } else {
        "none"
    }
}

/// Records uploaded files, all in one transaction (with one audit entry each), after re-checking the
/// caller's access. The caller keeps the S3 objects only if this succeeds.
pub async fn record_uploads(
    pool: &PgPool,
    actor: &Actor,
    target: &UploadTarget,
    bucket: &str,
    uploads: &[Upload],
) -> Result<Vec<DocumentId>> {
    authorize_upload(pool, actor, target.pet, target.record).await?;
    let mut tx = pool.begin().await?;
    let permissions = pet_permissions(pool, actor, target.pet)
        .await?
        .ok_or(Error::NotFound)?;
    let still_allowed = match permissions.clinic {
        Some(clinic) => lock_live_share(&mut tx, target.pet, clinic).await?,
        None => lock_ownership(&mut tx, target.pet, actor.user.id).await?,
    };
    if !still_allowed {
        return Err(Error::NotFound);
    }
    // The announcements go with the rows. One that is gone was given up by reconcile (the upload took
    // longer than its grace period), which may be removing the object: record nothing then.
    let keys: Vec<&str> = uploads.iter().map(|upload| upload.stored.key.as_str()).collect();
    let announced = sqlx::query!(
        "delete from upload_intents where object_key = any($1)",
        &keys as &[&str]
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if announced != uploads.len() as u64 {
        return Err(Error::Conflict(
            "The upload took too long and was given up; please send the files again.".to_owned(),
        ));
    }
    for upload in uploads {
        sqlx::query!(
            r#"insert into documents (id, pet_id, record_id, uploaded_by, original_filename, content_type, size_bytes,
                                      sha256, crc32, bucket, object_key, caption, category, thumbnail_state)
               values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"#,
            upload.id as DocumentId,
            target.pet as PetId,
            target.record as Option<RecordId>,
            actor.user.id as UserId,
            upload.filename,
            upload.stored.content_type,
            upload.stored.size as i64,
            &upload.stored.sha256[..],
            i64::from(upload.stored.crc32),
            bucket,
            upload.stored.key,
            target.caption,
            target.category.map(DocumentCategory::as_str),
            thumbnail_state(&upload.stored.content_type),
        )
        .execute(&mut *tx)
        .await?;
        audit::record(
            &mut *tx,
            actor
                .event(Action::UploadDocument)
                .target("document", upload.id.0)
                .pet(target.pet)
                .detail(json!({ "size": upload.stored.size, "content_type": upload.stored.content_type })),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(uploads.iter().map(|upload| upload.id).collect())
}

/// A document's bytes, as the download route needs them.
#[derive(Debug, Clone)]
pub struct Downloadable {
    /// The document.
    pub id: DocumentId,
    /// Its pet.
    pub pet: PetId,
    /// The name to offer.
    pub filename: String,
    /// The sniffed type.
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the bytes.
    pub sha256: Vec<u8>,
    /// The object key.
    pub key: String,
    /// The thumbnail's key, once made.
    pub thumbnail_key: Option<String>,
}

/// A document the actor may read (even in the trash, for its uploader), or [`Error::NotFound`]
/// (audited) for anything else, exactly as for a missing id.
#[tracing::instrument(skip_all, fields(document = %id, actor = %actor.user.id))]
pub async fn find_readable(pool: &PgPool, actor: &Actor, id: DocumentId) -> Result<Downloadable> {
    let row = sqlx::query!(
        r#"select pet_id as "pet_id: PetId", original_filename, content_type, size_bytes, sha256, object_key,
                  thumbnail_key, deleted_at, uploaded_by as "uploaded_by: UserId"
           from documents where id = $1"#,
        id as DocumentId
    )
    .fetch_optional(pool)
    .await?;
    let readable = match &row {
        Some(row) => {
            let trashed_by_someone_else = row.deleted_at.is_some() && row.uploaded_by != actor.user.id;
            !trashed_by_someone_else && pet_permissions(pool, actor, row.pet_id).await?.is_some()
        }
        None => false,
    };
    match row {
        Some(row) if readable => Ok(Downloadable {
            id,
            pet: row.pet_id,
            filename: row.original_filename,
            content_type: row.content_type,
            size: row.size_bytes.max(0) as u64,
            sha256: row.sha256,
            key: row.object_key,
            thumbnail_key: row.thumbnail_key,
        }),
        row => {
            let mut event = actor.event(Action::AccessDenied).target("document", id.0);
            if let Some(row) = row {
                event = event.pet(row.pet_id);
            }
            audit::record(pool, event.detail(json!({ "needed": "read_document" }))).await?;
            Err(Error::NotFound)
        }
    }
}

/// Records a view or download, once per actor, document and 10 minutes (a PDF viewer's many range
/// requests make one entry).
#[tracing::instrument(skip_all, fields(document = %document.id, pet = %document.pet, actor = %actor.user.id, inline = inline))]
pub async fn audit_access(pool: &PgPool, actor: &Actor, document: &Downloadable, inline: bool) -> Result<()> {
    let action = if inline {
        Action::ViewDocument
    } else {
        Action::DownloadDocument
    };
    audit::record_view(
        pool,
        actor
            .event(action)
            .target("document", document.id.0)
            .pet(document.pet),
    )
    .await?;
    Ok(())
}

/// Which documents to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListFilter {
    /// Only this category.
    pub category: Option<DocumentCategory>,
    /// Only documents attached to this record.
    pub record: Option<RecordId>,
    /// List the trash instead (only what the actor uploaded).
    pub trashed: bool,
}

/// A pet's documents, newest first.
#[tracing::instrument(skip_all, fields(pet = %pet, actor = %actor.user.id, trashed = filter.trashed))]
pub async fn list_documents(
    pool: &PgPool,
    actor: &Actor,
    pet: PetId,
    filter: ListFilter,
) -> Result<Vec<DocumentView>> {
    require_pet(pool, actor, pet, Need::Read).await?;
    let rows = sqlx::query!(
        r#"select d.id as "id: DocumentId", d.record_id as "record_id: RecordId", d.original_filename,
                  d.content_type, d.size_bytes, d.sha256, d.caption, d.category, d.thumbnail_key, d.created_at,
                  d.deleted_at, d.uploaded_by as "uploaded_by: UserId", u.display_name
           from documents d join users u on u.id = d.uploaded_by
           where d.pet_id = $1
             and ($2::text is null or d.category = $2)
             and ($3::uuid is null or d.record_id = $3)
             and case when $4 then d.deleted_at is not null and d.uploaded_by = $5 else d.deleted_at is null end
           order by d.created_at desc, d.id desc"#,
        pet as PetId,
        filter.category.map(DocumentCategory::as_str),
        filter.record as Option<RecordId>,
        filter.trashed,
        actor.user.id as UserId,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| DocumentView {
            id: row.id,
            pet_id: pet,
            record_id: row.record_id,
            filename: row.original_filename,
            content_type: row.content_type,
            size_bytes: row.size_bytes,
            sha256: row.sha256.iter().map(|byte| format!("{byte:02x}")).collect(),
            caption: row.caption,
            category: row
                .category
                .as_deref()
                .and_then(|category| DocumentCategory::parse(category).ok().flatten()),
            uploaded_by: row.display_name,
            uploaded_at: localize(row.created_at, actor.zone()),
            has_thumbnail: row.thumbnail_key.is_some(),
            deleted_at: row.deleted_at.map(|at| localize(at, actor.zone())),
            can_delete: row.uploaded_by == actor.user.id,
        })
        .collect())
}

/// One document's metadata.
#[tracing::instrument(skip_all, fields(document = %id, actor = %actor.user.id))]
pub async fn view_document(pool: &PgPool, actor: &Actor, id: DocumentId) -> Result<DocumentView> {
    let document = find_readable(pool, actor, id).await?;
    let trashed = sqlx::query_scalar!(
        "select deleted_at is not null from documents where id = $1",
        id as DocumentId
    )
    .fetch_one(pool)
    .await?
    .unwrap_or(false);
    list_documents(
        pool,
        actor,
        document.pet,
        ListFilter {
            trashed,
            ..ListFilter::default()
        },
    )
    .await?
    .into_iter()
    .find(|view| view.id == id)
    .ok_or(Error::NotFound)
}

/// Moves a document to the trash, or back (its uploader only, while they may see the pet).
#[tracing::instrument(skip_all, fields(document = %id, actor = %actor.user.id, trashed = trashed))]
pub async fn set_trashed(pool: &PgPool, actor: &Actor, id: DocumentId, trashed: bool) -> Result<()> {
    let document = find_readable(pool, actor, id).await?;
    let mut tx = pool.begin().await?;
    let changed = sqlx::query!(
        r#"update documents
           set deleted_at = case when $3 then coalesce(deleted_at, now()) end,
               deleted_by = case when $3 then $2 end
           where id = $1 and uploaded_by = $2"#,
        id as DocumentId,
        actor.user.id as UserId,
        trashed,
    )
    .execute(&mut *tx)
    .await?;
    if changed.rows_affected() == 0 {
        drop(tx);
        audit::record(
            pool,
            actor
                .event(Action::AccessDenied)
                .target("document", id.0)
                .pet(document.pet)
                .detail(json!({ "needed": if trashed { "trash_document" } else { "restore_document" } })),
        )
        .await?;
        return Err(Error::Forbidden(
            "Only the person who uploaded a document can delete or restore it.".to_owned(),
        ));
    }
    let action = if trashed {
        Action::TrashDocument
    } else {
        Action::RestoreDocument
    };
    audit::record(
        &mut *tx,
        actor.event(action).target("document", id.0).pet(document.pet),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Purges documents that have been in the trash longer than `retention`: their object and thumbnail
/// first, then the row. Runs on one replica at a time; `None` when another holds the lock.
#[tracing::instrument(skip_all, fields(retention_secs = retention.as_secs()))]
pub async fn purge_trash(pool: &PgPool, store: &ObjectStore, retention: Duration) -> Result<Option<u64>> {
    let purged = run_exclusive(pool, ExclusiveTask::PurgeTrash, || async {
        let due = sqlx::query_scalar!(
            r#"select id as "id: DocumentId" from documents
               where deleted_at < now() - make_interval(secs => $1::float8)
               order by deleted_at limit 500"#,
            retention.as_secs_f64()
        )
        .fetch_all(pool)
        .await?;
        let mut purged = 0;
        for id in due {
            // Lock the row and look again: a restore that got in first wins, and one that comes later
            // waits for this transaction and then finds nothing to restore.
            let mut tx = pool.begin().await?;
            let Some(document) = sqlx::query!(
                r#"select pet_id as "pet_id: PetId", object_key, thumbnail_key from documents
                   where id = $1 and deleted_at < now() - make_interval(secs => $2::float8)
                   for update"#,
                id as DocumentId,
                retention.as_secs_f64()
            )
            .fetch_optional(&mut *tx)
            .await?
            else {
                continue;
            };
            let removed = async {
                store.delete(&document.object_key).await?;
                if let Some(thumbnail) = &document.thumbnail_key {
                    store.delete(thumbnail).await?;
                }
                Ok::<_, crate::storage::StorageError>(())
            }
            .await;
            if let Err(err) = removed {
                tracing::warn!(document = %id, error = %err, "cannot purge a document's objects yet");
                continue;
            }
            sqlx::query!("delete from documents where id = $1", id as DocumentId)
                .execute(&mut *tx)
                .await?;
            audit::record(
                &mut *tx,
                audit::Event::new(Action::PurgeDocument, None, None)
                    .target("document", id.0)
                    .pet(document.pet_id),
            )
            .await?;
            tx.commit().await?;
            purged += 1;
        }
        Ok(purged)
    })
    .await?;
    Ok(purged)
}

#[cfg(test)]
mod tests {
    use super::sanitise_filename;

    #[test]
    fn paths_control_characters_and_reserved_names_are_neutralised() {
        assert_eq!(sanitise_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitise_filename("C:\\Users\\ada\\scan.pdf"), "scan.pdf");
        assert_eq!(sanitise_filename("evil\0na\r\nme\u{7}.pdf"), "evil_na__me_.pdf");
        assert_eq!(sanitise_filename("..."), "_");
        assert_eq!(sanitise_filename(".hidden.pdf"), "hidden.pdf");
        assert_eq!(sanitise_filename("CON"), "_");
        assert_eq!(sanitise_filename("Röntgen 🐶.jpg"), "Röntgen 🐶.jpg");
        assert_eq!(sanitise_filename(""), "document");
    }

    #[test]
    fn long_names_keep_their_extension() {
        let name = sanitise_filename(&format!("{}.pdf", "a".repeat(300)));
        assert_eq!(name.chars().count(), 255);
        assert!(name.ends_with("a.pdf"));
        assert_eq!(sanitise_filename(&"b".repeat(300)).chars().count(), 255);
    }
}
