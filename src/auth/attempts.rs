//! The three sign-in limits, taken together before any secret is checked: failures per account from
//! one address, per address, and per account from everywhere. Sign-in takes them before the password;
//! so does every check of a second-factor code outside sign-in (confirming enrolment, new recovery
//! codes, turning the second factor off), so a stolen session cannot guess codes at leisure. A right
//! secret gives the attempts back; a wrong one keeps them and is audited.

use crate::{
    audit::{self, Action, Event},
    domain::{Email, UserId},
    error::{Error, Result},
    rate_limit::{self, AccountLimits, Key, Limit, Verdict},
};
use serde_json::json;
use sqlx::PgPool;
use std::net::IpAddr;

const TOO_MANY_FAILURES_EVERYWHERE: &str = "This account has had too many failed sign-ins in the last hour, \
     so signing in to it is paused for a while. If this was not you, tell your clinic's administrator.";

/// Attempts taken from the sign-in limits, until given back or kept.
#[derive(Debug)]
#[must_use = "attempts are given back after a right secret, or kept after a wrong one"]
pub struct Attempts {
    taken: Vec<(Key, Limit)>,
    /// The key of the account from this address: cleared after a right password.
    account_here: Option<Key>,
}

impl Attempts {
    /// Takes one attempt from each limit that applies (the account's when `email` is known, the
    /// address's when `client_addr` is). When one is used up, gives back what it took, audits the first
    /// refusal of the window (attributed to `actor` when known) and fails with [`Error::RateLimited`].
    pub async fn take(
        pool: &PgPool,
        limits: &AccountLimits,
        email: Option<&Email>,
        client_addr: Option<IpAddr>,
        actor: Option<UserId>,
    ) -> Result<Self> {
        let account = email.map(|email| Key::SignInAccount(email.to_string()));
        let account_here =
            email.and_then(|email| client_addr.map(|addr| Key::SignInAccountFrom(email.to_string(), addr)));
        let address = client_addr.map(Key::SignInFrom);
        let keys = [
            (
                account_here.clone(),
                limits.sign_in_failures_per_account_and_address,
                None,
            ),
            (address, limits.sign_in_failures_per_address, None),
            (
                account,
                limits.sign_in_failures_per_account,
                Some(TOO_MANY_FAILURES_EVERYWHERE),
            ),
        ];
        let mut attempts = Self {
            taken: Vec::new(),
            account_here,
        };
        for (key, limit, message) in keys {
            let Some(key) = key else { continue };
            if let Verdict::Refused { retry_after, first } = rate_limit::try_take(pool, &key, limit).await? {
                attempts.give_back(pool).await?;
                // One audit row per throttled key and window: guessing must not grow the append-only
                // audit trail without bound (the counter keeps the count).
                if first {
                    audit::record(pool, failure("rate_limited", actor, client_addr)).await?;
                }
                return Err(Error::RateLimited {
                    retry_after,
                    message: message.map(str::to_owned),
                });
            }
            attempts.taken.push((key, limit));
        }
        Ok(attempts)
    }

    /// The secret was right (or the attempt is not a failure): the attempts are given back.
    pub async fn give_back(self, pool: &PgPool) -> Result<()> {
        for (key, limit) in &self.taken {
            rate_limit::give_back(pool, key, *limit).await?;
        }
        Ok(())
    }

    /// The password was right: as [`Attempts::give_back`], and this address's failures for the account
    /// are forgotten (failures from elsewhere keep counting toward the hourly ceiling).
    pub async fn succeed(self, pool: &PgPool) -> Result<()> {
        let account_here = self.account_here.clone();
        self.give_back(pool).await?;
        if let Some(key) = account_here {
            rate_limit::reset(pool, &key).await?;
        }
        Ok(())
    }

    /// The secret was wrong: the attempts stay counted, and the failure is audited (`reason`, by
    /// `actor` when known).
    pub async fn fail(
        self,
        pool: &PgPool,
        reason: &str,
        actor: Option<UserId>,
        client_addr: Option<IpAddr>,
    ) -> Result<()> {
        audit::record(pool, failure(reason, actor, client_addr)).await?;
        Ok(())
    }
}

/// A failed sign-in's audit event. The typed address is never stored: it may be a password typed into
/// the wrong field, and a person who deletes their account must not stay in the (append-only) trail by
/// address. A failure against an account names the account.
fn failure(reason: &str, actor: Option<UserId>, client_addr: Option<IpAddr>) -> Event {
    Event::new(Action::SignInFailed, actor, client_addr).detail(json!({ "reason": reason }))
}
