//! Every HTTP error leaves as JSON: `{"error": code, "message": text}` with a status.

use actix_web::{error::QueryPayloadError, http::StatusCode, web, HttpResponse, ResponseError};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            // A 401 says how to authenticate (RFC 9110 section 11.6.1): a bearer token,
            // for `/ws` as for the HTTP API's key (RFC 6750).
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if self.status == StatusCode::UPGRADE_REQUIRED {
            // 426 must say what to upgrade to (RFC 9110), and RFC 6455 section 4.4 wants
            // the versions we speak.
            response
                .insert_header(("Upgrade", "websocket"))
                .insert_header(("Sec-WebSocket-Version", "13"));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // Every 503 here is for a while (a store away, rooms full, a restart): say
            // when a retry makes sense (RFC 9110 section 10.2.3).
            response.insert_header(("Retry-After", "1"));
        }
        response.json(Body {
            error: self.code,
            message: &self.message,
        })
    }
}

/// Malformed query strings (e.g. bad percent-encoding) get a JSON 400 too.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_query", err.to_string()).into()
    })
}

/// Any path nobody serves.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint",
    ))
}
