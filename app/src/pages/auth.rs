//! Sign in, create an account (confirmed by a mailed link), and recover a forgotten password.

use super::components::{FieldError, FormError, PasswordField, described_by, invalid, query};
use crate::{
    api::{AcceptInvitation, ForgotPassword, Login, Register, ResetPassword, VerifyEmail, invitation},
    auth_state::AuthState,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::A, hooks::use_navigate};
use pawfile::domain::{NewPassword, SessionUser};

/// Once someone is signed in, reloads the signed-in user and sends the browser home, or to their account
/// page while they must set up a second factor (plain forms without JavaScript are redirected by the
/// server instead).
fn go_home_after_success(signed_in: impl Fn() -> Option<SessionUser> + Send + Sync + 'static) {
    let auth = expect_context::<AuthState>();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(user) = signed_in() {
            auth.notify_changed();
            let to = if user.needs_two_factor_setup {
                "/account#two-factor"
            } else {
                "/"
            };
            navigate(to, Default::default());
        }
    });
}

/// The sign-in page.
#[component]
pub fn LoginPage() -> impl IntoView {
    // Created inside the route, so a plain form's error carried back in the URL reaches it.
    let action = ServerAction::<Login>::new();
    let value = action.value();
    go_home_after_success(move || value.get().and_then(Result::ok));
    let error = Signal::derive(move || value.get().and_then(Result::err));
    view! {
        <Title text="Sign in · Pawfile" />
        <section class="card narrow">
            <h1>"Sign in"</h1>
            <ActionForm action=action>
                <FormError error=error fields=&["email", "password", "code"] />
                <label for="email">"E-mail address"</label>
                <input id="email" name="email" aria-describedby=described_by(error, "email") aria-invalid=invalid(error, "email") type="email" autocomplete="username" required />
                <FieldError error=error field="email" />
                <PasswordField name="password" error=error label="Password" autocomplete="current-password" />
                <FieldError error=error field="password" />
                <label for="code">"Two-factor code " <span class="hint">"(only if your account uses one)"</span></label>
                <input id="code" name="code" aria-describedby=described_by(error, "code") aria-invalid=invalid(error, "code") autocomplete="one-time-code" maxlength="20" />
                <p class="hint">"The 6 digits from your authenticator app, or one of your recovery codes."</p>
                <FieldError error=error field="code" />
                <button type="submit" disabled=move || action.pending().get()>
                    "Sign in"
                </button>
            </ActionForm>
            <p><A href="/forgot-password">"Forgot your password?"</A></p>
            <p>"New to Pawfile? " <A href="/register">"Create an account"</A></p>
        </section>
    }
}

/// The registration page for pet owners (clinic staff get their accounts from an administrator).
#[component]
pub fn RegisterPage() -> impl IntoView {
    let action = ServerAction::<Register>::new();
    let value = action.value();
    let sent = Signal::derive(move || value.get().and_then(Result::ok));
    let error = Signal::derive(move || value.get().and_then(Result::err));
    view! {
        <Title text="Create an account · Pawfile" />
        <section class="card narrow">
            <h1>"Create an account"</h1>
            <p class="hint">
                "For pet owners. Clinic staff receive their account from their clinic's administrator."
            </p>
            <Show when=move || sent.get().is_some()>
                <p class="flash ok" role="status" data-testid="sent">{move || sent.get()}</p>
            </Show>
            <ActionForm action=action attr:hidden=move || sent.get().is_some()>
                <FormError error=error fields=&["email", "display_name", "password", "claim_code"] />
                <label for="display_name">"Your name"</label>
                <input id="display_name" name="display_name" aria-describedby=described_by(error, "display_name") aria-invalid=invalid(error, "display_name") autocomplete="name" maxlength="100" required />
                <FieldError error=error field="display_name" />
                <label for="email">"E-mail address"</label>
                <input id="email" name="email" aria-describedby=described_by(error, "email") aria-invalid=invalid(error, "email") type="email" autocomplete="email" required />
                <FieldError error=error field="email" />
                <PasswordField
                    name="password" error=error
                    label="Password"
                    autocomplete="new-password"
                    minlength=NewPassword::MIN_LEN
                />
                <NewPasswordHint />
                <FieldError error=error field="password" />
                <label for="claim_code">"Claim code from your clinic " <span class="hint">"(optional)"</span></label>
                <input id="claim_code" name="claim_code" aria-describedby=described_by(error, "claim_code") aria-invalid=invalid(error, "claim_code") autocomplete="off" maxlength="20" />
                <FieldError error=error field="claim_code" />
                <button type="submit" disabled=move || action.pending().get()>
                    "Create account"
                </button>
            </ActionForm>
            <p>"Already registered? " <A href="/login">"Sign in"</A></p>
        </section>
    }
}

/// "Forgot password": asks for the address and mails a link (the answer is the same for any address).
#[component]
pub fn ForgotPasswordPage() -> impl IntoView {
    let action = ServerAction::<ForgotPassword>::new();
    let value = action.value();
    let sent = Signal::derive(move || value.get().and_then(Result::ok));
    let error = Signal::derive(move || value.get().and_then(Result::err));
    view! {
        <Title text="Forgot your password · Pawfile" />
        <section class="card narrow">
            <h1>"Forgot your password?"</h1>
            <p class="hint">"Enter the address you sign in with: we mail you a link to choose a new password."</p>
            <Show when=move || sent.get().is_some()>
                <p class="flash ok" role="status" data-testid="sent">{move || sent.get()}</p>
            </Show>
            <ActionForm action=action>
                <FormError error=error fields=&["email"] />
                <label for="email">"E-mail address"</label>
                <input id="email" name="email" aria-describedby=described_by(error, "email") aria-invalid=invalid(error, "email") type="email" autocomplete="username" required />
                <FieldError error=error field="email" />
                <button type="submit" disabled=move || action.pending().get()>
                    "Mail me a link"
                </button>
            </ActionForm>
            <p><A href="/login">"Back to sign in"</A></p>
        </section>
    }
}

/// Where a sign-up mail's link leads: the password chosen at sign-up, asked again, confirms the address,
/// creates the account and signs in. (A form, not the link itself, so mail scanners that open links
/// cannot use it up; and the password, so someone who signed up with another person's address cannot
/// have that person create the account they would then control.)
#[component]
pub fn VerifyEmailPage() -> impl IntoView {
    let token = query("token");
    let action = ServerAction::<VerifyEmail>::new();
    let value = action.value();
    go_home_after_success(move || value.get().and_then(Result::ok));
    let error = Signal::derive(move || value.get().and_then(Result::err));
    view! {
        <Title text="Confirm your address · Pawfile" />
        <section class="card narrow">
            <h1>"Confirm your e-mail address"</h1>
            <p>"One step left: enter the password you chose when you signed up, to create your account and sign in."</p>
            <p class="hint">"If you did not sign up for Pawfile, ignore this page: without that password nothing is created."</p>
            <ActionForm action=action>
                <FormError error=error fields=&["password"] />
                <input type="hidden" name="token" value=move || token.get() />
                <PasswordField
                    name="password" error=error
                    label="Your password"
                    autocomplete="current-password"
                    minlength=NewPassword::MIN_LEN
                />
                <FieldError error=error field="password" />
                <button type="submit" disabled=move || action.pending().get()>
                    "Confirm and sign in"
                </button>
            </ActionForm>
        </section>
    }
}

/// Where a reset mail's link leads: choose a new password.
#[component]
pub fn ResetPasswordPage() -> impl IntoView {
    let token = query("token");
    let action = ServerAction::<ResetPassword>::new();
    let value = action.value();
    let done = Signal::derive(move || value.get().and_then(Result::ok));
    let error = Signal::derive(move || value.get().and_then(Result::err));
    view! {
        <Title text="Choose a new password · Pawfile" />
        <section class="card narrow">
            <h1>"Choose a new password"</h1>
            <Show when=move || done.get().is_some()>
                <p class="flash ok" role="status" data-testid="sent">{move || done.get()}</p>
                <p><A href="/login">"Sign in"</A></p>
            </Show>
            <ActionForm action=action attr:hidden=move || done.get().is_some()>
                <FormError error=error fields=&["new_password"] />
                <input type="hidden" name="token" value=move || token.get() />
                <PasswordField
                    name="new_password" error=error
                    label="New password"
                    autocomplete="new-password"
                    minlength=NewPassword::MIN_LEN
                />
                <NewPasswordHint />
                <FieldError error=error field="new_password" />
                <button type="submit" disabled=move || action.pending().get()>
                    "Set the new password"
                </button>
            </ActionForm>
        </section>
    }
}

/// Where a staff invitation's link leads: who is invited to which clinic, and the password they choose.
#[component]
pub fn AcceptInvitationPage() -> impl IntoView {
    let token = query("token");
    let details = Resource::new(move || token.get(), invitation);
    let action = ServerAction::<AcceptInvitation>::new();
    let value = action.value();
    go_home_after_success(move || value.get().and_then(Result::ok));
    let error = Signal::derive(move || value.get().and_then(Result::err));
    view! {
        <Title text="Join your clinic · Pawfile" />
        <section class="card narrow">
            <h1>"Join your clinic on Pawfile"</h1>
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match details.await {
                        Ok(invited) => view! {
                            <p data-testid="invitation">
                                {format!("{}, you are invited as staff of {}. You sign in as {}.", invited.display_name, invited.clinic_name, invited.email)}
                            </p>
                            <ActionForm action=action>
                                <FormError error=error fields=&["password"] />
                                <input type="hidden" name="token" value=move || token.get() />
                                <PasswordField
                                    name="password" error=error
                                    label="Choose your password"
                                    autocomplete="new-password"
                                    minlength=NewPassword::MIN_LEN
                                />
                                <NewPasswordHint />
                                <FieldError error=error field="password" />
                                <button type="submit" disabled=move || action.pending().get()>
                                    "Set my password and sign in"
                                </button>
                            </ActionForm>
                        }.into_any(),
                        Err(error) => view! {
                            <p class="form-error" role="alert">{error.to_string()}</p>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// What a new password must be, under the field that asks for one.
#[component]
fn NewPasswordHint() -> impl IntoView {
    view! {
        <p class="hint">{format!(
            "At least {} characters and hard to guess: a few unrelated words work well.",
            NewPassword::MIN_LEN,
        )}</p>
    }
}
