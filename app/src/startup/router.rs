//! Every route, with the middleware around it, and the metrics port's one route.

use crate::{
    app::{App, shell},
    http::{
        documents, health, middleware, openapi, security::default_headers, session::COOKIE_NAME, text_guard,
    },
    state::AppState,
};
use axum::{Router, extract::FromRef, routing::get};
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, file_and_error_handler_with_context, generate_route_list};
use std::path::PathBuf;
use tower_http::{services::ServeDir, set_header::SetResponseHeaderLayer};
use tower_sessions::{
    Expiry, SessionManagerLayer,
    cookie::{SameSite, time::Duration as CookieDuration},
};
use tower_sessions_sqlx_store::PostgresStore;
use utoipa_axum::{router::OpenApiRouter, routes};

/// The router's state: the application and Leptos's options.
#[derive(Clone, FromRef)]
struct ServerState {
    app: AppState,
    leptos: LeptosOptions,
}

/// The metrics port's one route: `/metrics`, the series of this process and the state PostgreSQL
/// holds, read at each scrape. Served on `PAWFILE_METRICS_LISTEN`, never on the public port.
pub fn metrics_router(state: AppState) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let state = state.clone();
            async move {
                let text = state
                    .metrics
                    .render(&state.db, &state.documents, state.config.documents.scrub_period)
                    .await;
                (
                    [(axum::http::header::CONTENT_TYPE, pawfile::metrics::CONTENT_TYPE)],
                    text,
                )
            }
        }),
    )
}

/// Every route, with the middleware around it.
pub fn router(state: AppState, leptos: LeptosOptions) -> Router {
    let server_state = ServerState {
        app: state.clone(),
        leptos: leptos.clone(),
    };
    let provide_state = {
        let state = state.clone();
        move || provide_context(state.clone())
    };
    let idle =
        CookieDuration::try_from(state.config.sessions.idle_timeout).unwrap_or(CookieDuration::hours(2));
    let sessions = SessionManagerLayer::new(PostgresStore::new(state.db.clone()))
        .with_name(COOKIE_NAME)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(false) // set per request by `client_context`, from the client's scheme
        .with_expiry(Expiry::OnInactivity(idle));

    let (document_routes, mut api) = documents::routes::<ServerState>().split_for_parts();
    let (health_routes, health_api) = OpenApiRouter::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .split_for_parts();
    api.merge(health_api);
    let description = std::sync::Arc::new(openapi::document(api));

    let pages = Router::new()
        .merge(document_routes)
        .leptos_routes_with_context(&server_state, generate_route_list(App), provide_state.clone(), {
            let leptos = leptos.clone();
            move || shell(leptos.clone())
        })
        .fallback(file_and_error_handler_with_context::<ServerState, _>(
            provide_state,
            shell,
        ))
        .layer(axum::middleware::from_fn(middleware::no_store))
        .layer(sessions);

    let headers = default_headers(&state.config.public_url);
    let pkg_dir = PathBuf::from(&*leptos.site_root).join(&*leptos.site_pkg_dir);
    let mut router = Router::new()
        .merge(health_routes)
        .route(
            "/api/openapi.json",
            get(move || {
                let description = description.clone();
                async move { axum::Json(description) }
            }),
        )
        .nest_service("/pkg", ServeDir::new(pkg_dir))
        .merge(pages)
        // Innermost: after cross-site writes are refused (no body from another site is read) and a
        // foreign Referer is dropped (a plain form goes back to it), inside the body idle timeout.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            text_guard::refuse_unstorable_text,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::refuse_cross_site_writes,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::confine_referer,
        ))
        .layer(axum::middleware::from_fn(middleware::api_errors))
        // A body (an upload) that sends nothing for this long fails; the upload cleans up after itself.
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            state.config.connections.body_idle_timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::client_context,
        ));
    for (name, value) in headers {
        router = router.layer(SetResponseHeaderLayer::if_not_present(name, value));
    }
    router
        .layer(axum::middleware::from_fn_with_state(state, middleware::observe))
        .with_state(server_state)
}
