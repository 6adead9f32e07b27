//! Text PostgreSQL cannot store (U+0000, NUL) is refused before any handler or server function sees
//! it, with 422 naming the field: in the route's path parameters, in the query string (page addresses
//! included: pages call the server functions with it while rendering), and in every body except the
//! upload route's (uploads stream; that route checks its text fields and file names).
//!
//! Only NUL: PostgreSQL keeps every other character in text, and where a control character makes no
//! sense the field's own parser refuses it (names, one-line text). A server function reads any body as
//! a URL-encoded form whatever its content type, so which bodies are read is decided by the route, never
//! by the `Content-Type` the client chose: every body is checked as a URL-encoded form, and also as JSON
//! when it parses as JSON.
//!
//! These bodies are small (2 MiB at most, the limit server functions meet anyway) and read whole, so
//! they are bounded twice: each must arrive whole within the body timeout (a body trickling in a byte at
//! a time would otherwise hold its request for ever), and the bytes all of them hold at once are capped
//! across the server (many slow bodies, over HTTP/2 many per connection, would otherwise add up).

use super::context::prefers_html;
use crate::{error::ApiError, state::AppState};
use axum::{
    body::Body,
    extract::{MatchedPath, RawPathParams, Request, State, rejection::RawPathParamsRejection},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures::StreamExt;
use leptos::server_fn::error::ServerFnUrlError;
use pawfile::domain::{UNSTORABLE, storable};
use serde_json::Value;
use std::time::Duration;
use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{LazyLock, Mutex},
};
use tokio::sync::{Semaphore, SemaphorePermit};

/// The most a body may weigh (every route's but the upload's): the limit server functions meet anyway
/// (axum's default).
const SMALL_BODY_MAX: usize = 2 * 1024 * 1024;

/// The most bytes the bodies being read here may hold at once, across the server.
const BUFFERED_MAX: usize = 64 * 1024 * 1024;

/// The most of them the bodies from one client address (an IPv6 client: its /64) may hold: one address
/// cannot spend what every other client needs.
const BUFFERED_PER_ADDRESS: usize = 8 * 1024 * 1024;

/// What the bodies being read hold: across the server (a permit per byte) and per client address.
#[derive(Debug)]
struct Budget {
    pool: Semaphore,
    per_address: usize,
    by_address: Mutex<HashMap<IpAddr, usize>>,
}

impl Budget {
    fn new(total: usize, per_address: usize) -> Self {
        Self {
            pool: Semaphore::new(total),
            per_address,
            by_address: Mutex::new(HashMap::new()),
        }
    }

    fn by_address(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.by_address
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

static BUFFERED: LazyLock<Budget> = LazyLock::new(|| Budget::new(BUFFERED_MAX, BUFFERED_PER_ADDRESS));

/// The bytes one body holds of a [`Budget`], given back when dropped.
#[derive(Debug)]
struct Share {
    budget: &'static Budget,
    address: IpAddr,
    bytes: usize,
    permit: Option<SemaphorePermit<'static>>,
}

impl Share {
    fn new(budget: &'static Budget, address: IpAddr) -> Self {
        Self {
            budget,
            address: pawfile::net::address_group(address),
            bytes: 0,
            permit: None,
        }
    }

    /// Takes `more` bytes: 429 beyond the address's share, 503 beyond the server's.
    fn take(&mut self, more: usize) -> Result<(), ApiError> {
        {
            let mut held = self.budget.by_address();
            if held.get(&self.address).copied().unwrap_or(0) + more > self.budget.per_address {
                return Err(ApiError::RateLimited {
                    error:
                        "Too many requests from your address are being sent at once. Try again in a moment."
                            .to_owned(),
                    retry_after: 1,
                });
            }
            *held.entry(self.address).or_insert(0) += more;
        }
        // Counted before the permit is sought: dropping the share gives both back.
        self.bytes += more;
        let permit = u32::try_from(more)
            .ok()
            .and_then(|wanted| self.budget.pool.try_acquire_many(wanted).ok())
            .ok_or_else(|| ApiError::Unavailable {
                error: "Pawfile is busy reading other requests. Try again in a moment.".to_owned(),
            })?;
        match &mut self.permit {
            Some(held) => held.merge(permit),
            None => self.permit = Some(permit),
        }
        Ok(())
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        if self.bytes == 0 {
            return;
        }
        let mut held = self.budget.by_address();
        if let Some(address) = held.get_mut(&self.address) {
            *address = address.saturating_sub(self.bytes);
            if *address == 0 {
                held.remove(&self.address);
            }
        }
    }
}

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
    let deadline = state.config.connections.body_idle_timeout;
    let client = parts
        .extensions
        .get::<pawfile::net::ClientInfo>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |client| client.addr);
    let share = Share::new(&BUFFERED, client);
    match checked_body(&parts, body, deadline, share).await {
        Ok(body) => next.run(Request::from_parts(parts, body)).await,
        Err(error) => refuse(&state, &parts, error),
    }
}

/// Whether the route streams its body and checks it itself: the upload.
fn streams_its_body(parts: &Parts) -> bool {
    parts.method == Method::POST
        && parts
            .extensions
            .get::<MatchedPath>()
            .is_some_and(|matched| matched.as_str() == super::UPLOAD_ROUTE)
}

/// The body read whole (within `deadline`, its bytes held in `share`), checked and put back; the
/// upload's passes unread.
async fn checked_body(parts: &Parts, body: Body, deadline: Duration, share: Share) -> Result<Body, ApiError> {
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) || streams_its_body(parts) {
        return Ok(body);
    }
    let too_large = || ApiError::TooLarge {
        error: format!(
            "This request is larger than Pawfile accepts ({}).",
            bytesize::ByteSize(SMALL_BODY_MAX as u64)
        ),
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > SMALL_BODY_MAX as u64) {
        return Err(too_large());
    }
    let (bytes, _share) = tokio::time::timeout(deadline, read_small(body, share, too_large))
        .await
        .map_err(|_| ApiError::TimedOut {
            error: format!(
                "The request's body did not arrive within {}. Check the connection and try again.",
                humantime::format_duration(deadline)
            ),
        })??;
    let refusal = unstorable_pair(&bytes).or_else(|| {
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|value| unstorable_json(&value, None))
    });
    match refusal {
        Some(refusal) => Err(refusal.error()),
        None => Ok(Body::from(bytes)),
    }
}

/// A small body read whole, with the share of the budget its bytes hold (taken as they arrive).
async fn read_small(
    body: Body,
    mut share: Share,
    too_large: impl Fn() -> ApiError,
) -> Result<(axum::body::Bytes, Share), ApiError> {
    let mut stream = body.into_data_stream();
    let mut bytes: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ApiError::BadRequest {
            error: "The request's body could not be read. Check the connection and try again.".to_owned(),
        })?;
        if bytes.len() + chunk.len() > SMALL_BODY_MAX {
            return Err(too_large());
        }
        if chunk.is_empty() {
            continue;
        }
        share.take(chunk.len())?;
        bytes.extend_from_slice(&chunk);
    }
    Ok((axum::body::Bytes::from(bytes), share))
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

    async fn check(
        method: Method,
        content_type: &str,
        body: &'static [u8],
    ) -> Result<axum::body::Bytes, ApiError> {
        let request = axum::http::Request::builder()
            .method(method)
            .uri("/api/pets")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap();
        let (parts, body) = request.into_parts();
        let share = Share::new(&BUFFERED, IpAddr::from([192, 0, 2, 1]));
        let body = checked_body(&parts, body, Duration::from_secs(5), share).await?;
        Ok(axum::body::to_bytes(body, usize::MAX).await.unwrap())
    }

    #[tokio::test]
    async fn whatever_content_type_a_body_claims_it_is_checked() {
        for content_type in [
            "application/x-www-form-urlencoded",
            "application/octet-stream",
            "multipart/form-data; boundary=x",
            "application/json",
            "text/plain",
            "",
        ] {
            let refused = check(Method::POST, content_type, b"name=a%00b").await;
            assert_eq!(
                refused.map_err(|err| err.field().map(str::to_owned)),
                Err(Some("name".to_owned())),
                "{content_type:?}"
            );
            let refused = check(Method::POST, content_type, b"{\"name\": \"a\\u0000b\"}").await;
            assert!(refused.is_err(), "{content_type:?}: JSON holding NUL");
            assert_eq!(
                check(Method::POST, content_type, b"name=Rex").await.unwrap(),
                &b"name=Rex"[..],
                "{content_type:?}: the body is put back"
            );
        }
        // What is not read passes.
        assert!(check(Method::GET, "", b"name=a%00b").await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_trickles_in_is_refused_at_the_deadline_with_408() {
        let (mut sender, body) =
            futures::channel::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(1);
        let feeder = tokio::spawn(async move {
            use futures::SinkExt;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if sender
                    .send(Ok(axum::body::Bytes::from_static(b"a")))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        let request = axum::http::Request::builder()
            .method(Method::POST)
            .uri("/api/pets")
            .body(Body::from_stream(body))
            .unwrap();
        let (parts, body) = request.into_parts();
        let started = tokio::time::Instant::now();
        let share = Share::new(&BUFFERED, IpAddr::from([192, 0, 2, 2]));
        let refused = checked_body(&parts, body, Duration::from_secs(30), share)
            .await
            .unwrap_err();
        assert_eq!(refused.status(), 408);
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        feeder.abort();
    }

    #[tokio::test]
    async fn the_bytes_bodies_hold_at_once_are_capped_per_address_and_in_all_and_given_back() {
        static BUDGET: LazyLock<Budget> = LazyLock::new(|| Budget::new(10, 6));
        let (one, other, third) = (
            IpAddr::from([192, 0, 2, 1]),
            IpAddr::from([192, 0, 2, 2]),
            IpAddr::from([192, 0, 2, 3]),
        );
        let too_large = || ApiError::TooLarge { error: String::new() };
        let small = |bytes: &'static [u8]| Body::from(bytes);
        // A body from the first address holds 5 bytes while it waits for more.
        let (mut sender, stalled) =
            futures::channel::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(1);
        use futures::SinkExt;
        sender
            .send(Ok(axum::body::Bytes::from_static(b"12345")))
            .await
            .unwrap();
        let first = tokio::spawn(read_small(
            Body::from_stream(stalled),
            Share::new(&BUDGET, one),
            too_large,
        ));
        while BUDGET.pool.available_permits() > 5 {
            tokio::task::yield_now().await;
        }
        // Beyond its address's share: 429 for that address only.
        let refused = read_small(small(b"ab"), Share::new(&BUDGET, one), too_large)
            .await
            .unwrap_err();
        assert_eq!(refused.status(), 429);
        // Another address gets its own share, up to what the server has left: then 503.
        let held = read_small(small(b"abcd"), Share::new(&BUDGET, other), too_large)
            .await
            .unwrap();
        let refused = read_small(small(b"abc"), Share::new(&BUDGET, third), too_large)
            .await
            .unwrap_err();
        assert_eq!(refused.status(), 503);
        drop(held);
        drop(sender);
        let (bytes, share) = first.await.unwrap().unwrap();
        assert_eq!(&bytes[..], b"12345");
        drop(share);
        assert_eq!(BUDGET.pool.available_permits(), 10, "given back once checked");
        assert!(BUDGET.by_address().is_empty(), "and per address");
        assert!(
            read_small(small(b"abcdef"), Share::new(&BUDGET, third), too_large)
                .await
                .is_ok()
        );
    }
}
