//! Two-factor sign-in with a TOTP app (RFC 6238: SHA-1, 6 digits, 30-second steps, one step of clock
//! skew either way). A code is accepted once: the newest accepted step is stored and only later steps
//! pass. Ten single-use recovery codes, stored as SHA-256, stand in for a lost phone. Admins (and
//! `pawfile reset-2fa` for the last admin) can reset a person's second factor.

use super::Attempts;
use crate::{
    access::Actor,
    audit::{self, Action, Event},
    domain::{Email, InvalidInput, TwoFactorEnrolment, UserId},
    error::{Error, Result},
    rate_limit::AccountLimits,
};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use totp_rs::{Builder, Secret, Totp};

/// How many recovery codes an account gets.
pub const RECOVERY_CODES: usize = 10;

/// What a wrong second factor answers.
pub const WRONG_CODE: &str = "That code is not right (or was used already). Enter the current code from your \
     authenticator app, or one of your recovery codes.";

/// What a sign-in without the second factor an account needs answers.
pub const CODE_NEEDED: &str =
    "Enter the 6-digit code from your authenticator app, or one of your recovery codes.";

fn totp(secret: &[u8], account: &str) -> Result<Totp> {
    Builder::new()
        .with_secret(Secret::from(secret))
        .with_issuer(Some("Pawfile"))
        .with_account_name(account)
        .build()
        .map_err(|err| Error::Conflict(format!("two-factor secret: {err}")))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// The current code for `secret` (base32), for tests and scripts that sign in as an account whose
/// secret they hold, such as the demo accounts. `offset` steps (of 30 s) from now.
pub fn code_for(secret_base32: &str, offset: i64) -> Result<String> {
    let bytes = Secret::try_from_base32(secret_base32)
        .map_err(|err| Error::Conflict(format!("not a base32 key: {err}")))?;
    let totp = totp(bytes.as_ref(), "code")?;
    let time = now().saturating_add_signed(offset * 30);
    Ok(totp.generate(time).to_string())
}

/// A recovery code as typed: upper-case letters and digits, dashes and spaces ignored.
fn normalise_recovery(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn recovery_hash(code: &str) -> Vec<u8> {
    Sha256::digest(normalise_recovery(code).as_bytes()).to_vec()
}

/// Ten new recovery codes, `XXXXX-XXXXX` from an alphabet without look-alikes (50 random bits each).
fn new_recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut code = String::with_capacity(11);
            for i in 0..10 {
                if i == 5 {
                    code.push('-');
                }
                code.push(ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char);
            }
            code
        })
        .collect()
}

/// Starts enrolment: a new secret, kept until the first right code turns it on. Refused while the
/// second factor is on (an admin resets it first).
#[tracing::instrument(skip_all, fields(actor = %actor.user.id))]
pub async fn start_enrolment(pool: &PgPool, actor: &Actor) -> Result<TwoFactorEnrolment> {
    let mut secret = [0u8; 20];
    rand::rng().fill_bytes(&mut secret);
    let updated = sqlx::query!(
        "update users set totp_secret = $2, totp_last_step = null where id = $1 and totp_enabled_at is null",
        actor.user.id as UserId,
        &secret[..],
    )
    .execute(pool)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(Error::Conflict("Two-factor sign-in is on already.".to_owned()));
    }
    let totp = totp(&secret, actor.user.email.as_str())?;
    let otpauth_url = totp
        .to_url()
        .map_err(|err| Error::Conflict(format!("otpauth URL: {err}")))?;
    let qr_svg = qrcode::QrCode::new(otpauth_url.as_bytes())
        .map_err(|err| Error::Conflict(format!("QR code: {err}")))?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    Ok(TwoFactorEnrolment {
        secret: totp.secret().to_base32(),
        otpauth_url,
        qr_svg,
    })
}

/// Turns two-factor sign-in on with the first right code from the app; returns the recovery codes (shown
/// once: only their hashes are kept). Audited.
#[tracing::instrument(skip_all, fields(actor = %actor.user.id))]
pub async fn confirm_enrolment(
    pool: &PgPool,
    limits: &AccountLimits,
    actor: &Actor,
    code: &str,
) -> Result<Vec<String>> {
    let pending = sqlx::query_scalar!(
        "select totp_secret from users where id = $1 and totp_enabled_at is null",
        actor.user.id as UserId
    )
    .fetch_optional(pool)
    .await?
    .flatten()
    .ok_or_else(|| InvalidInput::new("code", "Start setting up two-factor sign-in first."))?;
    let attempts = taken_for(pool, limits, actor).await?;
    let Some(step) = totp(&pending, actor.user.email.as_str())?.check(code.trim(), now()) else {
        return Err(wrong_code(pool, attempts, actor).await);
    };
    attempts.give_back(pool).await?;
    let codes = new_recovery_codes();
    let mut tx = pool.begin().await?;
    let enabled = sqlx::query!(
        "update users set totp_enabled_at = now(), totp_last_step = $2
         where id = $1 and totp_enabled_at is null and totp_secret = $3",
        actor.user.id as UserId,
        step as i64,
        &pending,
    )
    .execute(&mut *tx)
    .await?;
    if enabled.rows_affected() == 0 {
        return Err(InvalidInput::new("code", "Start setting up two-factor sign-in again.").into());
    }
    store_recovery_codes(&mut tx, actor.user.id, &codes).await?;
    audit::record(&mut *tx, actor.event(Action::EnableTwoFactor)).await?;
    tx.commit().await?;
    Ok(codes)
}

async fn store_recovery_codes(conn: &mut PgConnection, user: UserId, codes: &[String]) -> Result<()> {
    sqlx::query!(
        "delete from totp_recovery_codes where user_id = $1",
        user as UserId
    )
    .execute(&mut *conn)
    .await?;
    for code in codes {
        sqlx::query!(
            "insert into totp_recovery_codes (user_id, code_hash) values ($1, $2)",
            user as UserId,
            recovery_hash(code),
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// New recovery codes for the caller (the old ones stop working); needs a current code. Audited.
#[tracing::instrument(skip_all, fields(actor = %actor.user.id))]
pub async fn renew_recovery_codes(
    pool: &PgPool,
    limits: &AccountLimits,
    actor: &Actor,
    code: &str,
) -> Result<Vec<String>> {
    check_code_of(pool, limits, actor, code).await?;
    let codes = new_recovery_codes();
    let mut tx = pool.begin().await?;
    store_recovery_codes(&mut tx, actor.user.id, &codes).await?;
    audit::record(&mut *tx, actor.event(Action::RenewRecoveryCodes)).await?;
    tx.commit().await?;
    Ok(codes)
}

/// Turns the caller's second factor off, given a current code (for those whose role does not require
/// it: the server checks that). Audited.
#[tracing::instrument(skip_all, fields(actor = %actor.user.id))]
pub async fn disable(pool: &PgPool, limits: &AccountLimits, actor: &Actor, code: &str) -> Result<()> {
    check_code_of(pool, limits, actor, code).await?;
    let mut tx = pool.begin().await?;
    clear(&mut tx, actor.user.id).await?;
    audit::record(&mut *tx, actor.event(Action::DisableTwoFactor)).await?;
    tx.commit().await?;
    Ok(())
}

/// Takes the caller's attempts from the sign-in limits before a code is checked (see [`Attempts`]).
async fn taken_for(pool: &PgPool, limits: &AccountLimits, actor: &Actor) -> Result<Attempts> {
    Attempts::take(
        pool,
        limits,
        Some(&actor.user.email),
        actor.client_addr,
        Some(actor.user.id),
    )
    .await
}

/// A wrong code: counted as a failed sign-in and audited; the error to answer with.
async fn wrong_code(pool: &PgPool, attempts: Attempts, actor: &Actor) -> Error {
    match attempts
        .fail(pool, "wrong_code", Some(actor.user.id), actor.client_addr)
        .await
    {
        Ok(()) => InvalidInput::new("code", WRONG_CODE).into(),
        Err(err) => err,
    }
}

/// Checks the signed-in caller's current code (TOTP or recovery) under the sign-in limits.
async fn check_code_of(pool: &PgPool, limits: &AccountLimits, actor: &Actor, code: &str) -> Result<()> {
    let attempts = taken_for(pool, limits, actor).await?;
    if !check_second_factor(pool, actor.user.id, code).await? {
        return Err(wrong_code(pool, attempts, actor).await);
    }
    attempts.give_back(pool).await
}

/// Whether the account has two-factor sign-in on, and how many recovery codes are unused.
pub async fn status(pool: &PgPool, user: UserId) -> Result<(bool, i64)> {
    let row = sqlx::query!(
        r#"select totp_enabled_at is not null as "enabled!",
                  (select count(*) from totp_recovery_codes r where r.user_id = u.id and r.used_at is null) as "left!"
           from users u where id = $1"#,
        user as UserId
    )
    .fetch_one(pool)
    .await?;
    Ok((row.enabled, row.left))
}

/// Checks a second factor for an account with two-factor sign-in on: a TOTP code for a step later than
/// any accepted before (so each code works once), or an unused recovery code (then used up).
pub async fn check_second_factor(pool: &PgPool, user: UserId, code: &str) -> Result<bool> {
    let code = code.trim();
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() == 6 && digits.chars().all(|c| c.is_ascii_digit()) {
        let account = sqlx::query!(
            "select email, totp_secret from users where id = $1 and totp_enabled_at is not null",
            user as UserId
        )
        .fetch_optional(pool)
        .await?;
        let Some((email, Some(secret))) = account.map(|row| (row.email, row.totp_secret)) else {
            return Ok(false);
        };
        let Some(step) = totp(&secret, &email)?.check(&digits, now()) else {
            return Ok(false);
        };
        // Accepted once: only a step later than the newest accepted one moves it on.
        let accepted = sqlx::query!(
            "update users set totp_last_step = $2 where id = $1 and coalesce(totp_last_step, -1) < $2",
            user as UserId,
            step as i64,
        )
        .execute(pool)
        .await?;
        return Ok(accepted.rows_affected() == 1);
    }
    if normalise_recovery(code).len() != 10 {
        return Ok(false);
    }
    let used = sqlx::query!(
        "update totp_recovery_codes set used_at = now() where user_id = $1 and code_hash = $2 and used_at is null",
        user as UserId,
        recovery_hash(code),
    )
    .execute(pool)
    .await?;
    Ok(used.rows_affected() == 1)
}

/// Forgets `user`'s second factor: its key, its newest accepted step and its recovery codes. Returns
/// whether the account exists.
pub(crate) async fn clear(conn: &mut PgConnection, user: UserId) -> Result<bool> {
    let updated = sqlx::query!(
        "update users set totp_secret = null, totp_enabled_at = null, totp_last_step = null where id = $1",
        user as UserId
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "delete from totp_recovery_codes where user_id = $1",
        user as UserId
    )
    .execute(&mut *conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Turns someone's second factor off and deletes their recovery codes, so they enrol again at their
/// next sign-in (an admin for a lost phone; `actor` `None` is `pawfile reset-2fa`). Audited.
pub async fn reset(pool: &PgPool, actor: Option<&Actor>, user: UserId) -> Result<()> {
    let mut tx = pool.begin().await?;
    if !clear(&mut tx, user).await? {
        return Err(Error::NotFound);
    }
    let event = match actor {
        Some(actor) => actor.event(Action::ResetTwoFactor),
        None => Event::new(Action::ResetTwoFactor, None, None),
    };
    audit::record(&mut *tx, event.target("user", user.0)).await?;
    tx.commit().await?;
    Ok(())
}

/// [`reset`] by address, for `pawfile reset-2fa --email` (no actor).
pub async fn reset_by_email(pool: &PgPool, email: &Email) -> Result<UserId> {
    let user = sqlx::query_scalar!(
        r#"select id as "id: UserId" from users where email = $1"#,
        email.as_str()
    )
    .fetch_optional(pool)
    .await?
    .ok_or(Error::NotFound)?;
    reset(pool, None, user).await?;
    Ok(user)
}

/// Gives an account a known TOTP secret (base32), on: the demo accounts, whose codes the README and the
/// test helpers compute.
pub async fn set_known_secret(pool: &PgPool, user: UserId, secret_base32: &str) -> Result<()> {
    let secret = Secret::try_from_base32(secret_base32)
        .map_err(|err| Error::Conflict(format!("not a base32 key: {err}")))?;
    sqlx::query!(
        "update users set totp_secret = $2, totp_enabled_at = coalesce(totp_enabled_at, now()) where id = $1",
        user as UserId,
        secret.as_ref(),
    )
    .execute(pool)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_ten_distinct_and_forgiving_about_how_they_are_typed() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert_eq!(
            codes.iter().collect::<std::collections::HashSet<_>>().len(),
            RECOVERY_CODES
        );
        assert!(
            codes
                .iter()
                .all(|code| code.len() == 11 && code.as_bytes()[5] == b'-')
        );
        let code = &codes[0];
        assert_eq!(
            recovery_hash(code),
            recovery_hash(&code.to_lowercase().replace('-', " "))
        );
    }

    #[test]
    fn codes_for_a_known_secret_change_every_step() {
        let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
        let now = code_for(secret, 0).unwrap();
        assert_eq!(now.len(), 6);
        assert!(now.chars().all(|c| c.is_ascii_digit()));
        assert_ne!(now, code_for(secret, 2).unwrap());
    }
}
