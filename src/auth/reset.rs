//! "Forgot password": a single-use link by mail, valid for an hour. Asking answers the same whether or
//! not the address has an account; using the link sets the new password, ends every session of the
//! account, lifts the sign-in throttle on it, and is audited.

use super::PasswordHasher;
use crate::{
    audit::{self, Action, Event},
    domain::{Email, InvalidInput, UserId},
    error::Result,
    mail::{self, Mail, tokens},
    rate_limit,
};
use sqlx::PgPool;
use std::net::IpAddr;

/// How long a reset link works.
pub const RESET_VALID_FOR: time::Duration = time::Duration::hours(1);

/// What "forgot password" answers, whatever happened next.
pub const RESET_REQUESTED: &str = "If an account uses this address, we sent it a link to choose a new password. \
     It works for an hour.";

/// What a used, expired or unknown reset link answers.
pub const RESET_LINK_NOT_VALID: &str = "This link does not work any more: it was used already or is older than \
     an hour. Ask for a new one.";

/// Mails a reset link to the account with address `email`, if there is one and it is enabled. Returns
/// whether a mail was queued; the person is told [`RESET_REQUESTED`] either way.
#[tracing::instrument(skip_all)]
pub async fn request_password_reset(
    pool: &PgPool,
    limits: &rate_limit::AccountLimits,
    email: &str,
    client_addr: Option<IpAddr>,
) -> Result<bool> {
    let email = Email::parse(email)?;
    if let Some(addr) = client_addr {
        rate_limit::take(
            pool,
            &rate_limit::Key::PasswordReset(addr),
            limits.password_resets_per_address,
        )
        .await?;
    }
    let account = sqlx::query!(
        r#"select id as "id: UserId", display_name from users where email = $1 and disabled_at is null"#,
        email.as_str()
    )
    .fetch_optional(pool)
    .await?;
    let Some(account) = account else {
        return Ok(false);
    };
    if let rate_limit::Verdict::Refused { .. } = rate_limit::try_take(
        pool,
        &rate_limit::Key::MailTo(email.to_string()),
        limits.mails_per_recipient,
    )
    .await?
    {
        tracing::info!("reset mail not sent: this address had its share of mail for now");
        return Ok(false);
    }
    let token = tokens::new_token();
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "insert into password_resets (token_hash, user_id, expires_at) values ($1, $2, now() + $3::float8 * interval '1 second')",
        tokens::hash(&token),
        account.id as UserId,
        RESET_VALID_FOR.as_seconds_f64(),
    )
    .execute(&mut *tx)
    .await?;
    let mail = Mail::ResetPassword {
        name: account.display_name,
        token,
    };
    mail::enqueue(&mut *tx, &email, &mail).await?;
    tx.commit().await?;
    Ok(true)
}

/// Sets a new password from a reset link. Every session of the account ends (the generation moves on),
/// every other reset link of the account stops working, and failed sign-ins counted against the account
/// are forgotten. Returns the account; the person signs in with the new password.
#[tracing::instrument(skip_all)]
pub async fn reset_password(
    pool: &PgPool,
    hasher: &PasswordHasher,
    token: &str,
    new_password: &str,
    client_addr: Option<IpAddr>,
) -> Result<UserId> {
    let hash = tokens::hash(token);
    let account = sqlx::query!(
        r#"
        select u.id as "id: UserId", u.email, u.display_name
        from password_resets r join users u on u.id = r.user_id
        where r.token_hash = $1 and r.used_at is null and r.expires_at > now() and u.disabled_at is null
        "#,
        hash,
    )
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| InvalidInput::new("token", RESET_LINK_NOT_VALID))?;
    let password = hasher
        .check_new(new_password, &[&account.email, &account.display_name])
        .await
        .map_err(|err| InvalidInput::new("new_password", err.message))?;
    let password_hash = hasher.hash(password.expose()).await;
    let mut tx = pool.begin().await?;
    // Used once: a second use (or a race with one) finds the link spent.
    let used = sqlx::query!(
        "update password_resets set used_at = now() where token_hash = $1 and used_at is null and expires_at > now()",
        hash,
    )
    .execute(&mut *tx)
    .await?;
    if used.rows_affected() == 0 {
        return Err(InvalidInput::new("token", RESET_LINK_NOT_VALID).into());
    }
    sqlx::query!(
        "update password_resets set used_at = now() where user_id = $1 and used_at is null",
        account.id as UserId,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "update users set password_hash = $2, session_generation = session_generation + 1 where id = $1",
        account.id as UserId,
        password_hash,
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        Event::new(Action::ResetPassword, Some(account.id), client_addr).target("user", account.id.0),
    )
    .await?;
    tx.commit().await?;
    // The throttle on the account (from every address) is lifted: whoever was guessing no longer knows
    // the password, and the owner must not stay locked out of the account they just recovered.
    rate_limit::reset_with_prefix(pool, &rate_limit::Key::SignInAccount(account.email.to_string())).await?;
    Ok(account.id)
}

/// Deletes reset links that expired (used ones too, once expired).
pub async fn prune(pool: &PgPool) -> Result<u64> {
    Ok(
        sqlx::query!("delete from password_resets where expires_at < now()")
            .execute(pool)
            .await?
            .rows_affected(),
    )
}
