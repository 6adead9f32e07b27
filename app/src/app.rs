//! The application shell, the router and the layout around every page.

use crate::{
    api::{Logout, SetTimeZone, current_user},
    auth_state::{AuthState, UserResource},
    pages::{
        account::AccountPage,
        admin::{AdminPage, AdminUsersPage, AuditPage},
        auth::{
            AcceptInvitationPage, ForgotPasswordPage, LoginPage, RegisterPage, ResetPasswordPage,
            VerifyEmailPage,
        },
        backups::BackupsPage,
        clinic::{PatientsPage, WalkInPage},
        dashboard::DashboardPage,
        home::HomePage,
        pets::{EditPetPage, NewPetPage, PetHistoryPage, PetPage, PetsPage},
        records::{EditRecordPage, NewRecordPage, RecordPage},
        search::SearchPage,
    },
};
use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    SsrMode,
    components::{A, Form, Route, Router, Routes},
    path,
};
use pawfile::domain::{Role, SessionUser};

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    crate::http::security::provide_csp_nonce();
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

/// The Pawfile application.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Effects run only in the browser: this marks the page interactive (browser tests wait for it).
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));

    view! {
        <Stylesheet id="leptos" href="/pkg/pawfile.css" />
        <Title text="Pawfile" />
        <Router>
            <AuthScope>
                <Header />
                <main id="main" data-hydrated=move || hydrated.get().to_string()>
                    <FlashBanner />
                    <Routes fallback=|| view! { <NotFound /> }>
                        <Route path=path!("/") view=HomePage ssr=SsrMode::Async />
                        <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async />
                        <Route path=path!("/register") view=RegisterPage ssr=SsrMode::Async />
                        <Route path=path!("/verify-email") view=VerifyEmailPage ssr=SsrMode::Async />
                        <Route path=path!("/forgot-password") view=ForgotPasswordPage ssr=SsrMode::Async />
                        <Route path=path!("/reset-password") view=ResetPasswordPage ssr=SsrMode::Async />
                        <Route path=path!("/accept-invitation") view=AcceptInvitationPage ssr=SsrMode::Async />
                        <Route path=path!("/account") view=AccountPage ssr=SsrMode::Async />
                        <Route path=path!("/pets") view=PetsPage ssr=SsrMode::Async />
                        <Route path=path!("/pets/new") view=NewPetPage ssr=SsrMode::Async />
                        <Route path=path!("/pets/:id") view=PetPage ssr=SsrMode::Async />
                        <Route path=path!("/pets/:id/edit") view=EditPetPage ssr=SsrMode::Async />
                        <Route path=path!("/pets/:id/history") view=PetHistoryPage ssr=SsrMode::Async />
                        <Route path=path!("/pets/:id/records/new") view=NewRecordPage ssr=SsrMode::Async />
                        <Route path=path!("/records/:id") view=RecordPage ssr=SsrMode::Async />
                        <Route path=path!("/records/:id/edit") view=EditRecordPage ssr=SsrMode::Async />
                        <Route path=path!("/search") view=SearchPage ssr=SsrMode::Async />
                        <Route path=path!("/clinic") view=PatientsPage ssr=SsrMode::Async />
                        <Route path=path!("/clinic/walk-in") view=WalkInPage ssr=SsrMode::Async />
                        <Route path=path!("/admin") view=AdminPage ssr=SsrMode::Async />
                        <Route path=path!("/admin/users") view=AdminUsersPage ssr=SsrMode::Async />
                        <Route path=path!("/admin/audit") view=AuditPage ssr=SsrMode::Async />
                        <Route path=path!("/admin/backups") view=BackupsPage ssr=SsrMode::Async />
                        <Route path=path!("/admin/dashboard") view=DashboardPage ssr=SsrMode::Async />
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
    adopt_browser_time_zone(auth, user);
    children()
}

/// The first time a signed-in user without a time zone loads a page in a browser, take the browser's.
fn adopt_browser_time_zone(
    auth: AuthState,
    user: Resource<Result<Option<SessionUser>, crate::error::ApiError>>,
) {
    let save = ServerAction::<SetTimeZone>::new();
    Effect::new(move |_| {
        let Some(Ok(Some(user))) = user.get() else { return };
        if user.time_zone.is_some() || save.pending().get() || save.value().get().is_some() {
            return;
        }
        if let Some(time_zone) = browser_time_zone() {
            save.dispatch(SetTimeZone { time_zone });
        }
    });
    Effect::new(move |_| {
        if matches!(save.value().get(), Some(Ok(()))) {
            auth.notify_changed();
        }
    });
}

/// The browser's time zone (`Intl.DateTimeFormat().resolvedOptions().timeZone`).
fn browser_time_zone() -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        let options = js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &js_sys::Object::new())
            .resolved_options();
        js_sys::Reflect::get(&options, &wasm_bindgen::JsValue::from_str("timeZone"))
            .ok()
            .and_then(|zone| zone.as_string())
    }
    #[cfg(not(feature = "hydrate"))]
    None
}

/// The header: the brand, the record search (owners and staff), the pages of each role, who is signed
/// in and a sign-out button, or the sign-in links. On a phone the links fold into a menu that opens
/// without JavaScript (`<details>`).
#[component]
fn Header() -> impl IntoView {
    let UserResource(user) = expect_context();
    let auth = expect_context::<AuthState>();
    view! {
        <header class="site-header">
            <a class="skip-link" href="#main">"Skip to the content"</a>
            <A href="/" attr:class="brand">
                "Pawfile"
            </A>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    let user = user.await.ok().flatten();
                    let searches = user
                        .as_ref()
                        .is_some_and(|user| user.has_role(Role::Owner) || user.has_role(Role::Staff));
                    let links = move |menu: bool| header_links(user.clone(), auth, menu);
                    view! {
                        {searches.then(|| view! { <HeaderSearch /> })}
                        <nav class="wide-nav" aria-label="Main">{links(false)}</nav>
                        <details class="phone-menu">
                            <summary>"Menu"</summary>
                            <nav aria-label="Menu">{links(true)}</nav>
                        </details>
                    }
                })}
            </Transition>
        </header>
    }
}

/// The search box of the header: a plain GET form to the search page.
#[component]
fn HeaderSearch() -> impl IntoView {
    view! {
        <Form method="GET" action="/search" attr:class="header-search" attr:role="search">
            <label for="header-q" class="visually-hidden">"Search medical records"</label>
            <input id="header-q" name="q" type="search" placeholder="Search records" maxlength="200" />
            <button type="submit" class="secondary">"Search"</button>
        </Form>
    }
}

/// The header's links for `user` (the phone menu's copy gets its own element ids).
fn header_links(user: Option<SessionUser>, auth: AuthState, menu: bool) -> AnyView {
    match user {
        Some(user) => {
            let owner = user.has_role(Role::Owner);
            let staff = user.has_role(Role::Staff);
            let admin = user.has_role(Role::Admin);
            let testid = if menu { "menu-signed-in-as" } else { "signed-in-as" };
            view! {
                {owner.then(|| view! { <A href="/pets">"My pets"</A> })}
                {staff.then(|| view! { <A href="/clinic">"Patients"</A> })}
                {admin.then(|| view! { <A href="/admin">"Administration"</A> })}
                <A href="/account" attr:class="who" attr:data-testid=testid>
                    {user.display_name}
                </A>
                <ActionForm action=auth.logout attr:class="inline">
                    <button type="submit" class="link-button">
                        "Sign out"
                    </button>
                </ActionForm>
            }
            .into_any()
        }
        None => view! {
            <A href="/login">"Sign in"</A>
            <A href="/register">"Create account"</A>
        }
        .into_any(),
    }
}

/// The message a plain HTML form left for this page (upload done, file refused, ...), taken while the
/// server renders the page (see [`crate::feedback`]).
#[component]
fn FlashBanner() -> impl IntoView {
    let flash = OnceResource::new(crate::feedback::take_flash());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                flash.await.map(|flash| {
                    let class = if flash.ok { "flash ok" } else { "flash problem" };
                    view! { <p class=class role="status" data-testid="flash">{flash.message}</p> }
                })
            })}
        </Suspense>
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
