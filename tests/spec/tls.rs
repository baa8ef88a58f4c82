//! TLS (`TLS_CERT_FILE`, `TLS_KEY_FILE`): with both set the port speaks only TLS. `wss://`
//! and `https://` serve what `ws://` and `http://` do, a plain client is refused at once,
//! a stalled handshake is dropped after `HANDSHAKE_TIMEOUT_MS`, only `http/1.1` is offered
//! in ALPN, and a certificate renewed on disk reaches new connections (within 10 s, or at
//! once on SIGHUP) while open ones carry on. Files that do not load stop the start naming
//! the variable; a bad renewal keeps the certificate in service.
//!
//! Every test issues its own certificates (`rcgen`) from a throwaway authority that its
//! clients trust, and nothing else.

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use futures_util::SinkExt;
use hubbub::{config::TlsFiles, tls::TlsReloadError};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SerialNumber};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_rustls::{
    client::TlsStream,
    rustls::{
        pki_types::{CertificateDer, ServerName},
        ClientConfig, RootCertStore,
    },
    TlsConnector,
};
use tokio_tungstenite::{tungstenite::Message, Connector, MaybeTlsStream};

use crate::{
    config::{assert_refused, Binary},
    helpers::{spawn_app, spawn_app_with, Client, TestApp, DEADLINE},
};

/// The promise: a certificate renewed on disk is served within this long.
const RENEWAL_PROMISE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Certificates and clients
// ---------------------------------------------------------------------------------------

/// A throwaway certificate authority: the only root the tests' clients trust.
struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate and its key, as PEM files hold them.
struct Issued {
    /// The leaf, then the authority: a chain file, as certbot's `fullchain.pem` is.
    chain_pem: String,
    key_pem: String,
    /// The leaf alone, to tell which certificate a connection got.
    leaf: CertificateDer<'static>,
}

impl Authority {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        Self {
            issuer: CertifiedIssuer::self_signed(params, key).unwrap(),
        }
    }

    /// A certificate for `127.0.0.1` and `localhost` with a fresh key and serial `serial`.
    fn issue(&self, serial: u64) -> Issued {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params.serial_number = Some(SerialNumber::from(serial));
        let key = KeyPair::generate().unwrap();
        let leaf = params.signed_by(&key, &self.issuer).unwrap();
        Issued {
            chain_pem: format!("{}{}", leaf.pem(), self.issuer.pem()),
            key_pem: key.serialize_pem(),
            leaf: leaf.der().clone(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A client config trusting this authority only, offering `alpn` (none if empty).
    fn client_config(&self, alpn: &[&[u8]]) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
        Arc::new(config)
    }
}

/// A directory of its own for a test's certificate files, removed at the end.
struct CertDir {
    path: PathBuf,
}

impl CertDir {
    fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "hubbub-tls-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self { path }
    }

    fn cert(&self) -> PathBuf {
        self.path.join("fullchain.pem")
    }

    fn key(&self) -> PathBuf {
        self.path.join("key.pem")
    }

    fn files(&self) -> TlsFiles {
        TlsFiles {
            cert: self.cert(),
            key: self.key(),
        }
    }

    /// Writes `issued` over the files in place (as `cp` would), the key first.
    fn write(&self, issued: &Issued) {
        std::fs::write(self.key(), &issued.key_pem).unwrap();
        std::fs::write(self.cert(), &issued.chain_pem).unwrap();
    }

    fn vars(&self) -> [(&'static str, String); 2] {
        [
            ("TLS_CERT_FILE", path_text(&self.cert())),
            ("TLS_KEY_FILE", path_text(&self.key())),
        ]
    }
}

impl Drop for CertDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn path_text(path: &Path) -> String {
    path.to_str().expect("a UTF-8 temp path").to_string()
}

/// A TLS server (two workers, as every test server) serving `issued` from `dir`.
async fn spawn_tls_app(
    dir: &CertDir,
    issued: &Issued,
    adjust: impl FnOnce(&mut hubbub::config::Config),
) -> TestApp {
    dir.write(issued);
    let files = dir.files();
    spawn_app_with(move |c| {
        c.tls = Some(files);
        adjust(c);
    })
    .await
}

/// A finished TLS handshake with the server on `port`.
async fn tls_connect(port: u16, config: Arc<ClientConfig>) -> TlsStream<TcpStream> {
    let tcp = tokio::time::timeout(DEADLINE, TcpStream::connect(("127.0.0.1", port)))
        .await
        .expect("TCP connect in time")
        .expect("TCP connect");
    let name = ServerName::try_from("127.0.0.1").unwrap();
    tokio::time::timeout(DEADLINE, TlsConnector::from(config).connect(name, tcp))
        .await
        .expect("TLS handshake in time")
        .expect("TLS handshake")
}

/// The certificate a new connection to `port` is served.
async fn served_leaf(port: u16, authority: &Authority) -> CertificateDer<'static> {
    let tls = tls_connect(port, authority.client_config(&[b"http/1.1"])).await;
    let chain = tls.get_ref().1.peer_certificates().expect("a certificate");
    chain[0].clone().into_owned()
}

/// Opens new connections until one is served `expected`; how long that took.
async fn wait_until_served(
    port: u16,
    authority: &Authority,
    expected: &Issued,
    what: &str,
) -> Duration {
    let started = Instant::now();
    loop {
        if served_leaf(port, authority).await == expected.leaf {
            return started.elapsed();
        }
        assert!(started.elapsed() < DEADLINE, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `wss://` client of `path_and_query` on `port`, trusting `authority`.
async fn open_wss(port: u16, authority: &Authority, path_and_query: &str) -> Client {
    let url = format!("wss://127.0.0.1:{port}{path_and_query}");
    let connector = Connector::Rustls(authority.client_config(&[]));
    let (socket, _) = tokio::time::timeout(
        DEADLINE,
        tokio_tungstenite::connect_async_tls_with_config(url, None, false, Some(connector)),
    )
    .await
    .expect("wss handshake in time")
    .expect("wss handshake");
    Client {
        socket,
        id: String::new(),
        name: String::new(),
        welcome: Value::Null,
    }
}

/// The certificate an open `wss://` client was served at its handshake.
fn leaf_of(client: &Client) -> CertificateDer<'static> {
    let MaybeTlsStream::Rustls(tls) = client.socket.get_ref() else {
        panic!("not a TLS client");
    };
    tls.get_ref().1.peer_certificates().expect("a certificate")[0]
        .clone()
        .into_owned()
}

/// `/echo` over `client` still answers, byte-exact.
async fn assert_echoes(client: &mut Client, text: &str) {
    client.send_message(Message::text(text)).await;
    assert_eq!(client.next_message().await, Message::Text(text.to_string()));
}

/// An HTTPS client trusting `authority` only.
fn https_client(authority: &Authority) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(authority.pem().as_bytes()).unwrap())
        .build()
        .unwrap()
}

/// Reads until the server ends the connection: when it did, or `None` if it did not
/// within the deadline.
async fn ended_after(stream: &mut TcpStream, started: Instant) -> Option<Duration> {
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(started + DEADLINE),
            stream.read(&mut buffer),
        )
        .await
        {
            Err(_) => return None,
            // An alert or nothing: the server is done with us either way once it closes.
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

// ---------------------------------------------------------------------------------------
// What wss:// and https:// serve
// ---------------------------------------------------------------------------------------

#[actix_web::test]
async fn wss_echo_returns_text_and_binary_byte_exact() {
    let authority = Authority::new();
    let dir = CertDir::new();
    let app = spawn_tls_app(&dir, &authority.issue(1), |_| {}).await;
    let mut client = open_wss(app.port, &authority, "/echo").await;

    for text in ["hello", "héllo wörld — ☃ 𝄞 日本語 🦀", ""] {
        assert_echoes(&mut client, text).await;
    }
    // Every byte value, and a message spanning several TLS records (16 KiB each).
    let every_byte: Vec<u8> = (0..=255u8).collect();
    let large: Vec<u8> = (0..60_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    for payload in [every_byte, large] {
        client.send_message(Message::Binary(payload.clone())).await;
        assert_eq!(client.next_message().await, Message::Binary(payload));
    }
    client.close().await;
}

#[actix_web::test]
async fn a_ws_session_over_wss_is_welcomed_joins_and_hears_a_say() {
    let authority = Authority::new();
    let dir = CertDir::new();
    let app = spawn_tls_app(&dir, &authority.issue(1), |_| {}).await;
    let mut ann = open_wss(app.port, &authority, "/ws?name=ann").await;
    let welcome = ann.expect("welcome").await;
    assert_eq!(welcome["name"], "ann");
    let mut bob = open_wss(app.port, &authority, "/ws?name=bob").await;
    bob.expect("welcome").await;

    ann.send(json!({"type": "join", "room": "lobby"})).await;
    ann.expect("joined").await;
    bob.send(json!({"type": "join", "room": "lobby"})).await;
    bob.expect("joined").await;
    ann.expect("member_joined").await;
    bob.send(json!({"type": "say", "room": "lobby", "text": "over TLS"}))
        .await;
    for client in [&mut ann, &mut bob] {
        let message = client.expect("message").await;
        assert_eq!(message["text"], "over TLS", "{message}");
        assert_eq!(message["from"]["name"], "bob", "{message}");
    }
}

#[actix_web::test]
async fn the_http_api_answers_over_https() {
    let authority = Authority::new();
    let dir = CertDir::new();
    let app = spawn_tls_app(&dir, &authority.issue(1), |_| {}).await;
    let mut member = open_wss(app.port, &authority, "/ws?name=ann&room=lobby").await;
    member.expect("welcome").await;
    member.expect("joined").await;

    let https = https_client(&authority);
    let url = |path: &str| format!("https://127.0.0.1:{}{path}", app.port);
    let response = tokio::time::timeout(DEADLINE, https.get(url("/api/rooms")).send())
        .await
        .expect("HTTPS response in time")
        .expect("HTTPS request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    let body: Value = response.json().await.unwrap();
    let rooms = body["rooms"].as_array().expect("a rooms list");
    assert!(
        rooms.iter().any(|room| room["name"] == "lobby"),
        "lobby is listed: {body}"
    );
    let health = tokio::time::timeout(DEADLINE, https.get(url("/healthz")).send())
        .await
        .expect("HTTPS response in time")
        .expect("HTTPS request");
    assert_eq!(health.status(), 200);
}

#[actix_web::test]
async fn only_http_1_1_is_offered_in_alpn_so_websocket_clients_that_offer_h2_still_upgrade() {
    let authority = Authority::new();
    let dir = CertDir::new();
    let app = spawn_tls_app(&dir, &authority.issue(1), |_| {}).await;
    // What browsers and HTTP/2-capable libraries offer: h2 would win if the server had it,
    // and a WebSocket cannot be upgraded over HTTP/2.
    let tls = tls_connect(app.port, authority.client_config(&[b"h2", b"http/1.1"])).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));

    // Upgraded over that very connection.
    let url = format!("wss://127.0.0.1:{}/echo", app.port);
    let (socket, response) = tokio::time::timeout(
        DEADLINE,
        tokio_tungstenite::client_async(url, MaybeTlsStream::Rustls(tls)),
    )
    .await
    .expect("upgrade in time")
    .expect("upgrade");
    assert_eq!(response.status(), 101);
    let mut client = Client {
        socket,
        id: String::new(),
        name: String::new(),
        welcome: Value::Null,
    };
    assert_echoes(&mut client, "negotiated http/1.1").await;
}

// ---------------------------------------------------------------------------------------
// Clients that do not finish a TLS handshake
// ---------------------------------------------------------------------------------------

#[actix_web::test]
async fn a_plain_ws_or_http_client_is_refused_at_once_not_left_hanging() {
    let authority = Authority::new();
    let dir = CertDir::new();
    // A handshake timeout past the deadline: an answer in time is the server refusing
    // the plain bytes, not the timeout.
    let app = spawn_tls_app(&dir, &authority.issue(1), |c| {
        c.handshake_timeout = DEADLINE * 4;
    })
    .await;

    let plain_ws = tokio::time::timeout(
        DEADLINE,
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws", app.port)),
    )
    .await
    .expect("the plain ws:// client got an answer instead of hanging");
    assert!(
        plain_ws.is_err(),
        "a ws:// upgrade on the TLS port succeeded"
    );

    let plain_http = tokio::time::timeout(DEADLINE, app.http.get(app.url("/healthz")).send())
        .await
        .expect("the plain http:// client got an answer instead of hanging");
    assert!(
        plain_http.is_err(),
        "plain HTTP was served on the TLS port: {plain_http:?}"
    );

    // The raw view: the server ends the connection on its own, soon.
    let mut raw = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let started = Instant::now();
    raw.write_all(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\r\n")
        .await
        .unwrap();
    ended_after(&mut raw, started)
        .await
        .expect("the server closed the plain connection");

    // And TLS clients are still served.
    let mut client = open_wss(app.port, &authority, "/echo").await;
    assert_echoes(&mut client, "still served").await;
}

#[actix_web::test]
async fn a_stalled_tls_handshake_is_dropped_after_the_handshake_timeout() {
    let authority = Authority::new();
    let dir = CertDir::new();
    let timeout = Duration::from_millis(1_000);
    let app = spawn_tls_app(&dir, &authority.issue(1), |c| c.handshake_timeout = timeout).await;
    // Slack for a loaded 2-core machine; what matters is that the drop comes at all and
    // from the timeout, not seconds later or never.
    let allowed = timeout * 3;

    // A record header announcing a 512-byte ClientHello, then only its first bytes.
    let partial_client_hello: &[u8] = &[
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    for (what, sent) in [
        ("silent", &[][..]),
        ("partial ClientHello", partial_client_hello),
    ] {
        let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
        let started = Instant::now();
        stream.write_all(sent).await.unwrap();
        let ended = ended_after(&mut stream, started)
            .await
            .unwrap_or_else(|| panic!("the {what} handshake was never dropped"));
        assert!(
            ended >= timeout.mul_f32(0.9),
            "the {what} handshake was dropped after {ended:?}, before the timeout ({timeout:?})"
        );
        assert!(
            ended < allowed,
            "the {what} handshake was dropped after {ended:?}; allowed {allowed:?}"
        );
    }

    // A finished handshake and then no request: the request has the same timeout.
    let started = Instant::now();
    let mut tls = tls_connect(app.port, authority.client_config(&[])).await;
    let mut buffer = [0u8; 1024];
    let read = tokio::time::timeout(DEADLINE, tls.read(&mut buffer))
        .await
        .expect("the silent TLS connection was dropped");
    let ended = started.elapsed();
    assert!(
        matches!(read, Ok(0) | Err(_))
            || String::from_utf8_lossy(&buffer).starts_with("HTTP/1.1 408"),
        "a silent TLS connection got {read:?}"
    );
    assert!(ended < allowed + timeout, "dropped after {ended:?}");

    let mut client = open_wss(app.port, &authority, "/echo").await;
    assert_echoes(&mut client, "still served").await;
}

// ---------------------------------------------------------------------------------------
// Renewal
// ---------------------------------------------------------------------------------------

#[actix_web::test]
async fn a_renewed_certificate_reaches_new_connections_within_10_s_and_open_ones_go_on() {
    let authority = Authority::new();
    let dir = CertDir::new();
    let first = authority.issue(1);
    // The default poll interval: the promise is checked as shipped.
    let app = spawn_tls_app(&dir, &first, |_| {}).await;
    assert!(app.config.tls_reload_interval <= RENEWAL_PROMISE / 2);
    let mut echo = open_wss(app.port, &authority, "/echo").await;
    let mut member = open_wss(app.port, &authority, "/ws?name=ann&room=lobby").await;
    member.expect("welcome").await;
    member.expect("joined").await;
    assert_eq!(served_leaf(app.port, &authority).await, first.leaf);

    let renewed = authority.issue(2);
    dir.write(&renewed);
    let took = wait_until_served(
        app.port,
        &authority,
        &renewed,
        "the renewal was never served",
    )
    .await;
    assert!(
        took < RENEWAL_PROMISE,
        "the renewal took {took:?} to be served"
    );
    assert_eq!(app.controller.tls_status().unwrap().loaded, 2);

    // The connections opened before keep their session, and the certificate they got.
    assert_eq!(leaf_of(&echo), first.leaf);
    assert_echoes(&mut echo, "after the renewal").await;
    member
        .send(json!({"type": "say", "room": "lobby", "text": "still here"}))
        .await;
    assert_eq!(member.expect("message").await["text"], "still here");
    // And a new one gets the new certificate.
    let fresh = open_wss(app.port, &authority, "/echo").await;
    assert_eq!(leaf_of(&fresh), renewed.leaf);
}

#[actix_web::test]
async fn a_bad_renewal_keeps_the_certificate_in_service_and_reports_why() {
    let authority = Authority::new();
    let dir = CertDir::new();
    let first = authority.issue(1);
    let app = spawn_tls_app(&dir, &first, |c| {
        c.tls_reload_interval = Duration::from_millis(100);
    })
    .await;
    let mut echo = open_wss(app.port, &authority, "/echo").await;

    // Waits for the poller to report an error that mentions `needle`.
    let wait_for_error = |needle: &'static str| {
        let controller = app.controller.clone();
        async move {
            let started = Instant::now();
            loop {
                let status = controller.tls_status().unwrap();
                if status
                    .last_error
                    .as_deref()
                    .is_some_and(|err| err.contains(needle))
                {
                    return status;
                }
                assert!(
                    started.elapsed() < DEADLINE,
                    "no error about {needle}: {status:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let renewed = authority.issue(2);

    std::fs::write(dir.cert(), "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    let status = wait_for_error("TLS_CERT_FILE").await;
    assert_eq!(status.loaded, 1, "{status:?}");
    assert_eq!(served_leaf(app.port, &authority).await, first.leaf);

    // The new certificate with the old key: the pair does not match.
    std::fs::write(dir.cert(), &renewed.chain_pem).unwrap();
    wait_for_error("TLS_KEY_FILE").await;
    assert_eq!(served_leaf(app.port, &authority).await, first.leaf);
    // A reload asked for says the same, and changes nothing either.
    match app.controller.reload_tls().await {
        Err(TlsReloadError::Refused(err)) => assert_eq!(err.variable, "TLS_KEY_FILE", "{err}"),
        other => panic!("a mismatched pair was reloaded: {other:?}"),
    }

    // Gone altogether (a renewal tool that removes before it writes).
    std::fs::remove_file(dir.key()).unwrap();
    wait_for_error("cannot read").await;
    assert_eq!(served_leaf(app.port, &authority).await, first.leaf);
    assert_echoes(&mut echo, "through every bad renewal").await;

    // The key arrives: the pair loads.
    std::fs::write(dir.key(), &renewed.key_pem).unwrap();
    wait_until_served(
        app.port,
        &authority,
        &renewed,
        "the good pair was never served",
    )
    .await;
    let status = app.controller.tls_status().unwrap();
    assert_eq!(status.loaded, 2, "{status:?}");
    assert_eq!(status.last_error, None);
    assert_echoes(&mut echo, "after the good renewal").await;
}

#[actix_web::test]
async fn reload_tls_serves_the_files_at_once_without_waiting_for_the_poll() {
    let authority = Authority::new();
    let dir = CertDir::new();
    let first = authority.issue(1);
    // Polling off: only a reload can pick the new files up.
    let app = spawn_tls_app(&dir, &first, |c| c.tls_reload_interval = Duration::ZERO).await;
    let mut echo = open_wss(app.port, &authority, "/echo").await;
    let renewed = authority.issue(2);
    dir.write(&renewed);
    app.controller
        .reload_tls()
        .await
        .expect("the renewed pair loads");
    assert_eq!(served_leaf(app.port, &authority).await, renewed.leaf);
    assert_eq!(app.controller.tls_status().unwrap().loaded, 2);
    assert_echoes(&mut echo, "after the reload").await;

    // Without TLS there is nothing to reload.
    let plain = spawn_app().await;
    assert_eq!(
        plain.controller.reload_tls().await,
        Err(TlsReloadError::NotConfigured)
    );
    assert_eq!(plain.controller.tls_status(), None);
}

#[actix_web::test]
async fn sighup_makes_the_binary_serve_a_renewed_certificate_at_once() {
    let authority = Authority::new();
    let dir = CertDir::new();
    let first = authority.issue(1);
    dir.write(&first);
    let [cert, key] = dir.vars();
    // Polling off, so only the signal can explain the new certificate.
    let mut binary = Binary::start(&[
        (cert.0, cert.1.as_str()),
        (key.0, key.1.as_str()),
        ("TLS_RELOAD_INTERVAL_MS", "0"),
    ])
    .await;
    let mut echo = open_wss(binary.port, &authority, "/echo").await;
    assert_eq!(leaf_of(&echo), first.leaf);

    let renewed = authority.issue(2);
    dir.write(&renewed);
    binary.signal("HUP");
    wait_until_served(binary.port, &authority, &renewed, "SIGHUP did not reload").await;
    assert!(
        binary.child.try_wait().unwrap().is_none(),
        "SIGHUP ended the process"
    );
    assert_echoes(&mut echo, "after SIGHUP").await;

    // A bad file on SIGHUP: logged, the process carries on with what it has.
    std::fs::write(dir.cert(), "garbage").unwrap();
    binary.signal("HUP");
    let mut after = open_wss(binary.port, &authority, "/echo").await;
    assert_echoes(&mut after, "still up").await;
    assert!(binary.child.try_wait().unwrap().is_none());
    binary.signal("TERM");
    assert!(binary.exit_status().await.success());
}

// ---------------------------------------------------------------------------------------
// The socket under TLS
// ---------------------------------------------------------------------------------------

#[actix_web::test]
async fn a_jammed_wss_connection_is_reset_as_a_plain_one_is() {
    let authority = Authority::new();
    let dir = CertDir::new();
    let app = spawn_tls_app(&dir, &authority.issue(1), |c| {
        c.heartbeat_interval = Duration::from_millis(200);
        c.client_timeout = Duration::from_millis(1_000);
    })
    .await;
    // A small receive buffer, and a client that never reads its echoes.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let address: std::net::SocketAddr = format!("127.0.0.1:{}", app.port).parse().unwrap();
    socket.connect(&address.into()).unwrap();
    socket.set_nonblocking(true).unwrap();
    let tcp = TcpStream::from_std(socket.into()).unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tls = TlsConnector::from(authority.client_config(&[]))
        .connect(name, tcp)
        .await
        .unwrap();
    let url = format!("wss://127.0.0.1:{}/echo", app.port);
    let (mut jammer, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Rustls(tls))
        .await
        .unwrap();
    assert_eq!(app.controller.open_connections(), 1);

    // ~30 MB of echoes asked for and never read: the server's writer jams.
    let payload = vec![7u8; 60_000];
    for _ in 0..500 {
        let sent = tokio::time::timeout(
            Duration::from_secs(2),
            jammer.send(Message::Binary(payload.clone())),
        )
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            break; // the server stopped reading, or reset us
        }
    }
    app.wait_for_open_connections(0, "the jammed wss connection is still open")
        .await;
    let mut client = open_wss(app.port, &authority, "/echo").await;
    assert_echoes(&mut client, "still served").await;
}

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

#[actix_web::test]
async fn one_tls_variable_alone_stops_the_start_naming_it() {
    let dir = CertDir::new();
    dir.write(&Authority::new().issue(1));
    let [cert, key] = dir.vars();
    assert_refused(&[(cert.0, cert.1.as_str())], "TLS_CERT_FILE").await;
    assert_refused(&[(key.0, key.1.as_str())], "TLS_KEY_FILE").await;
}

#[actix_web::test]
async fn a_missing_unreadable_or_garbled_tls_file_stops_the_start_naming_it() {
    let authority = Authority::new();
    let dir = CertDir::new();
    let issued = authority.issue(1);
    let other = authority.issue(2);
    let cert = path_text(&dir.cert());
    let key = path_text(&dir.key());
    let refused = |variable: &'static str| {
        let (cert, key) = (cert.clone(), key.clone());
        async move {
            assert_refused(
                &[
                    ("TLS_CERT_FILE", cert.as_str()),
                    ("TLS_KEY_FILE", key.as_str()),
                ],
                variable,
            )
            .await;
        }
    };
    // Missing.
    refused("TLS_CERT_FILE").await;
    std::fs::write(dir.cert(), &issued.chain_pem).unwrap();
    refused("TLS_KEY_FILE").await;
    // Garbage, and PEM of the wrong kind (the key where the chain should be).
    std::fs::write(dir.key(), &issued.key_pem).unwrap();
    std::fs::write(dir.cert(), "not a certificate").unwrap();
    refused("TLS_CERT_FILE").await;
    std::fs::write(dir.cert(), &issued.key_pem).unwrap();
    refused("TLS_CERT_FILE").await;
    std::fs::write(dir.cert(), &issued.chain_pem).unwrap();
    std::fs::write(
        dir.key(),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    refused("TLS_KEY_FILE").await;
    // Another certificate's key.
    std::fs::write(dir.key(), &other.key_pem).unwrap();
    refused("TLS_KEY_FILE").await;
    // A directory: not readable as a file.
    std::fs::remove_file(dir.cert()).unwrap();
    std::fs::create_dir(dir.cert()).unwrap();
    std::fs::write(dir.key(), &issued.key_pem).unwrap();
    refused("TLS_CERT_FILE").await;
}

#[actix_web::test]
async fn good_tls_files_start_the_binary_on_https() {
    let authority = Authority::new();
    let dir = CertDir::new();
    dir.write(&authority.issue(1));
    let [cert, key] = dir.vars();
    // `Binary::start` reads the `listening on https://` line; the port then speaks TLS.
    let binary = Binary::start(&[(cert.0, cert.1.as_str()), (key.0, key.1.as_str())]).await;
    let mut member = open_wss(binary.port, &authority, "/ws?name=env").await;
    assert_eq!(member.expect("welcome").await["name"], "env");
}

#[actix_web::test]
async fn a_bad_tls_file_fails_the_in_process_build_with_the_config_error() {
    let dir = CertDir::new();
    let config = hubbub::config::Config {
        tls: Some(dir.files()),
        ..hubbub::config::Config::default()
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = match hubbub::startup::Application::build_with_listener(config, listener) {
        Ok(_) => panic!("built a TLS server without its files"),
        Err(err) => err,
    };
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let config_error = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<hubbub::config::ConfigError>())
        .expect("the config error inside");
    assert_eq!(config_error.variable, "TLS_CERT_FILE");
}
