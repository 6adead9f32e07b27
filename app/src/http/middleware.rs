//! The middleware around every request: who the client is, whether its session cookie must be Secure,
//! refusing cross-site writes, and keeping answers out of caches.

use super::{context::prefers_html, session::COOKIE_NAME};
use crate::startup::AppState;
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
