//! Text PostgreSQL cannot store (U+0000, NUL) is refused before any handler or server function sees
//! it, with 422 naming the field: in the route's path parameters, in the query string (page addresses
//! included: pages call the server functions with it while rendering), and in every body except a
//! multipart upload's (uploads stream; the upload route checks its text fields and file names).
//!
//! Only NUL: PostgreSQL keeps every other character in text, and where a control character makes no
//! sense the field's own parser refuses it (names, one-line text). A server function reads any body as
//! a URL-encoded form whatever its content type, so every small body is checked as one (or as JSON when
//! it says it is JSON).

use super::context::prefers_html;
use crate::{error::ApiError, startup::AppState};
use axum::{
    body::Body,
    extract::{RawPathParams, Request, State, rejection::RawPathParamsRejection},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use leptos::server_fn::error::ServerFnUrlError;
use pawfile::domain::{UNSTORABLE, storable};
use serde_json::Value;

/// The most a body may weigh to be checked here: the limit server functions meet anyway (axum's
/// default).
const SMALL_BODY_MAX: usize = 2 * 1024 * 1024;

/// What holds NUL: the value of a field, or a field's name.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    Field(String),
    Name,
}

impl Refusal {
    fn error(self) -> ApiError {
        match self {
            Refusal::Field(field) => ApiError::invalid(&field, UNSTORABLE),
            Refusal::Name => ApiError::BadRequest {
                error: "A field name contains a character that cannot be stored (NUL, U+0000).".to_owned(),
            },
        }
    }
}

/// The first pair of a URL-encoded query or form holding NUL, decoded as the server functions decode
/// it (`a[b]=…` belongs to field `a`).
fn unstorable_pair(input: &[u8]) -> Option<Refusal> {
    form_urlencoded::parse(input).find_map(|(key, value)| {
        if !storable(&key) {
            Some(Refusal::Name)
        } else if !storable(&value) {
            Some(Refusal::Field(
                key.split('[').next().unwrap_or_default().to_owned(),
            ))
        } else {
            None
        }
    })
}

/// The first string of a JSON document holding NUL, named by its top-level key.
fn unstorable_json(value: &Value, field: Option<&str>) -> Option<Refusal> {
    match value {
        Value::String(text) if !storable(text) => Some(Refusal::Field(field.unwrap_or("body").to_owned())),
        Value::Array(items) => items.iter().find_map(|item| unstorable_json(item, field)),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            if storable(key) {
                unstorable_json(item, Some(field.unwrap_or(key)))
            } else {
                Some(Refusal::Name)
            }
        }),
        _ => None,
    }
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .trim_start()
        .to_ascii_lowercase()
}

/// Refuses a request whose path parameters, query or small body hold NUL (see the module).
pub async fn refuse_unstorable_text(
    State(state): State<AppState>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    request: Request,
    next: Next,
) -> Response {
    let in_path = params.ok().and_then(|params| {
        params
            .iter()
            .find(|(_, value)| !storable(value))
            .map(|(name, _)| Refusal::Field(name.to_owned()))
    });
    let refusal = in_path.or_else(|| {
        request
            .uri()
            .query()
            .and_then(|query| unstorable_pair(query.as_bytes()))
    });
    let (parts, body) = request.into_parts();
    if let Some(refusal) = refusal {
        return refuse(&state, &parts, refusal.error());
    }
    match checked_body(&parts, body).await {
        Ok(body) => next.run(Request::from_parts(parts, body)).await,
        Err(error) => refuse(&state, &parts, error),
    }
}

/// The body read whole, checked and put back, when a server function (or a JSON route) would parse
/// it. A multipart upload, raw bytes, and a body declared larger than the limit pass unread.
async fn checked_body(parts: &Parts, body: Body) -> Result<Body, ApiError> {
    let content_type = content_type(&parts.headers);
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS)
        || content_type.starts_with("multipart/")
        || content_type.starts_with("application/octet-stream")
    {
        return Ok(body);
    }
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > SMALL_BODY_MAX as u64) {
        return Ok(body);
    }
    let bytes = axum::body::to_bytes(body, SMALL_BODY_MAX).await.map_err(|err| {
        if err.to_string().contains("length limit") {
            ApiError::TooLarge {
                error: "This request is larger than Pawfile accepts.".to_owned(),
            }
        } else {
            ApiError::BadRequest {
                error: "The request's body could not be read. Check the connection and try again.".to_owned(),
            }
        }
    })?;
    let refusal = if content_type.starts_with("application/json") || content_type.contains("+json") {
        // Malformed JSON is the handler's to refuse.
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|value| unstorable_json(&value, None))
    } else {
        unstorable_pair(&bytes)
    };
    match refusal {
        Some(refusal) => Err(refusal.error()),
        None => Ok(Body::from(bytes)),
    }
}

/// Answers a refusal the way the caller reads errors: a script gets the documented JSON; a plain HTML
/// form posted to a server function goes back to its page with the error in the address, exactly as
/// Leptos sends a server function's own error (`?__path=…&__err=…`), so the form shows the message
/// under the field; another browser request under `/api/` gets the JSON too, and a page address gets
/// the message as text with the status.
fn refuse(state: &AppState, parts: &Parts, error: ApiError) -> Response {
    let api = parts.uri.path().starts_with("/api/");
    if !prefers_html(&parts.headers) {
        return error.into_response();
    }
    if api && parts.method == Method::POST && !content_type(&parts.headers).starts_with("multipart/") {
        // `confine_referer` (outside this layer) has dropped a Referer of another site already.
        let mut back = parts
            .headers
            .get(header::REFERER)
            .and_then(|value| value.to_str().ok())
            .map_or_else(|| state.config.public_url.to_string(), str::to_owned);
        ServerFnUrlError::<ApiError>::strip_error_info(&mut back);
        if let Ok(url) = ServerFnUrlError::new(parts.uri.path(), error.clone()).to_url(&back)
            && let Ok(location) = HeaderValue::from_str(url.as_str())
        {
            return (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
        }
    }
    if api {
        return error.into_response();
    }
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
    (status, error.to_string()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_holding_nul_is_named() {
        assert_eq!(
            unstorable_pair(b"title=ok&body=a%00b"),
            Some(Refusal::Field("body".to_owned()))
        );
        assert_eq!(
            unstorable_pair(b"pet[name]=%00"),
            Some(Refusal::Field("pet".to_owned()))
        );
        assert_eq!(unstorable_pair(b"%00=1"), Some(Refusal::Name));
        assert_eq!(unstorable_pair(b"title=tab%09and%0Anewline%7F"), None);
        let json: Value = serde_json::json!({ "a": "ok", "b": { "c": ["x", "y\u{0}"] } });
        assert_eq!(unstorable_json(&json, None), Some(Refusal::Field("b".to_owned())));
        assert_eq!(
            unstorable_json(&serde_json::json!("\u{0}"), None),
            Some(Refusal::Field("body".to_owned()))
        );
    }
}
