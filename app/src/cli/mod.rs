//! The `pawfile` command line: every command's flags and environment variables (read once, here, by
//! clap), and the commands, a module each.

mod accounts;
mod backup;
mod maintenance;
mod restore;
mod serve;

use clap::{Parser, Subcommand};
use pawfile::{
    config::{DatabaseSettings, LogFormat, ServeSettings},
    db,
    error::StartupError,
};

/// Pawfile: pet medical records and a secure document store.
#[derive(Debug, Parser)]
#[command(name = "pawfile", version, about, propagate_version = true)]
pub struct Cli {
    /// Log format.
    #[arg(long, env = "PAWFILE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// The kinds of account `create-user` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NewUserRole {
    /// A pet owner.
    Owner,
    /// Clinic staff (needs --clinic).
    Staff,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web server (and its background tasks). Applies pending migrations first.
    Serve(Box<ServeSettings>),
    /// Ask the server listening on PAWFILE_LISTEN whether it is alive (`/healthz`): exits 0 if so, 1
    /// otherwise. The container's HEALTHCHECK (the image has no curl).
    Healthcheck {
        /// The server's listen address (an unspecified address such as 0.0.0.0 is asked on loopback).
        #[arg(long = "listen", env = "PAWFILE_LISTEN", default_value = "127.0.0.1:3000")]
        listen: std::net::SocketAddr,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        #[command(flatten)]
        database: DatabaseSettings,
    },
    /// Create an administrator account (the first one, or another).
    CreateAdmin {
        #[command(flatten)]
        database: DatabaseSettings,
        /// The administrator's e-mail address.
        #[arg(long)]
        email: String,
        /// The administrator's display name.
        #[arg(long, default_value = "Administrator")]
        name: String,
        /// Read the password from the first line of standard input instead of asking for it.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Create a pet owner or clinic staff account whose address counts as confirmed (for operators and
    /// scripts; owners usually sign up themselves and staff are invited).
    CreateUser {
        #[command(flatten)]
        database: DatabaseSettings,
        /// The account's e-mail address.
        #[arg(long)]
        email: String,
        /// The name it is shown by (default: the part of the address before the @).
        #[arg(long)]
        name: Option<String>,
        /// What the account is for.
        #[arg(long, value_enum)]
        role: NewUserRole,
        /// The clinic of a staff account: its name or its id.
        #[arg(long, required_if_eq("role", "staff"))]
        clinic: Option<String>,
        /// Read the password from the first line of standard input instead of asking for it.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Turn off someone's second factor (for example the last administrator's, with a lost phone); they
    /// set it up again at their next sign-in. Audited.
    #[command(name = "reset-2fa")]
    ResetTwoFactor {
        #[command(flatten)]
        database: DatabaseSettings,
        /// The account's e-mail address.
        #[arg(long)]
        email: String,
    },
    /// Compare the documents bucket with the database once: remove orphan objects, flag missing or
    /// damaged ones, read back a sample. Prints the report; exits 1 if problems were flagged.
    Reconcile {
        #[command(flatten)]
        settings: Box<ServeSettings>,
        /// Objects younger than this are left alone (an upload may be about to record them).
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        grace: std::time::Duration,
        /// How many objects to read back in full and check against their SHA-256.
        #[arg(long, default_value_t = 20)]
        verify_sample: i64,
    },
    /// Back up now, list, verify or prune snapshots, or make a key pair.
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    /// Restore a snapshot into an empty database and an empty documents bucket (Pawfile must not be
    /// serving while it runs; objects are copied first, so a failed restore can simply be run again).
    /// With --document or --pet, bring documents back from the snapshot into the live system instead,
    /// into the trash of their pet.
    Restore {
        #[command(flatten)]
        settings: Box<ServeSettings>,
        /// The snapshot id (from `pawfile backup list`), or `latest`.
        #[arg(default_value = "latest")]
        snapshot: pawfile::backup::restore::Which,
        /// Bring back this one document (by id) into its pet's trash.
        #[arg(long, conflicts_with = "pet")]
        document: Option<uuid::Uuid>,
        /// Bring back every document of this pet that the live system no longer has.
        #[arg(long)]
        pet: Option<uuid::Uuid>,
        /// age identity file(s) holding the private key the backups are encrypted to.
        #[arg(long = "identity", required = false)]
        identities: Vec<std::path::PathBuf>,
        /// Also believe manifests that carry no signature: backups written before Pawfile signed them
        /// (deletion markers must still be signed). Needs a snapshot id, not `latest`. Only after making
        /// sure nobody else could write to the backup bucket.
        #[arg(long)]
        accept_unsigned: bool,
    },
    /// Create the demo clinic, accounts and pets, and a few documents of theirs in the document store
    /// (does nothing if they exist).
    SeedDemo {
        /// The same settings as `serve`: the demo documents go to its document store.
        #[command(flatten)]
        settings: Box<ServeSettings>,
        /// Only seed an empty database (no accounts yet).
        #[arg(long)]
        if_empty: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Core(#[from] pawfile::error::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Runs one command.
pub async fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Serve(settings) => Box::pin(serve::serve(*settings)).await,
        Command::Healthcheck { listen } => {
            serve::healthcheck(listen).await?;
            say("healthy");
            Ok(())
        }
        Command::Migrate { database } => {
            let pool = database.connect().await?;
            db::migrate(&pool).await?;
            say("Database is up to date.");
            Ok(())
        }
        Command::CreateAdmin {
            database,
            email,
            name,
            password_stdin,
        } => accounts::create_admin(database, email, name, password_stdin).await,
        Command::CreateUser {
            database,
            email,
            name,
            role,
            clinic,
            password_stdin,
        } => accounts::create_user(database, email, name, role, clinic, password_stdin).await,
        Command::ResetTwoFactor { database, email } => accounts::reset_two_factor(database, email).await,
        Command::Reconcile {
            settings,
            grace,
            verify_sample,
        } => maintenance::reconcile(&settings, grace, verify_sample).await,
        Command::Backup(command) => backup::run(command).await,
        Command::Restore {
            settings,
            snapshot,
            document,
            pet,
            identities,
            accept_unsigned,
        } => restore::restore(&settings, snapshot, document, pet, &identities, accept_unsigned).await,
        Command::SeedDemo { settings, if_empty } => maintenance::seed_demo(&settings, if_empty).await,
    }
}

/// Command results go to standard output; logs go to standard error.
#[allow(clippy::print_stdout)]
fn say(line: &str) {
    println!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_setting_has_an_environment_variable() {
        let cli = Cli::command();
        let serve = cli.find_subcommand("serve").expect("serve exists");
        for arg in serve.get_arguments() {
            if arg.get_id() == "help" || arg.get_id() == "version" || arg.is_global_set() {
                continue;
            }
            let env = arg
                .get_env()
                .unwrap_or_else(|| panic!("--{} has no environment variable", arg.get_id()));
            let env = env.to_string_lossy();
            assert!(env == "DATABASE_URL" || env.starts_with("PAWFILE_"), "{env}");
        }
    }
}
