//! What administrators do: clinics and staff accounts, disabling accounts, the audit trail, and the state
//! of the buckets.

use crate::error::ApiError;
use leptos::{prelude::*, server_fn::codec::GetUrl};
use pawfile::domain::StorageReport;

/// Checks both stores now (each replica answers for itself, so nothing is cached in memory).
///
/// `GET /api/admin/storage-status`, admins only.
#[server(endpoint = "admin/storage-status", input = GetUrl)]
pub async fn storage_status() -> Result<StorageReport, ApiError> {
    use crate::http::{RequestContext, respond};
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            let state = &ctx.state;
            Ok(pawfile::admin::storage_status(
                &state.db,
                &actor,
                &state.documents,
                &state.backups,
                state.config.backups_on_this_machine,
            )
            .await?)
        }
        .await,
    )
}

/// Every clinic with its staff count (admins). `GET /api/admin/clinics`.
/// The mail queue: how many messages wait, and those that failed (still retried, or given up in the
/// last 30 days), newest first. Admins only. `GET /api/admin/mail`.
#[server(endpoint = "admin/mail", input = GetUrl)]
pub async fn mail_status() -> Result<pawfile::domain::MailStatus, ApiError> {
    use crate::http::{RequestContext, respond};
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            Ok(pawfile::admin::mail_status(&ctx.state.db, &actor).await?)
        }
        .await,
    )
}

#[server(endpoint = "admin/clinics", input = GetUrl)]
pub async fn admin_clinics() -> Result<Vec<pawfile::domain::ClinicSummary>, ApiError> {
    use crate::http::{RequestContext, respond};
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            Ok(pawfile::admin::list_clinics(&ctx.state.db, &actor).await?)
        }
        .await,
    )
}

/// Creates a clinic (admins). `POST /api/admin/clinics/create` with `name`.
#[server(endpoint = "admin/clinics/create")]
pub async fn create_clinic(name: String) -> Result<pawfile::domain::ClinicId, ApiError> {
    use crate::http::{RequestContext, respond};
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            let name = pawfile::domain::ClinicName::parse(&name)?;
            Ok(pawfile::admin::create_clinic(&ctx.state.db, &actor, &name).await?)
        }
        .await,
    )
}

/// Invites a member of staff to a clinic (admins): they get a link (7 days, once) to choose their own
/// password. `POST /api/admin/staff/invite` with `clinic_id`, `email`, `display_name`, optional
/// `also_admin`.
#[server(endpoint = "admin/staff/invite")]
pub async fn invite_staff(
    clinic_id: String,
    email: String,
    display_name: String,
    #[server(default)] also_admin: Option<String>,
) -> Result<(), ApiError> {
    use crate::http::{RequestContext, respond};
    use pawfile::domain::{DisplayName, Email};
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            let clinic = clinic_id
                .parse()
                .map_err(|_| ApiError::invalid("clinic_id", "Choose the clinic the account belongs to."))?;
            let invitation = pawfile::auth::StaffInvitation {
                email: Email::parse(&email)?,
                display_name: DisplayName::parse(&display_name)?,
                clinic_id: clinic,
                also_admin: also_admin.is_some_and(|value| !value.is_empty() && value != "false"),
            };
            pawfile::auth::invite_staff(&ctx.state.db, &actor, invitation).await?;
            ctx.state.tasks.mail.notify_one();
            Ok(())
        }
        .await,
    )
}

/// Resets someone's second factor (admins; audited): for a lost phone. They set it up again at their
/// next sign-in. `POST /api/admin/users/reset-2fa` with `user_id`.
#[server(endpoint = "admin/users/reset-2fa")]
pub async fn reset_two_factor(user_id: pawfile::domain::UserId) -> Result<(), ApiError> {
    use crate::http::{RequestContext, respond};
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            actor
                .require_role(&ctx.state.db, pawfile::domain::Role::Admin)
                .await?;
            pawfile::auth::two_factor::reset(&ctx.state.db, Some(&actor), user_id).await?;
            Ok(())
        }
        .await,
    )
}

/// Accounts matching `q` by e-mail or name (admins). `GET /api/admin/users?q=...`.
#[server(endpoint = "admin/users", input = GetUrl)]
pub async fn admin_users(
    #[server(default)] q: String,
) -> Result<Vec<pawfile::domain::UserSummary>, ApiError> {
    use crate::http::{RequestContext, respond};
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            Ok(pawfile::admin::list_users(&ctx.state.db, &actor, &q).await?)
        }
        .await,
    )
}

/// Disables an account; its sessions end at once (admins). `POST /api/admin/users/disable` with
/// `user_id`.
#[server(endpoint = "admin/users/disable")]
pub async fn disable_user(user_id: pawfile::domain::UserId) -> Result<(), ApiError> {
    use crate::http::{RequestContext, respond};
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            pawfile::admin::disable_user(&ctx.state.db, &actor, user_id).await?;
            Ok(())
        }
        .await,
    )
}

/// A page of the audit trail (admins), filtered by actor e-mail, action, pet id and dates
/// (`YYYY-MM-DD`, whole UTC days). `GET /api/admin/audit?...&page=N`.
#[server(endpoint = "admin/audit", input = GetUrl)]
pub async fn audit_trail(
    #[server(default)] actor: String,
    #[server(default)] action: String,
    #[server(default)] pet_id: String,
    #[server(default)] from: String,
    #[server(default)] until: String,
    #[server(default)] page: u32,
) -> Result<pawfile::domain::AuditPage, ApiError> {
    use crate::http::{RequestContext, respond};
    use pawfile::audit::{Action, Filter};
    use time::{Date, macros::format_description};
    fn day(input: &str, field: &str) -> Result<Option<Date>, ApiError> {
        let input = input.trim();
        if input.is_empty() {
            return Ok(None);
        }
        Date::parse(input, format_description!("[year]-[month]-[day]"))
            .ok()
            .filter(|date| date.year() >= 1)
            .map(Some)
            .ok_or_else(|| ApiError::invalid(field, "Enter a date as year-month-day."))
    }
    respond(
        async {
            let ctx = RequestContext::get()?;
            let caller = ctx.actor().await?;
            let filter = Filter {
                actor: Some(actor).filter(|actor| !actor.trim().is_empty()),
                action: match action.trim() {
                    "" => None,
                    name => Some(
                        Action::from_name(name)
                            .ok_or_else(|| ApiError::invalid("action", "Choose an action from the list."))?,
                    ),
                },
                pet: match pet_id.trim() {
                    "" => None,
                    id => Some(
                        id.parse()
                            .map_err(|_| ApiError::invalid("pet_id", "A pet id looks like 0190a6e4-....."))?,
                    ),
                },
                from: day(&from, "from")?.map(|day| day.midnight().assume_utc()),
                // The end of the last day; the last day there is has no end to bound by.
                until: day(&until, "until")?
                    .and_then(Date::next_day)
                    .map(|day| day.midnight().assume_utc()),
            };
            Ok(pawfile::admin::audit_trail(&ctx.state.db, &caller, &filter, page.max(1)).await?)
        }
        .await,
    )
}

/// Backups: runs newest first (each with `id`, `status`, progress, sizes and error), the next scheduled
/// run, the last drill, the red banner and set-up warnings (admins). `GET /api/admin/backups`; with
/// `background=true` (the page polling a running backup's progress) the call does not count as the
/// admin's activity for the session's idle timeout.
#[server(endpoint = "admin/backups", input = GetUrl)]
pub async fn backups(
    #[server(default)] background: bool,
) -> Result<pawfile::domain::BackupOverview, ApiError> {
    use crate::http::{RequestContext, respond};
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = if background {
                ctx.background_actor().await?
            } else {
                ctx.actor().await?
            };
            Ok(overview(&ctx.state, &actor).await?)
        }
        .await,
    )
}

/// How many days the dashboard draws.
pub const DASHBOARD_DAYS: i32 = 90;

/// The dashboard's figures (admins), from the rows the server records each day: storage over time (total
/// and per clinic), uploads per day, backup sizes and durations, the integrity status and the backup
/// banner. `GET /api/admin/dashboard`.
#[server(endpoint = "admin/dashboard", input = GetUrl)]
pub async fn dashboard() -> Result<pawfile::domain::Dashboard, ApiError> {
    use crate::http::{RequestContext, respond};
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            let state = &ctx.state;
            let mut dashboard = pawfile::usage::dashboard(
                &state.db,
                &actor,
                DASHBOARD_DAYS,
                state.config.documents.scrub_period,
            )
            .await?;
            dashboard.backup_alarm = overview(state, &actor).await?.alarm;
            Ok(dashboard)
        }
        .await,
    )
}

/// Starts a backup now (admins): answers 202 with the run's id; 409 while one runs on any replica.
/// `POST /api/admin/backups/run`.
#[server(endpoint = "admin/backups/run")]
pub async fn run_backup() -> Result<uuid::Uuid, ApiError> {
    use crate::http::{RequestContext, respond};
    let result = respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            Ok(pawfile::admin::start_backup(&ctx.state.db, &actor, &ctx.state.backup).await?)
        }
        .await,
    );
    if result.is_ok()
        && let Some(options) = use_context::<leptos_axum::ResponseOptions>()
        && use_context::<axum::http::request::Parts>()
            .is_none_or(|parts| !crate::http::prefers_html(&parts.headers))
    {
        options.set_status(axum::http::StatusCode::ACCEPTED);
    }
    result
}

/// The backup overview with the warnings only the server knows (its settings), for the backups page and
/// the admin's start page.
#[cfg(feature = "ssr")]
pub(crate) async fn overview(
    state: &crate::state::AppState,
    actor: &pawfile::access::Actor,
) -> Result<pawfile::domain::BackupOverview, pawfile::error::Error> {
    // Who asks first, then any work (a page read never reads the backup bucket: drill reports are
    // imported by the drill task, refused objects recorded by the checks that list the bucket).
    actor
        .require_role(&state.db, pawfile::domain::Role::Admin)
        .await?;
    let config = &state.config;
    let next_run = config.backup_schedule.next_after(time::OffsetDateTime::now_utc());
    let mut warnings = Vec::new();
    if let Some(refusal) = state.backup.policy().refusal() {
        warnings.push(format!("Backups cannot run: {refusal}."));
    } else if state.backup.policy().recipients.is_unencrypted() {
        warnings.push("Backups are stored unencrypted (PAWFILE_ALLOW_UNENCRYPTED_BACKUPS).".to_owned());
    }
    if config.backup_key_beside_data {
        warnings.push(
            "The backup key was generated into the data folder, beside the data it protects: copy \
             backup-key.txt somewhere safe, away from this machine, and set PAWFILE_BACKUP_RECIPIENTS."
                .to_owned(),
        );
    }
    for problem in &config.backup_separation {
        warnings.push(format!("Backups are not separate from the documents: {problem}."));
    }
    if config.backups_on_this_machine {
        warnings.push(
            "Backups are stored on this machine (embedded store), not separately: set \
             PAWFILE_BACKUP_S3_ENDPOINT."
                .to_owned(),
        );
    }
    let drills = config.backup_drill.is_some();
    let signing_key = state
        .backup
        .policy()
        .keys
        .verifying_key()
        .map(|key| key.to_string());
    pawfile::admin::backup_overview(&state.db, actor, next_run, drills, signing_key, warnings).await
}

/// This file's server functions, as the API document describes them.
#[cfg(feature = "ssr")]
pub(super) const ADMIN_DESCRIBED: &[super::doc::ServerFnDoc] = {
    use super::doc::{
        Answer::{Id, ListOf, Nothing, Schema},
        Field::{Flag, Id as IdField, OptionalText, Text},
        get, post,
    };
    &[
        get(
            "/api/admin/storage-status",
            "Admins: whether the buckets answer",
            &[],
            Schema("StorageReport"),
        ),
        get(
            "/api/admin/clinics",
            "Admins: every clinic with its staff count",
            &[],
            ListOf("ClinicSummary"),
        ),
        post(
            "/api/admin/clinics/create",
            "Admins: creates a clinic",
            &[Text("name")],
            Id,
        ),
        post(
            "/api/admin/staff/invite",
            "Admins: invites a member of staff to a clinic (a mailed link to choose their password)",
            &[
                Text("clinic_id"),
                Text("email"),
                Text("display_name"),
                OptionalText("also_admin"),
            ],
            Nothing,
        ),
        get(
            "/api/admin/users",
            "Admins: accounts, searched",
            &[OptionalText("q")],
            ListOf("UserSummary"),
        ),
        post(
            "/api/admin/users/disable",
            "Admins: disables an account",
            &[IdField("user_id")],
            Nothing,
        ),
        post(
            "/api/admin/users/reset-2fa",
            "Admins: resets someone's second factor (they set it up again at their next sign-in)",
            &[IdField("user_id")],
            Nothing,
        ),
        get(
            "/api/admin/audit",
            "Admins: the audit trail, 50 per page",
            &[
                OptionalText("actor"),
                OptionalText("action"),
                OptionalText("pet_id"),
                OptionalText("from"),
                OptionalText("until"),
                OptionalText("page"),
            ],
            Schema("AuditPage"),
        ),
        get(
            "/api/admin/backups",
            "Admins: backup runs, newest first",
            &[Flag("background")],
            Schema("BackupOverview"),
        ),
        get(
            "/api/admin/dashboard",
            "Admins: storage, uploads and backups day by day, the integrity status and the backup banner",
            &[],
            Schema("Dashboard"),
        ),
        get(
            "/api/admin/mail",
            "Admins: the mail queue (waiting, failing, given up)",
            &[],
            Schema("MailStatus"),
        ),
        post(
            "/api/admin/backups/run",
            "Admins: backs up now (409 while one runs)",
            &[],
            Id,
        )
        .answering(202),
    ]
};
