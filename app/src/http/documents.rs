//! The document routes: streaming upload, listing, metadata, download and preview with ranges and ETags,
//! thumbnails, trash and restore, and the zip export. Every route checks the session and the access
//! rules first; another owner's or clinic's document answers 404 like a missing one.

use super::{
    context::{back_to_referer, prefers_html},
    form_limits, session,
};
use crate::error::ApiError;
use crate::state::AppState;
use axum::{
    Json,
    body::Body,
    extract::{FromRef, FromRequest, FromRequestParts, Multipart, Path, Query, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use futures::{StreamExt, TryStreamExt};
use pawfile::documents::slots::UploadSlot;
use pawfile::{
    access::Actor,
    documents::{
        self, Downloadable, Policy, Rendition, UploadBatch, UploadDetails, export,
        headers::{
            ByteRange, Preview, byte_range, content_disposition, etag, none_match, preview, preview_csp,
        },
    },
    domain::{DocumentCategory, DocumentId, DocumentView, Flash, PetId, parse_caption},
    net::ClientInfo,
};
use serde::{Deserialize, Serialize};
use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};
use tower_sessions::Session;
use utoipa_axum::{router::OpenApiRouter, routes};

pub use super::UPLOAD_ROUTE;

/// The most bytes a text field of the upload form (`record_id`, `caption`, `category`) may carry.
pub const TEXT_FIELD_MAX: usize = 4 * 1024;
/// Room for multipart boundaries and the small fields around the files.
const FORM_OVERHEAD: u64 = 1024 * 1024;

/// The signed-in caller of a document route.
pub struct Caller {
    actor: Actor,
    session: Session,
    /// Where the site is reached, to recognise a Referer of our own.
    public_url: url::Url,
    html: bool,
}

impl<S> FromRequestParts<S> for Caller
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let session = parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or_else(ApiError::unauthenticated)?;
        let client = parts.extensions.get::<ClientInfo>().copied();
        let actor = session::actor(&state, &session, client, session::Activity::Person)
            .await?
            .ok_or_else(ApiError::unauthenticated)?;
        Ok(Caller {
            actor,
            session,
            public_url: state.config.public_url.clone(),
            html: prefers_html(&parts.headers),
        })
    }
}

impl Caller {
    /// Answers a plain form with a redirect back to its page (of our own site) and the message in the
    /// session, for that page's render to show; anyone else with `ok` (as JSON) or the error.
    async fn answer<T: Serialize>(
        &self,
        headers: &HeaderMap,
        result: Result<(StatusCode, T), ApiError>,
        success: impl FnOnce(&T) -> String,
    ) -> Response {
        if !self.html {
            return match result {
                Ok((status, _)) if status == StatusCode::NO_CONTENT => status.into_response(),
                Ok((status, body)) => (status, Json(body)).into_response(),
                Err(err) => err.into_response(),
            };
        }
        let flash = match &result {
            Ok((_, body)) => Flash {
                ok: true,
                message: success(body),
            },
            Err(err) => Flash {
                ok: false,
                message: err.to_string(),
            },
        };
        let _ = session::leave_flash(&self.session, &flash).await;
        let back = back_to_referer(headers, &self.public_url);
        Redirect::to(&back).into_response()
    }
}

/// Every document route with its OpenAPI description (registered together, so neither can be
/// missing), to be mounted behind the session layer.
pub fn routes<S>() -> OpenApiRouter<S>
where
    AppState: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .routes(routes!(list, upload))
        .routes(routes!(export_pet))
        .routes(routes!(metadata, trash))
        .routes(routes!(content))
        .routes(routes!(thumbnail))
        .routes(routes!(trash_by_post))
        .routes(routes!(restore))
        // Uploads stream and enforce their own limits; axum's default 2 MB body limit must not apply.
        .layer(axum::extract::DefaultBodyLimit::disable())
}

/// The upload form, for the OpenAPI document (the handler streams the parts itself).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct UploadForm {
    /// One or more files (at most 20).
    #[schema(content_media_type = "application/octet-stream")]
    file: Vec<Vec<u8>>,
    /// Attach the files to this record (staff of the record's clinic).
    record_id: Option<uuid::Uuid>,
    /// At most 500 characters.
    caption: Option<String>,
    /// `lab_result`, `x_ray`, `invoice`, `vaccination_certificate`, `prescription`, `report`, `photo`
    /// or `other`.
    category: Option<String>,
}

fn upload_policy(state: &AppState) -> Policy {
    Policy {
        max_bytes: state.config.max_upload_bytes,
        accepted: state.config.accepted_types.clone(),
        strip_location: state.config.strip_photo_location,
    }
}

/// Uploads one or more files to a pet (its owner, or staff of a clinic it is shared with).
#[utoipa::path(
    post,
    path = "/api/pets/{pet_id}/documents",
    tag = "documents",
    params(("pet_id" = uuid::Uuid, Path, description = "The pet")),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The documents stored (all of the request's files, or none)", body = Vec<DocumentView>),
        (status = "default", description = "An error: `{kind, error}` with the status of its kind", body = ApiError),
    )
)]
async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(pet): Path<PetId>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let result = receive(&state, &caller.actor, pet, &headers, request)
        .await
        .map(|views| (StatusCode::CREATED, views));
    match &result {
        Ok((_, views)) => {
            let bytes = views.iter().map(|view| view.size_bytes.max(0) as u64).sum();
            state.metrics.upload(Ok((views.len(), bytes)));
            state.tasks.thumbnails.notify_one();
        }
        Err(_) => state.metrics.upload(Err(())),
    }
    caller
        .answer(&headers, result, |views| match views.len() {
            1 => format!("Uploaded {}.", views[0].filename),
            n => format!("Uploaded {n} files."),
        })
        .await
}

/// Reads the multipart form and hands its parts to the core's [`UploadBatch`], which does the rest.
async fn receive(
    state: &AppState,
    actor: &Actor,
    pet: PetId,
    headers: &HeaderMap,
    request: Request,
) -> Result<Vec<DocumentView>, ApiError> {
    let policy = upload_policy(state);
    // Refuse before reading a byte when the request cannot fit.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let most = policy
        .max_bytes
        .saturating_mul(UploadBatch::MAX_FILES as u64)
        .saturating_add(FORM_OVERHEAD);
    if declared.is_some_and(|length| length > most) {
        return Err(ApiError::TooLarge {
            error: format!(
                "The upload is larger than the limit of {} per file.",
                bytesize::ByteSize(policy.max_bytes)
            ),
        });
    }
    let mut batch = UploadBatch::begin(&state.db, &state.documents, policy, actor, pet).await?;
    // One of the user's upload slots, held until the upload ends (or the request is dropped).
    let limits = state.config.limits;
    let slot = UploadSlot::take(&state.db, actor.user.id, limits.concurrent_uploads).await?;
    // Storage is reserved before a byte reaches the store (the declared length whole, or as bytes
    // arrive); the batch holds the slot and the reservation until it ends.
    batch.reserve(slot, &state.config.quotas, declared).await?;
    // Uploaded bytes per user and hour: a declared length is taken whole before a byte is read; a
    // body of unknown length is counted as it arrives and charged when the request ends, whether it
    // finished or broke off (so it can exceed the allowance once).
    let limit_key = format!("upload_bytes:user:{}", actor.user.id);
    let (parts, body) = request.into_parts();
    let body = match declared {
        Some(length) => {
            pawfile::rate_limit::take_amount(&state.db, &limit_key, length, limits.uploads()).await?;
            body.into_data_stream().boxed()
        }
        None => {
            let charge = Charge {
                received: Arc::new(AtomicU64::new(0)),
                db: state.db.clone(),
                key: limit_key,
                limit: limits.uploads(),
            };
            body.into_data_stream()
                .inspect_ok(move |chunk| {
                    charge.received.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                })
                .boxed()
        }
    };
    let mut multipart = bounded_form(parts, body, most).await?;
    let mut details = UploadDetails::default();
    if let Err(err) = read_form(&mut multipart, &mut batch, &mut details).await {
        batch.discard().await;
        return Err(err);
    }
    // (The body, and with it the charge of a body of unknown length, ends with the form.)
    drop(multipart);
    Ok(batch.finish(details).await?)
}

/// The bytes of an upload of unknown length, charged to the user's hourly allowance when the body is
/// dropped: the request finished, failed, or broke off. Already received: going over the allowance
/// refuses the next upload, not this one.
struct Charge {
    received: Arc<AtomicU64>,
    db: sqlx::PgPool,
    key: String,
    limit: pawfile::rate_limit::Limit,
}

impl Drop for Charge {
    fn drop(&mut self) {
        let received = self.received.load(Ordering::Relaxed);
        if received == 0 {
            return;
        }
        let (db, key, limit) = (self.db.clone(), std::mem::take(&mut self.key), self.limit);
        let received = i64::try_from(received).unwrap_or(i64::MAX);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(err) = pawfile::rate_limit::count_amount(&db, &key, received, limit).await {
                    tracing::warn!(error = %err, "cannot count an upload's bytes");
                }
            });
        }
    }
}

/// Streams each file part into the batch and reads the small text fields, each capped at
/// [`TEXT_FIELD_MAX`] bytes (the body limit is off for uploads, so a field is never read whole).
async fn read_form(
    multipart: &mut Multipart,
    batch: &mut UploadBatch,
    details: &mut UploadDetails,
) -> Result<(), ApiError> {
    while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
        match field.name().unwrap_or_default() {
            "file" => {
                let name = field.file_name().unwrap_or_default().to_owned();
                if !pawfile::domain::storable(&name) {
                    return Err(ApiError::invalid("file", pawfile::domain::UNSTORABLE));
                }
                if name.is_empty() {
                    // A form submitted without choosing a file sends an empty, nameless part.
                    continue;
                }
                batch
                    .add_file(&name, field.map_err(|err| err.to_string()))
                    .await?;
            }
            "record_id" => {
                details.record = match read_text(&mut field, "record_id").await?.trim() {
                    "" => None,
                    id => Some(
                        id.parse()
                            .map_err(|_| ApiError::invalid("record_id", "Unknown record."))?,
                    ),
                };
            }
            "caption" => details.caption = parse_caption(&read_text(&mut field, "caption").await?)?,
            "category" => {
                details.category = DocumentCategory::parse(&read_text(&mut field, "category").await?)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Most parts an upload form may have: its files and a few text fields.
const MAX_FORM_PARTS: usize = UploadBatch::MAX_FILES + 8;

/// The upload's form, its framing bounded as it streams (see [`form_limits`]).
async fn bounded_form(
    parts: Parts,
    body: futures::stream::BoxStream<'static, Result<axum::body::Bytes, axum::Error>>,
    max_total: u64,
) -> Result<Multipart, ApiError> {
    let boundary = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| multer::parse_boundary(value).ok())
        .ok_or_else(|| ApiError::BadRequest {
            error: "An upload is sent as a multipart/form-data form.".to_owned(),
        })?;
    let body = form_limits::bounded(body, &boundary, MAX_FORM_PARTS, max_total);
    let request = Request::from_parts(parts, Body::from_stream(body));
    Multipart::from_request(request, &())
        .await
        .map_err(|rejection| ApiError::BadRequest {
            error: rejection.body_text(),
        })
}

fn malformed(err: axum::extract::multipart::MultipartError) -> ApiError {
    match form_limits::framing_error(&err) {
        Some(
            framing @ (form_limits::FramingError::TooManyParts(_)
            | form_limits::FramingError::BadDelimiterLine),
        ) => {
            return ApiError::BadRequest {
                error: framing.to_string(),
            };
        }
        Some(framing) => {
            return ApiError::TooLarge {
                error: framing.to_string(),
            };
        }
        None => {}
    }
    if stalled(&err) {
        return ApiError::BadRequest {
            error: "The upload stalled: nothing arrived for too long. Check the connection and try again."
                .to_owned(),
        };
    }
    ApiError::BadRequest {
        error: format!("The upload was malformed or interrupted ({err})."),
    }
}

/// Whether the body idle timeout ended the request.
fn stalled(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if err.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        current = err.source();
    }
    false
}

/// A text field of the upload form, refused with 413 beyond [`TEXT_FIELD_MAX`] bytes (before more is
/// read). Bytes that are not UTF-8 read as an empty field, as a missing one would.
async fn read_text(field: &mut axum::extract::multipart::Field<'_>, name: &str) -> Result<String, ApiError> {
    let mut text = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(malformed)? {
        if text.len() + chunk.len() > TEXT_FIELD_MAX {
            return Err(ApiError::TooLarge {
                error: format!(
                    "The {name} field is longer than the limit of {}.",
                    bytesize::ByteSize(TEXT_FIELD_MAX as u64)
                ),
            });
        }
        text.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(text).unwrap_or_default();
    if !pawfile::domain::storable(&text) {
        return Err(ApiError::invalid(name, pawfile::domain::UNSTORABLE));
    }
    Ok(text)
}

/// Which of the pet's documents to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only this category (`lab_result`, `x_ray`, `invoice`, `vaccination_certificate`,
    /// `prescription`, `report`, `photo`, `other`).
    #[serde(default)]
    category: String,
    /// Only the files attached to this record.
    #[serde(default)]
    record_id: String,
    /// `1`: the caller's trash instead.
    #[serde(default)]
    trashed: String,
    /// At most this many, the newest (all when absent).
    #[serde(default)]
    limit: Option<u32>,
}

/// The pet's documents (or the caller's trash), newest first.
#[utoipa::path(
    get,
    path = "/api/pets/{pet_id}/documents",
    tag = "documents",
    params(("pet_id" = uuid::Uuid, Path, description = "The pet"), ListQuery),
    responses(
        (status = 200, description = "The documents", body = Vec<DocumentView>),
        (status = "default", description = "An error: `{kind, error}` with the status of its kind", body = ApiError),
    )
)]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(pet): Path<PetId>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<DocumentView>>, ApiError> {
    let filter = super::list_filter(
        &query.category,
        &query.record_id,
        matches!(query.trashed.as_str(), "1" | "true"),
        query.limit,
    )?;
    Ok(Json(
        documents::list_documents(&state.db, &caller.actor, pet, filter).await?,
    ))
}

/// A document's metadata.
#[utoipa::path(
    get,
    path = "/api/documents/{id}",
    tag = "documents",
    params(("id" = uuid::Uuid, Path, description = "The document")),
    responses(
        (status = 200, description = "The document", body = DocumentView),
        (status = "default", description = "An error: `{kind, error}` with the status of its kind", body = ApiError),
    )
)]
async fn metadata(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<DocumentId>,
) -> Result<Json<DocumentView>, ApiError> {
    Ok(Json(
        documents::view_document(&state.db, &caller.actor, id).await?,
    ))
}

/// How to send the bytes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ContentQuery {
    /// `1`: an inline preview (images and PDFs) instead of an attachment.
    #[serde(default)]
    inline: String,
}

fn header_value(value: &str) -> HeaderValue {
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
async fn content(
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
async fn thumbnail(
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
    let allowance_key = format!("download_bytes:user:{}", caller.user.id);
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

/// Moves a document to the trash (its uploader). `DELETE` or `POST .../trash`.
#[utoipa::path(
    delete,
    path = "/api/documents/{id}",
    tag = "documents",
    params(("id" = uuid::Uuid, Path, description = "The document")),
    responses(
        (status = 204, description = "In the trash"),
        (status = "default", description = "An error: `{kind, error}` with the status of its kind", body = ApiError),
    )
)]
async fn trash(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<DocumentId>,
    headers: HeaderMap,
) -> Response {
    let result = documents::set_trashed(&state.db, &caller.actor, id, true)
        .await
        .map(|()| (StatusCode::NO_CONTENT, ()))
        .map_err(ApiError::from);
    caller
        .answer(&headers, result, |()| {
            "Moved to the trash. You can restore it from there.".to_owned()
        })
        .await
}

/// Moves a document to the trash (its uploader); the same as `DELETE /api/documents/{id}`.
#[utoipa::path(
    post,
    path = "/api/documents/{id}/trash",
    tag = "documents",
    params(("id" = uuid::Uuid, Path, description = "The document")),
    responses(
        (status = 204, description = "In the trash"),
        (status = "default", description = "An error: `{kind, error}` with the status of its kind", body = ApiError),
    )
)]
async fn trash_by_post(
    state: State<AppState>,
    caller: Caller,
    id: Path<DocumentId>,
    headers: HeaderMap,
) -> Response {
    trash(state, caller, id, headers).await
}

/// Takes a document out of the trash (its uploader).
#[utoipa::path(
    post,
    path = "/api/documents/{id}/restore",
    tag = "documents",
    params(("id" = uuid::Uuid, Path, description = "The document")),
    responses(
        (status = 204, description = "Restored"),
        (status = "default", description = "An error: `{kind, error}` with the status of its kind", body = ApiError),
    )
)]
async fn restore(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<DocumentId>,
    headers: HeaderMap,
) -> Response {
    let result = documents::set_trashed(&state.db, &caller.actor, id, false)
        .await
        .map(|()| (StatusCode::NO_CONTENT, ()))
        .map_err(ApiError::from);
    caller
        .answer(&headers, result, |()| "Restored from the trash.".to_owned())
        .await
}

/// The pet's whole history as a zip: `index.html` and every document.
#[utoipa::path(
    get,
    path = "/api/pets/{pet_id}/export",
    tag = "documents",
    params(("pet_id" = uuid::Uuid, Path, description = "The pet")),
    responses(
        (status = 200, description = "The zip", content_type = "application/zip", body = Vec<u8>),
        (status = "default", description = "An error: `{kind, error}` with the status of its kind", body = ApiError),
    )
)]
async fn export_pet(
    State(state): State<AppState>,
    caller: Caller,
    Path(pet): Path<PetId>,
) -> Result<Response, ApiError> {
    let prepared = export::prepare(&state.db, &caller.actor, pet, &state.config.public_url).await?;
    pawfile::rate_limit::take(
        &state.db,
        &format!("exports:user:{}", caller.actor.user.id),
        state.config.limits.exports(),
    )
    .await?;
    let filename = prepared.filename();
    let body = Body::from_stream(export::stream_zip(state.documents.clone(), prepared));
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "application/zip")
        .header(
            header::CONTENT_DISPOSITION,
            header_value(&content_disposition(&filename, false)),
        )
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(body)
        .expect("valid response"))
}
