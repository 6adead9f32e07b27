//! Single documents back from a snapshot into the live system, into their pet's trash: the owner sees
//! them and restores them from there.

use super::{Plaintext, Source, choose, copy_dump, read_manifests, refuse};
use crate::{
    audit::{self, Action},
    backup::{
        crypto::UNENCRYPTED,
        dump::{self, PORTABLE_SETTINGS},
        manifest::Stored,
    },
    error::{Error, Result},
    storage::ObjectStore,
};
use sqlx::{Executor, PgPool};
use std::collections::HashMap;
use uuid::Uuid;

/// What to bring back from a snapshot into the live system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// One document (purged from the trash, or deleted by mistake).
    Document(crate::domain::DocumentId),
    /// Every document of a pet that the live system no longer has.
    Pet(crate::domain::PetId),
}

/// A document brought back: its id in the snapshot and its new id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BroughtBack {
    /// The id it had.
    pub was: Uuid,
    /// Its new id (a new document, in its pet's trash).
    pub now: Uuid,
}

type SnapshotDocument = (
    Uuid,
    Uuid,
    Option<Uuid>,
    Uuid,
    String,
    String,
    i64,
    Vec<u8>,
    i64,
    String,
    Option<String>,
    Option<String>,
    time::OffsetDateTime,
    Option<Uuid>,
);

/// Brings documents back from a snapshot into the live system, as new documents in the trash of their
/// pet (so the owner sees them and can restore them), each as a new object with its row and an audit
/// event. A document the live system still has is refused: restore it from the trash instead.
pub async fn restore_documents(
    pool: &PgPool,
    documents: &ObjectStore,
    backups: &ObjectStore,
    source: Source<'_>,
    selection: Selection,
) -> Result<Vec<BroughtBack>> {
    let Source {
        which,
        identities,
        keys,
    } = source;
    let (manifests, _) = read_manifests(backups, identities, keys).await?;
    let chosen = choose(&manifests, which, keys)?
        .ok_or_else(|| refuse("no snapshot readable with the given keys matches"))?;
    let manifest = &chosen.manifest;
    let encrypted = manifest.recipients != UNENCRYPTED;
    let table = manifest
        .tables
        .iter()
        .find(|table| table.name == "documents")
        .ok_or_else(|| refuse("the snapshot holds no documents table"))?;

    let mut tx = pool.begin().await?;
    (&mut *tx)
        .execute("create temporary table snapshot_documents (like documents) on commit drop")
        .await?;
    (&mut *tx).execute(PORTABLE_SETTINGS).await?;
    let statement = dump::load_statement("snapshot_documents", &table.columns).replace("public.", "");
    copy_dump(&mut tx, &statement, backups, &table.stored, encrypted, identities).await?;
    let select = "select s.id, s.pet_id, s.record_id, s.uploaded_by, s.original_filename, s.content_type,
                         s.size_bytes, s.sha256, s.crc32, s.object_key, s.caption, s.category, s.created_at,
                         s.charged_clinic_id
                  from snapshot_documents s";
    let wanted: Vec<SnapshotDocument> = match selection {
        Selection::Document(id) => {
            let live: bool = sqlx::query_scalar("select exists (select 1 from documents where id = $1)")
                .bind(id.0)
                .fetch_one(&mut *tx)
                .await?;
            if live {
                return Err(refuse(format!(
                    "document {id} still exists (maybe in its pet's trash): restore it from there"
                )));
            }
            let query = format!("{select} where s.id = $1");
            sqlx::query_as(&query).bind(id.0).fetch_all(&mut *tx).await?
        }
        Selection::Pet(pet) => {
            let query = format!(
                "{select} where s.pet_id = $1 and not exists (select 1 from documents d where d.id = s.id)
                 order by s.created_at"
            );
            sqlx::query_as(&query).bind(pet.0).fetch_all(&mut *tx).await?
        }
    };
    if wanted.is_empty() {
        return Err(refuse(match selection {
            Selection::Document(id) => format!("the snapshot {} holds no document {id}", manifest.snapshot),
            Selection::Pet(pet) => format!(
                "the snapshot {} holds no document of pet {pet} that the live system lacks",
                manifest.snapshot
            ),
        }));
    }
    let objects: HashMap<&str, &Stored> = manifest
        .objects
        .iter()
        .map(|object| (object.key.as_str(), &object.stored))
        .collect();
    let mut brought = Vec::new();
    let mut writers = Vec::new();
    for (
        id,
        pet,
        record,
        uploaded_by,
        filename,
        content_type,
        size,
        sha256,
        crc32,
        key,
        caption,
        category,
        created_at,
        charged_clinic,
    ) in wanted
    {
        let stored = objects.get(key.as_str()).ok_or_else(|| {
            refuse(format!(
                "the snapshot lists document {id} but not its object {key}"
            ))
        })?;
        let new = crate::domain::DocumentId::new();
        let new_key = crate::storage::StorageKey::Document(new).key();
        let mut writer = documents.writer(&new_key);
        writer.set_content_type(&content_type);
        let written = async {
            let mut plaintext = Plaintext::open(backups, stored, encrypted, identities).await?;
            while let Some(chunk) = plaintext.next_chunk().await? {
                writer.write(chunk).await?;
            }
            plaintext.check()?;
            Ok::<_, Error>(writer.finish().await?)
        }
        .await;
        let written = match written {
            Ok(written) if written.sha256[..] == sha256[..] => written,
            Ok(_) => {
                let _ = writer.discard().await;
                return Err(refuse(format!(
                    "document {id}: the backup does not match its recorded SHA-256"
                )));
            }
            Err(err) => {
                let _ = writer.discard().await;
                return Err(err);
            }
        };
        let thumbnail_state =
            if crate::domain::FileType::from_mime(&content_type).is_some_and(|t| t.thumbnailable()) {
                "pending"
            } else {
                "none"
            };
        sqlx::query(
            "insert into documents (id, pet_id, record_id, uploaded_by, original_filename, content_type, size_bytes,
                                    sha256, crc32, bucket, object_key, caption, category, thumbnail_state, created_at,
                                    deleted_at, charged_clinic_id)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, now(), $16)",
        )
        .bind(new.0)
        .bind(pet)
        .bind(record)
        .bind(uploaded_by)
        .bind(&filename)
        .bind(&content_type)
        .bind(size)
        .bind(&sha256)
        .bind(crc32)
        .bind(documents.bucket())
        .bind(&new_key)
        .bind(&caption)
        .bind(&category)
        .bind(thumbnail_state)
        .bind(created_at)
        .bind(charged_clinic)
        .execute(&mut *tx)
        .await?;
        audit::record(
            &mut *tx,
            audit::Event::new(Action::RestoreFromBackup, None, None)
                .target("document", new.0)
                .pet(crate::domain::PetId(pet))
                .detail(serde_json::json!({ "from_document": id, "snapshot": manifest.snapshot, "size": written.size })),
        )
        .await?;
        writers.push(writer);
        brought.push(BroughtBack { was: id, now: new.0 });
    }
    tx.commit().await?;
    for writer in writers {
        writer.keep();
    }
    Ok(brought)
}
