//! The start page of each role, in as few queries as the page needs: an owner's pet cards, a staff
//! member's desk, the system at a glance for administrators; and the photo an owner picks for a pet.

use crate::{
    access::{Actor, Need, require_pet},
    audit::{self, Action},
    clock::localize,
    domain::{
        ClinicId, ClinicRecord, DocumentId, Home, PetCard, PetId, RecentPatient, RecordId, RecordKind, Role,
        StaffDesk, SystemGlance, UserId, age_label,
    },
    error::{Error, Result},
};
use sqlx::PgPool;

/// How many recently opened patients the staff home lists.
pub const RECENT_PATIENTS: i64 = 8;
/// How many of the clinic's records of the week the staff home lists.
pub const WEEK_RECORDS: i64 = 20;
/// How many audit events the admin home lists.
pub const LATEST_EVENTS: usize = 8;

/// Every part of the start page that applies to the actor's roles. The admin part's storage and backup
/// state are left for the caller, which holds the stores and the schedule.
#[tracing::instrument(skip_all, fields(actor = %actor.user.id))]
pub async fn home(pool: &PgPool, actor: &Actor) -> Result<Home> {
    let owner = if actor.user.has_role(Role::Owner) {
        Some(owner_pets(pool, actor).await?)
    } else {
        None
    };
    let staff = if actor.clinic().is_some() {
        Some(staff_desk(pool, actor).await?)
    } else {
        None
    };
    let admin = if actor.user.has_role(Role::Admin) {
        Some(system_glance(pool, actor).await?)
    } else {
        None
    };
    Ok(Home { owner, staff, admin })
}

/// The actor's pets (not archived) as cards: photo, age, last visit, counts, the clinics each is shared
/// with. One query.
pub async fn owner_pets(pool: &PgPool, actor: &Actor) -> Result<Vec<PetCard>> {
    let rows = sqlx::query!(
        r#"
        select p.id as "id: PetId", p.name, p.species, p.breed, p.birth_date,
               (select max(r.visit_date) from medical_records r where r.pet_id = p.id) as last_visit,
               (select count(*) from medical_records r where r.pet_id = p.id) as "records!",
               (select count(*) from documents d where d.pet_id = p.id and d.deleted_at is null) as "documents!",
               coalesce(
                   (select d.id from documents d
                     where d.pet_id = p.id and d.profile_photo and d.deleted_at is null and d.thumbnail_state = 'done'),
                   (select d.id from documents d
                     where d.pet_id = p.id and d.uploaded_by = p.owner_id and d.deleted_at is null
                       and d.thumbnail_state = 'done'
                     order by d.created_at desc limit 1)
               ) as "photo: DocumentId",
               array(select c.name from pet_clinic_access a join clinics c on c.id = a.clinic_id
                      where a.pet_id = p.id and a.revoked_at is null order by lower(c.name)) as "clinics!"
        from pets p
        where p.owner_id = $1 and p.archived_at is null
        order by lower(p.name), p.id
        "#,
        actor.user.id as UserId,
    )
    .fetch_all(pool)
    .await?;
    let today = actor.today();
    Ok(rows
        .into_iter()
        .map(|row| PetCard {
            id: row.id,
            name: row.name,
            species: row.species,
            breed: row.breed,
            age: row.birth_date.and_then(|birth| age_label(birth, today)),
            last_visit: row.last_visit,
            documents: row.documents,
            records: row.records,
            photo: row.photo,
            clinics: row.clinics,
        })
        .collect())
}

/// The patients the actor opened lately (still shared with their clinic, not archived), and the records
/// their clinic wrote in the last 7 days.
pub async fn staff_desk(pool: &PgPool, actor: &Actor) -> Result<StaffDesk> {
    actor.require_role(pool, Role::Staff).await?;
    let clinic = actor.clinic().ok_or(Error::NotFound)?;
    let clinic_name = actor.user.clinic_name.clone().unwrap_or_default();
    let recent = sqlx::query!(
        r#"
        select p.id as "id: PetId", p.name, p.species,
               coalesce(u.display_name, p.owner_name) as owner_name, v.opened_at as "opened_at!"
        from (select pet_id, max(at) as opened_at from audit_events
              where actor_id = $1 and action = 'view_pet' and pet_id is not null
                and at > now() - interval '90 days'
              group by pet_id) v
        join pets p on p.id = v.pet_id
        left join users u on u.id = p.owner_id
        where p.archived_at is null
          and exists (select 1 from pet_clinic_access a
                      where a.pet_id = p.id and a.clinic_id = $2 and a.revoked_at is null)
        order by v.opened_at desc, p.id
        limit $3
        "#,
        actor.user.id as UserId,
        clinic as ClinicId,
        RECENT_PATIENTS,
    )
    .fetch_all(pool)
    .await?;
    let week = sqlx::query!(
        r#"
        select r.id as "id: RecordId", r.pet_id as "pet_id: PetId", p.name as pet_name, r.visit_date, r.kind,
               r.title, u.display_name as author
        from medical_records r
        join pets p on p.id = r.pet_id
        join users u on u.id = r.author_id
        where r.clinic_id = $1 and r.created_at > now() - interval '7 days'
          and exists (select 1 from pet_clinic_access a
                      where a.pet_id = r.pet_id and a.clinic_id = $1 and a.revoked_at is null)
        order by r.created_at desc, r.id
        limit $2
        "#,
        clinic as ClinicId,
        WEEK_RECORDS,
    )
    .fetch_all(pool)
    .await?;
    Ok(StaffDesk {
        clinic_id: clinic,
        clinic_name,
        recent_patients: recent
            .into_iter()
            .map(|row| RecentPatient {
                id: row.id,
                name: row.name,
                species: row.species,
                owner_name: row.owner_name,
                opened_at: localize(row.opened_at, actor.zone()),
            })
            .collect(),
        this_week: week
            .into_iter()
            .map(|row| {
                Ok(ClinicRecord {
                    id: row.id,
                    pet_id: row.pet_id,
                    pet_name: row.pet_name,
                    visit_date: row.visit_date,
                    kind: RecordKind::parse(&row.kind)?,
                    title: row.title,
                    author: row.author,
                })
            })
            .collect::<Result<_>>()?,
    })
}

/// Account, clinic and document counts, integrity problems and the latest audit events (admins). The
/// storage and backup state are `None` here: the server fills them in.
pub async fn system_glance(pool: &PgPool, actor: &Actor) -> Result<SystemGlance> {
    actor.require_role(pool, Role::Admin).await?;
    let counts = sqlx::query!(
        r#"
        select
          (select count(*) from users where disabled_at is null and 'owner' = any (roles)) as "owners!",
          (select count(*) from users where disabled_at is null and 'staff' = any (roles)) as "staff!",
          (select count(*) from users where disabled_at is null and 'admin' = any (roles)) as "admins!",
          (select count(*) from users where disabled_at is not null) as "disabled!",
          (select count(*) from clinics) as "clinics!",
          (select count(*) from documents) as "documents!",
          (select coalesce(sum(size_bytes), 0)::bigint from documents) as "stored_bytes!",
          (select count(*) from documents where integrity_problem is not null) as "integrity_problems!"
        "#
    )
    .fetch_one(pool)
    .await?;
    let mut latest = audit::search(pool, &audit::Filter::default(), 1, actor.zone(), false).await?;
    latest.entries.truncate(LATEST_EVENTS);
    Ok(SystemGlance {
        owners: counts.owners,
        staff: counts.staff,
        admins: counts.admins,
        disabled: counts.disabled,
        clinics: counts.clinics,
        documents: counts.documents,
        stored_bytes: counts.stored_bytes,
        integrity_problems: counts.integrity_problems,
        latest_events: latest.entries,
        storage: None,
        backups: None,
    })
}

/// Makes `document` (a photo of the pet, not in the trash) the one shown for `pet` (its owner only).
#[tracing::instrument(skip_all, fields(pet = %pet, document = %document, actor = %actor.user.id))]
pub async fn set_profile_photo(pool: &PgPool, actor: &Actor, pet: PetId, document: DocumentId) -> Result<()> {
    require_pet(pool, actor, pet, Need::Own).await?;
    let mut tx = pool.begin().await?;
    // One choice at a time per pet: two at once would both find no other flagged photo.
    sqlx::query!("select id from pets where id = $1 for update", pet as PetId)
        .fetch_one(&mut *tx)
        .await?;
    let photo = sqlx::query_scalar!(
        r#"select thumbnail_state = 'done' as "photo!" from documents
           where id = $1 and pet_id = $2 and deleted_at is null"#,
        document as DocumentId,
        pet as PetId,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    if !photo {
        return Err(crate::domain::InvalidInput::new(
            "document_id",
            "Only a photo (a picture with a preview) can be the pet's photo.",
        )
        .into());
    }
    // Two statements: the index allows one flagged document per pet at every moment.
    sqlx::query!(
        "update documents set profile_photo = false where pet_id = $1 and profile_photo and id <> $2",
        pet as PetId,
        document as DocumentId,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "update documents set profile_photo = true where id = $1",
        document as DocumentId,
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        actor
            .event(Action::SetProfilePhoto)
            .target("document", document.0)
            .pet(pet),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
