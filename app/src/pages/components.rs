//! Small pieces several pages use.

use crate::error::ApiError;
use leptos::prelude::*;

/// A form's error that belongs to no single field (or to a field this form does not show).
#[component]
pub fn FormError(
    /// The latest error, if any.
    #[prop(into)]
    error: Signal<Option<ApiError>>,
    /// Fields the form shows next to their inputs; errors for these are not repeated here.
    #[prop(optional)]
    fields: &'static [&'static str],
) -> impl IntoView {
    move || {
        error
            .get()
            .filter(|err| err.field().is_none_or(|field| !fields.contains(&field)))
            .map(|err| {
                view! {
                    <p class="form-error" role="alert">
                        {err.to_string()}
                    </p>
                }
            })
    }
}

/// The message for `field`, shown under its input.
#[component]
pub fn FieldError(#[prop(into)] error: Signal<Option<ApiError>>, field: &'static str) -> impl IntoView {
    move || {
        error.get().filter(|err| err.field() == Some(field)).map(|err| {
            view! {
                <p class="field-error" id=format!("{field}-error") role="alert">
                    {err.to_string()}
                </p>
            }
        })
    }
}

/// A password input with a Show/Hide button. The button appears once the page is interactive (it needs
/// the browser code), so without JavaScript the form stays plain and fully usable.
#[component]
pub fn PasswordField(
    /// The form field name and input id.
    name: &'static str,
    /// The label text.
    label: &'static str,
    /// The browser's autocomplete hint (`current-password`, `new-password`).
    autocomplete: &'static str,
    /// The shortest acceptable password (a hint to the browser; the server checks).
    #[prop(optional)]
    minlength: Option<usize>,
) -> impl IntoView {
    let (visible, set_visible) = signal(false);
    let (interactive, set_interactive) = signal(false);
    // Effects only run in the browser, after hydration.
    Effect::new(move |_| set_interactive.set(true));
    view! {
        <label for=name>{label}</label>
        <div class="password-field">
            <input
                id=name
                name=name
                type=move || if visible.get() { "text" } else { "password" }
                autocomplete=autocomplete
                minlength=minlength
                required
            />
            <button
                type="button"
                class="secondary"
                hidden=move || !interactive.get()
                aria-controls=name
                aria-pressed=move || visible.get().to_string()
                on:click=move |_| set_visible.update(|shown| *shown = !*shown)
            >
                {move || if visible.get() { "Hide" } else { "Show" }}
            </button>
        </div>
    }
}
