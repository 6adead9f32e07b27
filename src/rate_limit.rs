//! Fixed-window rate limits, counted in Postgres so every replica sees the same numbers.

use crate::error::{Error, Result};
use sqlx::PgPool;
use std::time::Duration;

/// At most `max_hits` counted events per `window`.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Events (or, for [`take_amount`], bytes) allowed per window.
    pub max_hits: i64,
    /// The window's length.
    pub window: Duration,
}

/// Failed sign-ins per account *from one client address*: enough for a person who mistypes, too few
/// for guessing. Counting per account and address means someone guessing elsewhere cannot lock the
/// owner out of their own address. (Attempts are taken before the password is checked and given back
/// when it was right, so only failures count.)
pub const FAILED_SIGN_INS_PER_ACCOUNT: Limit = Limit {
    max_hits: 10,
    window: Duration::from_secs(15 * 60),
};

/// Failed sign-ins per account from everywhere together (ASVS 2.2.1: at most 100 an hour), the ceiling
/// for guessing spread over many addresses.
pub const FAILED_SIGN_INS_PER_ACCOUNT_EVERYWHERE: Limit = Limit {
    max_hits: 100,
    window: Duration::from_secs(60 * 60),
};

/// Password changes per account (each costs two hashes, and a stolen session must not be able to
/// guess the current password at leisure).
pub const PASSWORD_CHANGES_PER_ACCOUNT: Limit = Limit {
    max_hits: 10,
    window: Duration::from_secs(60 * 60),
};

/// Failed sign-ins per client address (a clinic behind one NAT address has many users).
pub const FAILED_SIGN_INS_PER_ADDRESS: Limit = Limit {
    max_hits: 50,
    window: Duration::from_secs(15 * 60),
};

/// Registrations per client address.
pub const REGISTRATIONS_PER_ADDRESS: Limit = Limit {
    max_hits: 20,
    window: Duration::from_secs(60 * 60),
};

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
pub async fn take(pool: &PgPool, key: &str, limit: Limit) -> Result<()> {
    match try_take(pool, key, limit).await? {
        Verdict::Allowed => Ok(()),
        Verdict::Refused { retry_after, .. } => Err(Error::RateLimited {
            retry_after,
            message: None,
        }),
    }
}

/// As [`take`], telling a refusal apart from a failure.
pub async fn try_take(pool: &PgPool, key: &str, limit: Limit) -> Result<Verdict> {
    let row = sqlx::query!(
        r#"
        insert into rate_limit_hits (key, window_start, hits)
        values ($1, to_timestamp(floor(extract(epoch from now())::float8 / $2::float8) * $2::float8), 1)
        on conflict (key, window_start) do update set hits = rate_limit_hits.hits + 1
        returning hits,
                  extract(epoch from window_start + make_interval(secs => $2::float8) - now())::float8 as "retry_after_secs!"
        "#,
        key,
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
pub async fn take_amount(pool: &PgPool, key: &str, amount: u64, limit: Limit) -> Result<()> {
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
            key,
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
pub async fn count_amount(pool: &PgPool, key: &str, amount: i64, limit: Limit) -> Result<()> {
    sqlx::query!(
        r#"
        insert into rate_limit_hits (key, window_start, hits)
        values ($1, to_timestamp(floor(extract(epoch from now())::float8 / $2::float8) * $2::float8), $3)
        on conflict (key, window_start) do update set hits = rate_limit_hits.hits + excluded.hits
        "#,
        key,
        window_secs(limit),
        amount,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Returns an attempt taken with [`take`] (it succeeded, so it does not count against the caller).
pub async fn give_back(pool: &PgPool, key: &str, limit: Limit) -> Result<()> {
    sqlx::query!(
        r#"
        update rate_limit_hits set hits = hits - 1
        where key = $1 and hits > 0
          and window_start = to_timestamp(floor(extract(epoch from now())::float8 / $2::float8) * $2::float8)
        "#,
        key,
        window_secs(limit),
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets the counts of `key` (after a successful sign-in, say).
pub async fn reset(pool: &PgPool, key: &str) -> Result<()> {
    sqlx::query!("delete from rate_limit_hits where key = $1", key)
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
