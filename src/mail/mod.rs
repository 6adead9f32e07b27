//! Mail: a queue in Postgres, delivered by a background task with retries, over SMTP or (the embedded
//! default) into `.eml` files in the data folder. A request only adds a row; it never waits on SMTP.
//!
//! A message that carries a link holds its token only until it is sent or given up: the row's
//! `message` is rendered at send time and cleared afterwards (a constraint enforces it), so neither the
//! database nor a backup of it holds a usable link to mail that went out. The queue is not backed up.

mod templates;
pub mod tokens;

use crate::{
    domain::{Email, MailProblem, MailStatus},
    error::{Error, Result},
};
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
    transport::smtp::{
        authentication::Credentials,
        client::{Tls, TlsParameters},
    },
};
use serde::{Deserialize, Serialize};
use sqlx::{PgExecutor, PgPool};
use std::{path::PathBuf, time::Duration};
use url::Url;
use uuid::Uuid;

/// A message Pawfile sends. Stored as JSON in the queue until it is sent; rendered at send time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mail {
    /// The link that confirms a new owner's address and creates their account.
    VerifyAddress {
        /// Whom to greet.
        name: String,
        /// The link's single-use token.
        token: String,
    },
    /// Someone tried to register with an address that already has an account.
    AlreadyRegistered {
        /// Whom to greet.
        name: String,
    },
    /// A link to choose a new password.
    ResetPassword {
        /// Whom to greet.
        name: String,
        /// The link's single-use token.
        token: String,
    },
    /// A walk-in patient's claim code, for the owner the clinic registered it for.
    ClaimCode {
        /// Whom to greet.
        name: String,
        /// The pet's name.
        pet: String,
        /// The clinic that registered it.
        clinic: String,
        /// The code, `XXXX-XXXX-XXXX`.
        code: String,
        /// Until when it works, in words.
        expires: String,
    },
    /// An owner's account will be deleted on `date` unless they sign in before.
    DeletionScheduled {
        /// Whom to greet.
        name: String,
        /// When, in words.
        date: String,
    },
    /// Problems an admin should know of (each is sent once).
    AdminAlert {
        /// Whom to greet.
        name: String,
        /// One sentence per problem.
        problems: Vec<String>,
    },
    /// An invitation to a clinic's staff: a link to choose a password.
    StaffInvitation {
        /// Whom to greet.
        name: String,
        /// The clinic.
        clinic: String,
        /// The admin who invited them.
        invited_by: String,
        /// The link's single-use token.
        token: String,
    },
}

impl Mail {
    /// The kind, as stored in the queue.
    pub fn kind(&self) -> &'static str {
        match self {
            Mail::VerifyAddress { .. } => "verify_address",
            Mail::AlreadyRegistered { .. } => "already_registered",
            Mail::ResetPassword { .. } => "reset_password",
            Mail::StaffInvitation { .. } => "staff_invitation",
            Mail::ClaimCode { .. } => "claim_code",
            Mail::AdminAlert { .. } => "admin_alert",
            Mail::DeletionScheduled { .. } => "deletion_scheduled",
        }
    }

    /// The subject line (never holds a token).
    pub fn subject(&self) -> &'static str {
        match self {
            Mail::VerifyAddress { .. } => "Confirm your e-mail address for Pawfile",
            Mail::AlreadyRegistered { .. } => "Someone tried to register at Pawfile with your address",
            Mail::ResetPassword { .. } => "Reset your Pawfile password",
            Mail::StaffInvitation { .. } => "You are invited to Pawfile",
            Mail::ClaimCode { .. } => "Your pet's records at Pawfile: your claim code",
            Mail::AdminAlert { .. } => "Pawfile needs your attention",
            Mail::DeletionScheduled { .. } => "Your Pawfile account will be deleted",
        }
    }

    /// The plain-text and HTML bodies, with links to `site`.
    pub fn render(&self, site: &Url) -> Result<(String, String)> {
        templates::render(self, site)
    }
}

/// Where mail goes.
#[derive(Clone)]
pub enum Transport {
    /// An SMTP server.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// `.eml` files in a folder (the embedded default, for trying Pawfile without a mail server).
    Folder(PathBuf),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Smtp(_) => f.write_str("Transport::Smtp"),
            Transport::Folder(path) => write!(f, "Transport::Folder({})", path.display()),
        }
    }
}

/// How SMTP is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which is required (port 587 by default).
    Starttls,
    /// TLS from the first byte (port 465 by default).
    Tls,
    /// No encryption: only for a relay on this machine or a test server (port 25 by default).
    None,
}

/// What an SMTP connection needs.
#[derive(Debug, Clone)]
pub struct SmtpServer {
    /// Host name.
    pub host: String,
    /// Port; `None` for the TLS mode's usual one.
    pub port: Option<u16>,
    /// Encryption.
    pub tls: SmtpTls,
    /// User name and password, if the server asks for them.
    pub credentials: Option<(String, secrecy::SecretString)>,
}

impl Transport {
    /// An SMTP transport (connections are opened when mail is sent, not here).
    pub fn smtp(server: &SmtpServer) -> Result<Self> {
        use secrecy::ExposeSecret;
        let tls_parameters = || {
            TlsParameters::new(server.host.clone())
                .map_err(|err| Error::Conflict(format!("SMTP TLS settings: {err}")))
        };
        let (tls, port) = match server.tls {
            SmtpTls::Starttls => (Tls::Required(tls_parameters()?), 587),
            SmtpTls::Tls => (Tls::Wrapper(tls_parameters()?), 465),
            SmtpTls::None => (Tls::None, 25),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&server.host)
            .port(server.port.unwrap_or(port))
            .tls(tls)
            .timeout(Some(Duration::from_secs(30)));
        if let Some((user, password)) = &server.credentials {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        Ok(Transport::Smtp(builder.build()))
    }

    async fn send(&self, id: Uuid, message: Message) -> std::result::Result<(), SendError> {
        match self {
            Transport::Smtp(smtp) => smtp.send(message).await.map(drop).map_err(|err| SendError {
                permanent: err.is_permanent(),
                message: crate::error::root_cause(&err),
            }),
            Transport::Folder(folder) => write_eml(folder, id, &message.formatted())
                .await
                .map(|path| tracing::info!(mail = %path.display(), "mail written to the data folder (no SMTP server is set)"))
                .map_err(|err| SendError {
                    permanent: false,
                    message: format!("cannot write into {}: {err}", folder.display()),
                }),
        }
    }
}

/// Writes a message as `<id>.eml`, whole or not at all (a temporary name, then a rename).
async fn write_eml(folder: &std::path::Path, id: Uuid, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let folder = folder.to_owned();
    let bytes = bytes.to_vec();
    tokio::task::spawn_blocking(move || {
        // Mail holds links that sign people in: readable by the server's user only.
        let path = folder.join(format!("{id}.eml"));
        let partial = folder.join(format!(".{id}.eml.partial"));
        let _ = std::fs::remove_file(&partial);
        crate::files::write_private(&partial, &bytes)?;
        std::fs::rename(&partial, &path)?;
        Ok(path)
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Deletes the `.eml` files in `folder` (where mail goes without an SMTP server) older than `retention`:
/// they hold sign-up and reset links and people's addresses. Returns how many it deleted.
pub fn prune_mail_files(folder: &std::path::Path, retention: Duration) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err),
    };
    let mut deleted = 0;
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if path.extension().is_none_or(|extension| extension != "eml") {
            continue;
        }
        let age = entry.metadata()?.modified()?.elapsed().unwrap_or_default();
        if age > retention {
            std::fs::remove_file(&path)?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

struct SendError {
    permanent: bool,
    message: String,
}

/// When a failed send is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure; it doubles after each further one, up to an hour.
    pub first_wait: Duration,
    /// Sends tried before the message is given up (and shown to admins as failed).
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// 30 s, doubling to an hour, 12 tries: about six and a half hours of an unreachable server.
    pub const DEFAULT: Self = Self {
        first_wait: Duration::from_secs(30),
        max_attempts: 12,
    };

    /// The wait after failed try number `attempt` (1 for the first).
    pub fn wait_after(&self, attempt: u32) -> Duration {
        let doubled = self
            .first_wait
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(20)));
        doubled
            .min(Duration::from_secs(60 * 60))
            .max(self.first_wait.min(Duration::from_secs(60 * 60)))
    }
}

/// Sends what is queued: the transport, the sender, the site the links point to, and the retry policy.
#[derive(Debug, Clone)]
pub struct Mailer {
    /// Where mail goes.
    pub transport: Transport,
    /// The `From` of every message.
    pub from: Mailbox,
    /// The address people reach Pawfile at, for links.
    pub site: Url,
    /// When failed sends are tried again.
    pub retry: RetryPolicy,
}

/// Adds `mail` for `to` to the queue (in the caller's transaction, if it passes one).
pub async fn enqueue(executor: impl PgExecutor<'_>, to: &Email, mail: &Mail) -> Result<Uuid> {
    let id = Uuid::now_v7();
    sqlx::query!(
        "insert into mail_outbox (id, recipient, kind, subject, message) values ($1, $2, $3, $4, $5)",
        id,
        to.as_str(),
        mail.kind(),
        mail.subject(),
        serde_json::to_value(mail).map_err(|err| Error::Conflict(err.to_string()))?,
    )
    .execute(executor)
    .await?;
    Ok(id)
}

/// What one delivery pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Messages handed to the transport.
    pub sent: u32,
    /// Messages that failed and will be tried again.
    pub retrying: u32,
    /// Messages given up (too many failures, or refused for good by the server).
    pub given_up: u32,
}

impl DeliveryReport {
    /// Messages this pass took from the queue.
    pub fn taken(&self) -> u32 {
        self.sent + self.retrying + self.given_up
    }
}

/// Messages one pass takes at most; a full pass is followed by another at once.
pub const BATCH: i64 = 20;

/// While a message is being sent, no other pass (on any replica) takes it before this has passed.
const LEASE: Duration = Duration::from_secs(5 * 60);

/// Sends the messages that are due. Safe to run on several replicas at once: each message is taken by
/// one pass (`for update skip locked`) and leased while it is sent, so a crash mid-send means it is
/// tried again later (mail is delivered at least once).
#[tracing::instrument(skip_all)]
pub async fn deliver_due(pool: &PgPool, mailer: &Mailer) -> Result<DeliveryReport> {
    let taken = sqlx::query!(
        r#"
        update mail_outbox set attempts = attempts + 1, next_attempt_at = now() + $2::float8 * interval '1 second'
        where id in (
            select id from mail_outbox
            where sent_at is null and failed_at is null and next_attempt_at <= now()
            order by next_attempt_at
            limit $1
            for update skip locked)
        returning id, recipient, message, attempts
        "#,
        BATCH,
        LEASE.as_secs_f64(),
    )
    .fetch_all(pool)
    .await?;
    let mut report = DeliveryReport::default();
    for row in taken {
        let attempt = u32::try_from(row.attempts).unwrap_or(u32::MAX);
        let outcome = match prepare(mailer, &row.recipient, row.message) {
            Ok(message) => mailer.transport.send(row.id, message).await,
            Err(message) => Err(SendError {
                permanent: true,
                message,
            }),
        };
        match outcome {
            Ok(()) => {
                sqlx::query!(
                    "update mail_outbox set sent_at = now(), message = null, last_error = null where id = $1",
                    row.id
                )
                .execute(pool)
                .await?;
                report.sent += 1;
            }
            Err(failure) if failure.permanent || attempt >= mailer.retry.max_attempts => {
                tracing::error!(mail = %row.id, attempts = attempt, error = %failure.message, "mail given up");
                sqlx::query!(
                    "update mail_outbox set failed_at = now(), message = null, last_error = $2 where id = $1",
                    row.id,
                    failure.message
                )
                .execute(pool)
                .await?;
                report.given_up += 1;
            }
            Err(failure) => {
                let wait = mailer.retry.wait_after(attempt);
                tracing::warn!(mail = %row.id, attempts = attempt, retry_in = ?wait, error = %failure.message, "mail not sent; will retry");
                sqlx::query!(
                    "update mail_outbox set last_error = $2, next_attempt_at = now() + $3::float8 * interval '1 second'
                     where id = $1",
                    row.id,
                    failure.message,
                    wait.as_secs_f64()
                )
                .execute(pool)
                .await?;
                report.retrying += 1;
            }
        }
    }
    Ok(report)
}

/// The message for a queued row, or why it cannot be built (which no retry would change).
fn prepare(
    mailer: &Mailer,
    recipient: &str,
    stored: Option<serde_json::Value>,
) -> std::result::Result<Message, String> {
    let mail: Mail = serde_json::from_value(stored.ok_or("the message was already cleared")?)
        .map_err(|err| format!("unreadable message: {err}"))?;
    let to: Mailbox = recipient
        .parse()
        .map_err(|err| format!("bad recipient address: {err}"))?;
    let (text, html) = mail.render(&mailer.site).map_err(|err| err.to_string())?;
    Message::builder()
        .from(mailer.from.clone())
        .to(to)
        .subject(mail.subject())
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|err| format!("cannot build the message: {err}"))
}

/// The queue as admins see it: what waits, what keeps failing, what was given up in the last 30 days.
pub async fn status(pool: &PgPool) -> Result<MailStatus> {
    let waiting = sqlx::query_scalar!(
        r#"select count(*) as "count!" from mail_outbox where sent_at is null and failed_at is null"#
    )
    .fetch_one(pool)
    .await?;
    let rows = sqlx::query!(
        r#"
        select recipient, subject, attempts, last_error as "last_error!", failed_at, next_attempt_at
        from mail_outbox
        where last_error is not null and sent_at is null
          and (failed_at is null or failed_at > now() - interval '30 days')
        order by coalesce(failed_at, next_attempt_at) desc
        limit 50
        "#
    )
    .fetch_all(pool)
    .await?;
    let problems = rows
        .into_iter()
        .map(|row| MailProblem {
            recipient: row.recipient,
            subject: row.subject,
            attempts: row.attempts,
            error: row.last_error,
            given_up: row.failed_at.is_some(),
            at: row
                .failed_at
                .unwrap_or(row.next_attempt_at)
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        })
        .collect();
    Ok(MailStatus {
        waiting: waiting as u64,
        problems,
    })
}

/// Deletes sent and given-up messages older than 30 days (their rows hold no token by then anyway).
pub async fn prune(pool: &PgPool) -> Result<u64> {
    Ok(sqlx::query!(
        "delete from mail_outbox where coalesce(sent_at, failed_at) < now() - interval '30 days'"
    )
    .execute(pool)
    .await?
    .rows_affected())
}

#[cfg(test)]
mod tests {
    #[test]
    fn mail_files_are_deleted_once_older_than_their_retention() {
        let folder = tempfile::tempdir().unwrap();
        let write = |name: &str, age: Duration| {
            let path = folder.path().join(name);
            std::fs::write(&path, b"mail").unwrap();
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(std::time::SystemTime::now() - age).unwrap();
        };
        let day = Duration::from_secs(24 * 60 * 60);
        write("old.eml", 31 * day);
        write("new.eml", day);
        write("old.txt", 31 * day);
        assert_eq!(prune_mail_files(folder.path(), 30 * day).unwrap(), 1);
        let mut left: Vec<String> = std::fs::read_dir(folder.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["new.eml", "old.txt"]);
        assert_eq!(prune_mail_files(&folder.path().join("none"), day).unwrap(), 0);
    }

    use super::*;

    #[test]
    fn retries_wait_longer_each_time_up_to_an_hour() {
        let policy = RetryPolicy::DEFAULT;
        assert_eq!(policy.wait_after(1), Duration::from_secs(30));
        assert_eq!(policy.wait_after(2), Duration::from_secs(60));
        assert_eq!(policy.wait_after(4), Duration::from_secs(240));
        assert_eq!(policy.wait_after(8), Duration::from_secs(3600));
        assert_eq!(policy.wait_after(u32::MAX), Duration::from_secs(3600));
        let quick = RetryPolicy {
            first_wait: Duration::from_secs(1),
            max_attempts: 3,
        };
        assert_eq!(quick.wait_after(1), Duration::from_secs(1));
        assert_eq!(quick.wait_after(3), Duration::from_secs(4));
    }

    #[test]
    fn a_queued_message_round_trips_through_json_with_its_kind() {
        let mail = Mail::ResetPassword {
            name: "Ada".into(),
            token: "abc".into(),
        };
        let json = serde_json::to_value(&mail).unwrap();
        assert_eq!(json["kind"], "reset_password");
        assert_eq!(serde_json::from_value::<Mail>(json).unwrap(), mail);
    }
}
