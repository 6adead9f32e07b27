use crate::error::ApiError;
use leptos::{prelude::*, server_fn::codec::GetUrl};
use pawfile::domain::SessionUser;

#[cfg(feature = "ssr")]
use crate::http::{RequestContext, respond, session};

/// Signs up a pet owner: mails a link that creates the account and signs them in (with a claim code,
/// the link also takes the walk-in patient it belongs to into the account). The answer is the same
/// whether or not the address has an account, so it tells a stranger nothing; the owner of an address
/// that has one gets a mail saying someone tried.
///
/// `POST /api/register` with form fields `email`, `display_name`, `password`, optional `claim_code`;
/// answers 202 with the sentence to show.
#[server(endpoint = "register")]
pub async fn register(
    email: String,
    display_name: String,
    password: String,
    #[server(default)] claim_code: String,
) -> Result<String, ApiError> {
    let result = respond(
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
            if pawfile::auth::register_owner(
                &state.db,
                &state.hasher,
                &state.config.limits.accounts(),
                registration,
            )
            .await?
            {
                state.tasks.mail.notify_one();
            }
            let message = pawfile::auth::CHECK_YOUR_MAIL.to_owned();
            told_to_check_mail(&ctx, &message).await?;
            Ok(message)
        }
        .await,
    );
    accepted(&result);
    result
}

/// A plain form goes to the sign-in page with `message` shown there; a script gets it as the answer.
#[cfg(feature = "ssr")]
async fn told_to_check_mail(ctx: &RequestContext, message: &str) -> Result<(), ApiError> {
    if ctx.prefers_html {
        let flash = pawfile::domain::Flash {
            ok: true,
            message: message.to_owned(),
        };
        session::leave_flash(&ctx.session, &flash).await?;
        ctx.redirect_html_form("/login");
    }
    Ok(())
}

/// 202 for a script's request that was taken (its mail is sent in the background).
#[cfg(feature = "ssr")]
fn accepted<T>(result: &Result<T, ApiError>) {
    if result.is_ok()
        && let Some(options) = use_context::<leptos_axum::ResponseOptions>()
        && use_context::<axum::http::request::Parts>()
            .is_none_or(|parts| !crate::http::prefers_html(&parts.headers))
    {
        options.set_status(axum::http::StatusCode::ACCEPTED);
    }
}

/// Follows the link of a sign-up mail, with the password chosen at sign-up typed again: creates the
/// account, signs in, and claims the pet of the code given at sign-up if it still works (a flash says so
/// if not). The link works once, for 48 hours; a wrong password creates nothing and counts as a failed
/// sign-in.
///
/// `POST /api/verify-email` with `token`, `password`.
#[server(endpoint = "verify-email")]
pub async fn verify_email(token: String, password: String) -> Result<SessionUser, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let state = &ctx.state;
            let verified = pawfile::auth::verify_email(
                &state.db,
                &state.hasher,
                &state.config.limits.accounts(),
                pawfile::auth::Confirmation {
                    token: &token,
                    password: &password,
                    client_addr: Some(ctx.client.addr),
                },
            )
            .await?;
            session::start(&ctx.session, verified.user_id, 0).await?;
            if verified.claim == Some(None) {
                let flash = pawfile::domain::Flash {
                    ok: false,
                    message: "Your account is ready, but the claim code given with it no longer works: \
                              ask the clinic for a new one and enter it on your pet list."
                        .to_owned(),
                };
                session::leave_flash(&ctx.session, &flash).await?;
            }
            let user = session::load_signed_in(state, verified.user_id, 0).await?;
            ctx.redirect_html_form(session::landing(&user));
            Ok(user)
        }
        .await,
    )
}

/// "Forgot password": mails a single-use link, valid for an hour, if an enabled account uses the
/// address. The answer is the same either way.
///
/// `POST /api/password/forgot` with `email`; answers 202 with the sentence to show.
#[server(endpoint = "password/forgot")]
pub async fn forgot_password(email: String) -> Result<String, ApiError> {
    let result = respond(
        async {
            let ctx = RequestContext::get()?;
            let state = &ctx.state;
            if pawfile::auth::request_password_reset(
                &state.db,
                &state.config.limits.accounts(),
                &email,
                Some(ctx.client.addr),
            )
            .await?
            {
                state.tasks.mail.notify_one();
            }
            let message = pawfile::auth::RESET_REQUESTED.to_owned();
            told_to_check_mail(&ctx, &message).await?;
            Ok(message)
        }
        .await,
    );
    accepted(&result);
    result
}

/// Sets a new password from a reset link. Every session of the account ends, this one included; the
/// person signs in with the new password.
///
/// `POST /api/password/reset` with `token`, `new_password`.
#[server(endpoint = "password/reset")]
pub async fn reset_password(token: String, new_password: String) -> Result<String, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let state = &ctx.state;
            pawfile::auth::reset_password(
                &state.db,
                &state.hasher,
                &token,
                &new_password,
                Some(ctx.client.addr),
            )
            .await?;
            session::end(&ctx.session).await?;
            let message =
                "Your password is changed and you are signed out everywhere. Sign in with the new one."
                    .to_owned();
            if ctx.prefers_html {
                let flash = pawfile::domain::Flash {
                    ok: true,
                    message: message.clone(),
                };
                session::leave_flash(&ctx.session, &flash).await?;
                ctx.redirect_html_form("/login");
            }
            Ok(message)
        }
        .await,
    )
}

/// The staff invitation a link carries (who, which clinic), if it still works.
/// `GET /api/invitation?token=...`.
#[server(endpoint = "invitation", input = GetUrl)]
pub async fn invitation(token: String) -> Result<pawfile::domain::InvitationView, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            Ok(pawfile::auth::invitation(&ctx.state.db, &token).await?)
        }
        .await,
    )
}

/// Accepts a staff invitation with the password its owner chose; signs them in.
/// `POST /api/invitation/accept` with `token`, `password`.
#[server(endpoint = "invitation/accept")]
pub async fn accept_invitation(token: String, password: String) -> Result<SessionUser, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let state = &ctx.state;
            let user_id = pawfile::auth::accept_invitation(
                &state.db,
                &state.hasher,
                &token,
                &password,
                Some(ctx.client.addr),
            )
            .await?;
            session::start(&ctx.session, user_id, 0).await?;
            let user = session::load_signed_in(state, user_id, 0).await?;
            ctx.redirect_html_form(session::landing(&user));
            Ok(user)
        }
        .await,
    )
}

/// Signs in with e-mail and password (and, for an account with two-factor sign-in on, `code`: the
/// current code of its authenticator app or a recovery code); sets the session cookie. Without the code
/// such an account answers 422 naming the field `code`.
///
/// `POST /api/login` with form fields `email`, `password`, optional `code`.
#[server(endpoint = "login")]
pub async fn login(
    email: String,
    password: String,
    #[server(default)] code: String,
) -> Result<SessionUser, ApiError> {
    use pawfile::auth::{SignInAttempt, SignInOutcome, sign_in};
    respond(
        async {
            let ctx = RequestContext::get()?;
            let state = &ctx.state;
            let attempt = SignInAttempt {
                email: &email,
                password: &password,
                code: Some(&code),
                client_addr: Some(ctx.client.addr),
            };
            match sign_in(&state.db, &state.hasher, &state.config.limits.accounts(), attempt).await? {
                SignInOutcome::SignedIn {
                    user_id,
                    generation,
                    deletion_cancelled,
                } => {
                    session::start(&ctx.session, user_id, generation).await?;
                    if deletion_cancelled {
                        let flash = pawfile::domain::Flash {
                            ok: true,
                            message: "Welcome back: signing in cancelled your account's deletion.".to_owned(),
                        };
                        session::leave_flash(&ctx.session, &flash).await?;
                    }
                    let user = session::load_signed_in(state, user_id, generation).await?;
                    ctx.redirect_html_form(session::landing(&user));
                    Ok(user)
                }
                SignInOutcome::CodeNeeded => {
                    Err(ApiError::invalid("code", pawfile::auth::two_factor::CODE_NEEDED))
                }
                SignInOutcome::Refused(error) if error == pawfile::auth::two_factor::WRONG_CODE => {
                    Err(ApiError::invalid("code", error))
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
                &ctx.state.config.limits.accounts(),
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

/// Deletes the caller's account (owners, with their password) after 30 days: every session ends now,
/// a mail says when, and signing in before then cancels it. Answers the sentence to show.
/// `POST /api/account/delete` with `password`.
#[server(endpoint = "account/delete")]
pub async fn delete_account(password: String) -> Result<String, ApiError> {
    respond(
        async {
            let ctx = RequestContext::get()?;
            let actor = ctx.actor().await?;
            let state = &ctx.state;
            let due = pawfile::deletion::request_deletion(
                &state.db,
                &state.hasher,
                &state.config.limits.accounts(),
                &actor,
                &password,
            )
            .await?;
            state.tasks.mail.notify_one();
            session::end(&ctx.session).await?;
            let message = format!(
                "Your account will be deleted on {}. You are signed out; signing in before then cancels it.",
                due.format(&time::macros::format_description!(
                    "[day] [month repr:long] [year]"
                ))
                .unwrap_or_default()
            );
            if ctx.prefers_html {
                let flash = pawfile::domain::Flash {
                    ok: true,
                    message: message.clone(),
                };
                session::leave_flash(&ctx.session, &flash).await?;
                ctx.redirect_html_form("/");
            }
            Ok(message)
        }
        .await,
    )
}

/// This file's server functions, as the API document describes them.
#[cfg(feature = "ssr")]
pub(super) const ACCOUNT_DESCRIBED: &[super::doc::ServerFnDoc] = {
    use super::doc::{
        Answer::{Nothing, Schema, SchemaOrNull, Sentence, Strings},
        Field::{OptionalText, Text},
        get, post,
    };
    &[
        post(
            "/api/register",
            "Signs up a pet owner: mails a link that creates the account (the same answer for any address)",
            &[
                Text("email"),
                Text("display_name"),
                Text("password"),
                OptionalText("claim_code"),
            ],
            Sentence,
        )
        .answering(202),
        post(
            "/api/verify-email",
            "Follows a sign-up link with the password chosen at sign-up: creates the account and signs in",
            &[Text("token"), Text("password")],
            Schema("SessionUser"),
        ),
        post(
            "/api/password/forgot",
            "Mails a password reset link, if an account uses the address (the same answer either way)",
            &[Text("email")],
            Sentence,
        )
        .answering(202),
        get(
            "/api/invitation",
            "The staff invitation a link carries, if it still works",
            &[Text("token")],
            Schema("InvitationView"),
        ),
        post(
            "/api/invitation/accept",
            "Accepts a staff invitation with the chosen password; signs in",
            &[Text("token"), Text("password")],
            Schema("SessionUser"),
        ),
        post(
            "/api/password/reset",
            "Sets a new password from a reset link; every session of the account ends",
            &[Text("token"), Text("new_password")],
            Sentence,
        ),
        post(
            "/api/login",
            "Signs in; sets the session cookie (`code`: the second factor, for accounts that have one on)",
            &[Text("email"), Text("password"), OptionalText("code")],
            Schema("SessionUser"),
        ),
        post(
            "/api/account/delete",
            "Owners: deletes the caller's account after 30 days (signing in before cancels it); signs out",
            &[Text("password")],
            Sentence,
        ),
        get(
            "/api/me",
            "The signed-in user, or null",
            &[],
            SchemaOrNull("SessionUser"),
        ),
        post(
            "/api/account/time-zone",
            "Sets the caller's time zone (IANA name)",
            &[Text("time_zone")],
            Nothing,
        ),
        get("/api/account/time-zones", "Every time zone name", &[], Strings),
        post(
            "/api/account/password",
            "Changes the caller's password; their other sessions end",
            &[Text("current_password"), Text("new_password")],
            Nothing,
        ),
    ]
};
