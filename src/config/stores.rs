//! The two S3 stores: the documents bucket and the separate backup bucket (NR-9).

use super::{parse_duration, parse_secret};
use crate::storage::{S3Credentials, S3Settings};
use clap::Args;
use secrecy::SecretString;
use std::time::Duration;
use url::Url;

fn credentials(
    access_key_id: Option<&String>,
    secret: Option<&SecretString>,
    env_prefix: &str,
) -> Result<Option<S3Credentials>, String> {
    match (access_key_id, secret) {
        (Some(id), Some(secret)) => Ok(Some(S3Credentials {
            access_key_id: id.clone(),
            secret_access_key: secret.clone(),
        })),
        (None, None) => Ok(None),
        _ => Err(format!(
            "{env_prefix}ACCESS_KEY_ID and {env_prefix}SECRET_ACCESS_KEY must be set together"
        )),
    }
}

/// The documents bucket. With no endpoint, Pawfile serves an embedded S3 endpoint on loopback.
#[derive(Debug, Clone, Args)]
pub struct DocumentStoreSettings {
    /// S3 endpoint of the documents bucket (https://s3.eu-central-1.amazonaws.com, http://garage:3900).
    /// Unset: an embedded S3 endpoint on loopback, backed by the data folder.
    #[arg(id = "s3-endpoint", long = "s3-endpoint", env = "PAWFILE_S3_ENDPOINT")]
    pub endpoint: Option<Url>,
    /// Region of the documents bucket.
    #[arg(
        id = "s3-region",
        long = "s3-region",
        env = "PAWFILE_S3_REGION",
        default_value = "us-east-1"
    )]
    pub region: String,
    /// Name of the private documents bucket.
    #[arg(
        id = "s3-bucket",
        long = "s3-bucket",
        env = "PAWFILE_S3_BUCKET",
        default_value = "pawfile-documents"
    )]
    pub bucket: String,
    /// Access key id for the documents bucket (unset: the default AWS credential chain).
    #[arg(
        id = "s3-access-key-id",
        long = "s3-access-key-id",
        env = "PAWFILE_S3_ACCESS_KEY_ID"
    )]
    pub access_key_id: Option<String>,
    /// Secret access key for the documents bucket.
    #[arg(id = "s3-secret-access-key", long = "s3-secret-access-key", env = "PAWFILE_S3_SECRET_ACCESS_KEY", value_parser = parse_secret, hide_env_values = true)]
    pub secret_access_key: Option<SecretString>,
    /// Path-style addressing (default: on with a custom endpoint).
    #[arg(
        id = "s3-force-path-style",
        long = "s3-force-path-style",
        env = "PAWFILE_S3_FORCE_PATH_STYLE"
    )]
    pub force_path_style: Option<bool>,
    /// How long an S3 operation (or a pause in a download) may take before the request fails.
    #[arg(id = "s3-timeout", long = "s3-timeout", env = "PAWFILE_S3_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
}

impl DocumentStoreSettings {
    /// The store's settings, or a message naming the setting that is wrong.
    pub fn s3(&self) -> Result<S3Settings, String> {
        const PREFIX: &str = "PAWFILE_S3_";
        Ok(S3Settings {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            bucket: self.bucket.clone(),
            credentials: credentials(
                self.access_key_id.as_ref(),
                self.secret_access_key.as_ref(),
                PREFIX,
            )?,
            force_path_style: self.force_path_style,
            env_prefix: PREFIX,
            timeout: self.timeout,
        })
    }
}

/// The backup bucket: separate from the documents bucket, with its own credentials.
#[derive(Debug, Clone, Args)]
pub struct BackupStoreSettings {
    /// S3 endpoint of the backup bucket. Unset: the documents endpoint, or a second embedded endpoint
    /// (on the same machine, so not a real off-site backup) when that one is embedded too.
    #[arg(
        id = "backup-s3-endpoint",
        long = "backup-s3-endpoint",
        env = "PAWFILE_BACKUP_S3_ENDPOINT"
    )]
    pub endpoint: Option<Url>,
    /// Region of the backup bucket.
    #[arg(
        id = "backup-s3-region",
        long = "backup-s3-region",
        env = "PAWFILE_BACKUP_S3_REGION",
        default_value = "us-east-1"
    )]
    pub region: String,
    /// Name of the private backup bucket.
    #[arg(
        id = "backup-s3-bucket",
        long = "backup-s3-bucket",
        env = "PAWFILE_BACKUP_S3_BUCKET",
        default_value = "pawfile-backups"
    )]
    pub bucket: String,
    /// Access key id for the backup bucket (unset: the default AWS credential chain).
    #[arg(
        id = "backup-s3-access-key-id",
        long = "backup-s3-access-key-id",
        env = "PAWFILE_BACKUP_S3_ACCESS_KEY_ID"
    )]
    pub access_key_id: Option<String>,
    /// Secret access key for the backup bucket.
    #[arg(id = "backup-s3-secret-access-key", long = "backup-s3-secret-access-key", env = "PAWFILE_BACKUP_S3_SECRET_ACCESS_KEY", value_parser = parse_secret, hide_env_values = true)]
    pub secret_access_key: Option<SecretString>,
    /// Path-style addressing for the backup bucket (default: on with a custom endpoint).
    #[arg(
        id = "backup-s3-force-path-style",
        long = "backup-s3-force-path-style",
        env = "PAWFILE_BACKUP_S3_FORCE_PATH_STYLE"
    )]
    pub force_path_style: Option<bool>,
    /// How long an operation on the backup store (or a pause in a download) may take.
    #[arg(id = "backup-s3-timeout", long = "backup-s3-timeout", env = "PAWFILE_BACKUP_S3_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
}

impl BackupStoreSettings {
    /// The store's settings, or a message naming the setting that is wrong. `documents_endpoint` is
    /// the default endpoint.
    pub fn s3(&self, documents_endpoint: Option<&Url>) -> Result<S3Settings, String> {
        const PREFIX: &str = "PAWFILE_BACKUP_S3_";
        Ok(S3Settings {
            endpoint: self.endpoint.clone().or_else(|| documents_endpoint.cloned()),
            region: self.region.clone(),
            bucket: self.bucket.clone(),
            credentials: credentials(
                self.access_key_id.as_ref(),
                self.secret_access_key.as_ref(),
                PREFIX,
            )?,
            force_path_style: self.force_path_style,
            env_prefix: PREFIX,
            timeout: self.timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_in_pairs() {
        let secret = SecretString::from("s".to_owned());
        let id = "AK".to_owned();
        assert!(
            credentials(Some(&id), None, "PAWFILE_S3_")
                .unwrap_err()
                .contains("PAWFILE_S3_SECRET_ACCESS_KEY")
        );
        assert!(credentials(None, Some(&secret), "X_").is_err());
        assert!(credentials(None, None, "X_").unwrap().is_none());
        assert!(credentials(Some(&id), Some(&secret), "X_").unwrap().is_some());
    }
}
