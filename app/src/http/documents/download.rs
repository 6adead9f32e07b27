//! Download, preview and thumbnails: ranges, ETags and the headers a preview is safe behind.

use super::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::{
    body::Body,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use pawfile::{
    access::Actor,
    documents::{
        self, Downloadable, Rendition,
        headers::{
            ByteRange, Preview, byte_range, content_disposition, etag, none_match, preview, preview_csp,
        },
    },
    domain::DocumentId,
};
use serde::Deserialize;

/// How to send the bytes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ContentQuery {
    /// `1`: an inline preview (images and PDFs) instead of an attachment.
    #[serde(default)]
    inline: String,
}

pub(super) fn header_value(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

/// The document's bytes: an attachment, or an inline preview (`inline=1`) for images and PDFs. One
/// `Range` (206, 416), `ETag` and `If-None-Match` (304).
#[utoipa::path(
    get,
    path = "/api/documents/{id}/content",
    tag = "documents",
    params(("id" = uuid::Uuid, Path, description = "The document"), ContentQuery),
    responses(
        (status = 200, description = "The bytes, in the document's own type", content_type = "*/*", body = Vec<u8>),
        (status = 206, description = "The requested range, in the document's own type", content_type = "*/*", body = Vec<u8>),
        (status = 304, description = "Unchanged since the `If-None-Match` ETag"),
        (status = 416, description = "The range lies outside the document"),
        (status = "default", description = "An error: `{kind, error}` with the status of its kind", body = ApiError),
    )
)]
pub(super) async fn content(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<DocumentId>,
    Query(query): Query<ContentQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let document = documents::find_readable(&state.db, &caller.actor, id).await?;
    let kind = preview(&document.content_type);
    let inline = matches!(query.inline.as_str(), "1" | "true") && kind != Preview::AttachmentOnly;
    // The view is recorded while the object is asked for: no byte leaves before both succeeded (the
    // answer is returned only then), and the first byte waits on the slower of the two, not on both.
    let (tag, disposition) = (
        etag(&document.sha256),
        content_disposition(&document.filename, inline),
    );
    let (_, response) = tokio::try_join!(
        async {
            documents::audit_access(&state.db, &caller.actor, &document, inline)
                .await
                .map_err(ApiError::from)
        },
        serve_object(
            &state,
            &caller.actor,
            &document,
            Rendition::Original,
            &document.content_type,
            document.size,
            &tag,
            &disposition,
            if inline { kind } else { Preview::AttachmentOnly },
            &headers,
        )
    )?;
    Ok(response)
}

/// A JPEG thumbnail of an image document.
#[utoipa::path(
    get,
    path = "/api/documents/{id}/thumbnail",
    tag = "documents",
    params(("id" = uuid::Uuid, Path, description = "The document")),
    responses(
        (status = 200, description = "The thumbnail", content_type = "image/jpeg", body = Vec<u8>),
        (status = 304, description = "Unchanged since the `If-None-Match` ETag"),
        (status = "default", description = "An error: `{kind, error}` with the status of its kind", body = ApiError),
    )
)]
pub(super) async fn thumbnail(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<DocumentId>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let document = documents::find_readable(&state.db, &caller.actor, id).await?;
    if !document.has_thumbnail() {
        return Err(ApiError::NotFound {
            error: "This document has no thumbnail.".to_owned(),
        });
    }
    let size = documents::rendition_size(&state.documents, &document, Rendition::Thumbnail).await?;
    let mut tag = etag(&document.sha256);
    tag.insert_str(tag.len() - 1, "-thumbnail");
    serve_object(
        &state,
        &caller.actor,
        &document,
        Rendition::Thumbnail,
        "image/jpeg",
        size,
        &tag,
        &content_disposition(&format!("{}.thumbnail.jpg", document.filename), true),
        Preview::Image,
        &headers,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn serve_object(
    state: &AppState,
    caller: &Actor,
    document: &Downloadable,
    rendition: Rendition,
    content_type: &str,
    size: u64,
    etag: &str,
    disposition: &str,
    preview: Preview,
    request: &HeaderMap,
) -> Result<Response, ApiError> {
    let mut response = Response::builder()
        .header(header::ETAG, header_value(etag))
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CONTENT_SECURITY_POLICY, preview_csp(preview))
        .header("cross-origin-resource-policy", "same-origin")
        .header(header::ACCEPT_RANGES, "bytes");
    let if_none_match = request
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok());
    if none_match(if_none_match, etag) {
        return Ok(response
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .expect("valid response"));
    }
    let range = request.get(header::RANGE).and_then(|value| value.to_str().ok());
    let (status, wanted) = match byte_range(range, size) {
        ByteRange::Full => (StatusCode::OK, None),
        ByteRange::Partial { start, end } => {
            response = response.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}"));
            (StatusCode::PARTIAL_CONTENT, Some((start, end)))
        }
        ByteRange::Unsatisfiable => {
            return Ok(response
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                .body(Body::empty())
                .expect("valid response"));
        }
    };
    // Downloaded bytes per user and hour: what this answer sends, so a viewer's many small range
    // requests and a page of thumbnails cost what they weigh.
    // Counted while S3 is asked: a refusal drops the object unread.
    let sending = wanted.map_or(size, |(start, end)| end - start + 1);
    let allowance_key = pawfile::rate_limit::Key::DownloadBytes(caller.user.id);
    let fetched = tokio::try_join!(
        pawfile::rate_limit::take_amount(
            &state.db,
            &allowance_key,
            sending,
            state.config.limits.downloads(),
        ),
        documents::read(&state.documents, document, rendition, wanted)
    );
    let (_, object) = fetched.inspect_err(|_| state.metrics.download(Err(())))?;
    let length = object.length;
    state.metrics.download(Ok(length));
    let body = Body::from_stream(object.into_stream());
    Ok(response
        .status(status)
        .header(header::CONTENT_TYPE, header_value(content_type))
        .header(header::CONTENT_LENGTH, length)
        .header(header::CONTENT_DISPOSITION, header_value(disposition))
        .body(body)
        .expect("valid response"))
}
