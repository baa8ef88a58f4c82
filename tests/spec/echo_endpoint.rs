//! `/echo`: a plain RFC 6455 echo peer. Text and binary come back byte-exact (fragmented
//! messages joined), pings get pongs, the client's close code is echoed, and the size
//! limit and protocol violations end the connection with the matching close code.

use tokio_tungstenite::tungstenite::{
    protocol::{
        frame::{
            coding::{CloseCode, Data, OpCode},
            Frame,
        },
        CloseFrame,
    },
    Message,
};

use crate::helpers::{spawn_app, spawn_app_with, Client, TestApp, DEADLINE};
use futures_util::StreamExt;

async fn open_echo(app: &TestApp) -> Client {
    Client::open(&app.ws_url("/echo")).await
}

/// The next frame from the server, pongs included (only the server's own heartbeat pings
/// are skipped; the library answers them).
async fn next_frame(client: &mut Client) -> Message {
    loop {
        let message = tokio::time::timeout(DEADLINE, client.socket.next())
            .await
            .expect("a frame before the deadline")
            .expect("the connection to stay open")
            .expect("a valid frame");
        if !matches!(message, Message::Ping(_)) {
            return message;
        }
    }
}

/// One fragment of a data message: `first` says whether it opens the message (then it
/// carries the message's opcode) or continues it.
fn fragment(payload: &[u8], opcode: Data, first: bool, last: bool) -> Message {
    let opcode = if first { opcode } else { Data::Continue };
    Message::Frame(Frame::message(payload.to_vec(), OpCode::Data(opcode), last))
}

fn close_with(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.to_string().into(),
    }))
}

#[actix_web::test]
async fn text_is_echoed_byte_exact_including_multi_byte_utf8() {
    let app = spawn_app().await;
    let mut client = open_echo(&app).await;
    for text in ["hello", "héllo wörld — ☃ 𝄞 日本語 🦀", " spaced  out \n"] {
        client.send_message(Message::text(text)).await;
        assert_eq!(client.next_message().await, Message::Text(text.to_string()));
    }
}

#[actix_web::test]
async fn binary_is_echoed_byte_exact_including_zero_bytes() {
    let app = spawn_app().await;
    let mut client = open_echo(&app).await;
    let payload = vec![0u8, 0, 1, 2, 0, 255, 254, 0, b'h', b'i', 0];
    client.send_message(Message::Binary(payload.clone())).await;
    assert_eq!(client.next_message().await, Message::Binary(payload));
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    client
        .send_message(Message::Binary(all_bytes.clone()))
        .await;
    assert_eq!(client.next_message().await, Message::Binary(all_bytes));
}

#[actix_web::test]
async fn a_ping_gets_a_pong_with_the_same_payload() {
    let app = spawn_app().await;
    let mut client = open_echo(&app).await;
    client
        .send_message(Message::Ping(b"are you there?".to_vec()))
        .await;
    assert_eq!(
        next_frame(&mut client).await,
        Message::Pong(b"are you there?".to_vec())
    );
}

#[actix_web::test]
async fn a_fragmented_text_message_comes_back_whole_with_interleaved_pings_answered() {
    let app = spawn_app().await;
    let mut client = open_echo(&app).await;
    // The snowman (e2 98 83) is split across the first two fragments: only the whole
    // message has to be valid UTF-8.
    let whole = "snow ☃ man, 日本語";
    let bytes = whole.as_bytes();
    let (first, rest) = bytes.split_at(6);
    let (middle, last) = rest.split_at(7);
    client
        .send_message(fragment(first, Data::Text, true, false))
        .await;
    client
        .send_message(Message::Ping(b"between-1".to_vec()))
        .await;
    client
        .send_message(fragment(middle, Data::Text, false, false))
        .await;
    client
        .send_message(Message::Ping(b"between-2".to_vec()))
        .await;
    client
        .send_message(fragment(last, Data::Text, false, true))
        .await;

    assert_eq!(
        next_frame(&mut client).await,
        Message::Pong(b"between-1".to_vec())
    );
    assert_eq!(
        next_frame(&mut client).await,
        Message::Pong(b"between-2".to_vec())
    );
    assert_eq!(
        next_frame(&mut client).await,
        Message::Text(whole.to_string())
    );
}

#[actix_web::test]
async fn a_fragmented_binary_message_comes_back_whole_with_an_interleaved_ping_answered() {
    let app = spawn_app().await;
    let mut client = open_echo(&app).await;
    let parts: [&[u8]; 3] = [&[0, 1, 2], &[0, 0, 0, 0], &[255, 0]];
    client
        .send_message(fragment(parts[0], Data::Binary, true, false))
        .await;
    client
        .send_message(fragment(parts[1], Data::Binary, false, false))
        .await;
    client.send_message(Message::Ping(vec![0, 7, 0])).await;
    client
        .send_message(fragment(parts[2], Data::Binary, false, true))
        .await;

    assert_eq!(next_frame(&mut client).await, Message::Pong(vec![0, 7, 0]));
    assert_eq!(
        next_frame(&mut client).await,
        Message::Binary(vec![0, 1, 2, 0, 0, 0, 0, 255, 0])
    );
}

#[actix_web::test]
async fn messages_before_and_after_a_fragmented_one_keep_their_order() {
    let app = spawn_app().await;
    let mut client = open_echo(&app).await;
    client.send_message(Message::text("before")).await;
    client
        .send_message(fragment(b"mid", Data::Text, true, false))
        .await;
    client
        .send_message(fragment(b"dle", Data::Text, false, true))
        .await;
    client.send_message(Message::text("after")).await;
    assert_eq!(client.next_message().await, Message::Text("before".into()));
    assert_eq!(client.next_message().await, Message::Text("middle".into()));
    assert_eq!(client.next_message().await, Message::Text("after".into()));
}

#[actix_web::test]
async fn a_client_close_with_code_4000_is_answered_with_close_4000() {
    let app = spawn_app().await;
    let mut client = open_echo(&app).await;
    client.send_message(close_with(4000, "done here")).await;
    client.expect_close(4000).await;
}

#[actix_web::test]
async fn a_close_with_an_invalid_code_gets_close_1002() {
    // 999 is below the defined range, 1005 must never be sent on the wire, 2000 is
    // reserved for future RFCs: a peer sending any of them breaks the protocol.
    for code in [999, 1005, 2000] {
        let app = spawn_app().await;
        let mut client = open_echo(&app).await;
        client.send_message(close_with(code, "bad code")).await;
        client.expect_close(1002).await;
    }
}

#[actix_web::test]
async fn a_single_frame_over_max_message_bytes_gets_close_1009() {
    let app = spawn_app_with(|c| c.max_message_bytes = 1024).await;
    let mut client = open_echo(&app).await;
    let fits = "a".repeat(1024);
    client.send_message(Message::text(fits.clone())).await;
    assert_eq!(client.next_message().await, Message::Text(fits));
    client.send_message(Message::Binary(vec![0u8; 1025])).await;
    client.expect_close(1009).await;
}

#[actix_web::test]
async fn fragments_that_together_exceed_max_message_bytes_get_close_1009() {
    let app = spawn_app_with(|c| c.max_message_bytes = 1024).await;
    let mut client = open_echo(&app).await;
    // Each fragment is well under the limit; the message is 1200 bytes.
    let part = [b'x'; 400];
    client
        .send_message(fragment(&part, Data::Text, true, false))
        .await;
    client
        .send_message(fragment(&part, Data::Text, false, false))
        .await;
    client
        .send_message(fragment(&part, Data::Text, false, true))
        .await;
    client.expect_close(1009).await;
}

#[actix_web::test]
async fn fragments_that_together_fit_exactly_are_echoed() {
    let app = spawn_app_with(|c| c.max_message_bytes = 1024).await;
    let mut client = open_echo(&app).await;
    let part = [7u8; 512];
    client
        .send_message(fragment(&part, Data::Binary, true, false))
        .await;
    client
        .send_message(fragment(&part, Data::Binary, false, true))
        .await;
    assert_eq!(
        client.next_message().await,
        Message::Binary(vec![7u8; 1024])
    );
}

#[actix_web::test]
async fn the_default_limit_lets_65536_bytes_through_and_closes_65537_with_1009() {
    let app = spawn_app().await;
    assert_eq!(app.config.max_message_bytes, 65_536);
    let mut client = open_echo(&app).await;
    let at_limit = "é".repeat(32_768);
    assert_eq!(at_limit.len(), 65_536);
    client.send_message(Message::text(at_limit.clone())).await;
    assert_eq!(client.next_message().await, Message::Text(at_limit));
    client.send_message(Message::text("z".repeat(65_537))).await;
    client.expect_close(1009).await;
}

#[actix_web::test]
async fn text_that_is_not_utf8_gets_close_1007() {
    let app = spawn_app().await;
    let mut single = open_echo(&app).await;
    single
        .send_message(fragment(&[b'o', b'k', 0xff], Data::Text, true, true))
        .await;
    single.expect_close(1007).await;

    let mut fragmented = open_echo(&app).await;
    fragmented
        .send_message(fragment(&[0xce], Data::Text, true, false))
        .await;
    fragmented
        .send_message(fragment(&[0xff], Data::Text, false, true))
        .await;
    fragmented.expect_close(1007).await;
}

#[actix_web::test]
async fn the_hub_endpoint_also_closes_an_oversize_message_with_1009() {
    let app = spawn_app_with(|c| c.max_message_bytes = 1024).await;
    let mut client = app.connect("?name=big").await;
    let text = "y".repeat(1024);
    client
        .send_text(&format!(r#"{{"type":"echo","text":"{text}"}}"#))
        .await;
    client.expect_close(1009).await;
}
