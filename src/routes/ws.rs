//! The two WebSocket upgrades: `/ws` (the hub protocol) and `/echo` (plain RFC 6455 echo).

use actix_web::{
    http::{header, StatusCode},
    web, HttpRequest, HttpResponse,
};
use serde::Deserialize;

use std::rc::Rc;

use super::{error::ApiError, AppState};
use crate::{
    admission::{Refusal, Ticket},
    echo::EchoSession,
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
    refuse_during_shutdown(&state)?;
    transport::check_handshake(&req).map_err(refuse_handshake)?;
    let ticket = admit(&req, &state)?;
    let query = query.into_inner();
    let id = state.ids.next();
    let mut query_errors = Vec::new();
    // A bad name or room does not refuse the connection: the client gets a guest name
    // or no room, and an `error` frame right after `welcome` saying why.
    let name = match query.name.as_deref().map(DisplayName::parse) {
        Some(Ok(name)) => name,
        Some(Err(err)) => {
            query_errors.push(ProtocolError::from(err));
            DisplayName::guest(id)
        }
        None => DisplayName::guest(id),
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
    let session = Session::new(setup, worker_of(&req), state.settings.clone());
    let max_message_bytes = state.settings.limits.max_message_bytes;
    transport::upgrade(session, &req, payload, max_message_bytes).map_err(handshake_failed)
}

pub async fn echo_socket(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    refuse_during_shutdown(&state)?;
    transport::check_handshake(&req).map_err(refuse_handshake)?;
    let ticket = admit(&req, &state)?;
    let session = EchoSession::new(
        state.settings.clone(),
        worker_of(&req),
        ticket,
        SocketCloser::for_request(&req),
    );
    let max_message_bytes = state.settings.limits.max_message_bytes;
    transport::upgrade(session, &req, payload, max_message_bytes).map_err(handshake_failed)
}

/// A slot for this connection, or the HTTP answer that refuses it.
fn admit(req: &HttpRequest, state: &AppState) -> Result<Ticket, ApiError> {
    let ip = req.peer_addr().map(|address| address.ip());
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .map(|value| value.to_str().unwrap_or("(not text)"));
    state.admission.admit(ip, origin).map_err(|refusal| {
        log::warn!("refused a WebSocket from {ip:?}: {refusal:?}");
        match refusal {
            Refusal::ServerFull { max } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_full",
                format!("the server holds its maximum of {max} connections; try again later"),
            ),
            Refusal::TooManyFromAddress { max } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_connections",
                format!("at most {max} connections per address"),
            ),
            Refusal::OriginNotAllowed { origin } => ApiError::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                format!("WebSockets from origin {origin} are not allowed here"),
            ),
        }
    })
}

fn refuse_during_shutdown(state: &AppState) -> Result<(), ApiError> {
    if state.shutdown.is_triggered() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down",
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

/// A request to a WebSocket path that is not a valid upgrade.
fn handshake_failed(err: actix_web::Error) -> ApiError {
    // The handshake error knows its status (400, 405, 426) only through its response.
    let status = err.error_response().status();
    ApiError::new(
        status,
        "websocket_upgrade_required",
        format!("this endpoint speaks WebSocket: {err}"),
    )
}
