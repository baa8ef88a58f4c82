//! The two WebSocket upgrades: `/ws` (the hub protocol) and `/echo` (plain RFC 6455 echo).
//! Every refusal is counted by cause, and every admitted connection by endpoint while it
//! is open ([`crate::metrics`]).

use actix_web::{
    http::{header, StatusCode},
    web, HttpRequest, HttpResponse,
};
use serde::Deserialize;

use std::rc::Rc;

use super::{error::ApiError, AppState};
use crate::{
    admission::{Refusal, Ticket},
    client_address::ClientAddress,
    echo::EchoSession,
    metrics::{Counters, Endpoint, UpgradeRefusal},
    protocol::{DisplayName, ProtocolError, RoomName},
    session::{Session, SessionSetup},
    transport::{self, HandshakeRefusal, SocketCloser},
    worker::Worker,
};

/// `/ws?name=...&room=...`; both optional.
#[derive(Debug, Deserialize)]
pub struct ConnectQuery {
    name: Option<String>,
    room: Option<String>,
}

/// This worker thread's plumbing (app data, one per worker).
fn worker_of(req: &HttpRequest) -> Rc<Worker> {
    req.app_data::<Rc<Worker>>()
        .cloned()
        .expect("every worker's app has its Worker (startup::Application::build)")
}

pub async fn hub_socket(
    req: HttpRequest,
    payload: web::Payload,
    query: web::Query<ConnectQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let worker = worker_of(&req);
    let ticket = admit_upgrade(&req, &state, &worker, Endpoint::Ws)?;
    let query = query.into_inner();
    let (id, guest_number) = state.ids.next();
    let mut query_errors = Vec::new();
    // A bad name or room does not refuse the connection: the client gets a guest name
    // or no room, and an `error` frame right after `welcome` saying why.
    let name = match query.name.as_deref().map(DisplayName::parse) {
        Some(Ok(name)) => name,
        Some(Err(err)) => {
            query_errors.push(ProtocolError::from(err));
            DisplayName::guest(guest_number)
        }
        None => DisplayName::guest(guest_number),
    };
    let room = match query.room.as_deref().map(RoomName::parse) {
        Some(Ok(room)) => Some(room),
        Some(Err(err)) => {
            query_errors.push(ProtocolError::from(err));
            None
        }
        None => None,
    };
    let setup = SessionSetup {
        id,
        name,
        room,
        query_errors,
        socket: SocketCloser::for_request(&req),
        ticket,
    };
    let counters = worker.counters().clone();
    let session = Session::new(setup, worker, state.settings.clone());
    let max_message_bytes = state.settings.limits.max_message_bytes;
    transport::upgrade(session, &req, payload, max_message_bytes)
        .map_err(|err| handshake_failed(&counters, err))
}

pub async fn echo_socket(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let worker = worker_of(&req);
    let ticket = admit_upgrade(&req, &state, &worker, Endpoint::Echo)?;
    let counters = worker.counters().clone();
    let session = EchoSession::new(
        state.settings.clone(),
        worker,
        ticket,
        SocketCloser::for_request(&req),
    );
    let max_message_bytes = state.settings.limits.max_message_bytes;
    transport::upgrade(session, &req, payload, max_message_bytes)
        .map_err(|err| handshake_failed(&counters, err))
}

/// What every upgrade checks first, in order: the server is not shutting down, the
/// request is a WebSocket handshake, and there is a slot for it. The slot's ticket
/// counts the connection as open on `endpoint`; a refusal is counted by its cause (both
/// in this worker thread's counters).
fn admit_upgrade(
    req: &HttpRequest,
    state: &AppState,
    worker: &Worker,
    endpoint: Endpoint,
) -> Result<Ticket, ApiError> {
    let admitted = refuse_during_shutdown(state)
        .and_then(|()| {
            transport::check_handshake(req)
                .map_err(|refusal| (UpgradeRefusal::BadHandshake, refuse_handshake(refusal)))
        })
        .and_then(|()| admit(req, state));
    match admitted {
        Ok(ticket) => Ok(ticket.counted(worker.counters().connection_opened(endpoint))),
        Err((cause, error)) => {
            worker.counters().upgrade_refused(cause);
            Err(error)
        }
    }
}

/// A slot for this connection, or the HTTP answer that refuses it. The slot is counted
/// against the client's address: the TCP peer's, or the one a trusted proxy forwarded.
fn admit(req: &HttpRequest, state: &AppState) -> Result<Ticket, (UpgradeRefusal, ApiError)> {
    let client = ClientAddress::resolve(req.peer_addr(), req.headers(), &state.trusted_proxies);
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .map(|value| value.to_str().unwrap_or("(not text)"));
    state.admission.admit(client.ip, origin).map_err(|refusal| {
        log::warn!("refused a WebSocket from {client}: {refusal:?}");
        match refusal {
            Refusal::ServerFull { max } => (
                UpgradeRefusal::ServerFull,
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server_full",
                    format!("the server holds its maximum of {max} connections; try again later"),
                ),
            ),
            Refusal::TooManyFromAddress { max } => (
                UpgradeRefusal::TooManyConnections,
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too_many_connections",
                    format!("at most {max} connections per address"),
                ),
            ),
            Refusal::OriginNotAllowed { origin } => (
                UpgradeRefusal::OriginNotAllowed,
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "origin_not_allowed",
                    format!("WebSockets from origin {origin} are not allowed here"),
                ),
            ),
        }
    })
}

fn refuse_during_shutdown(state: &AppState) -> Result<(), (UpgradeRefusal, ApiError)> {
    if state.shutdown.is_triggered() {
        return Err((
            UpgradeRefusal::ShuttingDown,
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the server is shutting down",
            ),
        ));
    }
    Ok(())
}

fn refuse_handshake(refusal: HandshakeRefusal) -> ApiError {
    match refusal {
        HandshakeRefusal::MethodNotAllowed => ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "WebSocket upgrades use GET",
        ),
        HandshakeRefusal::UpgradeRequired => ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "websocket_upgrade_required",
            "this endpoint speaks WebSocket (RFC 6455, version 13)",
        ),
        HandshakeRefusal::BadKey => ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_websocket_key",
            "Sec-WebSocket-Key must be 16 bytes in base64",
        ),
    }
}

/// A request to a WebSocket path that is not a valid upgrade (counted as
/// `bad_handshake`).
fn handshake_failed(counters: &Counters, err: actix_web::Error) -> ApiError {
    counters.upgrade_refused(UpgradeRefusal::BadHandshake);
    // The handshake error knows its status (400, 405, 426) only through its response.
    let status = err.error_response().status();
    ApiError::new(
        status,
        "websocket_upgrade_required",
        format!("this endpoint speaks WebSocket: {err}"),
    )
}
