//! The upgrade: a strict check of the request, then the actor started on the upgraded
//! connection behind the frame-size guard. It does not choose the actor or refuse for
//! capacity (the routes and admission do).

use actix::Actor;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;

use super::{frame_guard::FrameSizeGuard, WsContext, WsFrame};

/// Why a request to a WebSocket endpoint was not upgraded (RFC 6455 section 4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandshakeRefusal {
    /// Not a GET: 405.
    MethodNotAllowed,
    /// No `Upgrade: websocket`, or a version other than 13: 426, with
    /// `Sec-WebSocket-Version: 13` so the client knows what we speak.
    UpgradeRequired,
    /// A missing or malformed `Sec-WebSocket-Key`: 400.
    BadKey,
}

/// Checks the upgrade request strictly: version 13 only and a well-formed key
/// (actix-web-actors alone also accepts versions 7 and 8 and any key).
pub(crate) fn check_handshake(req: &HttpRequest) -> Result<(), HandshakeRefusal> {
    use actix_http::ws::HandshakeError as E;
    actix_http::ws::verify_handshake(req.head()).map_err(|err| match err {
        E::GetMethodRequired => HandshakeRefusal::MethodNotAllowed,
        E::BadWebsocketKey => HandshakeRefusal::BadKey,
        E::NoWebsocketUpgrade
        | E::NoConnectionUpgrade
        | E::NoVersionHeader
        | E::UnsupportedVersion => HandshakeRefusal::UpgradeRequired,
    })
}

/// Starts `actor` on the upgraded connection (after [`check_handshake`]). A frame
/// whose header declares more than `max_frame_bytes` is refused as soon as the header
/// arrives, before any of its payload is buffered.
pub(crate) fn upgrade<A>(
    actor: A,
    req: &HttpRequest,
    payload: web::Payload,
    max_frame_bytes: usize,
) -> Result<HttpResponse, actix_web::Error>
where
    A: Actor<Context = WsContext<A>> + actix::StreamHandler<WsFrame>,
{
    let guarded = FrameSizeGuard::new(payload, max_frame_bytes as u64);
    ws::WsResponseBuilder::new(actor, req, guarded)
        .frame_size(max_frame_bytes)
        .start()
}
