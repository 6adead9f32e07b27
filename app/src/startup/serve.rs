//! Serving a listener's connections with hyper directly (`axum::serve` has no way to bound slow or
//! silent clients), for the public port and the metrics port alike.
//!
//! Every connection is watched from the moment it is accepted: while no request is in flight it has a
//! deadline, and it is closed when the deadline passes. A new connection (whatever it sends: nothing,
//! part of a request line, an HTTP/2 preface) must complete a request's headers within the header-read
//! timeout; a kept-alive connection with nothing in flight is closed after the keep-alive timeout, and
//! once bytes of a next request arrive, its headers too must be complete within the header-read timeout.
//! hyper alone has no such bound before the protocol is known, so a silent socket would hold its slot
//! for ever.
//!
//! Connections are also counted per client address (an IPv6 client by its /64): beyond the cap, a new
//! one is closed at once. Addresses of trusted proxies are exempt (a proxy carries many clients, and no
//! header has been read when a connection is counted).

use axum::Router;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use pawfile::{metrics::Metrics, net::TrustedProxies};
use std::{
    collections::HashMap,
    io,
    net::IpAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::Notify,
    time::Instant,
};
use tokio_util::sync::CancellationToken;

/// How a listener treats its connections.
#[derive(Debug, Clone)]
pub struct ConnectionPolicy {
    /// The listener's name in the metrics (`public`, `metrics`).
    pub listener: &'static str,
    /// A request's headers must be complete within this time of the connection opening (or of the first
    /// byte of a next request on a kept-alive connection).
    pub header_read_timeout: Duration,
    /// A connection with no request in flight is closed after this long.
    pub keep_alive_timeout: Duration,
    /// Most connections served at once (more wait in the listen queue).
    pub max_connections: usize,
    /// Most connections open at once from one client address (an IPv6 client: its /64).
    pub max_per_address: usize,
    /// Addresses exempt from the per-address cap.
    pub trusted_proxies: TrustedProxies,
    /// How long requests in flight may take to finish once the server stops.
    pub shutdown_grace: Duration,
}

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
    builder.http2().timer(hyper_util::rt::TokioTimer::new());
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
        let tracker = Arc::new(Tracker::new(
            policy.header_read_timeout,
            policy.keep_alive_timeout,
        ));
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
                    Ok::<_, std::convert::Infallible>(response.map(|body| {
                        axum::body::Body::new(TrackedBody {
                            inner: body,
                            _in_flight: in_flight,
                        })
                    }))
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
                    tracing::debug!(client = %remote.ip(), "connection idle past its deadline; closed");
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

/// A connection's state, as its watchdog sees it.
#[derive(Debug)]
struct Tracker {
    state: Mutex<TrackerState>,
    changed: Notify,
    header_read_timeout: Duration,
    keep_alive_timeout: Duration,
}

#[derive(Debug)]
struct TrackerState {
    /// Requests whose headers arrived and whose response is not yet sent.
    in_flight: usize,
    /// Whether the (next) request's first bytes arrived and its headers are awaited.
    awaiting_headers: bool,
    /// When the connection is closed unless a request arrives first; `None` while one is in flight.
    deadline: Option<Instant>,
}

impl Tracker {
    fn new(header_read_timeout: Duration, keep_alive_timeout: Duration) -> Self {
        Self {
            state: Mutex::new(TrackerState {
                in_flight: 0,
                awaiting_headers: true,
                deadline: Some(Instant::now() + header_read_timeout),
            }),
            changed: Notify::new(),
            header_read_timeout,
            keep_alive_timeout,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, TrackerState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Bytes were read from the client: on an idle kept-alive connection, a next request begins.
    fn bytes_arrived(&self) {
        let mut state = self.state();
        if state.in_flight == 0 && !state.awaiting_headers {
            state.awaiting_headers = true;
            state.deadline = Some(Instant::now() + self.header_read_timeout);
            drop(state);
            self.changed.notify_one();
        }
    }

    fn request_started(&self) {
        let mut state = self.state();
        state.in_flight += 1;
        state.awaiting_headers = false;
        state.deadline = None;
    }

    fn request_finished(&self) {
        let mut state = self.state();
        state.in_flight = state.in_flight.saturating_sub(1);
        if state.in_flight == 0 {
            state.awaiting_headers = false;
            state.deadline = Some(Instant::now() + self.keep_alive_timeout);
            drop(state);
            self.changed.notify_one();
        }
    }

    /// Completes when the connection's deadline passes with no request in flight.
    async fn expired(&self) {
        loop {
            let deadline = self.state().deadline;
            match deadline {
                None => self.changed.notified().await,
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {
                            if self.state().deadline.is_some_and(|deadline| deadline <= Instant::now()) {
                                return;
                            }
                        }
                        () = self.changed.notified() => {}
                    }
                }
            }
        }
    }
}

/// A request in flight on its connection, until dropped.
struct InFlight(Arc<Tracker>);

impl InFlight {
    fn start(tracker: Arc<Tracker>) -> Self {
        tracker.request_started();
        Self(tracker)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A response body that keeps its request in flight until it is sent or dropped.
struct TrackedBody {
    inner: axum::body::Body,
    _in_flight: InFlight,
}

impl HttpBody for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A client socket that tells its tracker when bytes arrive.
struct WatchedStream {
    inner: TcpStream,
    tracker: Arc<Tracker>,
}

impl AsyncRead for WatchedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.tracker.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_at_most_its_cap_and_the_place_comes_back_when_a_connection_closes() {
        let counts = Arc::new(AddressCounts::default());
        let addr: IpAddr = "192.0.2.7".parse().unwrap();
        let first = counts.try_take(addr, 2).unwrap();
        let _second = counts.try_take(addr, 2).unwrap();
        assert!(counts.try_take(addr, 2).is_none());
        assert!(counts.try_take("192.0.2.8".parse().unwrap(), 2).is_some());
        drop(first);
        assert!(counts.try_take(addr, 2).is_some());
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let counts = Arc::new(AddressCounts::default());
        let _one = counts.try_take("2001:db8:1:2::1".parse().unwrap(), 1).unwrap();
        assert!(
            counts
                .try_take("2001:db8:1:2:ffff::9".parse().unwrap(), 1)
                .is_none(),
            "another address of the same /64 is the same client"
        );
        assert!(counts.try_take("2001:db8:1:3::1".parse().unwrap(), 1).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_expires_after_the_header_timeout() {
        let tracker = Tracker::new(Duration::from_secs(10), Duration::from_secs(5));
        let started = Instant::now();
        tracker.expired().await;
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_of_a_first_request_do_not_extend_its_header_deadline() {
        let tracker = Arc::new(Tracker::new(Duration::from_secs(10), Duration::from_secs(5)));
        let started = Instant::now();
        let feeder = tokio::spawn({
            let tracker = tracker.clone();
            async move {
                for _ in 0..30 {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    tracker.bytes_arrived();
                }
            }
        });
        tracker.expired().await;
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        feeder.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_holds_the_connection_and_keep_alive_counts_from_its_end() {
        let tracker = Arc::new(Tracker::new(Duration::from_secs(10), Duration::from_secs(5)));
        let started = Instant::now();
        let request = InFlight::start(tracker.clone());
        let ended = tokio::spawn({
            async move {
                tokio::time::sleep(Duration::from_secs(60)).await;
                drop(request);
            }
        });
        tracker.expired().await;
        assert_eq!(started.elapsed(), Duration::from_secs(65));
        ended.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_next_request_on_a_kept_alive_connection_gets_the_header_timeout_from_its_first_byte() {
        let tracker = Arc::new(Tracker::new(Duration::from_secs(10), Duration::from_secs(5)));
        drop(InFlight::start(tracker.clone()));
        let started = Instant::now();
        let feeder = tokio::spawn({
            let tracker = tracker.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(4)).await;
                tracker.bytes_arrived();
            }
        });
        tracker.expired().await;
        assert_eq!(started.elapsed(), Duration::from_secs(14));
        feeder.await.unwrap();
    }
}
