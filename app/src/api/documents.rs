//! What the document pages need: the list, the upload rules, the flash message a plain form left, and
//! the integrity report for admins. The bytes themselves travel over the plain HTTP routes.

use crate::error::ApiError;
use leptos::{prelude::*, server_fn::codec::GetUrl};
use pawfile::domain::{DocumentView, PetId, UploadRules};
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::http::{RequestContext, respond};

/// A pet's documents (or the caller's trash for it), optionally one category or one record's.
/// `GET /api/documents/list?pet_id=...&category=...&record_id=...&trashed=true`.
#[server(endpoint = "documents/list", input = GetUrl)]
pub async fn list_documents(
    pet_id: PetId,
    #[server(default)] category: String,
    #[server(default)] record_id: String,
    #[server(default)] trashed: bool,
) -> Result<Vec<DocumentView>, ApiError> {
    use pawfile::{documents::ListFilter, domain::DocumentCategory};
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            let filter = ListFilter {
                category: DocumentCategory::parse(&category)?,
                record: match record_id.trim() {
                    "" => None,
                    id => Some(
                        id.parse()
                            .map_err(|_| ApiError::invalid("record_id", "Unknown record."))?,
                    ),
                },
                trashed,
            };
            Ok(pawfile::documents::list_documents(&ctx.state.db, &actor, pet_id, filter).await?)
        }
        .await,
    )
}

/// The size limit and accepted types, shown before anyone picks a file. `GET /api/documents/rules`.
#[server(endpoint = "documents/rules", input = GetUrl)]
pub async fn get_upload_rules() -> Result<UploadRules, ApiError> {
    let ctx = RequestContext::get()?;
    let config = &ctx.state.config;
    Ok(UploadRules {
        max_bytes: config.max_upload_bytes,
        accepted: config.accepted_types.clone(),
        accepted_labels: config
            .accepted_types
            .iter()
            .map(|mime| pawfile::documents::sniff::label(mime).to_owned())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// A message left for this page by a plain HTML form (upload, trash, restore), taken once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlashMessage {
    /// Whether it reports success.
    pub ok: bool,
    /// The text.
    pub message: String,
}

/// Takes the flash message, if any. `GET /api/flash`.
#[server(endpoint = "flash", input = GetUrl)]
pub async fn take_flash() -> Result<Option<FlashMessage>, ApiError> {
    let ctx = RequestContext::get()?;
    Ok(crate::http::documents::take_flash(&ctx.session)
        .await
        .map(|flash| FlashMessage {
            ok: flash.ok,
            message: flash.message,
        }))
}

/// A document whose stored object failed the integrity check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrityIssue {
    /// The document.
    pub document_id: String,
    /// Its pet.
    pub pet_id: String,
    /// What is wrong.
    pub problem: String,
    /// When it was found.
    pub checked_at: String,
}

/// Documents flagged by the integrity check (admins). `GET /api/admin/integrity`.
#[server(endpoint = "admin/integrity", input = GetUrl)]
pub async fn integrity_issues() -> Result<Vec<IntegrityIssue>, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            let issues = pawfile::admin::integrity_issues(&ctx.state.db, &actor).await?;
            Ok(issues
                .into_iter()
                .map(|(document, pet, problem, at)| IntegrityIssue {
                    document_id: document.to_string(),
                    pet_id: pet.to_string(),
                    problem,
                    checked_at: pawfile::clock::localize(at, actor.zone()).local,
                })
                .collect())
        }
        .await,
    )
}
