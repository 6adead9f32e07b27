//! A connection's watchdog: the deadlines it keeps (headers, keep-alive, a client that stops reading),
//! and the request bodies, response bodies and socket it watches to know them.

use hyper::body::{Body as HttpBody, Frame, SizeHint};
use std::{
    io,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::Notify,
    time::Instant,
};

/// The deadlines a connection's watchdog keeps.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    pub(super) header_read: Duration,
    pub(super) keep_alive: Duration,
    pub(super) send: Duration,
}

/// A connection's state, as its watchdog sees it.
#[derive(Debug)]
pub(super) struct Tracker {
    pub(super) state: Mutex<TrackerState>,
    changed: Notify,
    timeouts: Timeouts,
}

#[derive(Debug)]
pub(super) struct TrackerState {
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
    pub(super) bodies_waiting: std::collections::BTreeSet<(Instant, u64)>,
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
    pub(super) fn new(timeouts: Timeouts) -> Self {
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

    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, TrackerState> {
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
    pub(super) fn bytes_arrived(&self) {
        self.update(|state| {
            if state.in_flight == 0 && state.awaiting_headers_since.is_none() {
                state.awaiting_headers_since = Some(Instant::now());
            }
        });
    }

    /// Bytes were written to the client.
    pub(super) fn bytes_written(&self) {
        self.update(|state| {
            let now = Instant::now();
            state.write_blocked_since = None;
            state.last_activity = now;
            state.last_write = now;
        });
    }

    /// A write waits for the client to read.
    pub(super) fn write_blocked(&self) {
        self.update(|state| {
            state.write_blocked_since.get_or_insert_with(Instant::now);
        });
    }

    /// A number for a new response body.
    pub(super) fn body_started(&self) -> u64 {
        let mut state = self.state();
        state.next_body += 1;
        state.next_body
    }

    /// Response body `body` handed hyper a frame (`Some(since)`: it waits for hyper to come back for
    /// the next), or hyper came back, or the body ended (`None`).
    pub(super) fn body_waiting(&self, body: u64, since: Option<Instant>, was: Option<Instant>) {
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
    pub(super) async fn expired(&self) {
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
pub(super) struct InFlight(Arc<Tracker>);

impl InFlight {
    pub(super) fn start(tracker: Arc<Tracker>) -> Self {
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
pub(super) struct TrackedBody {
    inner: axum::body::Body,
    id: u64,
    waiting_since: Option<Instant>,
    in_flight: InFlight,
}

impl TrackedBody {
    pub(super) fn new(inner: axum::body::Body, in_flight: InFlight) -> Self {
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
pub(super) struct WatchedStream {
    pub(super) inner: TcpStream,
    pub(super) tracker: Arc<Tracker>,
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
