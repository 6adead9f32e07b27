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

/// For an input's `aria-describedby`: the id of the [`FieldError`] message while `error` is about
/// `field`, so a screen reader reads the message with the field.
pub fn described_by(
    error: Signal<Option<ApiError>>,
    field: &'static str,
) -> impl Fn() -> Option<String> + Send + Sync + 'static {
    move || {
        error
            .get()
            .filter(|err| err.field() == Some(field))
            .map(|_| format!("{field}-error"))
    }
}

/// For an input's `aria-invalid`: `true` while `error` is about `field`.
pub fn invalid(
    error: Signal<Option<ApiError>>,
    field: &'static str,
) -> impl Fn() -> Option<&'static str> + Send + Sync + 'static {
    move || {
        error
            .get()
            .filter(|err| err.field() == Some(field))
            .map(|_| "true")
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
    /// The form's latest error: one for this field ties its message to the input.
    #[prop(optional, into)]
    error: Signal<Option<ApiError>>,
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
                aria-describedby=described_by(error, name)
                aria-invalid=invalid(error, name)
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

/// A date as people read it: `14 Mar 2025`.
pub fn format_date(date: time::Date) -> String {
    date.format(time::macros::format_description!(
        "[day padding:none] [month repr:short] [year]"
    ))
    .unwrap_or_else(|_| date.to_string())
}

/// A date as `<input type="date">` wants it: `2025-03-14`.
pub fn iso_date(date: time::Date) -> String {
    date.format(time::macros::format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

/// A route parameter parsed as `T` (an id), `None` when missing or malformed.
pub fn param<T>(name: &'static str) -> Memo<Option<T>>
where
    T: std::str::FromStr + PartialEq + Clone + Send + Sync + 'static,
{
    let params = leptos_router::hooks::use_params_map();
    Memo::new(move |_| params.read().get(name).and_then(|value| value.parse().ok()))
}

/// A query parameter, empty when missing.
pub fn query(name: &'static str) -> Memo<String> {
    let query = leptos_router::hooks::use_query_map();
    Memo::new(move |_| query.read().get(name).unwrap_or_default())
}

/// The current page's address with `name=all` in its query (the rest of the query kept, and followed
/// as it changes), scrolled to the element `#name`: the "show all" link of a list that shows its most
/// recent entries first.
pub fn show_all(name: &'static str) -> Signal<String> {
    let location = leptos_router::hooks::use_location();
    Signal::derive(move || {
        let mut query = location.query.get();
        query.replace(name, "all".to_owned());
        format!("{}{}#{name}", location.pathname.get(), query.to_query_string())
    })
}

/// Why a page cannot be shown. Sets the HTTP status on the server (404 for what the caller may not see,
/// 401 when signed out) and offers the sign-in page where that helps.
#[component]
pub fn ErrorNotice(error: ApiError) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(
            axum::http::StatusCode::from_u16(error.status())
                .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
        );
    }
    let signed_out = matches!(error, ApiError::Unauthenticated { .. });
    let message = match &error {
        ApiError::NotFound { .. } => "Not found: it does not exist, or you may not see it.".to_owned(),
        other => other.to_string(),
    };
    view! {
        <section class="card narrow">
            <p class="form-error" role="alert">{message}</p>
            {signed_out.then(|| view! { <p><a href="/login">"Sign in"</a></p> })}
        </section>
    }
}

/// The message of a server action's latest error, if any.
pub fn action_error<T, S>(action: ServerAction<S>) -> Signal<Option<ApiError>>
where
    S: server_fn::ServerFn<Output = T, Error = ApiError> + Clone + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
{
    let value = action.value();
    Signal::derive(move || value.get().and_then(Result::err))
}

/// A byte count for people: `256 MiB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["bytes", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
