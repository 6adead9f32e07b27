//! The application shell, the router and the layout around every page.

use crate::{
    api::{Logout, current_user},
    pages::{
        auth::{LoginPage, RegisterPage},
        home::HomePage,
    },
};
use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    SsrMode,
    components::{A, Route, Router, Routes},
    path,
};
use pawfile::domain::SessionUser;

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    crate::server::security::provide_csp_nonce();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// Who is signed in may change: pages that sign in bump `changed`; the header signs out.
#[derive(Clone, Copy)]
pub struct AuthState {
    /// Bumped after a sign-in or registration, to reload the user.
    pub changed: RwSignal<u64>,
    /// Sign out.
    pub logout: ServerAction<Logout>,
}

impl AuthState {
    /// Reloads the signed-in user everywhere.
    pub fn notify_changed(&self) {
        self.changed.update(|version| *version += 1);
    }
}

/// The signed-in user, reloaded whenever [`AuthState`] changes.
#[derive(Clone, Copy)]
pub struct UserResource(pub Resource<Result<Option<SessionUser>, crate::error::ApiError>>);

/// The Pawfile application.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();

    view! {
        <Stylesheet id="leptos" href="/pkg/pawfile.css" />
        <Title text="Pawfile" />
        <Router>
            <AuthScope>
                <Header />
                <main id="main">
                    <Routes fallback=|| view! { <NotFound /> }>
                        <Route path=path!("/") view=HomePage ssr=SsrMode::Async />
                        <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async />
                        <Route path=path!("/register") view=RegisterPage ssr=SsrMode::Async />
                    </Routes>
                </main>
            </AuthScope>
        </Router>
    }
}

/// Provides [`AuthState`] and [`UserResource`] to everything inside.
#[component]
fn AuthScope(children: Children) -> impl IntoView {
    let auth = AuthState {
        changed: RwSignal::new(0),
        logout: ServerAction::<Logout>::new(),
    };
    let user = Resource::new(
        move || (auth.changed.get(), auth.logout.version().get()),
        |_| current_user(),
    );
    provide_context(auth);
    provide_context(UserResource(user));
    children()
}

/// The header: the brand, and who is signed in with a sign-out button, or the sign-in links.
#[component]
fn Header() -> impl IntoView {
    let UserResource(user) = expect_context();
    let auth = expect_context::<AuthState>();
    view! {
        <header class="site-header">
            <A href="/" attr:class="brand">
                "Pawfile"
            </A>
            <nav aria-label="Account">
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        match user.await {
                            Ok(Some(user)) => {
                                view! {
                                    <span class="who" data-testid="signed-in-as">
                                        {user.display_name}
                                    </span>
                                    <ActionForm action=auth.logout attr:class="inline">
                                        <button type="submit" class="link-button">
                                            "Sign out"
                                        </button>
                                    </ActionForm>
                                }
                                    .into_any()
                            }
                            _ => {
                                view! {
                                    <A href="/login">"Sign in"</A>
                                    <A href="/register">"Create account"</A>
                                }
                                    .into_any()
                            }
                        }
                    })}
                </Transition>
            </nav>
        </header>
    }
}

/// Shown for any path that matches no page.
#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found · Pawfile" />
        <section class="card narrow">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address. " <A href="/">"Go to the start page"</A> "."</p>
        </section>
    }
}
