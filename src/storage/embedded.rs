use super::{DEFAULT_S3_TIMEOUT, S3Credentials, S3Settings};
use anyhow::Context as _;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto::Builder as ConnBuilder,
};
use s3s::{auth::SimpleAuth, service::S3ServiceBuilder};
use secrecy::SecretString;
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};
use tokio::{net::TcpListener, task::JoinSet};
use url::Url;

/// An S3-compatible endpoint served in-process on loopback, backed by a local folder (s3s-fs). Pawfile
/// talks to it through aws-sdk-s3 exactly as it would talk to AWS. Fine for one machine and for tests,
/// not a production object store.
///
/// It stops when dropped: the listener closes and open connections are cut, as a crashed server would.
#[derive(Debug)]
pub struct EmbeddedS3 {
    addr: SocketAddr,
    root: PathBuf,
    credentials: S3Credentials,
    server: tokio::task::JoinHandle<()>,
    #[cfg(feature = "testing")]
    faults: std::sync::Arc<faults::Faults>,
}

#[cfg(feature = "testing")]
mod faults {
    //! Fault injection for tests: make the embedded server refuse chosen operations, as a real S3
    //! server does when it is overloaded or misconfigured.
    use s3s::access::{S3Access, S3AccessContext};
    use std::sync::Mutex;

    /// Operations (by S3 name, such as `CompleteMultipartUpload`) to refuse.
    #[derive(Debug, Default)]
    pub struct Faults(pub Mutex<Vec<String>>);

    pub struct Refuser(pub std::sync::Arc<Faults>);

    #[async_trait::async_trait]
    impl S3Access for Refuser {
        async fn check(&self, cx: &mut S3AccessContext<'_>) -> s3s::S3Result<()> {
            if cx.credentials().is_none() {
                return Err(s3s::s3_error!(AccessDenied, "Signature required"));
            }
            let operation = cx.s3_op().name();
            let denied = format!("deny:{operation}");
            let faults = self.0.0.lock().expect("not poisoned");
            if faults.contains(&denied) {
                return Err(s3s::s3_error!(AccessDenied, "denied by a test"));
            }
            let refused = faults.iter().any(|op| op == operation);
            if refused {
                return Err(s3s::s3_error!(InternalError, "refused by a test"));
            }
            Ok(())
        }
    }
}

fn random_token(len: usize) -> String {
    use rand::{Rng, distr::Alphanumeric};
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

impl EmbeddedS3 {
    /// Serves the folder `root` (created if missing) on `127.0.0.1` at a free port, with fresh random
    /// credentials that only this process knows.
    pub async fn start(root: &Path) -> anyhow::Result<Self> {
        Self::start_on(root, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Serves the folder `root` as [`EmbeddedS3::start`] does, with credentials kept (0600) beside it in
    /// `<root>.credentials` and read again at the next start: what the store holds under the old key
    /// (a multipart upload a killed backup left, say) stays the server's to finish or abort.
    pub async fn start_persistent(root: &Path) -> anyhow::Result<Self> {
        let path = credentials_path(root);
        let credentials = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let (id, secret) = text
                    .trim()
                    .split_once(':')
                    .with_context(|| format!("{} does not hold `id:secret`", path.display()))?;
                S3Credentials {
                    access_key_id: id.to_owned(),
                    secret_access_key: SecretString::from(secret.to_owned()),
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let credentials = S3Credentials {
                    access_key_id: format!("PAWFILE{}", random_token(13).to_uppercase()),
                    secret_access_key: SecretString::from(random_token(40)),
                };
                let text = format!(
                    "{}:{}\n",
                    credentials.access_key_id,
                    secrecy::ExposeSecret::expose_secret(&credentials.secret_access_key)
                );
                crate::files::write_private(&path, text.as_bytes())
                    .with_context(|| format!("cannot write {}", path.display()))?;
                credentials
            }
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
        };
        Self::start_with(root, SocketAddr::from(([127, 0, 0, 1], 0)), credentials).await
    }

    /// Serves `root` at `addr` (port 0 picks a free port).
    pub async fn start_on(root: &Path, addr: SocketAddr) -> anyhow::Result<Self> {
        let credentials = S3Credentials {
            access_key_id: format!("PAWFILE{}", random_token(13).to_uppercase()),
            secret_access_key: SecretString::from(random_token(40)),
        };
        Self::start_with(root, addr, credentials).await
    }

    /// Serves `root` at `addr`, accepting only `credentials` (to restart an endpoint its clients know).
    pub async fn start_with(
        root: &Path,
        addr: SocketAddr,
        credentials: S3Credentials,
    ) -> anyhow::Result<Self> {
        crate::files::create_private_dir(root)
            .with_context(|| format!("cannot create the embedded S3 folder {}", root.display()))?;
        let filesystem = s3s_fs::FileSystem::new(root).map_err(|err| {
            anyhow::anyhow!("cannot open the embedded S3 folder {}: {err:?}", root.display())
        })?;
        #[cfg(feature = "testing")]
        let faults = std::sync::Arc::new(faults::Faults::default());
        let service = {
            let mut builder = S3ServiceBuilder::new(filesystem);
            builder.set_auth(SimpleAuth::from_single(
                credentials.access_key_id.clone(),
                secrecy::ExposeSecret::expose_secret(&credentials.secret_access_key),
            ));
            #[cfg(feature = "testing")]
            builder.set_access(faults::Refuser(faults.clone()));
            builder.build()
        };
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} for the embedded S3 endpoint"))?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            // Connections live in this set, so aborting the server task cuts them all.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((socket, _)) => {
                            let service = service.clone();
                            connections.spawn(async move {
                                let builder = ConnBuilder::new(TokioExecutor::new());
                                let _ = builder.serve_connection(TokioIo::new(socket), service).await;
                            });
                        }
                        Err(err) => tracing::warn!(error = %err, "embedded S3 endpoint failed to accept a connection"),
                    },
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(Self {
            addr,
            root: root.to_owned(),
            credentials,
            server,
            #[cfg(feature = "testing")]
            faults,
        })
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> Url {
        Url::parse(&format!("http://{}/", self.addr)).expect("a socket address makes a URL")
    }

    /// The folder the objects live in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Settings for `bucket` on this endpoint.
    pub fn settings(&self, bucket: &str) -> S3Settings {
        S3Settings {
            endpoint: Some(self.endpoint()),
            region: "us-east-1".to_owned(),
            bucket: bucket.to_owned(),
            credentials: Some(self.credentials.clone()),
            force_path_style: Some(true),
            env_prefix: "PAWFILE_S3_",
            timeout: DEFAULT_S3_TIMEOUT,
        }
    }

    /// Stops serving and cuts open connections.
    pub fn stop(self) {}

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Makes the server refuse `operation` (an S3 operation name such as `CompleteMultipartUpload`)
    /// from now on, as an overloaded or misconfigured server would.
    #[cfg(feature = "testing")]
    pub fn refuse(&self, operation: &str) {
        self.faults
            .0
            .lock()
            .expect("not poisoned")
            .push(operation.to_owned());
    }

    /// Makes the server deny `operation` with `AccessDenied` from now on, as S3 does for a key without
    /// that right (or an object under Object Lock retention).
    #[cfg(feature = "testing")]
    pub fn deny(&self, operation: &str) {
        self.faults
            .0
            .lock()
            .expect("not poisoned")
            .push(format!("deny:{operation}"));
    }

    /// Takes back every `refuse` and `deny`: the server answers normally again.
    #[cfg(feature = "testing")]
    pub fn allow_all(&self) {
        self.faults.0.lock().expect("not poisoned").clear();
    }
}

/// Where [`EmbeddedS3::start_persistent`] keeps the credentials of the store in `root`.
fn credentials_path(root: &Path) -> PathBuf {
    let mut name = root
        .file_name()
        .map(std::ffi::OsStr::to_os_string)
        .unwrap_or_else(|| "s3".into());
    name.push(".credentials");
    root.with_file_name(name)
}

impl Drop for EmbeddedS3 {
    fn drop(&mut self) {
        self.server.abort();
    }
}
