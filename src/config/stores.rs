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

/// One S3 store's settings, as a clap group: the same seven settings for each store, told apart by
/// their flags (`--s3-…`, `--backup-s3-…`) and environment variables (`PAWFILE_S3_…`,
/// `PAWFILE_BACKUP_S3_…`).
macro_rules! s3_store_settings {
    (
        $(#[$meta:meta])*
        $name:ident {
            flags: $flag:literal,
            env: $env:literal,
            store: $store:literal,
            bucket: $bucket:literal,
            unset_endpoint: $unset:literal $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Args)]
        pub struct $name {
            #[doc = concat!("S3 endpoint of the ", $store, ". ", $unset)]
            #[arg(
                id = concat!($flag, "endpoint"),
                long = concat!($flag, "endpoint"),
                env = concat!($env, "ENDPOINT"),
                help = concat!("S3 endpoint of the ", $store, ". ", $unset)
            )]
            pub endpoint: Option<Url>,
            #[doc = concat!("Region of the ", $store, ".")]
            #[arg(
                id = concat!($flag, "region"),
                long = concat!($flag, "region"),
                env = concat!($env, "REGION"),
                default_value = "us-east-1",
                help = concat!("Region of the ", $store, ".")
            )]
            pub region: String,
            #[doc = concat!("Name of the private ", $store, ".")]
            #[arg(
                id = concat!($flag, "bucket"),
                long = concat!($flag, "bucket"),
                env = concat!($env, "BUCKET"),
                default_value = $bucket,
                help = concat!("Name of the private ", $store, ".")
            )]
            pub bucket: String,
            #[doc = concat!("Access key id for the ", $store, " (unset: the default AWS credential chain).")]
            #[arg(
                id = concat!($flag, "access-key-id"),
                long = concat!($flag, "access-key-id"),
                env = concat!($env, "ACCESS_KEY_ID"),
                help = concat!("Access key id for the ", $store, " (unset: the default AWS credential chain).")
            )]
            pub access_key_id: Option<String>,
            #[doc = concat!("Secret access key for the ", $store, ".")]
            #[arg(
                id = concat!($flag, "secret-access-key"),
                long = concat!($flag, "secret-access-key"),
                env = concat!($env, "SECRET_ACCESS_KEY"),
                value_parser = parse_secret,
                hide_env_values = true,
                help = concat!("Secret access key for the ", $store, ".")
            )]
            pub secret_access_key: Option<SecretString>,
            #[doc = concat!("Path-style addressing for the ", $store, " (default: on with a custom endpoint).")]
            #[arg(
                id = concat!($flag, "force-path-style"),
                long = concat!($flag, "force-path-style"),
                env = concat!($env, "FORCE_PATH_STYLE"),
                help = concat!("Path-style addressing for the ", $store, " (default: on with a custom endpoint).")
            )]
            pub force_path_style: Option<bool>,
            #[doc = concat!("How long an operation on the ", $store, " (or a pause in a download) may take before the request fails.")]
            #[arg(
                id = concat!($flag, "timeout"),
                long = concat!($flag, "timeout"),
                env = concat!($env, "TIMEOUT"),
                default_value = "30s",
                value_parser = parse_duration,
                help = concat!("How long an operation on the ", $store, " (or a pause in a download) may take before the request fails.")
            )]
            pub timeout: Duration,
        }

        impl $name {
            /// The environment variables' prefix, which error messages name.
            const PREFIX: &'static str = $env;

            /// The store's settings with `endpoint`, or a message naming the setting that is wrong.
            fn s3_at(&self, endpoint: Option<Url>) -> Result<S3Settings, String> {
                Ok(S3Settings {
                    endpoint,
                    region: self.region.clone(),
                    bucket: self.bucket.clone(),
                    credentials: credentials(
                        self.access_key_id.as_ref(),
                        self.secret_access_key.as_ref(),
                        Self::PREFIX,
                    )?,
                    force_path_style: self.force_path_style,
                    env_prefix: Self::PREFIX,
                    timeout: self.timeout,
                })
            }
        }
    };
}

s3_store_settings! {
    /// The documents bucket. With no endpoint, Pawfile serves an embedded S3 endpoint on loopback.
    DocumentStoreSettings {
        flags: "s3-",
        env: "PAWFILE_S3_",
        store: "documents bucket",
        bucket: "pawfile-documents",
        unset_endpoint: "For example https://s3.eu-central-1.amazonaws.com or http://garage:3900. Unset: an embedded S3 endpoint on loopback, backed by the data folder.",
    }
}

s3_store_settings! {
    /// The backup bucket: separate from the documents bucket, with its own credentials.
    BackupStoreSettings {
        flags: "backup-s3-",
        env: "PAWFILE_BACKUP_S3_",
        store: "backup bucket",
        bucket: "pawfile-backups",
        unset_endpoint: "Unset: the documents endpoint, or a second embedded endpoint (on the same machine, so not a real off-site backup) when that one is embedded too.",
    }
}

impl DocumentStoreSettings {
    /// The store's settings, or a message naming the setting that is wrong.
    pub fn s3(&self) -> Result<S3Settings, String> {
        self.s3_at(self.endpoint.clone())
    }
}

impl BackupStoreSettings {
    /// The store's settings, or a message naming the setting that is wrong. `documents_endpoint` is
    /// the default endpoint.
    pub fn s3(&self, documents_endpoint: Option<&Url>) -> Result<S3Settings, String> {
        self.s3_at(self.endpoint.clone().or_else(|| documents_endpoint.cloned()))
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

    #[test]
    fn each_store_has_its_own_flags_and_variables() {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            documents: DocumentStoreSettings,
            #[command(flatten)]
            backups: BackupStoreSettings,
        }
        let both = Wrap::try_parse_from([
            "pawfile",
            "--s3-bucket=docs",
            "--backup-s3-bucket=safe",
            "--backup-s3-endpoint=http://backup.internal:3900",
            "--backup-s3-timeout=5s",
        ])
        .unwrap();
        assert_eq!(both.documents.bucket, "docs");
        assert_eq!(both.backups.bucket, "safe");
        assert_eq!(both.documents.timeout, Duration::from_secs(30));
        assert_eq!(both.backups.timeout, Duration::from_secs(5));
        let backups = both.backups.s3(None).unwrap();
        assert_eq!(backups.endpoint.unwrap().as_str(), "http://backup.internal:3900/");
        assert_eq!(backups.env_prefix, "PAWFILE_BACKUP_S3_");
        // The backup store defaults to the documents' endpoint.
        let documents_endpoint: Url = "http://garage:3900".parse().unwrap();
        let defaulted = Wrap::try_parse_from(["pawfile"]).unwrap();
        assert_eq!(defaulted.documents.bucket, "pawfile-documents");
        assert_eq!(defaulted.backups.bucket, "pawfile-backups");
        assert_eq!(
            defaulted.backups.s3(Some(&documents_endpoint)).unwrap().endpoint,
            Some(documents_endpoint)
        );
        // One key without its secret names the store's own variables.
        let half = Wrap::try_parse_from(["pawfile", "--backup-s3-access-key-id=AK"]).unwrap();
        assert!(
            half.backups
                .s3(None)
                .unwrap_err()
                .contains("PAWFILE_BACKUP_S3_SECRET_ACCESS_KEY")
        );
        let envs: Vec<String> = <Wrap as clap::CommandFactory>::command()
            .get_arguments()
            .filter_map(|arg| arg.get_env().map(|env| env.to_string_lossy().into_owned()))
            .collect();
        for setting in [
            "ENDPOINT",
            "REGION",
            "BUCKET",
            "ACCESS_KEY_ID",
            "SECRET_ACCESS_KEY",
            "FORCE_PATH_STYLE",
            "TIMEOUT",
        ] {
            assert!(envs.contains(&format!("PAWFILE_S3_{setting}")), "{envs:?}");
            assert!(envs.contains(&format!("PAWFILE_BACKUP_S3_{setting}")), "{envs:?}");
        }
    }
}
