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

/// The deadlines a connection's watchdog keeps.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    header_read: Duration,
    keep_alive: Duration,
    send: Duration,
}

/// A connection's state, as its watchdog sees it.
#[derive(Debug)]
struct Tracker {
    state: Mutex<TrackerState>,
    changed: Notify,
    timeouts: Timeouts,
}

#[derive(Debug)]
struct TrackerState {
    /// Requests whose headers arrived and whose response is not yet sent.
    in_flight: usize,
    /// Since when the (next) request's headers are awaited: the connection opened, or the first bytes
    /// of a next request arrived on a kept-alive one.
    awaiting_headers_since: Option<Instant>,
    /// When the last request finished (its response handed to hyper), or the last byte was written,
    /// whichever came later.
    last_activity: Instant,
    /// Since when a write has been waiting for the client to read.
    write_blocked_since: Option<Instant>,
    /// When the last byte was written.
    last_write: Instant,
    /// Response bodies that handed hyper a frame it has not come back for (it waits for the client:
    /// the socket, or HTTP/2 flow control), each with since when: `(since, body)`.
    bodies_waiting: std::collections::BTreeSet<(Instant, u64)>,
    /// The number the next response body gets.
    next_body: u64,
}

impl TrackerState {
    /// When the connection is closed unless something happens first; `None` while a request is in
    /// flight and its writes are not blocked.
    fn deadline(&self, timeouts: Timeouts) -> Option<Instant> {
        // A response waiting for the client counts as stalled from when it began to wait, or from the
        // last byte written if that came later (a large frame is written bit by bit to a slow reader).
        let body_stalled = self
            .bodies_waiting
            .first()
            .map(|(since, _)| (*since).max(self.last_write));
        let stalled = self
            .write_blocked_since
            .into_iter()
            .chain(body_stalled)
            .min()
            .map(|since| since + timeouts.send);
        let idle = (self.in_flight == 0).then(|| match self.awaiting_headers_since {
            Some(since) => since + timeouts.header_read,
            None => self.last_activity + timeouts.keep_alive,
        });
        match (stalled, idle) {
            (Some(stalled), Some(idle)) => Some(stalled.min(idle)),
            (stalled, idle) => stalled.or(idle),
        }
    }
}

impl Tracker {
    fn new(timeouts: Timeouts) -> Self {
        let now = Instant::now();
        Self {
            state: Mutex::new(TrackerState {
                in_flight: 0,
                awaiting_headers_since: Some(now),
                last_activity: now,
                write_blocked_since: None,
                last_write: now,
                bodies_waiting: std::collections::BTreeSet::new(),
                next_body: 0,
            }),
            changed: Notify::new(),
            timeouts,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, TrackerState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes the state and wakes the watchdog if the deadline moved.
    fn update(&self, change: impl FnOnce(&mut TrackerState)) {
        let mut state = self.state();
        let before = state.deadline(self.timeouts);
        change(&mut state);
        let moved = state.deadline(self.timeouts) != before;
        drop(state);
        if moved {
            self.changed.notify_one();
        }
    }

    /// Bytes were read from the client: on an idle kept-alive connection, a next request begins.
    fn bytes_arrived(&self) {
        self.update(|state| {
            if state.in_flight == 0 && state.awaiting_headers_since.is_none() {
                state.awaiting_headers_since = Some(Instant::now());
            }
        });
    }

    /// Bytes were written to the client.
    fn bytes_written(&self) {
        self.update(|state| {
            let now = Instant::now();
            state.write_blocked_since = None;
            state.last_activity = now;
            state.last_write = now;
        });
    }

    /// A write waits for the client to read.
    fn write_blocked(&self) {
        self.update(|state| {
            state.write_blocked_since.get_or_insert_with(Instant::now);
        });
    }

    /// A number for a new response body.
    fn body_started(&self) -> u64 {
        let mut state = self.state();
        state.next_body += 1;
        state.next_body
    }

    /// Response body `body` handed hyper a frame (`Some(since)`: it waits for hyper to come back for
    /// the next), or hyper came back, or the body ended (`None`).
    fn body_waiting(&self, body: u64, since: Option<Instant>, was: Option<Instant>) {
        self.update(|state| {
            if let Some(was) = was {
                state.bodies_waiting.remove(&(was, body));
            }
            if let Some(since) = since {
                state.bodies_waiting.insert((since, body));
            }
        });
    }

    fn request_started(&self) {
        self.update(|state| {
            state.in_flight += 1;
            state.awaiting_headers_since = None;
        });
    }

    fn request_finished(&self) {
        self.update(|state| {
            state.in_flight = state.in_flight.saturating_sub(1);
            state.last_activity = state.last_activity.max(Instant::now());
        });
    }

    /// Completes when the connection's deadline passes.
    async fn expired(&self) {
        loop {
            let deadline = self.state().deadline(self.timeouts);
            match deadline {
                None => self.changed.notified().await,
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {
                            let now = Instant::now();
                            if self.state().deadline(self.timeouts).is_some_and(|deadline| deadline <= now) {
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

/// A response body that keeps its request in flight until it is sent or dropped, and tells the
/// tracker when it has handed hyper a frame and hyper has not come back for the next: hyper is then
/// waiting for the client (to read from the socket, or over HTTP/2 to grant flow-control window, which
/// no socket write ever shows).
struct TrackedBody {
    inner: axum::body::Body,
    id: u64,
    waiting_since: Option<Instant>,
    in_flight: InFlight,
}

impl TrackedBody {
    fn new(inner: axum::body::Body, in_flight: InFlight) -> Self {
        Self {
            inner,
            id: in_flight.0.body_started(),
            waiting_since: None,
            in_flight,
        }
    }

    fn set_waiting(&mut self, since: Option<Instant>) {
        if since != self.waiting_since {
            self.in_flight.0.body_waiting(self.id, since, self.waiting_since);
            self.waiting_since = since;
        }
    }
}

impl HttpBody for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        // A frame handed over: hyper comes back once it has sent it. Pending: the body is what waits.
        let waiting = matches!(polled, Poll::Ready(Some(Ok(_)))) && !self.inner.is_end_stream();
        self.set_waiting(waiting.then(Instant::now));
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        self.set_waiting(None);
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

impl WatchedStream {
    /// Tells the tracker how a write went.
    fn watch_write(&self, polled: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match &polled {
            Poll::Ready(Ok(written)) if *written > 0 => self.tracker.bytes_written(),
            Poll::Pending => self.tracker.write_blocked(),
            _ => {}
        }
        polled
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch_write(polled)
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
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch_write(polled)
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

    const TIMEOUTS: Timeouts = Timeouts {
        header_read: Duration::from_secs(10),
        keep_alive: Duration::from_secs(5),
        send: Duration::from_secs(30),
    };

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_expires_after_the_header_timeout() {
        let tracker = Tracker::new(TIMEOUTS);
        let started = Instant::now();
        tracker.expired().await;
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_of_a_first_request_do_not_extend_its_header_deadline() {
        let tracker = Arc::new(Tracker::new(TIMEOUTS));
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
        let tracker = Arc::new(Tracker::new(TIMEOUTS));
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
        let tracker = Arc::new(Tracker::new(TIMEOUTS));
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

    #[tokio::test(start_paused = true)]
    async fn keep_alive_counts_from_the_last_byte_written_not_from_the_handover() {
        let tracker = Arc::new(Tracker::new(TIMEOUTS));
        let started = Instant::now();
        // The response is handed over at once; hyper then drains its buffer for 20 s, a write a second.
        drop(InFlight::start(tracker.clone()));
        let writer = tokio::spawn({
            let tracker = tracker.clone();
            async move {
                for _ in 0..20 {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    tracker.bytes_written();
                }
            }
        });
        tracker.expired().await;
        assert_eq!(started.elapsed(), Duration::from_secs(25));
        writer.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_is_closed_after_the_send_timeout_even_mid_request() {
        let tracker = Arc::new(Tracker::new(TIMEOUTS));
        let _request = InFlight::start(tracker.clone());
        tokio::time::sleep(Duration::from_secs(100)).await;
        tracker.bytes_written();
        let blocked = Instant::now();
        tracker.write_blocked();
        // Further blocked polls do not move the deadline.
        tokio::time::sleep(Duration::from_secs(10)).await;
        tracker.write_blocked();
        tracker.expired().await;
        assert_eq!(blocked.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_goes_through_ends_the_stall() {
        let tracker = Arc::new(Tracker::new(TIMEOUTS));
        let _request = InFlight::start(tracker.clone());
        tracker.write_blocked();
        tokio::time::sleep(Duration::from_secs(29)).await;
        tracker.bytes_written();
        let watchdog = tokio::spawn({
            let tracker = tracker.clone();
            async move { tracker.expired().await }
        });
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert!(!watchdog.is_finished(), "in flight and writing: no deadline");
        watchdog.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_response_hyper_never_comes_back_for_stalls_unless_bytes_are_written() {
        let tracker = Arc::new(Tracker::new(TIMEOUTS));
        let _request = InFlight::start(tracker.clone());
        let body = tracker.body_started();
        // A frame handed over; hyper then writes for 20 s (a large frame to a slow reader) …
        let handed = Instant::now();
        tracker.body_waiting(body, Some(handed), None);
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            tracker.bytes_written();
        }
        // … and then nothing (HTTP/2 with no window): closed the send timeout after the last write.
        let last = Instant::now();
        tracker.expired().await;
        assert_eq!(last.elapsed(), Duration::from_secs(30));
        // Once hyper comes back, the body no longer waits.
        tracker.body_waiting(body, None, Some(handed));
        assert!(tracker.state().bodies_waiting.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_write_does_not_outlive_a_sooner_idle_deadline() {
        let tracker = Tracker::new(TIMEOUTS);
        let started = Instant::now();
        // No request yet (an HTTP/2 preface and pings, say), and its writes block.
        tracker.write_blocked();
        tracker.expired().await;
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(10),
            "the header timeout, not the send timeout"
        );
    }
}
