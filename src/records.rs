//! Medical records: staff of a clinic a pet is shared with write them; owners and those staff read them.
//! An edit names the version it started from; a stale edit is refused, never lost, and every earlier
//! version is kept with who wrote it and when.

use crate::{
    access::{Actor, Need, lock_live_share, pet_permissions, require_pet},
    audit::{self, Action},
    clock::localize,
    domain::{
        ClinicId, Highlight, PetId, RecordDetails, RecordHit, RecordId, RecordKind, RecordRevision,
        RecordSummary, RecordView, UserId,
    },
    error::{Error, Result},
};
use serde_json::json;
use sqlx::PgPool;

/// What a stale edit is told.
pub const STALE_EDIT: &str = "This record changed since you opened it. Reload it to see the latest version, then make your change again.";

fn kind(stored: &str) -> RecordKind {
    RecordKind::parse(stored).unwrap_or(RecordKind::Other)
}

/// A pet's records, newest visit first.
pub async fn list_records(pool: &PgPool, actor: &Actor, pet: PetId) -> Result<Vec<RecordSummary>> {
    recent_records(pool, actor, pet, None).await
}

/// At most `limit` of a pet's records (`None`: all), newest visit first.
#[tracing::instrument(skip_all, fields(pet = %pet, actor = %actor.user.id))]
pub async fn recent_records(
    pool: &PgPool,
    actor: &Actor,
    pet: PetId,
    limit: Option<u32>,
) -> Result<Vec<RecordSummary>> {
    require_pet(pool, actor, pet, Need::Read).await?;
    records_of(pool, pet, limit).await
}

/// [`recent_records`] for a caller whose access to `pet` was already checked.
pub(crate) async fn records_of(pool: &PgPool, pet: PetId, limit: Option<u32>) -> Result<Vec<RecordSummary>> {
    let rows = sqlx::query!(
        r#"select r.id as "id: RecordId", r.visit_date, r.kind, r.title, c.name as clinic_name, r.version
           from medical_records r join clinics c on c.id = r.clinic_id
           where r.pet_id = $1
           order by r.visit_date desc, r.created_at desc, r.id
           limit $2::int8"#,
        pet as PetId,
        limit.map(i64::from),
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| RecordSummary {
            id: row.id,
            visit_date: row.visit_date,
            kind: kind(&row.kind),
            title: row.title,
            clinic_name: row.clinic_name,
            revisions: row.version - 1,
        })
        .collect())
}

/// Writes a new record for a pet, on behalf of the actor's clinic.
#[tracing::instrument(skip_all, fields(pet = %pet, actor = %actor.user.id))]
pub async fn create_record(
    pool: &PgPool,
    actor: &Actor,
    pet: PetId,
    details: &RecordDetails,
) -> Result<RecordId> {
    let permissions = require_pet(pool, actor, pet, Need::WriteRecords).await?;
    let clinic = permissions.clinic.expect("write access means a clinic");
    let id = RecordId::new();
    let mut tx = pool.begin().await?;
    if !lock_live_share(&mut tx, pet, clinic).await? {
        return Err(Error::NotFound);
    }
    sqlx::query!(
        r#"insert into medical_records (id, pet_id, clinic_id, author_id, visit_date, kind, title, body, updated_by)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $4)"#,
        id as RecordId,
        pet as PetId,
        clinic as ClinicId,
        actor.user.id as UserId,
        details.visit_date,
        details.kind.as_str(),
        details.title,
        details.body,
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        actor.event(Action::CreateRecord).target("record", id.0).pet(pet),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// The pet and clinic of a record, if the actor may read it; otherwise audited and not found.
async fn readable_record(pool: &PgPool, actor: &Actor, record: RecordId) -> Result<(PetId, ClinicId, bool)> {
    let owner = sqlx::query!(
        r#"select pet_id as "pet_id: PetId", clinic_id as "clinic_id: ClinicId" from medical_records where id = $1"#,
        record as RecordId
    )
    .fetch_optional(pool)
    .await?;
    let permissions = match &owner {
        Some(row) => pet_permissions(pool, actor, row.pet_id).await?,
        None => None,
    };
    match (owner, permissions) {
        (Some(row), Some(permissions)) => {
            let may_edit = permissions.clinic == Some(row.clinic_id);
            Ok((row.pet_id, row.clinic_id, may_edit))
        }
        (owner, _) => {
            let mut event = actor.event(Action::AccessDenied).target("record", record.0);
            if let Some(row) = owner {
                event = event.pet(row.pet_id);
            }
            audit::record(pool, event.detail(json!({ "needed": "read" }))).await?;
            Err(Error::NotFound)
        }
    }
}

/// Changes a record. `expected_version` is the version the editor started from: if someone saved in the
/// meantime the edit is refused with [`STALE_EDIT`]. The replaced version is kept as a revision. Only
/// staff of the record's clinic may edit, and only while the pet is shared with it.
#[tracing::instrument(skip_all, fields(record = %record, actor = %actor.user.id, expected_version = expected_version))]
pub async fn update_record(
    pool: &PgPool,
    actor: &Actor,
    record: RecordId,
    expected_version: i32,
    details: &RecordDetails,
) -> Result<i32> {
    let (pet, clinic, may_edit) = readable_record(pool, actor, record).await?;
    if !may_edit {
        audit::record(
            pool,
            actor
                .event(Action::AccessDenied)
                .target("record", record.0)
                .pet(pet)
                .detail(json!({ "needed": "edit_record" })),
        )
        .await?;
        return Err(Error::Forbidden(
            "Only staff of the clinic that wrote this record can change it.".to_owned(),
        ));
    }
    let mut tx = pool.begin().await?;
    // Lock the record so concurrent edits queue here; the second finds the version moved on.
    let current = sqlx::query_scalar!(
        "select version from medical_records where id = $1 for update",
        record as RecordId
    )
    .fetch_one(&mut *tx)
    .await?;
    if current != expected_version {
        return Err(Error::Conflict(STALE_EDIT.to_owned()));
    }
    if !lock_live_share(&mut tx, pet, clinic).await? {
        return Err(Error::NotFound);
    }
    sqlx::query!(
        r#"insert into medical_record_revisions (record_id, version, visit_date, kind, title, body, edited_by, edited_at)
           select id, version, visit_date, kind, title, body, updated_by, updated_at
           from medical_records where id = $1"#,
        record as RecordId,
    )
    .execute(&mut *tx)
    .await?;
    let version = sqlx::query_scalar!(
        r#"update medical_records
           set visit_date = $3, kind = $4, title = $5, body = $6, version = version + 1,
               updated_at = now(), updated_by = $7
           where id = $1 and version = $2
           returning version"#,
        record as RecordId,
        expected_version,
        details.visit_date,
        details.kind.as_str(),
        details.title,
        details.body,
        actor.user.id as UserId,
    )
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        actor
            .event(Action::UpdateRecord)
            .target("record", record.0)
            .pet(pet)
            .detail(json!({ "version": version })),
    )
    .await?;
    tx.commit().await?;
    Ok(version)
}

/// A record with all its earlier versions. Audited as a view (once per 10 minutes).
#[tracing::instrument(skip_all, fields(record = %record, actor = %actor.user.id))]
pub async fn view_record(pool: &PgPool, actor: &Actor, record: RecordId) -> Result<RecordView> {
    let (pet, _, may_edit) = readable_record(pool, actor, record).await?;
    let view = load_record(pool, record, actor.zone(), may_edit).await?;
    audit::record_view(
        pool,
        actor
            .event(Action::ViewRecord)
            .target("record", record.0)
            .pet(pet),
    )
    .await?;
    Ok(view)
}

/// Every record of a pet with its history, for an export the caller was already allowed.
#[tracing::instrument(skip_all, fields(pet = %pet))]
pub(crate) async fn load_pet_records(
    pool: &PgPool,
    pet: PetId,
    zone: Option<&str>,
) -> Result<Vec<RecordView>> {
    let ids = sqlx::query_scalar!(
        r#"select id as "id: RecordId" from medical_records where pet_id = $1 order by visit_date, created_at"#,
        pet as PetId
    )
    .fetch_all(pool)
    .await?;
    let mut records = Vec::with_capacity(ids.len());
    for id in ids {
        records.push(load_record(pool, id, zone, false).await?);
    }
    Ok(records)
}

async fn load_record(
    pool: &PgPool,
    record: RecordId,
    zone: Option<&str>,
    may_edit: bool,
) -> Result<RecordView> {
    let row = sqlx::query!(
        r#"
        select r.pet_id as "pet_id: PetId", r.visit_date, r.kind, r.title, r.body, r.version, r.created_at, r.updated_at,
               r.clinic_id as "clinic_id: ClinicId", c.name as clinic_name, p.name as pet_name,
               author.display_name as author, editor.display_name as editor
        from medical_records r
        join clinics c on c.id = r.clinic_id
        join pets p on p.id = r.pet_id
        join users author on author.id = r.author_id
        join users editor on editor.id = r.updated_by
        where r.id = $1
        "#,
        record as RecordId
    )
    .fetch_one(pool)
    .await?;
    let revisions = sqlx::query!(
        r#"select v.version, v.visit_date, v.kind, v.title, v.body, v.edited_at, u.display_name
           from medical_record_revisions v join users u on u.id = v.edited_by
           where v.record_id = $1
           order by v.version desc"#,
        record as RecordId
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|revision| RecordRevision {
        version: revision.version,
        details: RecordDetails {
            visit_date: revision.visit_date,
            kind: kind(&revision.kind),
            title: revision.title,
            body: revision.body,
        },
        edited_by: revision.display_name,
        edited_at: localize(revision.edited_at, zone),
    })
    .collect();
    Ok(RecordView {
        id: record,
        pet_id: row.pet_id,
        pet_name: row.pet_name,
        clinic_id: row.clinic_id,
        clinic_name: row.clinic_name,
        details: RecordDetails {
            visit_date: row.visit_date,
            kind: kind(&row.kind),
            title: row.title,
            body: row.body,
        },
        version: row.version,
        author: row.author,
        created_at: localize(row.created_at, zone),
        updated_by: row.editor,
        updated_at: localize(row.updated_at, zone),
        revisions,
        can_edit: may_edit,
    })
}

/// Most results a record search answers.
pub const SEARCH_RESULTS: i64 = 50;

/// Marks the start and end of a matching word in a passage (characters a record's text does not hold).
const HIT_START: char = '\u{2}';
const HIT_STOP: char = '\u{3}';

/// Searches the title and body of the medical records `actor` may read (their own pets', and those of
/// pets shared with their clinic) with PostgreSQL full-text search in `language` (a text-search
/// configuration, `PAWFILE_SEARCH_LANGUAGE`): the best matches first, each with the passage around the
/// matching words. The search is audited with the number of results, never its words.
#[tracing::instrument(skip_all, fields(actor = %actor.user.id))]
pub async fn search_records(
    pool: &PgPool,
    actor: &Actor,
    language: &str,
    query: &str,
    limit: crate::rate_limit::Limit,
) -> Result<Vec<RecordHit>> {
    let query = query.trim();
    if query.is_empty() {
        return Ok(Vec::new());
    }
    if query.chars().count() > 200 {
        return Err(crate::domain::InvalidInput::new("q", "Search for at most 200 characters.").into());
    }
    crate::rate_limit::take(pool, &crate::rate_limit::Key::Search(actor.user.id), limit).await?;
    let options = format!(
        "StartSel={HIT_START}, StopSel={HIT_STOP}, MaxWords=30, MinWords=12, MaxFragments=2, FragmentDelimiter=\" … \""
    );
    let rows = sqlx::query!(
        r#"
        with q as (select websearch_to_tsquery($3::text::regconfig, $2) as query)
        select r.id as "id: RecordId", r.pet_id as "pet_id: PetId", p.name as pet_name, r.visit_date,
               r.kind, r.title, c.name as clinic_name,
               ts_headline($3::text::regconfig, r.title || E'\n' || r.body, q.query, $5) as "passage!"
        from q, medical_records r
        join pets p on p.id = r.pet_id
        join clinics c on c.id = r.clinic_id
        where r.search @@ q.query
          and (p.owner_id = $1
               or exists (select 1 from pet_clinic_access a
                          where a.pet_id = r.pet_id and a.clinic_id = $4 and a.revoked_at is null))
        order by ts_rank(r.search, q.query) desc, r.visit_date desc, r.id
        limit $6
        "#,
        actor.user.id as UserId,
        query,
        language,
        actor.clinic() as Option<ClinicId>,
        options,
        SEARCH_RESULTS,
    )
    .fetch_all(pool)
    .await?;
    let hits: Vec<RecordHit> = rows
        .into_iter()
        .map(|row| {
            Ok(RecordHit {
                id: row.id,
                pet_id: row.pet_id,
                pet_name: row.pet_name,
                visit_date: row.visit_date,
                kind: RecordKind::parse(&row.kind)?,
                title: row.title,
                clinic_name: row.clinic_name,
                passage: Highlight::split(&row.passage, HIT_START, HIT_STOP),
            })
        })
        .collect::<Result<_>>()?;
    audit::record(
        pool,
        actor
            .event(Action::SearchRecords)
            .detail(json!({ "results": hits.len() })),
    )
    .await?;
    Ok(hits)
}

/// Moves every record's search vector to `language` (after `PAWFILE_SEARCH_LANGUAGE` changed) and makes
/// it the default for new records; does nothing when they already use it. Fails with a message naming
/// the setting when PostgreSQL has no such text-search configuration.
pub async fn use_search_language(pool: &PgPool, language: &str) -> Result<u64> {
    let known = sqlx::query_scalar!(
        r#"select exists (select 1 from pg_ts_config where cfgname = $1) as "known!""#,
        language
    )
    .fetch_one(pool)
    .await?;
    if !known {
        return Err(crate::domain::InvalidInput::new(
            "PAWFILE_SEARCH_LANGUAGE",
            format!("PostgreSQL has no text-search configuration {language:?} (see `\\dF` in psql; for example english, german, french)"),
        )
        .into());
    }
    let mut tx = pool.begin().await?;
    sqlx::query!("select pg_advisory_xact_lock(hashtextextended('search_language', 0))")
        .execute(&mut *tx)
        .await?;
    // The default changes only when the setting did: altering the table locks it against every reader,
    // which every start-up of every replica would otherwise do.
    let current_default = sqlx::query_scalar!(
        r#"select column_default as "default!" from information_schema.columns
           where table_name = 'medical_records' and column_name = 'search_language'"#
    )
    .fetch_one(&mut *tx)
    .await?;
    if current_default != format!("'{language}'::regconfig") {
        // A validated name of an existing configuration: safe to put in the statement (DDL takes no
        // parameters).
        let default =
            format!("alter table medical_records alter column search_language set default '{language}'");
        sqlx::Executor::execute(&mut *tx, default.as_str()).await?;
    }
    let moved = sqlx::query!(
        "update medical_records set search_language = $1::text::regconfig where search_language <> $1::text::regconfig",
        language
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(moved)
}
