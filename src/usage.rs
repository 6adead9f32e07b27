//! What the installation holds, day by day: recorded by the server through the day into `daily_usage`
//! (one row per day for the whole installation and one per clinic), so the admin dashboard draws its
//! history from those rows instead of scanning the bucket.

use crate::{
    access::Actor,
    domain::{BackupPoint, ClinicUsage, DailyUsage, Dashboard, Role, UsagePoint},
    error::Result,
};
use sqlx::PgPool;

/// Records today's row for the installation and for each clinic (replacing today's earlier rows): how
/// many rows it wrote. One statement, so replicas recording at once need no lock: each writes the same
/// figures over the same rows.
pub async fn record_today(pool: &PgPool) -> Result<u64> {
    // Everything stored counts, the trash too, until it is purged (as quotas count it).
    let recorded = sqlx::query!(
            r#"insert into daily_usage (day, clinic_id, stored_bytes, documents, uploads)
               select (now() at time zone 'utc')::date, scope.clinic_id,
                      coalesce(sum(d.size_bytes), 0)::bigint,
                      count(d.id),
                      count(d.id) filter (where d.created_at >= date_trunc('day', now() at time zone 'utc') at time zone 'utc')
               from (select null::uuid as clinic_id union all select id from clinics) scope
               left join documents d on scope.clinic_id is null or d.charged_clinic_id = scope.clinic_id
               group by scope.clinic_id
               on conflict (day, clinic_id) do update
                 set stored_bytes = excluded.stored_bytes, documents = excluded.documents,
                     uploads = excluded.uploads, recorded_at = now()"#
    )
    .execute(pool)
    .await?
    .rows_affected();
    Ok(recorded)
}

/// The dashboard's figures (admins): the installation's and each clinic's daily rows over the last
/// `days` days, the complete backups of that time, and the integrity status. The caller adds the backup
/// banner (the server knows its settings).
pub async fn dashboard(
    pool: &PgPool,
    actor: &Actor,
    days: i32,
    scrub_period: std::time::Duration,
) -> Result<Dashboard> {
    actor.require_role(pool, Role::Admin).await?;
    let total = sqlx::query_as!(
        DailyUsage,
        r#"select day, stored_bytes, documents, uploads from daily_usage
           where clinic_id is null and day > (now() at time zone 'utc')::date - $1::int
           order by day"#,
        days
    )
    .fetch_all(pool)
    .await?;
    let clinics = sqlx::query!(
        r#"select c.name as "name!", u.day, u.stored_bytes from daily_usage u join clinics c on c.id = u.clinic_id
           where u.day > (now() at time zone 'utc')::date - $1::int
           order by c.name, u.day"#,
        days
    )
    .fetch_all(pool)
    .await?;
    let mut per_clinic: Vec<ClinicUsage> = Vec::new();
    for row in clinics {
        let point = UsagePoint {
            day: row.day,
            stored_bytes: row.stored_bytes,
        };
        match per_clinic.last_mut() {
            Some(clinic) if clinic.clinic == row.name => clinic.days.push(point),
            _ => per_clinic.push(ClinicUsage {
                clinic: row.name,
                days: vec![point],
            }),
        }
    }
    let backups = sqlx::query!(
        r#"select started_at, snapshot_bytes,
                  extract(epoch from finished_at - started_at)::float8 as "seconds!"
           from backup_runs where status = 'complete' and finished_at is not null
             and started_at > now() - make_interval(days => $1::int)
           order by started_at"#,
        days
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|row| BackupPoint {
        started_at: row.started_at,
        bytes: row.snapshot_bytes,
        seconds: row.seconds,
    })
    .collect();
    let integrity = crate::documents::reconcile::integrity_status(pool, scrub_period).await?;
    Ok(Dashboard {
        total,
        per_clinic,
        backups,
        last_reconcile: integrity.last_reconcile,
        flagged: integrity.flagged,
        scrubbed: integrity.rehashed,
        documents: integrity.documents,
        backup_alarm: None,
    })
}
