use crate::error::ApiError;
use leptos::{prelude::*, server_fn::codec::GetUrl};
use pawfile::domain::SessionUser;

#[cfg(feature = "ssr")]
use crate::http::{RequestContext, respond, session};

/// Creates a pet owner's account and signs them in.
///
/// With a clinic's claim code, the walk-in patient it belongs to is taken into the new account (or, if
/// the code is not valid, no account is created).
///
/// `POST /api/register` with form fields `email`, `display_name`, `password`, optional `claim_code`.
#[server(endpoint = "register")]
pub async fn register(
    email: String,
    display_name: String,
    password: String,
    #[server(default)] claim_code: String,
) -> Result<SessionUser, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let state = &ctx.state;
            let registration = pawfile::auth::Registration {
                email: &email,
                display_name: &display_name,
                password: &password,
                claim_code: Some(&claim_code),
                client_addr: Some(ctx.client.addr),
            };
            let user_id = pawfile::auth::register_owner(
                &state.db,
                &state.hasher,
                &state.config.limits.accounts,
                registration,
            )
            .await?;
            // A new account starts at session generation 0.
            session::start(&ctx.session, user_id, 0).await?;
            let user = pawfile::auth::load_session_user(&state.db, user_id, 0)
                .await?
                .ok_or_else(ApiError::unauthenticated)?;
            ctx.redirect_html_form("/");
            Ok(user)
        }
        .await,
    )
}

/// Signs in with e-mail and password; sets the session cookie.
///
/// `POST /api/login` with form fields `email`, `password`.
#[server(endpoint = "login")]
pub async fn login(email: String, password: String) -> Result<SessionUser, ApiError> {
    use pawfile::auth::{SignInAttempt, SignInOutcome, load_session_user, sign_in};
    respond(
        async {
            let ctx = RequestContext::get()?;
            let state = &ctx.state;
            let attempt = SignInAttempt {
                email: &email,
                password: &password,
                client_addr: Some(ctx.client.addr),
            };
            match sign_in(&state.db, &state.hasher, &state.config.limits.accounts, attempt).await? {
                SignInOutcome::SignedIn { user_id, generation } => {
                    session::start(&ctx.session, user_id, generation).await?;
                    let user = load_session_user(&state.db, user_id, generation)
                        .await?
                        .ok_or_else(ApiError::unauthenticated)?;
                    ctx.redirect_html_form("/");
                    Ok(user)
                }
                SignInOutcome::Refused(error) => Err(ApiError::Unauthenticated { error }),
            }
        }
        .await,
    )
}

/// Signs out: deletes the session server-side and clears the cookie.
///
/// `POST /api/logout`.
#[server(endpoint = "logout")]
pub async fn logout() -> Result<(), ApiError> {
    use pawfile::audit::{Action, Event, record};
    respond(
        async {
            let ctx = RequestContext::get()?;
            if let Some(user) = ctx.user().await? {
                record(
                    &ctx.state.db,
                    Event::new(Action::SignOut, Some(user.id), Some(ctx.client.addr)),
                )
                .await?;
            }
            session::end(&ctx.session).await?;
            ctx.redirect_html_form("/");
            Ok(())
        }
        .await,
    )
}

/// The signed-in user, or `null`.
///
/// `GET /api/me`.
#[server(endpoint = "me", input = GetUrl)]
pub async fn current_user() -> Result<Option<SessionUser>, ApiError> {
    respond(RequestContext::get()?.user().await)
}

/// Sets the caller's time zone (an IANA name such as `Europe/Berlin`); timestamps are shown in it.
/// `POST /api/account/time-zone` with `time_zone`.
#[server(endpoint = "account/time-zone")]
pub async fn set_time_zone(time_zone: String) -> Result<(), ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            pawfile::account::set_time_zone(&ctx.state.db, &actor, &time_zone).await?;
            Ok(())
        }
        .await,
    )
}

/// Every time zone name, for the account page. `GET /api/account/time-zones`.
#[server(endpoint = "account/time-zones", input = GetUrl)]
pub async fn time_zones() -> Result<Vec<String>, ApiError> {
    Ok(pawfile::clock::zone_names())
}

/// Changes the caller's password. Every other session of theirs ends; this one continues.
/// `POST /api/account/password` with `current_password`, `new_password`.
#[server(endpoint = "account/password")]
pub async fn change_password(current_password: String, new_password: String) -> Result<(), ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            let user_id = actor.user.id;
            let generation = pawfile::account::change_password(
                &ctx.state.db,
                &ctx.state.hasher,
                &ctx.state.config.limits.accounts,
                &actor,
                &current_password,
                &new_password,
            )
            .await?;
            session::start(&ctx.session, user_id, generation).await?;
            Ok(())
        }
        .await,
    )
}
