//! How Pawfile sends mail.

use super::{parse_duration, parse_secret};
use crate::error::StartupError;
use clap::Args;
use secrecy::SecretString;
use std::time::Duration;
use url::Url;

/// How Pawfile sends mail. Without `PAWFILE_SMTP_HOST`, mail is written as `.eml` files into the data
/// folder's `mail/` (the log says where), so every link can be followed when trying Pawfile locally.
#[derive(Debug, Clone, Args)]
pub struct MailSettings {
    /// SMTP server to send mail through (for example smtp.example.org). Unset: mail goes to files.
    #[arg(long = "smtp-host", env = "PAWFILE_SMTP_HOST")]
    pub smtp_host: Option<String>,
    /// SMTP port (default: 587 for starttls, 465 for tls, 25 for none).
    #[arg(long = "smtp-port", env = "PAWFILE_SMTP_PORT")]
    pub smtp_port: Option<u16>,
    /// How the SMTP connection is secured: starttls (required, not opportunistic), tls, or none (only
    /// for a relay on this machine).
    #[arg(
        long = "smtp-tls",
        env = "PAWFILE_SMTP_TLS",
        value_enum,
        default_value = "starttls"
    )]
    pub smtp_tls: crate::mail::SmtpTls,
    /// SMTP user name, if the server asks for one.
    #[arg(long = "smtp-username", env = "PAWFILE_SMTP_USERNAME")]
    pub smtp_username: Option<String>,
    /// SMTP password.
    #[arg(long = "smtp-password", env = "PAWFILE_SMTP_PASSWORD", value_parser = parse_secret, hide_env_values = true)]
    pub smtp_password: Option<SecretString>,
    /// The sender of every mail, for example "Pawfile <records@clinic.example.org>" (default: Pawfile
    /// <noreply@ the public URL's host>).
    #[arg(long = "mail-from", env = "PAWFILE_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// Wait after a failed send; it doubles after each further failure, up to an hour.
    #[arg(long = "mail-retry-after", env = "PAWFILE_MAIL_RETRY_AFTER", default_value = "30s", value_parser = parse_duration)]
    pub mail_retry_after: Duration,
    /// Sends tried before a message is given up (admins see it on their page).
    #[arg(
        long = "mail-max-attempts",
        env = "PAWFILE_MAIL_MAX_ATTEMPTS",
        default_value_t = 12
    )]
    pub mail_max_attempts: u32,
    /// Without an SMTP server, mail is written as `.eml` files into the data folder's `mail/`; they are
    /// deleted after this long (they hold sign-in links and people's addresses).
    #[arg(long = "mail-file-retention", env = "PAWFILE_MAIL_FILE_RETENTION", default_value = "30days", value_parser = parse_duration)]
    pub mail_file_retention: Duration,
}

impl MailSettings {
    /// The SMTP server, when one is set.
    pub fn smtp_server(&self) -> Result<Option<crate::mail::SmtpServer>, StartupError> {
        let Some(host) = self.smtp_host.clone().filter(|host| !host.trim().is_empty()) else {
            return Ok(None);
        };
        let credentials = match (&self.smtp_username, &self.smtp_password) {
            (Some(user), Some(password)) => Some((user.clone(), password.clone())),
            (None, None) => None,
            _ => {
                return Err(StartupError::new(
                    "PAWFILE_SMTP_USERNAME",
                    "set both PAWFILE_SMTP_USERNAME and PAWFILE_SMTP_PASSWORD, or neither",
                ));
            }
        };
        Ok(Some(crate::mail::SmtpServer {
            host,
            port: self.smtp_port,
            tls: self.smtp_tls,
            credentials,
        }))
    }

    /// The sender: the configured one, or `Pawfile <noreply@host>` for the public URL's host.
    pub fn from(&self, public_url: &Url) -> Result<lettre::message::Mailbox, StartupError> {
        let text = self.mail_from.clone().unwrap_or_else(|| {
            let host = public_url.host_str().unwrap_or("localhost");
            let host = if host.parse::<std::net::IpAddr>().is_ok() || !host.contains('.') {
                "localhost"
            } else {
                host
            };
            format!("Pawfile <noreply@{host}>")
        });
        text.parse().map_err(|err| {
            StartupError::new(
                "PAWFILE_MAIL_FROM",
                format!("{text:?} is not a mail address: {err}"),
            )
        })
    }

    /// When failed sends are tried again.
    pub fn retry(&self) -> crate::mail::RetryPolicy {
        crate::mail::RetryPolicy {
            first_wait: self.mail_retry_after,
            max_attempts: self.mail_max_attempts.max(1),
        }
    }
}
