use crate::error::ApiError;
use leptos::{prelude::*, server_fn::codec::GetUrl};
use serde::{Deserialize, Serialize};

/// Whether a store answers, as the admin page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStatus {
    /// The bucket.
    pub bucket: String,
    /// The endpoint.
    pub endpoint: String,
    /// `None` when reachable; otherwise what is wrong.
    pub problem: Option<String>,
}

/// The state of the documents and backup stores, for admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageReport {
    /// The documents bucket.
    pub documents: StoreStatus,
    /// The backup bucket.
    pub backups: StoreStatus,
    /// The backup store is an embedded endpoint on this machine: not a separate backup.
    pub backups_on_this_machine: bool,
}

/// Checks both stores now (each replica answers for itself, so nothing is cached in memory).
///
/// `GET /api/admin/storage-status`, admins only.
#[server(endpoint = "admin/storage-status", input = GetUrl)]
pub async fn storage_status() -> Result<StorageReport, ApiError> {
    use crate::server::{RequestContext, respond};
    use pawfile::{domain::Role, storage::ObjectStore};

    async fn check(store: &ObjectStore) -> StoreStatus {
        let problem =
            match tokio::time::timeout(std::time::Duration::from_secs(5), store.check_bucket()).await {
                Ok(Ok(())) => None,
                Ok(Err(err)) => Some(err.to_string()),
                Err(_) => Some("no answer within 5 seconds".to_owned()),
            };
        StoreStatus {
            bucket: store.bucket().to_owned(),
            endpoint: store.endpoint().to_owned(),
            problem,
        }
    }

    respond(
        async {
            let ctx = RequestContext::get()?;
            ctx.require_role(Role::Admin).await?;
            let (documents, backups) = tokio::join!(check(&ctx.state.documents), check(&ctx.state.backups));
            Ok(StorageReport {
                documents,
                backups,
                backups_on_this_machine: ctx.state.config.backups_on_this_machine,
            })
        }
        .await,
    )
}
