//! `API_KEY`: with it set, every `/api/*` request and `/metrics` need
//! `Authorization: Bearer <API_KEY>`, else `401 {"error":"unauthorized"}`. `/healthz`, the
//! page and the WebSocket endpoints stay open (they have their own admission).

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::StatusCode,
    middleware::Next,
    web,
};

use super::{error::ApiError, AppState};

/// Middleware for the routes the key guards.
pub(crate) async fn require_api_key(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let expected = req
        .app_data::<web::Data<AppState>>()
        .and_then(|state| state.api_key.clone());
    if let Some(expected) = expected {
        let given = super::bearer_credential(req.headers());
        if !given.is_some_and(|given| same_secret(given.as_bytes(), expected.expose().as_bytes())) {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this endpoint needs Authorization: Bearer <API_KEY>",
            )
            .into());
        }
    }
    next.call(req).await
}

/// Compares in time that depends on the lengths only, not on where the first difference
/// is, so the key cannot be guessed a byte at a time from response times.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let mut difference = given.len() ^ expected.len();
    for (i, byte) in expected.iter().enumerate() {
        difference |= usize::from(byte ^ given.get(i).copied().unwrap_or(0));
    }
    difference == 0
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn only_the_same_bytes_are_the_same_secret() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3creT", b"s3cret"));
        assert!(!same_secret(b"s3cre", b"s3cret"));
        assert!(!same_secret(b"s3cret!", b"s3cret"));
        assert!(!same_secret(b"", b"s3cret"));
    }
}
