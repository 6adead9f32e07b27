//! `restore`: a snapshot into an empty database and bucket, or single documents back into the live system.

use super::{CliError, say};
use pawfile::{backup::restore::Which, config::ServeSettings};
use std::path::PathBuf;
use uuid::Uuid;

/// `restore`: with `document` or `pet`, documents back into their pet's trash; otherwise the whole
/// snapshot.
pub async fn restore(
    settings: &ServeSettings,
    snapshot: Which,
    document: Option<Uuid>,
    pet: Option<Uuid>,
    identities: &[PathBuf],
    accept_unsigned: bool,
) -> Result<(), CliError> {
    let identities = load_identities(identities)?;
    let keys = restore_keys(settings, accept_unsigned)?;
    let source = pawfile::backup::restore::Source {
        which: snapshot,
        identities: identities.as_ref(),
        keys: &keys,
    };
    if document.is_some() || pet.is_some() {
        use pawfile::backup::restore::{Selection, restore_documents};
        use pawfile::domain::{DocumentId, PetId};
        let (state, _embedded) = pawfile_app::startup::build_state(settings).await?;
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
    let (state, _embedded) = pawfile_app::startup::build_state_for_restore(settings).await?;
    let progress = Bars::default();
    let report = pawfile::recovery::restore(&state.0, &state.1, &state.2, source, &progress).await?;
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

pub(super) fn load_identities(paths: &[PathBuf]) -> Result<Option<pawfile::backup::Identities>, CliError> {
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
