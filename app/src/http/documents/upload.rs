//! The streaming upload: the form read part by part within its limits, each file stored as it arrives.

use super::super::form_limits;
use super::{Caller, FORM_OVERHEAD, TEXT_FIELD_MAX};
use crate::error::ApiError;
use crate::state::AppState;
use axum::{
    body::Body,
    extract::{FromRequest, Multipart, Path, Request, State},
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::Response,
};
use futures::{StreamExt, TryStreamExt};
use pawfile::{
    access::Actor,
    documents::{Admission, Policy, UploadBatch, UploadDetails},
    domain::{DocumentCategory, DocumentView, PetId, parse_caption},
};
use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

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
        max_bytes: state.config.documents.max_upload_size.as_u64(),
        accepted: state.config.documents.accepted_types.clone(),
        strip_location: state.config.documents.strip_photo_location,
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
pub(super) async fn upload(
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
    // One of the user's upload slots, storage from the payer's quota and the declared length from
    // the hourly allowance, all before a byte is read; the batch holds them until it ends.
    let limits = state.config.limits;
    let admission = Admission {
        concurrent_uploads: limits.concurrent_uploads,
        quotas: state.config.documents.quotas(),
        allowance: limits.uploads(),
        declared,
    };
    let mut batch = UploadBatch::admit(&state.db, &state.documents, policy, actor, pet, admission).await?;
    // A body of unknown length is counted as it arrives and charged to the allowance when the request
    // ends, whether it finished or broke off (so it can exceed the allowance once).
    let (parts, body) = request.into_parts();
    let body = match declared {
        Some(_) => body.into_data_stream().boxed(),
        None => {
            let charge = Charge {
                received: Arc::new(AtomicU64::new(0)),
                db: state.db.clone(),
                key: pawfile::rate_limit::Key::UploadBytes(actor.user.id),
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
    key: pawfile::rate_limit::Key,
    limit: pawfile::rate_limit::Limit,
}

impl Drop for Charge {
    fn drop(&mut self) {
        let received = self.received.load(Ordering::Relaxed);
        if received == 0 {
            return;
        }
        let (db, key, limit) = (self.db.clone(), self.key.clone(), self.limit);
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
