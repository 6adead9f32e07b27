//! Clinic staff: the patients shared with their clinic, and registering walk-in patients.

use super::{
    components::{ErrorNotice, FieldError, FormError, action_error, described_by, invalid, query},
    pet_form::PetFields,
    pets::{ClaimCodeCard, PET_FIELDS, PetTable},
};
use crate::api::{RegisterWalkIn, clinic_patients};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{A, Form};

/// The clinic's patient list, with search.
#[component]
pub fn PatientsPage() -> impl IntoView {
    let q = query("q");
    let patients = Resource::new(move || q.get(), clinic_patients);
    view! {
        <Title text="Patients · Pawfile" />
        <section class="card">
            <div class="title-row">
                <h1>"Patients"</h1>
                <A href="/clinic/walk-in" attr:class="button">"Register a walk-in patient"</A>
            </div>
            <Form method="GET" action="/clinic" attr:class="search">
                <label for="q">"Search by pet name, owner name or e-mail, or microchip"</label>
                <div class="search-row">
                    <input id="q" name="q" type="search" value=move || q.get() />
                    <button type="submit">"Search"</button>
                </div>
            </Form>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match patients.await {
                        Ok(pets) if pets.is_empty() => view! { <p>"No patients found."</p> }.into_any(),
                        Ok(pets) => view! { <PetTable pets show_owner=true /> }.into_any(),
                        Err(error) => view! { <ErrorNotice error /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// Registering a walk-in patient: the pet is shared with the clinic at once and the owner gets a claim
/// code.
#[component]
pub fn WalkInPage() -> impl IntoView {
    let register = ServerAction::<RegisterWalkIn>::new();
    let error = action_error(register);
    let issued = register.value();
    let fields: &'static [&'static str] = &[
        "name",
        "species",
        "breed",
        "sex",
        "birth_date",
        "microchip",
        "notes",
        "owner_name",
        "owner_email",
    ];
    let _ = PET_FIELDS;
    view! {
        <Title text="Walk-in patient · Pawfile" />
        {move || match issued.get() {
            Some(Ok(issued)) => view! {
                <section class="card narrow">
                    <h1>"Patient registered"</h1>
                    <ClaimCodeCard issued=issued.clone() />
                    <p>
                        <A href=format!("/pets/{}", issued.pet_id) attr:class="button">"Open the patient"</A>
                        " "
                        <button type="button" class="secondary" on:click=|_| print_page()>"Print"</button>
                    </p>
                </section>
            }.into_any(),
            _ => view! {
                <section class="card narrow">
                    <h1>"Register a walk-in patient"</h1>
                    <ActionForm action=register>
                        <FormError error=error fields=fields />
                        <fieldset>
                            <legend>"The owner"</legend>
                            <label for="owner_name">"Owner's name"</label>
                            <input id="owner_name" name="owner_name" aria-describedby=described_by(error, "owner_name") aria-invalid=invalid(error, "owner_name") maxlength="100" required />
                            <FieldError error=error field="owner_name" />
                            <label for="owner_email">"Owner's e-mail address"</label>
                            <input id="owner_email" name="owner_email" aria-describedby=described_by(error, "owner_email") aria-invalid=invalid(error, "owner_email") type="email" required />
                            <FieldError error=error field="owner_email" />
                        </fieldset>
                        <fieldset>
                            <legend>"The pet"</legend>
                            <PetFields error=error />
                        </fieldset>
                        <button type="submit" disabled=move || register.pending().get()>"Register and issue a claim code"</button>
                    </ActionForm>
                </section>
            }.into_any(),
        }}
    }
}

fn print_page() {
    #[cfg(feature = "hydrate")]
    if let Some(window) = web_sys::window() {
        let _ = window.print();
    }
}
