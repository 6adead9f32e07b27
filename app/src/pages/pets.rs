//! The owner's pets, a pet page, adding and editing a pet, and its access history.

use super::{
    components::{
        ErrorNotice, FieldError, FormError, action_error, described_by, format_date, invalid, param, query,
        show_all,
    },
    documents::{DocumentsData, DocumentsPanel},
    pet_form::PetFields,
};
use crate::api::{
    ArchivePet, ClaimPet, CreatePet, PetPage as PetPageData, RECENT_RECORDS, ReissueClaimCode, RestorePet,
    RevokeShare, SharePet, UpdatePet, get_pet, list_clinics, list_pets, pet_history,
};
use crate::error::ApiError;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::A, hooks::use_navigate};
use pawfile::domain::{ClinicSummary, IssuedClaimCode, PetId, PetSummary, PetView, RecordSummary};

/// Navigates to `path(value)` once `action` succeeds (plain forms are redirected by the server).
fn follow_success<S, T>(action: ServerAction<S>, path: impl Fn(&T) -> String + Send + Sync + 'static)
where
    S: server_fn::ServerFn<Output = T, Error = ApiError> + Clone + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
{
    let navigate = use_navigate();
    let value = action.value();
    Effect::new(move |_| {
        if let Some(Ok(output)) = value.get() {
            navigate(&path(&output), Default::default());
        }
    });
}

/// The owner's pets.
#[component]
pub fn PetsPage() -> impl IntoView {
    let archived = query("archived");
    let pets = Resource::new(move || archived.get() == "1", list_pets);
    view! {
        <Title text="My pets · Pawfile" />
        <section class="card">
            <div class="title-row">
                <h1>"My pets"</h1>
                <A href="/pets/new" attr:class="button">"Add a pet"</A>
            </div>
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match pets.await {
                        Ok(pets) if pets.is_empty() => view! {
                            <p>"No pets yet. Add one, or enter the claim code your clinic gave you."</p>
                        }.into_any(),
                        Ok(pets) => view! { <PetTable pets show_owner=false /> }.into_any(),
                        Err(error) => view! { <ErrorNotice error /> }.into_any(),
                    }
                })}
            </Suspense>
            <p>
                {move || if archived.get() == "1" {
                    view! { <A href="/pets">"Hide archived pets"</A> }.into_any()
                } else {
                    view! { <A href="/pets?archived=1">"Show archived pets"</A> }.into_any()
                }}
            </p>
        </section>
        <ClaimForm />
    }
}

/// A table of pets linking to their pages.
#[component]
pub fn PetTable(pets: Vec<PetSummary>, show_owner: bool) -> impl IntoView {
    view! {
        <table class="pets" data-testid="pet-list">
            <thead>
                <tr>
                    <th>"Name"</th>
                    <th>"Species"</th>
                    <th>"Microchip"</th>
                    {show_owner.then(|| view! { <th>"Owner"</th> })}
                </tr>
            </thead>
            <tbody>
                {pets
                    .into_iter()
                    .map(|pet| {
                        let species = match &pet.breed {
                            Some(breed) => format!("{} ({breed})", pet.species),
                            None => pet.species.clone(),
                        };
                        let owner = format!(
                            "{}{}{}",
                            pet.owner_name.clone().unwrap_or_default(),
                            pet.owner_email.as_ref().map(|email| format!(" <{email}>")).unwrap_or_default(),
                            if pet.claimed { "" } else { " (not yet claimed)" },
                        );
                        view! {
                            <tr>
                                <td>
                                    <A href=format!("/pets/{}", pet.id)>{pet.name.clone()}</A>
                                    {pet.archived.then(|| view! { <span class="badge">"archived"</span> })}
                                </td>
                                <td>{species}</td>
                                <td>{pet.microchip.unwrap_or_default()}</td>
                                {show_owner.then(|| view! { <td>{owner}</td> })}
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}

/// The form with which an owner enters a clinic's claim code.
#[component]
pub fn ClaimForm() -> impl IntoView {
    let claim = ServerAction::<ClaimPet>::new();
    follow_success(claim, |pet: &PetId| format!("/pets/{pet}"));
    let error = action_error(claim);
    view! {
        <section class="card">
            <h2>"Claim a pet registered by your clinic"</h2>
            <p class="hint">"Your clinic gave you a code like ABCD-EFGH-JKMN. Enter it to add the pet to your account."</p>
            <ActionForm action=claim>
                <FormError error=error fields=&["code"] />
                <label for="code">"Claim code"</label>
                <input id="code" name="code" aria-describedby=described_by(error, "code") aria-invalid=invalid(error, "code") autocomplete="off" required maxlength="20" />
                <FieldError error=error field="code" />
                <button type="submit">"Claim"</button>
            </ActionForm>
        </section>
    }
}

/// Adding a pet.
#[component]
pub fn NewPetPage() -> impl IntoView {
    let create = ServerAction::<CreatePet>::new();
    follow_success(create, |pet: &PetId| format!("/pets/{pet}"));
    let error = action_error(create);
    view! {
        <Title text="Add a pet · Pawfile" />
        <section class="card narrow">
            <h1>"Add a pet"</h1>
            <ActionForm action=create>
                <FormError error=error fields=PET_FIELDS />
                <PetFields error=error />
                <button type="submit" disabled=move || create.pending().get()>"Add pet"</button>
            </ActionForm>
        </section>
    }
}

/// The form fields that show their own errors.
pub const PET_FIELDS: &[&str] = &[
    "name",
    "species",
    "breed",
    "sex",
    "birth_date",
    "microchip",
    "notes",
];

/// A pet page: details, sharing, records, and what the viewer may do with them.
#[component]
pub fn PetPage() -> impl IntoView {
    let pet_id = param::<PetId>("id");
    let archive = ServerAction::<ArchivePet>::new();
    let restore = ServerAction::<RestorePet>::new();
    let share = ServerAction::<SharePet>::new();
    let revoke = ServerAction::<RevokeShare>::new();
    let reissue = ServerAction::<ReissueClaimCode>::new();
    let all_records = query("records");
    let page = Resource::new(
        move || {
            (
                pet_id.get(),
                all_records.get() == "all",
                archive.version().get(),
                restore.version().get(),
                share.version().get(),
                revoke.version().get(),
                reissue.version().get(),
            )
        },
        // A claim code a plain form just issued is taken only once the viewer may see the pet, and only
        // while the server renders the page (see `crate::feedback`).
        |(pet_id, all_records, ..)| async move {
            match pet_id {
                Some(pet_id) => {
                    let page = get_pet(pet_id, all_records).await?;
                    let issued = crate::feedback::take_claim_code(pet_id).await;
                    Ok((page, issued))
                }
                None => Err(ApiError::not_found()),
            }
        },
    );
    let actions = PetActions {
        archive,
        restore,
        share,
        revoke,
        reissue,
    };
    // Every resource of the page is made here, outside the `Suspense` (see `DocumentsData`).
    let documents = DocumentsData::of_pet(pet_id);
    // The clinics to share with, which only the owner is offered.
    let clinics = Resource::new(
        || (),
        move |_| async move {
            match page.await {
                Ok((page, _)) if page.pet.permissions.owner => list_clinics().await,
                _ => Ok(Vec::new()),
            }
        },
    );
    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok((page, issued)) => view! { <PetDetailsView page issued actions documents clinics /> }.into_any(),
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[derive(Clone, Copy)]
struct PetActions {
    archive: ServerAction<ArchivePet>,
    restore: ServerAction<RestorePet>,
    share: ServerAction<SharePet>,
    revoke: ServerAction<RevokeShare>,
    reissue: ServerAction<ReissueClaimCode>,
}

#[component]
fn PetDetailsView(
    page: PetPageData,
    issued: Option<IssuedClaimCode>,
    actions: PetActions,
    documents: DocumentsData,
    clinics: Resource<Result<Vec<ClinicSummary>, ApiError>>,
) -> impl IntoView {
    let PetPageData {
        pet,
        records,
        more_records,
    } = page;
    let id = pet.id;
    let details = pet.details.clone();
    let title = format!("{} · Pawfile", details.name);
    let species = match &details.breed {
        Some(breed) => format!("{}, {breed}", details.species),
        None => details.species.clone(),
    };
    let owner = match (&pet.owner_name, &pet.owner_email, pet.owner_id) {
        (Some(name), Some(email), Some(_)) => format!("{name} <{email}>"),
        (Some(name), Some(email), None) => format!("{name} <{email}> (has not claimed the pet yet)"),
        _ => String::new(),
    };
    let is_owner = pet.permissions.owner;
    let is_clinic = pet.permissions.clinic.is_some();
    let archived = pet.archived_at.clone();
    view! {
        <Title text=title />
        <section class="card">
            <div class="title-row">
                <h1 data-testid="pet-name">{details.name.clone()}</h1>
                {is_owner.then(|| view! { <A href=format!("/pets/{id}/edit") attr:class="button secondary">"Edit"</A> })}
            </div>
            {archived.clone().map(|at| view! {
                <p class="warning">"Archived on " {at.local} ". It is hidden from lists; its history is kept."</p>
            })}
            <dl class="facts">
                <dt>"Species"</dt><dd>{species}</dd>
                <dt>"Sex"</dt><dd>{details.sex.label()}</dd>
                <dt>"Born"</dt><dd>{details.birth_date.map(format_date).unwrap_or_else(|| "unknown".to_owned())}</dd>
                <dt>"Microchip"</dt><dd data-testid="microchip">{details.microchip.as_ref().map(ToString::to_string).unwrap_or_else(|| "none".to_owned())}</dd>
                <dt>"Owner"</dt><dd>{owner}</dd>
            </dl>
            {details.notes.map(|notes| view! { <p class="notes">{notes}</p> })}
            {is_owner.then(|| view! { <ArchiveButtons id archived=archived.is_some() actions /> })}
        </section>
        {is_clinic.then(|| view! { <ClaimCodePanel pet=pet.clone() issued actions /> })}
        <RecordsList pet=id records more=more_records can_write=is_clinic />
        <DocumentsPanel data=documents pet=id can_upload={is_owner || is_clinic} owner=is_owner />
        {is_owner.then(|| view! { <SharingPanel pet=pet.clone() actions clinics /> })}
        {is_owner.then(|| view! {
            <section class="card">
                <h2>"Access history"</h2>
                <p><A href=format!("/pets/{id}/history")>"See who opened this pet's records, and when"</A></p>
            </section>
        })}
    }
}

#[component]
fn ArchiveButtons(id: PetId, archived: bool, actions: PetActions) -> impl IntoView {
    if archived {
        view! {
            <ActionForm action=actions.restore attr:class="inline">
                <input type="hidden" name="pet_id" value=id.to_string() />
                <button type="submit" class="secondary">"Restore from the archive"</button>
            </ActionForm>
        }
        .into_any()
    } else {
        view! {
            <ActionForm action=actions.archive attr:class="inline">
                <input type="hidden" name="pet_id" value=id.to_string() />
                <button type="submit" class="secondary">"Archive"</button>
                <span class="hint">" Hides the pet from your list. Nothing is deleted; you can restore it."</span>
            </ActionForm>
        }
        .into_any()
    }
}

#[component]
fn RecordsList(pet: PetId, records: Vec<RecordSummary>, more: bool, can_write: bool) -> impl IntoView {
    let empty = records.is_empty();
    view! {
        <section class="card" id="records">
            <div class="title-row">
                <h2>"Medical records"</h2>
                {can_write.then(|| view! { <A href=format!("/pets/{pet}/records/new") attr:class="button">"New record"</A> })}
            </div>
            {empty.then(|| view! { <p>"No medical records yet."</p> })}
            {(!empty).then(|| view! {
                <table class="stack" data-testid="records">
                    <thead><tr><th>"Visit"</th><th>"Kind"</th><th>"Title"</th><th>"Clinic"</th><th>"Revisions"</th></tr></thead>
                    <tbody>
                        {records.into_iter().map(|record| view! {
                            <tr>
                                <td data-label="Visit" class="nowrap">{format_date(record.visit_date)}</td>
                                <td data-label="Kind">{record.kind.label()}</td>
                                <td data-label="Title"><A href=format!("/records/{}", record.id)>{record.title}</A></td>
                                <td data-label="Clinic">{record.clinic_name}</td>
                                <td data-label="Revisions">{record.revisions}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            })}
            {more.then(|| view! {
                <p class="more" data-testid="more-records">
                    "The " {RECENT_RECORDS} " most recent visits. "
                    <a href=show_all("records")>"Show all records"</a>
                </p>
            })}
        </section>
    }
}

#[component]
fn SharingPanel(
    pet: PetView,
    actions: PetActions,
    clinics: Resource<Result<Vec<ClinicSummary>, ApiError>>,
) -> impl IntoView {
    let share_error = action_error(actions.share);
    let revoke_error = action_error(actions.revoke);
    let id = pet.id;
    let shared: Vec<_> = pet.shares.iter().map(|share| share.clinic_id).collect();
    view! {
        <section class="card">
            <h2>"Shared with clinics"</h2>
            <p class="hint">"A clinic you share with sees this pet, its records and documents, and writes records. Revoking ends its access at once."</p>
            <FormError error=revoke_error />
            {if pet.shares.is_empty() {
                view! { <p>"Not shared with any clinic."</p> }.into_any()
            } else {
                view! {
                    <ul class="shares" data-testid="shares">
                        {pet.shares.into_iter().map(|share| view! {
                            <li>
                                <strong>{share.clinic_name}</strong>
                                " since " {share.granted_at.local}
                                <ActionForm action=actions.revoke attr:class="inline">
                                    <input type="hidden" name="pet_id" value=id.to_string() />
                                    <input type="hidden" name="clinic_id" value=share.clinic_id.to_string() />
                                    <button type="submit" class="secondary small">"Revoke"</button>
                                </ActionForm>
                            </li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
            <Suspense fallback=|| ()>
                {move || {
                    let shared = shared.clone();
                    Suspend::new(async move {
                        let clinics = clinics.await.unwrap_or_default();
                        let choices: Vec<_> = clinics.into_iter().filter(|clinic| !shared.contains(&clinic.id)).collect();
                        (!choices.is_empty()).then(|| view! {
                            <ActionForm action=actions.share>
                                <input type="hidden" name="pet_id" value=id.to_string() />
                                <label for="clinic_id">"Share with"</label>
                                <select id="clinic_id" name="clinic_id" aria-describedby=described_by(share_error, "clinic_id") aria-invalid=invalid(share_error, "clinic_id") required>
                                    <option value="">"Choose a clinic…"</option>
                                    {choices.into_iter().map(|clinic| view! {
                                        <option value=clinic.id.to_string()>{clinic.name}</option>
                                    }).collect_view()}
                                </select>
                                <FieldError error=share_error field="clinic_id" />
                                <button type="submit">"Share"</button>
                            </ActionForm>
                        })
                    })
                }}
            </Suspense>
        </section>
    }
}

#[component]
fn ClaimCodePanel(pet: PetView, issued: Option<IssuedClaimCode>, actions: PetActions) -> impl IntoView {
    if pet.owner_id.is_some() {
        return ().into_any();
    }
    let fresh = actions.reissue.value();
    let shown = move || {
        fresh
            .get()
            .and_then(Result::ok)
            .or_else(|| issued.clone())
            .map(|issued| view! { <ClaimCodeCard issued /> })
    };
    let expires = pet.claim_code_expires.map(|at| at.local);
    view! {
        <section class="card">
            <h2>"Not yet claimed by its owner"</h2>
            {shown}
            <p class="hint">
                {match expires {
                    Some(at) => format!("A claim code is valid until {at}. "),
                    None => "No valid claim code. ".to_owned(),
                }}
                "If the owner lost theirs, issue a new one (the old one stops working)."
            </p>
            <ActionForm action=actions.reissue attr:class="inline">
                <input type="hidden" name="pet_id" value=pet.id.to_string() />
                <button type="submit" class="secondary">"Issue a new claim code"</button>
            </ActionForm>
        </section>
    }
    .into_any()
}

/// A claim code to print or hand over: shown once.
#[component]
pub fn ClaimCodeCard(issued: IssuedClaimCode) -> impl IntoView {
    view! {
        <div class="claim-code" role="status">
            <p>"Give this code to the owner. With it they add the pet to their Pawfile account (when registering, or from their account page). It is shown only now."</p>
            <p class="code" data-testid="claim-code">{issued.code}</p>
            <p class="hint">"Valid until " {issued.expires_at.local} ", for one use."</p>
        </div>
    }
}

/// Editing a pet (its owner).
#[component]
pub fn EditPetPage() -> impl IntoView {
    let pet_id = param::<PetId>("id");
    let update = ServerAction::<UpdatePet>::new();
    let navigate_to = move |_: &()| {
        pet_id
            .get_untracked()
            .map(|id| format!("/pets/{id}"))
            .unwrap_or_default()
    };
    follow_success(update, navigate_to);
    let error = action_error(update);
    let page = Resource::new(
        move || pet_id.get(),
        |pet_id| async move {
            match pet_id {
                Some(pet_id) => get_pet(pet_id, false).await,
                None => Err(ApiError::not_found()),
            }
        },
    );
    view! {
        <Title text="Edit pet · Pawfile" />
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(page) if page.pet.permissions.owner => view! {
                        <section class="card narrow">
                            <h1>"Edit " {page.pet.details.name.clone()}</h1>
                            <ActionForm action=update>
                                <input type="hidden" name="pet_id" value=page.pet.id.to_string() />
                                <FormError error=error fields=PET_FIELDS />
                                <PetFields initial=page.pet.details error=error />
                                <button type="submit">"Save"</button>
                            </ActionForm>
                        </section>
                    }.into_any(),
                    Ok(_) => view! { <ErrorNotice error=ApiError::forbidden() /> }.into_any(),
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// Who accessed a pet, and when (its owner).
#[component]
pub fn PetHistoryPage() -> impl IntoView {
    let pet_id = param::<PetId>("id");
    let history = Resource::new(
        move || pet_id.get(),
        |pet_id| async move {
            match pet_id {
                Some(pet_id) => pet_history(pet_id).await,
                None => Err(ApiError::not_found()),
            }
        },
    );
    view! {
        <Title text="Access history · Pawfile" />
        <section class="card">
            <h1>"Access history"</h1>
            <p>{move || pet_id.get().map(|id| view! { <A href=format!("/pets/{id}")>"Back to the pet"</A> })}</p>
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match history.await {
                        Ok(entries) if entries.is_empty() => view! { <p>"Nobody else has accessed this pet yet."</p> }.into_any(),
                        Ok(entries) => view! {
                            <table data-testid="history">
                                <thead><tr><th>"When"</th><th>"Who"</th><th>"What"</th></tr></thead>
                                <tbody>
                                    {entries.into_iter().map(|entry| {
                                        let who = match (entry.actor, entry.actor_clinic) {
                                            (Some(name), Some(clinic)) => format!("{name} ({clinic})"),
                                            (Some(name), None) => name,
                                            _ => "someone not signed in".to_owned(),
                                        };
                                        view! { <tr><td>{entry.at.local}</td><td>{who}</td><td>{entry.action_label}</td></tr> }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                        Err(error) => view! { <ErrorNotice error /> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}
