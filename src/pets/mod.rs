//! Pets: owners add, edit, archive and share them; clinics register walk-in patients and find the pets
//! shared with them; owners claim walk-ins with a one-time code.

mod walk_in;

pub use walk_in::{
    CLAIM_CODE_VALIDITY, INVALID_CODE, claim_code_is_live, claim_in_transaction, claim_pet,
    parse_owner_contact, register_walk_in, reissue_claim_code,
};

use crate::{
    access::{Actor, Need, require_pet},
    audit::{self, Action},
    clock::localize,
    domain::{
        AuditEntry, ClinicId, ClinicSummary, InvalidInput, Microchip, PetDetails, PetId, PetSummary, PetView,
        RecordSummary, Role, Sex, Share, UserId,
    },
    error::{Error, Result},
};
use sqlx::PgPool;

/// Adds a pet to the actor's own pets.
#[tracing::instrument(skip_all, fields(actor = %actor.user.id))]
pub async fn create_pet(pool: &PgPool, actor: &Actor, details: &PetDetails) -> Result<PetId> {
    actor.require_role(pool, Role::Owner).await?;
    let id = PetId::new();
    let mut tx = pool.begin().await?;
    sqlx::query!(
        r#"insert into pets (id, owner_id, name, species, breed, sex, birth_date, microchip, notes, updated_by)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $2)"#,
        id as PetId,
        actor.user.id as UserId,
        details.name,
        details.species,
        details.breed,
        details.sex.as_str(),
        details.birth_date,
        details.microchip.as_ref().map(Microchip::as_str),
        details.notes,
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        actor.event(Action::CreatePet).target("pet", id.0).pet(id),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Changes a pet's details (its owner only).
#[tracing::instrument(skip_all, fields(pet = %pet, actor = %actor.user.id))]
pub async fn update_pet(pool: &PgPool, actor: &Actor, pet: PetId, details: &PetDetails) -> Result<()> {
    require_pet(pool, actor, pet, Need::Own).await?;
    let mut tx = pool.begin().await?;
    sqlx::query!(
        r#"update pets set name = $2, species = $3, breed = $4, sex = $5, birth_date = $6, microchip = $7,
                  notes = $8, updated_at = now(), updated_by = $9
           where id = $1"#,
        pet as PetId,
        details.name,
        details.species,
        details.breed,
        details.sex.as_str(),
        details.birth_date,
        details.microchip.as_ref().map(Microchip::as_str),
        details.notes,
        actor.user.id as UserId,
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        actor.event(Action::UpdatePet).target("pet", pet.0).pet(pet),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Archives a pet (hidden from lists, history kept) or restores it (its owner only).
#[tracing::instrument(skip_all, fields(pet = %pet, actor = %actor.user.id, archived = archived))]
pub async fn set_archived(pool: &PgPool, actor: &Actor, pet: PetId, archived: bool) -> Result<()> {
    require_pet(pool, actor, pet, Need::Own).await?;
    let mut tx = pool.begin().await?;
    sqlx::query!(
        r#"update pets set archived_at = case when $2 then coalesce(archived_at, now()) end,
                  updated_at = now(), updated_by = $3
           where id = $1"#,
        pet as PetId,
        archived,
        actor.user.id as UserId,
    )
    .execute(&mut *tx)
    .await?;
    let action = if archived {
        Action::ArchivePet
    } else {
        Action::RestorePet
    };
    audit::record(&mut *tx, actor.event(action).target("pet", pet.0).pet(pet)).await?;
    tx.commit().await?;
    Ok(())
}

/// The actor's own pets, archived ones too if asked.
#[tracing::instrument(skip_all, fields(actor = %actor.user.id, include_archived = include_archived))]
pub async fn list_own_pets(pool: &PgPool, actor: &Actor, include_archived: bool) -> Result<Vec<PetSummary>> {
    let rows = sqlx::query!(
        r#"select id as "id: PetId", name, species, breed, microchip, archived_at is not null as "archived!"
           from pets
           where owner_id = $1 and ($2 or archived_at is null)
           order by archived_at is not null, lower(name), id"#,
        actor.user.id as UserId,
        include_archived,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| PetSummary {
            id: row.id,
            name: row.name,
            species: row.species,
            breed: row.breed,
            archived: row.archived,
            owner_name: Some(actor.user.display_name.clone()),
            owner_email: Some(actor.user.email.to_string()),
            microchip: row.microchip,
            claimed: true,
        })
        .collect())
}

/// A row of [`search_patients`].
struct PatientRow {
    id: PetId,
    name: String,
    species: String,
    breed: Option<String>,
    microchip: Option<String>,
    claimed: bool,
    owner_name: Option<String>,
    owner_email: Option<String>,
}

/// The pets currently shared with the actor's clinic, optionally filtered by pet name, owner name or
/// e-mail, or microchip number. Archived pets are left out.
#[tracing::instrument(skip_all, fields(actor = %actor.user.id))]
pub async fn search_patients(pool: &PgPool, actor: &Actor, query: &str) -> Result<Vec<PetSummary>> {
    actor.require_role(pool, Role::Staff).await?;
    let clinic = actor.clinic().ok_or(Error::NotFound)?;
    let query = query.trim();
    let pattern = crate::db::contains_pattern(query);
    // A query of digits (spaces and dashes allowed) is also a microchip prefix; names never are.
    let chip: String = if query
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-'))
    {
        query.chars().filter(char::is_ascii_digit).collect()
    } else {
        String::new()
    };
    // Without a query, the clinic's first patients by name. With one, each way a pet can match is asked
    // on its own (each finds its few pets through an index: trigrams for text anywhere, the microchip
    // index for a prefix of its fixed 15 digits), and only those pets are joined to the clinic's shares.
    let rows = if query.is_empty() {
        sqlx::query_as!(
            PatientRow,
            r#"
            select p.id as "id: PetId", p.name, p.species, p.breed, p.microchip, p.owner_id is not null as "claimed!",
                   coalesce(u.display_name, p.owner_name) as owner_name, coalesce(u.email, p.owner_email) as owner_email
            from pet_clinic_access a
            join pets p on p.id = a.pet_id
            left join users u on u.id = p.owner_id
            where a.clinic_id = $1 and a.revoked_at is null and p.archived_at is null
            order by lower(p.name), p.id
            limit 200
            "#,
            clinic as ClinicId,
        )
        .fetch_all(pool)
        .await?
    } else {
        sqlx::query_as!(
            PatientRow,
            r#"
            with found as (
                select p.id from pets p where p.name ilike $2
                union
                select p.id from pets p where p.owner_id is null and (p.owner_name ilike $2 or p.owner_email ilike $2)
                union
                select p.id from users u join pets p on p.owner_id = u.id
                where u.display_name ilike $2 or u.email ilike $2
                union
                select p.id from pets p
                where length($3) between 1 and 15 and p.microchip between rpad($3, 15, '0') and rpad($3, 15, '9')
            )
            select p.id as "id: PetId", p.name, p.species, p.breed, p.microchip, p.owner_id is not null as "claimed!",
                   coalesce(u.display_name, p.owner_name) as owner_name, coalesce(u.email, p.owner_email) as owner_email
            from found f
            join pets p on p.id = f.id
            join pet_clinic_access a on a.pet_id = p.id and a.clinic_id = $1 and a.revoked_at is null
            left join users u on u.id = p.owner_id
            where p.archived_at is null
            order by lower(p.name), p.id
            limit 200
            "#,
            clinic as ClinicId,
            pattern,
            chip,
        )
        .fetch_all(pool)
        .await?
    };
    Ok(rows
        .into_iter()
        .map(|row: PatientRow| PetSummary {
            id: row.id,
            name: row.name,
            species: row.species,
            breed: row.breed,
            archived: false,
            owner_name: row.owner_name,
            owner_email: row.owner_email,
            microchip: row.microchip,
            claimed: row.claimed,
        })
        .collect())
}

/// A pet page: details, shares and what the actor may do. Audited as a view (once per 10 minutes).
#[tracing::instrument(skip_all, fields(pet = %pet, actor = %actor.user.id))]
pub async fn view_pet(pool: &PgPool, actor: &Actor, pet: PetId) -> Result<PetView> {
    let permissions = require_pet(pool, actor, pet, Need::Read).await?;
    let view = view_pet_unaudited(pool, actor, pet, permissions).await?;
    audit::record_view(pool, actor.event(Action::ViewPet).target("pet", pet.0).pet(pet)).await?;
    Ok(view)
}

/// A pet page: [`view_pet`] and at most `limit` of the pet's records (`None`: all), newest visit first,
/// with access checked once for both.
#[tracing::instrument(skip_all, fields(pet = %pet, actor = %actor.user.id))]
pub async fn view_pet_page(
    pool: &PgPool,
    actor: &Actor,
    pet: PetId,
    limit: Option<u32>,
) -> Result<(PetView, Vec<RecordSummary>)> {
    let permissions = require_pet(pool, actor, pet, Need::Read).await?;
    let view = view_pet_unaudited(pool, actor, pet, permissions).await?;
    let records = crate::records::records_of(pool, pet, limit).await?;
    audit::record_view(pool, actor.event(Action::ViewPet).target("pet", pet.0).pet(pet)).await?;
    Ok((view, records))
}

/// [`view_pet`] for a caller whose access was already checked, without the audit entry.
#[tracing::instrument(skip_all, fields(pet = %pet, actor = %actor.user.id))]
pub(crate) async fn view_pet_unaudited(
    pool: &PgPool,
    actor: &Actor,
    pet: PetId,
    permissions: crate::domain::PetPermissions,
) -> Result<PetView> {
    let row = sqlx::query!(
        r#"
        select p.owner_id as "owner_id: UserId", p.name, p.species, p.breed, p.sex, p.birth_date, p.microchip,
               p.notes, p.archived_at,
               coalesce(u.display_name, p.owner_name) as owner_name, coalesce(u.email, p.owner_email) as owner_email
        from pets p
        left join users u on u.id = p.owner_id
        where p.id = $1
        "#,
        pet as PetId
    )
    .fetch_one(pool)
    .await?;
    let shares = sqlx::query!(
        r#"select a.clinic_id as "clinic_id: ClinicId", c.name, a.granted_at
           from pet_clinic_access a join clinics c on c.id = a.clinic_id
           where a.pet_id = $1 and a.revoked_at is null
           order by lower(c.name)"#,
        pet as PetId
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|share| Share {
        clinic_id: share.clinic_id,
        clinic_name: share.name,
        granted_at: localize(share.granted_at, actor.zone()),
    })
    .collect();
    let claim_code_expires = match (permissions.clinic, row.owner_id) {
        (Some(_), None) => sqlx::query_scalar!(
            r#"select max(expires_at) as "expires_at" from pet_claim_codes
               where pet_id = $1 and used_at is null and replaced_at is null and expires_at > now()"#,
            pet as PetId
        )
        .fetch_one(pool)
        .await?
        .map(|at| localize(at, actor.zone())),
        _ => None,
    };
    Ok(PetView {
        id: pet,
        owner_id: row.owner_id,
        owner_name: row.owner_name,
        owner_email: row.owner_email,
        details: PetDetails {
            name: row.name,
            species: row.species,
            breed: row.breed,
            sex: row
                .sex
                .as_deref()
                .and_then(|sex| Sex::parse(sex).ok())
                .unwrap_or_default(),
            birth_date: row.birth_date,
            microchip: row.microchip.and_then(|chip| Microchip::parse(&chip).ok()),
            notes: row.notes,
        },
        archived_at: row.archived_at.map(|at| localize(at, actor.zone())),
        shares,
        permissions,
        claim_code_expires,
    })
}

/// Every clinic, for the owner's share list (staff counts are for admins: see [`crate::admin`]).
#[tracing::instrument(skip_all)]
pub async fn list_clinics(pool: &PgPool) -> Result<Vec<ClinicSummary>> {
    let rows = sqlx::query!(r#"select id as "id: ClinicId", name from clinics order by lower(name)"#)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| ClinicSummary {
            id: row.id,
            name: row.name,
            staff: 0,
        })
        .collect())
}

/// Shares a pet with a clinic (its owner only). Sharing twice is harmless.
#[tracing::instrument(skip_all, fields(pet = %pet, clinic = %clinic, actor = %actor.user.id))]
pub async fn share_pet(pool: &PgPool, actor: &Actor, pet: PetId, clinic: ClinicId) -> Result<()> {
    require_pet(pool, actor, pet, Need::Own).await?;
    let mut tx = pool.begin().await?;
    let exists = sqlx::query_scalar!(
        r#"select exists(select 1 from clinics where id = $1) as "exists!""#,
        clinic as ClinicId
    )
    .fetch_one(&mut *tx)
    .await?;
    if !exists {
        return Err(InvalidInput::new("clinic_id", "Choose a clinic from the list.").into());
    }
    let inserted = sqlx::query!(
        r#"insert into pet_clinic_access (pet_id, clinic_id, granted_by) values ($1, $2, $3)
           on conflict (pet_id, clinic_id) where revoked_at is null do nothing"#,
        pet as PetId,
        clinic as ClinicId,
        actor.user.id as UserId,
    )
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() > 0 {
        audit::record(
            &mut *tx,
            actor.event(Action::SharePet).target("clinic", clinic.0).pet(pet),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Ends a clinic's access to a pet at once (its owner only).
#[tracing::instrument(skip_all, fields(pet = %pet, clinic = %clinic, actor = %actor.user.id))]
pub async fn revoke_share(pool: &PgPool, actor: &Actor, pet: PetId, clinic: ClinicId) -> Result<()> {
    require_pet(pool, actor, pet, Need::Own).await?;
    let mut tx = pool.begin().await?;
    let revoked = sqlx::query!(
        r#"update pet_clinic_access set revoked_at = now(), revoked_by = $3
           where pet_id = $1 and clinic_id = $2 and revoked_at is null"#,
        pet as PetId,
        clinic as ClinicId,
        actor.user.id as UserId,
    )
    .execute(&mut *tx)
    .await?;
    if revoked.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    audit::record(
        &mut *tx,
        actor
            .event(Action::RevokeShare)
            .target("clinic", clinic.0)
            .pet(pet),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// What the owner's access history shows: reading and writing the pet's records and files. Others'
/// denied probes and trash clean-up are left out (they would name strangers and reveal nothing useful).
const ACCESS_HISTORY_ACTIONS: [&str; 11] = [
    "view_pet",
    "update_pet",
    "register_walk_in",
    "issue_claim_code",
    "create_record",
    "update_record",
    "view_record",
    "upload_document",
    "view_document",
    "download_document",
    "export_pet",
];

/// Who accessed a pet and its records, and when, newest first (its owner only). The owner's own
/// actions are left out; client addresses are never shown here.
#[tracing::instrument(skip_all, fields(pet = %pet, actor = %actor.user.id))]
pub async fn access_history(pool: &PgPool, actor: &Actor, pet: PetId) -> Result<Vec<AuditEntry>> {
    require_pet(pool, actor, pet, Need::Own).await?;
    let rows = sqlx::query!(
        r#"
        select e.at, e.action, e.target_kind, e.target_id, u.display_name as "actor?", c.name as "clinic?"
        from audit_events e
        left join users u on u.id = e.actor_id
        left join clinics c on c.id = u.clinic_id
        where e.pet_id = $1 and e.actor_id is distinct from $2 and e.action = any($3)
        order by e.at desc, e.id desc
        limit 200
        "#,
        pet as PetId,
        actor.user.id as UserId,
        &ACCESS_HISTORY_ACTIONS.map(str::to_owned)[..],
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| AuditEntry {
            at: localize(row.at, actor.zone()),
            actor: row.actor,
            actor_email: None,
            actor_clinic: row.clinic,
            action_label: Action::from_name(&row.action)
                .map_or_else(|| row.action.clone(), |a| a.label().to_owned()),
            action: row.action,
            target_kind: row.target_kind,
            target_id: row.target_id,
            pet_id: Some(pet),
            client_addr: None,
        })
        .collect())
}
