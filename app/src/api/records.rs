//! Medical records: create, read with history, edit with optimistic concurrency.

use crate::error::ApiError;
use leptos::{prelude::*, server_fn::codec::GetUrl};
use pawfile::domain::{PetId, RecordId, RecordView};

#[cfg(feature = "ssr")]
use crate::http::{RequestContext, respond};
#[cfg(feature = "ssr")]
use pawfile::domain::{RecordDetails, RecordForm};

/// Writes a medical record for a pet (staff of a clinic it is shared with).
/// `POST /api/records/create` with `pet_id`, `visit_date`, `kind`, `title`, `body`; answers its id.
#[server(endpoint = "records/create")]
pub async fn create_record(
    pet_id: PetId,
    visit_date: String,
    kind: String,
    title: String,
    #[server(default)] body: String,
) -> Result<RecordId, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            let details = RecordDetails::parse(
                &RecordForm {
                    visit_date,
                    kind,
                    title,
                    body,
                },
                actor.today(),
            )?;
            let id = pawfile::records::create_record(&ctx.state.db, &actor, pet_id, &details).await?;
            ctx.redirect_html_form(&format!("/records/{id}"));
            Ok(id)
        }
        .await,
    )
}

/// A record with every earlier version. `GET /api/records/get?record_id=...`.
#[server(endpoint = "records/get", input = GetUrl)]
pub async fn get_record(record_id: RecordId) -> Result<RecordView, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            Ok(pawfile::records::view_record(&ctx.state.db, &actor, record_id).await?)
        }
        .await,
    )
}

/// Changes a record (staff of its clinic). `version` is the version the form was opened at; if the record
/// changed since, the answer is 409 and nothing is overwritten. `POST /api/records/update`; answers the
/// new version.
#[server(endpoint = "records/update")]
pub async fn update_record(
    record_id: RecordId,
    version: i32,
    visit_date: String,
    kind: String,
    title: String,
    #[server(default)] body: String,
) -> Result<i32, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            let details = RecordDetails::parse(
                &RecordForm {
                    visit_date,
                    kind,
                    title,
                    body,
                },
                actor.today(),
            )?;
            let version =
                pawfile::records::update_record(&ctx.state.db, &actor, record_id, version, &details).await?;
            ctx.redirect_html_form(&format!("/records/{record_id}"));
            Ok(version)
        }
        .await,
    )
}

/// Searches the text (title and body) of the medical records the caller may read, best matches first,
/// each with the passage around the matching words. `GET /api/records/search?q=...`.
#[server(endpoint = "records/search", input = GetUrl)]
pub async fn search_records(
    #[server(default)] q: String,
) -> Result<Vec<pawfile::domain::RecordHit>, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            Ok(pawfile::records::search_records(
                &ctx.state.db,
                &actor,
                &ctx.state.config.records.search_language,
                &q,
                ctx.state.config.limits.searches_per_user,
            )
            .await?)
        }
        .await,
    )
}

/// This file's server functions, as the API document describes them.
#[cfg(feature = "ssr")]
pub(super) const RECORDS_DESCRIBED: &[super::doc::ServerFnDoc] = {
    use super::doc::{
        Answer::{Id, ListOf, Number as Int, Schema},
        Field::{Id as IdField, Number, OptionalText, Text},
        get, post,
    };
    &[
        post(
            "/api/records/create",
            "Staff: writes a medical record",
            &[
                IdField("pet_id"),
                Text("visit_date"),
                Text("kind"),
                Text("title"),
                OptionalText("body"),
            ],
            Id,
        ),
        get(
            "/api/records/get",
            "A record with every earlier version",
            &[IdField("record_id")],
            Schema("RecordView"),
        ),
        get(
            "/api/records/search",
            "Searches the text of the records the caller may read (audited with the count, not the words)",
            &[OptionalText("q")],
            ListOf("RecordHit"),
        ),
        post(
            "/api/records/update",
            "Staff of the record's clinic: changes a record (409 if it changed since `version`)",
            &[
                IdField("record_id"),
                Number("version"),
                Text("visit_date"),
                Text("kind"),
                Text("title"),
                OptionalText("body"),
            ],
            Int,
        ),
    ]
};
