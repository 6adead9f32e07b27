//! Pawfile's web face: Leptos pages rendered on the server and hydrated in the browser (`app`, `pages`,
//! `auth_state`, `feedback`), the server functions they call (`api`) and the error they answer with; with
//! the `ssr` feature also the HTTP layer (`http`: routes, middleware, sessions) and the start-up that
//! builds and runs the server (`startup`), which the `pawfile` binary (`main.rs`) drives.

pub mod api;
pub mod app;
pub mod auth_state;
pub mod error;
pub mod feedback;
pub mod pages;

#[cfg(feature = "ssr")]
pub mod http;
#[cfg(feature = "ssr")]
pub mod startup;
#[cfg(feature = "ssr")]
pub mod state;

/// Browser entry point: attaches the Leptos runtime to the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
