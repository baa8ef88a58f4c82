//! `GET /metrics`: the server's metrics in the Prometheus text exposition format
//! (0.0.4), for a Prometheus server to scrape. What is counted, and what counting
//! costs, is [`crate::metrics`]'s; this handler only asks the room state's sizes and
//! writes the text.

use actix_web::{web, HttpResponse};

use super::AppState;
use crate::{hub::messages::DescribeCounts, metrics::CONTENT_TYPE};

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    // Without the room state's sizes (the hub is stopping, a store is unreachable), the
    // counters are still worth a scrape: only the two gauges are left out.
    let counts = match state.hub.send(DescribeCounts).await {
        Ok(Ok(counts)) => Some(counts),
        Ok(Err(_)) | Err(_) => {
            log::warn!("/metrics: the hub did not say how many rooms and members there are");
            None
        }
    };
    HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .body(state.metrics.render(counts))
}
