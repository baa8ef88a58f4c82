//! `GET /healthz`, the readiness probe: `200 ok` (plain text) while the server takes new
//! connections; once it is shutting down, `503` with the JSON error body of every refusal
//! (`{"error": "shutting_down", "message": ...}`), so a load balancer stops sending new
//! clients. The listener stays open, and answers this, until the drain is over
//! (`Controller::shutdown` in `startup.rs`).

use actix_web::{http::StatusCode, web, HttpResponse};

use super::{error::ApiError, AppState};

pub async fn healthz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.shutdown.is_triggered() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down",
        ));
    }
    Ok(HttpResponse::Ok().content_type("text/plain").body("ok"))
}
