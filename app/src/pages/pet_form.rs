//! The pet form fields, shared by "add a pet", "edit" and the clinic's walk-in registration.

use super::components::{FieldError, described_by, invalid, iso_date};
use crate::error::ApiError;
use leptos::prelude::*;
use pawfile::domain::{PetDetails, Sex};

const SPECIES: [&str; 10] = [
    "dog",
    "cat",
    "rabbit",
    "guinea pig",
    "hamster",
    "ferret",
    "bird",
    "horse",
    "reptile",
    "fish",
];

/// The pet's fields, filled with `initial` when editing. Errors appear next to their field.
#[component]
pub fn PetFields(
    /// What the form starts with.
    #[prop(optional)]
    initial: Option<PetDetails>,
    /// The latest error.
    #[prop(into)]
    error: Signal<Option<ApiError>>,
) -> impl IntoView {
    let name = initial.as_ref().map(|pet| pet.name.clone()).unwrap_or_default();
    let species = initial
        .as_ref()
        .map(|pet| pet.species.clone())
        .unwrap_or_default();
    let breed = initial
        .as_ref()
        .and_then(|pet| pet.breed.clone())
        .unwrap_or_default();
    let sex = initial.as_ref().map(|pet| pet.sex).unwrap_or_default();
    let birth_date = initial
        .as_ref()
        .and_then(|pet| pet.birth_date)
        .map(iso_date)
        .unwrap_or_default();
    let microchip = initial
        .as_ref()
        .and_then(|pet| pet.microchip.as_ref().map(ToString::to_string))
        .unwrap_or_default();
    let notes = initial
        .as_ref()
        .and_then(|pet| pet.notes.clone())
        .unwrap_or_default();
    view! {
        <label for="name">"Name"</label>
        <input id="name" name="name" aria-describedby=described_by(error, "name") aria-invalid=invalid(error, "name") value=name maxlength="100" required />
        <FieldError error=error field="name" />

        <label for="species">"Species"</label>
        <input id="species" name="species" aria-describedby=described_by(error, "species") aria-invalid=invalid(error, "species") value=species list="species-list" maxlength="60" required />
        <datalist id="species-list">
            {SPECIES.map(|species| view! { <option value=species></option> }).collect_view()}
        </datalist>
        <FieldError error=error field="species" />

        <label for="breed">"Breed " <span class="hint">"(optional)"</span></label>
        <input id="breed" name="breed" aria-describedby=described_by(error, "breed") aria-invalid=invalid(error, "breed") value=breed maxlength="100" />
        <FieldError error=error field="breed" />

        <label for="sex">"Sex"</label>
        <select id="sex" name="sex" aria-describedby=described_by(error, "sex") aria-invalid=invalid(error, "sex")>
            {Sex::ALL
                .map(|option| {
                    view! {
                        <option value=option.as_str() selected=option == sex>
                            {option.label()}
                        </option>
                    }
                })
                .collect_view()}
        </select>
        <FieldError error=error field="sex" />

        <label for="birth_date">"Birth date " <span class="hint">"(optional)"</span></label>
        <input id="birth_date" name="birth_date" aria-describedby=described_by(error, "birth_date") aria-invalid=invalid(error, "birth_date") type="date" value=birth_date />
        <FieldError error=error field="birth_date" />

        <label for="microchip">"Microchip number " <span class="hint">"(15 digits, optional)"</span></label>
        <input id="microchip" name="microchip" aria-describedby=described_by(error, "microchip") aria-invalid=invalid(error, "microchip") value=microchip inputmode="numeric" autocomplete="off" maxlength="19" />
        <FieldError error=error field="microchip" />

        <label for="notes">"Notes " <span class="hint">"(allergies, temperament, optional)"</span></label>
        <textarea id="notes" name="notes" aria-describedby=described_by(error, "notes") aria-invalid=invalid(error, "notes") rows="4" maxlength="5000">{notes}</textarea>
        <FieldError error=error field="notes" />
    }
}
