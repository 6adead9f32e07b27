//! The middleware around every request: who the client is, whether its session cookie must be Secure,
//! refusing cross-site writes, and keeping answers out of caches.

use super::{context::prefers_html, session::COOKIE_NAME};
use crate::{error::ApiError, startup::AppState};
use axum::{
    Json,
    extract::{ConnectInfo, Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use pawfile::net::{ClientInfo, Scheme};
use serde_json::json;
use std::net::SocketAddr;

/// Resolves the client (address and scheme, believing forwarded headers only from trusted proxies) into
/// a request extension, and marks the session cookie Secure when the client used HTTPS.
pub async fn client_context(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let forwarded_for: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok());
    let client =
        state
            .config
            .trusted_proxies
            .resolve(peer.ip(), Scheme::Http, &forwarded_for, forwarded_proto);
    request.extensions_mut().insert::<ClientInfo>(client);
    let mut response = next.run(request).await;
    if client.scheme == Scheme::Https {
        mark_session_cookie_secure(&mut response);
    }
    response
}

fn mark_session_cookie_secure(response: &mut Response) {
    let headers = response.headers_mut();
    let cookies: Vec<HeaderValue> = headers.get_all(header::SET_COOKIE).iter().cloned().collect();
    if cookies.is_empty() {
        return;
    }
    headers.remove(header::SET_COOKIE);
    for value in cookies {
        let rewritten = value
            .to_str()
            .ok()
            .and_then(|text| cookie::Cookie::parse(text.to_owned()).ok())
            .filter(|cookie| cookie.name() == COOKIE_NAME)
            .and_then(|mut cookie| {
                cookie.set_secure(true);
                HeaderValue::from_str(&cookie.to_string()).ok()
            });
        headers.append(header::SET_COOKIE, rewritten.unwrap_or(value));
    }
}

/// Refuses state-changing requests that a browser marks as coming from another site (login CSRF and the
/// like). The session cookie is SameSite=Lax as well; this also covers same-site subdomains.
pub async fn refuse_cross_site_writes(request: Request, next: Next) -> Response {
    let unsafe_method = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let cross_site = request
        .headers()
        .get("sec-fetch-site")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|site| site == "cross-site" || site == "same-site");
    if unsafe_method && cross_site {
        let message = "This request came from another site and was refused.";
        return if prefers_html(request.headers()) {
            (StatusCode::FORBIDDEN, message).into_response()
        } else {
            (
                StatusCode::FORBIDDEN,
                Json(json!({ "kind": "forbidden", "error": message })),
            )
                .into_response()
        };
    }
    next.run(request).await
}

/// `Cache-Control: no-store` on pages and API answers: medical data must not linger in the caches of
/// shared clinic computers.
pub async fn no_store(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// A plain HTML form is sent back to its page afterwards; the framework takes that page from the
/// `Referer` as it is. A Referer of another site (or a path another host hides in, `//host`) is
/// dropped before the framework sees it, so the form goes back to `/` instead of off the site.
pub async fn confine_referer(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if request.headers().contains_key(header::REFERER)
        && super::context::own_referer(request.headers(), &state.config.public_url).is_none()
    {
        request.headers_mut().remove(header::REFERER);
    }
    next.run(request).await
}

/// Every error under `/api/` answers in the documented shape (`{"kind", "error"}`) with the status of
/// its kind: the framework's own rejections (a malformed path, query or body, a method a route lacks,
/// an unknown route) come as plain text, and server functions answer the errors the framework raises
/// with 500 whatever their kind.
pub async fn api_errors(request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/api/") {
        return next.run(request).await;
    }
    let response = next.run(request).await;
    let status = response.status();
    if !status.is_client_error() && !status.is_server_error() {
        return response;
    }
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if json {
        if status != StatusCode::INTERNAL_SERVER_ERROR {
            return response;
        }
        let (mut parts, body) = response.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
            return ApiError::Internal {
                error: "Something went wrong on our side.".to_owned(),
            }
            .into_response();
        };
        if let Ok(error) = serde_json::from_slice::<ApiError>(&bytes) {
            parts.status = StatusCode::from_u16(error.status()).unwrap_or(status);
        }
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    }
    let error = match status {
        StatusCode::NOT_FOUND => ApiError::not_found(),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge {
            error: "This request is larger than Pawfile accepts.".to_owned(),
        },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::BadRequest {
            error: "This request's content type is not one this address takes.".to_owned(),
        },
        StatusCode::METHOD_NOT_ALLOWED => ApiError::BadRequest {
            error: "This address does not take this method.".to_owned(),
        },
        status if status.is_client_error() => ApiError::BadRequest {
            error: "This request is malformed.".to_owned(),
        },
        _ => ApiError::Internal {
            error: "Something went wrong on our side.".to_owned(),
        },
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let body = serde_json::to_vec(&error).unwrap_or_default();
    Response::from_parts(parts, axum::body::Body::from(body))
}
