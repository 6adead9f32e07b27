//! The backup keys and drill a server starts with: configured, or on the embedded default generated
//! once into the data folder.

use crate::state::DrillSetup;
use pawfile::{backup::Recipients, config::ServeSettings, error::StartupError};
use std::sync::Arc;

/// The weekly drill's settings: a configured identity, or on the embedded default the generated key.
pub(super) fn drill_setup(
    settings: &ServeSettings,
    key_beside_data: bool,
) -> Result<Option<DrillSetup>, StartupError> {
    let path = match (&settings.backup.drill_identity, key_beside_data) {
        (Some(path), _) => path.clone(),
        (None, true) => embedded_key_path(settings),
        (None, false) => return Ok(None),
    };
    let identities = pawfile::backup::Identities::from_files(&[&path])
        .map_err(|message| StartupError::new("PAWFILE_BACKUP_DRILL_IDENTITY", message))?;
    if settings.backup.drill_database_url.is_none() && !key_beside_data {
        return Err(StartupError::new(
            "PAWFILE_BACKUP_DRILL_DATABASE_URL",
            "the drill needs a scratch database of its own (PAWFILE_BACKUP_DRILL_IDENTITY is set)",
        ));
    }
    Ok(Some(DrillSetup {
        identities: Arc::new(identities),
        database_url: settings.backup.drill_database_url.clone(),
        live_url: settings.database.url.clone(),
    }))
}

/// The recipients backups are encrypted to: the configured keys; on the embedded store without keys,
/// a key pair generated once into the data folder (the admin page warns that it sits beside the data);
/// otherwise none (backups then refuse to run unless unencrypted backups are allowed).
pub(super) fn backup_recipients(
    settings: &ServeSettings,
    embedded_store: bool,
) -> Result<(Recipients, bool), StartupError> {
    if let Some(keys) = settings
        .backup
        .recipients
        .as_deref()
        .filter(|keys| !keys.trim().is_empty())
    {
        let recipients = Recipients::parse(keys)
            .map_err(|message| StartupError::new("PAWFILE_BACKUP_RECIPIENTS", message))?;
        return Ok((recipients, false));
    }
    if !embedded_store {
        return Ok((Recipients::unencrypted(), false));
    }
    let path = embedded_key_path(settings);
    if !path.exists() {
        let (text, public) = pawfile::backup::crypto::generate_key_pair();
        write_private_file(&path, &text).map_err(|err| {
            StartupError::new(
                "PAWFILE_DATA_DIR",
                format!("cannot write {}: {err}", path.display()),
            )
        })?;
        tracing::warn!(key = %path.display(), %public, "generated a backup key in the data folder: copy it somewhere safe, away from this machine");
    }
    let identities = pawfile::backup::Identities::from_files(&[&path])
        .map_err(|message| StartupError::new("PAWFILE_DATA_DIR", message))?;
    Ok((identities.recipients(), true))
}

/// The keys backup objects are signed and checked with: the configured signing key, or one generated
/// once into the data folder (its public half logged, for the operator to keep with the age key).
pub(super) fn backup_keys(settings: &ServeSettings) -> Result<pawfile::backup::BackupKeys, StartupError> {
    let (key, generated) = settings
        .backup
        .signing_key(&settings.data_dir)
        .map_err(|message| StartupError::new("PAWFILE_BACKUP_SIGNING_KEY", message))?;
    let public = key.verifying_key();
    if generated {
        tracing::warn!(%public, "generated the backup signing key in the data folder: keep this public key with the backup's private key (a restore elsewhere needs it as PAWFILE_BACKUP_TRUSTED_KEYS), and give every replica the same PAWFILE_BACKUP_SIGNING_KEY");
    } else {
        tracing::info!(%public, "backup objects are signed with this key");
    }
    Ok(pawfile::backup::BackupKeys::new(
        Some(key),
        settings.backup.trusted_keys.clone(),
    ))
}

/// Where the embedded default keeps its generated backup key.
pub fn embedded_key_path(settings: &ServeSettings) -> std::path::PathBuf {
    settings.data_dir.join("backup-key.txt")
}

fn write_private_file(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    pawfile::files::write_private(path, text.as_bytes())
}
