//! Helpers for tests (feature `testing`): a fresh bucket per test on a real S3 endpoint, either the
//! embedded one or the Garage server the test script starts.

use crate::{
    storage::{EmbeddedS3, ObjectStore},
    storage::{S3Credentials, S3Settings},
};
use secrecy::SecretString;
use url::Url;

/// The key every test installation signs its backup objects with (one for all, so a test's second
/// server or its restore trusts the first's signatures, as replicas sharing `PAWFILE_BACKUP_SIGNING_KEY`
/// do).
pub fn backup_signing_key() -> crate::backup::SigningKey {
    static KEY: std::sync::LazyLock<crate::backup::SigningKey> =
        std::sync::LazyLock::new(crate::backup::SigningKey::generate);
    KEY.clone()
}

/// The backup keys of a test installation: signing with [`backup_signing_key`].
pub fn backup_keys() -> crate::backup::BackupKeys {
    crate::backup::BackupKeys::new(Some(backup_signing_key()), Vec::new())
}

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
        timeout: crate::storage::DEFAULT_S3_TIMEOUT,
    }
}

/// A three-node Garage cluster (replication factor 3) that `scripts/test` starts on loopback.
#[derive(Debug)]
pub struct GarageCluster {
    endpoints: Vec<Url>,
    pids: Vec<u32>,
    region: String,
    credentials: S3Credentials,
}

impl GarageCluster {
    /// The cluster `scripts/test` started (from its `PAWFILE_TEST_GARAGE_CLUSTER_*` variables).
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: run the tests with scripts/test, which starts a three-node Garage cluster")
            })
        };
        let endpoints: Vec<Url> = var("PAWFILE_TEST_GARAGE_CLUSTER_ENDPOINTS")
            .split(',')
            .map(|endpoint| Url::parse(endpoint.trim()).expect("a cluster endpoint is a URL"))
            .collect();
        let pids: Vec<u32> = var("PAWFILE_TEST_GARAGE_CLUSTER_PIDS")
            .split_whitespace()
            .map(|pid| pid.parse().expect("a process id"))
            .collect();
        assert_eq!((endpoints.len(), pids.len()), (3, 3), "three nodes");
        Self {
            endpoints,
            pids,
            region: var("PAWFILE_TEST_GARAGE_CLUSTER_REGION"),
            credentials: S3Credentials {
                access_key_id: var("PAWFILE_TEST_GARAGE_CLUSTER_ACCESS_KEY_ID"),
                secret_access_key: SecretString::from(var("PAWFILE_TEST_GARAGE_CLUSTER_SECRET_ACCESS_KEY")),
            },
        }
    }

    /// Settings for `bucket` through node `node` (0, 1 or 2).
    pub fn settings(&self, node: usize, bucket: &str) -> S3Settings {
        S3Settings {
            endpoint: Some(self.endpoints[node].clone()),
            region: self.region.clone(),
            bucket: bucket.to_owned(),
            credentials: Some(self.credentials.clone()),
            force_path_style: Some(true),
            env_prefix: "PAWFILE_S3_",
            timeout: crate::storage::DEFAULT_S3_TIMEOUT,
        }
    }

    /// A fresh bucket, created through node 0; its store talks to node 0.
    pub async fn bucket(&self) -> TestBucket {
        let settings = self.settings(0, &bucket_name());
        let store = ObjectStore::connect(&settings).await;
        store
            .create_bucket_if_missing()
            .await
            .expect("the test bucket can be created on the cluster");
        TestBucket {
            store,
            settings,
            endpoint: None,
            stopped: None,
            _folder: None,
        }
    }

    /// Kills node `node`'s process (SIGKILL), as a crashed machine. Nothing restarts it: the cluster
    /// goes on with two of its three nodes.
    pub fn kill_node(&self, node: usize) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &self.pids[node].to_string()])
            .status();
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

/// A real SMTP server on loopback for one test: `aiosmtpd` (PyPI), from the path `scripts/test`
/// exports as `PAWFILE_TEST_AIOSMTPD`, keeping what arrives in a Maildir of its own. Stopped on drop.
#[derive(Debug)]
pub struct SmtpSink {
    /// The port it listens on (kept across [`SmtpSink::stop`] and [`SmtpSink::restart`]).
    pub port: u16,
    child: Option<tokio::process::Child>,
    /// While stopped: a listener holding the port that closes every connection at once, so a stopped
    /// server refuses mail as a dead one would and no other test's server can take its port meanwhile.
    placeholder: Option<tokio::task::JoinHandle<()>>,
    folder: tempfile::TempDir,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(placeholder) = self.placeholder.take() {
            placeholder.abort();
        }
    }
}

impl SmtpSink {
    /// Starts one on a free port.
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut sink = Self {
            port,
            child: None,
            placeholder: None,
            folder: tempfile::tempdir().expect("a temporary folder"),
        };
        sink.restart().await;
        sink
    }

    /// How Pawfile reaches it: plain SMTP on loopback, no credentials.
    pub fn server(&self) -> crate::mail::SmtpServer {
        crate::mail::SmtpServer {
            host: "127.0.0.1".to_owned(),
            port: Some(self.port),
            tls: crate::mail::SmtpTls::None,
            credentials: None,
        }
    }

    /// Stops the server (what arrived stays readable). Its port stays taken, closing every connection.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
            if let Ok(listener) = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await {
                self.placeholder = Some(tokio::spawn(async move {
                    while let Ok((connection, _)) = listener.accept().await {
                        drop(connection);
                    }
                }));
            }
        }
    }

    /// Starts the server again on the same port, with the same Maildir; returns once it accepts.
    pub async fn restart(&mut self) {
        self.stop().await;
        if let Some(placeholder) = self.placeholder.take() {
            placeholder.abort();
            let _ = placeholder.await;
        }
        let program = std::env::var("PAWFILE_TEST_AIOSMTPD").unwrap_or_else(|_| {
            panic!(
                "PAWFILE_TEST_AIOSMTPD is not set: run the tests with scripts/test, which installs aiosmtpd"
            )
        });
        let child = tokio::process::Command::new(program)
            .args(["--nosetuid", "--listen", &format!("127.0.0.1:{}", self.port)])
            .args(["--class", "aiosmtpd.handlers.Mailbox"])
            .arg(self.folder.path().join("maildir"))
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("aiosmtpd starts");
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("aiosmtpd did not listen on port {} within 5 s", self.port);
    }

    /// Every message that arrived, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let maildir = self.folder.path().join("maildir");
        let mut files: Vec<std::path::PathBuf> = ["new", "cur"]
            .iter()
            .filter_map(|sub| std::fs::read_dir(maildir.join(sub)).ok())
            .flatten()
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .collect();
        // Maildir names start with the delivery time in seconds, then a counter: sort by the file's time.
        files.sort_by_key(|path| std::fs::metadata(path).and_then(|meta| meta.modified()).ok());
        files.iter().map(|path| ReceivedMail::read(path)).collect()
    }

    /// Waits up to `within` until `count` messages for `to` arrived; returns them (panics otherwise).
    pub async fn wait_for(&self, to: &str, count: usize, within: std::time::Duration) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let mail: Vec<ReceivedMail> = self.messages().into_iter().filter(|mail| mail.to == to).collect();
            if mail.len() >= count {
                return mail;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "{} of {count} messages for {to} arrived within {within:?}",
                    mail.len()
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// How long tests wait for background work to settle. Generous: it costs time only when a test fails.
pub const SETTLE: std::time::Duration = std::time::Duration::from_secs(30);

/// Polls `check` every 50 ms until it holds. Fails the test, naming `what`, if it has not held within
/// `within`. Meant for conditions that stay true once true (a run settled, a row gone, a counter
/// reached), so the caller can read the state again afterwards.
pub async fn eventually<F, Fut>(within: std::time::Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {within:?}: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A delivered message, parsed.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The first `To` address.
    pub to: String,
    /// The `From` address.
    pub from: String,
    /// The subject.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
}

impl ReceivedMail {
    /// Parses a message file (a Maildir entry or an `.eml`).
    pub fn read(path: &std::path::Path) -> Self {
        let bytes = std::fs::read(path).expect("the message file is readable");
        let message = mail_parser::MessageParser::default()
            .parse(&bytes)
            .expect("the message parses");
        let address = |addr: Option<&mail_parser::Address<'_>>| {
            addr.and_then(|addr| addr.first())
                .and_then(|addr| addr.address())
                .unwrap_or_default()
                .to_owned()
        };
        Self {
            to: address(message.to()),
            from: address(message.from()),
            subject: message.subject().unwrap_or_default().to_owned(),
            text: message.body_text(0).unwrap_or_default().into_owned(),
            html: message.body_html(0).unwrap_or_default().into_owned(),
        }
    }

    /// Every `.eml` in `folder` (the embedded default's mail), oldest first.
    pub fn in_folder(folder: &std::path::Path) -> Vec<Self> {
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(folder)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.path())
                    .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort_by_key(|path| std::fs::metadata(path).and_then(|meta| meta.modified()).ok());
        files.iter().map(|path| Self::read(path)).collect()
    }

    /// The first link in the plain-text body whose path is `path`, with its query.
    pub fn link(&self, path: &str) -> Option<Url> {
        self.text
            .split_whitespace()
            .filter_map(|word| Url::parse(word).ok())
            .find(|url| url.path() == path)
    }

    /// The `token` of the first link to `path`.
    pub fn token(&self, path: &str) -> Option<String> {
        self.link(path)?
            .query_pairs()
            .find(|(name, _)| name == "token")
            .map(|(_, value)| value.into_owned())
    }
}
