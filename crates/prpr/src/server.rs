//! The HTTP server loop: accepting connections within a cap, and closing
//! those that are too slow to say what they want or have gone quiet.
//!
//! Why not `axum::serve`: it has no header-read or idle timeout and no cap on
//! connections. 2,000 clients sending headers at one byte a second once held
//! prpr's 1,024 file descriptors and made it unreachable, with nothing logged.
//! hyper's own `header_read_timeout` also runs while a keep-alive connection
//! waits for its next request, so it would close idle connections after the
//! header timeout — sooner than the ALB's 60 s idle timeout, and the ALB would
//! then send requests on connections prpr is closing (502s). So both clocks
//! are kept here, per connection, from what its socket and service see:
//!
//! - from accepting a connection, or from the first byte of a request after
//!   the previous one was answered, the request's headers must arrive within
//!   [`Limits::header_timeout`] (10 s), or the connection is dropped;
//! - with no request in flight, a connection that has been silent for
//!   [`Limits::idle_timeout`] (75 s, longer than the ALB's 60 s, so the ALB
//!   always gives up on a connection first) is closed.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;
use tower_service::Service;

/// The server's limits; `Default` is production's.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    /// Open connections at most; more wait in the kernel's listen queue.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            max_connections: default_max_connections(),
        }
    }
}

/// Descriptors kept free for the database, Slack, logs and the listener.
const RESERVED_FDS: u64 = 100;

/// The soft limit on open files less [`RESERVED_FDS`] (at least 16), or 1,000
/// where the limit cannot be read.
pub fn default_max_connections() -> usize {
    match open_files_limit() {
        Some(n) => n.saturating_sub(RESERVED_FDS).max(16) as usize,
        None => 1_000,
    }
}

/// The soft `RLIMIT_NOFILE`, from `/proc/self/limits` (Linux): no unsafe
/// `getrlimit` call for one number.
pub fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets open
/// connections finish their requests and returns when all are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Above the JSON 431 of `intake::guard`, so that one answers first.
    builder.http1().max_headers(256);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    // At most one line per 10 s, with how often the cap was hit since: under
    // a connection flood the cap is hit at the rate connections time out.
    let mut last_logged: Option<Instant> = None;
    let mut hits_since = 0u64;
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                hits_since += 1;
                if last_logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    tracing::warn!(
                        max_connections = max,
                        times = hits_since,
                        "connection limit reached: new connections wait in the listen queue until one closes"
                    );
                    last_logged = Some(Instant::now());
                    hits_since = 0;
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                    _ = &mut shutdown => break,
                }
            }
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors (EMFILE) or a connection reset before
                    // it was accepted: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let router = router.clone();
        let builder = builder.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            connection(tcp, peer, router, &builder, limits, stop).await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it is closed.
    let _ = slots.acquire_many(max as u32).await;
}

/// What one connection's clocks are measured from.
struct Activity {
    state: Mutex<ActivityState>,
    /// Wakes the watchdog when a deadline may have moved earlier.
    changed: Notify,
}

struct ActivityState {
    /// Last byte read or written.
    last: Instant,
    /// When the request whose headers are awaited began (accept, or its
    /// first byte); `None` while a request is in flight or none has begun.
    head_since: Option<Instant>,
    in_flight: usize,
}

impl Activity {
    fn lock(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) {
        let now = Instant::now();
        let mut s = self.lock();
        s.last = now;
        if s.in_flight == 0 && s.head_since.is_none() {
            s.head_since = Some(now);
            drop(s);
            self.changed.notify_one();
        }
    }

    fn wrote(&self) {
        self.lock().last = Instant::now();
    }

    fn request_started(self: &Arc<Self>) -> InFlight {
        let mut s = self.lock();
        s.head_since = None;
        s.in_flight += 1;
        InFlight(self.clone())
    }

    /// The next moment to look again, and whether the connection must go now.
    fn check(&self, limits: &Limits) -> (Instant, Option<Expired>) {
        let now = Instant::now();
        let s = self.lock();
        if let Some(since) = s.head_since {
            let at = since + limits.header_timeout;
            return (at, (now >= at).then_some(Expired::Headers));
        }
        if s.in_flight == 0 {
            let at = s.last + limits.idle_timeout;
            return (at, (now >= at).then_some(Expired::Idle));
        }
        (now + limits.idle_timeout, None)
    }
}

enum Expired {
    Headers,
    Idle,
}

/// A request being served; ends the in-flight count when dropped.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        s.last = Instant::now();
        drop(s);
        self.0.changed.notify_one();
    }
}

/// The socket, telling [`Activity`] when bytes move.
struct Tracked {
    tcp: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
    }
    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    router: Router,
    builder: &auto::Builder<TokioExecutor>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    let activity = Arc::new(Activity {
        state: Mutex::new(ActivityState {
            last: Instant::now(),
            head_since: Some(Instant::now()),
            in_flight: 0,
        }),
        changed: Notify::new(),
    });
    let io = TokioIo::new(Tracked {
        tcp,
        activity: activity.clone(),
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let in_flight = activity.request_started();
            let mut router = router.clone();
            async move {
                let response = router.call(req).await;
                drop(in_flight);
                response
            }
        })
    };
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = *stop.borrow();
    if stopping {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        let (next, expired) = activity.check(&limits);
        match expired {
            Some(Expired::Headers) => {
                tracing::debug!(%peer, "closing a connection: request headers not received in time");
                return;
            }
            Some(Expired::Idle) => {
                conn.as_mut().graceful_shutdown();
                // An idle connection has nothing to finish.
                let _ = tokio::time::timeout(limits.header_timeout, conn.as_mut()).await;
                return;
            }
            None => {}
        }
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = tokio::time::sleep_until(next) => {}
            _ = activity.changed.notified() => {}
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}
