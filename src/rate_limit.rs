//! Fixed-window rate limits, counted in Postgres so every replica sees the same numbers.

use crate::{
    domain::UserId,
    error::{Error, Result},
    net::limit_key,
};
use sqlx::PgPool;
use std::{fmt, net::IpAddr, time::Duration};

/// What a limit counts, and whose: the one place where the key of its counter (a row of
/// `rate_limit_hits`) is spelled. An address counts by [`limit_key`] (an IPv6 client by its /64).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// Sign-ups from an address.
    Register(IpAddr),
    /// Password-reset requests from an address.
    PasswordReset(IpAddr),
    /// Failed sign-ins to an account (by its address, normalised), from anywhere; as a prefix, also
    /// [`Key::SignInAccountFrom`] of every address.
    SignInAccount(String),
    /// Failed sign-ins to an account from one address.
    SignInAccountFrom(String, IpAddr),
    /// Failed sign-ins from an address.
    SignInFrom(IpAddr),
    /// A user confirming their password to change it or to delete their account.
    PasswordConfirmation(UserId),
    /// A user's record searches.
    Search(UserId),
    /// A user's claim-code attempts.
    Claim(UserId),
    /// The bytes a user uploads.
    UploadBytes(UserId),
    /// The bytes a user downloads.
    DownloadBytes(UserId),
    /// A user's pet exports.
    Exports(UserId),
    /// Mail to an address (sign-up and reset links).
    MailTo(String),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Register(addr) => write!(f, "register:addr:{}", limit_key(*addr)),
            Key::PasswordReset(addr) => write!(f, "password_reset:addr:{}", limit_key(*addr)),
            Key::SignInAccount(email) => write!(f, "sign_in:account:{email}"),
            Key::SignInAccountFrom(email, addr) => {
                write!(f, "sign_in:account:{email}:addr:{}", limit_key(*addr))
            }
            Key::SignInFrom(addr) => write!(f, "sign_in:addr:{}", limit_key(*addr)),
            Key::PasswordConfirmation(user) => write!(f, "password_change:user:{user}"),
            Key::Search(user) => write!(f, "search:user:{user}"),
            Key::Claim(user) => write!(f, "claim:user:{user}"),
            Key::UploadBytes(user) => write!(f, "upload_bytes:user:{user}"),
            Key::DownloadBytes(user) => write!(f, "download_bytes:user:{user}"),
            Key::Exports(user) => write!(f, "exports:user:{user}"),
            Key::MailTo(address) => write!(f, "mail:to:{address}"),
        }
    }
}

/// At most `max_hits` counted events per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Events (or, for [`take_amount`], bytes) allowed per window.
    pub max_hits: i64,
    /// The window's length.
    pub window: Duration,
}

impl Limit {
    /// `max_hits` per `window`.
    pub const fn new(max_hits: i64, window: Duration) -> Self {
        Self { max_hits, window }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.max_hits, humantime::format_duration(self.window))
    }
}

impl std::str::FromStr for Limit {
    type Err = String;

    /// Parses `COUNT/WINDOW`, such as `10/15m` or `100/1h`.
    fn from_str(value: &str) -> std::result::Result<Self, Self::Err> {
        let expected = || format!("{value:?}: expected a count and a window, such as 10/15m or 100/1h");
        let (count, window) = value.trim().split_once('/').ok_or_else(expected)?;
        let max_hits = count.trim().parse::<i64>().map_err(|_| expected())?;
        let window = humantime::parse_duration(window.trim()).map_err(|_| expected())?;
        if max_hits < 1 || window.as_secs() < 1 {
            return Err(format!(
                "{value:?}: the count must be at least 1 and the window at least a second"
            ));
        }
        Ok(Self { max_hits, window })
    }
}

const MINUTE: Duration = Duration::from_secs(60);
const MINUTES_15: Duration = Duration::from_secs(15 * 60);
const HOUR: Duration = Duration::from_secs(60 * 60);

/// The limits on what accounts do that an attacker would repeat: guessing passwords and claim codes,
/// creating accounts. Each is a setting (`PAWFILE_LIMIT_*`); the defaults are below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountLimits {
    /// Failed sign-ins per account *from one client address*: enough for a person who mistypes, too
    /// few for guessing. Counting per account and address means someone guessing elsewhere cannot lock
    /// the owner out of their own address. (Attempts are taken before the password is checked and given
    /// back when it was right, so only failures count.) Default 10 per 15 minutes.
    pub sign_in_failures_per_account_and_address: Limit,
    /// Failed sign-ins per client address (a clinic behind one NAT address has many users). Default 50
    /// per 15 minutes.
    pub sign_in_failures_per_address: Limit,
    /// Failed sign-ins per account from everywhere together (ASVS 2.2.1: at most 100 an hour), the
    /// ceiling for guessing spread over many addresses.
    pub sign_in_failures_per_account: Limit,
    /// Registrations per client address. Default 20 per hour.
    pub registrations_per_address: Limit,
    /// Password changes per account (each costs two hashes, and a stolen session must not be able to
    /// guess the current password at leisure). Default 10 per hour.
    pub password_changes_per_account: Limit,
    /// Claim-code attempts per user (a code has 60 bits; this stops guessing long before luck). Default
    /// 10 per hour.
    pub claim_attempts_per_user: Limit,
    /// "Forgot password" requests per client address. Default 20 per hour.
    pub password_resets_per_address: Limit,
    /// Mails that requests nobody signed in for (sign-up, forgotten password) may send to one address:
    /// beyond it the answer stays the same and nothing is sent, so nobody can flood an inbox. Default 5
    /// per hour.
    pub mails_per_recipient: Limit,
    /// Record searches per user (each is a full-text query over every record the user may read).
    /// Default 60 per minute.
    pub searches_per_user: Limit,
}

impl AccountLimits {
    /// The defaults.
    pub const DEFAULT: Self = Self {
        sign_in_failures_per_account_and_address: Limit::new(10, MINUTES_15),
        sign_in_failures_per_address: Limit::new(50, MINUTES_15),
        sign_in_failures_per_account: Limit::new(100, HOUR),
        registrations_per_address: Limit::new(20, HOUR),
        password_changes_per_account: Limit::new(10, HOUR),
        claim_attempts_per_user: Limit::new(10, HOUR),
        password_resets_per_address: Limit::new(20, HOUR),
        mails_per_recipient: Limit::new(5, HOUR),
        searches_per_user: Limit::new(60, MINUTE),
    };
}

impl Default for AccountLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

fn window_secs(limit: Limit) -> f64 {
    limit.window.as_secs().max(1) as f64
}

/// What [`try_take`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the allowance; the attempt is counted.
    Allowed,
    /// Over the allowance until `retry_after` has passed.
    Refused {
        /// When the window ends.
        retry_after: Duration,
        /// Whether this is the first refusal of the window (the one worth recording; the count of the
        /// others is in the counter).
        first: bool,
    },
}

/// Takes one attempt from `key`'s allowance in the current window, atomically, before the work it
/// guards: concurrent attempts cannot all slip under the limit. Fails with [`Error::RateLimited`] when
/// the allowance is used up. An attempt that turns out fine can be given back with [`give_back`].
pub async fn take(pool: &PgPool, key: &Key, limit: Limit) -> Result<()> {
    match try_take(pool, key, limit).await? {
        Verdict::Allowed => Ok(()),
        Verdict::Refused { retry_after, .. } => Err(Error::RateLimited {
            retry_after,
            message: None,
        }),
    }
}

/// As [`take`], telling a refusal apart from a failure.
pub async fn try_take(pool: &PgPool, key: &Key, limit: Limit) -> Result<Verdict> {
    let row = sqlx::query!(
        r#"
        insert into rate_limit_hits (key, window_start, hits)
        values ($1, to_timestamp(floor(extract(epoch from now())::float8 / $2::float8) * $2::float8), 1)
        on conflict (key, window_start) do update set hits = rate_limit_hits.hits + 1
        returning hits,
                  extract(epoch from window_start + make_interval(secs => $2::float8) - now())::float8 as "retry_after_secs!"
        "#,
        key.to_string(),
        window_secs(limit),
    )
    .fetch_one(pool)
    .await?;
    if row.hits > limit.max_hits {
        return Ok(Verdict::Refused {
            retry_after: Duration::from_secs_f64(row.retry_after_secs.max(1.0).ceil()),
            first: row.hits == limit.max_hits + 1,
        });
    }
    Ok(Verdict::Allowed)
}

/// Takes `amount` (bytes, say) from `key`'s allowance in the current window, atomically and only if all
/// of it fits: a request that would go over is refused whole ([`Error::RateLimited`], with the time
/// until the window ends) and counts nothing.
pub async fn take_amount(pool: &PgPool, key: &Key, amount: u64, limit: Limit) -> Result<()> {
    let amount = i64::try_from(amount).unwrap_or(i64::MAX);
    let taken = amount <= limit.max_hits
        && sqlx::query_scalar!(
            r#"
            insert into rate_limit_hits (key, window_start, hits)
            values ($1, to_timestamp(floor(extract(epoch from now())::float8 / $2::float8) * $2::float8), $3)
            on conflict (key, window_start) do update set hits = rate_limit_hits.hits + excluded.hits
                where rate_limit_hits.hits + excluded.hits <= $4
            returning hits
            "#,
            key.to_string(),
            window_secs(limit),
            amount,
            limit.max_hits,
        )
        .fetch_optional(pool)
        .await?
        .is_some();
    if taken {
        return Ok(());
    }
    let window = limit.window.as_secs().max(1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    Err(Error::RateLimited {
        retry_after: Duration::from_secs(window - now % window),
        message: None,
    })
}

/// Adds `amount` to `key`'s count in the current window whether or not it fits (for what was already
/// done, such as an upload of unknown length once it has arrived): the next [`take_amount`] sees it.
pub async fn count_amount(pool: &PgPool, key: &Key, amount: i64, limit: Limit) -> Result<()> {
    sqlx::query!(
        r#"
        insert into rate_limit_hits (key, window_start, hits)
        values ($1, to_timestamp(floor(extract(epoch from now())::float8 / $2::float8) * $2::float8), $3)
        on conflict (key, window_start) do update set hits = rate_limit_hits.hits + excluded.hits
        "#,
        key.to_string(),
        window_secs(limit),
        amount,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Returns an attempt taken with [`take`] (it succeeded, so it does not count against the caller).
pub async fn give_back(pool: &PgPool, key: &Key, limit: Limit) -> Result<()> {
    sqlx::query!(
        r#"
        update rate_limit_hits set hits = hits - 1
        where key = $1 and hits > 0
          and window_start = to_timestamp(floor(extract(epoch from now())::float8 / $2::float8) * $2::float8)
        "#,
        key.to_string(),
        window_secs(limit),
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets the counts of `key` (after a successful sign-in, say).
pub async fn reset(pool: &PgPool, key: &Key) -> Result<()> {
    sqlx::query!("delete from rate_limit_hits where key = $1", key.to_string())
        .execute(pool)
        .await?;
    Ok(())
}

/// Forgets the counters of `key` and of every key under it (`key:…`).
pub async fn reset_with_prefix(pool: &PgPool, key: &Key) -> Result<()> {
    sqlx::query!(
        "delete from rate_limit_hits where key = $1 or starts_with(key, $1 || ':')",
        key.to_string()
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Deletes counters of windows that ended more than a day ago.
pub async fn prune(pool: &PgPool) -> Result<u64> {
    let deleted = sqlx::query!("delete from rate_limit_hits where window_start < now() - interval '1 day'")
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The counters live in PostgreSQL across upgrades: each key is spelled as it always was.
    #[test]
    fn keys_are_spelled_as_their_counters_were() {
        let user = UserId(uuid::Uuid::nil());
        let nil = "00000000-0000-0000-0000-000000000000";
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let v6: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        let email = "ann@example.org".to_owned();
        for (key, spelled) in [
            (Key::Register(v4), format!("register:addr:{}", limit_key(v4))),
            (
                Key::PasswordReset(v6),
                format!("password_reset:addr:{}", limit_key(v6)),
            ),
            (
                Key::SignInAccount(email.clone()),
                format!("sign_in:account:{email}"),
            ),
            (
                Key::SignInAccountFrom(email.clone(), v4),
                format!("sign_in:account:{email}:addr:{}", limit_key(v4)),
            ),
            (Key::SignInFrom(v6), format!("sign_in:addr:{}", limit_key(v6))),
            (
                Key::PasswordConfirmation(user),
                format!("password_change:user:{nil}"),
            ),
            (Key::Search(user), format!("search:user:{nil}")),
            (Key::Claim(user), format!("claim:user:{nil}")),
            (Key::UploadBytes(user), format!("upload_bytes:user:{nil}")),
            (Key::DownloadBytes(user), format!("download_bytes:user:{nil}")),
            (Key::Exports(user), format!("exports:user:{nil}")),
            (Key::MailTo(email.clone()), format!("mail:to:{email}")),
        ] {
            assert_eq!(key.to_string(), spelled);
        }
        // An account's key is the prefix of its per-address keys (reset_with_prefix clears both).
        let account = Key::SignInAccount(email.clone()).to_string();
        assert!(
            Key::SignInAccountFrom(email, v4)
                .to_string()
                .starts_with(&format!("{account}:"))
        );
    }

    #[test]
    fn limits_parse_from_count_and_window() {
        assert_eq!(
            "10/15m".parse::<Limit>().unwrap(),
            Limit::new(10, Duration::from_secs(900))
        );
        assert_eq!(
            " 100 / 1h ".parse::<Limit>().unwrap(),
            Limit::new(100, Duration::from_secs(3600))
        );
        for bad in ["10", "ten/1h", "10/soon", "0/1h", "-1/1h", "10/0s", "/1h"] {
            assert!(bad.parse::<Limit>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn limits_print_as_they_parse() {
        for limit in [
            AccountLimits::DEFAULT.sign_in_failures_per_account_and_address,
            AccountLimits::DEFAULT.sign_in_failures_per_account,
        ] {
            assert_eq!(limit.to_string().parse::<Limit>().unwrap(), limit);
        }
        assert_eq!(
            AccountLimits::DEFAULT.sign_in_failures_per_account.to_string(),
            "100/1h"
        );
    }
}
