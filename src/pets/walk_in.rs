//! Walk-in patients: a clinic registers a pet for an owner who has no account yet, and the owner takes
//! it into their account with a one-time claim code (`crate::claim` makes and hashes the codes).

use crate::{
    access::{Actor, Need, require_pet},
    audit::{self, Action},
    claim,
    clock::localize,
    domain::{
        ClinicId, Email, InvalidInput, IssuedClaimCode, Microchip, OwnerContact, PetDetails, PetId, Role,
        UserId,
    },
    error::{Error, Result},
    rate_limit,
};
use sqlx::PgPool;
use std::time::Duration;

/// How long a claim code works.
pub const CLAIM_CODE_VALIDITY: Duration = Duration::from_secs(30 * 24 * 60 * 60);

async fn store_claim_code(tx: &mut sqlx::PgConnection, actor: &Actor, pet: PetId) -> Result<IssuedClaimCode> {
    sqlx::query!(
        "update pet_claim_codes set replaced_at = now() where pet_id = $1 and used_at is null and replaced_at is null",
        pet as PetId
    )
    .execute(&mut *tx)
    .await?;
    let code = claim::generate();
    let canonical = claim::normalise(&code).expect("generated codes are valid");
    let expires_at = sqlx::query_scalar!(
        r#"insert into pet_claim_codes (code_hash, pet_id, created_by, expires_at)
           values ($1, $2, $3, now() + make_interval(secs => $4::float8))
           returning expires_at"#,
        claim::hash(&canonical),
        pet as PetId,
        actor.user.id as UserId,
        CLAIM_CODE_VALIDITY.as_secs_f64(),
    )
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        actor.event(Action::IssueClaimCode).target("pet", pet.0).pet(pet),
    )
    .await?;
    let expires = localize(expires_at, actor.zone());
    // The owner the clinic knows of gets the code by mail too (sent after the commit).
    let contact = sqlx::query!(
        "select name, owner_name, owner_email from pets where id = $1",
        pet as PetId
    )
    .fetch_one(&mut *tx)
    .await?;
    if let Some(email) = contact
        .owner_email
        .as_deref()
        .and_then(|email| Email::parse(email).ok())
    {
        let mail = crate::mail::Mail::ClaimCode {
            name: contact.owner_name.unwrap_or_default(),
            pet: contact.name,
            clinic: actor.user.clinic_name.clone().unwrap_or_default(),
            code: code.clone(),
            expires: expires.local.clone(),
        };
        crate::mail::enqueue(&mut *tx, &email, &mail).await?;
    }
    Ok(IssuedClaimCode {
        pet_id: pet,
        code,
        expires_at: expires,
    })
}

/// Registers a walk-in patient: the pet is shared with the actor's clinic at once, and the owner gets a
/// one-time claim code to take it into their account.
#[tracing::instrument(skip_all, fields(actor = %actor.user.id))]
pub async fn register_walk_in(
    pool: &PgPool,
    actor: &Actor,
    details: &PetDetails,
    owner: &OwnerContact,
) -> Result<IssuedClaimCode> {
    actor.require_role(pool, Role::Staff).await?;
    let clinic = actor.clinic().ok_or(Error::NotFound)?;
    let id = PetId::new();
    let mut tx = pool.begin().await?;
    sqlx::query!(
        r#"insert into pets (id, name, species, breed, sex, birth_date, microchip, notes, owner_name, owner_email,
                             registered_by_clinic, updated_by)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"#,
        id as PetId,
        details.name,
        details.species,
        details.breed,
        details.sex.as_str(),
        details.birth_date,
        details.microchip.as_ref().map(Microchip::as_str),
        details.notes,
        owner.name,
        owner.email.as_str(),
        clinic as ClinicId,
        actor.user.id as UserId,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "insert into pet_clinic_access (pet_id, clinic_id, granted_by) values ($1, $2, $3)",
        id as PetId,
        clinic as ClinicId,
        actor.user.id as UserId,
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        actor.event(Action::RegisterWalkIn).target("pet", id.0).pet(id),
    )
    .await?;
    let issued = store_claim_code(&mut tx, actor, id).await?;
    tx.commit().await?;
    Ok(issued)
}

/// A new claim code for a walk-in patient nobody has claimed yet (the old one stops working).
#[tracing::instrument(skip_all, fields(pet = %pet, actor = %actor.user.id))]
pub async fn reissue_claim_code(pool: &PgPool, actor: &Actor, pet: PetId) -> Result<IssuedClaimCode> {
    require_pet(pool, actor, pet, Need::WriteRecords).await?;
    let mut tx = pool.begin().await?;
    let owner = sqlx::query_scalar!(
        r#"select owner_id as "owner_id: UserId" from pets where id = $1 for update"#,
        pet as PetId
    )
    .fetch_one(&mut *tx)
    .await?;
    if owner.is_some() {
        return Err(Error::Conflict(
            "This pet already belongs to an owner's account.".to_owned(),
        ));
    }
    let issued = store_claim_code(&mut tx, actor, pet).await?;
    tx.commit().await?;
    Ok(issued)
}

/// What an unusable claim code is told (unknown, used, replaced or expired alike).
pub const INVALID_CODE: &str = "This claim code is not valid. Check it, or ask the clinic for a new one.";

/// Whether the code `canonical` would take its pet now (live, not replaced, pet unclaimed). Nothing is
/// marked: a sign-up checks its code before the address is confirmed, and claims it only then.
pub async fn claim_code_is_live(pool: &PgPool, canonical: &str) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"
        select exists (
            select from pet_claim_codes c join pets p on p.id = c.pet_id
            where c.code_hash = $1 and c.used_at is null and c.replaced_at is null and c.expires_at > now()
              and p.owner_id is null) as "live!"
        "#,
        claim::hash(canonical),
    )
    .fetch_one(pool)
    .await?)
}

/// Marks the code `canonical` used by `owner` and gives them its pet, if the code is live and the pet
/// unclaimed. `None` otherwise.
#[tracing::instrument(skip_all, fields(owner = %owner))]
pub async fn claim_in_transaction(
    tx: &mut sqlx::PgConnection,
    owner: UserId,
    canonical: &str,
) -> Result<Option<PetId>> {
    let pet = sqlx::query_scalar!(
        r#"
        update pet_claim_codes c set used_at = now(), used_by = $2
        from pets p
        where c.code_hash = $1 and p.id = c.pet_id
          and c.used_at is null and c.replaced_at is null and c.expires_at > now() and p.owner_id is null
        returning c.pet_id as "pet_id: PetId"
        "#,
        claim::hash(canonical),
        owner as UserId,
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(pet) = pet {
        sqlx::query!(
            "update pets set owner_id = $2, updated_at = now(), updated_by = $2 where id = $1 and owner_id is null",
            pet as PetId,
            owner as UserId,
        )
        .execute(&mut *tx)
        .await?;
    }
    Ok(pet)
}

/// Takes the walk-in patient a claim code belongs to into the actor's account. A code works once, only
/// for its pet, and only until it expires or a newer one is issued.
#[tracing::instrument(skip_all, fields(actor = %actor.user.id))]
pub async fn claim_pet(
    pool: &PgPool,
    limits: &rate_limit::AccountLimits,
    actor: &Actor,
    code: &str,
) -> Result<PetId> {
    actor.require_role(pool, Role::Owner).await?;
    let limit_key = rate_limit::Key::Claim(actor.user.id);
    // Taken before trying the code, so parallel guesses cannot slip under the limit; a hit is given back.
    rate_limit::take(pool, &limit_key, limits.claim_attempts_per_user).await?;
    let Some(canonical) = claim::normalise(code) else {
        return Err(InvalidInput::new(
            "code",
            "A claim code has 12 letters and digits, like ABCD-EFGH-JKMN.",
        )
        .into());
    };
    let mut tx = pool.begin().await?;
    let Some(pet) = claim_in_transaction(&mut tx, actor.user.id, &canonical).await? else {
        drop(tx);
        audit::record(pool, actor.event(Action::ClaimFailed)).await?;
        return Err(InvalidInput::new("code", INVALID_CODE).into());
    };
    audit::record(
        &mut *tx,
        actor.event(Action::ClaimPet).target("pet", pet.0).pet(pet),
    )
    .await?;
    tx.commit().await?;
    rate_limit::give_back(pool, &limit_key, limits.claim_attempts_per_user).await?;
    Ok(pet)
}

/// Parses what a clinic typed about a walk-in patient's owner.
pub fn parse_owner_contact(name: &str, email: &str) -> std::result::Result<OwnerContact, InvalidInput> {
    let name = crate::domain::DisplayName::parse(name)
        .map_err(|err| InvalidInput::new("owner_name", err.message))?;
    let email = Email::parse(email).map_err(|err| InvalidInput::new("owner_email", err.message))?;
    Ok(OwnerContact {
        name: name.to_string(),
        email,
    })
}
