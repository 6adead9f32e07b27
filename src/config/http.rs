//! How the HTTP server listens, whom it believes, and how it treats connections.

use super::parse_duration;
use clap::Args;
use ipnet::IpNet;
use std::{net::SocketAddr, time::Duration};
use url::Url;

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
}

/// How the server treats its clients' connections: slow clients, how many at once, shutting down.
#[derive(Debug, Clone, Copy, Args)]
pub struct ConnectionSettings {
    /// A client must send a request's headers within this time, or its connection is closed.
    #[arg(long = "header-read-timeout", env = "PAWFILE_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// A connection with no request in flight (kept alive between requests) is closed after this long.
    #[arg(long = "keep-alive-timeout", env = "PAWFILE_KEEP_ALIVE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub keep_alive_timeout: Duration,
    /// A request body (an upload) that sends no byte for this long ends, and what it sent is cleaned up;
    /// every other request's body (a form, at most 2 MiB) must arrive whole within it; and a client that
    /// reads nothing of a response for this long is disconnected.
    #[arg(long = "body-idle-timeout", env = "PAWFILE_BODY_IDLE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub body_idle_timeout: Duration,
    /// Most client connections open at once; more wait to be accepted.
    #[arg(
        long = "max-client-connections",
        env = "PAWFILE_MAX_CLIENT_CONNECTIONS",
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..),
        default_value_t = 1024
    )]
    pub max_client_connections: usize,
    /// Most connections one client address may hold open (an IPv6 client: its /64); more are closed at
    /// once. A clinic's browsers often share one address. Trusted proxies are exempt.
    #[arg(
        long = "max-connections-per-address",
        env = "PAWFILE_MAX_CONNECTIONS_PER_ADDRESS",
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..),
        default_value_t = 256
    )]
    pub max_connections_per_address: usize,
    /// On SIGTERM, how long requests in flight may take to finish before they are cut.
    #[arg(long = "shutdown-grace", env = "PAWFILE_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        super::defaults()
    }
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
    fn proxies_parse_as_addresses_or_networks() {
        assert_eq!(parse_proxy("10.0.0.7").unwrap().to_string(), "10.0.0.7/32");
        assert_eq!(parse_proxy(" 10.0.0.0/8 ").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_proxy("::1").unwrap().to_string(), "::1/128");
        assert!(parse_proxy("proxy.internal").is_err());
    }
}
