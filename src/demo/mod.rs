//! Demo data for trying Pawfile out: a clinic, a vet, an owner, an admin and a few pets, and (with a
//! document store) a few documents of theirs.

mod documents;

pub use documents::seed_documents;

use crate::{
    auth::{NewUser, PasswordHasher, create_user},
    domain::{ClinicId, ClinicName, DisplayName, Email, NewPassword, Role, Roles, UserId},
    error::Result,
};
use sqlx::PgPool;
use uuid::Uuid;

/// A demo account's sign-in details (also printed in the README).
#[derive(Debug, Clone, Copy)]
pub struct DemoAccount {
    /// Sign-in address.
    pub email: &'static str,
    /// Password.
    pub password: &'static str,
    /// Name shown.
    pub display_name: &'static str,
    /// What the account is for.
    pub role: &'static str,
    /// Its TOTP key (base32), for accounts that sign in with a second factor: known, so that the README
    /// and the tests can compute the codes (any authenticator app takes it too).
    pub totp_secret: Option<&'static str>,
}

/// The demo clinic's name.
pub const DEMO_CLINIC: &str = "Riverside Veterinary Clinic";

/// The demo accounts: owner, vet, admin.
pub const DEMO_ACCOUNTS: [DemoAccount; 3] = [
    DemoAccount {
        email: "owner@pawfile.test",
        password: "owner-demo-pass",
        display_name: "Olivia Owner",
        role: "pet owner",
        totp_secret: None,
    },
    DemoAccount {
        email: "vet@pawfile.test",
        password: "vet-demo-pass",
        display_name: "Dr. Victor Vet",
        role: "veterinarian at the demo clinic",
        totp_secret: Some("PAWFILEDEMOVETAAAAAAAAAAAAAAAAAA"),
    },
    DemoAccount {
        email: "admin@pawfile.test",
        password: "admin-demo-pass",
        display_name: "Ada Admin",
        role: "administrator",
        totp_secret: Some("PAWFILEDEMOADMINAAAAAAAAAAAAAAAA"),
    },
];

/// Medical records the demo vet wrote for Biscuit: visit date, kind, title, text.
const DEMO_RECORDS: [(&str, &str, &str, &str); 2] = [
    (
        "2025-03-14",
        "vaccination",
        "Annual vaccination",
        "DHPPi + L4 booster, left shoulder. No reaction observed. Next due March 2026.",
    ),
    (
        "2025-09-02",
        "consultation",
        "Itchy ears",
        "Otitis externa, right ear. Cleaned; ear drops twice daily for 10 days. Recheck if not better.",
    ),
];

/// What [`seed_demo`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedOutcome {
    /// The demo data was created.
    Seeded,
    /// The demo clinic already existed: nothing was changed.
    AlreadySeeded,
    /// `only_if_empty` was set and the database already has accounts: nothing was changed.
    NotEmpty,
}

/// Creates the demo clinic, accounts and pets. Does nothing if the demo clinic exists, or, with
/// `only_if_empty`, if any account exists.
pub async fn seed_demo(pool: &PgPool, hasher: &PasswordHasher, only_if_empty: bool) -> Result<SeedOutcome> {
    if only_if_empty
        && sqlx::query_scalar!(r#"select exists(select 1 from users) as "exists!""#)
            .fetch_one(pool)
            .await?
    {
        return Ok(SeedOutcome::NotEmpty);
    }
    let name = ClinicName::parse(DEMO_CLINIC)?;
    let clinic_id = ClinicId::new();
    let created = sqlx::query!(
        "insert into clinics (id, name) values ($1, $2) on conflict do nothing",
        clinic_id as ClinicId,
        name.as_str()
    )
    .execute(pool)
    .await?;
    if created.rows_affected() == 0 {
        return Ok(SeedOutcome::AlreadySeeded);
    }

    let mut ids = Vec::new();
    for (account, roles, clinic) in [
        (DEMO_ACCOUNTS[0], Roles::new([Role::Owner]), None),
        (DEMO_ACCOUNTS[1], Roles::new([Role::Staff]), Some(clinic_id)),
        (DEMO_ACCOUNTS[2], Roles::new([Role::Admin]), None),
    ] {
        let id = create_user(
            pool,
            hasher,
            NewUser {
                email: Email::parse(account.email)?,
                display_name: DisplayName::parse(account.display_name)?,
                password: NewPassword::parse_for(account.password, &[account.email, account.display_name])?,
                roles,
                clinic_id: clinic,
            },
        )
        .await?;
        if let Some(secret) = account.totp_secret {
            crate::auth::two_factor::set_known_secret(pool, id, secret).await?;
        }
        ids.push(id);
    }
    let owner: UserId = ids[0];
    let vet: UserId = ids[1];

    let pets = [
        (
            "Biscuit",
            "dog",
            Some("Beagle"),
            "male_neutered",
            "2019-04-12",
            Some("276098106512345"),
            true,
        ),
        (
            "Miso",
            "cat",
            Some("British Shorthair"),
            "female_neutered",
            "2021-09-03",
            None,
            true,
        ),
        ("Pepper", "rabbit", None, "female", "2023-02-20", None, false),
    ];
    for (name, species, breed, sex, birth_date, microchip, shared) in pets {
        let pet_id = Uuid::now_v7();
        let birth_date = time::Date::parse(
            birth_date,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .expect("demo dates are valid");
        sqlx::query!(
            r#"insert into pets (id, owner_id, name, species, breed, sex, birth_date, microchip, updated_by)
               values ($1, $2, $3, $4, $5, $6, $7, $8, $2)"#,
            pet_id,
            owner as UserId,
            name,
            species,
            breed,
            sex,
            birth_date,
            microchip,
        )
        .execute(pool)
        .await?;
        if shared {
            sqlx::query!(
                "insert into pet_clinic_access (pet_id, clinic_id, granted_by) values ($1, $2, $3)",
                pet_id,
                clinic_id as ClinicId,
                owner as UserId,
            )
            .execute(pool)
            .await?;
        }
        if name == "Biscuit" {
            for (visit_date, kind, title, body) in DEMO_RECORDS {
                let visit_date = time::Date::parse(
                    visit_date,
                    time::macros::format_description!("[year]-[month]-[day]"),
                )
                .expect("demo dates are valid");
                sqlx::query!(
                    r#"insert into medical_records (id, pet_id, clinic_id, author_id, visit_date, kind, title, body, updated_by)
                       values ($1, $2, $3, $4, $5, $6, $7, $8, $4)"#,
                    Uuid::now_v7(),
                    pet_id,
                    clinic_id as ClinicId,
                    vet as UserId,
                    visit_date,
                    kind,
                    title,
                    body,
                )
                .execute(pool)
                .await?;
            }
        }
    }
    tracing::info!("demo data seeded");
    Ok(SeedOutcome::Seeded)
}
