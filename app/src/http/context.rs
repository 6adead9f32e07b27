use super::session;
use crate::error::ApiError;
use crate::startup::AppState;
use axum::http::{HeaderMap, StatusCode, header, request::Parts};
use leptos::prelude::{expect_context, use_context};
use leptos_axum::ResponseOptions;
use pawfile::{
    access::Actor,
    domain::{Role, SessionUser},
    net::ClientInfo,
};
use tower_sessions::Session;

/// Whether a request is a plain HTML form post (a browser without JavaScript) rather than an API call.
pub(super) fn prefers_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// What a server function knows about the request it serves.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The application.
    pub state: AppState,
    /// The caller's session.
    pub session: Session,
    /// The caller's address and scheme.
    pub client: ClientInfo,
    /// Whether the caller is a plain HTML form (answer with a redirect, not data).
    pub prefers_html: bool,
}

impl RequestContext {
    /// The context of the current server function call.
    pub fn get() -> Result<Self, ApiError> {
        let parts = use_context::<Parts>().ok_or_else(|| internal("request parts missing"))?;
        let session = parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or_else(|| internal("session layer missing"))?;
        let client = parts
            .extensions
            .get::<ClientInfo>()
            .copied()
            .ok_or_else(|| internal("client context layer missing"))?;
        Ok(Self {
            state: expect_context::<AppState>(),
            session,
            client,
            prefers_html: prefers_html(&parts.headers),
        })
    }

    /// The signed-in user, if any.
    pub async fn user(&self) -> Result<Option<SessionUser>, ApiError> {
        session::current_user(&self.state, &self.session).await
    }

    /// The signed-in user, or 401.
    pub async fn require_user(&self) -> Result<SessionUser, ApiError> {
        self.user().await?.ok_or_else(ApiError::unauthenticated)
    }

    /// The signed-in user holding `role`, or 401/403.
    pub async fn require_role(&self, role: Role) -> Result<SessionUser, ApiError> {
        let user = self.require_user().await?;
        if user.has_role(role) {
            Ok(user)
        } else {
            Err(ApiError::forbidden())
        }
    }

    /// The signed-in user as the core's [`Actor`], or 401.
    pub async fn actor(&self) -> Result<Actor, ApiError> {
        let signed_in = session::signed_in(&self.state, &self.session)
            .await?
            .ok_or_else(ApiError::unauthenticated)?;
        Ok(Actor::new(signed_in.user, Some(self.client.addr)).in_session(signed_in.audit_ref))
    }

    /// Sends a plain HTML form to `path` afterwards (the JavaScript client navigates by itself).
    pub fn redirect_html_form(&self, path: &str) {
        if self.prefers_html {
            leptos_axum::redirect(path);
        }
    }
}

fn internal(what: &str) -> ApiError {
    tracing::error!("{what}: the router is wired wrongly");
    ApiError::Internal {
        error: "Something went wrong on our side.".to_owned(),
    }
}

/// Gives an API caller the status that fits an error. A plain HTML form keeps the redirect back to its
/// page, where the message is shown.
pub fn respond<T>(result: Result<T, ApiError>) -> Result<T, ApiError> {
    if let Err(err) = &result {
        let html_form = use_context::<Parts>().is_some_and(|parts| prefers_html(&parts.headers));
        if !html_form && let Some(options) = use_context::<ResponseOptions>() {
            options
                .set_status(StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
        }
    }
    result
}
