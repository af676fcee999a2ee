//! A loopback HTTP server that can be stopped hard (listener closed, open
//! connections reset) and started again on the same port, as a real service
//! that goes down and comes back.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use axum::Router;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Locks a mutex, ignoring poisoning: a test that panicked while holding the
/// lock has already failed, and the data (plain records) stays usable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

type Conns = Arc<Mutex<HashMap<u64, std::net::TcpStream>>>;

struct Running {
    task: JoinHandle<()>,
    conns: Conns,
}

/// Owns the listening socket of one double.
pub(crate) struct Server {
    port: u16,
    router: Router,
    /// Woken when the server stops, so that handlers parked forever
    /// (`Hang` faults) give up instead of leaking.
    pub(crate) stopped: Arc<Notify>,
    running: Mutex<Option<Running>>,
}

impl Server {
    /// Binds `127.0.0.1:port` (0 = any free port) and starts serving `router`.
    pub(crate) async fn start(router: Router, port: u16, stopped: Arc<Notify>) -> io::Result<Self> {
        let (running, port) = spawn(router.clone(), port).await?;
        Ok(Self {
            port,
            router,
            stopped,
            running: Mutex::new(Some(running)),
        })
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Closes the listening socket (new connections are refused) and resets
    /// every open connection (requests in flight fail on the client side).
    /// Idempotent.
    pub(crate) async fn stop(&self) {
        let running = lock(&self.running).take();
        if let Some(running) = running {
            running.task.abort();
            // Awaiting guarantees the listener has been dropped (port closed).
            let _ = running.task.await;
            for (_, conn) in lock(&running.conns).drain() {
                let _ = conn.shutdown(Shutdown::Both);
            }
            self.stopped.notify_waiters();
        }
    }

    /// Starts serving again on the same port. No-op when already running.
    pub(crate) async fn restart(&self) -> io::Result<()> {
        if lock(&self.running).is_some() {
            return Ok(());
        }
        let (running, _) = spawn(self.router.clone(), self.port).await?;
        let mut slot = lock(&self.running);
        if slot.is_none() {
            *slot = Some(running);
        } else {
            running.task.abort();
        }
        Ok(())
    }
}

impl Drop for Server {
    /// The last handle gone: stop serving rather than leak the task.
    fn drop(&mut self) {
        if let Some(running) = lock(&self.running).take() {
            running.task.abort();
            for (_, conn) in lock(&running.conns).drain() {
                let _ = conn.shutdown(Shutdown::Both);
            }
            self.stopped.notify_waiters();
        }
    }
}

async fn spawn(router: Router, port: u16) -> io::Result<(Running, u16)> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
    let listener = socket.listen(1024)?;
    let port = listener.local_addr()?.port();
    let conns: Conns = Arc::default();
    let listener = Tracked {
        inner: listener,
        conns: Arc::clone(&conns),
        next_id: AtomicU64::new(0),
    };
    let task = tokio::spawn(async move {
        // `serve` only returns on a listener error, which `Tracked` never reports.
        let _ = axum::serve(listener, router).await;
    });
    Ok((Running { task, conns }, port))
}

/// A listener that keeps a duplicate handle of every accepted socket so that
/// `stop` can shut them down.
struct Tracked {
    inner: TcpListener,
    conns: Conns,
    next_id: AtomicU64,
}

impl axum::serve::Listener for Tracked {
    type Io = TrackedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = match self.inner.accept().await {
                Ok(pair) => pair,
                Err(_) => {
                    // Typically EMFILE: back off instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let Ok(std_stream) = stream.into_std() else {
                continue;
            };
            let Ok(dup) = std_stream.try_clone() else {
                continue;
            };
            let Ok(stream) = TcpStream::from_std(std_stream) else {
                continue;
            };
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            lock(&self.conns).insert(id, dup);
            let io = TrackedStream {
                inner: stream,
                id,
                conns: Arc::clone(&self.conns),
            };
            return (io, addr);
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A TCP stream that forgets its duplicate handle when dropped.
pub(crate) struct TrackedStream {
    inner: TcpStream,
    id: u64,
    conns: Conns,
}

impl Drop for TrackedStream {
    fn drop(&mut self) {
        lock(&self.conns).remove(&self.id);
    }
}

impl AsyncRead for TrackedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TrackedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Parses `application/x-www-form-urlencoded` (also used for query strings).
pub(crate) fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        let got = parse_form("channel=C1&text=a+b%20c%26d&x=%zz&y=%4");
        assert_eq!(
            got,
            vec![
                ("channel".into(), "C1".into()),
                ("text".into(), "a b c&d".into()),
                ("x".into(), "%zz".into()),
                ("y".into(), "%4".into()),
            ]
        );
    }
}
