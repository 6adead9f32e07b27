//! The health checks: `/healthz` (the process is alive) and `/readyz` (Postgres and the documents
//! bucket answer), for load balancers and orchestrators.

use crate::state::AppState;
use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

/// `GET /healthz`: the process is alive.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "The process is alive", body = Object, example = json!({"status": "alive"})))
)]
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "alive" }))
}

/// `GET /readyz`: Postgres and the documents bucket answer; 503 with the reason otherwise. The reason
/// names the part that failed, not hosts or buckets (the details are in the log), since anyone can ask.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "PostgreSQL and the documents bucket answer", body = Object, example = json!({"status": "ready"})),
        (status = 503, description = "One of them does not; `error` names which", body = Object),
    )
)]
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
