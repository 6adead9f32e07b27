//! `backup`: take a backup now, list, verify, prune or drill snapshots, or make keys.

use super::{CliError, restore::load_identities, say};
use clap::Subcommand;
use pawfile::config::ServeSettings;
use secrecy::ExposeSecret;

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
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

/// Runs one `backup` command.
pub async fn run(command: BackupCommand) -> Result<(), CliError> {
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
