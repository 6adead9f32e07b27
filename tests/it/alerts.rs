//! Admins are told by mail of what needs them, once per problem.

use crate::fixtures::{owner, pet, user};
use pawfile::{alerts::notify_admins, domain::Role};
use serde_json::Value;
use sqlx::PgPool;

async fn alert_mails(pool: &PgPool) -> Vec<(String, Vec<String>)> {
    let rows: Vec<(String, Value)> = sqlx::query_as(
        "select recipient, message->'problems' from mail_outbox where kind = 'admin_alert' order by id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(to, problems)| (to, serde_json::from_value(problems).unwrap()))
        .collect()
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn admins_hear_of_each_problem_once(pool: PgPool) {
    user(&pool, "root@example.org", &[Role::Admin], None).await;
    let second = user(&pool, "second@example.org", &[Role::Admin], None).await;
    let alice = owner(&pool, "alice@example.org").await;
    let biscuit = pet(&pool, &alice, "Biscuit").await;
    assert_eq!(notify_admins(&pool).await.unwrap(), 0, "nothing wrong yet");

    sqlx::query(
        "insert into backup_runs (id, trigger, status, recipients, finished_at, error)
         values (gen_random_uuid(), 'schedule', 'failed', 'none', now(), 'the backup store refused the write')",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into backup_drills (id, run_id, passed, detail)
         values (gen_random_uuid(), gen_random_uuid(), false, 'data/ab12: SHA-256 differs')",
    )
    .execute(&pool)
    .await
    .unwrap();
    crate::home::document(&pool, biscuit, &alice, "x-ray.png", false, 1).await;
    sqlx::query("update documents set integrity_problem = 'missing object', integrity_checked_at = now()")
        .execute(&pool)
        .await
        .unwrap();

    assert_eq!(notify_admins(&pool).await.unwrap(), 3);
    let mails = alert_mails(&pool).await;
    assert_eq!(mails.len(), 2, "every admin: {mails:?}");
    for (_, problems) in &mails {
        let all = problems.join("\n");
        assert_eq!(problems.len(), 3, "{all}");
        for expected in ["refused the write", "SHA-256 differs", "missing object"] {
            assert!(all.contains(expected), "{expected}: {all}");
        }
    }

    // The next check finds the same problems and mails nothing.
    assert_eq!(notify_admins(&pool).await.unwrap(), 0);
    assert_eq!(alert_mails(&pool).await.len(), 2);

    // A new problem is mailed on its own, to admins who are still enabled.
    pawfile::auth::disable_user(&pool, second.user.id, None, None)
        .await
        .unwrap();
    sqlx::query(
        "insert into backup_runs (id, trigger, status, recipients, started_at, finished_at)
         values (gen_random_uuid(), 'schedule', 'complete', 'none', now() - interval '27 hours', now() - interval '27 hours')",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(notify_admins(&pool).await.unwrap(), 1);
    let mails = alert_mails(&pool).await;
    assert_eq!(mails.len(), 3);
    assert_eq!(mails[2].0, "root@example.org");
    assert_eq!(mails[2].1.len(), 1);
    assert!(
        mails[2].1[0].contains("more than 26 hours ago"),
        "{:?}",
        mails[2].1
    );
}
