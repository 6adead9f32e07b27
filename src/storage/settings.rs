//! Where one S3 store is, which bucket, and with which credentials (`crate::config` reads them).

use secrecy::SecretString;
use std::time::Duration;
use url::Url;

/// One S3 store: where it is, which bucket, and with which credentials.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// The endpoint; `None` means the embedded endpoint.
    pub endpoint: Option<Url>,
    /// The region to sign requests for.
    pub region: String,
    /// The bucket.
    pub bucket: String,
    /// Static credentials; `None` uses the default AWS credential chain.
    pub credentials: Option<S3Credentials>,
    /// Path-style addressing (`endpoint/bucket/key`); `None` means on for custom endpoints.
    pub force_path_style: Option<bool>,
    /// The environment variable prefix, to name settings in error messages.
    pub env_prefix: &'static str,
    /// How long one S3 operation, or a pause in a download's bytes, may take before it fails: a
    /// stalled store fails the request that waits on it instead of holding it.
    pub timeout: Duration,
}

/// [`S3Settings::timeout`] unless set.
pub const DEFAULT_S3_TIMEOUT: Duration = Duration::from_secs(30);

/// A static S3 access key.
#[derive(Debug, Clone)]
pub struct S3Credentials {
    /// The access key id (not secret: it names the key).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: SecretString,
}

/// Why the backup store is not separate from the documents store (NR-9), in words for operators and
/// admins: the same access key, the default AWS credential chain for both, or the same endpoint.
pub fn separation_problems(documents: &S3Settings, backups: &S3Settings) -> Vec<String> {
    let mut problems = Vec::new();
    match (&documents.credentials, &backups.credentials) {
        (Some(documents), Some(backups)) if documents.access_key_id == backups.access_key_id => {
            problems.push(format!(
                "the backup store uses the same access key as the documents ({}): give PAWFILE_BACKUP_S3_ACCESS_KEY_ID \
                 a key of its own that cannot read the documents",
                backups.access_key_id
            ));
        }
        (None, None) => problems.push(
            "both stores use the default AWS credential chain, so one key reaches both: set \
             PAWFILE_BACKUP_S3_ACCESS_KEY_ID and PAWFILE_BACKUP_S3_SECRET_ACCESS_KEY"
                .to_owned(),
        ),
        _ => {}
    }
    if let (Some(documents), Some(backups)) = (&documents.endpoint, &backups.endpoint)
        && documents.host_str() == backups.host_str()
        && documents.port_or_known_default() == backups.port_or_known_default()
    {
        problems.push(format!(
            "the backup bucket is on the same endpoint as the documents ({}): another account or provider \
             survives the loss of this one",
            backups.host_str().unwrap_or_default()
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_store_sharing_a_key_or_an_endpoint_with_the_documents_is_named() {
        let store = |endpoint: &str, key: Option<&str>| S3Settings {
            endpoint: Some(Url::parse(endpoint).unwrap()),
            region: "r".to_owned(),
            bucket: "b".to_owned(),
            credentials: key.map(|key| S3Credentials {
                access_key_id: key.to_owned(),
                secret_access_key: SecretString::from("s".to_owned()),
            }),
            force_path_style: None,
            env_prefix: "X_",
            timeout: DEFAULT_S3_TIMEOUT,
        };
        let separate = separation_problems(
            &store("https://s3.one.example", Some("AK1")),
            &store("https://s3.two.example", Some("AK2")),
        );
        assert!(separate.is_empty(), "{separate:?}");
        let same_key = separation_problems(
            &store("https://s3.one.example", Some("AK1")),
            &store("https://s3.two.example", Some("AK1")),
        );
        assert_eq!(same_key.len(), 1);
        assert!(same_key[0].contains("same access key"));
        let default_chain = separation_problems(
            &store("https://s3.one.example", None),
            &store("https://s3.two.example", None),
        );
        assert!(default_chain[0].contains("default AWS credential chain"));
        let same_endpoint = separation_problems(
            &store("https://s3.one.example", Some("AK1")),
            &store("https://s3.one.example/", Some("AK2")),
        );
        assert_eq!(same_endpoint.len(), 1);
        assert!(same_endpoint[0].contains("same endpoint"));
    }
}
