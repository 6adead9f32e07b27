//! Telling admins by mail what needs them: a failed backup, no complete backup for 26 hours, a failed
//! restore drill, a document the integrity check flagged. Each problem is mailed once (it is remembered
//! by a key), however often the check runs and on however many replicas.

use crate::{
    domain::Email,
    error::Result,
    mail::{self, Mail},
};
use sqlx::PgPool;

/// A backup older than this is a problem.
pub const STALE_AFTER: time::Duration = time::Duration::hours(26);

/// Something admins should hear about once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What identifies it: the same problem gives the same key on every check.
    pub key: String,
    /// The sentence the mail says.
    pub description: String,
}

fn when(at: time::OffsetDateTime) -> String {
    at.format(&time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute] UTC"
    ))
    .unwrap_or_default()
}

/// What is wrong now.
pub async fn current_problems(pool: &PgPool) -> Result<Vec<Problem>> {
    let mut problems = Vec::new();
    let latest = sqlx::query!(
        r#"select id, started_at, status, error from backup_runs
           where status in ('complete', 'failed') order by started_at desc limit 1"#
    )
    .fetch_optional(pool)
    .await?;
    if let Some(run) = latest.filter(|run| run.status == "failed") {
        problems.push(Problem {
            key: format!("backup_failed:{}", run.id),
            description: format!(
                "The backup started {} failed: {}",
                when(run.started_at),
                run.error.unwrap_or_else(|| "no reason recorded".to_owned())
            ),
        });
    }
    let now = time::OffsetDateTime::now_utc();
    match crate::backup::last_complete(pool).await? {
        // Keyed by the newest complete backup: a later one that also goes stale is a new problem.
        Some(at) if now - at > STALE_AFTER => problems.push(Problem {
            key: format!("backup_stale:{}", at.unix_timestamp()),
            description: format!(
                "The newest complete backup is from {}, more than 26 hours ago.",
                when(at)
            ),
        }),
        Some(_) => {}
        None => {
            let since = sqlx::query_scalar!("select min(created_at) from users")
                .fetch_one(pool)
                .await?;
            if since.is_some_and(|since| now - since > STALE_AFTER) {
                problems.push(Problem {
                    key: "backup_stale:never".to_owned(),
                    description:
                        "No backup has completed yet, and Pawfile has held data for more than 26 hours."
                            .to_owned(),
                });
            }
        }
    }
    let drill = sqlx::query!("select id, at, passed, detail from backup_drills order by at desc limit 1")
        .fetch_optional(pool)
        .await?;
    if let Some(drill) = drill.filter(|drill| !drill.passed) {
        problems.push(Problem {
            key: format!("drill_failed:{}", drill.id),
            description: format!("The restore drill of {} failed: {}", when(drill.at), drill.detail),
        });
    }
    let flagged = sqlx::query!(
        r#"select id, integrity_problem as "problem!" from documents
           where integrity_problem is not null order by integrity_checked_at limit 500"#
    )
    .fetch_all(pool)
    .await?;
    for document in flagged {
        problems.push(Problem {
            key: format!("integrity:{}", document.id),
            description: format!(
                "The integrity check flagged document {}: {}",
                document.id, document.problem
            ),
        });
    }
    Ok(problems)
}

/// Mails every enabled admin the problems not mailed before; returns how many were new.
#[tracing::instrument(skip_all)]
pub async fn notify_admins(pool: &PgPool) -> Result<usize> {
    let problems = current_problems(pool).await?;
    if problems.is_empty() {
        return Ok(0);
    }
    let mut tx = pool.begin().await?;
    let mut new = Vec::new();
    for problem in problems {
        // Two replicas checking at once: the second waits on the first's key and then skips it.
        let inserted = sqlx::query!(
            "insert into admin_alerts (key, description) values ($1, $2) on conflict (key) do nothing",
            problem.key,
            problem.description
        )
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 1 {
            new.push(problem.description);
        }
    }
    if !new.is_empty() {
        let admins = sqlx::query!(
            "select email, display_name from users where 'admin' = any(roles) and disabled_at is null order by email"
        )
        .fetch_all(&mut *tx)
        .await?;
        for admin in admins {
            let Ok(email) = Email::parse(&admin.email) else {
                continue;
            };
            let mail = Mail::AdminAlert {
                name: admin.display_name,
                problems: new.clone(),
            };
            mail::enqueue(&mut *tx, &email, &mail).await?;
        }
        tracing::warn!(problems = new.len(), "admins are told by mail of new problems");
    }
    tx.commit().await?;
    Ok(new.len())
}
