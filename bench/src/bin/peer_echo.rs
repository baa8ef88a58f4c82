//! The echo peer: the least an actix-web-actors echo server does, as the floor hubbub's
//! `/echo` and `/ws` are measured against (`scripts/bench.sh`). One actor per connection
//! sends back every text and binary message; no heartbeat, no limits, no JSON.
//!
//! `PORT` from the environment (0 or unset: any free port); prints
//! `listening on http://127.0.0.1:PORT` to stderr once bound.

#![deny(unsafe_code)]

use std::{any::Any, net::TcpListener};

use actix::{Actor, StreamHandler};
use actix_web::{dev::Extensions, rt::net::TcpStream, web, App, HttpRequest, HttpResponse};
use actix_web::{Error, HttpServer};
use actix_web_actors::ws;

/// One connection.
struct EchoSession;

impl Actor for EchoSession {
    type Context = ws::WebsocketContext<Self>;
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for EchoSession {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        match msg {
            Ok(ws::Message::Text(text)) => ctx.text(text),
            Ok(ws::Message::Binary(data)) => ctx.binary(data),
            // RFC 6455 housekeeping only, so clients can close cleanly.
            Ok(ws::Message::Ping(data)) => ctx.pong(&data),
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                actix::ActorContext::stop(ctx);
            }
            Ok(_) => {}
            Err(_) => actix::ActorContext::stop(ctx),
        }
    }
}

/// Every path is the echo endpoint, so the load generator's `/echo` and `/ws` both work.
async fn upgrade(req: HttpRequest, payload: web::Payload) -> Result<HttpResponse, Error> {
    ws::start(EchoSession, &req, payload)
}

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
        .and_then(|port| port.parse().ok())
        .unwrap_or(0);
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    eprintln!(
        "listening on http://127.0.0.1:{}",
        listener.local_addr()?.port()
    );
    HttpServer::new(|| App::new().default_service(web::to(upgrade)))
        .on_connect(no_delay)
        .listen(listener)?
        .run()
        .await
}
