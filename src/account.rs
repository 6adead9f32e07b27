//! What every signed-in user does with their own account: choose a time zone, change the password.

use crate::{
    access::Actor,
    audit::{self, Action},
    auth::PasswordHasher,
    clock,
    domain::{InvalidInput, NewPassword, UserId},
    error::{Error, Result},
};
use sqlx::PgPool;

/// Sets the user's time zone (an IANA name such as `Europe/Berlin`).
#[tracing::instrument(skip_all, fields(actor = %actor.user.id))]
pub async fn set_time_zone(pool: &PgPool, actor: &Actor, zone: &str) -> Result<()> {
    let zone = zone.trim();
    if !clock::is_known_zone(zone) {
        return Err(InvalidInput::new("time_zone", "Choose a time zone from the list.").into());
    }
    sqlx::query!(
        "update users set time_zone = $2 where id = $1",
        actor.user.id as UserId,
        zone
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Changes the password after checking the current one. All the user's sessions end (the generation is
/// bumped); the new generation is returned so the current session can continue.
#[tracing::instrument(skip_all, fields(actor = %actor.user.id))]
pub async fn change_password(
    pool: &PgPool,
    hasher: &PasswordHasher,
    limits: &crate::rate_limit::AccountLimits,
    actor: &Actor,
    current: &str,
    new: &str,
) -> Result<i64> {
    NewPassword::check_length(new).map_err(|err| InvalidInput::new("new_password", err.message))?;
    // Counted before the current password is checked: a stolen session cannot guess it at leisure.
    crate::rate_limit::take(
        pool,
        &crate::rate_limit::Key::PasswordConfirmation(actor.user.id),
        limits.password_changes_per_account,
    )
    .await?;
    let new = hasher
        .check_new(
            new,
            &[actor.user.email.as_str(), actor.user.display_name.as_str()],
        )
        .await
        .map_err(|err| InvalidInput::new("new_password", err.message))?;
    let hash = sqlx::query_scalar!(
        "select password_hash from users where id = $1",
        actor.user.id as UserId
    )
    .fetch_one(pool)
    .await?;
    if !hasher.verify(Some(&hash), current).await {
        return Err(InvalidInput::new("current_password", "The current password is not right.").into());
    }
    let new_hash = hasher.hash(new.expose()).await;
    let mut tx = pool.begin().await?;
    let generation = sqlx::query_scalar!(
        "update users set password_hash = $2, session_generation = session_generation + 1 where id = $1
         returning session_generation",
        actor.user.id as UserId,
        new_hash
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    audit::record(
        &mut *tx,
        actor
            .event(Action::ChangePassword)
            .target("user", actor.user.id.0),
    )
    .await?;
    tx.commit().await?;
    Ok(generation)
}
