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
use std::time::Duration;

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "alive" }))
}

/// `GET /readyz`: Postgres and the documents bucket answer; 503 with the reason otherwise. The reason
/// names the part that failed, not hosts or buckets (the details are in the log), since anyone can ask.
pub async fn readyz(State(state): State<AppState>) -> Response {
    const LIMIT: Duration = Duration::from_secs(5);
    let database = async {
        match tokio::time::timeout(LIMIT, sqlx::query("select 1").execute(&state.db)).await {
            Ok(Ok(_)) => None,
            Ok(Err(err)) => {
                tracing::warn!(error = %pawfile::error::root_cause(&err), "readiness: database failing");
                Some("database: unreachable")
            }
            Err(_) => Some("database: no answer within 5 seconds"),
        }
    };
    let storage = async {
        use pawfile::storage::StorageError;
        match tokio::time::timeout(LIMIT, state.documents.check_bucket()).await {
            Ok(Ok(())) => None,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "readiness: document storage failing");
                Some(match err {
                    StorageError::Unreachable { .. } => "document storage: unreachable",
                    StorageError::AccessDenied { .. } => "document storage: access refused",
                    StorageError::NoSuchBucket { .. } => "document storage: bucket missing",
                    _ => "document storage: failing",
                })
            }
            Err(_) => Some("document storage: no answer within 5 seconds"),
        }
    };
    let (database, storage) = tokio::join!(database, storage);
    let problems: Vec<&str> = database.into_iter().chain(storage).collect();
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
