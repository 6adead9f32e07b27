//! Serving a listener's connections with hyper directly (`axum::serve` has no way to bound slow or
//! silent clients), for the public port and the metrics port alike.
//!
//! Every connection is watched from the moment it is accepted: while no request is in flight it has a
//! deadline, and it is closed when the deadline passes. A new connection (whatever it sends: nothing,
//! part of a request line, an HTTP/2 preface) must complete a request's headers within the header-read
//! timeout; a kept-alive connection with nothing in flight is closed after the keep-alive timeout, and
//! once bytes of a next request arrive, its headers too must be complete within the header-read timeout.
//! hyper alone has no such bound before the protocol is known, so a silent socket would hold its slot
//! for ever. Writes are watched too: a client that stops reading is closed once nothing could be
//! written for the send timeout, whether a request is in flight or not: over HTTP/1 its socket stops
//! taking bytes (a write waits); over HTTP/2 it may instead grant no flow-control window, which no write
//! shows, so a response that handed hyper a frame hyper has not come back for, with nothing written
//! meanwhile, counts as stalled too. The keep-alive timeout counts from the last byte written, not from
//! when the response was handed over, so a slow reader's download is not cut while hyper still drains
//! it. (A request body
//! that trickles in is bounded where it is read: uploads by their idle timeout and the user's upload
//! slots, every other body by a deadline for the whole of it.)
//!
//! Connections are also counted per client address (an IPv6 client by its /64): beyond the cap, a new
//! one is closed at once. Addresses of trusted proxies are exempt (a proxy carries many clients, and no
//! header has been read when a connection is counted).

mod watch;

use watch::{InFlight, Timeouts, TrackedBody, Tracker, WatchedStream};
#[cfg(test)]
mod tests;

use axum::Router;
use pawfile::{metrics::Metrics, net::TrustedProxies};
use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How a listener treats its connections.
#[derive(Debug, Clone)]
pub struct ConnectionPolicy {
    /// The listener's name in the metrics (`public`, `metrics`).
    pub listener: &'static str,
    /// A request's headers must be complete within this time of the connection opening (or of the first
    /// byte of a next request on a kept-alive connection).
    pub header_read_timeout: Duration,
    /// A connection with no request in flight is closed after this long (counted from the last byte
    /// written).
    pub keep_alive_timeout: Duration,
    /// A connection whose writes have been blocked (the client not reading) for this long is closed.
    pub send_timeout: Duration,
    /// Most connections served at once (more wait in the listen queue).
    pub max_connections: usize,
    /// Most connections open at once from one client address (an IPv6 client: its /64).
    pub max_per_address: usize,
    /// Addresses exempt from the per-address cap.
    pub trusted_proxies: TrustedProxies,
    /// How long requests in flight may take to finish once the server stops.
    pub shutdown_grace: Duration,
}

/// The most requests an HTTP/2 connection may have in flight at once (hyper's default is 200; RFC 9113
/// recommends no fewer than 100).
const MAX_CONCURRENT_STREAMS: u32 = 100;

/// Serves `router` on `listener` under `policy` until `shutdown` is cancelled; then stops accepting,
/// lets requests in flight finish for up to the shutdown grace, and cuts the rest.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    policy: ConnectionPolicy,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(policy.header_read_timeout);
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS);
    let builder = Arc::new(builder);
    let permits = Arc::new(tokio::sync::Semaphore::new(policy.max_connections.max(1)));
    let addresses = Arc::new(AddressCounts::default());
    let stopping = CancellationToken::new();
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = shutdown.cancelled() => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let exempt = policy.trusted_proxies.trusts(remote.ip());
        let address = if exempt {
            None
        } else {
            match addresses.try_take(remote.ip(), policy.max_per_address) {
                Some(slot) => Some(slot),
                None => {
                    metrics.connection_refused(policy.listener, "address_cap");
                    tracing::debug!(client = %remote.ip(), "too many connections from one address; closed");
                    drop(stream);
                    continue;
                }
            }
        };
        metrics.connection_opened(policy.listener);
        let counted = OpenConnection {
            metrics: metrics.clone(),
            listener: policy.listener,
            _address: address,
            _permit: permit,
        };
        let tracker = Arc::new(Tracker::new(Timeouts {
            header_read: policy.header_read_timeout,
            keep_alive: policy.keep_alive_timeout,
            send: policy.send_timeout,
        }));
        let router = router.clone();
        let service = {
            let tracker = tracker.clone();
            hyper::service::service_fn(move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(remote));
                let in_flight = InFlight::start(tracker.clone());
                let call = tower::ServiceExt::oneshot(router.clone(), request.map(axum::body::Body::new));
                async move {
                    let response = call.await?;
                    // The request counts as in flight until its response body is sent (or dropped).
                    Ok::<_, std::convert::Infallible>(
                        response.map(|body| axum::body::Body::new(TrackedBody::new(body, in_flight))),
                    )
                }
            })
        };
        let (builder, stopping, metrics, listener_name) = (
            builder.clone(),
            stopping.clone(),
            metrics.clone(),
            policy.listener,
        );
        connections.spawn(async move {
            let io = hyper_util::rt::TokioIo::new(WatchedStream {
                inner: stream,
                tracker: tracker.clone(),
            });
            let connection = builder.serve_connection_with_upgrades(io, service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(err) = result {
                        tracing::debug!(error = %err, "connection ended with an error");
                    }
                }
                () = tracker.expired() => {
                    metrics.connection_timed_out(listener_name);
                    tracing::debug!(client = %remote.ip(), "connection idle or stalled past its deadline; closed");
                }
                () = stopping.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(counted);
        });
    }
    drop(listener);
    stopping.cancel();
    let drained = tokio::time::timeout(policy.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            grace = ?policy.shutdown_grace,
            listener = policy.listener,
            "requests still in flight at the end of the shutdown grace were cut"
        );
    }
    connections.shutdown().await;
}

/// What an open connection holds until it closes: its place in the gauge, its address's count and its
/// permit.
struct OpenConnection {
    metrics: Arc<Metrics>,
    listener: &'static str,
    _address: Option<AddressSlot>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.metrics.connection_closed(self.listener);
    }
}

/// Open connections per client address.
#[derive(Debug, Default)]
struct AddressCounts(Mutex<HashMap<IpAddr, usize>>);

impl AddressCounts {
    /// Counts one more connection from `addr`, unless it already has `most`.
    fn try_take(self: &Arc<Self>, addr: IpAddr, most: usize) -> Option<AddressSlot> {
        let key = pawfile::net::address_group(addr);
        let mut counts = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = counts.entry(key).or_insert(0);
        if *count >= most.max(1) {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            counts: self.clone(),
            key,
        })
    }
}

/// One connection counted against its address; dropping it gives the place back.
#[derive(Debug)]
struct AddressSlot {
    counts: Arc<AddressCounts>,
    key: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self
            .counts
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}
