//! The two WebSocket upgrades: `/ws` (the hub protocol) and `/echo` (plain RFC 6455 echo).
//! Every refusal is counted by cause, and every admitted connection by endpoint while it
//! is open ([`crate::metrics`]). With authentication on, a `/ws` upgrade needs a valid
//! token (`?token=` or `Authorization: Bearer`), checked here before the upgrade; `/echo`
//! needs none.

use actix_web::{
    http::{header, StatusCode},
    web, HttpRequest, HttpResponse,
};

use std::rc::Rc;

use super::{error::ApiError, AppState};
use crate::{
    admission::{Refusal, Ticket},
    auth::{Claims, TokenRefusal},
    client_address::ClientAddress,
    echo::EchoSession,
    metrics::{Counters, Endpoint, UpgradeRefusal},
    protocol::{DisplayName, ProtocolError, RoomName, Timestamp},
    session::{Session, SessionSetup},
    transport::{self, HandshakeRefusal, SocketCloser},
    worker::Worker,
};

/// `/ws?name=...&room=...&token=...`; all optional (but the token, with authentication
/// on, unless it comes in `Authorization`); other keys are ignored.
#[derive(Debug, Default)]
pub struct ConnectQuery {
    name: Option<String>,
    room: Option<String>,
    token: Option<String>,
}

impl ConnectQuery {
    /// Read by hand rather than through `web::Query`: a token is a few hundred bytes of
    /// base64url, which needs no decoding, and serde_urlencoded's way through serde cost
    /// a quarter of what a token adds to a connect (docs/benchmarks.md). A key given
    /// twice is refused, as the extractor did.
    fn parse(query: &str) -> Result<Self, ApiError> {
        let mut parsed = Self::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match key.as_ref() {
                "name" => &mut parsed.name,
                "room" => &mut parsed.room,
                "token" => &mut parsed.token,
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_query",
                    format!("`{key}` is given twice"),
                ));
            }
        }
        Ok(parsed)
    }
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
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let worker = worker_of(&req);
    let query = ConnectQuery::parse(req.query_string())?;
    let (ticket, claims) = admit_upgrade(&req, &state, &worker, Endpoint::Ws, || {
        authenticate(&req, &state, query.token.as_deref())
    })?;
    let Some((id, guest_number)) = state.ids.next() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the cluster's store (REDIS_URL) cannot be reached to give this connection an id; retry later",
        ));
    };
    let mut query_errors = Vec::new();
    // A bad name or room does not refuse the connection: the client gets a guest name
    // or no room, and an `error` frame right after `welcome` saying why. A token's
    // `name` wins over `?name=`.
    let claimed_name = claims.as_ref().and_then(|claims| claims.name.clone());
    let name = match (claimed_name, query.name.as_deref().map(DisplayName::parse)) {
        (Some(name), _) => name,
        (None, Some(Ok(name))) => name,
        (None, Some(Err(err))) => {
            query_errors.push(ProtocolError::from(err));
            DisplayName::guest(guest_number)
        }
        (None, None) => DisplayName::guest(guest_number),
    };
    let room = match query.room.as_deref().map(RoomName::parse) {
        Some(Ok(room)) => Some(room),
        Some(Err(err)) => {
            query_errors.push(ProtocolError::from(err));
            None
        }
        None => None,
    };
    // In a cluster, a member that has its `welcome` can be whispered to from any node.
    let user = claims.as_ref().map(|claims| &claims.user);
    if !state.ids.register(id, &name, user).await {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the cluster's store (REDIS_URL) cannot be reached to enter this connection; retry later",
        ));
    }
    let setup = SessionSetup {
        id,
        name,
        room,
        query_errors,
        socket: SocketCloser::for_request(&req),
        ticket,
        claims,
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
    let (ticket, ()) = admit_upgrade(&req, &state, &worker, Endpoint::Echo, || Ok(()))?;
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
/// endpoint's own check passes (`/ws`: its token), the request is a WebSocket handshake,
/// and there is a slot for it. The slot's ticket counts the connection as open on
/// `endpoint`; a refusal is counted by its cause (both in this worker thread's
/// counters).
///
/// The endpoint's check comes before the slot, so a client without a valid token never
/// holds one, nor learns whether the server is full. It comes before the handshake
/// check too, so a plain `GET /ws?token=...` answers what an upgrade with that token
/// would meet: a browser, which sees a refused upgrade only as a failed connection, can
/// ask that way why (the bundled page does).
fn admit_upgrade<T>(
    req: &HttpRequest,
    state: &AppState,
    worker: &Worker,
    endpoint: Endpoint,
    check: impl FnOnce() -> Result<T, (UpgradeRefusal, ApiError)>,
) -> Result<(Ticket, T), ApiError> {
    let admitted = refuse_during_shutdown(state)
        .and_then(|()| check())
        .and_then(|checked| {
            transport::check_handshake(req)
                .map(|()| checked)
                .map_err(|refusal| (UpgradeRefusal::BadHandshake, refuse_handshake(refusal)))
        })
        .and_then(|checked| admit(req, state).map(|ticket| (ticket, checked)));
    match admitted {
        Ok((ticket, checked)) => Ok((
            ticket.counted(worker.counters().connection_opened(endpoint)),
            checked,
        )),
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

/// The claims of the upgrade's token, with authentication on (`None` with it off: a
/// token given then is ignored). The token is `?token=` or `Authorization: Bearer`;
/// another scheme in `Authorization` (a site's Basic auth, say) is not a token.
fn authenticate(
    req: &HttpRequest,
    state: &AppState,
    query_token: Option<&str>,
) -> Result<Option<Claims>, (UpgradeRefusal, ApiError)> {
    let Some(verifier) = &state.settings.verifier else {
        return Ok(None);
    };
    let header_token = super::bearer_credential(req.headers());
    let query_token = query_token.filter(|token| !token.is_empty());
    let verified = match (query_token, header_token) {
        (Some(_), Some(_)) => Err(TokenRefusal::Twice),
        (Some(token), None) | (None, Some(token)) => verifier.verify(token, Timestamp::now()),
        (None, None) => Err(TokenRefusal::Missing),
    };
    verified.map(Some).map_err(|refusal| {
        // What is wrong with the token, never the token: it is a credential.
        let client = ClientAddress::resolve(req.peer_addr(), req.headers(), &state.trusted_proxies);
        log::info!("refused a WebSocket from {client}: unauthorized: {refusal}");
        (
            UpgradeRefusal::Unauthorized,
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                refusal.to_string(),
            ),
        )
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
