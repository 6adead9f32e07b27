//! What each role's start page shows, fetched in one call: an owner's pets, a staff member's desk, the
//! system at a glance for admins. A person with several roles gets each part that applies.

use super::{
    AuditEntry, BackupOverview, ClinicId, DocumentId, PetId, RecordId, RecordKind, StorageReport, Timestamp,
};
use serde::{Deserialize, Serialize};
use time::Date;

/// The start page of a signed-in person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Home {
    /// Their pets, if they are an owner.
    pub owner: Option<Vec<PetCard>>,
    /// Their clinic's desk, if they are staff.
    pub staff: Option<StaffDesk>,
    /// The system at a glance, if they are an administrator.
    pub admin: Option<SystemGlance>,
}

/// One of an owner's pets, as a card on their start page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct PetCard {
    /// The pet.
    pub id: PetId,
    /// Its name.
    pub name: String,
    /// Its species.
    pub species: String,
    /// Its breed.
    pub breed: Option<String>,
    /// Its age in words (`3 years`, `5 months`), when the birth date is known.
    pub age: Option<String>,
    /// The date of its newest medical record.
    pub last_visit: Option<Date>,
    /// Its documents (not counting the trash).
    pub documents: i64,
    /// Its medical records.
    pub records: i64,
    /// The photo shown on the card: the one the owner picked, else the newest photo they uploaded.
    pub photo: Option<DocumentId>,
    /// The clinics it is shared with, by name.
    pub clinics: Vec<String>,
}

/// What a staff member sees first: the patients they opened lately and what their clinic wrote this week.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct StaffDesk {
    /// Their clinic.
    pub clinic_id: ClinicId,
    /// Its name.
    pub clinic_name: String,
    /// Patients this person opened, most recent first (those still shared with the clinic).
    pub recent_patients: Vec<RecentPatient>,
    /// Records the clinic wrote in the last 7 days, newest first.
    pub this_week: Vec<ClinicRecord>,
}

/// A patient a staff member opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct RecentPatient {
    /// The pet.
    pub id: PetId,
    /// Its name.
    pub name: String,
    /// Its species.
    pub species: String,
    /// The owner's name, or the contact a walk-in registration gave.
    pub owner_name: Option<String>,
    /// When this person last opened it.
    pub opened_at: Timestamp,
}

/// A record a clinic wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ClinicRecord {
    /// The record.
    pub id: RecordId,
    /// Its pet.
    pub pet_id: PetId,
    /// The pet's name.
    pub pet_name: String,
    /// The visit date.
    pub visit_date: Date,
    /// What kind.
    pub kind: RecordKind,
    /// Its title.
    pub title: String,
    /// Who wrote it.
    pub author: String,
}

/// The state of the system for administrators: counts, storage, backups, problems, the latest events.
/// Nothing medical: no pet names, record titles or file names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct SystemGlance {
    /// Active accounts with the owner role.
    pub owners: i64,
    /// Active accounts with the staff role.
    pub staff: i64,
    /// Active accounts with the admin role.
    pub admins: i64,
    /// Disabled accounts.
    pub disabled: i64,
    /// Clinics.
    pub clinics: i64,
    /// Documents stored (the trash included).
    pub documents: i64,
    /// Their size in bytes.
    pub stored_bytes: i64,
    /// Documents the integrity check flagged.
    pub integrity_problems: i64,
    /// The latest audit events.
    pub latest_events: Vec<AuditEntry>,
    /// Whether both stores answer (filled in by the server, which holds them).
    pub storage: Option<StorageReport>,
    /// The backup banner, schedule and set-up warnings (filled in by the server).
    pub backups: Option<BackupOverview>,
}

/// A pet's age on `today` in words: `2 weeks`, `5 months`, `1 year`, `3 years`; `None` for a birth date
/// after `today`.
pub fn age_label(birth: Date, today: Date) -> Option<String> {
    if birth > today {
        return None;
    }
    let mut months = (today.year() - birth.year()) * 12
        + (i32::from(u8::from(today.month())) - i32::from(u8::from(birth.month())));
    if today.day() < birth.day() {
        months -= 1;
    }
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    Some(if months >= 24 {
        plural(i64::from(months / 12), "year")
    } else if months >= 12 {
        if months == 12 {
            plural(1, "year")
        } else {
            format!("1 year, {}", plural(i64::from(months - 12), "month"))
        }
    } else if months >= 1 {
        plural(i64::from(months), "month")
    } else {
        let days = (today - birth).whole_days();
        if days >= 7 {
            plural(days / 7, "week")
        } else {
            plural(days, "day")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::age_label;
    use time::macros::date;

    #[test]
    fn ages_read_as_people_say_them() {
        let today = date!(2026 - 11 - 30);
        assert_eq!(age_label(date!(2026 - 11 - 30), today).as_deref(), Some("0 days"));
        assert_eq!(age_label(date!(2026 - 11 - 29), today).as_deref(), Some("1 day"));
        assert_eq!(
            age_label(date!(2026 - 11 - 16), today).as_deref(),
            Some("2 weeks")
        );
        // A month is complete on the same day of the month.
        assert_eq!(
            age_label(date!(2026 - 10 - 31), today).as_deref(),
            Some("4 weeks")
        );
        assert_eq!(
            age_label(date!(2026 - 10 - 30), today).as_deref(),
            Some("1 month")
        );
        assert_eq!(
            age_label(date!(2026 - 06 - 01), today).as_deref(),
            Some("5 months")
        );
        assert_eq!(age_label(date!(2025 - 11 - 30), today).as_deref(), Some("1 year"));
        assert_eq!(
            age_label(date!(2025 - 08 - 15), today).as_deref(),
            Some("1 year, 3 months")
        );
        assert_eq!(
            age_label(date!(2024 - 12 - 01), today).as_deref(),
            Some("1 year, 11 months")
        );
        assert_eq!(
            age_label(date!(2024 - 11 - 30), today).as_deref(),
            Some("2 years")
        );
        assert_eq!(
            age_label(date!(2016 - 02 - 29), today).as_deref(),
            Some("10 years")
        );
        assert_eq!(age_label(date!(2026 - 12 - 01), today), None);
    }
}
