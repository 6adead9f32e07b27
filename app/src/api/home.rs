//! The start page's data, in one call, and the pet photo an owner picks.

use crate::error::ApiError;
use leptos::{prelude::*, server_fn::codec::GetUrl};
use pawfile::domain::{DocumentId, Home, PetId};

/// Everything the signed-in person's start page shows, by role: an owner's pets, a staff member's
/// recently opened patients and their clinic's week, an administrator's view of the system (counts,
/// stores, backups, integrity, latest events; nothing medical). `GET /api/home`.
#[server(endpoint = "home", input = GetUrl)]
pub async fn start_page() -> Result<Home, ApiError> {
    use crate::http::{RequestContext, respond};
    // Boxed: the admin's part waits on both stores and the backup catalogue at once.
    respond(
        Box::pin(async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            let state = &ctx.state;
            let mut home = pawfile::home::home(&state.db, &actor).await?;
            if let Some(glance) = home.admin.as_mut() {
                let (storage, backups) = tokio::join!(
                    pawfile::admin::storage_status(
                        &state.db,
                        &actor,
                        &state.documents,
                        &state.backups,
                        state.config.backups_on_this_machine,
                    ),
                    super::admin::overview(state, &actor),
                );
                glance.storage = Some(storage?);
                let mut backups = backups?;
                // The start page shows the banner and the schedule; the runs are on the backups page.
                backups.runs.truncate(1);
                glance.backups = Some(backups);
            }
            Ok(home)
        })
        .await,
    )
}

/// Shows `document_id` (a photo of the pet) on the pet's card (its owner). `POST /api/pets/photo` with
/// `pet_id` and `document_id`.
#[server(endpoint = "pets/photo")]
pub async fn set_pet_photo(pet_id: PetId, document_id: DocumentId) -> Result<(), ApiError> {
    use crate::http::{RequestContext, respond};
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            Ok(pawfile::home::set_profile_photo(&ctx.state.db, &actor, pet_id, document_id).await?)
        }
        .await,
    )
}

/// This file's server functions, as the API document describes them.
#[cfg(feature = "ssr")]
pub(super) const HOME_DESCRIBED: &[super::doc::ServerFnDoc] = {
    use super::doc::{
        Answer::{Nothing, Schema},
        Field::Id as IdField,
        get, post,
    };
    &[
        get(
            "/api/home",
            "The start page by role: an owner's pets, a staff member's recent patients and clinic week, the \
                 admin's view of the system (nothing medical)",
            &[],
            Schema("Home"),
        ),
        post(
            "/api/pets/photo",
            "Shows one of the pet's photos on its card (its owner)",
            &[IdField("pet_id"), IdField("document_id")],
            Nothing,
        ),
    ]
};
