//! The HTTP surface: WebSocket upgrades (`ws.rs`), the JSON API for backends (`api.rs`),
//! the health check, the Prometheus metrics (`metrics.rs`), the page, and one JSON error
//! type for all of them (`error.rs`).

pub mod api;
mod api_key;
pub mod error;
pub mod health;
pub mod metrics;
pub mod ws;

use std::{rc::Rc, sync::Arc};

use actix::Addr;
use actix_web::{middleware::from_fn, web};

use crate::{
    admission::Admission,
    client_address::TrustedProxies,
    hub::{Hub, MemberIds},
    metrics::Metrics,
    session::ConnectionSettings,
    shutdown::Shutdown,
    worker::Worker,
};

/// What every handler can reach (cloned per worker, so everything here is cheap).
#[derive(Clone)]
pub struct AppState {
    pub hub: Addr<Hub>,
    pub admission: Arc<Admission>,
    pub ids: MemberIds,
    pub settings: Arc<ConnectionSettings>,
    pub shutdown: Shutdown,
    /// Every thread's counters, added up by `/metrics` and `/api/stats`.
    pub metrics: Arc<Metrics>,
    /// `API_KEY`, which `/api/*` and `/metrics` require when it is set.
    pub api_key: Option<crate::config::Secret>,
    /// `TRUSTED_PROXIES`: whose forwarded-for headers name the client of an upgrade.
    pub trusted_proxies: Arc<TrustedProxies>,
}

/// Registers every route; the page is served last so it never shadows an API path.
/// `worker` is this worker thread's plumbing, built for it by the server's factory.
pub fn configure(
    cfg: &mut web::ServiceConfig,
    state: AppState,
    worker: Rc<Worker>,
    static_dir: &std::path::Path,
) {
    let max_message_bytes = state.settings.limits.max_message_bytes;
    cfg.app_data(web::Data::new(state))
        .app_data(worker)
        .app_data(api::json_config(max_message_bytes))
        .app_data(error::query_config())
        .route("/ws", web::get().to(ws::hub_socket))
        .route("/echo", web::get().to(ws::echo_socket))
        .route("/healthz", web::get().to(health::healthz))
        .service(
            web::resource("/metrics")
                .wrap(from_fn(api_key::require_api_key))
                .route(web::get().to(metrics::metrics)),
        )
        .service(
            web::scope("/api")
                .wrap(from_fn(api_key::require_api_key))
                .route("/stats", web::get().to(api::stats))
                .route("/rooms", web::get().to(api::list_rooms))
                .route("/rooms/{room}", web::get().to(api::get_room))
                .route("/rooms/{room}/messages", web::post().to(api::publish))
                .route("/rooms/{room}/members/{id}", web::delete().to(api::kick)),
        );
    if static_dir.is_dir() {
        cfg.service(actix_files::Files::new("/", static_dir).index_file("index.html"));
    } else {
        log::warn!(
            "STATIC_DIR {} is not a directory: the page at / is not served",
            static_dir.display()
        );
    }
}

/// The credential of an `Authorization: Bearer <credential>` header (the scheme in any
/// case, as RFC 9110 has it); `None` for no header, another scheme, or a value that is
/// not text. Both the API key and `/ws` tokens travel this way.
pub(crate) fn bearer_credential(headers: &actix_web::http::header::HeaderMap) -> Option<&str> {
    let value = headers
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, credential) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credential.trim())
}
