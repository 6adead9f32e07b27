//! The document store: uploads stream into the private documents bucket (one object per file) and a
//! row per file is committed only after S3 confirmed the object; downloads stream back through the
//! server after the access check; deletion goes through a trash that a background task purges.

pub mod export;
pub mod headers;
pub mod location;
pub mod quota;
pub mod reconcile;
pub mod slots;
pub mod sniff;
pub mod thumbnails;
pub mod upload;

use crate::{
    access::{Actor, Need, require_pet},
    audit::{self, Action},
    clock::localize,
    db::{ExclusiveTask, run_exclusive},
    domain::{ClinicId, DocumentCategory, DocumentId, DocumentView, PetId, RecordId, UserId},
    error::{Error, Result},
    storage::{ObjectBody, ObjectStore},
};
use serde_json::json;
use sqlx::PgPool;
use std::time::Duration;
pub use upload::{Admission, PendingObject, Policy, StoredObject, UploadBatch, UploadDetails, UploadError};

/// Longest kept file name, in characters.
const FILENAME_MAX: usize = 255;

/// The file name a device sent, made safe to keep and to offer back: no path, no control characters,
/// no names that mean something to an operating system, at most 255 characters with the extension
/// kept. Only ever metadata: storage keys never come from it.
pub fn sanitise_filename(name: &str) -> String {
    // Browsers send a bare name; some tools send a path. Keep the last component.
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let last = unreserved(last);
    let options = sanitize_filename::Options {
        truncate: false,
        windows: true,
        replacement: "_",
    };
    let cleaned = sanitize_filename::sanitize_with_options(&last, options);
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

/// `name` with a harmless suffix after a device name Windows reserves (`CON`, `aux`, `COM1`…), which
/// it reserves whatever follows the first dot: `CON.pdf` becomes `CON_.pdf` and keeps its extension
/// (the sanitiser would otherwise replace the whole name).
fn unreserved(name: &str) -> std::borrow::Cow<'_, str> {
    let (first, rest) = match name.find('.') {
        Some(dot) => name.split_at(dot),
        None => (name, ""),
    };
    let device = first.trim_end().to_ascii_lowercase();
    let reserved = matches!(device.as_str(), "con" | "prn" | "aux" | "nul")
        || (device.len() == 4
            && (device.starts_with("com") || device.starts_with("lpt"))
            && device.as_bytes()[3].is_ascii_digit());
    if reserved {
        std::borrow::Cow::Owned(format!("{}_{rest}", first.trim_end()))
    } else {
        std::borrow::Cow::Borrowed(name)
    }
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
    key: String,
    /// The thumbnail's key, once made.
    thumbnail_key: Option<String>,
    /// Whether it is in the trash.
    pub trashed: bool,
}

impl Downloadable {
    /// Whether a thumbnail has been made.
    pub fn has_thumbnail(&self) -> bool {
        self.thumbnail_key.is_some()
    }
}

/// Which bytes of a document to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendition {
    /// The file as uploaded.
    Original,
    /// Its JPEG thumbnail.
    Thumbnail,
}

/// The size in bytes of a document's `rendition`: [`Error::NotFound`] for a thumbnail not made (yet).
#[tracing::instrument(skip_all, fields(document = %document.id, ?rendition))]
pub async fn rendition_size(
    store: &ObjectStore,
    document: &Downloadable,
    rendition: Rendition,
) -> Result<u64> {
    match rendition {
        Rendition::Original => Ok(document.size),
        Rendition::Thumbnail => {
            let key = document.thumbnail_key.as_deref().ok_or(Error::NotFound)?;
            Ok(store.head(key).await?.size)
        }
    }
}

/// Streams a document's `rendition` from the store, or the inclusive byte range `range` of it. Only
/// call after [`find_readable`] and its audit.
#[tracing::instrument(skip_all, fields(document = %document.id, ?rendition, ?range))]
pub async fn read(
    store: &ObjectStore,
    document: &Downloadable,
    rendition: Rendition,
    range: Option<(u64, u64)>,
) -> Result<ObjectBody> {
    let key = match rendition {
        Rendition::Original => document.key.as_str(),
        Rendition::Thumbnail => document.thumbnail_key.as_deref().ok_or(Error::NotFound)?,
    };
    Ok(store.get_stream(key, range).await?)
}

/// A document the actor may read (even in the trash, for its uploader), or [`Error::NotFound`]
/// (audited) for anything else, exactly as for a missing id.
#[tracing::instrument(skip_all, fields(document = %id, actor = %actor.user.id))]
pub async fn find_readable(pool: &PgPool, actor: &Actor, id: DocumentId) -> Result<Downloadable> {
    // The document and whether its pet is the actor's or shared with their clinic (as
    // `access::pet_permissions` decides), in one statement.
    let row = sqlx::query!(
        r#"select d.pet_id as "pet_id: PetId", d.original_filename, d.content_type, d.size_bytes, d.sha256,
                  d.object_key, d.thumbnail_key, d.deleted_at, d.uploaded_by as "uploaded_by: UserId",
                  coalesce(p.owner_id = $2, false)
                  or exists (select from pet_clinic_access a
                             where a.pet_id = p.id and a.clinic_id = $3 and a.revoked_at is null) as "pet_readable!"
           from documents d join pets p on p.id = d.pet_id
           where d.id = $1"#,
        id as DocumentId,
        actor.user.id as UserId,
        actor.clinic() as Option<ClinicId>,
    )
    .fetch_optional(pool)
    .await?;
    let readable = row.as_ref().is_some_and(|row| {
        let trashed_by_someone_else = row.deleted_at.is_some() && row.uploaded_by != actor.user.id;
        !trashed_by_someone_else && row.pet_readable
    });
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
            trashed: row.deleted_at.is_some(),
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
    /// At most this many, the newest (`None`: all of them).
    pub limit: Option<u32>,
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
    query_documents(pool, actor, pet, filter, None).await
}

async fn query_documents(
    pool: &PgPool,
    actor: &Actor,
    pet: PetId,
    filter: ListFilter,
    ids: Option<&[DocumentId]>,
) -> Result<Vec<DocumentView>> {
    let ids: Option<Vec<uuid::Uuid>> = ids.map(|ids| ids.iter().map(|id| id.0).collect());
    let rows = sqlx::query!(
        r#"select d.id as "id: DocumentId", d.record_id as "record_id: RecordId", d.original_filename,
                  d.content_type, d.size_bytes, d.sha256, d.caption, d.category, d.thumbnail_key, d.created_at,
                  d.deleted_at, d.uploaded_by as "uploaded_by: UserId", u.display_name, d.profile_photo,
                  d.location_removed
           from documents d join users u on u.id = d.uploaded_by
           where d.pet_id = $1
             and ($2::text is null or d.category = $2)
             and ($3::uuid is null or d.record_id = $3)
             and case when $4 then d.deleted_at is not null and d.uploaded_by = $5 else d.deleted_at is null end
             and ($6::uuid[] is null or d.id = any($6))
           order by d.created_at desc, d.id desc
           limit $7::int8"#,
        pet as PetId,
        filter.category.map(DocumentCategory::as_str),
        filter.record as Option<RecordId>,
        filter.trashed,
        actor.user.id as UserId,
        ids.as_deref(),
        filter.limit.map(i64::from),
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
            profile_photo: row.profile_photo,
            location_removed: row.location_removed,
        })
        .collect())
}

/// One document's metadata.
#[tracing::instrument(skip_all, fields(document = %id, actor = %actor.user.id))]
pub async fn view_document(pool: &PgPool, actor: &Actor, id: DocumentId) -> Result<DocumentView> {
    let document = find_readable(pool, actor, id).await?;
    let filter = ListFilter {
        trashed: document.trashed,
        ..ListFilter::default()
    };
    query_documents(pool, actor, document.pet, filter, Some(&[id]))
        .await?
        .pop()
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
        assert_eq!(sanitise_filename("CON"), "CON_");
        assert_eq!(sanitise_filename("CON.pdf"), "CON_.pdf");
        assert_eq!(sanitise_filename("aux.pdf"), "aux_.pdf");
        assert_eq!(sanitise_filename("con.txt.pdf"), "con_.txt.pdf");
        assert_eq!(sanitise_filename("Lpt1.jpg"), "Lpt1_.jpg");
        assert_eq!(sanitise_filename("com9.tar.gz"), "com9_.tar.gz");
        assert_eq!(sanitise_filename("console.pdf"), "console.pdf");
        assert_eq!(sanitise_filename("com10.pdf"), "com10.pdf");
        assert_eq!(sanitise_filename("C:\\scans\\NUL.png"), "NUL_.png");
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
