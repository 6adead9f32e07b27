//! The health checks: `/healthz` (the process is alive) and `/readyz` (Postgres and the documents
//! bucket answer), for load balancers and orchestrators.

use crate::startup::AppState;
use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "alive" }))
}

/// `GET /readyz`: Postgres and the documents bucket answer; 503 with the reason otherwise. The reason
/// names the part that failed, not hosts or buckets (the details are in the log), since anyone can ask.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let problems = pawfile::health::readiness_problems(&state.db, &state.documents).await;
    if problems.is_empty() {
        Json(json!({ "status": "ready" })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "error": problems.join("; ") })),
        )
            .into_response()
    }
}
