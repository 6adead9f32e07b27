use super::session;
use crate::error::ApiError;
use crate::state::AppState;
use axum::http::{HeaderMap, StatusCode, header, request::Parts};
use leptos::prelude::{expect_context, use_context};
use leptos_axum::ResponseOptions;
use pawfile::{
    access::Actor,
    domain::{Role, SessionUser},
    net::ClientInfo,
};
use tower_sessions::Session;

/// Where to send a plain HTML form back to: the path and query of its page, taken from a Referer of our
/// own site (the request's `Host`, or the public URL). Anything else, or a path another site could
/// hide in (`//host`, `/\host`), falls back to `/`.
pub(super) fn back_to_referer(headers: &HeaderMap, public_url: &url::Url) -> String {
    own_referer(headers, public_url).unwrap_or_else(|| "/".to_owned())
}

/// The path and query of the request's Referer when it is a page of our own site.
pub(super) fn own_referer(headers: &HeaderMap, public_url: &url::Url) -> Option<String> {
    let referer = headers.get(header::REFERER).and_then(|value| value.to_str().ok());
    let host = headers.get(header::HOST).and_then(|value| value.to_str().ok());
    own_path(referer, host, public_url)
}

fn own_path(referer: Option<&str>, host: Option<&str>, public_url: &url::Url) -> Option<String> {
    let referer = url::Url::parse(referer?).ok()?;
    let authority = |url: &url::Url| {
        url.host_str().map(|name| match url.port() {
            Some(port) => format!("{name}:{port}"),
            None => name.to_owned(),
        })
    };
    let from = authority(&referer)?;
    let ours =
        host.is_some_and(|host| host.eq_ignore_ascii_case(&from)) || referer.origin() == public_url.origin();
    let path = referer.path();
    if !ours || !path.starts_with('/') || path.starts_with("//") || path.starts_with("/\\") {
        return None;
    }
    Some(match referer.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    })
}

/// Whether a request is a plain HTML form post (a browser without JavaScript) rather than an API call.
pub fn prefers_html(headers: &HeaderMap) -> bool {
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
    /// Who is signed in, read once for the whole request.
    pub memo: session::UserMemo,
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
        let memo = parts
            .extensions
            .get::<session::UserMemo>()
            .cloned()
            .ok_or_else(|| internal("client context layer missing"))?;
        Ok(Self {
            state: expect_context::<AppState>(),
            session,
            client,
            memo,
            prefers_html: prefers_html(&parts.headers),
        })
    }

    /// The signed-in user, if any.
    pub async fn user(&self) -> Result<Option<SessionUser>, ApiError> {
        session::current_user(&self.state, &self.session, &self.memo).await
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
        self.actor_for(session::Activity::Person).await
    }

    /// As [`RequestContext::actor`], for a page polling by itself: the call does not count as the
    /// person's activity, so it cannot keep an unattended session from timing out.
    pub async fn background_actor(&self) -> Result<Actor, ApiError> {
        self.actor_for(session::Activity::Background).await
    }

    /// As [`RequestContext::actor`], also for someone who must still set up their second factor.
    pub async fn enrolling_actor(&self) -> Result<Actor, ApiError> {
        session::enrolling_actor(
            &self.state,
            &self.session,
            &self.memo,
            Some(self.client),
            session::Activity::Person,
        )
        .await?
        .ok_or_else(ApiError::unauthenticated)
    }

    async fn actor_for(&self, activity: session::Activity) -> Result<Actor, ApiError> {
        session::actor(
            &self.state,
            &self.session,
            &self.memo,
            Some(self.client),
            activity,
        )
        .await?
        .ok_or_else(ApiError::unauthenticated)
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
        if let Some(options) = use_context::<ResponseOptions>() {
            if !html_form {
                options.set_status(
                    StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                );
            }
            if let Some(seconds) = err.retry_after() {
                options.insert_header(header::RETRY_AFTER, seconds.into());
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::own_path;

    fn public() -> url::Url {
        "https://records.example.org/".parse().unwrap()
    }

    #[test]
    fn a_referer_of_our_own_site_gives_its_path_and_query() {
        assert_eq!(
            own_path(
                Some("http://127.0.0.1:3000/pets/1?trash=1"),
                Some("127.0.0.1:3000"),
                &public()
            ),
            Some("/pets/1?trash=1".to_owned())
        );
        assert_eq!(
            own_path(
                Some("https://records.example.org/records/2"),
                Some("10.0.0.5:3000"),
                &public()
            ),
            Some("/records/2".to_owned())
        );
    }

    #[test]
    fn another_site_or_a_path_to_another_host_is_refused() {
        assert_eq!(
            own_path(
                Some("https://evil.example/pets/1"),
                Some("127.0.0.1:3000"),
                &public()
            ),
            None
        );
        assert_eq!(
            own_path(
                Some("http://127.0.0.1:3000//evil.example/x"),
                Some("127.0.0.1:3000"),
                &public()
            ),
            None
        );
        assert_eq!(
            own_path(
                Some("http://127.0.0.1:3000/\\evil.example/x"),
                Some("127.0.0.1:3000"),
                &public()
            ),
            None
        );
        assert_eq!(
            own_path(Some("https://records.example.org//evil.example"), None, &public()),
            None
        );
        assert_eq!(
            own_path(Some("not a url"), Some("127.0.0.1:3000"), &public()),
            None
        );
        assert_eq!(own_path(None, Some("127.0.0.1:3000"), &public()), None);
    }
}
