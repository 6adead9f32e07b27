//! How much one user may do per hour, and how often what an attacker would repeat (counted in
//! PostgreSQL, so the limits hold across replicas).

use crate::rate_limit::{AccountLimits, Limit};
use bytesize::ByteSize;
use clap::Args;
use std::time::Duration;

/// The limits per user and per client address.
#[derive(Debug, Clone, Copy, Args)]
pub struct LimitSettings {
    /// Bytes one user may upload per hour (counted in PostgreSQL across replicas); more answers 429.
    #[arg(
        long = "limit-upload-per-hour",
        env = "PAWFILE_LIMIT_UPLOAD_PER_HOUR",
        default_value = "10GiB"
    )]
    pub upload_per_hour: ByteSize,
    /// Bytes one user may download per hour (files and thumbnails; a PDF viewer's many range requests
    /// count only their bytes); more answers 429.
    #[arg(
        long = "limit-download-per-hour",
        env = "PAWFILE_LIMIT_DOWNLOAD_PER_HOUR",
        default_value = "50GiB"
    )]
    pub download_per_hour: ByteSize,
    /// Zip exports one user may start per hour.
    #[arg(
        long = "limit-exports-per-hour",
        env = "PAWFILE_LIMIT_EXPORTS_PER_HOUR",
        default_value_t = 20
    )]
    pub exports_per_hour: u32,
    /// Uploads one user may run at once (counted across replicas; a server that dies frees its
    /// uploads' slots within a minute).
    #[arg(
        long = "limit-concurrent-uploads",
        env = "PAWFILE_LIMIT_CONCURRENT_UPLOADS",
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..),
        default_value_t = 10
    )]
    pub concurrent_uploads: usize,
    /// Failed sign-ins to one account from one client address, per window (`COUNT/WINDOW`); more
    /// answers 429 with `Retry-After`, and the owner at another address can still sign in.
    #[arg(
        long = "limit-sign-in-failures-per-account-and-address",
        env = "PAWFILE_LIMIT_SIGN_IN_FAILURES_PER_ACCOUNT_AND_ADDRESS",
        default_value = "10/15m"
    )]
    pub sign_in_failures_per_account_and_address: Limit,
    /// Failed sign-ins from one client address to any accounts, per window (a clinic behind one NAT
    /// address has many users).
    #[arg(
        long = "limit-sign-in-failures-per-address",
        env = "PAWFILE_LIMIT_SIGN_IN_FAILURES_PER_ADDRESS",
        default_value = "50/15m"
    )]
    pub sign_in_failures_per_address: Limit,
    /// Failed sign-ins to one account from everywhere together, per window (ASVS 2.2.1: at most 100
    /// an hour): the ceiling for guessing spread over many addresses.
    #[arg(
        long = "limit-sign-in-failures-per-account",
        env = "PAWFILE_LIMIT_SIGN_IN_FAILURES_PER_ACCOUNT",
        default_value = "100/1h"
    )]
    pub sign_in_failures_per_account: Limit,
    /// New accounts registered from one client address, per window.
    #[arg(
        long = "limit-registrations-per-address",
        env = "PAWFILE_LIMIT_REGISTRATIONS_PER_ADDRESS",
        default_value = "20/1h"
    )]
    pub registrations_per_address: Limit,
    /// Password changes per account, per window (counted before the current password is checked).
    #[arg(
        long = "limit-password-changes",
        env = "PAWFILE_LIMIT_PASSWORD_CHANGES",
        default_value = "10/1h"
    )]
    pub password_changes_per_account: Limit,
    /// Claim-code attempts per user, per window (only wrong codes count).
    #[arg(
        long = "limit-claim-attempts",
        env = "PAWFILE_LIMIT_CLAIM_ATTEMPTS",
        default_value = "10/1h"
    )]
    pub claim_attempts_per_user: Limit,
    /// "Forgot password" requests per client address, per window.
    #[arg(
        long = "limit-password-resets-per-address",
        env = "PAWFILE_LIMIT_PASSWORD_RESETS_PER_ADDRESS",
        default_value = "20/1h"
    )]
    pub password_resets_per_address: Limit,
    /// Mails that sign-up and "forgot password" requests may send to one address, per window (beyond
    /// it the answer is the same and nothing is sent).
    #[arg(
        long = "limit-mails-per-recipient",
        env = "PAWFILE_LIMIT_MAILS_PER_RECIPIENT",
        default_value = "5/1h"
    )]
    pub mails_per_recipient: Limit,
    /// Record searches per user, per window.
    #[arg(
        long = "limit-searches",
        env = "PAWFILE_LIMIT_SEARCHES",
        default_value = "60/1m"
    )]
    pub searches_per_user: Limit,
}

impl Default for LimitSettings {
    fn default() -> Self {
        super::defaults()
    }
}

impl LimitSettings {
    fn per_hour(max: u64) -> Limit {
        Limit {
            max_hits: i64::try_from(max).unwrap_or(i64::MAX),
            window: Duration::from_secs(60 * 60),
        }
    }

    /// Uploaded bytes, as a rate limit.
    pub fn uploads(&self) -> Limit {
        Self::per_hour(self.upload_per_hour.as_u64())
    }

    /// Downloaded bytes, as a rate limit.
    pub fn downloads(&self) -> Limit {
        Self::per_hour(self.download_per_hour.as_u64())
    }

    /// Exports, as a rate limit.
    pub fn exports(&self) -> Limit {
        Self::per_hour(u64::from(self.exports_per_hour))
    }

    /// The limits on what accounts do that an attacker would repeat.
    pub fn accounts(&self) -> AccountLimits {
        AccountLimits {
            sign_in_failures_per_account_and_address: self.sign_in_failures_per_account_and_address,
            sign_in_failures_per_address: self.sign_in_failures_per_address,
            sign_in_failures_per_account: self.sign_in_failures_per_account,
            registrations_per_address: self.registrations_per_address,
            password_changes_per_account: self.password_changes_per_account,
            claim_attempts_per_user: self.claim_attempts_per_user,
            password_resets_per_address: self.password_resets_per_address,
            mails_per_recipient: self.mails_per_recipient,
            searches_per_user: self.searches_per_user,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        limits: LimitSettings,
    }

    #[test]
    fn account_limits_default_to_the_documented_ones_and_are_settings() {
        assert_eq!(LimitSettings::default().accounts(), AccountLimits::DEFAULT);
        let set = Wrap::try_parse_from([
            "pawfile",
            "--limit-sign-in-failures-per-account=5/10m",
            "--limit-claim-attempts=3/1day",
        ])
        .unwrap()
        .limits
        .accounts();
        assert_eq!(
            set.sign_in_failures_per_account,
            Limit::new(5, Duration::from_secs(600))
        );
        assert_eq!(
            set.claim_attempts_per_user,
            Limit::new(3, Duration::from_secs(86_400))
        );
        let refused = Wrap::try_parse_from(["pawfile", "--limit-password-changes=lots"])
            .err()
            .unwrap()
            .to_string();
        assert!(refused.contains("such as 10/15m"), "{refused}");
    }

    #[test]
    fn no_upload_at_all_is_not_a_limit() {
        assert!(Wrap::try_parse_from(["pawfile", "--limit-concurrent-uploads=0"]).is_err());
        assert_eq!(
            Wrap::try_parse_from(["pawfile", "--limit-concurrent-uploads=1"])
                .unwrap()
                .limits
                .concurrent_uploads,
            1
        );
    }
}
