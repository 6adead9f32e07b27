//! Owners sign up by e-mail: the form keeps what was typed as a pending sign-up and mails a link; the
//! account exists only once the link is followed. The form's answer is the same whether or not the
//! address has an account (its owner gets a mail saying someone tried), so it tells a stranger nothing.

use super::{Account, NewUser, PasswordHasher, insert_user};
use crate::{
    audit::{self, Action, Event},
    domain::{DisplayName, Email, InvalidInput, NewPassword, PetId, Role, Roles, UserId},
    error::{Error, Result},
    mail::{self, Mail, tokens},
    rate_limit,
};
use sqlx::PgPool;
use std::net::IpAddr;

/// How long a sign-up link works.
pub const VERIFICATION_VALID_FOR: time::Duration = time::Duration::hours(48);

/// What a pet owner types into the sign-up form.
#[derive(Debug, Clone, Copy)]
pub struct Registration<'a> {
    /// E-mail address.
    pub email: &'a str,
    /// The name they are shown by.
    pub display_name: &'a str,
    /// Their chosen password.
    pub password: &'a str,
    /// A claim code from a clinic, to take a walk-in patient into the new account (optional).
    pub claim_code: Option<&'a str>,
    /// Where the request came from.
    pub client_addr: Option<IpAddr>,
}

/// What the sign-up form answers, whatever happened next.
pub const CHECK_YOUR_MAIL: &str =
    "Check your e-mail: we sent a link to finish creating your account. It works for 48 hours.";

/// Takes a sign-up: checks the form, then mails a link that creates the account (or, for an address that
/// has one, a note that someone tried). Queues the mail; returns whether any was queued (callers wake
/// the sender; the person is told the same either way).
#[tracing::instrument(skip_all)]
pub async fn register_owner(
    pool: &PgPool,
    hasher: &PasswordHasher,
    limits: &rate_limit::AccountLimits,
    form: Registration<'_>,
) -> Result<bool> {
    let (email, display_name) = (Email::parse(form.email)?, DisplayName::parse(form.display_name)?);
    NewPassword::check_length(form.password)?;
    if let Some(addr) = form.client_addr {
        rate_limit::take(
            pool,
            &rate_limit::Key::Register(addr),
            limits.registrations_per_address,
        )
        .await?;
    }
    // Scored only after the address's limit: scoring is the costly part of a sign-up before its hash.
    let user = NewUser {
        password: hasher
            .check_new(form.password, &[form.email, form.display_name])
            .await?,
        email,
        display_name,
        roles: Roles::new([Role::Owner]),
        clinic_id: None,
    };
    let claim_code = match form.claim_code.map(str::trim).filter(|code| !code.is_empty()) {
        Some(code) => {
            let canonical = crate::claim::normalise(code).ok_or_else(|| {
                InvalidInput::new(
                    "claim_code",
                    "A claim code has 12 letters and digits, like ABCD-EFGH-JKMN.",
                )
            })?;
            // Checked now (counted against this address's sign-ups above) so a mistyped code is told at
            // once; claimed only when the address is confirmed.
            if !crate::pets::claim_code_is_live(pool, &canonical).await? {
                return Err(InvalidInput::new("claim_code", crate::pets::INVALID_CODE).into());
            }
            Some(canonical)
        }
        None => None,
    };
    // Hashed whether or not the address has an account, so both answers take as long.
    let password_hash = hasher.hash(user.password.expose()).await;
    let recipient_key = rate_limit::Key::MailTo(user.email.to_string());
    if let rate_limit::Verdict::Refused { .. } =
        rate_limit::try_take(pool, &recipient_key, limits.mails_per_recipient).await?
    {
        tracing::info!("sign-up mail not sent: this address had its share of mail for now");
        return Ok(false);
    }
    let existing = sqlx::query_scalar!(
        "select display_name from users where email = $1",
        user.email.as_str()
    )
    .fetch_optional(pool)
    .await?;
    let mut tx = pool.begin().await?;
    match existing {
        Some(name) => {
            mail::enqueue(&mut *tx, &user.email, &Mail::AlreadyRegistered { name }).await?;
        }
        None => {
            let token = tokens::new_token();
            sqlx::query!(
                r#"
                insert into pending_registrations (token_hash, email, display_name, password_hash, claim_code, expires_at)
                values ($1, $2, $3, $4, $5, now() + $6::float8 * interval '1 second')
                "#,
                tokens::hash(&token),
                user.email.as_str(),
                user.display_name.as_str(),
                password_hash,
                claim_code,
                VERIFICATION_VALID_FOR.as_seconds_f64(),
            )
            .execute(&mut *tx)
            .await?;
            let mail = Mail::VerifyAddress {
                name: user.display_name.as_str().to_owned(),
                token,
            };
            mail::enqueue(&mut *tx, &user.email, &mail).await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// A confirmed sign-up: the new account, and what became of the claim code given with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The new account (session generation 0).
    pub user_id: UserId,
    /// The claimed pet; `Some(None)` when a code was given but no longer worked.
    pub claim: Option<Option<PetId>>,
}

/// What a used, expired or unknown sign-up link answers.
pub const LINK_NOT_VALID: &str = "This link does not work any more: it was used already or is older than 48 hours. Register again for a new one.";

/// What the page a sign-up link leads to sends.
#[derive(Debug, Clone, Copy)]
pub struct Confirmation<'a> {
    /// The link's token.
    pub token: &'a str,
    /// The password chosen at sign-up, typed again.
    pub password: &'a str,
    /// Where the request came from.
    pub client_addr: Option<IpAddr>,
}

/// What a sign-up confirmation with the wrong password answers.
pub const WRONG_SIGN_UP_PASSWORD: &str = "That is not the password chosen when signing up. If you did not \
     sign up for Pawfile yourself, ignore the mail: nothing is created without that password.";

/// Follows a sign-up link: with the password chosen at sign-up, creates the account (the address is now
/// confirmed) and claims the pet of the code given at sign-up, if it still works. The link works once;
/// other pending sign-ups for the address end with it. A wrong password creates nothing, keeps the link,
/// and counts as a failed sign-in against the address (so the link's holder cannot guess at leisure).
#[tracing::instrument(skip_all)]
pub async fn verify_email(
    pool: &PgPool,
    hasher: &PasswordHasher,
    limits: &rate_limit::AccountLimits,
    confirmation: Confirmation<'_>,
) -> Result<Verified> {
    let Confirmation {
        token,
        password,
        client_addr,
    } = confirmation;
    let found = sqlx::query!(
        r#"select email, password_hash, expires_at > now() as "live!" from pending_registrations where token_hash = $1"#,
        tokens::hash(token),
    )
    .fetch_optional(pool)
    .await?;
    let Some(found) = found.filter(|found| found.live) else {
        // An expired link is deleted all the same.
        sqlx::query!(
            "delete from pending_registrations where token_hash = $1",
            tokens::hash(token)
        )
        .execute(pool)
        .await?;
        return Err(InvalidInput::new("token", LINK_NOT_VALID).into());
    };
    let email = Email::parse(&found.email)?;
    let attempts = super::Attempts::take(pool, limits, Some(&email), client_addr, None).await?;
    if !hasher.verify(Some(&found.password_hash), password).await {
        attempts
            .fail(pool, "wrong_sign_up_password", None, client_addr)
            .await?;
        return Err(InvalidInput::new("password", WRONG_SIGN_UP_PASSWORD).into());
    }
    attempts.give_back(pool).await?;
    let mut tx = pool.begin().await?;
    // Taken once: a second confirmation (or a race with one) finds the link spent.
    let pending = sqlx::query!(
        r#"
        delete from pending_registrations where token_hash = $1 and expires_at > now()
        returning email, display_name, password_hash, claim_code
        "#,
        tokens::hash(token),
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| InvalidInput::new("token", LINK_NOT_VALID))?;
    sqlx::query!(
        "delete from pending_registrations where email = $1",
        pending.email
    )
    .execute(&mut *tx)
    .await?;
    let (email, display_name, roles) = (
        Email::parse(&pending.email)?,
        DisplayName::parse(&pending.display_name)?,
        Roles::new([Role::Owner]),
    );
    let account = Account {
        email: &email,
        display_name: &display_name,
        roles: &roles,
        clinic_id: None,
    };
    let user_id = match insert_user(&mut tx, &pending.password_hash, account).await {
        Ok(id) => id,
        Err(Error::Conflict(_)) => {
            tx.commit().await?;
            return Err(Error::Conflict(
                "This address already has an account: sign in instead.".to_owned(),
            ));
        }
        Err(err) => return Err(err),
    };
    audit::record(
        &mut *tx,
        Event::new(Action::Register, Some(user_id), client_addr).target("user", user_id.0),
    )
    .await?;
    let claim = match &pending.claim_code {
        Some(code) => {
            let pet = crate::pets::claim_in_transaction(&mut tx, user_id, code).await?;
            if let Some(pet) = pet {
                audit::record(
                    &mut *tx,
                    Event::new(Action::ClaimPet, Some(user_id), client_addr)
                        .target("pet", pet.0)
                        .pet(pet),
                )
                .await?;
            }
            Some(pet)
        }
        None => None,
    };
    tx.commit().await?;
    Ok(Verified { user_id, claim })
}

/// Deletes sign-ups whose link expired.
pub async fn prune(pool: &PgPool) -> Result<u64> {
    Ok(
        sqlx::query!("delete from pending_registrations where expires_at < now()")
            .execute(pool)
            .await?
            .rows_affected(),
    )
}
