//! The document routes: streaming upload, listing, metadata, download and preview with ranges and ETags,
//! thumbnails, trash and restore, and the zip export. Every route checks the session and the access
//! rules first; another owner's or clinic's document answers 404 like a missing one.

mod download;
mod upload;

use super::{
    context::{back_to_referer, prefers_html},
    session,
};
use crate::error::ApiError;
use crate::state::AppState;
use axum::{
    Json,
    body::Body,
    extract::{FromRef, FromRequestParts, Path, Query, State},
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use pawfile::{
    access::Actor,
    documents::{self, export, headers::content_disposition},
    domain::{DocumentId, DocumentView, Flash, PetId},
    net::ClientInfo,
};
use serde::{Deserialize, Serialize};
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
        let memo = parts
            .extensions
            .get::<session::UserMemo>()
            .cloned()
            .unwrap_or_default();
        let actor = session::actor(&state, &session, &memo, client, session::Activity::Person)
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
        .routes(routes!(list, upload::upload))
        .routes(routes!(export_pet))
        .routes(routes!(metadata, trash))
        .routes(routes!(download::content))
        .routes(routes!(download::thumbnail))
        .routes(routes!(trash_by_post))
        .routes(routes!(restore))
        // Uploads stream and enforce their own limits; axum's default 2 MB body limit must not apply.
        .layer(axum::extract::DefaultBodyLimit::disable())
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
        &pawfile::rate_limit::Key::Exports(caller.actor.user.id),
        state.config.limits.exports(),
    )
    .await?;
    let filename = prepared.filename();
    let body = Body::from_stream(export::stream_zip(state.documents.clone(), prepared));
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "application/zip")
        .header(
            header::CONTENT_DISPOSITION,
            download::header_value(&content_disposition(&filename, false)),
        )
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(body)
        .expect("valid response"))
}
