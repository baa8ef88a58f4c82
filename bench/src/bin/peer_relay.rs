//! The relay peer: the broadcast peer (`peer_broadcast.rs`, same structure) with the
//! plain Redis PUBLISH/SUBSCRIBE relay people hand-roll to run several instances as one:
//! every client text is `PUBLISH`ed on channel `relay`, and one pub/sub subscriber per
//! instance hands every relayed text to the instance's server actor, which `do_send`s it
//! to every local session, the sender included. So each instance delivers each text once
//! to each of its sessions, wherever it was sent. No seq, no history, no presence: what
//! hubbub's cluster is measured against (`scripts/bench.sh` with `BENCH_CLUSTER=1`).
//!
//! `RELAY_URL` (a `redis://` URL, required) and `PORT` (unset: any free port) from the
//! environment. It subscribes before it listens, so a client that can connect receives
//! every text published after; then prints `listening on http://127.0.0.1:PORT`.
//!
//! Publishing goes through one task per instance that sends whatever texts are waiting as
//! one pipeline over a [`ConnectionManager`]: one sender's texts stay in its order, and a
//! busy instance pays one round trip per batch, not per text (what a careful hand-rolled
//! relay does; one `PUBLISH` round trip per text would make Redis's latency the ceiling).

#![deny(unsafe_code)]

use std::{any::Any, collections::HashSet, net::TcpListener};

use actix::prelude::*;
use actix_web::{dev::Extensions, rt::net::TcpStream, web, App, HttpRequest, HttpServer};
use actix_web_actors::ws;
use bytestring::ByteString;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

/// The channel every instance publishes on and subscribes to.
const CHANNEL: &str = "relay";
/// Texts sent in one pipeline at most.
const BATCH: usize = 512;

/// A relayed text, from the subscriber to the server actor and from it to each session.
#[derive(Message, Clone)]
#[rtype(result = "()")]
struct Text(ByteString);

/// A session started or stopped: sent exactly once each, from `started` and `stopping`.
#[derive(Message)]
#[rtype(result = "()")]
enum Membership {
    Connect { session: Recipient<Text> },
    Disconnect { session: Recipient<Text> },
}

#[derive(Default)]
struct Server {
    sessions: HashSet<Recipient<Text>>,
}

impl Actor for Server {
    type Context = Context<Self>;
}

impl Handler<Membership> for Server {
    type Result = ();
    fn handle(&mut self, msg: Membership, _: &mut Context<Self>) {
        match msg {
            Membership::Connect { session } => self.sessions.insert(session),
            Membership::Disconnect { session } => self.sessions.remove(&session),
        };
    }
}

impl Handler<Text> for Server {
    type Result = ();
    fn handle(&mut self, msg: Text, _: &mut Context<Self>) {
        for session in &self.sessions {
            session.do_send(msg.clone());
        }
    }
}

struct Session {
    server: Addr<Server>,
    /// To the publishing task: a client's text goes to Redis, not to the server actor.
    publish: mpsc::UnboundedSender<ByteString>,
}

impl Actor for Session {
    type Context = ws::WebsocketContext<Self>;
    fn started(&mut self, ctx: &mut Self::Context) {
        let session = ctx.address().recipient();
        self.server.do_send(Membership::Connect { session });
    }
    fn stopping(&mut self, ctx: &mut Self::Context) -> Running {
        let session = ctx.address().recipient();
        self.server.do_send(Membership::Disconnect { session });
        Running::Stop
    }
}

impl Handler<Text> for Session {
    type Result = ();
    fn handle(&mut self, msg: Text, ctx: &mut Self::Context) {
        ctx.text(msg.0);
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for Session {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        match msg {
            Ok(ws::Message::Text(text)) => {
                // Closed only when the publishing task has ended, i.e. the process is.
                let _ = self.publish.send(text);
            }
            Ok(ws::Message::Ping(data)) => ctx.pong(&data),
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Ok(_) => {}
            Err(_) => ctx.stop(),
        }
    }
}

/// What every connection is handed.
#[derive(Clone)]
struct Shared {
    server: Addr<Server>,
    publish: mpsc::UnboundedSender<ByteString>,
}

/// Every path is the broadcast endpoint.
async fn upgrade(req: HttpRequest, body: web::Payload, shared: web::Data<Shared>) -> Reply {
    ws::start(
        Session {
            server: shared.server.clone(),
            publish: shared.publish.clone(),
        },
        &req,
        body,
    )
}

type Reply = actix_web::Result<actix_web::HttpResponse>;

/// actix-web leaves Nagle on for accepted sockets; small frames must not wait for ACKs.
fn no_delay(connection: &dyn Any, _: &mut Extensions) {
    if let Some(stream) = connection.downcast_ref::<TcpStream>() {
        let _ = stream.set_nodelay(true);
    }
}

/// Publishes every text it is given, in order, each batch that is waiting as one
/// pipeline. A failed batch is dropped with a line on stderr (no retry: the shape people
/// hand-roll has none); the connection manager reconnects behind it.
async fn publish_texts(
    mut redis: ConnectionManager,
    mut texts: mpsc::UnboundedReceiver<ByteString>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while texts.recv_many(&mut batch, BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for text in batch.drain(..) {
            pipe.publish(CHANNEL, &*text).ignore();
        }
        if let Err(err) = pipe.query_async::<()>(&mut redis).await {
            eprintln!("peer_relay: PUBLISH failed: {err}");
        }
    }
}

/// Hands every text relayed on [`CHANNEL`] to the server actor. The subscription is made
/// by the caller; if the connection drops, the process exits (a lost subscription would
/// otherwise lose texts without a sign).
async fn relay_texts(mut messages: redis::aio::PubSubStream, server: Addr<Server>) {
    while let Some(message) = messages.next().await {
        match String::from_utf8(message.get_payload_bytes().to_vec()) {
            Ok(text) => server.do_send(Text(ByteString::from(text))),
            Err(_) => eprintln!("peer_relay: a relayed text that is not UTF-8, dropped"),
        }
    }
    eprintln!("peer_relay: the subscription to {CHANNEL} ended; exiting");
    std::process::exit(1);
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let fail = |what: &str, err: redis::RedisError| {
        std::io::Error::other(format!("peer_relay: {what}: {err}"))
    };
    let url = std::env::var("RELAY_URL")
        .map_err(|_| std::io::Error::other("peer_relay: set RELAY_URL (redis://host:port/db)"))?;
    let client = redis::Client::open(url.as_str()).map_err(|err| fail("RELAY_URL", err))?;
    let mut pubsub = client
        .get_async_pubsub()
        .await
        .map_err(|err| fail("subscriber connection", err))?;
    pubsub
        .subscribe(CHANNEL)
        .await
        .map_err(|err| fail("SUBSCRIBE", err))?;
    let publisher = client
        .get_connection_manager()
        .await
        .map_err(|err| fail("publisher connection", err))?;

    let server = Server::default().start();
    actix_web::rt::spawn(relay_texts(pubsub.into_on_message(), server.clone()));
    let (publish, texts) = mpsc::unbounded_channel();
    actix_web::rt::spawn(publish_texts(publisher, texts));

    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    eprintln!(
        "listening on http://127.0.0.1:{}",
        listener.local_addr()?.port()
    );
    let shared = web::Data::new(Shared { server, publish });
    HttpServer::new(move || {
        App::new()
            .app_data(shared.clone())
            .default_service(web::to(upgrade))
    })
    .on_connect(no_delay)
    .listen(listener)?
    .run()
    .await
}
