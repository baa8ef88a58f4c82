//! Browser end-to-end tests: the page in `static/` running in headless Chromium, driven
//! over WebDriver (`chromedriver`), against the real server on a free loopback port.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`/usr/bin/chromium`,
//! `/usr/bin/chromedriver`), so every test is `#[ignore]`d: a bare `cargo test` works
//! anywhere and reports them as ignored, not passed. Run them with
//! `cargo test --test browser -- --ignored` (`.ci/run` does). Asked for on a machine
//! without the browser, each test says why and returns; with `CI=true` it fails instead.
//!
//! Each test starts its own hubbub and its own browser session(s), each with a fresh
//! profile. One `chromedriver` serves the tests running at the same time and is killed
//! when the last of them ends; at most [`PARALLEL_TESTS`] tests drive browsers at once,
//! so a 2-core machine is not swamped with Chromium processes. Every wait polls the DOM
//! under a deadline ([`WAIT`]); nothing sleeps a fixed time to get a result.
//!
//! Screenshots are written to `target/browser/`; with `HUBBUB_UPDATE_SCREENSHOT=1` the
//! two-user chat is also copied to `docs/screenshot.png`.
//!
//! The WebDriver client is fantoccini, wrapped thinly in [`Browser`]: it is async on
//! tokio like the rest of these tests, and built from a plain-HTTP `hyper-util`
//! connector it needs no TLS stack to talk to a chromedriver on loopback.

#![deny(unsafe_code)]

use std::{
    fmt::Display,
    future::Future,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, Weak,
    },
    time::{Duration, Instant},
};

use fantoccini::{
    actions::{InputSource, KeyAction, KeyActions},
    elements::Element,
    error::CmdError,
    key::Key,
    wd::Capabilities,
    Client, ClientBuilder, Locator,
};
use futures_util::{SinkExt, StreamExt};
use hubbub::{
    config::Config,
    startup::{Application, Controller},
};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_tungstenite::tungstenite::Message;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long one DOM condition may take to come true on a loaded 2-core CI machine.
const WAIT: Duration = Duration::from_secs(20);
/// How often a condition is checked again while waiting for it.
const POLL: Duration = Duration::from_millis(50);
/// Coming back after a restart goes through the page's backoff (0.5 s doubling up to
/// 10 s, plus jitter), so that wait is longer.
const RECONNECT_WAIT: Duration = Duration::from_secs(45);
/// Upper bound for one WebDriver command; starting and ending Chromium are the slow ones.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);
/// Tests that drive browsers at the same time (each may run three Chromiums).
const PARALLEL_TESTS: usize = 2;
static BROWSER_SLOTS: Semaphore = Semaphore::const_new(PARALLEL_TESTS);

/// Keys the tests press.
const ENTER: Key = Key::Enter;
const TAB: Key = Key::Tab;

/// The desktop window every session starts with (a screenshot shows its viewport).
const DESKTOP: (u32, u32) = (1280, 800);

// ------------------------------------------------------------------------ scenarios

#[actix_web::test]
#[ignore = "needs chromium and chromedriver: cargo test --test browser -- --ignored"]
async fn two_sessions_in_a_room_see_each_other_in_the_member_list() {
    let Some(bed) = TestBed::start().await else {
        return;
    };
    let ann = bed.browser().await;
    let bob = bed.browser().await;
    ann.connect_as("ann").await;
    bob.connect_as("bob").await;
    ann.join("lobby").await;
    bob.join("lobby").await;

    let ann_sees = ann.wait_for_members(&["ann", "bob"]).await;
    let bob_sees = bob.wait_for_members(&["ann", "bob"]).await;
    assert_eq!(
        ann_sees["self"], "ann",
        "ann's own entry is marked: {ann_sees}"
    );
    assert_eq!(
        bob_sees["self"], "bob",
        "bob's own entry is marked: {bob_sees}"
    );

    ann.end().await;
    bob.end().await;
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver: cargo test --test browser -- --ignored"]
async fn a_message_typed_in_one_session_appears_in_the_other_with_name_and_time() {
    let Some(bed) = TestBed::start().await else {
        return;
    };
    let (ann, bob) = bed.ann_and_bob_in_lobby().await;

    ann.say("hello from ann").await;
    let line = bob.wait_for_message("hello from ann").await;
    assert_eq!(line["from"], "ann", "sender's name on the line: {line}");
    assert_eq!(
        line["own"], false,
        "bob's view is not marked as his own: {line}"
    );
    let time = line["time"].as_str().unwrap_or_default();
    assert!(
        time.contains(':') && time.chars().filter(char::is_ascii_digit).count() >= 4,
        "the line shows a clock time, got {time:?}"
    );
    let age_ms = line["age_ms"].as_f64().expect("the time has a datetime");
    assert!(
        age_ms.abs() < 300_000.0,
        "the line's datetime is about now, off by {age_ms} ms"
    );
    let own = ann.wait_for_message("hello from ann").await;
    assert_eq!(own["own"], true, "ann sees her own message marked: {own}");

    // A reply, so the screenshot shows a conversation.
    bob.say("hi ann, bob here").await;
    ann.wait_for_message("hi ann, bob here").await;
    let png = ann.screenshot().await;
    let (width, height) = png_size(&png);
    let viewport = ann.execute("return [window.innerWidth, window.innerHeight];", vec![]);
    let viewport = viewport.await;
    assert!(
        width.abs_diff(viewport[0].as_u64().unwrap_or(0) as u32) <= 16
            && height.abs_diff(viewport[1].as_u64().unwrap_or(0) as u32) <= 16,
        "screenshot {width}x{height} matches the viewport {viewport}"
    );
    let path = save_screenshot("two-users.png", &png);
    if std::env::var("HUBBUB_UPDATE_SCREENSHOT").as_deref() == Ok("1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshot.png");
        std::fs::copy(&path, &docs).expect("copy the screenshot to docs/");
    }

    ann.end().await;
    bob.end().await;
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver: cargo test --test browser -- --ignored"]
async fn a_whisper_reaches_only_its_target() {
    let Some(bed) = TestBed::start().await else {
        return;
    };
    let ann = bed.browser().await;
    let bob = bed.browser().await;
    let cy = bed.browser().await;
    for (browser, name) in [(&ann, "ann"), (&bob, "bob"), (&cy, "cy")] {
        browser.connect_as(name).await;
        browser.join("lobby").await;
    }
    ann.wait_for_members(&["ann", "bob", "cy"]).await;

    let bob_id = ann
        .execute(
            "var items = document.querySelectorAll('#members li.member');
             for (var i = 0; i < items.length; i++) {
               var name = items[i].querySelector('.member-name');
               if (name && name.textContent === 'bob') return items[i].getAttribute('data-id');
             }
             return null;",
            vec![],
        )
        .await;
    let bob_id = bob_id.as_str().expect("bob is in ann's member list");
    ann.click(&format!("#members li.member[data-id=\"{bob_id}\"] button"))
        .await;
    ann.wait_for(
        "the composer to be in whisper mode for bob",
        "var target = document.getElementById('whisper-target');
         return !target.hidden && target.getAttribute('data-id') === arguments[0]
           && document.activeElement.id === 'message-input';",
        vec![json!(bob_id)],
    )
    .await;
    ann.type_into("#message-input", &format!("psst, only for bob{ENTER}"))
        .await;

    let whisper = bob.wait_for_whisper("psst, only for bob").await;
    assert_eq!(whisper["from"], "ann", "{whisper}");
    assert_eq!(whisper["to"], "bob", "{whisper}");
    let own = ann.wait_for_whisper("psst, only for bob").await;
    assert_eq!(
        own["own"], true,
        "the sender sees her whisper as hers: {own}"
    );

    // Back to the room: cy receives this after anything ann sent before it, so once it
    // is there a whisper to cy would be there too.
    ann.click("#whisper-cancel").await;
    ann.say("now for everyone").await;
    cy.wait_for_message("now for everyone").await;
    let leaked = cy
        .execute(
            "return {
               whispers: document.querySelectorAll('#log .whisper').length,
               text: document.body.textContent.indexOf('psst') >= 0
             };",
            vec![],
        )
        .await;
    assert_eq!(
        leaked,
        json!({"whispers": 0, "text": false}),
        "cy saw the whisper"
    );

    ann.end().await;
    bob.end().await;
    cy.end().await;
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver: cargo test --test browser -- --ignored"]
async fn closing_a_session_shows_it_leaving_in_the_other() {
    let Some(bed) = TestBed::start().await else {
        return;
    };
    let (ann, bob) = bed.ann_and_bob_in_lobby().await;

    bob.end().await;

    let line = ann
        .wait_for(
            "a system line saying bob left",
            "var lines = document.querySelectorAll('#log .line.system.system-leave .text');
             for (var i = 0; i < lines.length; i++) {
               if (/^bob (disconnected|left)\\.$/.test(lines[i].textContent)) return lines[i].textContent;
             }
             return null;",
            vec![],
        )
        .await;
    assert!(line.as_str().is_some(), "{line}");
    ann.wait_for_members(&["ann"]).await;

    ann.end().await;
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver: cargo test --test browser -- --ignored"]
async fn the_echo_box_shows_a_round_trip_time() {
    let Some(bed) = TestBed::start().await else {
        return;
    };
    let ann = bed.browser().await;
    ann.connect_as("ann").await;

    ann.type_into("#echo-input", "ping from the page").await;
    ann.click("#echo-send").await;
    let result = ann
        .wait_for(
            "a round trip time in #echo-result",
            "var rtt = document.querySelector('#echo-result .echo-rtt');
             if (!rtt || !/^\\d+ ms$/.test(rtt.textContent)) return null;
             return {
               text: document.querySelector('#echo-result .echo-text').textContent,
               rtt: rtt.textContent,
               all: document.getElementById('echo-result').textContent
             };",
            vec![],
        )
        .await;
    assert_eq!(result["text"], "ping from the page", "{result}");
    let rtt: u64 = result["rtt"]
        .as_str()
        .and_then(|rtt| rtt.strip_suffix(" ms"))
        .and_then(|ms| ms.parse().ok())
        .expect("\"NN ms\"");
    assert!(
        rtt < WAIT.as_millis() as u64,
        "a plausible round trip: {rtt} ms"
    );

    ann.end().await;
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver: cargo test --test browser -- --ignored"]
async fn a_restarted_server_on_the_same_port_gets_the_page_back_into_its_rooms() {
    let Some(mut bed) = TestBed::start().await else {
        return;
    };
    let ann = bed.browser().await;
    ann.connect_as("ann").await;
    ann.join("lobby").await;

    let port = bed.server.port;
    bed.server.controller.shutdown().await;
    let state = ann
        .wait_for(
            "#conn-state to say reconnecting",
            "var state = document.getElementById('conn-state');
             return state.dataset.state === 'reconnecting' && state.textContent;",
            vec![],
        )
        .await;
    assert!(
        state
            .as_str()
            .is_some_and(|s| s.starts_with("reconnecting")),
        "{state}"
    );

    bed.server = Server::rebind(port).await;
    ann.wait_for_within(
        RECONNECT_WAIT,
        "#conn-state to say connected again",
        "var state = document.getElementById('conn-state');
         return state.dataset.state === 'connected' && state.textContent === 'connected';",
        vec![],
    )
    .await;
    ann.wait_for(
        "the page to rejoin #lobby",
        "var tab = document.querySelector('#rooms .room-tab[data-room=\"lobby\"]');
         var rejoined = Array.prototype.some.call(
           document.querySelectorAll('#log .line.system .text'),
           function (t) { return t.textContent.indexOf('Rejoined #lobby') === 0; });
         return !!tab && !tab.classList.contains('offline') && rejoined;",
        vec![],
    )
    .await;

    let mut dee = WsClient::connect(&bed.server, "dee").await;
    let joined = dee.request(json!({"type": "join", "room": "lobby"})).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    let members: Vec<&str> = joined["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|member| member["name"].as_str())
        .collect();
    assert!(
        members.contains(&"ann"),
        "the page is back in #lobby: {joined}"
    );
    dee.request(json!({"type": "say", "room": "lobby", "text": "welcome back, ann"}))
        .await;
    let line = ann.wait_for_message("welcome back, ann").await;
    assert_eq!(line["from"], "dee", "{line}");

    ann.end().await;
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver: cargo test --test browser -- --ignored"]
async fn a_connection_cut_while_the_server_runs_resumes_with_what_was_said_meanwhile_once_in_order()
{
    let Some(bed) = TestBed::start_with(|config| {
        // dee reads nothing while the page is away, so answers no pings: keep it in.
        config.client_timeout = Duration::from_secs(600);
    })
    .await
    else {
        return;
    };
    let proxy = Proxy::start(bed.server.port).await;
    let ann = bed.browser_at(&proxy.url("/")).await;
    ann.connect_as("ann").await;
    ann.join("lobby").await;
    let mut dee = WsClient::member(&bed.server, "dee", "lobby").await;
    dee.request(json!({"type": "say", "room": "lobby", "text": "before the cut"}))
        .await;
    ann.wait_for_message("before the cut").await;

    proxy.cut();
    let left = dee
        .next_event_where("ann to leave #lobby", |event| {
            event["type"] == "member_left" && event["member"]["name"] == "ann"
        })
        .await;
    assert_eq!(
        left["reason"], "disconnect",
        "the server saw the page go: {left}"
    );
    let missed = [
        "said while away 1",
        "said while away 2",
        "said while away 3",
    ];
    for text in missed {
        dee.request(json!({"type": "say", "room": "lobby", "text": text}))
            .await;
    }
    ann.wait_for(
        "#conn-state to say the page lost its connection",
        "return document.getElementById('conn-state').dataset.state !== 'connected';",
        vec![],
    )
    .await;

    proxy.mend();
    ann.wait_for_within(
        RECONNECT_WAIT,
        "the page to rejoin #lobby with the 3 messages it missed",
        "return Array.prototype.some.call(
           document.querySelectorAll('#log .line.system .text'),
           function (t) { return t.textContent === 'Rejoined #lobby (3 missed messages).'; });",
        vec![],
    )
    .await;
    dee.request(json!({"type": "say", "room": "lobby", "text": "after the cut"}))
        .await;
    ann.wait_for_message("after the cut").await;

    let shown = ann.messages_in_log().await;
    let texts: Vec<&str> = shown.iter().map(|(text, _)| text.as_str()).collect();
    let mut want = vec!["before the cut"];
    want.extend(missed);
    want.push("after the cut");
    assert_eq!(texts, want, "each message once, in order: {shown:?}");
    let seqs: Vec<Option<u64>> = shown.iter().map(|(_, seq)| *seq).collect();
    assert_eq!(seqs, (1..=5).map(Some).collect::<Vec<_>>(), "{shown:?}");
    let resyncs = ann.resync_lines().await;
    assert!(
        resyncs.is_empty(),
        "a resumed room is not stale, but the page says {resyncs:?}"
    );

    ann.end().await;
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver: cargo test --test browser -- --ignored"]
async fn a_restarted_server_that_forgot_the_room_shows_the_page_resyncing_then_new_messages() {
    let Some(mut bed) = TestBed::start().await else {
        return;
    };
    let ann = bed.browser().await;
    ann.connect_as("ann").await;
    ann.join("lobby").await;
    let mut dee = WsClient::member(&bed.server, "dee", "lobby").await;
    for text in ["from the first server 1", "from the first server 2"] {
        dee.request(json!({"type": "say", "room": "lobby", "text": text}))
            .await;
    }
    ann.wait_for_message("from the first server 2").await;

    let port = bed.server.port;
    bed.server.controller.shutdown().await;
    ann.wait_for(
        "#conn-state to say the page lost its connection",
        "return document.getElementById('conn-state').dataset.state !== 'connected';",
        vec![],
    )
    .await;
    bed.server = Server::rebind(port).await;
    let resynced = ann
        .wait_for_within(
            RECONNECT_WAIT,
            "the page to say #lobby started over and rejoin it",
            "var lines = Array.prototype.map.call(document.querySelectorAll('#log .line.system'),
               function (line) { return line.textContent; });
             var rejoined = lines.some(function (t) { return t.indexOf('Rejoined #lobby.') >= 0; });
             return rejoined && document.querySelectorAll('#log .line.system-resync').length > 0;",
            vec![],
        )
        .await;
    assert_eq!(resynced, true);

    // The new server's #lobby counts from 1 again: its message 1 is not the old one.
    let mut dee = WsClient::member(&bed.server, "dee", "lobby").await;
    dee.request(json!({"type": "say", "room": "lobby", "text": "from the second server"}))
        .await;
    ann.wait_for_message("from the second server").await;
    let shown = ann.messages_in_log().await;
    assert_eq!(
        shown,
        [
            ("from the first server 1".to_string(), Some(1)),
            ("from the first server 2".to_string(), Some(2)),
            ("from the second server".to_string(), Some(1)),
        ],
        "the old messages stay, the new one is shown"
    );
    let resyncs = ann.resync_lines().await;
    assert_eq!(
        resyncs,
        ["#lobby started over on the server: the messages above are from before."],
        "one line says the view went stale"
    );
    let order = ann
        .execute(
            "var lines = Array.prototype.slice.call(document.querySelectorAll('#log .line'));
             var resync = lines.findIndex(function (l) { return l.classList.contains('system-resync'); });
             var newer = lines.findIndex(function (l) { return l.textContent.indexOf('from the second server') >= 0; });
             var older = lines.findIndex(function (l) { return l.textContent.indexOf('from the first server 2') >= 0; });
             return older < resync && resync < newer;",
            vec![],
        )
        .await;
    assert_eq!(
        order, true,
        "the resync line divides the old messages from the new"
    );

    ann.end().await;
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver: cargo test --test browser -- --ignored"]
async fn a_minimal_page_on_hubbub_js_alone_joins_shows_a_message_and_says_one() {
    let Some(bed) = TestBed::start().await else {
        return;
    };
    let min = bed.browser_at(&bed.server.url("/minimal.html")).await;
    min.type_into("#name", "min").await;
    let room = min.find("#room").await;
    must("clear #room", room.clear()).await;
    min.type_into("#room", &format!("corner{ENTER}")).await;
    min.wait_for(
        "the minimal page to be in #corner",
        "return document.getElementById('conn-state').dataset.state === 'joined'
           && !document.getElementById('text').disabled;",
        vec![],
    )
    .await;

    let mut dee = WsClient::member(&bed.server, "dee", "corner").await;
    dee.request(json!({"type": "say", "room": "corner", "text": "hello, minimal page"}))
        .await;
    let line = min.wait_for_message("hello, minimal page").await;
    assert_eq!(line["from"], "dee", "{line}");

    min.type_into("#text", &format!("hi dee, from the minimal page{ENTER}"))
        .await;
    let heard = dee
        .next_event_where("the minimal page's message", |event| {
            event["type"] == "message" && event["text"] == "hi dee, from the minimal page"
        })
        .await;
    assert_eq!(heard["from"]["name"], "min", "{heard}");
    min.wait_for_message("hi dee, from the minimal page").await;

    min.end().await;
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver: cargo test --test browser -- --ignored"]
async fn a_long_name_and_markup_in_a_message_render_as_text() {
    let Some(bed) = TestBed::start().await else {
        return;
    };
    // 32 characters, the longest name allowed, and markup that would run if parsed.
    let long_name = "<img src=x onerror=__xss=1>-long";
    assert_eq!(long_name.chars().count(), 32);
    let script = "<script>alert(1)</script>";
    let image = "<img src=x onerror=\"window.__xss=2\">";

    let mal = bed.browser().await;
    let bob = bed.browser().await;
    mal.connect_as(long_name).await;
    bob.connect_as("bob").await;
    mal.join("lobby").await;
    bob.join("lobby").await;
    bob.wait_for_members(&[long_name, "bob"]).await;
    mal.say(script).await;
    mal.say(image).await;

    for browser in [&bob, &mal] {
        let line = browser.wait_for_message(script).await;
        assert_eq!(
            line["from"], long_name,
            "the name is shown literally: {line}"
        );
        browser.wait_for_message(image).await;
        let injected = browser
            .execute(
                "return {
                   scripts: document.querySelectorAll('#log script, #members script').length,
                   images: document.querySelectorAll('img').length,
                   xss: typeof window.__xss,
                   scroll: document.documentElement.scrollWidth > window.innerWidth
                 };",
                vec![],
            )
            .await;
        assert_eq!(
            injected,
            json!({"scripts": 0, "images": 0, "xss": "undefined", "scroll": false}),
            "markup from the network must stay text (and a long name must not widen the page)"
        );
    }

    mal.end().await;
    bob.end().await;
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver: cargo test --test browser -- --ignored"]
async fn at_phone_width_the_page_has_no_horizontal_scroll_and_the_composer_is_visible() {
    let Some(bed) = TestBed::start().await else {
        return;
    };
    let ann = bed.browser().await;
    ann.set_window_size(390, 844).await;
    let width = ann
        .wait_for(
            "the viewport to be phone-sized",
            "return window.innerWidth <= 400 && window.innerWidth;",
            vec![],
        )
        .await;
    ann.connect_as("ann").await;
    ann.join("a-room-with-a-rather-long-name-for-a-phone").await;
    ann.say("a short line").await;
    let unbroken = format!("https://example.com/{}", "x".repeat(120));
    ann.say(&unbroken).await;
    ann.wait_for_message(&unbroken).await;

    let layout = ann
        .execute(
            "var composer = document.getElementById('composer');
             composer.scrollIntoView({block: 'end'});
             var box = composer.getBoundingClientRect();
             var send = document.getElementById('send').getBoundingClientRect();
             var input = document.getElementById('message-input').getBoundingClientRect();
             // Sub-pixel layout: a box may end a fraction of a pixel past the edge.
             var width = document.documentElement.clientWidth + 1, height = window.innerHeight + 1;
             return {
               scroll_width: document.documentElement.scrollWidth,
               client_width: document.documentElement.clientWidth,
               inner_width: window.innerWidth,
               composer_shown: getComputedStyle(composer).display !== 'none'
                 && getComputedStyle(composer).visibility !== 'hidden',
               composer_in_view: box.left >= 0 && box.right <= width
                 && box.top >= 0 && box.bottom <= height && box.height > 0,
               send_in_view: send.left >= 0 && send.right <= width && send.width > 0,
               input_width: input.width,
               composer_box: [box.left, box.top, box.right, box.bottom],
               inner_height: window.innerHeight
             };",
            vec![],
        )
        .await;
    assert_eq!(layout["inner_width"], width, "{layout}");
    // scrollWidth <= innerWidth, and not even under the vertical scrollbar.
    assert!(
        layout["scroll_width"].as_u64() <= layout["client_width"].as_u64(),
        "no horizontal scroll at 390 px: {layout}"
    );
    assert_eq!(layout["composer_shown"], true, "{layout}");
    assert_eq!(layout["composer_in_view"], true, "{layout}");
    assert_eq!(layout["send_in_view"], true, "{layout}");
    assert!(
        layout["input_width"].as_f64().unwrap_or(0.0) >= 150.0,
        "the message input is usable: {layout}"
    );
    let png = ann.screenshot().await;
    let (png_width, _) = png_size(&png);
    assert!(
        png_width <= 400,
        "a phone-width screenshot, got {png_width} px"
    );
    save_screenshot("phone.png", &png);

    ann.end().await;
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver: cargo test --test browser -- --ignored"]
async fn keyboard_alone_connects_joins_and_sends() {
    let Some(bed) = TestBed::start().await else {
        return;
    };
    let kim = bed.browser().await;

    // Focus order in the document, as a keyboard user meets it.
    let order = [
        "name",
        "connect",
        "disconnect",
        "error-dismiss",
        "room-input",
        "join",
        "button.room-tab",
        "leave",
        "whisper-cancel",
        "message-input",
        "send",
    ];
    let rank = |id: &str| order.iter().position(|o| id.starts_with(o));

    kim.press(&TAB).await;
    assert_eq!(
        kim.focused().await,
        "name",
        "the first Tab lands on the name"
    );
    kim.press("kim").await;
    kim.press(&TAB).await;
    assert_eq!(kim.focused().await, "connect");
    kim.press(&ENTER).await;
    kim.wait_connected().await;

    // Enter disabled the focused Connect button; the page moves focus on to the room input.
    assert_eq!(
        kim.focused().await,
        "room-input",
        "connecting from the keyboard leaves the focus in the room input"
    );
    kim.press(&format!("kbd-room{ENTER}")).await;
    kim.wait_for(
        "#kbd-room to be joined and active",
        "var tab = document.querySelector('#rooms .room-tab.active[data-room=\"kbd-room\"]');
         return !!tab && !tab.classList.contains('offline')
           && !!document.querySelector('#members li.member.self');",
        vec![],
    )
    .await;
    assert_eq!(
        kim.focused().await,
        "room-input",
        "focus stays in the room input after joining"
    );

    let path = kim.tab_until("message-input", 8).await;
    let ranks: Vec<_> = path.iter().map(|id| rank(id)).collect();
    assert!(
        ranks.iter().all(Option::is_some) && ranks.windows(2).all(|w| w[0] <= w[1]),
        "Tab walks forward from the room input to the composer: {path:?}"
    );
    kim.press(&format!("typed without a mouse{ENTER}")).await;
    let line = kim.wait_for_message("typed without a mouse").await;
    assert_eq!(line["from"], "kim", "{line}");
    let after = kim
        .execute(
            "return [document.activeElement.id, document.getElementById('message-input').value];",
            vec![],
        )
        .await;
    assert_eq!(
        after,
        json!(["message-input", ""]),
        "the input is cleared and keeps focus"
    );

    kim.end().await;
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver: cargo test --test browser -- --ignored"]
async fn a_big_room_shows_its_count_lists_more_on_request_and_counts_newcomers_quietly() {
    // `joined` lists 3 members; past 4 a room sends `member_count`, not `member_joined`.
    let Some(bed) = TestBed::start_with(|config| {
        config.joined_members_max = 3;
        config.presence_events_max = 4;
        config.member_count_interval = Duration::from_millis(100);
        // The plain clients below read nothing after joining, so they answer no pings:
        // keep them in the room however long the browser takes.
        config.client_timeout = Duration::from_secs(600);
    })
    .await
    else {
        return;
    };
    let mut crowd = Vec::new();
    for i in 1..=6 {
        crowd.push(WsClient::member(&bed.server, &format!("m{i}"), "hall").await);
    }
    let ann = bed.browser().await;
    ann.connect_as("ann").await;
    ann.join("hall").await;

    // The first two members by id and ann herself, and the count of all seven.
    let shown = ann.wait_for_member_panel("7", Some("and 4 more")).await;
    assert_eq!(shown["meta"], "7 members", "{shown}");
    assert_eq!(shown["listed"].as_array().map(Vec::len), Some(3), "{shown}");
    assert!(
        shown["listed"].as_array().unwrap().contains(&json!("ann")),
        "the page lists itself: {shown}"
    );
    assert_eq!(shown["button"], true, "\"show more\" is offered: {shown}");
    save_screenshot("big-room.png", &ann.screenshot().await);

    // "show more" is a button in the Tab order; Enter loads the rest.
    ann.click("#message-input").await;
    ann.tab_until("members-show-more", 12).await;
    ann.press(&ENTER).await;
    let everyone = ["ann", "m1", "m2", "m3", "m4", "m5", "m6"];
    let shown = ann.wait_for_member_panel("7", None).await;
    assert_eq!(shown["listed"], json!(everyone), "{shown}");
    assert_eq!(
        ann.focused().await,
        "button.member-btn",
        "the focus stays in the member list when \"show more\" goes away"
    );

    // Two more make nine: told by `member_count`, with no line in the log.
    let before = ann.log_lines().await;
    crowd.push(WsClient::member(&bed.server, "m7", "hall").await);
    crowd.push(WsClient::member(&bed.server, "m8", "hall").await);
    let shown = ann.wait_for_member_panel("9", Some("and 2 more")).await;
    assert_eq!(shown["meta"], "9 members", "{shown}");
    assert_eq!(shown["listed"], json!(everyone), "{shown}");
    // Whatever the page got for m7 and m8 came before m8's message.
    let m8 = crowd.last_mut().expect("m8 is in the crowd");
    m8.request(json!({"type": "say", "room": "hall", "text": "m8 here"}))
        .await;
    ann.wait_for_message("m8 here").await;
    let after = ann.log_lines().await;
    assert_eq!(
        after.len(),
        before.len() + 1,
        "only m8's message was added to the log: {before:?} then {after:?}"
    );
    assert_eq!(after[..before.len()], before[..], "{after:?}");

    ann.end().await;
}

// ------------------------------------------------------------------------ with tokens

/// The HS256 secret of the servers below (32 bytes and more, as `AUTH_JWT_SECRET` must be).
const AUTH_SECRET: &str = "the-browser-tests-token-secret-0123";

fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// `claims` signed with [`AUTH_SECRET`].
fn mint(claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(AUTH_SECRET.as_bytes()),
    )
    .expect("test claims sign")
}

/// A test bed whose server checks tokens with [`AUTH_SECRET`], `configure`d further.
async fn with_auth(configure: impl FnOnce(&mut Config)) -> Option<TestBed> {
    TestBed::start_with(|config| {
        config.auth_key = Some(hubbub::auth::AuthKey::Secret(hubbub::config::Secret::new(
            AUTH_SECRET,
        )));
        configure(config);
    })
    .await
}

/// What the page shows about its connection and token.
const TOKEN_VIEW: &str = "
    var status = document.getElementById('token-status');
    return {
      state: document.getElementById('conn-state').dataset.state,
      state_text: document.getElementById('conn-state').textContent,
      identity: document.getElementById('identity').hidden ? null
        : document.getElementById('identity').textContent,
      connection: document.getElementById('identity').title,
      user: document.getElementById('identity').getAttribute('data-user'),
      expires_at: status.hidden ? null : status.getAttribute('data-expires-at'),
      token_status: status.hidden ? null : status.textContent,
      token_field: !document.getElementById('token-row').hidden,
      error: document.getElementById('error-bar').hidden ? null
        : document.getElementById('error').textContent,
      hash: window.location.hash
    };";

#[actix_web::test]
#[ignore = "needs chromium and chromedriver: cargo test --test browser -- --ignored"]
async fn with_auth_a_token_in_the_fragment_shows_who_you_are_and_when_it_expires() {
    let Some(bed) = with_auth(|_| {}).await else {
        return;
    };
    let exp = now_seconds() + 3600;
    let token = mint(&json!({"sub": "ann-42", "name": "Ann", "exp": exp}));
    let ann = bed
        .browser_at(&bed.server.url(&format!("/#token={token}")))
        .await;

    // The page connects by itself with the fragment's token.
    ann.wait_connected().await;
    let view = ann.execute(TOKEN_VIEW, vec![]).await;
    assert_eq!(view["identity"], "you are Ann (user ann-42)", "{view}");
    assert_eq!(view["user"], "ann-42", "{view}");
    let expected = chrono::DateTime::from_timestamp(exp as i64, 0)
        .expect("a time")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert_eq!(view["expires_at"], expected, "{view}");
    assert!(
        view["token_status"]
            .as_str()
            .is_some_and(|text| text.starts_with("token expires at ")),
        "{view}"
    );
    assert_eq!(
        view["hash"], "",
        "the token is taken out of the address bar: {view}"
    );
    assert_eq!(view["error"], Value::Null, "{view}");

    // And it works as without tokens.
    ann.join("lobby").await;
    ann.say("hello with a token").await;
    let line = ann.wait_for_message("hello with a token").await;
    assert_eq!(line["from"], "Ann", "{line}");
    save_screenshot("with-a-token.png", &ann.screenshot().await);

    ann.end().await;
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver: cargo test --test browser -- --ignored"]
async fn with_auth_a_bad_token_or_none_is_shown_as_refused_and_a_good_one_then_connects() {
    let Some(bed) = with_auth(|_| {}).await else {
        return;
    };
    let refused = "return document.getElementById('conn-state').dataset.state === 'refused';";

    let bad = bed.browser_at(&bed.server.url("/#token=not-a-token")).await;
    bad.wait_for("the page to say refused", refused, vec![])
        .await;
    let view = bad.execute(TOKEN_VIEW, vec![]).await;
    let error = view["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("refused: token invalid or expired") && error.contains("not a JWT"),
        "the reason is shown: {view}"
    );
    assert_eq!(
        view["state_text"], "refused: token invalid or expired",
        "{view}"
    );
    assert_eq!(view["token_field"], true, "{view}");
    assert_eq!(view["identity"], Value::Null, "{view}");
    save_screenshot("refused.png", &bad.screenshot().await);

    // A good token in the field connects.
    let field = bad.find("#token").await;
    must("clear #token", field.clear()).await;
    let good = mint(&json!({"sub": "ann-42", "exp": now_seconds() + 600}));
    must("type into #token", field.send_keys(&good)).await;
    bad.click("#connect").await;
    bad.wait_connected().await;
    let view = bad.execute(TOKEN_VIEW, vec![]).await;
    assert_eq!(view["user"], "ann-42", "{view}");
    assert_eq!(view["error"], Value::Null, "the refusal is cleared: {view}");
    bad.end().await;

    // Without any token the page says one is needed, and offers the field.
    let none = bed.browser().await;
    let name = none.find("#name").await;
    must("type into #name", name.send_keys("bob")).await;
    none.click("#connect").await;
    none.wait_for("the page to say refused", refused, vec![])
        .await;
    let view = none.execute(TOKEN_VIEW, vec![]).await;
    assert!(
        view["error"]
            .as_str()
            .is_some_and(|error| error.contains("refused: this server needs a token")),
        "{view}"
    );
    assert_eq!(view["token_field"], true, "{view}");
    assert_eq!(
        none.focused().await,
        "token",
        "the focus goes to the token field"
    );
    none.end().await;
}

#[actix_web::test]
#[ignore = "needs chromium and chromedriver: cargo test --test browser -- --ignored"]
async fn with_a_refresh_url_the_page_refreshes_its_token_before_it_expires() {
    // Tokens live 8 s and get a second of leeway: the page must refresh within that.
    let Some(bed) = with_auth(|config| config.auth_leeway = Duration::from_secs(1)).await else {
        return;
    };
    let issuer = TokenIssuer::start(8);
    let page = bed
        .browser_at(&bed.server.url(&format!("/#refresh_url={}", issuer.url())))
        .await;
    page.wait_connected().await;
    let first = page.execute(TOKEN_VIEW, vec![]).await;
    assert_eq!(first["user"], "issued-user", "{first}");
    let first_expiry = first["expires_at"].as_str().expect("an expiry").to_owned();
    assert!(
        first["token_status"]
            .as_str()
            .is_some_and(|text| text.ends_with("refreshed before then")),
        "{first}"
    );

    // A refresh moves the expiry later, on the same connection.
    let refreshed = page
        .wait_for(
            "the token to be refreshed",
            "var at = document.getElementById('token-status').getAttribute('data-expires-at');
             return at && at !== arguments[0] && at;",
            vec![json!(first_expiry)],
        )
        .await;
    assert!(
        refreshed.as_str().unwrap_or_default() > first_expiry.as_str(),
        "{refreshed} after {first_expiry}"
    );

    // A witness whose token expires a second after the page's first one: once the
    // server has closed it, the page's first token is past its deadline too.
    let witness_exp = chrono::DateTime::parse_from_rfc3339(&first_expiry)
        .expect("an RFC 3339 expiry")
        .timestamp()
        + 1;
    let witness = mint(&json!({"sub": "witness", "exp": witness_exp}));
    let url = format!("ws://127.0.0.1:{}/ws?token={witness}", bed.server.port);
    let (mut socket, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("the witness connects in time")
        .expect("the witness's token is good");
    let closed = tokio::time::timeout(WAIT, async {
        while let Some(frame) = socket.next().await {
            if let Ok(Message::Close(Some(close))) = frame {
                return u16::from(close.code);
            }
        }
        0
    })
    .await
    .expect("the witness is closed in time");
    assert_eq!(closed, 4001);

    let now = page.execute(TOKEN_VIEW, vec![]).await;
    assert_eq!(now["state"], "connected", "{now}");
    assert_eq!(
        now["connection"], first["connection"],
        "the same connection: {now}"
    );
    assert!(
        issuer.issued() >= 2,
        "a first token and a refreshed one: {}",
        issuer.issued()
    );
    page.end().await;
}

/// An HTTP endpoint on loopback that answers every request with a fresh token for
/// `issued-user`, valid `ttl_seconds`, the way an application's token URL would (with
/// CORS, as it is on another origin than the page).
struct TokenIssuer {
    port: u16,
    issued: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl TokenIssuer {
    fn start(ttl_seconds: u64) -> TokenIssuer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = listener.local_addr().expect("its address").port();
        listener.set_nonblocking(true).expect("non-blocking");
        let issued = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (counter, stopped) = (issued.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                let mut stream = match listener.accept() {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        std::thread::sleep(POLL);
                        continue;
                    }
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(WAIT));
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let token =
                    mint(&json!({"sub": "issued-user", "exp": now_seconds() + ttl_seconds}));
                counter.fetch_add(1, Ordering::Relaxed);
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nAccess-Control-Allow-Origin: *\r\n\
                     Cache-Control: no-store\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{token}",
                    token.len()
                );
                let _ = stream.write_all(response.as_bytes());
            }
        });
        TokenIssuer { port, issued, stop }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    fn issued(&self) -> usize {
        self.issued.load(Ordering::Relaxed)
    }
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

// ------------------------------------------------------------------------ test bed

/// Whether this machine can run the browser tests. Says why not and returns `false`,
/// except under `CI=true`, where a missing browser is a failure.
fn browser_installed() -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|path| !Path::new(path).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "CI=true and {} is missing: apt-get install chromium chromium-driver",
            missing.join(", ")
        );
    }
    eprintln!(
        "skipping: chromium/chromedriver not installed (apt-get install chromium chromium-driver)"
    );
    false
}

/// What one test needs: its server, the shared chromedriver and a browser slot.
struct TestBed {
    server: Server,
    driver: Arc<Chromedriver>,
    _slot: SemaphorePermit<'static>,
}

impl TestBed {
    /// `None` when the browser tests are skipped on this machine.
    async fn start() -> Option<TestBed> {
        TestBed::start_with(|_| {}).await
    }

    /// [`TestBed::start`] with a server whose [`Config`] `configure` has changed.
    async fn start_with(configure: impl FnOnce(&mut Config)) -> Option<TestBed> {
        if !browser_installed() {
            return None;
        }
        let _ = env_logger::builder().is_test(true).try_init();
        let slot = BROWSER_SLOTS
            .acquire()
            .await
            .expect("the slot semaphore is never closed");
        let driver = Chromedriver::shared().await;
        Some(TestBed {
            server: Server::start_with(
                TcpListener::bind("127.0.0.1:0").expect("bind a free port"),
                configure,
            ),
            driver,
            _slot: slot,
        })
    }

    /// The usual start: ann and bob connected and both in #lobby, each seeing the other.
    async fn ann_and_bob_in_lobby(&self) -> (Browser, Browser) {
        let ann = self.browser().await;
        let bob = self.browser().await;
        ann.connect_as("ann").await;
        bob.connect_as("bob").await;
        ann.join("lobby").await;
        bob.join("lobby").await;
        ann.wait_for_members(&["ann", "bob"]).await;
        (ann, bob)
    }

    /// A new browser session (fresh profile) showing the page.
    async fn browser(&self) -> Browser {
        self.browser_at(&self.server.url("/")).await
    }

    /// A new browser session showing `url`: another page, or the page through a [`Proxy`].
    async fn browser_at(&self, url: &str) -> Browser {
        let browser = Browser::start(&self.driver).await;
        browser.open(url).await;
        browser
    }
}

/// A hubbub on a loopback port.
struct Server {
    port: u16,
    controller: Controller,
}

impl Server {
    fn start(listener: TcpListener) -> Server {
        Server::start_with(listener, |_| {})
    }

    /// [`Server::start`] with the test [`Config`] changed by `configure`.
    fn start_with(listener: TcpListener, configure: impl FnOnce(&mut Config)) -> Server {
        let mut config = Config {
            port: 0,
            workers: 2,
            ..Config::default()
        };
        configure(&mut config);
        let app = Application::build_with_listener(config, listener).expect("build hubbub");
        let port = app.port();
        let controller = app.controller();
        actix_web::rt::spawn(app.run_until_stopped());
        Server { port, controller }
    }

    /// A new server on `port` once the old one has let go of it.
    async fn rebind(port: u16) -> Server {
        let deadline = Instant::now() + WAIT;
        loop {
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(listener) => return Server::start(listener),
                Err(err) if Instant::now() >= deadline => {
                    panic!("could not bind port {port} again within {WAIT:?}: {err}")
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }
}

/// A plain WebSocket client on `/ws`, for a member that is not a browser.
struct WsClient {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_ref: usize,
}

impl WsClient {
    async fn connect(server: &Server, name: &str) -> WsClient {
        let url = format!("ws://127.0.0.1:{}/ws?name={name}", server.port);
        let (socket, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("WebSocket handshake in time")
            .expect("WebSocket handshake");
        let mut client = WsClient {
            socket,
            next_ref: 0,
        };
        let welcome = client.next_event().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        client
    }

    /// Connects as `name` and joins `room`.
    async fn member(server: &Server, name: &str, room: &str) -> WsClient {
        let mut client = WsClient::connect(server, name).await;
        let joined = client.request(json!({"type": "join", "room": room})).await;
        assert_eq!(joined["type"], "joined", "{joined}");
        client
    }

    /// Sends `frame` with a fresh `ref` and returns the reply carrying it.
    async fn request(&mut self, mut frame: Value) -> Value {
        self.next_ref += 1;
        let reference = format!("r{}", self.next_ref);
        frame["ref"] = json!(reference);
        tokio::time::timeout(WAIT, self.socket.send(Message::text(frame.to_string())))
            .await
            .expect("send in time")
            .expect("send");
        loop {
            let event = self.next_event().await;
            if event["ref"] == reference {
                return event;
            }
        }
    }

    /// Reads events until one `matches` (waiting at most [`WAIT`] for each); returns it.
    async fn next_event_where(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let event = self.next_event().await;
            if matches(&event) {
                return event;
            }
            assert!(Instant::now() < deadline, "waited {WAIT:?} for {what}");
        }
    }

    async fn next_event(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("a frame in time")
                .expect("the connection stays open")
                .expect("a valid frame");
            if let Message::Text(text) = message {
                return serde_json::from_str(&text).expect("frames are JSON");
            }
        }
    }
}

// ------------------------------------------------------------------------ proxy

/// A TCP proxy in front of the server, for a page whose connection a test breaks the way
/// a network does while the server keeps running: [`Proxy::cut`] drops every connection
/// through it (both sockets close) and holds new ones, accepted but not forwarded, until
/// [`Proxy::mend`].
struct Proxy {
    port: u16,
    /// `true` while cut.
    cut: tokio::sync::watch::Sender<bool>,
    /// Every connection through the proxy, to abort on [`Proxy::cut`].
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// A proxy on a free loopback port forwarding to `upstream` on loopback.
    async fn start(upstream: u16) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy to a free port");
        let port = listener.local_addr().expect("the proxy's address").port();
        let (cut, is_cut) = tokio::sync::watch::channel(false);
        let connections = Arc::new(Mutex::new(Vec::new()));
        let accept = tokio::spawn({
            let connections = connections.clone();
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let mut is_cut = is_cut.clone();
                    let forward = tokio::spawn(async move {
                        if is_cut.wait_for(|cut| !cut).await.is_err() {
                            return;
                        }
                        let Ok(mut server) =
                            tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                        else {
                            return;
                        };
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    });
                    connections
                        .lock()
                        .expect("no test panics holding the proxy's lock")
                        .push(forward.abort_handle());
                }
            }
        });
        Proxy {
            port,
            cut,
            connections,
            accept,
        }
    }

    /// Drops every connection through the proxy; new ones wait for [`Proxy::mend`].
    fn cut(&self) {
        self.cut.send_replace(true);
        let connections = std::mem::take(
            &mut *self
                .connections
                .lock()
                .expect("no test panics holding the proxy's lock"),
        );
        for connection in connections {
            connection.abort();
        }
    }

    /// Forwards again, the connections held meanwhile first.
    fn mend(&self) {
        self.cut.send_replace(false);
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

// ------------------------------------------------------------------------ chromedriver

/// A `chromedriver` process we started, killed (with anything it left behind) on drop.
struct Chromedriver {
    child: Child,
    /// `127.0.0.1:<port>`.
    address: String,
}

impl Chromedriver {
    /// The chromedriver of the tests running now, or a new one if there is none.
    async fn shared() -> Arc<Chromedriver> {
        static SHARED: tokio::sync::Mutex<Weak<Chromedriver>> =
            tokio::sync::Mutex::const_new(Weak::new());
        let mut shared = SHARED.lock().await;
        if let Some(driver) = shared.upgrade() {
            return driver;
        }
        let driver = Arc::new(Chromedriver::start().await);
        *shared = Arc::downgrade(&driver);
        driver
    }

    async fn start() -> Chromedriver {
        let mut last_problem = String::new();
        for _attempt in 0..3 {
            // A free port, given back just before chromedriver takes it; a lost race
            // makes chromedriver exit, and the next attempt picks another port.
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("find a free port")
                .port();
            let child = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own process group, so Chromium processes it leaves can be ended.
                .process_group(0)
                .spawn()
                .expect("start chromedriver");
            let mut driver = Chromedriver {
                child,
                address: format!("127.0.0.1:{port}"),
            };
            match driver.wait_until_ready().await {
                Ok(()) => return driver,
                Err(problem) => last_problem = problem,
            }
        }
        panic!("chromedriver did not start: {last_problem}");
    }

    /// Polls `/status` until it says ready.
    async fn wait_until_ready(&mut self) -> Result<(), String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("HTTP client");
        let url = format!("http://{}/status", self.address);
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("chromedriver exited with {status}"));
            }
            let ready = match http.get(&url).send().await {
                Ok(response) => response
                    .json::<Value>()
                    .await
                    .is_ok_and(|status| status["value"]["ready"] == true),
                Err(_) => false,
            };
            if ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("{url} not ready within {WAIT:?}"));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The negative id names the process group chromedriver leads (see `start`).
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------------------ WebDriver

/// One browser session: a Chromium with its own profile, ended on drop.
struct Browser {
    client: Client,
    driver: Arc<Chromedriver>,
    /// The WebDriver session id, for ending the session from `Drop`.
    session: String,
    profile: PathBuf,
    ended: bool,
}

impl Browser {
    async fn start(driver: &Arc<Chromedriver>) -> Browser {
        static PROFILES: AtomicUsize = AtomicUsize::new(0);
        let profile = std::env::temp_dir().join(format!(
            "hubbub-browser-{}-{}",
            std::process::id(),
            PROFILES.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).expect("create a browser profile directory");
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
            format!("--user-data-dir={}", profile.display()),
        ];
        let capabilities = Capabilities::from_iter([
            ("browserName".to_string(), json!("chrome")),
            (
                "goog:chromeOptions".to_string(),
                json!({"binary": CHROMIUM, "args": args}),
            ),
        ]);
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        let url = format!("http://{}/", driver.address);
        let client = match tokio::time::timeout(COMMAND_TIMEOUT, builder.connect(&url)).await {
            Ok(Ok(client)) => client,
            Ok(Err(err)) => panic!("start a Chromium session: {err}"),
            Err(_) => panic!("start a Chromium session: no answer within {COMMAND_TIMEOUT:?}"),
        };
        let session = command("the session id", client.session_id())
            .await
            .unwrap_or_else(|err| panic!("{err}"))
            .expect("a session id");
        Browser {
            client,
            driver: driver.clone(),
            session,
            profile,
            ended: false,
        }
    }

    async fn open(&self, url: &str) {
        must(format!("go to {url}"), self.client.goto(url)).await;
        self.wait_for(
            "the page to load",
            "return document.readyState === 'complete' && !!document.getElementById('conn-state');",
            vec![],
        )
        .await;
    }

    async fn find(&self, css: &str) -> Element {
        must(format!("find {css}"), self.client.find(Locator::Css(css))).await
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        must(format!("click {css}"), element.click()).await;
    }

    /// Types into the element (focusing it first, as a click would).
    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        must(format!("type into {css}"), element.send_keys(text)).await;
    }

    /// Presses keys on whatever has the focus, like a keyboard does.
    async fn press(&self, keys: &str) {
        let keyboard = keys.chars().fold(
            KeyActions::new("keyboard".to_string()),
            |keyboard, value| {
                keyboard
                    .then(KeyAction::Down { value })
                    .then(KeyAction::Up { value })
            },
        );
        must(
            format!("press {keys:?}"),
            self.client.perform_actions(keyboard),
        )
        .await;
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its result.
    async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        must("run a script", self.client.execute(script, args)).await
    }

    async fn set_window_size(&self, width: u32, height: u32) {
        must(
            format!("resize the window to {width}x{height}"),
            self.client.set_window_size(width, height),
        )
        .await;
    }

    /// The visible part of the page as PNG bytes.
    async fn screenshot(&self) -> Vec<u8> {
        must("take a screenshot", self.client.screenshot()).await
    }

    /// Ends the session (Chromium quits, closing its WebSockets) and removes its profile.
    async fn end(mut self) {
        self.ended = true;
        must("end the browser session", self.client.clone().close()).await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }

    /// Waits until `script` returns something truthy and returns that.
    async fn wait_for(&self, what: &str, script: &str, args: Vec<Value>) -> Value {
        self.wait_for_within(WAIT, what, script, args).await
    }

    async fn wait_for_within(
        &self,
        limit: Duration,
        what: &str,
        script: &str,
        args: Vec<Value>,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let last = command("run a script", self.client.execute(script, args.clone())).await;
            match &last {
                Ok(value) if truthy(value) => return value.clone(),
                _ if Instant::now() >= deadline => panic!(
                    "waited {limit:?} for {what}; last result: {last:?}; the page: {}",
                    self.describe().await
                ),
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// What the page shows, for failure messages.
    async fn describe(&self) -> Value {
        let script = "
            return {
              state: document.getElementById('conn-state').textContent,
              error: (document.getElementById('error-bar') || {hidden: true}).hidden ? null
                : document.getElementById('error').textContent,
              focus: document.activeElement && document.activeElement.id,
              members: Array.prototype.map.call(
                document.querySelectorAll('#members li.member'),
                function (li) { return li.textContent; }),
              log: Array.prototype.map.call(
                document.querySelectorAll('#log .line'),
                function (line) { return line.textContent; }).slice(-10)
            };";
        command("describe the page", self.client.execute(script, vec![]))
            .await
            .unwrap_or_else(|err| json!(err))
    }

    // -------------------------------------------------------------- the page

    /// Connects with the display name `name`, waiting for `welcome`.
    async fn connect_as(&self, name: &str) {
        let field = self.find("#name").await;
        must("clear #name", field.clear()).await;
        must("type into #name", field.send_keys(name)).await;
        self.click("#connect").await;
        self.wait_connected().await;
    }

    async fn wait_connected(&self) {
        self.wait_for(
            "#conn-state to say connected",
            "return document.getElementById('conn-state').dataset.state === 'connected'
              && !document.getElementById('identity').hidden;",
            vec![],
        )
        .await;
    }

    /// Joins `room` through the room input and waits until it is the active room.
    async fn join(&self, room: &str) {
        self.type_into("#room-input", &format!("{room}{ENTER}"))
            .await;
        self.wait_for(
            &format!("#{room} to be joined and active"),
            "var tab = document.querySelector('#rooms .room-tab.active[data-room=\"' + arguments[0] + '\"]');
             return !!tab && !tab.classList.contains('offline')
               && !!document.querySelector('#members li.member.self');",
            vec![json!(room)],
        )
        .await;
    }

    /// Sends `text` to the active room: typed into the composer, then Enter.
    async fn say(&self, text: &str) {
        self.type_into("#message-input", &format!("{text}{ENTER}"))
            .await;
    }

    /// Waits until the member list shows exactly `names` (in any order); returns
    /// `{names, self}`.
    async fn wait_for_members(&self, names: &[&str]) -> Value {
        let mut want: Vec<&str> = names.to_vec();
        want.sort_unstable();
        self.wait_for(
            &format!("the member list to be {want:?}"),
            "var items = document.querySelectorAll('#members li.member');
             var names = [], self = null;
             for (var i = 0; i < items.length; i++) {
               var name = items[i].querySelector('.member-name').textContent;
               names.push(name);
               if (items[i].classList.contains('self')) self = name;
             }
             names.sort();
             return JSON.stringify(names) === JSON.stringify(arguments[0])
               && {names: names, self: self};",
            vec![json!(want)],
        )
        .await
    }

    /// Waits for a room message with exactly `text` in the log; returns what its line
    /// shows: `{from, time, age_ms, own}`.
    async fn wait_for_message(&self, text: &str) -> Value {
        self.wait_for(
            &format!("a message {text:?} in #log"),
            "var lines = document.querySelectorAll('#log .line.msg');
             for (var i = 0; i < lines.length; i++) {
               var text = lines[i].querySelector('.text');
               if (!text || text.textContent !== arguments[0]) continue;
               var time = lines[i].querySelector('time.time');
               return {
                 from: lines[i].querySelector('.from').textContent,
                 time: time && time.textContent,
                 age_ms: time && Date.now() - Date.parse(time.getAttribute('datetime')),
                 own: lines[i].classList.contains('own')
               };
             }
             return null;",
            vec![json!(text)],
        )
        .await
    }

    /// Waits until the members panel counts `count` (as shown, e.g. `"7,900"`) and says
    /// `more` under the list (`None`: no such line); returns what it shows:
    /// `{count, meta, listed, more, button}`, `listed` being the names in sorted order
    /// and `button` whether "show more" is offered.
    async fn wait_for_member_panel(&self, count: &str, more: Option<&str>) -> Value {
        self.wait_for(
            &format!("the members panel to count {count} with {more:?} under the list"),
            "var more = document.getElementById('members-more');
             var shown = {
               count: document.getElementById('member-count').textContent,
               meta: document.getElementById('room-meta').textContent,
               listed: Array.prototype.map.call(
                 document.querySelectorAll('#members li.member .member-name'),
                 function (name) { return name.textContent; }).sort(),
               more: more.hidden ? null : document.getElementById('members-more-text').textContent,
               button: !more.hidden && !document.getElementById('members-show-more').hidden
             };
             return shown.count === arguments[0] && shown.more === arguments[1] && shown;",
            vec![json!(count), json!(more)],
        )
        .await
    }

    /// The text of every line in the log, oldest first.
    async fn log_lines(&self) -> Vec<String> {
        let lines = self
            .execute(
                "return Array.prototype.map.call(document.querySelectorAll('#log .line'),
                   function (line) { return line.textContent; });",
                vec![],
            )
            .await;
        serde_json::from_value(lines).expect("an array of strings")
    }

    /// Every room message in the log, oldest first: its text and its `seq`.
    async fn messages_in_log(&self) -> Vec<(String, Option<u64>)> {
        let lines = self
            .execute(
                "return Array.prototype.map.call(document.querySelectorAll('#log .line.msg'),
                   function (line) {
                     var seq = line.getAttribute('data-seq');
                     return [line.querySelector('.text').textContent, seq === null ? null : Number(seq)];
                   });",
                vec![],
            )
            .await;
        serde_json::from_value(lines).expect("an array of [text, seq]")
    }

    /// The text of every line saying a room's view went stale (`resync`), oldest first.
    async fn resync_lines(&self) -> Vec<String> {
        let lines = self
            .execute(
                "return Array.prototype.map.call(
                   document.querySelectorAll('#log .line.system-resync .text'),
                   function (text) { return text.textContent; });",
                vec![],
            )
            .await;
        serde_json::from_value(lines).expect("an array of strings")
    }

    /// Waits for a whisper line with exactly `text`; returns `{from, to, own}`.
    async fn wait_for_whisper(&self, text: &str) -> Value {
        self.wait_for(
            &format!("a whisper {text:?} in #log"),
            "var lines = document.querySelectorAll('#log .line.whisper');
             for (var i = 0; i < lines.length; i++) {
               if (lines[i].querySelector('.text').textContent !== arguments[0]) continue;
               return {
                 from: lines[i].querySelector('.from').textContent,
                 to: lines[i].querySelector('.to').textContent,
                 own: lines[i].classList.contains('own')
               };
             }
             return null;",
            vec![json!(text)],
        )
        .await
    }

    /// The focused element: its id, or `tag.class.list` when it has none.
    async fn focused(&self) -> String {
        let focused = self
            .execute(
                "var e = document.activeElement;
                 if (!e) return '';
                 if (e.id) return e.id;
                 return [e.tagName.toLowerCase()].concat(Array.prototype.slice.call(e.classList)).join('.');",
                vec![],
            )
            .await;
        focused.as_str().unwrap_or_default().to_string()
    }

    /// Presses Tab until `id` has the focus (at most `limit` times); returns the focus
    /// after each press.
    async fn tab_until(&self, id: &str, limit: usize) -> Vec<String> {
        let mut path = Vec::new();
        for _ in 0..limit {
            self.press(&TAB).await;
            let focused = self.focused().await;
            path.push(focused.clone());
            if focused == id {
                return path;
            }
        }
        panic!("{limit} Tabs did not reach #{id}; focus went {path:?}");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        // A test failed before `end`: end the session anyway. Not through fantoccini,
        // whose session task needs the runtime that is being torn down with the test.
        if let Ok(mut stream) = TcpStream::connect(&self.driver.address) {
            let _ = stream.set_read_timeout(Some(COMMAND_TIMEOUT));
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session, self.driver.address
            );
            if stream.write_all(request.as_bytes()).is_ok() {
                read_http_response(&mut stream);
            }
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Reads one HTTP response (chromedriver keeps the connection open after it).
fn read_http_response(stream: &mut TcpStream) {
    let mut response = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        if let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|length| length.trim().parse().ok())
                .unwrap_or(0);
            if response.len() >= end + 4 + length {
                return;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(read) => response.extend_from_slice(&chunk[..read]),
        }
    }
}

/// One WebDriver command, given at most [`COMMAND_TIMEOUT`]; an error says `what` failed.
async fn command<T>(
    what: impl Display,
    request: impl Future<Output = Result<T, CmdError>>,
) -> Result<T, String> {
    match tokio::time::timeout(COMMAND_TIMEOUT, request).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(format!("{what}: {err}")),
        Err(_) => Err(format!("{what}: no answer within {COMMAND_TIMEOUT:?}")),
    }
}

/// [`command`], panicking if it fails.
async fn must<T>(what: impl Display, request: impl Future<Output = Result<T, CmdError>>) -> T {
    command(what, request)
        .await
        .unwrap_or_else(|err| panic!("{err}"))
}

/// JavaScript's idea of true, for values that came back from the page.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

// ------------------------------------------------------------------------ screenshots

/// Writes `png` to `target/browser/<name>` after checking it is a real, non-trivial PNG.
fn save_screenshot(name: &str, png: &[u8]) -> PathBuf {
    assert!(
        png.len() > 10 * 1024,
        "a screenshot of the page is more than 10 KB, got {} bytes",
        png.len()
    );
    let (width, height) = png_size(png);
    assert!(
        (300..=4096).contains(&width) && (300..=4096).contains(&height),
        "plausible screenshot dimensions, got {width}x{height}"
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    std::fs::create_dir_all(&dir).expect("create target/browser");
    let path = dir.join(name);
    std::fs::write(&path, png).expect("write the screenshot");
    path
}

/// Width and height from the IHDR chunk, after checking the PNG signature.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(
        png.len() > 24 && png.starts_with(b"\x89PNG\r\n\x1a\n") && &png[12..16] == b"IHDR",
        "not a PNG: {:?}",
        &png[..png.len().min(24)]
    );
    let be = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    (be(16), be(20))
}
