//! Helpers for tests (feature `testing`): a fresh bucket per test on a real S3 endpoint, either the
//! embedded one or the Garage server the test script starts.

use crate::{
    config::{S3Credentials, S3Settings},
    storage::{EmbeddedS3, ObjectStore},
};
use secrecy::SecretString;
use url::Url;

/// Which S3 server a test talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Backend {
    /// The in-process s3s-fs endpoint, on a temporary folder.
    Embedded,
    /// The Garage server started by `scripts/test` (`PAWFILE_TEST_GARAGE_*`).
    Garage,
}

/// A fresh, empty bucket for one test, and what keeps its endpoint alive.
#[derive(Debug)]
pub struct TestBucket {
    /// The store, configured for the bucket.
    pub store: ObjectStore,
    /// The settings the store was built from.
    pub settings: S3Settings,
    endpoint: Option<EmbeddedS3>,
    stopped: Option<(std::net::SocketAddr, S3Credentials)>,
    _folder: Option<tempfile::TempDir>,
}

fn bucket_name() -> String {
    format!("test-{}", uuid::Uuid::new_v4().simple())
}

fn garage_settings(bucket: &str) -> S3Settings {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run the tests with scripts/test, which starts a Garage server")
        })
    };
    S3Settings {
        endpoint: Some(
            Url::parse(&var("PAWFILE_TEST_GARAGE_ENDPOINT")).expect("PAWFILE_TEST_GARAGE_ENDPOINT is a URL"),
        ),
        region: var("PAWFILE_TEST_GARAGE_REGION"),
        bucket: bucket.to_owned(),
        credentials: Some(S3Credentials {
            access_key_id: var("PAWFILE_TEST_GARAGE_ACCESS_KEY_ID"),
            secret_access_key: SecretString::from(var("PAWFILE_TEST_GARAGE_SECRET_ACCESS_KEY")),
        }),
        force_path_style: Some(true),
        env_prefix: "PAWFILE_S3_",
        timeout: crate::config::DEFAULT_S3_TIMEOUT,
    }
}

impl TestBucket {
    /// Creates a fresh bucket on `backend`.
    pub async fn new(backend: S3Backend) -> Self {
        let bucket = bucket_name();
        let (settings, endpoint, folder) = match backend {
            S3Backend::Embedded => {
                let folder = tempfile::tempdir().expect("a temporary folder");
                let endpoint = EmbeddedS3::start(folder.path())
                    .await
                    .expect("the embedded S3 endpoint starts");
                (endpoint.settings(&bucket), Some(endpoint), Some(folder))
            }
            S3Backend::Garage => (garage_settings(&bucket), None, None),
        };
        let store = ObjectStore::connect(&settings).await;
        store
            .create_bucket_if_missing()
            .await
            .expect("the test bucket can be created");
        Self {
            store,
            settings,
            endpoint,
            stopped: None,
            _folder: folder,
        }
    }

    /// A fresh bucket on the embedded endpoint.
    pub async fn embedded() -> Self {
        Self::new(S3Backend::Embedded).await
    }

    /// Stops the embedded endpoint (connections are cut, as if the server died). Panics for Garage.
    pub fn stop_endpoint(&mut self) {
        let endpoint = self
            .endpoint
            .take()
            .expect("only an embedded endpoint can be stopped by a test");
        let credentials = self
            .settings
            .credentials
            .clone()
            .expect("embedded endpoints have credentials");
        self.stopped = Some((endpoint.addr(), credentials));
        endpoint.stop();
    }

    /// Starts a stopped embedded endpoint again, at the same address, on the same folder.
    pub async fn restart_endpoint(&mut self) {
        let (addr, credentials) = self.stopped.take().expect("the endpoint was stopped");
        let folder = self
            ._folder
            .as_ref()
            .expect("embedded endpoints have a folder")
            .path()
            .to_owned();
        self.endpoint = Some(
            EmbeddedS3::start_with(&folder, addr, credentials)
                .await
                .expect("the endpoint restarts"),
        );
    }

    /// The running embedded endpoint, to inject faults (`refuse`). Panics for Garage.
    pub fn endpoint(&self) -> &EmbeddedS3 {
        self.endpoint.as_ref().expect("an embedded, running endpoint")
    }

    /// Multipart uploads begun and neither completed nor aborted. Garage lists them; for the embedded
    /// endpoint (which cannot list them) the part files it keeps in its folder are counted.
    pub async fn pending_uploads(&self) -> usize {
        match &self._folder {
            Some(folder) => std::fs::read_dir(folder.path())
                .expect("the endpoint folder is readable")
                .filter_map(Result::ok)
                .filter(|entry| entry.file_name().to_string_lossy().starts_with(".upload_id-"))
                .count(),
            None => self
                .store
                .sdk()
                .list_multipart_uploads()
                .bucket(self.store.bucket())
                .send()
                .await
                .expect("Garage lists multipart uploads")
                .uploads()
                .len(),
        }
    }

    /// Every key in the bucket.
    pub async fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .store
            .list("")
            .await
            .expect("the test bucket can be listed")
            .into_iter()
            .map(|object| object.key)
            .collect();
        keys.sort();
        keys
    }
}
