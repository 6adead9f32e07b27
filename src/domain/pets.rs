use super::{ClinicId, InvalidInput, PetId, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use std::fmt;
use time::{Date, macros::format_description};

/// A pet's sex, as clinics record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    /// Female, intact.
    Female,
    /// Male, intact.
    Male,
    /// Female, spayed.
    FemaleNeutered,
    /// Male, castrated.
    MaleNeutered,
    /// Not known.
    #[default]
    Unknown,
}

impl Sex {
    /// Every value, in form order.
    pub const ALL: [Sex; 5] = [
        Sex::Female,
        Sex::FemaleNeutered,
        Sex::Male,
        Sex::MaleNeutered,
        Sex::Unknown,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
            Sex::FemaleNeutered => "female_neutered",
            Sex::MaleNeutered => "male_neutered",
            Sex::Unknown => "unknown",
        }
    }

    /// How people read it.
    pub fn label(self) -> &'static str {
        match self {
            Sex::Female => "Female",
            Sex::Male => "Male",
            Sex::FemaleNeutered => "Female (spayed)",
            Sex::MaleNeutered => "Male (neutered)",
            Sex::Unknown => "Unknown",
        }
    }

    /// The stored name back to a value; empty means unknown.
    pub fn parse(input: &str) -> Result<Self, InvalidInput> {
        let input = input.trim();
        if input.is_empty() {
            return Ok(Sex::Unknown);
        }
        Self::ALL
            .into_iter()
            .find(|sex| sex.as_str() == input)
            .ok_or_else(|| InvalidInput::new("sex", "Choose the pet's sex from the list."))
    }
}

/// A microchip number: 15 digits (ISO 11784/11785). Spaces and dashes people type are dropped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(try_from = "String", into = "String")]
pub struct Microchip(String);

impl Microchip {
    /// Parses a microchip number.
    pub fn parse(input: &str) -> Result<Self, InvalidInput> {
        let digits: String = input.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if digits.len() == 15 && digits.chars().all(|c| c.is_ascii_digit()) {
            Ok(Self(digits))
        } else {
            Err(InvalidInput::new(
                "microchip",
                "A microchip number has exactly 15 digits (ISO 11784/11785).",
            ))
        }
    }

    /// The 15 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Microchip {
    type Error = InvalidInput;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Microchip> for String {
    fn from(value: Microchip) -> Self {
        value.0
    }
}

impl fmt::Display for Microchip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Trims `input`; empty is `None`; refuses more than `max` characters or control characters (except
/// line breaks when `multi_line`).
pub(crate) fn optional_text(
    input: &str,
    field: &'static str,
    what: &str,
    max: usize,
    multi_line: bool,
) -> Result<Option<String>, InvalidInput> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.chars().count() > max {
        return Err(InvalidInput::new(
            field,
            format!("{what} has at most {max} characters."),
        ));
    }
    let allowed = |c: char| !c.is_control() || (multi_line && matches!(c, '\n' | '\r' | '\t'));
    if !trimmed.chars().all(allowed) {
        return Err(InvalidInput::new(
            field,
            format!("{what} contains characters that are not allowed."),
        ));
    }
    Ok(Some(trimmed.to_owned()))
}

/// Like [`optional_text`], but empty is refused with `missing`.
pub(crate) fn required_text(
    input: &str,
    field: &'static str,
    what: &str,
    max: usize,
    missing: &str,
) -> Result<String, InvalidInput> {
    optional_text(input, field, what, max, false)?.ok_or_else(|| InvalidInput::new(field, missing))
}

/// Parses an ISO date (`2024-05-31`, what `<input type="date">` sends).
pub(crate) fn parse_date(input: &str, field: &'static str) -> Result<Option<Date>, InvalidInput> {
    let input = input.trim();
    if input.is_empty() {
        return Ok(None);
    }
    Date::parse(input, format_description!("[year]-[month]-[day]"))
        .map(Some)
        .map_err(|_| InvalidInput::new(field, "Enter a date as year-month-day, for example 2024-05-31."))
}

/// A pet's details as a form sends them: every field as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct PetForm {
    /// The pet's name.
    pub name: String,
    /// Dog, cat, rabbit, ...
    pub species: String,
    /// Breed (optional).
    pub breed: String,
    /// One of [`Sex::as_str`], or empty.
    pub sex: String,
    /// `YYYY-MM-DD`, or empty.
    pub birth_date: String,
    /// 15 digits, or empty.
    pub microchip: String,
    /// Free notes (optional).
    pub notes: String,
}

/// A pet's details, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct PetDetails {
    /// The pet's name: 1 to 100 characters.
    pub name: String,
    /// The species: 1 to 60 characters.
    pub species: String,
    /// The breed, up to 100 characters.
    pub breed: Option<String>,
    /// The sex.
    pub sex: Sex,
    /// The birth date; never in the future.
    pub birth_date: Option<Date>,
    /// The microchip number.
    pub microchip: Option<Microchip>,
    /// Notes, up to 5000 characters.
    pub notes: Option<String>,
}

impl PetDetails {
    /// Longest name, in characters.
    pub const NAME_MAX: usize = 100;

    /// Validates a pet form; `today` is the user's current date, for the birth date check.
    pub fn parse(form: &PetForm, today: Date) -> Result<Self, InvalidInput> {
        let birth_date = parse_date(&form.birth_date, "birth_date")?;
        if let Some(birth_date) = birth_date {
            if birth_date > today {
                return Err(InvalidInput::new(
                    "birth_date",
                    "The birth date cannot be in the future.",
                ));
            }
            if birth_date.year() < 1950 {
                return Err(InvalidInput::new(
                    "birth_date",
                    "Check the birth date: that is too long ago.",
                ));
            }
        }
        Ok(Self {
            name: required_text(
                &form.name,
                "name",
                "The name",
                Self::NAME_MAX,
                "Enter the pet's name.",
            )?,
            species: required_text(
                &form.species,
                "species",
                "The species",
                60,
                "Enter the species (dog, cat, ...).",
            )?,
            breed: optional_text(&form.breed, "breed", "The breed", 100, false)?,
            sex: Sex::parse(&form.sex)?,
            birth_date,
            microchip: match form.microchip.trim() {
                "" => None,
                chip => Some(Microchip::parse(chip)?),
            },
            notes: optional_text(&form.notes, "notes", "The notes", 5000, true)?,
        })
    }
}

/// Who a walk-in patient's owner is, as the clinic was told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct OwnerContact {
    /// Their name.
    pub name: String,
    /// Their e-mail address.
    pub email: super::Email,
}

/// A pet in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct PetSummary {
    /// The pet.
    pub id: PetId,
    /// Its name.
    pub name: String,
    /// Its species.
    pub species: String,
    /// Its breed.
    pub breed: Option<String>,
    /// Archived pets are hidden from lists unless asked for.
    pub archived: bool,
    /// The owner's name (for clinics) or the contact given at a walk-in registration.
    pub owner_name: Option<String>,
    /// The owner's e-mail, likewise.
    pub owner_email: Option<String>,
    /// Its microchip number.
    pub microchip: Option<String>,
    /// Whether an owner has taken the pet into their account.
    pub claimed: bool,
}

/// A live share of a pet with a clinic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Share {
    /// The clinic.
    pub clinic_id: ClinicId,
    /// Its name.
    pub clinic_name: String,
    /// Since when.
    pub granted_at: Timestamp,
}

/// What the caller may do with a pet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct PetPermissions {
    /// The caller owns the pet: edit, archive, share, see its access history.
    pub owner: bool,
    /// The caller works at a clinic the pet is shared with: write records.
    pub clinic: Option<ClinicId>,
}

/// Everything a pet page shows about the pet itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct PetView {
    /// The pet.
    pub id: PetId,
    /// Its owner, once claimed.
    pub owner_id: Option<UserId>,
    /// The owner's name (or the walk-in contact's).
    pub owner_name: Option<String>,
    /// The owner's e-mail (or the walk-in contact's).
    pub owner_email: Option<String>,
    /// Its details.
    pub details: PetDetails,
    /// When it was archived, if it is.
    pub archived_at: Option<Timestamp>,
    /// Clinics it is shared with now.
    pub shares: Vec<Share>,
    /// What the caller may do.
    pub permissions: PetPermissions,
    /// For clinic staff: whether an unused claim code exists, and until when.
    pub claim_code_expires: Option<Timestamp>,
}

/// A claim code as handed to an owner: shown once, stored only as a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct IssuedClaimCode {
    /// The pet it claims.
    pub pet_id: PetId,
    /// The code, `XXXX-XXXX-XXXX`.
    pub code: String,
    /// When it stops working.
    pub expires_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn form() -> PetForm {
        PetForm {
            name: " Biscuit ".into(),
            species: "dog".into(),
            breed: "".into(),
            sex: "male_neutered".into(),
            birth_date: "2019-04-12".into(),
            microchip: "276 098 106 512 345".into(),
            notes: "Allergic to chicken.\nGood boy.".into(),
        }
    }

    #[test]
    fn a_complete_form_parses() {
        let pet = PetDetails::parse(&form(), date!(2026 - 11 - 28)).unwrap();
        assert_eq!(pet.name, "Biscuit");
        assert_eq!(pet.breed, None);
        assert_eq!(pet.sex, Sex::MaleNeutered);
        assert_eq!(pet.microchip.unwrap().as_str(), "276098106512345");
        assert_eq!(pet.birth_date, Some(date!(2019 - 04 - 12)));
        assert!(pet.notes.unwrap().contains('\n'));
    }

    #[test]
    fn each_bad_field_is_named() {
        let today = date!(2026 - 11 - 28);
        type Case = (fn(&mut PetForm), &'static str, &'static str);
        let cases: [Case; 8] = [
            (|f| f.name = "  ".into(), "name", "Enter the pet's name."),
            (|f| f.name = "x".repeat(101), "name", "at most 100"),
            (|f| f.species = "".into(), "species", "Enter the species"),
            (
                |f| f.birth_date = "2026-11-29".into(),
                "birth_date",
                "cannot be in the future",
            ),
            (
                |f| f.birth_date = "29/11/2020".into(),
                "birth_date",
                "year-month-day",
            ),
            (|f| f.microchip = "12345".into(), "microchip", "exactly 15 digits"),
            (
                |f| f.microchip = "27609810651234X".into(),
                "microchip",
                "exactly 15 digits",
            ),
            (|f| f.sex = "dragon".into(), "sex", "from the list"),
        ];
        for (break_it, field, message) in cases {
            let mut form = form();
            break_it(&mut form);
            let err = PetDetails::parse(&form, today).unwrap_err();
            assert_eq!(err.field, field, "{form:?}");
            assert!(err.message.contains(message), "{}", err.message);
        }
    }

    #[test]
    fn todays_birth_is_allowed() {
        let mut form = form();
        form.birth_date = "2026-11-28".into();
        assert!(PetDetails::parse(&form, date!(2026 - 11 - 28)).is_ok());
    }

    #[test]
    fn empty_sex_means_unknown() {
        assert_eq!(Sex::parse("").unwrap(), Sex::Unknown);
        for sex in Sex::ALL {
            assert_eq!(Sex::parse(sex.as_str()).unwrap(), sex);
        }
    }
}
