//! Two-factor sign-in for one's own account: its state, enrolment, recovery codes, and turning it off.

use crate::error::ApiError;
use leptos::{prelude::*, server_fn::codec::GetUrl};

#[cfg(feature = "ssr")]
use crate::http::{RequestContext, respond};

/// The caller's two-factor sign-in: on or not, required or not, recovery codes left.
/// `GET /api/account/2fa`.
#[server(endpoint = "account/2fa", input = GetUrl)]
pub async fn two_factor_status() -> Result<pawfile::domain::TwoFactorStatus, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.enrolling_actor().await?;
            let (enabled, recovery_codes_left) =
                pawfile::auth::two_factor::status(&ctx.state.db, actor.user.id).await?;
            Ok(pawfile::domain::TwoFactorStatus {
                enabled,
                required: ctx.state.config.sessions.requires_two_factor(&actor.user),
                recovery_codes_left,
            })
        }
        .await,
    )
}

/// Starts setting up two-factor sign-in: a new key, as a QR code (SVG) and as text. It counts once a
/// code from the app confirms it. `POST /api/account/2fa/start`.
#[server(endpoint = "account/2fa/start")]
pub async fn start_two_factor() -> Result<pawfile::domain::TwoFactorEnrolment, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.enrolling_actor().await?;
            Ok(pawfile::auth::two_factor::start_enrolment(&ctx.state.db, &actor).await?)
        }
        .await,
    )
}

/// Turns two-factor sign-in on with the first code from the app; answers the ten recovery codes, shown
/// this once. `POST /api/account/2fa/confirm` with `code`.
#[server(endpoint = "account/2fa/confirm")]
pub async fn confirm_two_factor(code: String) -> Result<Vec<String>, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.enrolling_actor().await?;
            Ok(pawfile::auth::two_factor::confirm_enrolment(
                &ctx.state.db,
                &ctx.state.config.limits.accounts(),
                &actor,
                &code,
            )
            .await?)
        }
        .await,
    )
}

/// New recovery codes (the old ones stop working), given a current code.
/// `POST /api/account/2fa/recovery-codes` with `code`.
#[server(endpoint = "account/2fa/recovery-codes")]
pub async fn renew_recovery_codes(code: String) -> Result<Vec<String>, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            Ok(pawfile::auth::two_factor::renew_recovery_codes(
                &ctx.state.db,
                &ctx.state.config.limits.accounts(),
                &actor,
                &code,
            )
            .await?)
        }
        .await,
    )
}

/// Turns the caller's second factor off, given a current code; refused (403) where the role requires
/// it. `POST /api/account/2fa/disable` with `code`.
#[server(endpoint = "account/2fa/disable")]
pub async fn disable_two_factor(code: String) -> Result<(), ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            if ctx.state.config.sessions.requires_two_factor(&actor.user) {
                return Err(ApiError::Forbidden {
                    error: "Your role requires two-factor sign-in: it stays on.".to_owned(),
                });
            }
            Ok(pawfile::auth::two_factor::disable(
                &ctx.state.db,
                &ctx.state.config.limits.accounts(),
                &actor,
                &code,
            )
            .await?)
        }
        .await,
    )
}

/// This file's server functions, as the API document describes them.
#[cfg(feature = "ssr")]
pub(super) const TWO_FACTOR_DESCRIBED: &[super::doc::ServerFnDoc] = {
    use super::doc::{
        Answer::{Nothing, Schema, Strings},
        Field::Text,
        get, post,
    };
    &[
        get(
            "/api/account/2fa",
            "The caller's two-factor sign-in: on, required, recovery codes left",
            &[],
            Schema("TwoFactorStatus"),
        ),
        post(
            "/api/account/2fa/start",
            "Starts setting up two-factor sign-in: the key as a QR code (SVG) and as text",
            &[],
            Schema("TwoFactorEnrolment"),
        ),
        post(
            "/api/account/2fa/confirm",
            "Turns two-factor sign-in on with the first code; answers the recovery codes, shown once",
            &[Text("code")],
            Strings,
        ),
        post(
            "/api/account/2fa/disable",
            "Turns the caller's second factor off, given a current code (403 where the role requires it)",
            &[Text("code")],
            Nothing,
        ),
        post(
            "/api/account/2fa/recovery-codes",
            "New recovery codes (the old ones stop working), given a current code",
            &[Text("code")],
            Strings,
        ),
        post("/api/logout", "Signs out", &[], Nothing),
    ]
};
