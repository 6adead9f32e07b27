//! The middleware around every request: who the client is, the session cookie's final form, refusing
//! cross-site writes, errors in the documented shape, and keeping answers out of caches.

use super::{
    context::prefers_html,
    session::{self, COOKIE_NAME, SECURE_COOKIE_PREFIX},
};
use crate::{error::ApiError, state::AppState};
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
/// a request extension beside the request's [`session::UserMemo`], and gives the session cookie its
/// final form (see [`session_cookie`]).
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
    request.extensions_mut().insert(session::UserMemo::default());
    let secure = state.config.public_url.scheme() == "https" || client.scheme == Scheme::Https;
    if secure {
        take_host_cookie(request.headers_mut());
    }
    let mut response = next.run(request).await;
    session_cookie(&mut response, secure);
    response
}

/// Over HTTPS the browser holds the session cookie as `__Host-pawfile_session` (Secure, host-only,
/// path `/`: a neighbouring subdomain cannot plant or overwrite it). The session layer knows one name,
/// so the incoming cookie is renamed for it, and a cookie of the plain name, which anyone on a sibling
/// subdomain or a plain-HTTP network could have set, is dropped.
fn take_host_cookie(headers: &mut axum::http::HeaderMap) {
    let plain = format!("{COOKIE_NAME}=");
    let cookies: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && !pair.starts_with(&plain))
        .map(|pair| match pair.strip_prefix(SECURE_COOKIE_PREFIX) {
            Some(rest) if rest.starts_with(&plain) => rest.to_owned(),
            _ => pair.to_owned(),
        })
        .collect();
    headers.remove(header::COOKIE);
    if !cookies.is_empty()
        && let Ok(value) = HeaderValue::from_str(&cookies.join("; "))
    {
        headers.insert(header::COOKIE, value);
    }
}

/// The session cookie leaves as a browser-session cookie (no `Max-Age`: it ends when the browser
/// closes, which matters on shared clinic computers; the server ends idle sessions itself). Over HTTPS
/// it is `Secure` and named `__Host-pawfile_session`.
fn session_cookie(response: &mut Response, secure: bool) {
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
                let removal = cookie
                    .max_age()
                    .is_some_and(|age| age.is_zero() || age.is_negative());
                if !removal {
                    cookie.unset_expires();
                    cookie.set_max_age(None);
                }
                if secure {
                    cookie.set_secure(true);
                    cookie.set_path("/");
                    cookie.unset_domain();
                    cookie.set_name(format!("{SECURE_COOKIE_PREFIX}{COOKIE_NAME}"));
                }
                HeaderValue::from_str(&cookie.to_string()).ok()
            });
        headers.append(header::SET_COOKIE, rewritten.unwrap_or(value));
    }
}

/// The header scripts send to show that a request is not a cross-site form post (a browser cannot send
/// it to another site without that site's permission, asked for by a preflight Pawfile never grants).
pub const CLIENT_HEADER: &str = "x-pawfile-client";

/// Refuses state-changing requests that may come from another site (CSRF, login CSRF). One is accepted
/// when the browser marks it `Sec-Fetch-Site: same-origin`, or else when its `Origin` (or, without
/// one, its `Referer`) is Pawfile's public origin, or else when it carries `X-Pawfile-Client` (scripts);
/// everything else is 403. The session cookie is SameSite=Lax as well.
pub async fn refuse_cross_site_writes(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let unsafe_method = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if unsafe_method && !same_origin(request.headers(), &state.config.public_url) {
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

/// Whether a state-changing request provably comes from Pawfile's own pages or from a script.
fn same_origin(headers: &axum::http::HeaderMap, public_url: &url::Url) -> bool {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    match header("sec-fetch-site") {
        Some("same-origin") => return true,
        // The browser says so: no header or origin can outweigh it.
        Some("cross-site" | "same-site") => return false,
        _ => {}
    }
    let public = public_url.origin();
    let from = header("origin")
        .filter(|origin| *origin != "null")
        .or_else(|| header("referer"));
    if let Some(from) = from {
        return url::Url::parse(from).is_ok_and(|url| url.origin() == public);
    }
    headers.contains_key(CLIENT_HEADER)
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

/// The longest request id taken from a proxy.
const REQUEST_ID_MAX: usize = 64;

/// A request id from a trusted proxy's `X-Request-Id`, if it is a short token (letters, digits, `.`,
/// `_`, `-`); otherwise `None` and the server makes one.
fn forwarded_request_id(value: Option<&HeaderValue>) -> Option<String> {
    let value = value?.to_str().ok()?;
    let token = !value.is_empty()
        && value.len() <= REQUEST_ID_MAX
        && value
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
    token.then(|| value.to_owned())
}

/// Gives every request an id and a span (`request{id, method, route}`) that the S3 and database calls
/// made for it log under, answers the id in `X-Request-Id`, and counts the request in the metrics by
/// its matched route (never the raw path) and status.
pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let from_proxy = peer.is_some_and(|peer| state.config.trusted_proxies.trusts(peer));
    let id = from_proxy
        .then(|| forwarded_request_id(request.headers().get("x-request-id")))
        .flatten()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |path| path.as_str())
        .to_owned();
    let method = request.method().clone();
    let span = tracing::info_span!("request", id = %id, method = %method, route = %route);
    let mut response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    let status = response.status();
    let took = started.elapsed();
    state
        .metrics
        .request(method.as_str(), &route, status.as_u16(), took);
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!(
                status = status.as_u16(),
                took_ms = took.as_millis() as u64,
                "answered"
            );
        } else {
            tracing::debug!(
                status = status.as_u16(),
                took_ms = took.as_millis() as u64,
                "answered"
            );
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

#[cfg(test)]
mod request_id_tests {
    use super::*;

    #[test]
    fn only_short_tokens_are_taken_as_request_ids() {
        let take = |value: &str| forwarded_request_id(Some(&HeaderValue::from_str(value).unwrap()));
        assert_eq!(take("abc-123_x.y").as_deref(), Some("abc-123_x.y"));
        assert_eq!(take(&"a".repeat(64)).as_deref(), Some("a".repeat(64).as_str()));
        assert_eq!(take(&"a".repeat(65)), None);
        assert_eq!(take(""), None);
        assert_eq!(take("a b"), None);
        assert_eq!(take("id\"}{"), None);
        assert_eq!(forwarded_request_id(None), None);
    }
}
