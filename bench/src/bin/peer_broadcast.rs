//! The broadcast peer: actix's `websockets/chat` example without rooms or commands, the
//! floor hubbub's fan-out is measured against (`scripts/bench.sh`). A session actor per
//! connection registers with one server actor, which `do_send`s every text message to
//! every session, the sender included. The text is a shared `ByteString` (a recipient
//! costs a refcount, not a copy). No heartbeat, no limits, no JSON. `PORT` from the
//! environment (unset: any free port); prints `listening on http://127.0.0.1:PORT`.

#![deny(unsafe_code)]

use std::{any::Any, collections::HashSet, net::TcpListener};

use actix::prelude::*;
use actix_web::{dev::Extensions, rt::net::TcpStream, web, App, HttpRequest, HttpServer};
use actix_web_actors::ws;
use bytestring::ByteString;

/// A text from a client to the server, and from the server to each session.
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
            Ok(ws::Message::Text(text)) => self.server.do_send(Text(text)),
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

/// Every path is the broadcast endpoint.
async fn upgrade(req: HttpRequest, body: web::Payload, server: web::Data<Addr<Server>>) -> Reply {
    ws::start(
        Session {
            server: server.get_ref().clone(),
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

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    eprintln!(
        "listening on http://127.0.0.1:{}",
        listener.local_addr()?.port()
    );
    let server = web::Data::new(Server::default().start());
    HttpServer::new(move || {
        App::new()
            .app_data(server.clone())
            .default_service(web::to(upgrade))
    })
    .on_connect(no_delay)
    .listen(listener)?
    .run()
    .await
}
