//! Owners delete their own account. The request ends every session and starts a grace period of 30
//! days; signing in during it cancels the deletion. Then the account's uploads are purged, its pets are
//! archived and detached from the person, shares end except where a clinic wrote records for the pet or
//! its staff uploaded documents to it (it stays as that clinic's patient: medical history and pets are
//! never deleted, the schema forbids it, and a clinic's documents stay readable by the clinic), a pet no
//! clinic wrote about or uploaded to loses its notes and microchip and nobody can open it, and the users
//! row is pseudonymised, so the audit trail keeps pointing at a pseudonym. A sign-in during the purge
//! either cancels the deletion whole or finds the account gone, never half of it.

use crate::{
    access::Actor,
    audit::{self, Action, Event},
    auth::PasswordHasher,
    backup::{BackupKeys, markers},
    domain::{InvalidInput, Role, UserId},
    error::{Error, Result},
    mail::{self, Mail},
    rate_limit,
    storage::ObjectStore,
};
use sqlx::{PgPool, Postgres, Transaction};
use std::time::Duration;

/// The trash retention a deletion's purge uses: its uploads are put in the trash as if deleted long ago.
const LONG_AGO: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// How long a requested deletion waits, cancellable by signing in.
pub const GRACE: time::Duration = time::Duration::days(30);

/// Asks for the caller's account to be deleted after [`GRACE`] (owners, with their password). Every
/// session ends; a mail says when and how to cancel. Audited.
#[tracing::instrument(skip_all, fields(actor = %actor.user.id))]
pub async fn request_deletion(
    pool: &PgPool,
    hasher: &PasswordHasher,
    limits: &rate_limit::AccountLimits,
    actor: &Actor,
    password: &str,
) -> Result<time::OffsetDateTime> {
    actor.require_role(pool, Role::Owner).await?;
    if actor.user.has_role(Role::Staff) || actor.user.has_role(Role::Admin) {
        return Err(Error::Forbidden(
            "Staff and administrator accounts are closed by an administrator.".to_owned(),
        ));
    }
    // The same allowance as password changes: a stolen session cannot guess the password at leisure.
    rate_limit::take(
        pool,
        &rate_limit::Key::PasswordConfirmation(actor.user.id),
        limits.password_changes_per_account,
    )
    .await?;
    let hash = sqlx::query_scalar!(
        "select password_hash from users where id = $1",
        actor.user.id as UserId
    )
    .fetch_one(pool)
    .await?;
    if !hasher.verify(Some(&hash), password).await {
        return Err(InvalidInput::new("password", "That is not your password.").into());
    }
    let mut tx = pool.begin().await?;
    let due = sqlx::query_scalar!(
        r#"update users set deletion_requested_at = now(), session_generation = session_generation + 1
           where id = $1 and deleted_at is null
           returning now() + $2::float8 * interval '1 second' as "due!""#,
        actor.user.id as UserId,
        GRACE.as_seconds_f64(),
    )
    .fetch_one(&mut *tx)
    .await?;
    audit::record(&mut *tx, actor.event(Action::RequestDeletion)).await?;
    let mail = Mail::DeletionScheduled {
        name: actor.user.display_name.clone(),
        date: due
            .format(&time::macros::format_description!(
                "[day] [month repr:long] [year]"
            ))
            .unwrap_or_default(),
    };
    mail::enqueue(&mut *tx, &actor.user.email, &mail).await?;
    tx.commit().await?;
    Ok(due)
}

/// Deletes the accounts whose grace period is over (see the module), then purges their uploads'
/// objects. Each deletion is first recorded in the backup bucket (`backups`), so a restore from an
/// older snapshot repeats it; an account whose record cannot be written yet waits for the next run.
/// `retention` is the trash's, for [`crate::documents::purge_trash`]. Returns the accounts deleted.
#[tracing::instrument(skip_all)]
pub async fn purge_due(
    pool: &PgPool,
    store: &ObjectStore,
    backups: &ObjectStore,
    keys: &BackupKeys,
    retention: Duration,
) -> Result<u64> {
    let due = sqlx::query_scalar!(
        r#"select id as "id: UserId" from users
           where deletion_requested_at < now() - $1::float8 * interval '1 second' and deleted_at is null
           limit 100"#,
        GRACE.as_seconds_f64()
    )
    .fetch_all(pool)
    .await?;
    let mut deleted = 0;
    for user in &due {
        let (name, signed) = markers::seal_deletion(keys, *user)?;
        // The account's row is locked from here to the commit, and checked due under the lock: a
        // sign-in cancelling the deletion waits, then finds the account deleted. So the record is never
        // written for a deletion that was cancelled (it would make a later restore delete a live
        // account, and a key without delete rights could not take it back).
        let mut tx = pool.begin().await?;
        if !lock_if_due(&mut tx, *user, true).await? {
            continue;
        }
        if let Err(err) = backups.put_bytes(&name, signed, "application/octet-stream").await {
            tracing::warn!(account = %user, error = %err, "cannot record a deletion in the backup bucket yet; it waits");
            continue;
        }
        let erased = async move {
            erase(&mut tx, *user).await?;
            tx.commit().await?;
            Ok::<_, Error>(())
        }
        .await;
        if let Err(err) = erased {
            // Not deleted after all: its record must not make a restore delete it.
            if let Err(err) = backups.delete(&name).await {
                tracing::warn!(account = %user, error = %err, "cannot remove the record of a deletion that failed");
            }
            return Err(err);
        }
        deleted += 1;
    }
    // The uploads were put in the trash as if long ago: the purge removes their objects, then rows.
    crate::documents::purge_trash(pool, store, retention).await?;
    Ok(deleted)
}

/// What [`reapply_after_restore`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reapplied {
    /// Accounts deleted again.
    pub deleted: u64,
    /// Markers not applied because no trusted key signed them for their name, each with why.
    pub refused: Vec<String>,
}

/// After a restore: deletes again the accounts deleted since the snapshot (their markers in the backup
/// bucket, each signed: one that is not is refused and named, never applied), and purges their restored
/// uploads.
pub async fn reapply_after_restore(
    pool: &PgPool,
    documents: &ObjectStore,
    backups: &ObjectStore,
    keys: &BackupKeys,
) -> Result<Reapplied> {
    let marked = markers::deleted_since(pool, backups, keys).await?;
    let mut done = Reapplied {
        deleted: 0,
        refused: marked.refused,
    };
    for user in marked.accounts {
        delete_account(pool, user).await?;
        done.deleted += 1;
    }
    if done.deleted > 0 {
        crate::documents::purge_trash(pool, documents, LONG_AGO).await?;
    }
    Ok(done)
}

/// Deletes `user`'s account (see the module) in one transaction, if it is not deleted yet (a restore
/// repeating a deletion). Returns whether it was deleted.
async fn delete_account(pool: &PgPool, user: UserId) -> Result<bool> {
    let mut tx = pool.begin().await?;
    if !lock_if_due(&mut tx, user, false).await? {
        return Ok(false);
    }
    erase(&mut tx, user).await?;
    tx.commit().await?;
    Ok(true)
}

/// Locks `user`'s row in `tx` and says whether it is there to delete: not deleted yet, and (with
/// `only_if_due`) its deletion still requested and past its grace period. A sign-in that cancels the
/// deletion takes the same lock: a sign-in during the purge either cancels it whole or comes after it,
/// never between.
async fn lock_if_due(tx: &mut Transaction<'_, Postgres>, user: UserId, only_if_due: bool) -> Result<bool> {
    let still_due = sqlx::query_scalar!(
        r#"select coalesce(deletion_requested_at < now() - $2::float8 * interval '1 second', false) as "due!"
           from users where id = $1 and deleted_at is null for update"#,
        user as UserId,
        GRACE.as_seconds_f64()
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(match still_due {
        None => false,
        Some(due) => due || !only_if_due,
    })
}

/// Deletes `user` in `tx` (its row locked by [`lock_if_due`]): see the module.
async fn erase(tx: &mut Transaction<'_, Postgres>, user: UserId) -> Result<()> {
    // Own uploads: into the trash as if deleted long ago, for the purge to remove object and row.
    sqlx::query!(
        "update documents set deleted_at = '-infinity' where uploaded_by = $1",
        user as UserId
    )
    .execute(&mut **tx)
    .await?;
    // Every pet of theirs is archived and detached from the person (pets are never deleted: the
    // schema forbids it). One a clinic wrote records for stays with the clinics that wrote them, as
    // their record; every other share ends, and a pet no clinic wrote about keeps no notes, microchip
    // or claim code, and nobody can open it any more.
    sqlx::query!(
        r#"
        delete from pet_clinic_access a
        where a.pet_id in (select id from pets where owner_id = $1)
          and not exists (select from medical_records r where r.pet_id = a.pet_id and r.clinic_id = a.clinic_id)
          and not exists (select from documents d where d.pet_id = a.pet_id and d.charged_clinic_id = a.clinic_id
                          and d.deleted_at is null)
        "#,
        user as UserId
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!(
        "delete from pet_claim_codes where pet_id in (select id from pets where owner_id = $1)",
        user as UserId
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!(
        r#"
        update pets p set owner_id = null, owner_name = null, owner_email = null, detached_at = now(),
                          archived_at = coalesce(p.archived_at, now()),
                          notes = case when kept then p.notes end,
                          microchip = case when kept then p.microchip end
        from (select id, exists (select from medical_records r where r.pet_id = pets.id)
                         or exists (select from documents d where d.pet_id = pets.id
                                    and d.charged_clinic_id is not null and d.deleted_at is null) as kept
              from pets where owner_id = $1) mine
        where p.id = mine.id
        "#,
        user as UserId
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!(
        r#"
        update users set email = 'deleted-' || id || '@deleted.invalid', display_name = 'Deleted account',
                         password_hash = '!', disabled_at = coalesce(disabled_at, now()), time_zone = null,
                         session_generation = session_generation + 1, deleted_at = now()
        where id = $1
        "#,
        user as UserId
    )
    .execute(&mut **tx)
    .await?;
    crate::auth::two_factor::clear(tx, user).await?;
    sqlx::query!("delete from password_resets where user_id = $1", user as UserId)
        .execute(&mut **tx)
        .await?;
    audit::record(
        &mut **tx,
        Event::new(Action::DeleteAccount, None, None).target("user", user.0),
    )
    .await?;
    Ok(())
}
