//! Behind a reverse proxy: with `TRUSTED_PROXIES` naming the proxy, a connection counts
//! (for `MAX_CONNECTIONS_PER_IP`) and is logged as the client the proxy forwarded in
//! `X-Forwarded-For` or `Forwarded`; from anyone else those headers are ignored; and
//! without `TRUSTED_PROXIES`, the first address to hit the per-IP cap gets one warning
//! naming the setting. (Header parsing itself is unit-tested in `src/client_address.rs`.)
//!
//! The proxy is a real nginx (Debian's `nginx` package), started by each test with its
//! own config in a temp directory, on a free loopback port, and killed when the test
//! ends. Without nginx those tests say `SKIP` and pass, except under `CI=true`, where
//! they fail.
//!
//! The whole of `127.0.0.0/8` is loopback on Linux, so a test gives each client its own
//! source address (`127.0.0.21`, `127.0.0.22`, ...): nginx sees them as different
//! clients and appends each one's real address to `X-Forwarded-For`, exactly as in
//! production, and the server must tell them apart by that header alone (its TCP peer is
//! always nginx). No test writes the forwarded address nginx passes on: where a test
//! sends its own `X-Forwarded-For`, it is a forgery that must not count. Each test also
//! uses addresses no other test uses, so it can find its own lines in the shared log.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use hubbub::client_address::TrustedProxies;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

use crate::{
    helpers::{spawn_app_with, Client, TestApp, DEADLINE},
    log_capture::Capture,
};

// ---------------------------------------------------------------------------------------
// nginx
// ---------------------------------------------------------------------------------------

/// A running nginx in front of a test server; killed, and its directory removed, on drop.
struct Nginx {
    child: Child,
    /// Its config, pid file, logs and temp paths.
    dir: PathBuf,
    /// Where it listens, on 127.0.0.1.
    port: u16,
}

/// The config of a test's nginx: the upgrade headers and `X-Forwarded-For` as
/// docs/deploy.md recommends, everything nginx writes inside `@DIR@`, one process in the
/// foreground (so killing it leaves nothing behind and it needs no user to switch to).
/// `proxy_bind` chooses the address the server sees nginx at.
const NGINX_CONF: &str = r#"
daemon off;
master_process off;
worker_processes 1;
pid @DIR@/nginx.pid;
error_log @DIR@/error.log warn;
events { worker_connections 256; }
http {
    access_log @DIR@/access.log;
    client_body_temp_path @DIR@/client_body;
    proxy_temp_path @DIR@/proxy;
    fastcgi_temp_path @DIR@/fastcgi;
    uwsgi_temp_path @DIR@/uwsgi;
    scgi_temp_path @DIR@/scgi;
    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      close;
    }
    server {
        listen 127.0.0.1:@PORT@;
        location / {
            proxy_pass http://127.0.0.1:@UPSTREAM@;
            proxy_bind @PROXY_ADDRESS@;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout 60s;
        }
    }
}
"#;

/// The nginx executable (Debian puts it in /usr/sbin, which may not be on `PATH`).
fn nginx_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
}

/// nginx, or `None` after a visible skip; under `CI=true` a missing nginx fails `test`.
fn nginx_or_skip(test: &str) -> Option<PathBuf> {
    let binary = nginx_binary();
    if binary.is_none() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true and nginx is missing: apt-get install nginx"
        );
        eprintln!("SKIP: {test}: nginx is not installed (apt-get install nginx)");
    }
    binary
}

impl Nginx {
    /// Starts `binary` proxying to the server on `upstream`, connecting to it from
    /// `proxy_address`, and waits until it accepts connections.
    async fn start(binary: &Path, upstream: u16, proxy_address: &str) -> Nginx {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        // The port is free when picked but nginx binds it a moment later: if another
        // process took it meanwhile, try another.
        for _ in 0..5 {
            let dir = std::env::temp_dir().join(format!(
                "hubbub-nginx-{}-{}",
                std::process::id(),
                STARTED.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("make nginx's directory");
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a free port")
                .port();
            let conf = NGINX_CONF
                .replace("@DIR@", dir.to_str().expect("a UTF-8 temp dir"))
                .replace("@PORT@", &port.to_string())
                .replace("@UPSTREAM@", &upstream.to_string())
                .replace("@PROXY_ADDRESS@", proxy_address);
            std::fs::write(dir.join("nginx.conf"), conf).expect("write nginx.conf");
            let stderr = std::fs::File::create(dir.join("stderr.log")).expect("nginx's stderr");
            let child = Command::new(binary)
                .arg("-p")
                .arg(&dir)
                .arg("-c")
                .arg(dir.join("nginx.conf"))
                // The log it writes before it has read the config (else /var/log/nginx).
                .arg("-e")
                .arg(dir.join("error.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .expect("start nginx");
            let mut nginx = Nginx { child, dir, port };
            match nginx.wait_until_listening().await {
                Ok(()) => return nginx,
                Err(log) if log.contains("Address already in use") => continue,
                Err(log) => panic!("nginx did not start:\n{log}"),
            }
        }
        panic!("nginx found no free port in 5 tries");
    }

    /// `Err` with nginx's logs if it exits before it accepts a connection.
    async fn wait_until_listening(&mut self) -> Result<(), String> {
        let started = tokio::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("nginx's status") {
                return Err(format!("exited with {status}:\n{}", self.logs()));
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            assert!(
                started.elapsed() < DEADLINE,
                "nginx did not listen in time:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn logs(&self) -> String {
        ["stderr.log", "error.log"]
            .iter()
            .map(|name| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------
// Clients from chosen loopback addresses
// ---------------------------------------------------------------------------------------

/// A WebSocket handshake to `path` on 127.0.0.1:`port` (nginx or the server), from the
/// loopback address `from`, with `headers` added to the request.
async fn handshake(
    from: &str,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Client, tungstenite::Error> {
    let mut request = format!("ws://127.0.0.1:{port}{path}")
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        request.headers_mut().append(
            tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(format!("{from}:0").parse().unwrap())
        .expect("bind a loopback source address");
    let target: SocketAddr = ([127, 0, 0, 1], port).into();
    let stream = tokio::time::timeout(DEADLINE, socket.connect(target))
        .await
        .expect("connect in time")
        .expect("connect");
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (socket, _) =
        tokio::time::timeout(DEADLINE, tokio_tungstenite::client_async(request, stream))
            .await
            .expect("an answer to the handshake in time")?;
    Ok(Client {
        socket,
        id: String::new(),
        name: String::new(),
        welcome: Value::Null,
    })
}

/// Opens `/ws?name=name` from `from` and reads `welcome`.
async fn connect(from: &str, port: u16, name: &str, headers: &[(&str, &str)]) -> Client {
    let mut client = handshake(from, port, &format!("/ws?name={name}"), headers)
        .await
        .unwrap_or_else(|err| panic!("{name} from {from} was refused: {err}"));
    let welcome = client.expect("welcome").await;
    client.id = welcome["id"].as_str().unwrap().to_string();
    client.name = welcome["name"].as_str().unwrap().to_string();
    assert_eq!(client.name, name);
    client.welcome = welcome;
    client
}

/// The upgrade from `from` must be refused as one too many from one address.
async fn assert_refused_per_address(from: &str, port: u16, headers: &[(&str, &str)]) {
    match handshake(from, port, "/ws", headers).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 503, "from {from}");
            let body: Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default())
                    .unwrap_or(Value::Null);
            assert_eq!(body["error"], "too_many_connections", "from {from}: {body}");
        }
        Err(other) => panic!("from {from}: expected a 503, got {other}"),
        Ok(_) => panic!("from {from} with {headers:?}: the upgrade was accepted"),
    }
}

async fn server_trusting(trusted: &str, per_ip: usize) -> TestApp {
    let trusted = TrustedProxies::parse(trusted).unwrap();
    spawn_app_with(|c| {
        c.trusted_proxies = trusted;
        c.max_connections_per_ip = per_ip;
    })
    .await
}

/// The once-per-server warning for `address` hitting the per-IP cap.
fn shared_address_warnings(log: &Capture, address: &str) -> Vec<String> {
    log.lines_containing(&format!("{address} has reached MAX_CONNECTIONS_PER_IP"))
        .into_iter()
        .filter(|line| line.contains("TRUSTED_PROXIES") && line.starts_with("WARN"))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Through nginx
// ---------------------------------------------------------------------------------------

#[actix_web::test]
async fn a_session_through_nginx_is_welcomed_joins_and_hears_a_say() {
    let Some(binary) = nginx_or_skip("a_session_through_nginx") else {
        return;
    };
    let app = server_trusting("127.0.0.1", 1000).await;
    let nginx = Nginx::start(&binary, app.port, "127.0.0.1").await;

    let mut ann = connect("127.0.0.11", nginx.port, "ann", &[]).await;
    let mut bob = connect("127.0.0.12", nginx.port, "bob", &[]).await;
    assert_eq!(ann.welcome["protocol"], 1);
    ann.send(json!({"type": "join", "room": "lobby", "ref": "j1"}))
        .await;
    assert_eq!(ann.expect("joined").await["ref"], "j1");
    bob.send(json!({"type": "join", "room": "lobby"})).await;
    bob.expect("joined").await;
    assert_eq!(ann.expect("member_joined").await["member"]["name"], "bob");

    ann.send(json!({"type": "say", "room": "lobby", "text": "hi through nginx"}))
        .await;
    for client in [&mut ann, &mut bob] {
        let message = client.expect("message").await;
        assert_eq!(message["text"], "hi through nginx");
        assert_eq!(message["from"]["name"], "ann");
        assert_eq!(message["seq"], 1);
    }
}

#[actix_web::test]
async fn through_nginx_each_client_address_has_its_own_allowance() {
    // Before anything is logged: a capture keeps only what comes after it.
    let log = Capture::start();
    let Some(binary) = nginx_or_skip("each_client_address_has_its_own_allowance") else {
        return;
    };
    let app = server_trusting("127.0.0.1", 2).await;
    let nginx = Nginx::start(&binary, app.port, "127.0.0.1").await;

    let _a1 = connect("127.0.0.21", nginx.port, "a1", &[]).await;
    let _a2 = connect("127.0.0.21", nginx.port, "a2", &[]).await;
    assert_refused_per_address("127.0.0.21", nginx.port, &[]).await;
    // Every TCP connection the server has is from nginx; this client's address is only
    // in the header nginx wrote, and it has an allowance of its own.
    let _b1 = connect("127.0.0.22", nginx.port, "b1", &[]).await;
    let _b2 = connect("127.0.0.22", nginx.port, "b2", &[]).await;
    assert_refused_per_address("127.0.0.22", nginx.port, &[]).await;

    // The log names the client, and the proxy it came through.
    assert_eq!(
        log.lines_containing("refused a WebSocket from 127.0.0.21 (via proxy 127.0.0.1)")
            .len(),
        1
    );
    assert_eq!(
        log.lines_containing("refused a WebSocket from 127.0.0.22 (via proxy 127.0.0.1)")
            .len(),
        1
    );
}

#[actix_web::test]
async fn a_forged_x_forwarded_for_sent_through_nginx_does_not_change_the_clients_address() {
    // Before anything is logged: a capture keeps only what comes after it.
    let log = Capture::start();
    let Some(binary) = nginx_or_skip("a_forged_x_forwarded_for_sent_through_nginx") else {
        return;
    };
    let app = server_trusting("127.0.0.1", 2).await;
    let nginx = Nginx::start(&binary, app.port, "127.0.0.1").await;

    // nginx appends the real peer: the server gets "203.0.113.1, 127.0.0.31", and the
    // right-most address that is not a trusted proxy is the real one, 127.0.0.31.
    let forged = |n: u8| format!("203.0.113.{n}");
    let _c1 = connect(
        "127.0.0.31",
        nginx.port,
        "c1",
        &[("X-Forwarded-For", &forged(1))],
    )
    .await;
    let _c2 = connect(
        "127.0.0.31",
        nginx.port,
        "c2",
        &[("X-Forwarded-For", &forged(2))],
    )
    .await;
    assert_refused_per_address("127.0.0.31", nginx.port, &[("X-Forwarded-For", &forged(3))]).await;
    // Nor does a forged hop that names the trusted proxy itself skip the real address.
    assert_refused_per_address(
        "127.0.0.31",
        nginx.port,
        &[("X-Forwarded-For", "203.0.113.4, 127.0.0.1")],
    )
    .await;
    assert_eq!(
        log.lines_containing("refused a WebSocket from 127.0.0.31 (via proxy 127.0.0.1)")
            .len(),
        2
    );
    assert!(log
        .lines_containing("refused a WebSocket from 203.0.113.")
        .is_empty());
}

#[actix_web::test]
async fn without_trusted_proxies_everyone_behind_nginx_shares_its_address_and_is_told_once() {
    // Before anything is logged: a capture keeps only what comes after it.
    let log = Capture::start();
    let Some(binary) = nginx_or_skip("without_trusted_proxies_everyone_behind_nginx") else {
        return;
    };
    let app = spawn_app_with(|c| c.max_connections_per_ip = 2).await;
    // The server sees nginx at 127.0.0.61, an address only this test uses.
    let nginx = Nginx::start(&binary, app.port, "127.0.0.61").await;

    let _d1 = connect("127.0.0.62", nginx.port, "d1", &[]).await;
    let _d2 = connect("127.0.0.63", nginx.port, "d2", &[]).await;
    // Two different clients filled the one allowance they share with everyone.
    for from in ["127.0.0.64", "127.0.0.65", "127.0.0.62"] {
        assert_refused_per_address(from, nginx.port, &[]).await;
    }
    assert_eq!(
        log.lines_containing("refused a WebSocket from 127.0.0.61:")
            .len(),
        3
    );
    let warnings = shared_address_warnings(&log, "127.0.0.61");
    assert_eq!(
        warnings.len(),
        1,
        "one warning, not one per refusal: {warnings:?}"
    );
    assert!(
        warnings[0].contains("reverse proxy") && warnings[0].contains("X-Forwarded-For"),
        "{}",
        warnings[0]
    );
}

// ---------------------------------------------------------------------------------------
// Straight to the server
// ---------------------------------------------------------------------------------------

#[actix_web::test]
async fn a_forged_x_forwarded_for_from_an_untrusted_peer_is_ignored() {
    // Before anything is logged: a capture keeps only what comes after it.
    let log = Capture::start();
    // Unset, and set to some other proxy: either way 127.0.0.51 is not trusted.
    for trusted in ["", "192.0.2.1, 10.0.0.0/8, ::1"] {
        let app = server_trusting(trusted, 2).await;
        let port = app.port;
        let _e1 = connect(
            "127.0.0.51",
            port,
            "e1",
            &[("X-Forwarded-For", "203.0.113.1")],
        )
        .await;
        let _e2 = connect(
            "127.0.0.51",
            port,
            "e2",
            &[("Forwarded", "for=203.0.113.2")],
        )
        .await;
        assert_refused_per_address("127.0.0.51", port, &[("X-Forwarded-For", "203.0.113.3")]).await;
        assert_refused_per_address(
            "127.0.0.51",
            port,
            &[("Forwarded", "for=\"[2001:db8::3]:4711\"")],
        )
        .await;
        // The cap counted the real peer, which another address does not share.
        let _f1 = connect("127.0.0.52", port, "f1", &[]).await;
    }
    assert_eq!(
        log.lines_containing("refused a WebSocket from 127.0.0.51:")
            .len(),
        4
    );
    assert!(log
        .lines_containing("refused a WebSocket from 203.0.113.")
        .is_empty());
    assert!(log
        .lines_containing("refused a WebSocket from 2001:db8::3")
        .is_empty());
}

#[actix_web::test]
async fn a_forwarded_header_from_a_trusted_peer_names_the_client_ipv6_included() {
    // Before anything is logged: a capture keeps only what comes after it.
    let log = Capture::start();
    // The test's own socket at 127.0.0.71 plays a proxy that writes RFC 7239 Forwarded.
    let app = server_trusting("127.0.0.71", 1).await;
    let port = app.port;
    let from_v6 = [("Forwarded", "for=\"[2001:db8::71]:4711\";proto=https")];
    let _g1 = connect("127.0.0.71", port, "g1", &from_v6).await;
    let _g2 = connect(
        "127.0.0.71",
        port,
        "g2",
        &[("Forwarded", "for=198.51.100.71")],
    )
    .await;
    // Another port of the same client is the same client.
    assert_refused_per_address(
        "127.0.0.71",
        port,
        &[("Forwarded", "for=\"[2001:db8::71]:5000\"")],
    )
    .await;
    assert_eq!(
        log.lines_containing("refused a WebSocket from 2001:db8::71 (via proxy 127.0.0.71)")
            .len(),
        1
    );
    // A header that names no address: the proxy's own, which has its slot free.
    let _g3 = connect("127.0.0.71", port, "g3", &[("Forwarded", "for=unknown")]).await;
    assert_refused_per_address("127.0.0.71", port, &[]).await;
}

#[actix_web::test]
async fn the_shared_address_warning_is_logged_once_per_server_and_not_with_trusted_proxies() {
    // Before anything is logged: a capture keeps only what comes after it.
    let log = Capture::start();
    let app = spawn_app_with(|c| c.max_connections_per_ip = 1).await;
    let _h1 = connect("127.0.0.41", app.port, "h1", &[]).await;
    for _ in 0..3 {
        assert_refused_per_address("127.0.0.41", app.port, &[]).await;
    }
    assert_eq!(
        log.lines_containing("refused a WebSocket from 127.0.0.41:")
            .len(),
        3
    );
    let warnings = shared_address_warnings(&log, "127.0.0.41");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("MAX_CONNECTIONS_PER_IP (1)"),
        "{}",
        warnings[0]
    );

    // With TRUSTED_PROXIES set the operator has already answered the question.
    let app = server_trusting("192.0.2.1", 1).await;
    let _i1 = connect("127.0.0.42", app.port, "i1", &[]).await;
    assert_refused_per_address("127.0.0.42", app.port, &[]).await;
    assert_eq!(
        log.lines_containing("refused a WebSocket from 127.0.0.42:")
            .len(),
        1
    );
    assert!(shared_address_warnings(&log, "127.0.0.42").is_empty());
}
