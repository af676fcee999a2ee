//! The server held in hand: prpr's own `app::run` and intake router on a
//! listener the test bound, stopped by a future the test owns, and — where no
//! database work happens while time is frozen — tokio's clock paused, so a
//! timeout measured in seconds passes in microseconds and is asserted exactly.
//!
//! Why not everything paused: the SQLite driver answers from its own worker
//! thread, which tokio's auto-advance cannot see, so a paused clock could
//! jump past a pool timeout while a query is merely running. Paused-clock
//! tests therefore open the store first and freeze time only around code that
//! does not touch it (the body timeout, the rate limiter and backoff in their
//! unit tests).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure with its message

use std::sync::Arc;
use std::time::Duration;

use prpr::clock::Clock;
use prpr::config::{Config, NotifyConfig, Secret};
use prpr::intake::{self, Intake, signature::Verifier};
use prpr::store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn sqlite_store(dir: &tempfile::TempDir) -> Arc<Store> {
    let url = format!("sqlite://{}", dir.path().join("prpr.db").display());
    Arc::new(Store::connect(&url).await.expect("open SQLite"))
}

/// Sends `request` on a fresh connection and reads the whole answer.
async fn exchange(addr: std::net::SocketAddr, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), tcp.read_to_end(&mut reply))
        .await
        .expect("an answer")
        .expect("read");
    String::from_utf8_lossy(&reply).into_owned()
}

/// The intake's shared state with defaults, a signing secret and a fresh
/// SQLite file in `dir`: what the router needs, without the rest of the app.
async fn intake_on(dir: &tempfile::TempDir) -> Arc<Intake> {
    Arc::new(Intake {
        store: sqlite_store(dir).await,
        notify: Arc::new(NotifyConfig::default()),
        ops: Arc::new(Default::default()),
        verifier: Some(Verifier::new(Secret::new("s3cret"), false)),
        wake: Arc::new(tokio::sync::Notify::new()),
        clock: Clock::system(),
        guards: Default::default(),
        health: Default::default(),
        commands: None,
    })
}

#[tokio::test]
async fn a_trickled_body_gets_408_after_exactly_15_s() {
    let dir = tempfile::tempdir().unwrap();
    let intake = intake_on(&dir).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, intake::router(intake)).await });

    tokio::time::pause();
    let start = tokio::time::Instant::now();
    // 100 bytes announced, 5 sent, the rest never comes.
    let reply = exchange(
        addr,
        "POST /webhook HTTP/1.1\r\nhost: prpr\r\ncontent-type: application/json\r\nx-github-event: push\r\nx-github-delivery: slow-1\r\nx-hub-signature-256: sha256=0000000000000000000000000000000000000000000000000000000000000000\r\ncontent-length: 100\r\nconnection: close\r\n\r\n{\"a\":",
    )
    .await;
    let waited = start.elapsed();
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(
        reply.ends_with(r#"{"error":"request body not received within 15 s"}"#),
        "{reply}"
    );
    assert!(
        (Duration::from_secs(15)..Duration::from_secs(16)).contains(&waited),
        "answered after {waited:?} of clock time"
    );
}

#[tokio::test]
async fn run_serves_on_the_given_listener_and_returns_when_shutdown_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        database: prpr::config::DatabaseConfig {
            url: format!("sqlite://{}", dir.path().join("prpr.db").display()),
        },
        github: prpr::config::GithubConfig {
            webhook_secret: Some(Secret::new("s3cret")),
            ..Default::default()
        },
        ..Config::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(prpr::app::run(
        cfg,
        Default::default(),
        listener,
        async move {
            let _ = stopped.await;
        },
        Clock::system(),
    ));

    let reply = exchange(
        addr,
        "GET /readyz HTTP/1.1\r\nhost: prpr\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with(r#"{"status":"ready"}"#), "{reply}");

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("run returned after shutdown")
        .expect("the server task did not panic")
        .expect("a clean shutdown");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed after shutdown"
    );
}

/// prpr's server loop on a listener the test bound, serving the real router.
async fn limited_server(limits: prpr::server::Limits) -> (std::net::SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let intake = intake_on(&dir).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(prpr::server::serve(
        listener,
        intake::router(intake),
        limits,
        std::future::pending(),
    ));
    (addr, dir)
}

/// Reads until the server closes the connection; what it sent.
async fn until_closed(tcp: &mut TcpStream) -> String {
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(600), tcp.read_to_end(&mut got))
        .await
        .expect("closed by the server")
        .expect("read");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn headers_must_arrive_within_10_s() {
    let (addr, _dir) = limited_server(Default::default()).await;
    tokio::time::pause();
    // Half a request head, then nothing: dropped 10 s after it began.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let start = tokio::time::Instant::now();
    slow.write_all(b"POST /webhook HTTP/1.1\r\nhost: prpr\r\n")
        .await
        .unwrap();
    assert_eq!(until_closed(&mut slow).await, "");
    let waited = start.elapsed();
    assert!(
        (Duration::from_secs(10)..Duration::from_secs(11)).contains(&waited),
        "closed after {waited:?}"
    );
    // A connection that never says anything is held no longer.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let start = tokio::time::Instant::now();
    assert_eq!(until_closed(&mut silent).await, "");
    assert!(start.elapsed() < Duration::from_secs(11));
}

#[tokio::test]
async fn idle_keep_alive_connections_close_after_75_s_not_before() {
    let (addr, _dir) = limited_server(Default::default()).await;
    tokio::time::pause();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let ask = b"GET /healthz HTTP/1.1\r\nhost: prpr\r\n\r\n";
    tcp.write_all(ask).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tcp.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).ends_with(r#"{"status":"ok"}"#));
    // Idle for 60 s (the ALB's idle timeout): still open, and usable.
    tokio::time::sleep(Duration::from_secs(60)).await;
    tcp.write_all(ask).await.unwrap();
    let n = tcp.read(&mut buf).await.unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).ends_with(r#"{"status":"ok"}"#),
        "a keep-alive connection idle for 60 s is still served"
    );
    let idle_from = tokio::time::Instant::now();
    assert_eq!(until_closed(&mut tcp).await, "");
    let idle = idle_from.elapsed();
    assert!(
        (Duration::from_secs(75)..Duration::from_secs(76)).contains(&idle),
        "closed after {idle:?} idle"
    );
}
