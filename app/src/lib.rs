//! Pawfile's web face: Leptos pages rendered on the server and hydrated in the browser, the server
//! functions they call, and (with the `ssr` feature) the HTTP server and the `pawfile` binary's parts.

pub mod api;
pub mod app;
pub mod error;
pub mod pages;

#[cfg(feature = "ssr")]
pub mod http;
#[cfg(feature = "ssr")]
pub mod startup;

/// Browser entry point: attaches the Leptos runtime to the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
