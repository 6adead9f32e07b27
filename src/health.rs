//! Readiness: whether the services every request needs (Postgres, the documents bucket) answer now.

use crate::storage::{ObjectStore, StorageError};
use sqlx::PgPool;
use std::time::Duration;

/// How long each check may take before it counts as failing.
const LIMIT: Duration = Duration::from_secs(5);

/// What keeps this process from serving, checked at once: empty when ready. Each problem names the
/// part that failed, never hosts or buckets (anyone may ask); the details go to the log.
pub async fn readiness_problems(pool: &PgPool, documents: &ObjectStore) -> Vec<&'static str> {
    let database = async {
        match tokio::time::timeout(LIMIT, sqlx::query("select 1").execute(pool)).await {
            Ok(Ok(_)) => None,
            Ok(Err(err)) => {
                tracing::warn!(error = %crate::error::root_cause(&err), "readiness: database failing");
                Some("database: unreachable")
            }
            Err(_) => Some("database: no answer within 5 seconds"),
        }
    };
    let storage = async {
        match tokio::time::timeout(LIMIT, documents.check_bucket()).await {
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
    database.into_iter().chain(storage).collect()
}
