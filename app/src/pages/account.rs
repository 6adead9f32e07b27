//! The user's own account: time zone, password, and claiming a walk-in patient.

use super::{
    components::{ErrorNotice, FieldError, FormError, action_error, described_by, invalid},
    pets::ClaimForm,
};
use crate::{
    api::{
        ChangePassword, ConfirmTwoFactor, DeleteAccount, DisableTwoFactor, RenewRecoveryCodes, SetTimeZone,
        StartTwoFactor, my_storage, time_zones, two_factor_status,
    },
    auth_state::{AuthState, UserResource},
    error::ApiError,
};
use leptos::prelude::*;
use leptos_meta::Title;
use pawfile::domain::{NewPassword, Role, StorageUsage, TwoFactorStatus};

/// The account page.
#[component]
pub fn AccountPage() -> impl IntoView {
    let auth = expect_context::<AuthState>();
    let set_zone = ServerAction::<SetTimeZone>::new();
    let change = ServerAction::<ChangePassword>::new();
    let zone_error = action_error(set_zone);
    let password_error = action_error(change);
    let zones = Resource::new(|| (), |_| time_zones());
    Effect::new(move |_| {
        if matches!(set_zone.value().get(), Some(Ok(()))) {
            auth.notify_changed();
        }
    });
    let password_changed = move || matches!(change.value().get(), Some(Ok(())));
    let UserResource(user) = expect_context();
    // The cards' resources are made here, outside the `Suspense` (see `DocumentsData`).
    let two_factor = TwoFactor::new();
    let usages = Resource::new(|| (), |_| my_storage());
    view! {
        <Title text="Your account · Pawfile" />
        <Suspense fallback=|| ()>
        {move || Suspend::new(async move {
            let user = match user.await {
                Ok(Some(user)) => user,
                Ok(None) => return view! { <ErrorNotice error=ApiError::unauthenticated() /> }.into_any(),
                Err(error) => return view! { <ErrorNotice error /> }.into_any(),
            };
            let current_zone = user.time_zone.clone().unwrap_or_else(|| "UTC".to_owned());
            let is_owner = user.has_role(Role::Owner);
            view! {
                <section class="card">
                    <h1>"Your account"</h1>
                    <p>{user.display_name.clone()} " · " {user.email.to_string()}</p>
                </section>
                <section class="card narrow">
                    <h2>"Time zone"</h2>
                    <p class="hint">"Times are shown in this zone. Pawfile sets it from your browser the first time you sign in."</p>
                    <ActionForm action=set_zone>
                        <label for="time_zone">"Time zone"</label>
                        <Suspense fallback=|| ()>
                            {
                                let current_zone = current_zone.clone();
                                move || {
                                    let current_zone = current_zone.clone();
                                    Suspend::new(async move {
                                        let names = zones.await.unwrap_or_default();
                                        view! {
                                            <select id="time_zone" name="time_zone" aria-describedby=described_by(zone_error, "time_zone") aria-invalid=invalid(zone_error, "time_zone") data-testid="time-zone">
                                                {names.into_iter().map(|name| {
                                                    let selected = name == current_zone;
                                                    let label = name.clone();
                                                    view! { <option value=name selected=selected>{label}</option> }
                                                }).collect_view()}
                                            </select>
                                        }
                                    })
                                }
                            }
                        </Suspense>
                        <FieldError error=zone_error field="time_zone" />
                        <button type="submit">"Save time zone"</button>
                    </ActionForm>
                </section>
                <section class="card narrow">
                    <h2>"Change password"</h2>
                    <p class="hint">"Signs you out everywhere else."</p>
                    {move || password_changed().then(|| view! { <p class="ok" role="status">"Password changed."</p> })}
                    <ActionForm action=change>
                        <FormError error=password_error fields=&["current_password", "new_password"] />
                        <label for="current_password">"Current password"</label>
                        <input id="current_password" name="current_password" aria-describedby=described_by(password_error, "current_password") aria-invalid=invalid(password_error, "current_password") type="password" autocomplete="current-password" required />
                        <FieldError error=password_error field="current_password" />
                        <label for="new_password">"New password"</label>
                        <input id="new_password" name="new_password" aria-describedby=described_by(password_error, "new_password") aria-invalid=invalid(password_error, "new_password") type="password" autocomplete="new-password" minlength=NewPassword::MIN_LEN required />
                        <FieldError error=password_error field="new_password" />
                        <button type="submit">"Change password"</button>
                    </ActionForm>
                </section>
                <TwoFactorCard two_factor />
                <StorageCard usages />
                {is_owner.then(|| view! { <ClaimForm /> })}
                {is_owner.then(|| view! { <DeleteAccountCard /> })}
            }
            .into_any()
        })}
        </Suspense>
    }
}

/// Deleting one's own account (owners): after 30 days, cancelled by signing in.
#[component]
fn DeleteAccountCard() -> impl IntoView {
    let auth = expect_context::<AuthState>();
    let delete = ServerAction::<DeleteAccount>::new();
    let error = action_error(delete);
    let done = Signal::derive(move || delete.value().get().and_then(Result::ok));
    Effect::new(move |_| {
        if done.get().is_some() {
            auth.notify_changed();
        }
    });
    view! {
        <section class="card narrow" data-testid="delete-account">
            <h2>"Delete my account"</h2>
            <p class="hint">
                "After 30 days the documents you uploaded, your name and address and your shares are deleted, and your pets are detached from you (a clinic keeps the records it wrote). Signing in before then cancels it. Backups keep the data until they expire."
            </p>
            {move || done.get().map(|message| view! { <p class="flash ok" role="status" data-testid="deletion-scheduled">{message}</p> })}
            <ActionForm action=delete attr:hidden=move || done.get().is_some()>
                <FormError error=error fields=&["password"] />
                <label for="delete_password">"Your password, to confirm"</label>
                <input id="delete_password" name="password" aria-describedby=described_by(error, "password") aria-invalid=invalid(error, "password") type="password" autocomplete="current-password" required />
                <FieldError error=error field="password" />
                <button type="submit" class="danger">"Delete my account"</button>
            </ActionForm>
        </section>
    }
}

/// The two-factor card's actions, and its state fetched again after each change.
#[derive(Clone, Copy)]
struct TwoFactor {
    start: ServerAction<StartTwoFactor>,
    confirm: ServerAction<ConfirmTwoFactor>,
    renew: ServerAction<RenewRecoveryCodes>,
    disable: ServerAction<DisableTwoFactor>,
    status: Resource<Result<TwoFactorStatus, ApiError>>,
}

impl TwoFactor {
    fn new() -> Self {
        let confirm = ServerAction::<ConfirmTwoFactor>::new();
        let disable = ServerAction::<DisableTwoFactor>::new();
        Self {
            start: ServerAction::new(),
            confirm,
            renew: ServerAction::new(),
            disable,
            status: Resource::new(
                move || (confirm.version().get(), disable.version().get()),
                |_| two_factor_status(),
            ),
        }
    }
}

/// Two-factor sign-in: set it up (QR code and key, then the first code), or make new recovery codes.
#[component]
fn TwoFactorCard(two_factor: TwoFactor) -> impl IntoView {
    let TwoFactor {
        start,
        confirm,
        renew,
        disable,
        status,
    } = two_factor;
    let disable_error = action_error(disable);
    let confirm_error = action_error(confirm);
    let renew_error = action_error(renew);
    let start_error = action_error(start);
    let codes = Signal::derive(move || {
        confirm
            .value()
            .get()
            .and_then(Result::ok)
            .or_else(|| renew.value().get().and_then(Result::ok))
    });
    view! {
        <section class="card narrow" id="two-factor" data-testid="two-factor">
            <h2>"Two-factor sign-in"</h2>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let Ok(status) = status.await else { return ().into_any() };
                    if status.enabled {
                        view! {
                            <p class="ok" data-testid="two-factor-on">{format!(
                                "On: signing in asks for a code from your authenticator app. {} recovery code{} left.",
                                status.recovery_codes_left,
                                if status.recovery_codes_left == 1 { "" } else { "s" },
                            )}</p>
                            <ActionForm action=renew>
                                <FormError error=renew_error fields=&["code"] />
                                <label for="renew_code">"Current code, for new recovery codes"</label>
                                <input id="renew_code" name="code" aria-describedby=described_by(renew_error, "code") aria-invalid=invalid(renew_error, "code") autocomplete="one-time-code" inputmode="numeric" maxlength="20" required />
                                <FieldError error=renew_error field="code" />
                                <button type="submit" class="secondary">"Make new recovery codes"</button>
                            </ActionForm>
                            {(!status.required).then(|| view! {
                                <ActionForm action=disable>
                                    <FormError error=disable_error fields=&["code"] />
                                    <label for="disable_code">"Current code, to turn it off"</label>
                                    <input id="disable_code" name="code" aria-describedby=described_by(disable_error, "code") aria-invalid=invalid(disable_error, "code") autocomplete="one-time-code" maxlength="20" required />
                                    <FieldError error=disable_error field="code" />
                                    <button type="submit" class="secondary">"Turn two-factor sign-in off"</button>
                                </ActionForm>
                            })}
                        }.into_any()
                    } else {
                        view! {
                            <p>{if status.required {
                                "Your role requires it: until it is on, Pawfile shows you only this page."
                            } else {
                                "Optional: a code from an app on your phone at each sign-in, beside your password."
                            }}</p>
                            <ActionForm action=start attr:hidden=move || matches!(start.value().get(), Some(Ok(_)))>
                                <FormError error=start_error fields=&[] />
                                <button type="submit" class="secondary">"Set up two-factor sign-in"</button>
                            </ActionForm>
                        }.into_any()
                    }
                })}
            </Suspense>
            {move || start.value().get().and_then(Result::ok).map(|enrolment| view! {
                <div data-testid="enrolment">
                    <p>"Scan this with an authenticator app (or type the key in), then enter the code it shows."</p>
                    <div class="qr" inner_html=enrolment.qr_svg role="img" aria-label="QR code of the two-factor key"></div>
                    <p>"Key: " <code data-testid="totp-secret">{enrolment.secret}</code></p>
                    <ActionForm action=confirm>
                        <FormError error=confirm_error fields=&["code"] />
                        <label for="confirm_code">"Code from the app"</label>
                        <input id="confirm_code" name="code" aria-describedby=described_by(confirm_error, "code") aria-invalid=invalid(confirm_error, "code") autocomplete="one-time-code" inputmode="numeric" maxlength="6" required />
                        <FieldError error=confirm_error field="code" />
                        <button type="submit">"Turn it on"</button>
                    </ActionForm>
                </div>
            })}
            {move || codes.get().map(|codes| view! {
                <div data-testid="recovery-codes">
                    <p class="ok" role="status">"Keep these recovery codes somewhere safe: each signs you in once if you lose your phone. They are shown only now."</p>
                    <ul class="recovery-codes">
                        {codes.into_iter().map(|code| view! { <li><code>{code}</code></li> }).collect_view()}
                    </ul>
                </div>
            })}
        </section>
    }
}

/// How much of the storage quota the person's documents use (their clinic's too, for staff).
#[component]
fn StorageCard(usages: Resource<Result<Vec<StorageUsage>, ApiError>>) -> impl IntoView {
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let usages = usages.await.unwrap_or_default();
                (!usages.is_empty()).then(|| view! {
                    <section class="card narrow" data-testid="storage">
                        <h2>"Storage"</h2>
                        {usages.into_iter().map(|usage| view! { <StorageMeter usage /> }).collect_view()}
                        <p class="hint">"Documents in the trash count until they are purged."</p>
                    </section>
                })
            })}
        </Suspense>
    }
}

/// One quota: a meter and what it means in bytes and documents.
#[component]
pub fn StorageMeter(usage: StorageUsage) -> impl IntoView {
    let whose = match usage.payer.as_str() {
        "clinic" => format!("{} (clinic)", usage.name),
        _ => usage.name.clone(),
    };
    // An account has at most one quota of each kind (its own, its clinic's).
    let id = format!("storage-{}", usage.payer);
    let summary = format!(
        "{} used · {} document{}",
        usage.label(),
        usage.documents,
        if usage.documents == 1 { "" } else { "s" }
    );
    view! {
        <div class="storage">
            <label for=id.clone()>{whose}</label>
            <meter
                id=id
                min="0"
                max="100"
                low="80"
                high="95"
                optimum="0"
                value=usage.percent().to_string()
            >
                {format!("{}%", usage.percent())}
            </meter>
            <p class="storage-summary">{summary}</p>
        </div>
    }
}
