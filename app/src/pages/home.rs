//! The start page: who is signed in and what they can do; the storage state for admins.

use crate::{api::storage_status, auth_state::UserResource};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use pawfile::domain::{Role, SessionUser, StorageReport, StoreStatus};

/// The start page.
#[component]
pub fn HomePage() -> impl IntoView {
    let UserResource(user) = expect_context();
    view! {
        <Title text="Pawfile" />
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match user.await {
                    Ok(Some(user)) => view! { <Welcome user /> }.into_any(),
                    Ok(None) => view! { <Landing /> }.into_any(),
                    Err(err) => view! { <p class="form-error" role="alert">{err.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Landing() -> impl IntoView {
    view! {
        <section class="hero">
            <h1>"Your pets' medical records, in one safe place"</h1>
            <p>
                "Pawfile keeps scans, lab results, prescriptions and photos of your pets' care, "
                "shared with the clinics you choose and nobody else."
            </p>
            <p class="actions">
                <A href="/register" attr:class="button">"Create an account"</A>
                <A href="/login" attr:class="button secondary">"Sign in"</A>
            </p>
        </section>
    }
}

#[component]
fn Welcome(user: SessionUser) -> impl IntoView {
    let roles = user
        .roles
        .iter()
        .map(|role| view! { <li>{role.label()}</li> })
        .collect_view();
    let clinic = user
        .clinic_name
        .clone()
        .map(|name| view! { <p>"Clinic: " <strong>{name}</strong></p> });
    let is_admin = user.has_role(Role::Admin);
    let is_owner = user.has_role(Role::Owner);
    let is_staff = user.has_role(Role::Staff);
    view! {
        <section class="card">
            <h1 data-testid="welcome">{format!("Welcome, {}", user.display_name)}</h1>
            <p>"Signed in as " <strong data-testid="email">{user.email.to_string()}</strong></p>
            <p>"Your roles:"</p>
            <ul class="roles" data-testid="roles">{roles}</ul>
            {clinic}
            <p class="actions left">
                {is_owner.then(|| view! { <A href="/pets" attr:class="button">"My pets"</A> })}
                {is_staff.then(|| view! { <A href="/clinic" attr:class="button">"Patients"</A> })}
                {is_admin.then(|| view! { <A href="/admin" attr:class="button">"Administration"</A> })}
                <A href="/account" attr:class="button secondary">"Your account"</A>
            </p>
        </section>
        {is_admin.then(|| view! { <AdminStorage /> })}
    }
}

#[component]
fn AdminStorage() -> impl IntoView {
    let status = Resource::new(|| (), |_| storage_status());
    view! {
        <section class="card">
            <h2>"Storage"</h2>
            <Suspense fallback=|| view! { <p>"Checking the stores…"</p> }>
                {move || Suspend::new(async move {
                    match status.await {
                        Ok(status) => view! { <StorageTable status /> }.into_any(),
                        Err(err) => view! { <p class="form-error">{err.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn StorageTable(status: StorageReport) -> impl IntoView {
    let row = |label: &'static str, store: StoreStatus| {
        let (class, state) = match &store.problem {
            None => ("ok", "reachable".to_owned()),
            Some(problem) => ("problem", format!("unreachable: {problem}")),
        };
        view! {
            <tr>
                <th scope="row">{label}</th>
                <td>{store.bucket}</td>
                <td>{store.endpoint}</td>
                <td class=class>{state}</td>
            </tr>
        }
    };
    view! {
        {status.backups_on_this_machine.then(|| view! {
            <p class="warning" role="status">
                "Backups are stored on this machine (embedded store). They are not separate from the data: "
                "configure PAWFILE_BACKUP_S3_ENDPOINT for real off-site backups."
            </p>
        })}
        <table>
            <thead>
                <tr><th>"Store"</th><th>"Bucket"</th><th>"Endpoint"</th><th>"State"</th></tr>
            </thead>
            <tbody>
                {row("Documents", status.documents)}
                {row("Backups", status.backups)}
            </tbody>
        </table>
    }
}
