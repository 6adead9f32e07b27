//! What administrators do: clinics, staff accounts, disabling accounts, reading the audit trail, and
//! watching document integrity and the state of the buckets. Every function checks the admin role
//! itself.

use crate::{
    access::Actor,
    audit::{self, Action, Filter},
    auth,
    clock::localize,
    domain::{
        AuditPage, ClinicId, ClinicName, ClinicSummary, IntegrityIssue, Role, Roles, StorageReport,
        StoreStatus, UserId, UserSummary,
    },
    error::{Error, Result},
    storage::ObjectStore,
};
use sqlx::PgPool;
use std::time::Duration;

/// Creates a clinic. Names are unique, ignoring case.
#[tracing::instrument(skip_all, fields(actor = %actor.user.id))]
pub async fn create_clinic(pool: &PgPool, actor: &Actor, name: &ClinicName) -> Result<ClinicId> {
    actor.require_role(pool, Role::Admin).await?;
    let id = ClinicId::new();
    let mut tx = pool.begin().await?;
    let created = sqlx::query!(
        "insert into clinics (id, name) values ($1, $2) on conflict do nothing",
        id as ClinicId,
        name.as_str()
    )
    .execute(&mut *tx)
    .await?;
    if created.rows_affected() == 0 {
        return Err(Error::Conflict(format!("A clinic named {name} already exists.")));
    }
    audit::record(&mut *tx, actor.event(Action::CreateClinic).target("clinic", id.0)).await?;
    tx.commit().await?;
    Ok(id)
}

/// Every clinic with its number of enabled staff accounts.
#[tracing::instrument(skip_all, fields(actor = %actor.user.id))]
pub async fn list_clinics(pool: &PgPool, actor: &Actor) -> Result<Vec<ClinicSummary>> {
    actor.require_role(pool, Role::Admin).await?;
    let rows = sqlx::query!(
        r#"select c.id as "id: ClinicId", c.name,
                  count(u.id) filter (where u.disabled_at is null) as "staff!"
           from clinics c left join users u on u.clinic_id = c.id
           group by c.id order by lower(c.name)"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| ClinicSummary {
            id: row.id,
            name: row.name,
            staff: row.staff,
        })
        .collect())
}

/// Accounts whose e-mail or name contains `query` (all when empty), newest first, at most 200.
#[tracing::instrument(skip_all, fields(actor = %actor.user.id))]
pub async fn list_users(pool: &PgPool, actor: &Actor, query: &str) -> Result<Vec<UserSummary>> {
    actor.require_role(pool, Role::Admin).await?;
    let pattern = crate::db::contains_pattern(query.trim());
    let rows = sqlx::query!(
        r#"select u.id as "id: UserId", u.email, u.display_name, u.roles, c.name as "clinic_name?",
                  u.created_at, u.disabled_at
           from users u left join clinics c on c.id = u.clinic_id
           where u.email ilike $1 or u.display_name ilike $1
           order by u.created_at desc limit 200"#,
        pattern
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| UserSummary {
            id: row.id,
            email: row.email,
            display_name: row.display_name,
            roles: Roles::from_names(&row.roles),
            clinic_name: row.clinic_name,
            created_at: localize(row.created_at, actor.zone()),
            disabled_at: row.disabled_at.map(|at| localize(at, actor.zone())),
        })
        .collect())
}

/// Disables an account; its sessions end at once on every replica. Admins cannot disable themselves
/// (so a clinic is never left without one by accident).
#[tracing::instrument(skip_all, fields(user = %user, actor = %actor.user.id))]
pub async fn disable_user(pool: &PgPool, actor: &Actor, user: UserId) -> Result<()> {
    actor.require_role(pool, Role::Admin).await?;
    if user == actor.user.id {
        return Err(Error::Conflict("You cannot disable your own account.".to_owned()));
    }
    auth::disable_user(pool, user, Some(actor.user.id), actor.client_addr).await
}

/// A page of the audit trail, with e-mails and client addresses.
#[tracing::instrument(skip_all, fields(actor = %actor.user.id, page = page))]
pub async fn audit_trail(pool: &PgPool, actor: &Actor, filter: &Filter, page: u32) -> Result<AuditPage> {
    actor.require_role(pool, Role::Admin).await?;
    audit::search(pool, filter, page, actor.zone(), true).await
}

/// Documents the integrity check flagged: id, pet, problem, when found (in the admin's time zone). Ids
/// only: admins do not read medical content.
#[tracing::instrument(skip_all, fields(actor = %actor.user.id))]
pub async fn integrity_issues(pool: &PgPool, actor: &Actor) -> Result<Vec<IntegrityIssue>> {
    actor.require_role(pool, Role::Admin).await?;
    let rows = sqlx::query!(
        r#"select id as "id: crate::domain::DocumentId", pet_id as "pet_id: crate::domain::PetId",
                  integrity_problem as "problem!", integrity_checked_at as "checked_at!"
           from documents where integrity_problem is not null order by integrity_checked_at desc limit 500"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| IntegrityIssue {
            document_id: row.id,
            pet_id: row.pet_id,
            problem: row.problem,
            checked_at: localize(row.checked_at, actor.zone()).local,
        })
        .collect())
}

/// Checks the documents and backup buckets now, each within 5 seconds (admins). Nothing is cached: each
/// replica answers for itself.
#[tracing::instrument(skip_all, fields(actor = %actor.user.id))]
pub async fn storage_status(
    pool: &PgPool,
    actor: &Actor,
    documents: &ObjectStore,
    backups: &ObjectStore,
    backups_on_this_machine: bool,
) -> Result<StorageReport> {
    actor.require_role(pool, Role::Admin).await?;
    let (documents, backups) = tokio::join!(store_status(documents), store_status(backups));
    Ok(StorageReport {
        documents,
        backups,
        backups_on_this_machine,
    })
}

async fn store_status(store: &ObjectStore) -> StoreStatus {
    let problem = match tokio::time::timeout(Duration::from_secs(5), store.check_bucket()).await {
        Ok(Ok(())) => None,
        Ok(Err(err)) => Some(err.to_string()),
        Err(_) => Some("no answer within 5 seconds".to_owned()),
    };
    StoreStatus {
        bucket: store.bucket().to_owned(),
        endpoint: store.endpoint().to_owned(),
        problem,
    }
}

/// Starts a backup now (admins): the run's id, or [`Error::Conflict`] while one runs anywhere.
#[tracing::instrument(skip_all, fields(actor = %actor.user.id))]
pub async fn start_backup(
    pool: &PgPool,
    actor: &Actor,
    backups: &crate::backup::Backups,
) -> Result<uuid::Uuid> {
    actor.require_role(pool, Role::Admin).await?;
    let by = crate::backup::StartedBy {
        trigger: crate::backup::Trigger::Admin,
        user: Some(actor.user.id),
        client_addr: actor.client_addr,
    };
    match backups.start(by).await? {
        Some(started) => Ok(started.id),
        None => Err(Error::Conflict(
            "a backup is running already; watch its progress below".to_owned(),
        )),
    }
}

/// Backup runs, newest first (admins).
pub async fn backup_runs(pool: &PgPool, actor: &Actor, limit: i64) -> Result<Vec<crate::backup::RunSummary>> {
    actor.require_role(pool, Role::Admin).await?;
    crate::backup::list_runs(pool, limit).await
}

/// The backup section of the admin page (admins): runs, the next scheduled run, the last drill, the
/// red banner when the last complete backup is older than 26 hours or the last run failed, and
/// `warnings` about the set-up (given by the server, which knows its settings).
pub async fn backup_overview(
    pool: &PgPool,
    actor: &Actor,
    next_run: Option<time::OffsetDateTime>,
    drills_configured: bool,
    signing_key: Option<String>,
    mut warnings: Vec<String>,
) -> Result<crate::domain::BackupOverview> {
    actor.require_role(pool, Role::Admin).await?;
    let refused: Vec<(String, String)> = crate::backup::refusals::list(pool)
        .await?
        .into_iter()
        .map(|refusal| (refusal.name, refusal.reason))
        .collect();
    let damaged: Vec<(String, String)> = sqlx::query!(
        r#"select name, damage as "damage!" from backup_objects where damage is not null order by name"#
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|row| (row.name, row.damage))
    .collect();
    if !damaged.is_empty() {
        warnings.push(format!(
            "The daily re-read found {} backup objects altered or missing; the next backup stores them again. \
             If this recurs, check the backup storage.",
            damaged.len()
        ));
    }
    if !refused.is_empty() {
        warnings.push(format!(
            "{} objects in the backup bucket were refused: they are not signed by this installation's key. \
             Someone who is not Pawfile wrote to the backup bucket: check who holds its credentials.",
            refused.len()
        ));
    }
    let missing = sqlx::query_scalar!(
        r#"select count(*) as "count!" from backup_runs where manifest_missing_since is not null and pruned_at is null"#
    )
    .fetch_one(pool)
    .await?;
    if missing > 0 {
        warnings.push(format!(
            "{missing} complete snapshots have lost their manifest in the backup bucket and cannot be restored."
        ));
    }
    if drills_configured {
        let overdue = sqlx::query_scalar!(
            r#"select not exists (select 1 from backup_drills where passed and at > now() - interval '8 days')
                  and exists (select 1 from backup_runs where status = 'complete'
                              and started_at < now() - interval '1 day') as "overdue!""#
        )
        .fetch_one(pool)
        .await?;
        if overdue {
            warnings.push("No restore drill has passed in the last 8 days.".to_owned());
        }
    }
    let runs = crate::backup::list_runs(pool, 30).await?;
    let last_complete = crate::backup::last_complete(pool).await?;
    let last_drill = sqlx::query!("select at, passed from backup_drills order by at desc limit 1")
        .fetch_optional(pool)
        .await?
        .map(|row| {
            let at = row
                .at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            (at, row.passed)
        });
    let now = time::OffsetDateTime::now_utc();
    let finished = runs
        .iter()
        .find(|run| run.status != crate::domain::BackupStatus::Running);
    let alarm = if let Some(run) = finished.filter(|run| {
        matches!(
            run.status,
            crate::domain::BackupStatus::Failed | crate::domain::BackupStatus::Interrupted
        )
    }) {
        Some(format!(
            "The last backup {}: {}",
            run.status.as_str(),
            run.error.as_deref().unwrap_or("no detail")
        ))
    } else {
        match last_complete {
            None => Some("There is no complete backup yet.".to_owned()),
            Some(at) if now - at > time::Duration::hours(26) => Some(format!(
                "The last complete backup is {} hours old.",
                (now - at).whole_hours()
            )),
            Some(_) => None,
        }
    };
    Ok(crate::domain::BackupOverview {
        runs,
        next_run,
        last_complete,
        last_drill,
        alarm,
        warnings,
        refused,
        damaged,
        signing_key,
    })
}

/// The mail queue: what waits, what keeps failing, what was given up (admins only).
pub async fn mail_status(pool: &PgPool, actor: &Actor) -> Result<crate::domain::MailStatus> {
    actor.require_role(pool, Role::Admin).await?;
    crate::mail::status(pool).await
}
