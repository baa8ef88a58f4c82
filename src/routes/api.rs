//! The JSON API for backends: list rooms, look at one, publish into one as `server`,
//! remove a member from one.

use actix_web::{error::JsonPayloadError, http::StatusCode, web, HttpRequest, HttpResponse};
use hubbub_core::PublishRefused;
use serde::{Deserialize, Serialize};

use super::{error::ApiError, AppState};
use crate::{
    hub::messages::{DescribeCounts, DescribeRoom, DescribeRooms, Kick, Publish, Unanswered},
    protocol::{MemberId, PageLimit, RoomName, Timestamp},
};

/// JSON bodies may be up to six times the message limit: that is what JSON escaping
/// (`\u0000`) can turn a `MAX_MESSAGE_BYTES` text into. The text itself is checked after.
pub fn json_config(max_message_bytes: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(max_message_bytes.saturating_mul(6).saturating_add(1024))
        .content_type_required(false)
        .error_handler(|err, _| {
            let error = match &err {
                JsonPayloadError::Overflow { .. }
                | JsonPayloadError::OverflowKnownLength { .. } => {
                    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", err.to_string())
                }
                _ => ApiError::new(StatusCode::BAD_REQUEST, "bad_body", err.to_string()),
            };
            error.into()
        })
}

pub async fn stats(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let counts = state
        .hub
        .send(DescribeCounts)
        .await
        .map_err(hub_unavailable)?
        .map_err(unanswered)?;
    Ok(HttpResponse::Ok().json(state.metrics.stats(counts)))
}

/// `?after=&limit=` on the listings: a page after `after` (the previous page's
/// `next`), of at most `limit` (1 to 1000, the default) entries.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    after: Option<String>,
    limit: Option<u64>,
}

impl PageQuery {
    fn limit(&self) -> Result<PageLimit, ApiError> {
        match self.limit {
            None => Ok(PageLimit::default()),
            Some(raw) => PageLimit::parse(raw).map_err(|err| {
                let message = crate::protocol::ProtocolError::from(err).message;
                ApiError::new(StatusCode::BAD_REQUEST, "bad_query", message)
            }),
        }
    }
}

/// `GET /api/rooms`: one page of rooms by name, each with its member count and its first
/// members.
pub async fn list_rooms(
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit()?;
    let after = query.after.as_deref().map(parse_room).transpose()?;
    let rooms = state
        .hub
        .send(DescribeRooms { after, limit })
        .await
        .map_err(hub_unavailable)?
        .map_err(unanswered)?;
    Ok(HttpResponse::Ok().json(rooms))
}

/// `GET /api/rooms/{room}`: the room with a page of its members, in id order, and its
/// history.
pub async fn get_room(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let room = parse_room(&path)?;
    let limit = query.limit()?;
    let after = match query.after.as_deref() {
        None => None,
        Some(raw) => Some(raw.parse().map(MemberId).map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_query",
                format!("after must be a member id (a previous page's next), got {raw:?}"),
            )
        })?),
    };
    match state
        .hub
        .send(DescribeRoom {
            room: room.clone(),
            after,
            limit,
        })
        .await
        .map_err(hub_unavailable)?
        .map_err(unanswered)?
    {
        Some(view) => Ok(HttpResponse::Ok().json(view)),
        None => Err(unknown_room(&room)),
    }
}

#[derive(Deserialize)]
pub struct PublishBody {
    text: String,
}

#[derive(Serialize)]
struct Published {
    room: RoomName,
    seq: u64,
    at: Timestamp,
}

/// Longest `Idempotency-Key` accepted, in bytes: a key is remembered per room for
/// `IDEMPOTENCY_TTL_MS`, so its size is bounded like everything kept.
const MAX_IDEMPOTENCY_KEY_BYTES: usize = 256;

/// `POST /api/rooms/{room}/messages`: publishes as `server` into the room (made if need
/// be); `202 {"room", "seq", "at"}`. With an `Idempotency-Key` header seen in this room
/// within `IDEMPOTENCY_TTL_MS`, the answer is the first attempt's and nothing is published.
pub async fn publish(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<PublishBody>,
) -> Result<HttpResponse, ApiError> {
    let room = parse_room(&path)?;
    let idempotency_key = match req.headers().get("idempotency-key") {
        None => None,
        Some(value) => {
            let key = value
                .to_str()
                .ok()
                .filter(|key| !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY_BYTES);
            let Some(key) = key else {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_idempotency_key",
                    format!(
                        "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_BYTES} bytes of visible ASCII"
                    ),
                ));
            };
            Some(key.to_owned())
        }
    };
    let text = body.into_inner().text;
    let limit = state.settings.limits.max_message_bytes;
    if text.len() > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("text is {} bytes; the limit is {limit}", text.len()),
        ));
    }
    let result = state
        .hub
        .send(Publish {
            room: room.clone(),
            text,
            idempotency_key,
        })
        .await
        .map_err(hub_unavailable)?
        .map_err(unanswered)?;
    match result {
        Ok(message) => Ok(HttpResponse::Accepted().json(Published {
            room: message.room.clone(),
            seq: message.seq,
            at: message.at,
        })),
        Err(refused @ PublishRefused::RoomsFull(_)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "rooms_full",
            refused.message(),
        )),
        Err(refused @ PublishRefused::TooManyKeys { .. }) => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_idempotency_keys",
            refused.message(),
        )),
    }
}

/// `DELETE /api/rooms/{room}/members/{id}`: the member leaves the room with reason
/// `kicked` and stays connected; `204`, or `404` if it is not in the room.
pub async fn kick(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (room, id) = path.into_inner();
    let room = parse_room(&room)?;
    // An id that is not a number is nobody's: the same answer as any other stranger.
    let not_a_member = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_a_member",
            format!("no member {id} is in room {room}"),
        )
    };
    let member = id.parse().map(MemberId).map_err(|_| not_a_member())?;
    match state
        .hub
        .send(Kick {
            room: room.clone(),
            member,
        })
        .await
        .map_err(hub_unavailable)?
        .map_err(unanswered)?
    {
        Ok(()) => Ok(HttpResponse::NoContent().finish()),
        Err(hubbub_core::NotAMember) => Err(not_a_member()),
    }
}

fn parse_room(raw: &str) -> Result<RoomName, ApiError> {
    RoomName::parse(raw).map_err(|err| {
        let message = crate::protocol::ProtocolError::from(err).message;
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_room", message)
    })
}

fn unknown_room(room: &RoomName) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_room",
        format!("room {room} does not exist (a room is kept while it has members, and ROOM_TTL_MS after)"),
    )
}

fn unanswered(why: Unanswered) -> ApiError {
    match why {
        Unanswered::Stopped => hub_unavailable(actix::MailboxError::Closed),
        Unanswered::StoreUnavailable => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the cluster's store (REDIS_URL) cannot be reached; nothing was done; retry later",
        ),
    }
}

fn hub_unavailable(err: actix::MailboxError) -> ApiError {
    log::error!("the hub did not answer: {err}");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the hub is not available",
    )
}
