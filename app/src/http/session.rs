//! What a session holds and the checks every request makes on it.
//!
//! The session (in Postgres, via tower-sessions) holds the user id, the time of sign-in, the user's
//! session generation and when it was last seen. Each request checks these against `users`, so bumping
//! the generation or disabling the account ends the user's sessions at once on every replica.
//!
//! It also holds the feedback a plain HTML form leaves for the page it is redirected to (see
//! [`crate::feedback`]): written by the POST handler, taken by the server's render of that page.

use crate::{error::ApiError, state::AppState};
use pawfile::{
    access::Actor,
    domain::{Flash, IssuedClaimCode, PetId, SessionUser, UserId},
    net::ClientInfo,
};
use serde::{Deserialize, Serialize};
use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tower_sessions::Session;
use uuid::Uuid;

/// The session cookie's name (over HTTPS with [`SECURE_COOKIE_PREFIX`] in front).
pub const COOKIE_NAME: &str = "pawfile_session";
/// The prefix that makes browsers keep a cookie only if it is Secure, host-only and for path `/`.
pub const SECURE_COOKIE_PREFIX: &str = "__Host-";
const AUTH_KEY: &str = "auth";
const FLASH_KEY: &str = "flash";
/// A claim code a plain form issued: kept in the session, never in a URL (URLs end up in logs and
/// browser history).
const ISSUED_CODE_KEY: &str = "issued_claim_code";
/// How stale `last_seen` may get before a request refreshes it (and with it the stored expiry): a
/// minute, or less for short idle timeouts.
fn touch_interval(idle: Duration) -> u64 {
    Duration::from_secs(60).min(idle / 4).as_secs()
}

/// Whether a request is the person's doing (it keeps their session alive) or a page polling by itself
/// (a progress bar), which must not keep an unattended session open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// A person did something.
    Person,
    /// A page refreshing itself.
    Background,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct SessionAuth {
    user_id: UserId,
    signed_in_at: u64,
    last_seen: u64,
    generation: i64,
    /// Names this sign-in in the audit trail (the session id itself is a secret and changes).
    #[serde(default)]
    audit_ref: Option<Uuid>,
}

/// Who the session's sign-in is, read from Postgres once per request: the server functions of one page
/// render run in one request, and share it. `middleware::client_context` puts one into every request;
/// it is keyed by the account and its session generation, so signing in or out during the request
/// reads again.
#[derive(Debug, Clone, Default)]
pub struct UserMemo(Arc<tokio::sync::Mutex<Option<Remembered>>>);

/// The account and session generation read, and what was found (`None`: no such live account).
#[derive(Debug)]
struct Remembered {
    key: (UserId, i64),
    user: Option<SessionUser>,
}

impl UserMemo {
    /// The account `user_id` at session generation `generation` (`None`: disabled, deleted, or signed
    /// out everywhere), read once per request. Concurrent callers wait for the first one's read.
    async fn load(
        &self,
        state: &AppState,
        user_id: UserId,
        generation: i64,
    ) -> Result<Option<SessionUser>, ApiError> {
        let mut held = self.0.lock().await;
        if let Some(remembered) = held.as_ref()
            && remembered.key == (user_id, generation)
        {
            return Ok(remembered.user.clone());
        }
        let user = pawfile::auth::load_session_user(&state.db, user_id, generation).await?;
        *held = Some(Remembered {
            key: (user_id, generation),
            user: user.clone(),
        });
        Ok(user)
    }
}

/// A signed-in user and the reference of their sign-in in the audit trail.
#[derive(Debug, Clone)]
struct SignedIn {
    /// The user.
    user: SessionUser,
    /// An opaque, random reference to this sign-in (see [`pawfile::access::Actor::in_session`]).
    audit_ref: Uuid,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

fn session_failed(err: tower_sessions::session::Error) -> ApiError {
    tracing::error!(error = %err, "session store failed");
    ApiError::Unavailable {
        error: "Pawfile's database is unavailable, so your session cannot be checked. Try again in a moment."
            .to_owned(),
    }
}

/// Signs `user_id` in on this session, with a fresh session id (so an id planted before sign-in is
/// worthless after it).
pub async fn start(session: &Session, user_id: UserId, generation: i64) -> Result<(), ApiError> {
    session.cycle_id().await.map_err(session_failed)?;
    let now = now();
    session
        .insert(
            AUTH_KEY,
            SessionAuth {
                user_id,
                signed_in_at: now,
                last_seen: now,
                generation,
                audit_ref: Some(Uuid::new_v4()),
            },
        )
        .await
        .map_err(session_failed)
}

/// Signs out: the session is deleted server-side and its cookie cleared.
pub async fn end(session: &Session) -> Result<(), ApiError> {
    session.flush().await.map_err(session_failed)
}

/// The user signed in on this session, after checking the absolute timeout and, against Postgres, that
/// the account is enabled and the session generation is current. An invalid session is deleted.
pub async fn current_user(
    state: &AppState,
    session: &Session,
    memo: &UserMemo,
) -> Result<Option<SessionUser>, ApiError> {
    Ok(signed_in(state, session, memo, Activity::Person)
        .await?
        .map(|signed_in| signed_in.user))
}

/// The signed-in user as the core's [`Actor`]: the one way server functions and HTTP routes learn who
/// calls, with the client's address and this sign-in's audit reference. `None` when nobody is signed in.
pub async fn actor(
    state: &AppState,
    session: &Session,
    memo: &UserMemo,
    client: Option<ClientInfo>,
    activity: Activity,
) -> Result<Option<Actor>, ApiError> {
    let actor = enrolling_actor(state, session, memo, client, activity).await?;
    if let Some(actor) = &actor
        && state.config.sessions.needs_two_factor_setup(&actor.user)
    {
        return Err(ApiError::Forbidden {
            error: TWO_FACTOR_FIRST.to_owned(),
        });
    }
    Ok(actor)
}

/// What someone whose role requires a second factor, and who has none yet, is told everywhere else.
pub const TWO_FACTOR_FIRST: &str =
    "Your role requires two-factor sign-in: set it up on your account page first.";

/// As [`actor`], also for someone who must still set up their second factor (the set-up itself).
pub async fn enrolling_actor(
    state: &AppState,
    session: &Session,
    memo: &UserMemo,
    client: Option<ClientInfo>,
    activity: Activity,
) -> Result<Option<Actor>, ApiError> {
    Ok(signed_in(state, session, memo, activity).await?.map(|signed_in| {
        Actor::new(signed_in.user, client.map(|client| client.addr)).in_session(signed_in.audit_ref)
    }))
}

/// As [`current_user`], with the sign-in's audit reference. A session unused for longer than the idle
/// timeout is ended here, on the server, whatever the browser still holds.
async fn signed_in(
    state: &AppState,
    session: &Session,
    memo: &UserMemo,
    activity: Activity,
) -> Result<Option<SignedIn>, ApiError> {
    let Some(mut auth) = session
        .get::<SessionAuth>(AUTH_KEY)
        .await
        .map_err(session_failed)?
    else {
        return Ok(None);
    };
    let now = now();
    let absolute = state.config.sessions.absolute_timeout.as_secs();
    let idle = state.config.sessions.idle_timeout;
    if now.saturating_sub(auth.signed_in_at) > absolute || now.saturating_sub(auth.last_seen) > idle.as_secs()
    {
        end(session).await?;
        return Ok(None);
    }
    let user = memo.load(state, auth.user_id, auth.generation).await?;
    let Some(mut user) = user else {
        end(session).await?;
        return Ok(None);
    };
    let audit_ref = auth.audit_ref.unwrap_or_else(Uuid::new_v4);
    let stale = now.saturating_sub(auth.last_seen) >= touch_interval(idle);
    if (stale && activity == Activity::Person) || auth.audit_ref.is_none() {
        // Modifying the session makes tower-sessions save it with a fresh idle expiry.
        auth.last_seen = now;
        auth.audit_ref = Some(audit_ref);
        session.insert(AUTH_KEY, auth).await.map_err(session_failed)?;
    }
    user.needs_two_factor_setup = state.config.sessions.needs_two_factor_setup(&user);
    Ok(Some(SignedIn { user, audit_ref }))
}

/// The account `user_id` at session generation `generation`, as its own pages see it: with whether it
/// must still set up a second factor.
pub async fn load_signed_in(
    state: &AppState,
    user_id: UserId,
    generation: i64,
) -> Result<SessionUser, ApiError> {
    let mut user = pawfile::auth::load_session_user(&state.db, user_id, generation)
        .await?
        .ok_or_else(ApiError::unauthenticated)?;
    user.needs_two_factor_setup = state.config.sessions.needs_two_factor_setup(&user);
    Ok(user)
}

/// Where a person goes once signed in: home, or their account page while they must set up a second
/// factor.
pub fn landing(user: &SessionUser) -> &'static str {
    if user.needs_two_factor_setup {
        "/account"
    } else {
        "/"
    }
}

/// Leaves `flash` for the page a plain form is redirected to.
pub async fn leave_flash(session: &Session, flash: &Flash) -> Result<(), ApiError> {
    session.insert(FLASH_KEY, flash).await.map_err(session_failed)
}

/// Takes (and removes) the flash a plain form left, if any. Only a flash that is there is removed:
/// removing marks the session changed, and a changed session is written back to Postgres.
pub async fn take_flash(session: &Session) -> Option<Flash> {
    let flash = session.get_value(FLASH_KEY).await.ok().flatten()?;
    // Removed even if it no longer reads as a flash (left by an older version): it is never shown.
    let _ = session.remove_value(FLASH_KEY).await;
    serde_json::from_value(flash).ok()
}

/// Leaves a freshly issued claim code for its pet's page.
pub async fn leave_claim_code(session: &Session, issued: &IssuedClaimCode) -> Result<(), ApiError> {
    session
        .insert(ISSUED_CODE_KEY, issued)
        .await
        .map_err(session_failed)
}

/// Takes (and removes) the claim code a plain form issued for `pet`, if any; one for another pet stays.
pub async fn take_claim_code(session: &Session, pet: PetId) -> Option<IssuedClaimCode> {
    match session.get::<IssuedClaimCode>(ISSUED_CODE_KEY).await {
        Ok(Some(issued)) if issued.pet_id == pet => {
            let _ = session.remove::<IssuedClaimCode>(ISSUED_CODE_KEY).await;
            Some(issued)
        }
        _ => None,
    }
}
