//! `GET /metrics`: the server's counters and gauges in the Prometheus text format
//! (0.0.4). Each test scrapes, makes clients do something, and scrapes again until the
//! series it expects has moved, under the deadline; then it checks what moved by how
//! much. The last test has `promtool` (Debian's `prometheus` package) check the text.

use std::{collections::HashMap, path::PathBuf, process::Stdio, time::Duration};

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, Message};

use crate::helpers::{spawn_app, spawn_app_with, Client, TestApp, DEADLINE};

/// Every family the server exposes, with its type.
const FAMILIES: &[(&str, &str)] = &[
    ("hubbub_connections_open", "gauge"),
    ("hubbub_members", "gauge"),
    ("hubbub_rooms", "gauge"),
    ("hubbub_messages_received_total", "counter"),
    ("hubbub_frames_serialized_total", "counter"),
    ("hubbub_frames_delivered_total", "counter"),
    ("hubbub_delivered_bytes_total", "counter"),
    ("hubbub_courier_posts_total", "counter"),
    ("hubbub_disconnects_total", "counter"),
    ("hubbub_errors_sent_total", "counter"),
    ("hubbub_slow_evictions_total", "counter"),
    ("hubbub_upgrades_refused_total", "counter"),
    ("hubbub_rate_limited_messages_total", "counter"),
    ("hubbub_hub_mailbox_delay_seconds", "histogram"),
];

/// One scrape of `/metrics`: the text, and each series (its name and labels as written)
/// with its value.
pub(crate) struct Scrape {
    pub(crate) text: String,
    series: HashMap<String, f64>,
}

impl Scrape {
    /// The value of `series` (e.g. `hubbub_disconnects_total{reason="slow"}`), which
    /// must be in the scrape.
    pub(crate) fn value(&self, series: &str) -> f64 {
        match self.series.get(series) {
            Some(value) => *value,
            None => panic!("no {series} in /metrics:\n{}", self.text),
        }
    }
}

pub(crate) async fn scrape(app: &TestApp) -> Scrape {
    let response = app.get_raw("/metrics").await;
    assert_eq!(response.status, 200);
    assert!(
        response
            .content_type
            .starts_with("text/plain; version=0.0.4"),
        "Content-Type {:?}",
        response.content_type
    );
    let text = response.body;
    let series = text
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("a sample is `series value`: {line:?}"));
            let value = value
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("a sample's value is a number: {line:?}"));
            (series.to_string(), value)
        })
        .collect();
    Scrape { text, series }
}

/// Scrapes until `series` satisfies `ready`, and returns that scrape; fails with `what`
/// at the deadline.
async fn scrape_until(
    app: &TestApp,
    series: &str,
    what: &str,
    ready: impl Fn(f64) -> bool,
) -> Scrape {
    let started = tokio::time::Instant::now();
    loop {
        let scraped = scrape(app).await;
        if ready(scraped.value(series)) {
            return scraped;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{what}: {series} is {}",
            scraped.value(series)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The next frame, which must be a text frame of `kind`, as the raw text it came in.
async fn next_raw(client: &mut Client, kind: &str) -> String {
    match client.next_message().await {
        Message::Text(text) => {
            let event: serde_json::Value = serde_json::from_str(&text).expect("frames are JSON");
            assert_eq!(event["type"], kind, "expected a {kind} event, got {event}");
            text.to_string()
        }
        other => panic!("expected a {kind} event, got {other:?}"),
    }
}

/// Tries an upgrade that the server must refuse with an HTTP status; returns it.
async fn refused_status(request: tungstenite::handshake::client::Request) -> u16 {
    let attempt = tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(request))
        .await
        .expect("an answer in time");
    match attempt {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected the upgrade to be refused, it was accepted"),
    }
}

#[actix_web::test]
async fn metrics_is_prometheus_text_with_help_and_type_for_every_family() {
    let app = spawn_app().await;
    let scraped = scrape(&app).await;

    let mut help = Vec::new();
    let mut types = HashMap::new();
    for line in scraped.text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').expect("# HELP name text");
            assert!(!text.is_empty(), "{name} has an empty help text");
            help.push(name.to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name type");
            assert_eq!(
                help.last().map(String::as_str),
                Some(name),
                "the TYPE of {name} follows its HELP"
            );
            types.insert(name.to_string(), kind.to_string());
        }
    }
    for (name, kind) in FAMILIES {
        assert_eq!(
            types.get(*name).map(String::as_str),
            Some(*kind),
            "{name} is a {kind}:\n{}",
            scraped.text
        );
    }
    for series in scraped.series.keys() {
        let name = series.split('{').next().unwrap();
        let family = FAMILIES
            .iter()
            .map(|(family, _)| *family)
            .find(|family| {
                name == *family
                    || ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|suffix| name.strip_suffix(suffix) == Some(family))
            })
            .unwrap_or_else(|| panic!("{series} belongs to no known family"));
        assert!(types.contains_key(family), "{series} has no TYPE line");
        if types[family] == "counter" {
            assert!(family.ends_with("_total"), "counter {family}");
        }
    }
    // Series with a known label set exist from the start, at 0.
    for series in [
        r#"hubbub_connections_open{endpoint="ws"}"#,
        r#"hubbub_connections_open{endpoint="echo"}"#,
        r#"hubbub_messages_received_total{type="say"}"#,
        r#"hubbub_messages_received_total{type="plain"}"#,
        r#"hubbub_messages_received_total{type="invalid"}"#,
        r#"hubbub_disconnects_total{reason="disconnect"}"#,
        r#"hubbub_disconnects_total{reason="timeout"}"#,
        r#"hubbub_disconnects_total{reason="slow"}"#,
        r#"hubbub_errors_sent_total{code="rate_limited"}"#,
        r#"hubbub_upgrades_refused_total{cause="server_full"}"#,
        r#"hubbub_upgrades_refused_total{cause="too_many_connections"}"#,
        r#"hubbub_upgrades_refused_total{cause="origin_not_allowed"}"#,
        r#"hubbub_upgrades_refused_total{cause="shutting_down"}"#,
        r#"hubbub_upgrades_refused_total{cause="bad_handshake"}"#,
        r#"hubbub_hub_mailbox_delay_seconds_bucket{le="0.05"}"#,
        "hubbub_slow_evictions_total",
        "hubbub_members",
        "hubbub_rooms",
    ] {
        assert_eq!(scraped.value(series), 0.0, "{series}");
    }
}

#[actix_web::test]
async fn commands_deliveries_errors_and_a_disconnect_move_their_counters() {
    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    let mut bob = app.member("bob", "lobby").await;
    ann.expect("member_joined").await;
    let before = scrape_until(&app, "hubbub_members", "ann and bob connected", |m| {
        m == 2.0
    })
    .await;

    const SAYS: usize = 3;
    let mut delivered_bytes = 0;
    for n in 0..SAYS {
        ann.send(json!({"type": "say", "room": "lobby", "text": format!("hi {n}")}))
            .await;
        delivered_bytes += next_raw(&mut ann, "message").await.len();
        delivered_bytes += next_raw(&mut bob, "message").await.len();
    }
    ann.send_text(r#"{"type": "no_such_command"}"#).await;
    ann.expect_error("unknown_type").await;
    ann.send_text("hello").await;
    ann.expect("echo").await;
    ann.send(json!({"type": "leave", "room": "elsewhere"}))
        .await;
    ann.expect_error("not_in_room").await;
    bob.close().await;
    let left = ann.expect("member_left").await;
    assert_eq!(left["reason"], "disconnect");

    let disconnected = r#"hubbub_disconnects_total{reason="disconnect"}"#;
    let was = before.value(disconnected);
    let after = scrape_until(&app, disconnected, "bob's disconnect counted", |n| n > was).await;
    let moved = |series: &str| after.value(series) - before.value(series);

    assert_eq!(moved(disconnected), 1.0);
    assert_eq!(moved(r#"hubbub_disconnects_total{reason="timeout"}"#), 0.0);
    assert_eq!(moved(r#"hubbub_disconnects_total{reason="slow"}"#), 0.0);
    assert_eq!(
        moved(r#"hubbub_messages_received_total{type="say"}"#),
        SAYS as f64
    );
    assert_eq!(
        moved(r#"hubbub_messages_received_total{type="leave"}"#),
        1.0
    );
    assert_eq!(
        moved(r#"hubbub_messages_received_total{type="plain"}"#),
        1.0
    );
    assert_eq!(
        moved(r#"hubbub_messages_received_total{type="invalid"}"#),
        1.0
    );
    assert_eq!(moved(r#"hubbub_messages_received_total{type="join"}"#), 0.0);
    // From the hub (`not_in_room`) and from the connection itself (`unknown_type`).
    assert_eq!(
        moved(r#"hubbub_errors_sent_total{code="not_in_room"}"#),
        1.0
    );
    assert_eq!(
        moved(r#"hubbub_errors_sent_total{code="unknown_type"}"#),
        1.0
    );
    assert_eq!(moved(r#"hubbub_errors_sent_total{code="bad_json"}"#), 0.0);
    let frames = moved("hubbub_frames_delivered_total");
    assert!(frames >= (2 * SAYS) as f64, "{frames} frames delivered");
    let bytes = moved("hubbub_delivered_bytes_total");
    assert!(
        bytes >= delivered_bytes as f64,
        "{bytes} bytes delivered; the messages alone were {delivered_bytes}"
    );
    let bags = moved("hubbub_hub_mailbox_delay_seconds_count");
    assert!(bags >= 1.0, "no mailbag observed");
    assert_eq!(
        after.value(r#"hubbub_hub_mailbox_delay_seconds_bucket{le="+Inf"}"#),
        after.value("hubbub_hub_mailbox_delay_seconds_count")
    );
    assert_eq!(after.value("hubbub_members"), 1.0);
    assert_eq!(after.value("hubbub_rooms"), 1.0);

    // /api/stats reads the same counters.
    let (status, stats) = app.get("/api/stats").await;
    assert_eq!(status, 200);
    let now = scrape(&app).await;
    assert_eq!(
        stats["frames_delivered"].as_f64(),
        Some(now.value("hubbub_frames_delivered_total"))
    );
    assert_eq!(
        stats["members_dropped_slow"].as_f64(),
        Some(now.value("hubbub_slow_evictions_total"))
    );
}

#[actix_web::test]
async fn a_silent_client_counts_as_a_disconnect_by_timeout() {
    let app = spawn_app_with(|config| {
        config.heartbeat_interval = Duration::from_millis(100);
        config.client_timeout = Duration::from_millis(400);
    })
    .await;
    let mut watcher = app.member("watcher", "lobby").await;
    // Never read again, so it never answers a ping.
    let _silent = app.member("silent", "lobby").await;
    watcher.expect("member_joined").await;
    let timed_out = r#"hubbub_disconnects_total{reason="timeout"}"#;
    let before = scrape(&app).await;

    let left = watcher.wait_for("member_left").await;
    assert_eq!(left["reason"], "timeout");
    let was = before.value(timed_out);
    let after = scrape_until(&app, timed_out, "the timeout counted", |n| n > was).await;
    assert_eq!(after.value(timed_out) - was, 1.0);
    let disconnected = r#"hubbub_disconnects_total{reason="disconnect"}"#;
    assert_eq!(after.value(disconnected), before.value(disconnected));
}

#[actix_web::test]
async fn open_connections_are_counted_by_endpoint_while_they_are_open() {
    let app = spawn_app().await;
    let echo_open = r#"hubbub_connections_open{endpoint="echo"}"#;
    let ws_open = r#"hubbub_connections_open{endpoint="ws"}"#;

    let echo = Client::open(&app.ws_url("/echo")).await;
    let scraped = scrape_until(&app, echo_open, "the echo client counted", |n| n == 1.0).await;
    assert_eq!(scraped.value(ws_open), 0.0);

    let _ann = app.connect("?name=ann").await;
    let scraped = scrape_until(&app, ws_open, "the /ws client counted", |n| n == 1.0).await;
    assert_eq!(scraped.value(echo_open), 1.0);

    echo.close().await;
    let scraped = scrape_until(&app, echo_open, "the closed echo client let go", |n| {
        n == 0.0
    })
    .await;
    assert_eq!(scraped.value(ws_open), 1.0);
}

#[actix_web::test]
async fn refused_upgrades_are_counted_by_cause() {
    let app = spawn_app_with(|config| {
        config.max_connections = 1;
        config.allowed_origins = vec!["https://chat.example".into()];
    })
    .await;
    let refused = |cause: &str| format!(r#"hubbub_upgrades_refused_total{{cause="{cause}"}}"#);
    let before = scrape(&app).await;

    // A plain GET, no upgrade.
    let (status, _) = app.get("/ws").await;
    assert_eq!(status, 426);
    let mut request = app.ws_url("/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Origin", "https://evil.example".parse().unwrap());
    assert_eq!(refused_status(request).await, 403);
    let _only = app.connect("?name=only").await;
    assert_eq!(
        refused_status(app.ws_url("/echo").into_client_request().unwrap()).await,
        503
    );

    let after = scrape(&app).await;
    for (cause, count) in [
        ("bad_handshake", 1.0),
        ("origin_not_allowed", 1.0),
        ("server_full", 1.0),
        ("too_many_connections", 0.0),
        ("shutting_down", 0.0),
    ] {
        let series = refused(cause);
        assert_eq!(
            after.value(&series) - before.value(&series),
            count,
            "{series}"
        );
    }
    // A refused upgrade never counted as open.
    assert_eq!(
        after.value(r#"hubbub_connections_open{endpoint="echo"}"#),
        0.0
    );
}

#[actix_web::test]
async fn rate_limited_messages_are_counted_with_their_error_frames() {
    let app = spawn_app_with(|config| {
        config.rate_limit_per_s = 1;
        config.rate_limit_burst = 1;
        config.rate_limit_strikes = 1_000;
    })
    .await;
    let mut ann = app.connect("?name=ann").await;
    let before = scrape(&app).await;

    const SENT: usize = 10;
    for n in 0..SENT {
        ann.send(json!({"type": "echo", "text": format!("{n}")}))
            .await;
    }
    let mut refused = 0;
    for _ in 0..SENT {
        let reply = ann.next_event().await;
        match reply["type"].as_str() {
            Some("echo") => {}
            Some("error") if reply["code"] == "rate_limited" => refused += 1,
            _ => panic!("expected echo or rate_limited, got {reply}"),
        }
    }
    assert!(refused > 0, "a burst of {SENT} at 1/s was never refused");

    let after = scrape(&app).await;
    let moved = |series: &str| after.value(series) - before.value(series);
    assert_eq!(moved("hubbub_rate_limited_messages_total"), refused as f64);
    assert_eq!(
        moved(r#"hubbub_errors_sent_total{code="rate_limited"}"#),
        refused as f64
    );
    // Received counts every message, served or dropped.
    assert_eq!(
        moved(r#"hubbub_messages_received_total{type="echo"}"#),
        SENT as f64
    );
}

/// `promtool` on `PATH`. Without it: a failure under `CI=true`, else a skip that shows
/// (`test` names what is skipped) and `None`.
pub(crate) fn promtool_or_skip(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("promtool"))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true and promtool is missing: apt-get install prometheus");
        }
        // Straight to stderr, past the test harness's capture, so the skip shows.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipped: {test}: promtool not installed (apt-get install prometheus)"
        );
    }
    found
}

/// What `promtool check metrics` says about `text` on its stdin: its exit status and
/// everything it wrote (nothing, when the text is clean).
pub(crate) async fn promtool_check(promtool: &PathBuf, text: &str) -> (bool, String) {
    let mut child = tokio::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    let mut stdin = child.stdin.take().expect("promtool's stdin is piped");
    stdin.write_all(text.as_bytes()).await.expect("write stdin");
    drop(stdin);
    let output = tokio::time::timeout(DEADLINE, child.wait_with_output())
        .await
        .expect("promtool finishes in time")
        .expect("promtool runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

#[actix_web::test]
async fn promtool_finds_nothing_to_complain_about() {
    let Some(promtool) = promtool_or_skip("promtool_finds_nothing_to_complain_about") else {
        return;
    };
    // The check is live: promtool does flag a counter without `_total` or help.
    let (clean, said) =
        promtool_check(&promtool, "# TYPE hubbub_bad counter\nhubbub_bad 1\n").await;
    assert!(
        !clean && !said.is_empty(),
        "promtool accepted a bad exposition: {said}"
    );

    let app = spawn_app().await;
    let mut ann = app.member("ann", "lobby").await;
    ann.send(json!({"type": "say", "room": "lobby", "text": "hi"}))
        .await;
    ann.expect("message").await;
    ann.send_text("{").await;
    ann.expect_error("bad_json").await;
    let scraped = scrape_until(
        &app,
        "hubbub_hub_mailbox_delay_seconds_count",
        "a mailbag observed",
        |n| n > 0.0,
    )
    .await;

    let (clean, said) = promtool_check(&promtool, &scraped.text).await;
    assert!(
        clean && said.is_empty(),
        "promtool check metrics: {said}\n---\n{}",
        scraped.text
    );
}
