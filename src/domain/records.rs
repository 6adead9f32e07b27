use super::{
    ClinicId, InvalidInput, PetId, RecordId, Timestamp,
    pets::{optional_text, parse_date, required_text},
};
use serde::{Deserialize, Serialize};
use time::{Date, Duration};

/// What kind of medical record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// An examination or consultation.
    Consultation,
    /// A vaccination.
    Vaccination,
    /// Laboratory results.
    LabResult,
    /// A surgery.
    Surgery,
    /// A prescription.
    Prescription,
    /// X-ray, ultrasound, CT, MRI.
    Imaging,
    /// Anything else.
    Other,
}

impl RecordKind {
    /// Every kind, in form order.
    pub const ALL: [RecordKind; 7] = [
        RecordKind::Consultation,
        RecordKind::Vaccination,
        RecordKind::LabResult,
        RecordKind::Surgery,
        RecordKind::Prescription,
        RecordKind::Imaging,
        RecordKind::Other,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Consultation => "consultation",
            RecordKind::Vaccination => "vaccination",
            RecordKind::LabResult => "lab_result",
            RecordKind::Surgery => "surgery",
            RecordKind::Prescription => "prescription",
            RecordKind::Imaging => "imaging",
            RecordKind::Other => "other",
        }
    }

    /// How people read it.
    pub fn label(self) -> &'static str {
        match self {
            RecordKind::Consultation => "Consultation",
            RecordKind::Vaccination => "Vaccination",
            RecordKind::LabResult => "Lab result",
            RecordKind::Surgery => "Surgery",
            RecordKind::Prescription => "Prescription",
            RecordKind::Imaging => "Imaging",
            RecordKind::Other => "Other",
        }
    }

    /// The stored name back to a kind.
    pub fn parse(input: &str) -> Result<Self, InvalidInput> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == input.trim())
            .ok_or_else(|| InvalidInput::new("kind", "Choose the kind of record from the list."))
    }
}

/// A record form as sent: every field as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct RecordForm {
    /// `YYYY-MM-DD`.
    pub visit_date: String,
    /// One of [`RecordKind::as_str`].
    pub kind: String,
    /// A short title.
    pub title: String,
    /// The text.
    pub body: String,
}

/// A record's content, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct RecordDetails {
    /// The day of the visit: not before 1950, at most a day ahead (time zones).
    pub visit_date: Date,
    /// The kind.
    pub kind: RecordKind,
    /// 1 to 200 characters.
    pub title: String,
    /// Up to 20,000 characters.
    pub body: String,
}

impl RecordDetails {
    /// Longest body, in characters.
    pub const BODY_MAX: usize = 20_000;

    /// Validates a record form; `today` is the author's current date.
    pub fn parse(form: &RecordForm, today: Date) -> Result<Self, InvalidInput> {
        let visit_date = parse_date(&form.visit_date, "visit_date")?
            .ok_or_else(|| InvalidInput::new("visit_date", "Enter the date of the visit."))?;
        if visit_date > today + Duration::days(1) {
            return Err(InvalidInput::new(
                "visit_date",
                "The visit date cannot be in the future.",
            ));
        }
        if visit_date.year() < 1950 {
            return Err(InvalidInput::new(
                "visit_date",
                "Check the visit date: that is too long ago.",
            ));
        }
        Ok(Self {
            visit_date,
            kind: RecordKind::parse(&form.kind)?,
            title: required_text(&form.title, "title", "The title", 200, "Enter a title.")?,
            body: optional_text(&form.body, "body", "The text", Self::BODY_MAX, true)?.unwrap_or_default(),
        })
    }
}

/// A record in a pet's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct RecordSummary {
    /// The record.
    pub id: RecordId,
    /// When the visit was.
    pub visit_date: Date,
    /// What kind.
    pub kind: RecordKind,
    /// Its title.
    pub title: String,
    /// The clinic that wrote it.
    pub clinic_name: String,
    /// How many times it was edited.
    pub revisions: i32,
}

/// A record a search found, with the passage that matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct RecordHit {
    /// The record.
    pub id: RecordId,
    /// Its pet.
    pub pet_id: PetId,
    /// The pet's name.
    pub pet_name: String,
    /// When the visit was.
    pub visit_date: Date,
    /// What kind.
    pub kind: RecordKind,
    /// Its title.
    pub title: String,
    /// The clinic that wrote it.
    pub clinic_name: String,
    /// The passage around the matching words, in order; the parts marked `hit` are the words that matched
    /// (shown highlighted, always as text).
    pub passage: Vec<Highlight>,
}

/// A part of a passage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Highlight {
    /// The text.
    pub text: String,
    /// Whether it is a word the search matched.
    pub hit: bool,
}

impl Highlight {
    /// Splits text whose matching words sit between `start` and `stop` markers into parts.
    pub fn split(marked: &str, start: char, stop: char) -> Vec<Highlight> {
        let mut parts = Vec::new();
        let mut rest = marked;
        while let Some(begin) = rest.find(start) {
            if begin > 0 {
                parts.push(Highlight {
                    text: rest[..begin].to_owned(),
                    hit: false,
                });
            }
            let after = &rest[begin + start.len_utf8()..];
            let end = after.find(stop).unwrap_or(after.len());
            if end > 0 {
                parts.push(Highlight {
                    text: after[..end].to_owned(),
                    hit: true,
                });
            }
            rest = after.get(end + stop.len_utf8()..).unwrap_or("");
        }
        if !rest.is_empty() {
            parts.push(Highlight {
                text: rest.to_owned(),
                hit: false,
            });
        }
        parts
    }
}

/// An earlier version of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct RecordRevision {
    /// Its version number (1 is the first).
    pub version: i32,
    /// The content then.
    pub details: RecordDetails,
    /// Who wrote this version.
    pub edited_by: String,
    /// When.
    pub edited_at: Timestamp,
}

/// A record page: the current text and every earlier version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct RecordView {
    /// The record.
    pub id: RecordId,
    /// Its pet.
    pub pet_id: PetId,
    /// The pet's name.
    pub pet_name: String,
    /// The clinic that owns the record.
    pub clinic_id: ClinicId,
    /// Its name.
    pub clinic_name: String,
    /// The current content.
    pub details: RecordDetails,
    /// The current version number; an edit must name it.
    pub version: i32,
    /// Who created the record.
    pub author: String,
    /// When.
    pub created_at: Timestamp,
    /// Who wrote the current version.
    pub updated_by: String,
    /// When.
    pub updated_at: Timestamp,
    /// Earlier versions, newest first.
    pub revisions: Vec<RecordRevision>,
    /// Whether the caller may edit it (staff of its clinic, while the pet is shared with it).
    pub can_edit: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn form() -> RecordForm {
        RecordForm {
            visit_date: "2026-11-20".into(),
            kind: "vaccination".into(),
            title: "Rabies booster".into(),
            body: "Nobivac Rabies, left shoulder.\nNext due 2027-11.".into(),
        }
    }

    #[test]
    fn a_complete_record_parses() {
        let record = RecordDetails::parse(&form(), date!(2026 - 11 - 28)).unwrap();
        assert_eq!(record.kind, RecordKind::Vaccination);
        assert_eq!(record.visit_date, date!(2026 - 11 - 20));
    }

    #[test]
    fn bad_fields_are_named() {
        let today = date!(2026 - 11 - 28);
        type Case = (fn(&mut RecordForm), &'static str, &'static str);
        let cases: [Case; 6] = [
            (|f| f.visit_date = "".into(), "visit_date", "Enter the date"),
            (
                |f| f.visit_date = "2027-01-01".into(),
                "visit_date",
                "cannot be in the future",
            ),
            (
                |f| f.visit_date = "1900-01-01".into(),
                "visit_date",
                "too long ago",
            ),
            (|f| f.kind = "haircut".into(), "kind", "from the list"),
            (|f| f.title = " ".into(), "title", "Enter a title"),
            (|f| f.body = "x".repeat(20_001), "body", "at most 20000"),
        ];
        for (break_it, field, message) in cases {
            let mut form = form();
            break_it(&mut form);
            let err = RecordDetails::parse(&form, today).unwrap_err();
            assert_eq!(err.field, field);
            assert!(err.message.contains(message), "{}", err.message);
        }
    }

    #[test]
    fn tomorrow_is_tolerated_for_time_zones() {
        let mut form = form();
        form.visit_date = "2026-11-29".into();
        assert!(RecordDetails::parse(&form, date!(2026 - 11 - 28)).is_ok());
    }

    #[test]
    fn kinds_round_trip() {
        for kind in RecordKind::ALL {
            assert_eq!(RecordKind::parse(kind.as_str()).unwrap(), kind);
        }
    }
}
