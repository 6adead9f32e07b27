//! `pawfile`: the server and its administration commands in one binary.

use clap::{Parser, Subcommand};
use pawfile::{
    auth::{NewUser, PasswordHasher, create_user},
    config::{DatabaseSettings, LogFormat, ServeSettings},
    db,
    demo::{DEMO_ACCOUNTS, SeedOutcome, seed_demo},
    domain::{DisplayName, Email, NewPassword, Role, Roles},
    error::StartupError,
};
use pawfile_app::startup::{Application, telemetry};
use secrecy::{ExposeSecret, SecretString};
use std::{io::BufRead, process::ExitCode};

/// Pawfile: pet medical records and a secure document store.
#[derive(Debug, Parser)]
#[command(name = "pawfile", version, about, propagate_version = true)]
struct Cli {
    /// Log format.
    #[arg(long, env = "PAWFILE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the web server (and its background tasks). Applies pending migrations first.
    Serve(Box<ServeSettings>),
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
    /// Create the demo clinic, accounts and pets (does nothing if they exist).
    SeedDemo {
        #[command(flatten)]
        database: DatabaseSettings,
        /// Only seed an empty database (no accounts yet).
        #[arg(long)]
        if_empty: bool,
    },
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Core(#[from] pawfile::error::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("pawfile: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("pawfile: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Serve(settings) => serve(*settings).await,
        Command::Migrate { database } => {
            let pool = db::connect(&database).await?;
            db::migrate(&pool).await?;
            say("Database is up to date.");
            Ok(())
        }
        Command::CreateAdmin {
            database,
            email,
            name,
            password_stdin,
        } => {
            let user = NewUser {
                email: Email::parse(&email).map_err(|err| CliError::Invalid(format!("--email: {err}")))?,
                display_name: DisplayName::parse(&name)
                    .map_err(|err| CliError::Invalid(format!("--name: {err}")))?,
                password: read_new_password(password_stdin)?,
                roles: Roles::new([Role::Admin]),
                clinic_id: None,
            };
            let pool = db::connect(&database).await?;
            db::migrate(&pool).await?;
            let id = create_user(&pool, &PasswordHasher::for_this_machine(), user).await?;
            pawfile::audit::record(
                &pool,
                pawfile::audit::Event::new(pawfile::audit::Action::CreateAdmin, None, None)
                    .target("user", id.0),
            )
            .await?;
            say(&format!("Created administrator {email} ({id})."));
            Ok(())
        }
        Command::Reconcile {
            settings,
            grace,
            verify_sample,
        } => {
            use pawfile::documents::reconcile::{Options, reconcile};
            let (state, _embedded) = pawfile_app::startup::build_state(&settings).await?;
            let Some(report) = reconcile(
                &state.db,
                &state.documents,
                Options {
                    grace,
                    verify_sample,
                    ..Options::default()
                },
            )
            .await?
            else {
                say("Another Pawfile process is reconciling right now; try again later.");
                return Ok(());
            };
            say(&format!(
                "{} objects, {} documents; {} verified by reading back.",
                report.objects, report.documents, report.verified
            ));
            say(&format!(
                "Removed {} orphan objects: {:?}",
                report.removed_orphans.len(),
                report.removed_orphans
            ));
            say(&format!(
                "Aborted {} abandoned multipart uploads.",
                report.aborted_uploads
            ));
            for (what, ids) in [
                ("missing their object", &report.missing),
                ("with a size mismatch", &report.size_mismatches),
                ("with a checksum mismatch", &report.checksum_mismatches),
            ] {
                let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
                say(&format!("{} documents {what}: {}", ids.len(), ids.join(", ")));
            }
            if report.is_clean() {
                Ok(())
            } else {
                Err(CliError::Invalid(
                    "problems were flagged for administrators".to_owned(),
                ))
            }
        }
        Command::SeedDemo { database, if_empty } => {
            let pool = db::connect(&database).await?;
            db::migrate(&pool).await?;
            match seed_demo(&pool, &PasswordHasher::for_this_machine(), if_empty).await? {
                SeedOutcome::Seeded => {
                    say("Demo data created. Sign in with:");
                    for account in DEMO_ACCOUNTS {
                        say(&format!(
                            "  {:<22} {:<16} ({})",
                            account.email, account.password, account.role
                        ));
                    }
                }
                SeedOutcome::AlreadySeeded => say("Demo data already present; nothing changed."),
                SeedOutcome::NotEmpty => say("The database already has accounts; demo data not added."),
            }
            Ok(())
        }
    }
}

async fn serve(settings: ServeSettings) -> Result<(), CliError> {
    let app = Application::build(settings).await?;
    let shutdown = app.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        shutdown.cancel();
    });
    app.run_until_stopped().await?;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Command results go to standard output; logs go to standard error.
#[allow(clippy::print_stdout)]
fn say(line: &str) {
    println!("{line}");
}

fn read_new_password(from_stdin: bool) -> Result<NewPassword, CliError> {
    let password: SecretString = if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        SecretString::from(line.trim_end_matches(['\r', '\n']).to_owned())
    } else {
        let first = rpassword::prompt_password("Password for the new administrator: ")?;
        let second = rpassword::prompt_password("Repeat the password: ")?;
        if first != second {
            return Err(CliError::Invalid("the passwords differ".to_owned()));
        }
        SecretString::from(first)
    };
    NewPassword::parse(password.expose_secret()).map_err(|err| CliError::Invalid(err.to_string()))
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
