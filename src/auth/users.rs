use super::PasswordHasher;
use crate::{
    audit::{self, Action, Event},
    domain::{ClinicId, DisplayName, Email, InvalidInput, NewPassword, Role, Roles, SessionUser, UserId},
    error::{Error, Result},
    rate_limit,
};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use std::net::IpAddr;

/// An account to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Sign-in address.
    pub email: Email,
    /// The name they are shown by.
    pub display_name: DisplayName,
    /// Their chosen password.
    pub password: NewPassword,
    /// What they may do.
    pub roles: Roles,
    /// Their clinic, if they are staff.
    pub clinic_id: Option<ClinicId>,
}

impl NewUser {
    /// The account's fields, without the password.
    pub fn account(&self) -> Account<'_> {
        Account {
            email: &self.email,
            display_name: &self.display_name,
            roles: &self.roles,
            clinic_id: self.clinic_id,
        }
    }
}

/// An account's fields as stored beside its password hash.
#[derive(Debug, Clone, Copy)]
pub struct Account<'a> {
    /// Sign-in address.
    pub email: &'a Email,
    /// The name they are shown by.
    pub display_name: &'a DisplayName,
    /// What they may do.
    pub roles: &'a Roles,
    /// Their clinic, if they are staff.
    pub clinic_id: Option<ClinicId>,
}

const EMAIL_TAKEN: &str = "An account with this e-mail address already exists. Sign in instead.";

/// Creates an account. Fails with [`Error::Conflict`] when the e-mail address is taken.
#[tracing::instrument(skip_all, fields(clinic = user.clinic_id.map(tracing::field::display)))]
pub async fn create_user(pool: &PgPool, hasher: &PasswordHasher, user: NewUser) -> Result<UserId> {
    // Hash first: a queue of sign-ups waiting for the hasher must not hold database connections.
    let password_hash = hasher.hash(user.password.expose()).await;
    let mut conn = pool.acquire().await?;
    insert_user(&mut conn, &password_hash, user.account()).await
}

/// [`create_user`] on a connection (inside a transaction, say), with the password already hashed.
#[tracing::instrument(skip_all, fields(clinic = user.clinic_id.map(tracing::field::display)))]
pub async fn insert_user(conn: &mut PgConnection, password_hash: &str, user: Account<'_>) -> Result<UserId> {
    if user.roles.has(Role::Staff) != user.clinic_id.is_some() {
        return Err(InvalidInput::new("clinic_id", "Staff accounts belong to exactly one clinic.").into());
    }
    let id = UserId::new();
    let inserted = sqlx::query!(
        r#"
        insert into users (id, email, display_name, password_hash, roles, clinic_id)
        values ($1, $2, $3, $4, $5, $6)
        on conflict (email) do nothing
        "#,
        id as UserId,
        user.email.as_str(),
        user.display_name.as_str(),
        password_hash,
        &user.roles.names(),
        user.clinic_id as Option<ClinicId>,
    )
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(Error::Conflict(EMAIL_TAKEN.to_owned()));
    }
    Ok(id)
}

/// A sign-in form as submitted.
#[derive(Debug, Clone, Copy)]
pub struct SignInAttempt<'a> {
    /// What was typed as the e-mail address.
    pub email: &'a str,
    /// What was typed as the password.
    pub password: &'a str,
    /// The second factor (a TOTP code or a recovery code), for accounts that have one on.
    pub code: Option<&'a str>,
    /// Where the attempt came from.
    pub client_addr: Option<IpAddr>,
}

/// How a sign-in attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInOutcome {
    /// The password matched: start a session for this user at this session generation.
    SignedIn {
        /// Who signed in.
        user_id: UserId,
        /// Their current session generation, to store in the session.
        generation: i64,
        /// Whether signing in cancelled a pending deletion of the account.
        deletion_cancelled: bool,
    },
    /// The password matched, and the account signs in with a second factor: ask for the code.
    CodeNeeded,
    /// Refused, with the message to show. Unknown e-mail and wrong password give the same message.
    Refused(String),
}

/// What the sign-in form shows for an unknown e-mail or a wrong password alike.
pub const WRONG_CREDENTIALS: &str = "Wrong e-mail address or password.";
const ACCOUNT_DISABLED: &str = "This account has been disabled. Ask your clinic's administrator.";

/// Checks a sign-in attempt: rate limits first, then the password (always hashing, so unknown accounts
/// take as long as known ones), then whether the account is disabled. Every attempt is audited.
#[tracing::instrument(skip_all)]
pub async fn sign_in(
    pool: &PgPool,
    hasher: &PasswordHasher,
    limits: &rate_limit::AccountLimits,
    attempt: SignInAttempt<'_>,
) -> Result<SignInOutcome> {
    let email = Email::parse(attempt.email).ok();
    // Attempts are taken before the (slow) password check, so parallel guesses cannot all slip under
    // the limit; a right password gives its attempts back.
    let attempts =
        super::attempts::Attempts::take(pool, limits, email.as_ref(), attempt.client_addr, None).await?;

    let account = match &email {
        Some(email) => sqlx::query!(
            r#"select id as "id: UserId", password_hash, session_generation, disabled_at is not null as "disabled!",
                      totp_enabled_at is not null as "two_factor!",
                      deletion_requested_at is not null as "deletion_pending!"
               from users where email = $1"#,
            email.as_str()
        )
        .fetch_optional(pool)
        .await?,
        None => None,
    };
    let password_matches = hasher
        .verify(
            account.as_ref().map(|a| a.password_hash.as_str()),
            attempt.password,
        )
        .await;

    let account = match account {
        Some(account) if password_matches => account,
        account => {
            let reason = if account.is_some() {
                "wrong_password"
            } else {
                "unknown_email"
            };
            attempts
                .fail(pool, reason, account.map(|a| a.id), attempt.client_addr)
                .await?;
            return Ok(SignInOutcome::Refused(WRONG_CREDENTIALS.to_owned()));
        }
    };
    if account.two_factor && !account.disabled {
        match attempt.code.map(str::trim).filter(|code| !code.is_empty()) {
            None => {
                // Not a failure: the form asks for the code next.
                attempts.give_back(pool).await?;
                return Ok(SignInOutcome::CodeNeeded);
            }
            // A wrong code counts as a failed sign-in (the attempts taken above stay taken).
            Some(code) if !super::two_factor::check_second_factor(pool, account.id, code).await? => {
                attempts
                    .fail(pool, "wrong_code", Some(account.id), attempt.client_addr)
                    .await?;
                return Ok(SignInOutcome::Refused(super::two_factor::WRONG_CODE.to_owned()));
            }
            Some(_) => {}
        }
    }
    if account.disabled {
        attempts.give_back(pool).await?;
        audit::record(
            pool,
            Event::new(Action::SignInFailed, Some(account.id), attempt.client_addr)
                .detail(json!({ "reason": "disabled" })),
        )
        .await?;
        return Ok(SignInOutcome::Refused(ACCOUNT_DISABLED.to_owned()));
    }
    // The right password from here clears this address's failures for the account.
    attempts.succeed(pool).await?;
    // Only an account whose deletion is pending pays for the cancelling transaction.
    let mut deletion_cancelled = false;
    if account.deletion_pending {
        match cancel_on_sign_in(pool, account.id, attempt.client_addr).await? {
            SignInDeletion::Cancelled => deletion_cancelled = true,
            // Another sign-in (a double submit, a second device) cancelled it a moment ago.
            SignInDeletion::NotPending => {}
            // The purge deleted the account between the password check and now: nothing to sign in to.
            SignInDeletion::Deleted => return Ok(SignInOutcome::Refused(WRONG_CREDENTIALS.to_owned())),
        }
    }
    audit::record(
        pool,
        Event::new(Action::SignIn, Some(account.id), attempt.client_addr),
    )
    .await?;
    Ok(SignInOutcome::SignedIn {
        deletion_cancelled,
        user_id: account.id,
        generation: account.session_generation,
    })
}

/// The user a session belongs to, if the account still exists, is enabled, and the session's generation
/// is current. Every request calls this, so disabling an account or bumping its generation ends its
/// sessions at once, on every replica.
#[tracing::instrument(skip_all, fields(user = %user_id, generation = generation))]
pub async fn load_session_user(
    pool: &PgPool,
    user_id: UserId,
    generation: i64,
) -> Result<Option<SessionUser>> {
    let row = sqlx::query!(
        r#"
        select u.id as "id: UserId", u.email, u.display_name, u.roles, u.time_zone,
               u.clinic_id as "clinic_id: ClinicId", c.name as "clinic_name?",
               u.totp_enabled_at is not null as "two_factor!"
        from users u
        left join clinics c on c.id = u.clinic_id
        where u.id = $1 and u.session_generation = $2 and u.disabled_at is null
        "#,
        user_id as UserId,
        generation,
    )
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(SessionUser {
            id: row.id,
            email: Email::parse(&row.email)?,
            display_name: row.display_name,
            roles: Roles::from_names(&row.roles),
            clinic_id: row.clinic_id,
            clinic_name: row.clinic_name,
            time_zone: row.time_zone,
            two_factor: row.two_factor,
            needs_two_factor_setup: false,
        })
    })
    .transpose()
}

/// Disables an account and ends all its sessions.
#[tracing::instrument(skip_all, fields(user = %user_id, actor = actor.map(tracing::field::display)))]
pub async fn disable_user(
    pool: &PgPool,
    user_id: UserId,
    actor: Option<UserId>,
    client_addr: Option<IpAddr>,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    let updated = sqlx::query!(
        r#"update users set disabled_at = coalesce(disabled_at, now()), session_generation = session_generation + 1
           where id = $1"#,
        user_id as UserId
    )
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    audit::record(
        &mut *tx,
        Event::new(Action::DisableUser, actor, client_addr).target("user", user_id.0),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Cancels a pending deletion of `user` (they signed in: see `deletion`), and says what it found.
/// Audited.
pub async fn cancel_on_sign_in(
    pool: &PgPool,
    user: UserId,
    client_addr: Option<IpAddr>,
) -> Result<SignInDeletion> {
    let mut tx = pool.begin().await?;
    // A locking read sees the row as the last commit left it: a purge holding the row (it locks it
    // before it writes the deletion's record) is waited for, and its deletion then seen.
    let row = sqlx::query!(
        r#"select deleted_at is null as "live!", deletion_requested_at is not null as "pending!"
             from users where id = $1 for update"#,
        user as UserId
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row.filter(|row| row.live) else {
        return Ok(SignInDeletion::Deleted);
    };
    if !row.pending {
        return Ok(SignInDeletion::NotPending);
    }
    sqlx::query!(
        "update users set deletion_requested_at = null where id = $1",
        user as UserId
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        Event::new(Action::CancelDeletion, Some(user), client_addr),
    )
    .await?;
    tx.commit().await?;
    Ok(SignInDeletion::Cancelled)
}

/// What signing in did to an account's pending deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInDeletion {
    /// It was pending and is cancelled.
    Cancelled,
    /// Nothing was pending any more (another sign-in cancelled it a moment ago): sign in as usual.
    NotPending,
    /// The purge deleted the account meanwhile: nothing to sign in to.
    Deleted,
}
