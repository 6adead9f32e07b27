//! Response headers that keep pages and files from being framed, sniffed, cached or scripted from
//! elsewhere, and the per-response Content-Security-Policy nonce.

use axum::http::{HeaderName, HeaderValue, header};
use leptos::prelude::use_context;
use leptos_axum::ResponseOptions;

/// Generates a nonce for this page and sends the Content-Security-Policy that allows only scripts with
/// that nonce (Leptos's hydration scripts carry it) and our own wasm.
pub fn provide_csp_nonce() {
    leptos::nonce::provide_nonce();
    let (Some(nonce), Some(response)) = (leptos::nonce::use_nonce(), use_context::<ResponseOptions>()) else {
        return;
    };
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response.insert_header(header::CONTENT_SECURITY_POLICY, value);
    }
}

/// Headers every response gets unless the handler set them.
pub fn default_headers() -> Vec<(HeaderName, HeaderValue)> {
    vec![
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        // Same-origin requests keep their Referer: plain forms are redirected back to it.
        (header::REFERRER_POLICY, HeaderValue::from_static("same-origin")),
        (
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static("geolocation=(), microphone=(), payment=()"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; base-uri 'none'"),
        ),
    ]
}
