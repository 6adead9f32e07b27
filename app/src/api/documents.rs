//! What the document pages need besides the bytes: the list, the upload rules, and the integrity report
//! for admins. The bytes, and the list for scripts and the browser, travel over the HTTP routes in
//! [`crate::http::documents`] (`GET /api/pets/{pet_id}/documents`).

use crate::error::ApiError;
use leptos::{prelude::*, server_fn::codec::GetUrl};
use pawfile::domain::{DocumentView, IntegrityIssue, PetId, UploadRules};

#[cfg(feature = "ssr")]
use crate::http::{RequestContext, respond};

/// A pet's documents (or the caller's trash for it), optionally one category's or one record's: what
/// `GET /api/pets/{pet_id}/documents?category=&record_id=&trashed=1&limit=` answers. Rendering on the server
/// asks the core directly; the browser fetches that route as JSON.
pub async fn list_pet_documents(
    pet: PetId,
    category: String,
    record_id: String,
    trashed: bool,
    limit: Option<u32>,
) -> Result<Vec<DocumentView>, ApiError> {
    #[cfg(feature = "ssr")]
    {
        respond(
            async {
                let ctx = RequestContext::get()?;
                let actor = ctx.actor().await?;
                let filter = crate::http::list_filter(&category, &record_id, trashed, limit)?;
                Ok(pawfile::documents::list_documents(&ctx.state.db, &actor, pet, filter).await?)
            }
            .await,
        )
    }
    #[cfg(not(feature = "ssr"))]
    {
        let url = {
            let mut query = form_urlencoded::Serializer::new(String::new());
            if !category.is_empty() {
                query.append_pair("category", &category);
            }
            if !record_id.is_empty() {
                query.append_pair("record_id", &record_id);
            }
            if trashed {
                query.append_pair("trashed", "1");
            }
            if let Some(limit) = limit {
                query.append_pair("limit", &limit.to_string());
            }
            match query.finish() {
                query if query.is_empty() => format!("/api/pets/{pet}/documents"),
                query => format!("/api/pets/{pet}/documents?{query}"),
            }
        };
        browser::get_json(url).await
    }
}

#[cfg(all(feature = "hydrate", not(feature = "ssr")))]
mod browser {
    //! `fetch` from the browser, for the HTTP routes that are not server functions.
    use crate::error::ApiError;
    use send_wrapper::SendWrapper;
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;

    fn unreachable_server() -> ApiError {
        ApiError::Unavailable {
            error: "Pawfile cannot be reached. Check the connection and try again.".to_owned(),
        }
    }

    /// `GET url` with the session cookie, as JSON; an error answer becomes its [`ApiError`].
    pub async fn get_json<T: serde::de::DeserializeOwned>(url: String) -> Result<T, ApiError> {
        // Resources need futures that are `Send`; the browser has one thread.
        SendWrapper::new(async move {
            let window = web_sys::window().ok_or_else(unreachable_server)?;
            let init = web_sys::RequestInit::new();
            init.set_method("GET");
            let request =
                web_sys::Request::new_with_str_and_init(&url, &init).map_err(|_| unreachable_server())?;
            request
                .headers()
                .set("Accept", "application/json")
                .map_err(|_| unreachable_server())?;
            let response: web_sys::Response = JsFuture::from(window.fetch_with_request(&request))
                .await
                .map_err(|_| unreachable_server())?
                .dyn_into()
                .map_err(|_| unreachable_server())?;
            let text = JsFuture::from(response.text().map_err(|_| unreachable_server())?)
                .await
                .map_err(|_| unreachable_server())?
                .as_string()
                .unwrap_or_default();
            if response.ok() {
                serde_json::from_str(&text).map_err(|_| ApiError::Internal {
                    error: "Pawfile answered something this page does not understand. Reload it.".to_owned(),
                })
            } else {
                Err(
                    serde_json::from_str::<ApiError>(&text).unwrap_or_else(|_| ApiError::Internal {
                        error: format!("Something went wrong on our side (HTTP {}).", response.status()),
                    }),
                )
            }
        })
        .await
    }
}

#[cfg(not(any(feature = "ssr", feature = "hydrate")))]
mod browser {
    use crate::error::ApiError;

    pub async fn get_json<T>(_: String) -> Result<T, ApiError> {
        Err(ApiError::Internal {
            error: "Built without a browser or a server.".to_owned(),
        })
    }
}

/// The size limit and accepted types, shown before anyone picks a file. `GET /api/documents/rules`.
#[server(endpoint = "documents/rules", input = GetUrl)]
pub async fn get_upload_rules() -> Result<UploadRules, ApiError> {
    let ctx = RequestContext::get()?;
    let rules = &ctx.state.config.documents;
    Ok(UploadRules {
        max_bytes: rules.max_upload_size.as_u64(),
        accepted: rules.accepted_types.clone(),
        accepted_labels: rules
            .accepted_types
            .iter()
            .map(|mime| pawfile::domain::FileType::label_of(mime).to_owned())
            .collect::<Vec<_>>()
            .join(", "),
        strips_location: rules.strip_photo_location,
    })
}

/// Documents flagged by the integrity check (admins). `GET /api/admin/integrity`.
#[server(endpoint = "admin/integrity", input = GetUrl)]
pub async fn integrity_issues() -> Result<Vec<IntegrityIssue>, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            Ok(pawfile::admin::integrity_issues(&ctx.state.db, &actor).await?)
        }
        .await,
    )
}

/// How far the integrity scrub's rotation has come: documents whose bytes were read back and re-hashed
/// within the scrub period, of all documents.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ScrubProgress {
    /// Documents re-hashed within the period.
    pub rehashed: i64,
    /// All documents.
    pub documents: i64,
    /// The scrub period, in days.
    pub period_days: u64,
}

/// The integrity scrub's coverage (admins). `GET /api/admin/integrity/coverage`.
#[server(endpoint = "admin/integrity/coverage", input = GetUrl)]
pub async fn scrub_coverage() -> Result<ScrubProgress, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            ctx.require_role(pawfile::domain::Role::Admin).await?;
            let period = ctx.state.config.documents.scrub_period;
            let (rehashed, documents) =
                pawfile::documents::reconcile::scrub_coverage(&ctx.state.db, period).await?;
            Ok(ScrubProgress {
                rehashed,
                documents,
                period_days: period.as_secs().div_ceil(86_400),
            })
        }
        .await,
    )
}

/// How much of their storage quota the caller uses: their own as an owner, their clinic's as staff.
/// `GET /api/account/storage`.
#[server(endpoint = "account/storage", input = GetUrl)]
pub async fn my_storage() -> Result<Vec<pawfile::domain::StorageUsage>, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            Ok(pawfile::documents::quota::usage_of(
                &ctx.state.db,
                &actor,
                &ctx.state.config.documents.quotas(),
            )
            .await?)
        }
        .await,
    )
}

/// Storage used per clinic and per owner, fullest first (admins). `GET /api/admin/storage-usage`.
#[server(endpoint = "admin/storage-usage", input = GetUrl)]
pub async fn storage_usage() -> Result<Vec<pawfile::domain::StorageUsage>, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            Ok(pawfile::documents::quota::usage_report(
                &ctx.state.db,
                &actor,
                &ctx.state.config.documents.quotas(),
            )
            .await?)
        }
        .await,
    )
}

/// This file's server functions, as the API document describes them.
#[cfg(feature = "ssr")]
pub(super) const DOCUMENTS_DESCRIBED: &[super::doc::ServerFnDoc] = {
    use super::doc::{
        Answer::{ListOf, Schema},
        get,
    };
    &[
        get(
            "/api/account/storage",
            "The caller's storage quotas: their own as an owner, their clinic's as staff",
            &[],
            ListOf("StorageUsage"),
        ),
        get(
            "/api/admin/storage-usage",
            "Admins: storage per clinic and owner, fullest first",
            &[],
            ListOf("StorageUsage"),
        ),
        get(
            "/api/documents/rules",
            "What an upload may be",
            &[],
            Schema("UploadRules"),
        ),
        get(
            "/api/admin/integrity",
            "Admins: documents the integrity check flagged",
            &[],
            ListOf("IntegrityIssue"),
        ),
        get(
            "/api/admin/integrity/coverage",
            "Admins: how far the integrity scrub's rotation has come",
            &[],
            Schema("ScrubProgress"),
        ),
    ]
};
