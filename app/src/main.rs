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

/// mimalloc instead of glibc's malloc: rendering a page allocates and frees many small strings, and
/// glibc's malloc and free took about a fifth of the server's time under load (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

/// The kinds of account `create-user` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum NewUserRole {
    /// A pet owner.
    Owner,
    /// Clinic staff (needs --clinic).
    Staff,
}

#[derive(Debug, Subcommand)]
enum Command {
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
    Backup(BackupCommand),
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
    /// Create the demo clinic, accounts and pets (does nothing if they exist).
    SeedDemo {
        #[command(flatten)]
        database: DatabaseSettings,
        /// Only seed an empty database (no accounts yet).
        #[arg(long)]
        if_empty: bool,
    },
}

#[derive(Debug, Subcommand)]
enum BackupCommand {
    /// Take a backup now (exits non-zero if one is running elsewhere).
    Run {
        #[command(flatten)]
        settings: Box<ServeSettings>,
    },
    /// List the snapshots, newest first, with their recipients.
    List {
        #[command(flatten)]
        settings: Box<ServeSettings>,
    },
    /// Check the backup bucket: by default every catalogued object's presence and size; `--read`
    /// downloads and re-hashes the ciphertext; `--full` also decrypts and checks plaintext and row counts.
    Verify {
        #[command(flatten)]
        settings: Box<ServeSettings>,
        /// Download every object and check its SHA-256 (no key needed).
        #[arg(long)]
        read: bool,
        /// Decrypt every object and check plaintext hashes and row counts (needs --identity).
        #[arg(long, requires = "identities")]
        full: bool,
        /// age identity file(s), for --full.
        #[arg(long = "identity")]
        identities: Vec<std::path::PathBuf>,
    },
    /// Remove the snapshots the retention policy does not keep, then the objects no kept snapshot needs.
    Prune {
        #[command(flatten)]
        settings: Box<ServeSettings>,
    },
    /// Print a new age key pair: the private key (keep it offline) and the public key for
    /// PAWFILE_BACKUP_RECIPIENTS.
    Keygen,
    /// Print a new signing key for PAWFILE_BACKUP_SIGNING_KEY (secret: give it to every replica) and
    /// its public half (keep it with the age private key: a restore elsewhere needs it).
    SigningKeygen,
    /// Print the public half of the key this server signs backup objects with (for
    /// PAWFILE_BACKUP_TRUSTED_KEYS where backups are restored or verified).
    SigningKey {
        #[command(flatten)]
        settings: Box<ServeSettings>,
    },
    /// Restore the newest snapshot into the scratch database PAWFILE_BACKUP_DRILL_DATABASE_URL (emptied
    /// first; never the live one), hash every object, compare with the manifest, record the result.
    Drill {
        #[command(flatten)]
        settings: Box<ServeSettings>,
        /// age identity file(s) holding the private key.
        #[arg(long = "identity", required = true)]
        identities: Vec<std::path::PathBuf>,
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
    // Keys, credentials, mail, the embedded stores: whatever Pawfile writes is its own user's alone.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
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
        Command::Serve(settings) => Box::pin(serve(*settings)).await,
        Command::Healthcheck { listen } => {
            healthcheck(listen).await?;
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
        } => {
            let user = NewUser {
                email: Email::parse(&email).map_err(|err| CliError::Invalid(format!("--email: {err}")))?,
                display_name: DisplayName::parse(&name)
                    .map_err(|err| CliError::Invalid(format!("--name: {err}")))?,
                password: read_new_password(password_stdin, &[&email, &name])?,
                roles: Roles::new([Role::Admin]),
                clinic_id: None,
            };
            let pool = database.connect().await?;
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
        Command::CreateUser {
            database,
            email,
            name,
            role,
            clinic,
            password_stdin,
        } => {
            let name = name.unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());
            let email_address =
                Email::parse(&email).map_err(|err| CliError::Invalid(format!("--email: {err}")))?;
            let display_name =
                DisplayName::parse(&name).map_err(|err| CliError::Invalid(format!("--name: {err}")))?;
            let pool = database.connect().await?;
            db::migrate(&pool).await?;
            let clinic_id = match (role, clinic) {
                (NewUserRole::Staff, Some(clinic)) => Some(find_clinic(&pool, &clinic).await?),
                (NewUserRole::Owner, Some(_)) => {
                    return Err(CliError::Invalid(
                        "--clinic is only for staff accounts".to_owned(),
                    ));
                }
                (_, None) => None,
            };
            let user = NewUser {
                email: email_address,
                display_name,
                password: read_new_password(password_stdin, &[&email, &name])?,
                roles: Roles::new([match role {
                    NewUserRole::Owner => Role::Owner,
                    NewUserRole::Staff => Role::Staff,
                }]),
                clinic_id,
            };
            let id = create_user(&pool, &PasswordHasher::for_this_machine(), user).await?;
            let action = match role {
                NewUserRole::Owner => pawfile::audit::Action::Register,
                NewUserRole::Staff => pawfile::audit::Action::CreateStaff,
            };
            pawfile::audit::record(
                &pool,
                pawfile::audit::Event::new(action, None, None).target("user", id.0),
            )
            .await?;
            say(&format!(
                "Created {} account {email} ({id}).",
                match role {
                    NewUserRole::Owner => "owner",
                    NewUserRole::Staff => "staff",
                }
            ));
            Ok(())
        }
        Command::ResetTwoFactor { database, email } => {
            let email = Email::parse(&email).map_err(|err| CliError::Invalid(format!("--email: {err}")))?;
            let pool = database.connect().await?;
            db::migrate(&pool).await?;
            match pawfile::auth::two_factor::reset_by_email(&pool, &email).await {
                Ok(id) => {
                    say(&format!(
                        "Two-factor sign-in of {email} ({id}) is off; it is set up again at the next sign-in."
                    ));
                    Ok(())
                }
                Err(pawfile::error::Error::NotFound) => {
                    Err(CliError::Invalid(format!("--email: no account uses {email}")))
                }
                Err(err) => Err(err.into()),
            }
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
        Command::Backup(command) => backup_command(command).await,
        Command::Restore {
            settings,
            snapshot,
            document,
            pet,
            identities,
            accept_unsigned,
        } => {
            let identities = load_identities(&identities)?;
            let keys = restore_keys(&settings, accept_unsigned)?;
            let source = pawfile::backup::restore::Source {
                which: snapshot,
                identities: identities.as_ref(),
                keys: &keys,
            };
            if document.is_some() || pet.is_some() {
                use pawfile::backup::restore::{Selection, restore_documents};
                use pawfile::domain::{DocumentId, PetId};
                let (state, _embedded) = pawfile_app::startup::build_state(&settings).await?;
                let selection = match (document, pet) {
                    (Some(id), _) => Selection::Document(DocumentId(id)),
                    (None, Some(id)) => Selection::Pet(PetId(id)),
                    (None, None) => unreachable!("checked above"),
                };
                let brought =
                    restore_documents(&state.db, &state.documents, &state.backups, source, selection).await?;
                for document in &brought {
                    say(&format!(
                        "Document {} is back as {}, in its pet's trash.",
                        document.was, document.now
                    ));
                }
                return Ok(());
            }
            let (state, _embedded) = pawfile_app::startup::build_state_for_restore(&settings).await?;
            let progress = Bars::default();
            let report =
                pawfile::backup::restore::restore(&state.0, &state.1, &state.2, source, &progress).await?;
            progress.done();
            say(&format!(
                "Restored snapshot {}: {} files written ({} already there), {} rows; the catalogue knows {} snapshots.",
                report.snapshot,
                report.objects_written,
                report.objects_present,
                report.rows,
                report.catalogued_snapshots
            ));
            if report.deletions_reapplied > 0 {
                say(&format!(
                    "Deleted again {} accounts whose owners deleted them after this snapshot.",
                    report.deletions_reapplied
                ));
            }
            for why in &report.unreadable_manifests {
                say(&format!("Warning: not used: {why}"));
            }
            for why in &report.refused_markers {
                say(&format!("Warning: a deletion marker was not applied: {why}"));
            }
            say("Everyone signs in again: sessions are not part of a backup.");
            Ok(())
        }
        Command::SeedDemo { database, if_empty } => {
            let pool = database.connect().await?;
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

async fn backup_command(command: BackupCommand) -> Result<(), CliError> {
    use pawfile::backup::{self, StartedBy, Trigger, verify};
    match command {
        BackupCommand::Keygen => {
            let (private, public) = backup::crypto::generate_key_pair();
            say(&private);
            say(&format!("Public key (PAWFILE_BACKUP_RECIPIENTS): {public}"));
            Ok(())
        }
        BackupCommand::SigningKeygen => {
            let key = backup::SigningKey::generate();
            say(key.to_text().expose_secret());
            say(&format!(
                "Public key (PAWFILE_BACKUP_TRUSTED_KEYS where backups are restored): {}",
                key.verifying_key()
            ));
            Ok(())
        }
        BackupCommand::SigningKey { settings } => {
            let (key, generated) = settings
                .backup
                .signing_key(&settings.data_dir)
                .map_err(CliError::Invalid)?;
            if generated {
                say("(No signing key was set or stored; one was generated into the data folder.)");
            }
            say(&key.verifying_key().to_string());
            Ok(())
        }
        BackupCommand::Run { settings } => {
            let (state, _embedded) = pawfile_app::startup::build_state(&settings).await?;
            let by = StartedBy {
                trigger: Trigger::Cli,
                user: None,
                client_addr: None,
            };
            let Some(started) = state.backup.start(by).await? else {
                return Err(CliError::Invalid(
                    "a backup is running already (on this or another server); try again later".to_owned(),
                ));
            };
            let bar = indicatif::ProgressBar::new(0).with_style(
                indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} files")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_message(format!("Backing up ({})", started.id));
            let mut handle = started.handle;
            let result = loop {
                tokio::select! {
                    joined = &mut handle => break joined,
                    () = tokio::time::sleep(std::time::Duration::from_millis(500)) => {
                        if let Ok(Some(run)) = backup::find_run(&state.db, started.id).await {
                            bar.set_length(run.objects_total.max(0) as u64);
                            bar.set_position(run.objects_done.max(0) as u64);
                        }
                    }
                }
            };
            bar.finish_and_clear();
            let report =
                result.map_err(|err| CliError::Invalid(format!("the backup task failed: {err}")))??;
            say(&format!(
                "Backup {} complete: {} tables and {} files; {} objects copied ({} bytes), {} reused.",
                report.id,
                report.tables,
                report.files,
                report.objects_copied,
                report.bytes_copied,
                report.objects_reused
            ));
            Ok(())
        }
        BackupCommand::List { settings } => {
            let (state, _embedded) = pawfile_app::startup::build_state(&settings).await?;
            let pool = &state.db;
            // The bucket as it is now: a snapshot whose manifest is gone is listed as such.
            if let Err(err) = backup::check_manifests(pool, &state.backups, &state.backup.policy().keys).await
            {
                say(&format!(
                    "(cannot list the backup bucket: {err}; statuses as last checked)"
                ));
            }
            for run in backup::list_runs(pool, 1000).await? {
                let status = if run.manifest_missing && !run.pruned {
                    format!("{} (MANIFEST MISSING)", run.status.as_str())
                } else {
                    run.status.as_str().to_owned()
                };
                say(&format!(
                    "{}  {:<11} {:<8} {}  {} files, {} bytes{}  recipients: {}{}",
                    run.id,
                    status,
                    run.trigger,
                    run.started_at,
                    run.objects_done,
                    run.snapshot_bytes,
                    if run.pruned { " (pruned)" } else { "" },
                    run.recipients,
                    run.error
                        .map(|error| format!("  error: {error}"))
                        .unwrap_or_default()
                ));
            }
            Ok(())
        }
        BackupCommand::Verify {
            settings,
            read,
            full,
            identities,
        } => {
            let identities = load_identities(&identities)?;
            let (state, _embedded) = pawfile_app::startup::build_state(&settings).await?;
            let depth = if full {
                verify::Depth::Full(identities.as_ref())
            } else if read {
                verify::Depth::Read
            } else {
                verify::Depth::Presence
            };
            let report =
                verify::verify(&state.db, &state.backups, &state.backup.policy().keys, depth).await?;
            say(&format!(
                "{} snapshots, {} objects checked.",
                report.snapshots, report.objects
            ));
            for problem in &report.problems {
                say(&format!("PROBLEM {problem}"));
            }
            if report.is_clean() {
                Ok(())
            } else {
                Err(CliError::Invalid(format!(
                    "{} problems found",
                    report.problems.len()
                )))
            }
        }
        BackupCommand::Drill { settings, identities } => {
            let identities = load_identities(&identities)?
                .ok_or_else(|| CliError::Invalid("--identity is required".to_owned()))?;
            let scratch = settings.backup.drill_database_url.clone().ok_or_else(|| {
                CliError::Invalid("set PAWFILE_BACKUP_DRILL_DATABASE_URL to a scratch database".to_owned())
            })?;
            let (state, _embedded) = pawfile_app::startup::build_state(&settings).await?;
            let Some(report) = state.backup.drill(&identities, &scratch).await? else {
                return Err(CliError::Invalid(
                    "a backup, prune or drill is running (on this or another server); try again later"
                        .to_owned(),
                ));
            };
            say(&format!(
                "Drill of snapshot {}: {} rows loaded, {} objects hashed: {}.",
                report.snapshot,
                report.rows,
                report.objects,
                if report.passed { "passed" } else { "FAILED" }
            ));
            for problem in &report.problems {
                say(&format!("PROBLEM {problem}"));
            }
            if report.passed {
                Ok(())
            } else {
                Err(CliError::Invalid("the drill failed".to_owned()))
            }
        }
        BackupCommand::Prune { settings } => {
            let (state, _embedded) = pawfile_app::startup::build_state(&settings).await?;
            match state.backup.prune().await? {
                Some(report) => {
                    say(&format!(
                        "Pruned {} snapshots and {} objects; {} objects could not be deleted yet (Object Lock or no delete rights).",
                        report.snapshots, report.objects, report.locked
                    ));
                    Ok(())
                }
                None => Err(CliError::Invalid(
                    "a backup or prune is running (on this or another server); try again later".to_owned(),
                )),
            }
        }
    }
}

/// The keys a restore believes: the signing key's public half (configured, or in the data folder) and
/// PAWFILE_BACKUP_TRUSTED_KEYS; with `accept_unsigned`, unsigned manifests too.
fn restore_keys(
    settings: &ServeSettings,
    accept_unsigned: bool,
) -> Result<pawfile::backup::BackupKeys, CliError> {
    let keys = settings
        .backup
        .verifying_keys(&settings.data_dir)
        .map_err(CliError::Invalid)?;
    if accept_unsigned {
        return Ok(keys.accepting_unsigned_manifests());
    }
    if keys.trusted().is_empty() {
        return Err(CliError::Invalid(
            "a restore needs the public key the backups are signed with: set PAWFILE_BACKUP_TRUSTED_KEYS to the \
             pawfile-backup-verify-key-1:… the server printed (or PAWFILE_BACKUP_SIGNING_KEY to its signing key)"
                .to_owned(),
        ));
    }
    Ok(keys)
}

fn load_identities(paths: &[std::path::PathBuf]) -> Result<Option<pawfile::backup::Identities>, CliError> {
    if paths.is_empty() {
        return Ok(None);
    }
    pawfile::backup::Identities::from_files(paths)
        .map(Some)
        .map_err(CliError::Invalid)
}

/// Progress bars for a restore.
#[derive(Default)]
struct Bars(std::sync::Mutex<Option<indicatif::ProgressBar>>);

impl Bars {
    fn done(&self) {
        if let Some(bar) = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            bar.finish();
        }
    }
}

impl pawfile::backup::restore::Progress for Bars {
    fn stage(&self, name: &str, steps: u64) {
        let mut slot = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(bar) = slot.take() {
            bar.finish();
        }
        let bar = indicatif::ProgressBar::new(steps).with_style(
            indicatif::ProgressStyle::with_template("{msg:<8} [{bar:30}] {pos}/{len}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message(name.to_owned());
        *slot = Some(bar);
    }

    fn step(&self, _bytes: u64) {
        if let Some(bar) = &*self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) {
            bar.inc(1);
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

/// Asks `GET /healthz` of the server at `listen` within 5 seconds: `Ok` on a 200.
async fn healthcheck(mut listen: std::net::SocketAddr) -> Result<(), CliError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if listen.ip().is_unspecified() {
        listen.set_ip(match listen {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(listen).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut head = Vec::new();
        let mut buffer = [0; 256];
        while !head.windows(2).any(|pair| pair == b"\r\n") && head.len() < 1024 {
            let read = stream.read(&mut buffer).await?;
            if read == 0 {
                break;
            }
            head.extend_from_slice(&buffer[..read]);
        }
        Ok::<_, std::io::Error>(head)
    };
    let head = tokio::time::timeout(std::time::Duration::from_secs(5), ask)
        .await
        .map_err(|_| CliError::Invalid(format!("no answer from {listen} within 5 seconds")))?
        .map_err(|err| CliError::Invalid(format!("cannot ask {listen}: {err}")))?;
    let status = String::from_utf8_lossy(&head);
    let status = status.lines().next().unwrap_or_default();
    if status.split(' ').nth(1) == Some("200") {
        Ok(())
    } else {
        Err(CliError::Invalid(format!("{listen}/healthz answered {status:?}")))
    }
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

fn read_new_password(from_stdin: bool, context: &[&str]) -> Result<NewPassword, CliError> {
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
    NewPassword::parse_for(password.expose_secret(), context)
        .map_err(|err| CliError::Invalid(err.to_string()))
}

/// The clinic named `clinic` (case-insensitive) or with that id.
async fn find_clinic(pool: &sqlx::PgPool, clinic: &str) -> Result<pawfile::domain::ClinicId, CliError> {
    let by_id = clinic.trim().parse::<uuid::Uuid>().ok();
    let found: Vec<uuid::Uuid> = sqlx::query_scalar(
        "select id from clinics where id = $1 or lower(name) = lower($2) order by name limit 2",
    )
    .bind(by_id)
    .bind(clinic.trim())
    .fetch_all(pool)
    .await
    .map_err(|err| CliError::Invalid(format!("--clinic: {err}")))?;
    match found.as_slice() {
        [id] => Ok(pawfile::domain::ClinicId(*id)),
        [] => Err(CliError::Invalid(format!(
            "--clinic: no clinic is named {clinic:?}"
        ))),
        _ => Err(CliError::Invalid(format!(
            "--clinic: more than one clinic is named {clinic:?}; give its id"
        ))),
    }
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
