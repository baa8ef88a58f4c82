//! `GET /healthz`: `200 ok` while the server accepts connections, 503 once it is
//! shutting down (so a load balancer stops sending new clients).

use actix_web::{web, HttpResponse};

use super::AppState;

pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    if state.shutdown.is_triggered() {
        HttpResponse::ServiceUnavailable().body("shutting down")
    } else {
        HttpResponse::Ok().content_type("text/plain").body("ok")
    }
}
