//! What the fault tests share: a node run as a process of its own (the real binary, so
//! a test can SIGKILL or SIGTERM it while the other nodes live on in this process), and
//! waits that prove something did *not* happen: a frame awaited under a bounded window,
//! none allowed to come.

use std::time::Duration;

use futures_util::{Stream, StreamExt};
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};

use super::{Cluster, NODE_TIMEOUT};
use crate::{
    config::Binary,
    helpers::{Client, DEADLINE},
};

/// A node of `cluster` run as the `hubbub` binary (killed on drop): same Redis, same
/// prefix and `NODE_TIMEOUT_MS` as the in-process nodes, its own generated `NODE_ID`.
pub async fn binary_node(cluster: &Cluster) -> Binary {
    let url = cluster.redis.url();
    let timeout = NODE_TIMEOUT.as_millis().to_string();
    Binary::start(&[
        ("REDIS_URL", url.as_str()),
        ("REDIS_PREFIX", cluster.prefix.as_str()),
        ("NODE_TIMEOUT_MS", timeout.as_str()),
        ("WORKERS", "2"),
    ])
    .await
}

/// Connects to the binary node as `name`, reading `welcome` (as `TestApp::connect`).
pub async fn connect_to(node: &Binary, name: &str) -> Client {
    let mut client = Client::open(&node.ws_url(&format!("/ws?name={name}"))).await;
    let welcome = client.expect("welcome").await;
    client.id = welcome["id"].as_str().expect("welcome has an id").into();
    client.name = welcome["name"].as_str().expect("welcome has a name").into();
    client.welcome = welcome;
    client
}

/// `client` joins `room`, whose members so far are `others`: its `joined`, once every
/// one of them has seen its `member_joined` (so no presence event is left in flight).
pub async fn join(client: &mut Client, room: &str, others: &mut [&mut Client]) -> Value {
    client.send(json!({"type": "join", "room": room})).await;
    let joined = client.expect("joined").await;
    assert_eq!(joined["room"], room, "{joined}");
    for other in others.iter_mut() {
        let Some(arrived) = next_event_by(other, Instant::now() + DEADLINE).await else {
            panic!(
                "{} got no member_joined for {} joining {room} within {DEADLINE:?}",
                other.name, client.name
            );
        };
        assert_eq!(
            arrived["type"], "member_joined",
            "{}: {arrived}",
            other.name
        );
        assert_eq!(
            (&arrived["room"], &arrived["member"]["id"]),
            (&json!(room), &json!(client.id)),
            "{} expected {} joining {room}: {arrived}",
            other.name,
            client.name
        );
    }
    joined
}

/// The next event on `client`, or `None` once `deadline` has passed without one.
/// Pings and pongs are skipped; a close or a broken connection panics.
pub async fn next_event_by(client: &mut Client, deadline: Instant) -> Option<Value> {
    next_event_on(&mut client.socket, deadline, &client.name).await
}

/// [`next_event_by`] on a bare stream (a split socket's reading half).
pub async fn next_event_on<S>(stream: &mut S, deadline: Instant, who: &str) -> Option<Value>
where
    S: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    loop {
        let frame = tokio::time::timeout_at(deadline, stream.next())
            .await
            .ok()?;
        match frame {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Text(text))) => {
                return Some(serde_json::from_str(&text).expect("frames are JSON"))
            }
            Some(Ok(other)) => panic!("{who}: expected a JSON event, got {other:?}"),
            Some(Err(err)) => panic!("{who}: the connection broke: {err}"),
            None => panic!("{who}: the connection ended"),
        }
    }
}

/// Watches every client in `clients` for `window`, all at once: nothing may arrive
/// (pings aside) and every connection must stay open. This is the one place the fault
/// tests wait a fixed time, because what they check is that nothing happens.
pub async fn quiet(clients: &mut [&mut Client], window: Duration, what: &str) {
    let until = Instant::now() + window;
    let watches = clients.iter_mut().map(|client| async move {
        if let Some(event) = next_event_by(client, until).await {
            panic!("{what}: {} received {event}", client.name);
        }
    });
    futures_util::future::join_all(watches).await;
}

/// Sends `say` (text `<text> #<attempt>`) until it is served before `deadline`:
/// `unavailable` answers (the store is coming back) are retried every 100 ms, anything
/// else than the `message` panics. The served `message`, and how many attempts it took.
pub async fn say_until_served(
    client: &mut Client,
    room: &str,
    text: &str,
    deadline: Instant,
) -> (Value, u32) {
    for attempt in 1.. {
        let reference = format!("try-{attempt}");
        client
            .send(json!({
                "type": "say",
                "room": room,
                "text": format!("{text} #{attempt}"),
                "ref": reference,
            }))
            .await;
        let Some(reply) = next_event_by(client, deadline).await else {
            panic!("{}: say #{attempt} was not answered in time", client.name);
        };
        match reply["type"].as_str() {
            Some("message") => {
                assert_eq!(reply["ref"], reference, "{reply}");
                assert_eq!(reply["text"], format!("{text} #{attempt}"), "{reply}");
                return (reply, attempt);
            }
            Some("error") if reply["code"] == "unavailable" => {
                assert_eq!(reply["ref"], reference, "{reply}");
                assert!(
                    Instant::now() + Duration::from_millis(100) < deadline,
                    "{}: say still unavailable after {attempt} attempts",
                    client.name
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => panic!("{}: say #{attempt} answered {reply}", client.name),
        }
    }
    unreachable!("attempts never run out")
}

/// Reads `n` `message` events from `stream` (anything else panics), each under
/// `per_frame`.
pub async fn messages_on<S>(stream: &mut S, n: usize, per_frame: Duration, who: &str) -> Vec<Value>
where
    S: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    let mut messages = Vec::with_capacity(n);
    while messages.len() < n {
        let deadline = Instant::now() + per_frame;
        let Some(event) = next_event_on(stream, deadline, who).await else {
            panic!(
                "{who}: message {} of {n} did not arrive within {per_frame:?}",
                messages.len() + 1
            );
        };
        assert_eq!(event["type"], "message", "{who}: {event}");
        messages.push(event);
    }
    messages
}

/// `messages` must be `seq` `first..` with no gap or repeat, with texts `texts` in order.
pub fn assert_in_order(messages: &[Value], first: u64, texts: &[String], who: &str) {
    assert_eq!(messages.len(), texts.len(), "{who}: how many messages");
    for (k, (message, text)) in messages.iter().zip(texts).enumerate() {
        let seq = first + k as u64;
        assert_eq!(
            (&message["seq"], message["text"].as_str()),
            (&json!(seq), Some(text.as_str())),
            "{who}: message {k} should be seq {seq}, {:.40}…",
            text
        );
    }
}
