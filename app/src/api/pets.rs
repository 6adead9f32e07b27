//! Pets: the owner's list and pet pages, sharing with clinics, claiming walk-in patients; the clinic's
//! patient list and walk-in registration.

// Server functions take one argument per form field.
#![allow(clippy::too_many_arguments)]

use crate::error::ApiError;
use leptos::{prelude::*, server_fn::codec::GetUrl};
use pawfile::domain::{
    AuditEntry, ClinicId, ClinicSummary, IssuedClaimCode, PetId, PetSummary, PetView, RecordSummary,
};
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::http::{RequestContext, respond};
#[cfg(feature = "ssr")]
use pawfile::domain::{PetDetails, PetForm};

/// A pet page: the pet and its medical records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PetPage {
    /// The pet, its shares and the caller's permissions.
    pub pet: PetView,
    /// Its most recent records, newest visit first: all of them, or [`RECENT_RECORDS`] unless asked
    /// for all.
    pub records: Vec<RecordSummary>,
    /// Whether it has more records than those.
    pub more_records: bool,
}

/// How many records a pet page shows before "show all".
pub const RECENT_RECORDS: u32 = 20;

/// Sends a plain HTML form to the pet's page, leaving the claim code it issued for that page's render
/// (in the session, never in a URL: URLs end up in logs and browser history).
#[cfg(feature = "ssr")]
async fn hand_over_code(ctx: &RequestContext, issued: &IssuedClaimCode) -> Result<(), ApiError> {
    if ctx.prefers_html {
        crate::http::session::leave_claim_code(&ctx.session, issued).await?;
        leptos_axum::redirect(&format!("/pets/{}", issued.pet_id));
    }
    Ok(())
}

/// The caller's own pets. `GET /api/pets?archived=true` includes archived ones.
#[server(endpoint = "pets", input = GetUrl)]
pub async fn list_pets(#[server(default)] archived: bool) -> Result<Vec<PetSummary>, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            Ok(pawfile::pets::list_own_pets(&ctx.state.db, &actor, archived).await?)
        }
        .await,
    )
}

/// Adds a pet to the caller's pets. `POST /api/pets/create` with the pet form fields; answers its id.
#[server(endpoint = "pets/create")]
pub async fn create_pet(
    name: String,
    species: String,
    #[server(default)] breed: String,
    #[server(default)] sex: String,
    #[server(default)] birth_date: String,
    #[server(default)] microchip: String,
    #[server(default)] notes: String,
) -> Result<PetId, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            let form = PetForm {
                name,
                species,
                breed,
                sex,
                birth_date,
                microchip,
                notes,
            };
            let details = PetDetails::parse(&form, actor.today())?;
            let id = pawfile::pets::create_pet(&ctx.state.db, &actor, &details).await?;
            ctx.redirect_html_form(&format!("/pets/{id}"));
            Ok(id)
        }
        .await,
    )
}

/// A pet page's data. `GET /api/pets/get?pet_id=...` (`&all_records=true` for every record).
#[server(endpoint = "pets/get", input = GetUrl)]
pub async fn get_pet(pet_id: PetId, #[server(default)] all_records: bool) -> Result<PetPage, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            let limit = (!all_records).then_some(RECENT_RECORDS + 1);
            let (pet, mut records) =
                pawfile::pets::view_pet_page(&ctx.state.db, &actor, pet_id, limit).await?;
            let more_records = !all_records && records.len() > RECENT_RECORDS as usize;
            if more_records {
                records.truncate(RECENT_RECORDS as usize);
            }
            Ok(PetPage {
                pet,
                records,
                more_records,
            })
        }
        .await,
    )
}

/// Changes a pet's details (its owner). `POST /api/pets/update` with `pet_id` and the pet form fields.
#[server(endpoint = "pets/update")]
pub async fn update_pet(
    pet_id: PetId,
    name: String,
    species: String,
    #[server(default)] breed: String,
    #[server(default)] sex: String,
    #[server(default)] birth_date: String,
    #[server(default)] microchip: String,
    #[server(default)] notes: String,
) -> Result<(), ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            let form = PetForm {
                name,
                species,
                breed,
                sex,
                birth_date,
                microchip,
                notes,
            };
            let details = PetDetails::parse(&form, actor.today())?;
            pawfile::pets::update_pet(&ctx.state.db, &actor, pet_id, &details).await?;
            ctx.redirect_html_form(&format!("/pets/{pet_id}"));
            Ok(())
        }
        .await,
    )
}

/// Archives a pet: hidden from lists, its history kept. `POST /api/pets/archive` with `pet_id`.
#[server(endpoint = "pets/archive")]
pub async fn archive_pet(pet_id: PetId) -> Result<(), ApiError> {
    set_archived(pet_id, true).await
}

/// Brings a pet back from the archive. `POST /api/pets/restore` with `pet_id`.
#[server(endpoint = "pets/restore")]
pub async fn restore_pet(pet_id: PetId) -> Result<(), ApiError> {
    set_archived(pet_id, false).await
}

#[cfg(feature = "ssr")]
async fn set_archived(pet_id: PetId, archived: bool) -> Result<(), ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            pawfile::pets::set_archived(&ctx.state.db, &actor, pet_id, archived).await?;
            Ok(())
        }
        .await,
    )
}

/// Every clinic, to choose whom to share a pet with. `GET /api/clinics`.
#[server(endpoint = "clinics", input = GetUrl)]
pub async fn list_clinics() -> Result<Vec<ClinicSummary>, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            ctx.require_user().await?;
            Ok(pawfile::pets::list_clinics(&ctx.state.db).await?)
        }
        .await,
    )
}

/// Shares a pet with a clinic (its owner). `POST /api/pets/share` with `pet_id`, `clinic_id`.
#[server(endpoint = "pets/share")]
pub async fn share_pet(pet_id: PetId, clinic_id: String) -> Result<(), ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            let clinic: ClinicId = clinic_id
                .parse()
                .map_err(|_| ApiError::invalid("clinic_id", "Choose a clinic from the list."))?;
            pawfile::pets::share_pet(&ctx.state.db, &actor, pet_id, clinic).await?;
            Ok(())
        }
        .await,
    )
}

/// Ends a clinic's access to a pet at once (its owner). `POST /api/pets/revoke` with `pet_id`,
/// `clinic_id`.
#[server(endpoint = "pets/revoke")]
pub async fn revoke_share(pet_id: PetId, clinic_id: ClinicId) -> Result<(), ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            pawfile::pets::revoke_share(&ctx.state.db, &actor, pet_id, clinic_id).await?;
            Ok(())
        }
        .await,
    )
}

/// Who accessed a pet and when (its owner). `GET /api/pets/history?pet_id=...`.
#[server(endpoint = "pets/history", input = GetUrl)]
pub async fn pet_history(pet_id: PetId) -> Result<Vec<AuditEntry>, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            Ok(pawfile::pets::access_history(&ctx.state.db, &actor, pet_id).await?)
        }
        .await,
    )
}

/// Takes a walk-in patient into the caller's account. `POST /api/pets/claim` with `code`.
#[server(endpoint = "pets/claim")]
pub async fn claim_pet(code: String) -> Result<PetId, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            let pet =
                pawfile::pets::claim_pet(&ctx.state.db, &ctx.state.config.limits.accounts(), &actor, &code)
                    .await?;
            ctx.redirect_html_form(&format!("/pets/{pet}"));
            Ok(pet)
        }
        .await,
    )
}

/// The pets shared with the caller's clinic, searched by pet name, owner name or e-mail, or microchip.
/// `GET /api/clinic/patients?q=...`.
#[server(endpoint = "clinic/patients", input = GetUrl)]
pub async fn clinic_patients(#[server(default)] q: String) -> Result<Vec<PetSummary>, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            Ok(pawfile::pets::search_patients(&ctx.state.db, &actor, &q).await?)
        }
        .await,
    )
}

/// Registers a walk-in patient for the caller's clinic and issues the owner's claim code.
/// `POST /api/clinic/walk-in` with the pet form fields, `owner_name` and `owner_email`.
#[server(endpoint = "clinic/walk-in")]
pub async fn register_walk_in(
    name: String,
    species: String,
    #[server(default)] breed: String,
    #[server(default)] sex: String,
    #[server(default)] birth_date: String,
    #[server(default)] microchip: String,
    #[server(default)] notes: String,
    owner_name: String,
    owner_email: String,
) -> Result<IssuedClaimCode, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            let form = PetForm {
                name,
                species,
                breed,
                sex,
                birth_date,
                microchip,
                notes,
            };
            let details = PetDetails::parse(&form, actor.today())?;
            let owner = pawfile::pets::parse_owner_contact(&owner_name, &owner_email)?;
            let issued = pawfile::pets::register_walk_in(&ctx.state.db, &actor, &details, &owner).await?;
            ctx.state.tasks.mail.notify_one();
            hand_over_code(&ctx, &issued).await?;
            Ok(issued)
        }
        .await,
    )
}

/// A new claim code for an unclaimed walk-in patient; the old one stops working.
/// `POST /api/pets/claim-code` with `pet_id`.
#[server(endpoint = "pets/claim-code")]
pub async fn reissue_claim_code(pet_id: PetId) -> Result<IssuedClaimCode, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            let issued = pawfile::pets::reissue_claim_code(&ctx.state.db, &actor, pet_id).await?;
            ctx.state.tasks.mail.notify_one();
            hand_over_code(&ctx, &issued).await?;
            Ok(issued)
        }
        .await,
    )
}

/// This file's server functions, as the API document describes them.
#[cfg(feature = "ssr")]
pub(super) const PETS_DESCRIBED: &[super::doc::ServerFnDoc] = {
    use super::doc::{
        Answer::{Id, ListOf, Nothing, Schema},
        Field::{Flag, Id as IdField, OptionalText, Text},
        get, post,
    };
    const PET_FIELDS: &[super::doc::Field] = &[
        Text("name"),
        Text("species"),
        OptionalText("breed"),
        OptionalText("sex"),
        OptionalText("birth_date"),
        OptionalText("microchip"),
        OptionalText("notes"),
    ];
    &[
        get(
            "/api/pets",
            "The caller's pets",
            &[Flag("archived")],
            ListOf("PetSummary"),
        ),
        post(
            "/api/pets/create",
            "Adds a pet to the caller's pets",
            PET_FIELDS,
            Id,
        ),
        get(
            "/api/pets/get",
            "A pet page: details, shares, permissions, the 20 most recent records (all with `all_records`)",
            &[IdField("pet_id"), Flag("all_records")],
            Schema("PetPage"),
        ),
        post(
            "/api/pets/update",
            "Changes a pet's details (its owner)",
            &[
                IdField("pet_id"),
                Text("name"),
                Text("species"),
                OptionalText("breed"),
                OptionalText("sex"),
                OptionalText("birth_date"),
                OptionalText("microchip"),
                OptionalText("notes"),
            ],
            Nothing,
        ),
        post(
            "/api/pets/archive",
            "Archives a pet (its owner)",
            &[IdField("pet_id")],
            Nothing,
        ),
        post(
            "/api/pets/restore",
            "Takes a pet out of the archive (its owner)",
            &[IdField("pet_id")],
            Nothing,
        ),
        get(
            "/api/clinics",
            "Clinics to share a pet with",
            &[],
            ListOf("ClinicSummary"),
        ),
        post(
            "/api/pets/share",
            "Shares a pet with a clinic (its owner)",
            &[IdField("pet_id"), Text("clinic_id")],
            Nothing,
        ),
        post(
            "/api/pets/revoke",
            "Ends a clinic's access to a pet (its owner)",
            &[IdField("pet_id"), IdField("clinic_id")],
            Nothing,
        ),
        get(
            "/api/pets/history",
            "Who accessed the pet, and when (its owner)",
            &[IdField("pet_id")],
            ListOf("AuditEntry"),
        ),
        post(
            "/api/pets/claim",
            "Takes a walk-in patient into the caller's account",
            &[Text("code")],
            Id,
        ),
        get(
            "/api/clinic/patients",
            "Staff: pets shared with their clinic, searched",
            &[OptionalText("q")],
            ListOf("PetSummary"),
        ),
        post(
            "/api/clinic/walk-in",
            "Staff: registers a walk-in patient; answers its claim code",
            &[
                Text("name"),
                Text("species"),
                OptionalText("breed"),
                OptionalText("sex"),
                OptionalText("birth_date"),
                OptionalText("microchip"),
                OptionalText("notes"),
                OptionalText("owner_name"),
                OptionalText("owner_email"),
            ],
            Schema("IssuedClaimCode"),
        ),
        post(
            "/api/pets/claim-code",
            "Staff: a new claim code for an unclaimed walk-in",
            &[IdField("pet_id")],
            Schema("IssuedClaimCode"),
        ),
    ]
};
