//! How the HTTP server listens, whom it believes, and the limits it keeps.

use super::{parse_duration, parse_on_off};
use bytesize::ByteSize;
use clap::Args;
use ipnet::IpNet;
use std::{net::SocketAddr, time::Duration};
use url::Url;

/// A role that must sign in with a second factor, or `none`.
fn parse_two_factor_role(value: &str) -> Result<Option<crate::domain::Role>, String> {
    use crate::domain::Role;
    match value.trim() {
        "none" | "" => Ok(None),
        "owner" => Ok(Some(Role::Owner)),
        "staff" => Ok(Some(Role::Staff)),
        "admin" => Ok(Some(Role::Admin)),
        other => Err(format!("{other:?}: expected owner, staff, admin or none")),
    }
}

/// Parses one trusted proxy: an address (`10.0.0.7`) or a network (`10.0.0.0/8`).
fn parse_proxy(value: &str) -> Result<IpNet, String> {
    let value = value.trim();
    value
        .parse::<IpNet>()
        .or_else(|_| value.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{value:?} is neither an IP address nor a network such as 10.0.0.0/8"))
}

/// How the HTTP server listens and whom it believes.
#[derive(Debug, Clone, Args)]
pub struct HttpSettings {
    /// Address and port to listen on. This is the one place the address is set.
    #[arg(long = "listen", env = "PAWFILE_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// The URL people reach Pawfile at (default: http:// and the listen address).
    #[arg(long = "public-url", env = "PAWFILE_PUBLIC_URL")]
    pub public_url: Option<Url>,
    /// Address and port for Prometheus metrics at /metrics (for example 0.0.0.0:9300). Unset: no
    /// metrics. Keep it off the public network: it answers anyone who reaches it.
    #[arg(long = "metrics-listen", env = "PAWFILE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Proxies (addresses or networks, comma-separated) whose X-Forwarded-For and X-Forwarded-Proto
    /// headers are believed. Default: none.
    #[arg(long = "trusted-proxies", env = "PAWFILE_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_proxy)]
    pub trusted_proxies: Vec<IpNet>,
    /// Largest file a user may upload (for example 256MiB, 1GiB).
    #[arg(
        long = "max-upload-size",
        env = "PAWFILE_MAX_UPLOAD_SIZE",
        default_value = "256MiB"
    )]
    pub max_upload_size: ByteSize,
    /// Accepted document types, as MIME types sniffed from the bytes (comma-separated).
    #[arg(
        long = "accepted-types",
        env = "PAWFILE_ACCEPTED_TYPES",
        value_delimiter = ',',
        default_value = "application/pdf,image/jpeg,image/png,image/webp,image/gif,image/heif,image/tiff,application/dicom"
    )]
    pub accepted_types: Vec<String>,
    /// How long deleted documents stay in the trash before they are purged.
    #[arg(long = "trash-retention", env = "PAWFILE_TRASH_RETENTION", default_value = "30days", value_parser = parse_duration)]
    pub trash_retention: Duration,
    /// An upload that has not finished after this long is abandoned (its server died): the next
    /// reconcile removes its pieces from the bucket. Longer than the slowest upload you expect.
    #[arg(long = "stale-upload-after", env = "PAWFILE_STALE_UPLOAD_AFTER", default_value = "24h", value_parser = parse_duration)]
    pub stale_upload_after: Duration,
    /// How often the bucket is compared with the database.
    #[arg(long = "reconcile-interval", env = "PAWFILE_RECONCILE_INTERVAL", default_value = "6h", value_parser = parse_duration)]
    pub reconcile_interval: Duration,
    /// Every document's bytes are read back and re-hashed at least once per this period (the scrub
    /// shares the work between the reconcile runs).
    #[arg(long = "scrub-period", env = "PAWFILE_SCRUB_PERIOD", default_value = "30days", value_parser = parse_duration)]
    pub scrub_period: Duration,
    /// A session ends after this long without a request (for example 30m, 2h).
    #[arg(long = "session-idle-timeout", env = "PAWFILE_SESSION_IDLE_TIMEOUT", default_value = "30m", value_parser = parse_duration)]
    pub session_idle_timeout: Duration,
    /// A session ends this long after sign-in, active or not.
    #[arg(long = "session-absolute-timeout", env = "PAWFILE_SESSION_ABSOLUTE_TIMEOUT", default_value = "12h", value_parser = parse_duration)]
    pub session_absolute_timeout: Duration,
    /// A client must send a request's headers within this time, or its connection is closed.
    #[arg(long = "header-read-timeout", env = "PAWFILE_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// Remove where a photo was taken (EXIF GPS, maker notes, XMP GPS) from JPEG, PNG and WebP uploads,
    /// without re-encoding them (`off`: store photos exactly as they came).
    #[arg(long = "strip-photo-location", env = "PAWFILE_STRIP_PHOTO_LOCATION", default_value = "on", value_parser = parse_on_off)]
    pub strip_photo_location: bool,
    /// A connection with no request in flight (kept alive between requests) is closed after this long.
    #[arg(long = "keep-alive-timeout", env = "PAWFILE_KEEP_ALIVE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub keep_alive_timeout: Duration,
    /// Most connections one client address may hold open (an IPv6 client: its /64); more are closed at
    /// once. A clinic's browsers often share one address. Trusted proxies are exempt.
    #[arg(
        long = "max-connections-per-address",
        env = "PAWFILE_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 256
    )]
    pub max_connections_per_address: usize,
    /// A request body (an upload) that sends no byte for this long ends, and what it sent is cleaned up;
    /// every other request's body (a form, at most 2 MiB) must arrive whole within it; and a client that
    /// reads nothing of a response for this long is disconnected.
    #[arg(long = "body-idle-timeout", env = "PAWFILE_BODY_IDLE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub body_idle_timeout: Duration,
    /// Most client connections open at once; more wait to be accepted.
    #[arg(
        long = "max-client-connections",
        env = "PAWFILE_MAX_CLIENT_CONNECTIONS",
        default_value_t = 1024
    )]
    pub max_client_connections: usize,
    /// Bytes one user may upload per hour (counted in PostgreSQL across replicas); more answers 429.
    #[arg(
        long = "limit-upload-per-hour",
        env = "PAWFILE_LIMIT_UPLOAD_PER_HOUR",
        default_value = "10GiB"
    )]
    pub limit_upload_per_hour: ByteSize,
    /// Bytes one user may download per hour (files and thumbnails; a PDF viewer's many range requests
    /// count only their bytes); more answers 429.
    #[arg(
        long = "limit-download-per-hour",
        env = "PAWFILE_LIMIT_DOWNLOAD_PER_HOUR",
        default_value = "50GiB"
    )]
    pub limit_download_per_hour: ByteSize,
    /// Zip exports one user may start per hour.
    #[arg(
        long = "limit-exports-per-hour",
        env = "PAWFILE_LIMIT_EXPORTS_PER_HOUR",
        default_value_t = 20
    )]
    pub limit_exports_per_hour: u32,
    /// Uploads one user may run at once (counted across replicas; a server that dies frees its
    /// uploads' slots within a minute).
    #[arg(
        long = "limit-concurrent-uploads",
        env = "PAWFILE_LIMIT_CONCURRENT_UPLOADS",
        default_value_t = 10
    )]
    pub limit_concurrent_uploads: usize,
    /// The language medical records are searched in: a PostgreSQL text-search configuration (english,
    /// german, french, simple, ...). Changing it re-indexes every record at start-up.
    #[arg(
        long = "search-language",
        env = "PAWFILE_SEARCH_LANGUAGE",
        default_value = "english"
    )]
    pub search_language: String,
    /// Storage one owner's uploads may hold (documents in the trash count until purged); an upload
    /// that does not fit is refused before its bytes are stored.
    #[arg(
        long = "quota-per-owner",
        env = "PAWFILE_QUOTA_PER_OWNER",
        default_value = "2GiB"
    )]
    pub quota_per_owner: ByteSize,
    /// Storage one clinic's staff's uploads may hold, together.
    #[arg(
        long = "quota-per-clinic",
        env = "PAWFILE_QUOTA_PER_CLINIC",
        default_value = "500GiB"
    )]
    pub quota_per_clinic: ByteSize,
    /// Failed sign-ins to one account from one client address, per window (`COUNT/WINDOW`); more
    /// answers 429 with `Retry-After`, and the owner at another address can still sign in.
    #[arg(
        long = "limit-sign-in-failures-per-account-and-address",
        env = "PAWFILE_LIMIT_SIGN_IN_FAILURES_PER_ACCOUNT_AND_ADDRESS",
        default_value = "10/15m"
    )]
    pub limit_sign_in_failures_per_account_and_address: crate::rate_limit::Limit,
    /// Failed sign-ins from one client address to any accounts, per window (a clinic behind one NAT
    /// address has many users).
    #[arg(
        long = "limit-sign-in-failures-per-address",
        env = "PAWFILE_LIMIT_SIGN_IN_FAILURES_PER_ADDRESS",
        default_value = "50/15m"
    )]
    pub limit_sign_in_failures_per_address: crate::rate_limit::Limit,
    /// Failed sign-ins to one account from everywhere together, per window (ASVS 2.2.1: at most 100
    /// an hour): the ceiling for guessing spread over many addresses.
    #[arg(
        long = "limit-sign-in-failures-per-account",
        env = "PAWFILE_LIMIT_SIGN_IN_FAILURES_PER_ACCOUNT",
        default_value = "100/1h"
    )]
    pub limit_sign_in_failures_per_account: crate::rate_limit::Limit,
    /// New accounts registered from one client address, per window.
    #[arg(
        long = "limit-registrations-per-address",
        env = "PAWFILE_LIMIT_REGISTRATIONS_PER_ADDRESS",
        default_value = "20/1h"
    )]
    pub limit_registrations_per_address: crate::rate_limit::Limit,
    /// Password changes per account, per window (counted before the current password is checked).
    #[arg(
        long = "limit-password-changes",
        env = "PAWFILE_LIMIT_PASSWORD_CHANGES",
        default_value = "10/1h"
    )]
    pub limit_password_changes: crate::rate_limit::Limit,
    /// "Forgot password" requests per client address, per window.
    #[arg(
        long = "limit-password-resets-per-address",
        env = "PAWFILE_LIMIT_PASSWORD_RESETS_PER_ADDRESS",
        default_value = "20/1h"
    )]
    pub limit_password_resets_per_address: crate::rate_limit::Limit,
    /// Mails that sign-up and "forgot password" requests may send to one address, per window (beyond
    /// it the answer is the same and nothing is sent).
    #[arg(
        long = "limit-mails-per-recipient",
        env = "PAWFILE_LIMIT_MAILS_PER_RECIPIENT",
        default_value = "5/1h"
    )]
    pub limit_mails_per_recipient: crate::rate_limit::Limit,
    /// Roles that must sign in with a second factor (a TOTP app), comma-separated, or `none`. Someone
    /// in such a role without one can only set it up until they have.
    #[arg(
        long = "require-two-factor",
        env = "PAWFILE_REQUIRE_TWO_FACTOR",
        value_delimiter = ',',
        default_value = "staff,admin",
        value_parser = parse_two_factor_role
    )]
    pub require_two_factor: Vec<Option<crate::domain::Role>>,
    /// Claim-code attempts per user, per window (only wrong codes count).
    #[arg(
        long = "limit-claim-attempts",
        env = "PAWFILE_LIMIT_CLAIM_ATTEMPTS",
        default_value = "10/1h"
    )]
    pub limit_claim_attempts: crate::rate_limit::Limit,
    /// Record searches per user, per window.
    #[arg(
        long = "limit-searches",
        env = "PAWFILE_LIMIT_SEARCHES",
        default_value = "60/1m"
    )]
    pub limit_searches: crate::rate_limit::Limit,
    /// On SIGTERM, how long requests in flight may take to finish before they are cut.
    #[arg(long = "shutdown-grace", env = "PAWFILE_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

impl HttpSettings {
    /// Why Pawfile cannot serve with this `PAWFILE_PUBLIC_URL` (or its absence), as one line; `None`
    /// when it can.
    ///
    /// Listening where other machines can connect needs the address people use: it is the origin
    /// requests must come from, whether cookies are `Secure`, and the base of links.
    pub fn problem(&self) -> Option<String> {
        const EXAMPLE: &str = "for example https://records.example-clinic.org";
        match &self.public_url {
            Some(url) if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() => {
                Some(format!("{url} is not an http:// or https:// address ({EXAMPLE})"))
            }
            Some(url) if url.path() != "/" || url.query().is_some() || url.fragment().is_some() => Some(
                format!("{url}: Pawfile is served at the root of its address; leave out the path"),
            ),
            Some(url) if !url.username().is_empty() || url.password().is_some() => {
                Some("the address must not carry a user name or password".to_owned())
            }
            Some(_) => None,
            None if !self.listen.ip().is_loopback() => Some(format!(
                "Pawfile listens on {}, which other machines can reach; set \
                 PAWFILE_PUBLIC_URL to the address people use ({EXAMPLE})",
                self.listen
            )),
            None => None,
        }
    }

    /// The storage quotas.
    pub fn quotas(&self) -> crate::documents::quota::Quotas {
        crate::documents::quota::Quotas {
            per_owner: self.quota_per_owner.as_u64(),
            per_clinic: self.quota_per_clinic.as_u64(),
        }
    }

    /// The limits on what accounts do that an attacker would repeat.
    pub fn account_limits(&self) -> crate::rate_limit::AccountLimits {
        crate::rate_limit::AccountLimits {
            sign_in_failures_per_account_and_address: self.limit_sign_in_failures_per_account_and_address,
            sign_in_failures_per_address: self.limit_sign_in_failures_per_address,
            sign_in_failures_per_account: self.limit_sign_in_failures_per_account,
            registrations_per_address: self.limit_registrations_per_address,
            password_changes_per_account: self.limit_password_changes,
            claim_attempts_per_user: self.limit_claim_attempts,
            password_resets_per_address: self.limit_password_resets_per_address,
            mails_per_recipient: self.limit_mails_per_recipient,
            searches_per_user: self.limit_searches,
        }
    }

    /// The public URL, defaulting to the listen address over plain HTTP.
    pub fn public_url(&self) -> Url {
        self.public_url.clone().unwrap_or_else(|| {
            Url::parse(&format!("http://{}/", self.listen)).expect("a socket address makes a URL")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(listen: &str, public_url: Option<&str>) -> HttpSettings {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            http: HttpSettings,
        }
        let mut args = vec!["pawfile".to_owned(), format!("--listen={listen}")];
        if let Some(url) = public_url {
            args.push(format!("--public-url={url}"));
        }
        Wrap::try_parse_from(args).unwrap().http
    }

    #[test]
    fn listening_beyond_this_machine_needs_the_public_url() {
        let problem = http("0.0.0.0:3000", None).problem().unwrap();
        assert!(problem.contains("set PAWFILE_PUBLIC_URL"), "{problem}");
        assert!(!problem.contains('\n'));
        assert!(http("[::]:3000", None).problem().is_some());
        assert_eq!(http("127.0.0.1:3000", None).problem(), None);
        assert_eq!(http("[::1]:3000", None).problem(), None);
        assert_eq!(
            http("0.0.0.0:3000", Some("https://records.example.org")).problem(),
            None
        );
    }

    #[test]
    fn a_public_url_is_an_http_origin() {
        for bad in [
            "ftp://records.example.org",
            "https://records.example.org/pawfile",
            "https://records.example.org/?x=1",
            "https://user:pw@records.example.org",
        ] {
            assert!(http("0.0.0.0:3000", Some(bad)).problem().is_some(), "{bad}");
        }
    }

    #[test]
    fn account_limits_default_to_the_documented_ones_and_are_settings() {
        assert_eq!(
            http("127.0.0.1:3000", None).account_limits(),
            crate::rate_limit::AccountLimits::DEFAULT
        );
        assert_eq!(
            http("127.0.0.1:3000", None).quotas(),
            crate::documents::quota::Quotas::DEFAULT
        );
        use clap::Parser;
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            http: HttpSettings,
        }
        let set = Wrap::try_parse_from([
            "pawfile",
            "--limit-sign-in-failures-per-account=5/10m",
            "--limit-claim-attempts=3/1day",
        ])
        .unwrap()
        .http
        .account_limits();
        assert_eq!(
            set.sign_in_failures_per_account,
            crate::rate_limit::Limit::new(5, Duration::from_secs(600))
        );
        assert_eq!(
            set.claim_attempts_per_user,
            crate::rate_limit::Limit::new(3, Duration::from_secs(86_400))
        );
        let refused = Wrap::try_parse_from(["pawfile", "--limit-password-changes=lots"])
            .err()
            .unwrap()
            .to_string();
        assert!(refused.contains("such as 10/15m"), "{refused}");
    }

    #[test]
    fn every_known_file_type_is_accepted_by_default() {
        let command = HttpSettings::augment_args(clap::Command::new("pawfile"));
        let defaults: Vec<String> = command
            .get_arguments()
            .find(|arg| arg.get_id() == "accepted_types")
            .expect("the accepted types setting")
            .get_default_values()
            .iter()
            .map(|value| value.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            defaults.join(","),
            crate::domain::FileType::DEFAULT_ACCEPTED.join(",")
        );
    }

    #[test]
    fn proxies_parse_as_addresses_or_networks() {
        assert_eq!(parse_proxy("10.0.0.7").unwrap().to_string(), "10.0.0.7/32");
        assert_eq!(parse_proxy(" 10.0.0.0/8 ").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_proxy("::1").unwrap().to_string(), "::1/128");
        assert!(parse_proxy("proxy.internal").is_err());
    }
}
