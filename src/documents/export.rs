//! A pet's whole history as one zip, streamed as it is built: an `index.html` (askama) with the pet,
//! every record with its revisions and a table of documents linking to the files beside it, and every
//! document under a safe name. It opens offline in any browser; memory stays flat however large.

use super::{ListFilter, list_documents, sanitise_filename};
use crate::{
    access::{Actor, Need, require_pet},
    audit::{self, Action},
    clock::localize,
    domain::{DocumentView, FileType, PetId, PetView, RecordView},
    error::Result,
    pets::view_pet_unaudited,
    records::load_pet_records,
    storage::ObjectStore,
};
use anyhow::Context;
use askama::Template;
use async_zip::{Compression, ZipEntryBuilder, base::write::ZipFileWriter};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use sqlx::PgPool;
use tokio_util::{compat::TokioAsyncReadCompatExt, io::ReaderStream};

/// A document in the export: its metadata and its path inside the zip.
#[derive(Debug, Clone)]
pub struct ExportedDocument {
    /// Its metadata.
    pub view: DocumentView,
    /// `documents/001-name.pdf`.
    pub path: String,
    /// Its object key.
    pub key: String,
}

/// Everything an export holds, gathered after the access check.
#[derive(Debug, Clone, Template)]
#[template(path = "export.html")]
pub struct Export {
    /// The pet.
    pub pet: PetView,
    /// Its records, oldest visit first, each with its revisions.
    pub records: Vec<RecordView>,
    /// Its documents (not those in the trash).
    pub documents: Vec<ExportedDocument>,
    /// When, in the exporter's time zone.
    pub exported_at: String,
    /// Who.
    pub exported_by: String,
    /// The pet's page in Pawfile (on `PAWFILE_PUBLIC_URL`), where the current version lives.
    pub pet_url: String,
}

impl Export {
    /// The zip's file name.
    pub fn filename(&self) -> String {
        sanitise_filename(&format!("{} - Pawfile history.zip", self.pet.details.name))
    }
}

/// Gathers a pet's history for `actor` (its owner, or staff of a clinic it is shared with) and audits
/// the export. Links in it start at `public_url` (the export is read away from Pawfile).
#[tracing::instrument(skip_all, fields(pet = %pet, actor = %actor.user.id))]
pub async fn prepare(pool: &PgPool, actor: &Actor, pet: PetId, public_url: &url::Url) -> Result<Export> {
    let permissions = require_pet(pool, actor, pet, Need::Read).await?;
    let pet_view = view_pet_unaudited(pool, actor, pet, permissions).await?;
    let records = load_pet_records(pool, pet, actor.zone()).await?;
    let keys: std::collections::HashMap<uuid::Uuid, String> = sqlx::query!(
        "select id, object_key from documents where pet_id = $1 and deleted_at is null",
        pet as PetId
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|row| (row.id, row.object_key))
    .collect();
    let documents = list_documents(pool, actor, pet, ListFilter::default())
        .await?
        .into_iter()
        .enumerate()
        .filter_map(|(index, view)| {
            let key = keys.get(&view.id.0)?.clone();
            let path = format!("documents/{:03}-{}", index + 1, entry_name(&view));
            Some(ExportedDocument { view, path, key })
        })
        .collect();
    audit::record(pool, actor.event(Action::ExportPet).target("pet", pet.0).pet(pet)).await?;
    Ok(Export {
        pet: pet_view,
        records,
        documents,
        exported_at: localize(time::OffsetDateTime::now_utc(), actor.zone()).local,
        exported_by: actor.user.display_name.clone(),
        pet_url: public_url
            .join(&format!("pets/{pet}"))
            .map_or_else(|_| format!("/pets/{pet}"), String::from),
    })
}

/// The name a document gets inside the export: its name with the extension of its sniffed type only, so
/// that a file named `report.html` (stored because its bytes are a PNG) does not open as a web page from
/// the unpacked folder, where `index.html` links to it. A name that already ends in its type's
/// extension (in any common spelling) keeps it.
fn entry_name(view: &DocumentView) -> String {
    let name = sanitise_filename(&view.filename);
    let safe = FileType::from_mime(&view.content_type).map_or("bin", FileType::extension);
    let (stem, extension) = match name.rsplit_once('.') {
        Some((stem, extension)) if !stem.is_empty() => (stem, Some(extension.to_ascii_lowercase())),
        _ => (name.as_str(), None),
    };
    let same = |extension: &str| {
        extension == safe
            || matches!(
                (extension, safe),
                ("jpeg" | "jpe", "jpg") | ("tiff", "tif") | ("heif", "heic") | ("dicom", "dcm")
            )
    };
    match extension {
        Some(extension) if same(&extension) => name.clone(),
        _ => format!("{stem}.{safe}"),
    }
}

/// The zip, as a byte stream. Documents are copied from S3 as the zip is written, through a small pipe,
/// so at most a few hundred KiB are in memory. If S3 fails half-way the stream ends with an error (the
/// download fails visibly) instead of a silently truncated zip.
pub fn stream_zip(
    store: ObjectStore,
    export: Export,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let (writer, reader) = tokio::io::duplex(256 * 1024);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<std::result::Result<(), String>>();
    tokio::spawn(async move {
        let result = write_zip(&store, &export, writer)
            .await
            .map_err(|err| format!("{err:#}"));
        if let Err(err) = &result {
            tracing::error!(pet = %export.pet.id, error = %err, "export failed half-way");
        }
        let _ = done_tx.send(result);
    });
    let ending = futures::stream::once(async move {
        match done_rx.await {
            Ok(Ok(())) => None,
            Ok(Err(err)) => Some(Err(std::io::Error::other(err))),
            Err(_) => Some(Err(std::io::Error::other("the export task stopped"))),
        }
    })
    .filter_map(std::future::ready);
    ReaderStream::new(reader).chain(ending)
}

#[tracing::instrument(skip_all, fields(pet = %export.pet.id, documents = export.documents.len()))]
async fn write_zip(
    store: &ObjectStore,
    export: &Export,
    writer: tokio::io::DuplexStream,
) -> anyhow::Result<()> {
    let mut zip = ZipFileWriter::with_tokio(writer);
    let index = export.render().context("rendering the export's index.html")?;
    zip.write_entry_whole(
        ZipEntryBuilder::new("index.html".to_owned().into(), Compression::Stored),
        index.as_bytes(),
    )
    .await
    .context("writing index.html into the zip")?;
    for document in &export.documents {
        let object = store
            .get_stream(&document.key, None)
            .await
            .with_context(|| format!("reading document {} from the store", document.view.id))?;
        let entry = ZipEntryBuilder::new(document.path.clone().into(), Compression::Stored);
        let mut entry_writer = zip
            .write_entry_stream(entry)
            .await
            .with_context(|| format!("starting {} in the zip", document.path))?;
        let mut reader = object.into_reader().compat();
        futures::io::copy(&mut reader, &mut entry_writer)
            .await
            .with_context(|| format!("copying document {} into the zip", document.view.id))?;
        entry_writer
            .close()
            .await
            .with_context(|| format!("finishing {} in the zip", document.path))?;
    }
    let mut inner = zip.close().await.context("finishing the zip")?;
    futures::io::AsyncWriteExt::close(&mut inner)
        .await
        .context("closing the export stream")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DocumentId, Timestamp};

    fn document(filename: &str, content_type: &str) -> DocumentView {
        DocumentView {
            id: DocumentId::new(),
            pet_id: PetId::new(),
            record_id: None,
            filename: filename.to_owned(),
            content_type: content_type.to_owned(),
            size_bytes: 1,
            sha256: String::new(),
            caption: None,
            category: None,
            uploaded_by: "Olivia".to_owned(),
            uploaded_at: Timestamp {
                utc: time::OffsetDateTime::UNIX_EPOCH,
                local: String::new(),
            },
            has_thumbnail: false,
            deleted_at: None,
            can_delete: false,
            profile_photo: false,
            location_removed: false,
        }
    }

    #[test]
    fn entry_names_keep_only_the_extension_of_their_type() {
        let name = |filename, content_type| entry_name(&document(filename, content_type));
        assert_eq!(name("report.html", "image/png"), "report.png");
        assert_eq!(name("scan.PDF", "application/pdf"), "scan.PDF");
        assert_eq!(name("photo.jpeg", "image/jpeg"), "photo.jpeg");
        assert_eq!(name("xray", "application/dicom"), "xray.dcm");
        assert_eq!(name("invoice.pdf.exe", "application/pdf"), "invoice.pdf.pdf");
        assert_eq!(name("page.svg", "text/html"), "page.bin");
        assert_eq!(name("CON.pdf", "application/pdf"), "CON_.pdf");
    }
}
