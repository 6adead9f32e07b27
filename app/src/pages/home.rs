//! The start page: a home for each role, from one server call. Owners see their pets as cards with a
//! one-tap upload; staff the patient search, the patients they opened lately and their clinic's week;
//! admins the state of the system (nothing medical). Someone with several roles sees each part.

use super::{
    components::{ErrorNotice, format_bytes, format_date},
    pets::ClaimForm,
};
use crate::{
    api::start_page,
    auth_state::{AuthState, UserResource},
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{A, Form};
use pawfile::domain::{
    BackupOverview, Home, PetCard, Role, SessionUser, StaffDesk, StorageReport, StoreStatus, SystemGlance,
};

/// The start page.
#[component]
pub fn HomePage() -> impl IntoView {
    let UserResource(user) = expect_context();
    let auth = expect_context::<AuthState>();
    // Asked only for someone signed in: a visitor's landing page makes no call that would answer 401.
    let data = Resource::new(
        move || (auth.changed.get(), auth.logout.version().get()),
        move |_| async move {
            match user.await {
                Ok(Some(_)) => start_page().await.map(Some),
                _ => Ok(None),
            }
        },
    );
    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match user.await {
                    Ok(Some(user)) => {
                        let title = home_title(&user);
                        let parts = match data.await {
                            Ok(Some(home)) => view! { <Parts home /> }.into_any(),
                            Ok(None) => ().into_any(),
                            Err(error) => view! { <ErrorNotice error /> }.into_any(),
                        };
                        view! {
                            <Title text=title />
                            <Greeting user />
                            {parts}
                        }.into_any()
                    }
                    Ok(None) => view! { <Title text="Pawfile · your pets' medical records" /> <Landing /> }.into_any(),
                    Err(error) => view! { <Title text="Pawfile" /> <ErrorNotice error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The start page's title names what it is about for this person.
fn home_title(user: &SessionUser) -> String {
    let what = if user.has_role(Role::Owner) {
        "Your pets".to_owned()
    } else if let Some(clinic) = user.clinic_name.as_ref().filter(|_| user.has_role(Role::Staff)) {
        clinic.clone()
    } else {
        "System overview".to_owned()
    };
    format!("{what} · Pawfile")
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
fn Greeting(user: SessionUser) -> impl IntoView {
    let roles = user
        .roles
        .iter()
        .map(|role| view! { <li>{role.label()}</li> })
        .collect_view();
    view! {
        <div class="greeting">
            <h1 data-testid="welcome">{format!("Welcome, {}", user.display_name)}</h1>
            <p class="meta">
                "Signed in as " <span data-testid="email">{user.email.to_string()}</span>
                {user.clinic_name.clone().map(|clinic| view! { " at " <strong>{clinic}</strong> })}
            </p>
            <ul class="roles inline-list" data-testid="roles" aria-label="Your roles">{roles}</ul>
        </div>
    }
}

#[component]
fn Parts(home: Home) -> impl IntoView {
    view! {
        {home.staff.map(|desk| view! { <StaffHome desk /> }.into_any())}
        {home.owner.map(|pets| view! { <OwnerHome pets /> }.into_any())}
        {home.admin.map(|glance| view! { <AdminHome glance /> }.into_any())}
    }
}

#[component]
fn OwnerHome(pets: Vec<PetCard>) -> impl IntoView {
    let empty = pets.is_empty();
    view! {
        <section class="card" aria-labelledby="your-pets">
            <div class="title-row">
                <h2 id="your-pets">"Your pets"</h2>
                <A href="/pets/new" attr:class="button secondary">"Add a pet"</A>
            </div>
            {empty.then(|| view! {
                <p>"No pets yet. Add one, or enter the claim code your clinic gave you below."</p>
            })}
            <ul class="pet-cards" data-testid="pet-cards">
                {pets.into_iter().map(|pet| view! { <PetCardView pet /> }.into_any()).collect_view()}
            </ul>
        </section>
        <ClaimForm />
    }
}

#[component]
fn PetCardView(pet: PetCard) -> impl IntoView {
    let id = pet.id;
    let href = format!("/pets/{id}");
    let initial = pet
        .name
        .chars()
        .next()
        .map(|c| c.to_uppercase().to_string())
        .unwrap_or_default();
    let about = [Some(pet.species.clone()), pet.breed.clone(), pet.age.clone()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ");
    let counts = format!(
        "{} · {}",
        plural(pet.records, "record"),
        plural(pet.documents, "document")
    );
    let visit = pet.last_visit.map_or_else(
        || "No visits yet".to_owned(),
        |date| format!("Last visit {}", format_date(date)),
    );
    let clinics = if pet.clinics.is_empty() {
        "Not shared with a clinic".to_owned()
    } else {
        format!("Shared with {}", pet.clinics.join(", "))
    };
    let input_id = format!("add-document-{id}");
    let (interactive, set_interactive) = signal(false);
    Effect::new(move |_| set_interactive.set(true));
    view! {
        <li class="pet-card" data-testid="pet-card">
            <a href=href.clone() class="pet-photo" tabindex="-1" aria-hidden="true">
                {match pet.photo {
                    Some(photo) => view! {
                        <img src=format!("/api/documents/{photo}/thumbnail") alt="" width="96" height="96" />
                    }.into_any(),
                    None => view! { <span class="placeholder">{initial}</span> }.into_any(),
                }}
            </a>
            <div class="pet-card-body">
                <h3><a href=href>{pet.name.clone()}</a></h3>
                <p class="meta">{about}</p>
                <p class="meta">{visit}</p>
                <p data-testid="pet-counts">{counts}</p>
                <p class="meta">{clinics}</p>
                <form
                    class="quick-upload"
                    method="post"
                    enctype="multipart/form-data"
                    action=format!("/api/pets/{id}/documents")
                >
                    // One tap: on a phone the picker offers the camera and the files; the choice is sent at
                    // once when the page is interactive, with the button otherwise.
                    <label for=input_id.clone() class="button">"Add a document" <span class="visually-hidden">{format!(" for {}", pet.name)}</span></label>
                    <input
                        id=input_id
                        class="file-behind-label"
                        type="file"
                        name="file"
                        accept="image/*,application/pdf"
                        on:change=submit_form_of
                    />
                    <button type="submit" class="secondary" hidden=move || interactive.get()>"Upload"</button>
                </form>
            </div>
        </li>
    }
}

fn plural(count: i64, unit: &str) -> String {
    format!("{count} {unit}{}", if count == 1 { "" } else { "s" })
}

/// Submits the form a file input belongs to (a plain multipart post; the server answers with a redirect
/// back here and a message).
fn submit_form_of(event: leptos::ev::Event) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        if let Some(form) = event
            .target()
            .and_then(|target| target.dyn_into::<web_sys::HtmlInputElement>().ok())
            .and_then(|input| input.form())
        {
            let _ = form.submit();
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = event;
}

#[component]
fn StaffHome(desk: StaffDesk) -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="find-patient">
            <div class="title-row">
                <h2 id="find-patient">"Find a patient"</h2>
                <A href="/clinic/walk-in" attr:class="button">"Register a walk-in"</A>
            </div>
            <Form method="GET" action="/clinic" attr:class="search">
                <label for="home-q">"Pet name, owner name or e-mail, or microchip"</label>
                <div class="search-row">
                    <input id="home-q" name="q" type="search" />
                    <button type="submit">"Search"</button>
                </div>
            </Form>
        </section>
        <section class="card" aria-labelledby="recent-patients">
            <h2 id="recent-patients">"Patients you opened recently"</h2>
            {if desk.recent_patients.is_empty() {
                view! { <p class="hint">"The patients you open appear here."</p> }.into_any()
            } else {
                view! {
                    <ul class="plain-list" data-testid="recent-patients">
                        {desk.recent_patients.into_iter().map(|patient| view! {
                            <li>
                                <a href=format!("/pets/{}", patient.id)>{patient.name}</a>
                                <span class="meta">
                                    {format!(" · {}", patient.species)}
                                    {patient.owner_name.map(|owner| format!(" · {owner}"))}
                                    {format!(" · opened {}", patient.opened_at.local)}
                                </span>
                            </li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
        <section class="card" aria-labelledby="clinic-week">
            <h2 id="clinic-week">{format!("Written at {} in the last 7 days", desk.clinic_name)}</h2>
            {if desk.this_week.is_empty() {
                view! { <p class="hint">"No records this week yet."</p> }.into_any()
            } else {
                view! {
                    <table class="stack" data-testid="clinic-week">
                        <thead><tr><th>"Visit"</th><th>"Patient"</th><th>"Record"</th><th>"By"</th></tr></thead>
                        <tbody>
                            {desk.this_week.into_iter().map(|record| view! {
                                <tr>
                                    <td data-label="Visit" class="nowrap">{format_date(record.visit_date)}</td>
                                    <td data-label="Patient"><a href=format!("/pets/{}", record.pet_id)>{record.pet_name}</a></td>
                                    <td data-label="Record">
                                        <a href=format!("/records/{}", record.id)>{record.title}</a>
                                        <span class="badge">{record.kind.label()}</span>
                                    </td>
                                    <td data-label="By">{record.author}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn AdminHome(glance: SystemGlance) -> impl IntoView {
    let stored = format_bytes(glance.stored_bytes.max(0) as u64);
    view! {
        <section class="card" aria-labelledby="system">
            <div class="title-row">
                <h2 id="system">"The system at a glance"</h2>
                <span>
                    <A href="/admin/dashboard" attr:class="button secondary">"Dashboard"</A>" "
                    <A href="/admin" attr:class="button secondary">"Administration"</A>
                </span>
            </div>
            {glance.backups.map(|backups| view! { <BackupState backups /> }.into_any())}
            <dl class="glance" data-testid="glance">
                <div><dt>"Owners"</dt><dd data-testid="count-owners">{glance.owners}</dd></div>
                <div><dt>"Staff"</dt><dd data-testid="count-staff">{glance.staff}</dd></div>
                <div><dt>"Admins"</dt><dd>{glance.admins}</dd></div>
                <div><dt>"Disabled accounts"</dt><dd>{glance.disabled}</dd></div>
                <div><dt>"Clinics"</dt><dd data-testid="count-clinics">{glance.clinics}</dd></div>
                <div><dt>"Documents"</dt><dd>{format!("{} ({stored})", glance.documents)}</dd></div>
                <div>
                    <dt>"Integrity problems"</dt>
                    <dd class:problem=glance.integrity_problems != 0>
                        {if glance.integrity_problems == 0 {
                            view! { "none" }.into_any()
                        } else {
                            view! { <A href="/admin">{glance.integrity_problems}</A> }.into_any()
                        }}
                    </dd>
                </div>
            </dl>
            {glance.storage.map(|status| view! { <StorageTable status /> }.into_any())}
        </section>
        <section class="card" aria-labelledby="latest-events">
            <div class="title-row">
                <h2 id="latest-events">"Latest events"</h2>
                <A href="/admin/audit">"The whole audit trail"</A>
            </div>
            <table class="stack" data-testid="latest-events">
                <thead><tr><th>"When"</th><th>"Who"</th><th>"What"</th></tr></thead>
                <tbody>
                    {glance.latest_events.into_iter().map(|event| view! {
                        <tr>
                            <td data-label="When">{event.at.local}</td>
                            <td data-label="Who">{event.actor.unwrap_or_else(|| "—".to_owned())}</td>
                            <td data-label="What">{event.action_label}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

#[component]
fn BackupState(backups: BackupOverview) -> impl IntoView {
    let last = backups
        .last_complete
        .map_or_else(|| "none yet".to_owned(), |at| at.date().to_string());
    view! {
        {backups.alarm.map(|alarm| view! {
            <p class="form-error" role="alert" data-testid="backup-alarm">{alarm}" " <A href="/admin/backups">"Backups"</A></p>
        })}
        {backups.warnings.into_iter().map(|warning| view! { <p class="warning">{warning}</p> }).collect_view()}
        <p>"Last complete backup: " <strong data-testid="last-backup">{last}</strong> " · " <A href="/admin/backups">"Backups"</A></p>
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
                <td data-label="Bucket">{store.bucket}</td>
                <td data-label="Endpoint" class="break">{store.endpoint}</td>
                <td data-label="State" class=class>{state}</td>
            </tr>
        }
    };
    view! {
        <table class="stack" data-testid="stores">
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
