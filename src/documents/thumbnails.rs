//! Thumbnails for image documents, made by a background task with the `image` crate under strict pixel
//! and memory limits, and stored as their own object (`thumbnails/<id>`, JPEG).

use crate::{
    db::{ExclusiveTask, run_exclusive},
    domain::{DocumentId, FileType},
    error::Result,
    storage::{ObjectStore, StorageKey},
};
use anyhow::Context;
use bytes::Bytes;
use image::{ImageReader, Limits};
use sqlx::PgPool;
use std::io::Cursor;

/// The longest edge of a thumbnail, in pixels.
pub const EDGE: u32 = 320;
/// Larger files are not decoded for a thumbnail (they get a type icon).
pub const MAX_INPUT_BYTES: u64 = 40 * 1024 * 1024;
/// Largest decoded image: width and height each, and memory.
const MAX_DIMENSION: u32 = 12_000;
const MAX_ALLOC: u64 = 256 * 1024 * 1024;
/// Documents per run.
const BATCH: i64 = 20;

/// Decodes `bytes` under the limits and encodes a JPEG of at most [`EDGE`] pixels a side.
pub fn make_thumbnail(bytes: &[u8]) -> std::result::Result<Vec<u8>, image::ImageError> {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(MAX_ALLOC);
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format()?;
    reader.limits(limits);
    let image = reader.decode()?;
    let thumbnail = image.thumbnail(EDGE, EDGE).into_rgb8();
    let mut out = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80);
    thumbnail.write_with_encoder(encoder)?;
    Ok(out)
}

/// Makes thumbnails for documents waiting for one. `None` when another replica is at it; otherwise how
/// many were made.
#[tracing::instrument(skip_all)]
pub async fn make_pending(pool: &PgPool, store: &ObjectStore) -> Result<Option<usize>> {
    run_exclusive(pool, ExclusiveTask::Thumbnails, || async {
        let pending = sqlx::query!(
            r#"select id as "id: DocumentId", object_key, size_bytes from documents
               where thumbnail_state = 'pending' and deleted_at is null
               order by created_at limit $1"#,
            BATCH
        )
        .fetch_all(pool)
        .await?;
        let mut made = 0;
        for document in pending {
            let state = if document.size_bytes.max(0) as u64 > MAX_INPUT_BYTES {
                "none"
            } else {
                match thumbnail_one(store, document.id, &document.object_key).await {
                    Ok(()) => {
                        made += 1;
                        "done"
                    }
                    Err(err) => {
                        tracing::warn!(document = %document.id, error = %format_args!("{err:#}"), "no thumbnail");
                        "failed"
                    }
                }
            };
            let key = (state == "done").then(|| StorageKey::Thumbnail(document.id).key());
            sqlx::query!(
                "update documents set thumbnail_state = $2, thumbnail_key = $3 where id = $1",
                document.id as DocumentId,
                state,
                key
            )
            .execute(pool)
            .await?;
        }
        Ok(made)
    })
    .await
}

#[tracing::instrument(skip_all, fields(document = %id))]
async fn thumbnail_one(store: &ObjectStore, id: DocumentId, key: &str) -> anyhow::Result<()> {
    let original = store
        .get_bytes(key)
        .await
        .context("reading the original from the store")?;
    let thumbnail = tokio::task::spawn_blocking(move || make_thumbnail(&original))
        .await
        .context("the thumbnail task stopped")?
        .context("decoding the image")?;
    store
        .put_bytes(
            &StorageKey::Thumbnail(id).key(),
            Bytes::from(thumbnail),
            FileType::Jpeg.mime(),
        )
        .await
        .context("storing the thumbnail")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Rgb};

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = ImageBuffer::from_fn(width, height, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
        let mut out = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn thumbnails_fit_the_edge_and_keep_the_aspect() {
        let thumbnail = make_thumbnail(&png(1200, 600)).unwrap();
        let decoded = image::load_from_memory(&thumbnail).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (EDGE, EDGE / 2));
    }

    #[test]
    fn oversized_images_are_refused_before_decoding() {
        // A PNG header claiming 50,000 x 50,000 pixels: the limit stops it, not the allocator.
        let mut bomb = png(1, 1);
        bomb[16..20].copy_from_slice(&50_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&50_000u32.to_be_bytes());
        // Keep the header chunk valid, so it is the limit that refuses it and not a checksum error.
        let crc = crc32fast::hash(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.to_be_bytes());
        let err = make_thumbnail(&bomb).unwrap_err();
        assert!(matches!(err, image::ImageError::Limits(_)), "{err:?}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(make_thumbnail(b"not an image").is_err());
    }
}
