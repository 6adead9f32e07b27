use crate::config::{S3Credentials, S3Settings};
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

    /// Serves `root` at `addr` (port 0 picks a free port).
    pub async fn start_on(root: &Path, addr: SocketAddr) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("cannot create the embedded S3 folder {}", root.display()))?;
        let credentials = S3Credentials {
            access_key_id: format!("PAWFILE{}", random_token(13).to_uppercase()),
            secret_access_key: SecretString::from(random_token(40)),
        };
        let filesystem = s3s_fs::FileSystem::new(root).map_err(|err| {
            anyhow::anyhow!("cannot open the embedded S3 folder {}: {err:?}", root.display())
        })?;
        let service = {
            let mut builder = S3ServiceBuilder::new(filesystem);
            builder.set_auth(SimpleAuth::from_single(
                credentials.access_key_id.clone(),
                secrecy::ExposeSecret::expose_secret(&credentials.secret_access_key),
            ));
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
        }
    }

    /// Stops serving and cuts open connections.
    pub fn stop(self) {}
}

impl Drop for EmbeddedS3 {
    fn drop(&mut self) {
        self.server.abort();
    }
}
