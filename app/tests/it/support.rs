//! `spawn_app` and the helpers tests use to talk to it.

use pawfile::{
    auth::{NewUser, PasswordHasher, create_user},
    config::{ConnectionSettings, DocumentSettings, LimitSettings, RecordSettings, SessionSettings},
    domain::{ClinicId, DisplayName, Email, NewPassword, Role, Roles, SessionUser, UserId},
    mail::{Mailer, RetryPolicy, Transport},
    net::TrustedProxies,
    storage::ObjectStore,
    testing::{ReceivedMail, SmtpSink, TestBucket},
};
use pawfile_app::startup::{AppState, Application, RuntimeConfig};
use reqwest::{Response, StatusCode, cookie::CookieStore};
use sqlx::PgPool;
use std::{
    net::SocketAddr,
    sync::{Arc, LazyLock},
    time::Duration,
};
use tokio_util::sync::CancellationToken;

/// One hasher for all tests: its dummy hash costs a hash to make.
static HASHER: LazyLock<PasswordHasher> = LazyLock::new(|| PasswordHasher::new(4));

pub const PASSWORD: &str = "correct horse battery";

/// The settings a test app runs with; tests change what they need.
pub fn test_config() -> RuntimeConfig {
    RuntimeConfig {
        public_url: "http://127.0.0.1/".parse().unwrap(),
        trusted_proxies: TrustedProxies::default(),
        connections: ConnectionSettings::default(),
        sessions: SessionSettings {
            idle_timeout: Duration::from_secs(2 * 60 * 60),
            // Tests of two-factor sign-in require it themselves.
            require_two_factor: Vec::new(),
            ..SessionSettings::default()
        },
        limits: LimitSettings::default(),
        documents: DocumentSettings {
            max_upload_size: bytesize::ByteSize::mib(64),
            ..DocumentSettings::default()
        },
        records: RecordSettings::default(),
        mail_file_retention: Duration::from_secs(30 * 24 * 60 * 60),
        backups_on_this_machine: true,
        backup_schedule: pawfile::config::BackupSchedule::Off,
        backup_key_beside_data: false,
        backup_separation: Vec::new(),
        backup_drill: None,
        admin_alerts: false,
        intervals: pawfile_app::startup::TaskIntervals::default(),
    }
}

/// The backup key tests encrypt to (its private half is not needed to back up).
pub static BACKUP_KEY: LazyLock<(String, String)> = LazyLock::new(pawfile::backup::crypto::generate_key_pair);

/// Backups of a test app, encrypted to [`BACKUP_KEY`].
pub fn test_backups(pool: &PgPool, documents: &TestBucket, backups: &TestBucket) -> pawfile::backup::Backups {
    paced_backups(pool, &documents.store, &backups.store, None)
}

/// As [`test_backups`], over these stores, waiting `pace` after each object (to watch a run's progress).
pub fn paced_backups(
    pool: &PgPool,
    documents: &ObjectStore,
    backups: &ObjectStore,
    pace: Option<Duration>,
) -> pawfile::backup::Backups {
    pawfile::backup::Backups::new(
        pool.clone(),
        documents.clone(),
        backups.clone(),
        pawfile::backup::Policy {
            recipients: pawfile::backup::Recipients::parse(&BACKUP_KEY.1).unwrap(),
            allow_unencrypted: false,
            retention: pawfile::backup::Retention::default(),
            prune: true,
            pace,
            keys: pawfile::testing::backup_keys(),
        },
        CancellationToken::new(),
    )
}

/// A running Pawfile and a cookie-keeping client pointed at it.
pub struct TestApp {
    pub address: String,
    /// Where its Prometheus metrics are served.
    pub metrics_address: String,
    pub client: reqwest::Client,
    pub jar: Arc<reqwest::cookie::Jar>,
    pub pool: PgPool,
    pub documents: TestBucket,
    pub backups: TestBucket,
    config: RuntimeConfig,
    hasher: PasswordHasher,
    mailer: Arc<Mailer>,
    /// The SMTP server the app sends its mail to (unless the test gave it another transport).
    pub inbox: Option<Arc<SmtpSink>>,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

pub fn client_with_jar() -> (reqwest::Client, Arc<reqwest::cookie::Jar>) {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    // Scripts say who they are (the CSRF rule); a browser's own pages send `Sec-Fetch-Site` instead.
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-pawfile-client", reqwest::header::HeaderValue::from_static("1"));
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    (client, jar)
}

/// How a replica differs from the first server: another endpoint for the same documents bucket, a
/// paced backup.
#[derive(Default)]
pub struct ReplicaOptions {
    pub documents: Option<ObjectStore>,
    pub backup_pace: Option<Duration>,
}

async fn start(
    pool: PgPool,
    documents: &TestBucket,
    backups: &TestBucket,
    config: RuntimeConfig,
    hasher: PasswordHasher,
    mailer: Arc<Mailer>,
    options: ReplicaOptions,
) -> (
    SocketAddr,
    SocketAddr,
    CancellationToken,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let metrics = Arc::new(pawfile::metrics::Metrics::new());
    let documents = options
        .documents
        .unwrap_or_else(|| documents.store.clone())
        .observed(metrics.s3_interceptor());
    let backups = backups.store.observed(metrics.s3_interceptor());
    let state = AppState {
        db: pool.clone(),
        hasher,
        backup: paced_backups(&pool, &documents, &backups, options.backup_pace),
        documents,
        backups,
        config: Arc::new(config),
        tasks: Arc::default(),
        mailer,
        metrics,
    };
    let app = Application::with_state(state, "127.0.0.1:0".parse().unwrap(), Vec::new())
        .await
        .unwrap()
        .serve_metrics_on("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = app.local_addr();
    let metrics_addr = app.metrics_addr().unwrap();
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run_until_stopped());
    (addr, metrics_addr, shutdown, server)
}

/// Starts Pawfile on `pool` with fresh buckets on the embedded endpoint.
pub async fn spawn_app(pool: PgPool) -> TestApp {
    spawn_app_with(pool, test_config()).await
}

/// Starts Pawfile on `pool` with `config`.
pub async fn spawn_app_with(pool: PgPool, config: RuntimeConfig) -> TestApp {
    let documents = TestBucket::embedded().await;
    let backups = TestBucket::embedded().await;
    spawn_app_on(pool, documents, backups, config).await
}

/// Starts Pawfile on `pool` and the given buckets (a restored installation, for example).
pub async fn spawn_app_on(
    pool: PgPool,
    documents: TestBucket,
    backups: TestBucket,
    config: RuntimeConfig,
) -> TestApp {
    spawn_app_with_hasher(pool, documents, backups, config, HASHER.clone()).await
}

/// Starts Pawfile with its own password hasher (to watch how many hashes it runs).
pub async fn spawn_app_with_hasher(
    pool: PgPool,
    documents: TestBucket,
    backups: TestBucket,
    config: RuntimeConfig,
    hasher: PasswordHasher,
) -> TestApp {
    // Mail goes to a real SMTP server on loopback, one per app, and tests read what arrived there.
    let sink = SmtpSink::start().await;
    let transport = Transport::smtp(&sink.server()).unwrap();
    spawn_app_full(
        pool,
        documents,
        backups,
        config,
        hasher,
        transport,
        Some(Arc::new(sink)),
    )
    .await
}

/// Starts Pawfile on `pool` sending its mail through `transport` (an SMTP server, say).
pub async fn spawn_app_with_mail(pool: PgPool, config: RuntimeConfig, transport: Transport) -> TestApp {
    let documents = TestBucket::embedded().await;
    let backups = TestBucket::embedded().await;
    spawn_app_full(pool, documents, backups, config, HASHER.clone(), transport, None).await
}

/// How test apps retry mail: after a second, then two, four…, three tries.
pub const TEST_MAIL_RETRY: RetryPolicy = RetryPolicy {
    first_wait: Duration::from_secs(1),
    max_attempts: 3,
};

async fn spawn_app_full(
    pool: PgPool,
    documents: TestBucket,
    backups: TestBucket,
    config: RuntimeConfig,
    hasher: PasswordHasher,
    transport: Transport,
    inbox: Option<Arc<SmtpSink>>,
) -> TestApp {
    let mailer = Arc::new(Mailer {
        transport,
        from: "Pawfile <noreply@pawfile.test>".parse().unwrap(),
        site: config.public_url.clone(),
        retry: TEST_MAIL_RETRY,
    });
    let (addr, metrics_addr, shutdown, server) = start(
        pool.clone(),
        &documents,
        &backups,
        config.clone(),
        hasher.clone(),
        mailer.clone(),
        ReplicaOptions::default(),
    )
    .await;
    let (client, jar) = client_with_jar();
    TestApp {
        address: format!("http://{addr}"),
        metrics_address: format!("http://{metrics_addr}/metrics"),
        client,
        jar,
        pool,
        documents,
        backups,
        config,
        hasher,
        mailer,
        inbox,
        shutdown,
        server,
    }
}

impl TestApp {
    /// Opens a raw connection and sends the head of an upload to `pet` as the session `cookie`: the
    /// request line, headers declaring `content_length` bytes, and the start of a `file` part, so the
    /// test sends (or withholds) the file's bytes itself.
    pub async fn raw_upload(&self, cookie: &str, pet: &str, content_length: u64) -> tokio::net::TcpStream {
        self.raw_upload_part(cookie, pet, content_length, "name=\"file\"; filename=\"big.pdf\"")
            .await
    }

    /// As [`TestApp::raw_upload`], starting with the part `disposition` names (`name="caption"`, say).
    pub async fn raw_upload_part(
        &self,
        cookie: &str,
        pet: &str,
        content_length: u64,
        disposition: &str,
    ) -> tokio::net::TcpStream {
        use tokio::io::AsyncWriteExt;
        let address = self.address.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let head = format!(
            "POST /api/pets/{pet}/documents HTTP/1.1\r\nHost: {address}\r\nCookie: {cookie}\r\n\
             X-Pawfile-Client: 1\r\nContent-Type: multipart/form-data; boundary=XYZ\r\n\
             Content-Length: {content_length}\r\n\r\n\
             --XYZ\r\nContent-Disposition: form-data; {disposition}\r\n\
             Content-Type: application/pdf\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream
    }

    /// Starts a graceful shutdown (as SIGTERM does) and waits until the server has stopped.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        (&mut self.server).await.unwrap().unwrap();
    }

    /// The token that stops the server.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Whether the server task has ended.
    pub fn stopped(&self) -> bool {
        self.server.is_finished()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Stops the server (gracefully) and starts a new one on the same database and buckets, on a new
    /// port. The client and its cookies carry over.
    pub async fn restart(self) -> TestApp {
        self.shutdown.cancel();
        self.server.await.unwrap().unwrap();
        let (addr, metrics_addr, shutdown, server) = start(
            self.pool.clone(),
            &self.documents,
            &self.backups,
            self.config.clone(),
            self.hasher.clone(),
            self.mailer.clone(),
            ReplicaOptions::default(),
        )
        .await;
        let address = format!("http://{addr}");
        // Cookies are per host, not per port: the jar's cookies apply to the new address as well.
        TestApp {
            address,
            metrics_address: format!("http://{metrics_addr}/metrics"),
            shutdown,
            server,
            ..self
        }
    }

    /// Starts another server on this one's database and buckets (a second replica), with `config`.
    pub async fn replica(&self, config: RuntimeConfig) -> Replica {
        self.replica_with(config, ReplicaOptions::default()).await
    }

    /// As [`TestApp::replica`], with `options`.
    pub async fn replica_with(&self, config: RuntimeConfig, options: ReplicaOptions) -> Replica {
        // A pool of its own, as another process would have, on the same database.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(5)
            .connect_with((*self.pool.connect_options()).clone())
            .await
            .unwrap();
        let (addr, metrics_addr, shutdown, server) = start(
            pool,
            &self.documents,
            &self.backups,
            config,
            self.hasher.clone(),
            self.mailer.clone(),
            options,
        )
        .await;
        Replica {
            address: format!("http://{addr}"),
            metrics_address: format!("http://{metrics_addr}/metrics"),
            shutdown,
            server,
        }
    }

    /// The value of the series `name{labels}` (labels as written in the exposition, `""` for none)
    /// in this app's metrics; 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        metric_value(&self.metrics_address, series).await
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.client.post(self.url(path)).form(form).send().await.unwrap()
    }

    pub async fn register(&self, email: &str, display_name: &str, password: &str) -> Response {
        self.post_form(
            "/api/register",
            &[
                ("email", email),
                ("display_name", display_name),
                ("password", password),
            ],
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_form("/api/login", &[("email", email), ("password", password)])
            .await
    }

    pub async fn logout(&self) -> Response {
        self.post_form("/api/logout", &[]).await
    }

    /// The signed-in user according to the server.
    pub async fn me(&self) -> Option<SessionUser> {
        let response = self.client.get(self.url("/api/me")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// The session cookie in the client's jar (`pawfile_session=...`), if any.
    pub fn session_cookie(&self) -> Option<String> {
        let header = self.jar.cookies(&self.address.parse().unwrap())?;
        header
            .to_str()
            .unwrap()
            .split("; ")
            .find(|cookie| cookie.starts_with("pawfile_session="))
            .map(str::to_owned)
    }

    /// `/api/me` for a client that sends exactly `cookie`.
    pub async fn me_with_cookie(&self, cookie: &str) -> Option<SessionUser> {
        let response = reqwest::Client::new()
            .get(self.url("/api/me"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// The mail that arrived for `to` at the app's SMTP server, once `count` did (waits up to 10 s).
    pub async fn mail_to(&self, to: &str, count: usize) -> Vec<ReceivedMail> {
        self.inbox().wait_for(to, count, Duration::from_secs(10)).await
    }

    /// The app's SMTP server.
    pub fn inbox(&self) -> &SmtpSink {
        self.inbox
            .as_ref()
            .expect("this app sends its mail to the test's SMTP server")
    }

    /// Follows the link of the newest sign-up mail for `to` and confirms with `password`: the
    /// `/api/verify-email` answer.
    pub async fn verify_newest(&self, to: &str, password: &str) -> Response {
        for _ in 0..200 {
            let token = self
                .inbox()
                .messages()
                .iter()
                .rev()
                .filter(|mail| mail.to == to)
                .find_map(|mail| mail.token("/verify-email"));
            if let Some(token) = token {
                return self
                    .post_form("/api/verify-email", &[("token", &token), ("password", password)])
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no sign-up link for {to} within 10 s")
    }

    /// Signs up as an owner and follows the mailed link: the `/api/verify-email` answer (signed in).
    pub async fn sign_up(&self, email: &str, display_name: &str, password: &str) -> Response {
        let response = self.register(email, display_name, password).await;
        assert_eq!(
            response.status(),
            StatusCode::ACCEPTED,
            "{}",
            response.text().await.unwrap()
        );
        self.verify_newest(&email.to_lowercase(), password).await
    }

    /// Registers an owner and signs them in on this app's client.
    pub async fn signed_in_owner(&self, email: &str) -> SessionUser {
        let response = self.sign_up(email, "Olivia Owner", PASSWORD).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{}",
            response.text().await.unwrap()
        );
        response.json().await.unwrap()
    }

    /// Creates an account with `roles` directly in the database.
    pub async fn create_user(&self, email: &str, roles: &[Role], clinic: Option<ClinicId>) -> UserId {
        create_user(
            &self.pool,
            &HASHER,
            NewUser {
                email: Email::parse(email).unwrap(),
                display_name: DisplayName::parse("Test User").unwrap(),
                password: NewPassword::parse(PASSWORD).unwrap(),
                roles: Roles::new(roles.iter().copied()),
                clinic_id: clinic,
            },
        )
        .await
        .unwrap()
    }

    /// A separate browser (its own cookies), signed in as `email` (password [`PASSWORD`]).
    pub async fn browser_for(&self, email: &str) -> reqwest::Client {
        let (client, _) = client_with_jar();
        let response = client
            .post(self.url("/api/login"))
            .form(&[("email", email), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{email} signs in");
        client
    }

    /// The `Cookie` header a browser made by [`TestApp::browser_for`] sends: the session cookie of the
    /// most recent sign-in.
    pub async fn jar_cookie_for(&self, _client: &reqwest::Client) -> String {
        let session: String =
            sqlx::query_scalar("select id from tower_sessions.session order by expiry_date desc limit 1")
                .fetch_one(&self.pool)
                .await
                .unwrap();
        format!("pawfile_session={session}")
    }

    /// Creates a clinic directly in the database.
    pub async fn create_clinic(&self, name: &str) -> ClinicId {
        let id = ClinicId::new();
        sqlx::query("insert into clinics (id, name) values ($1, $2)")
            .bind(id.0)
            .bind(name)
            .execute(&self.pool)
            .await
            .unwrap();
        id
    }

    /// How many sessions the store holds.
    pub async fn stored_sessions(&self) -> i64 {
        sqlx::query_scalar("select count(*) from tower_sessions.session")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

/// The value of the `Set-Cookie` header for the session cookie (named `__Host-pawfile_session` over
/// HTTPS).
pub fn session_set_cookie(response: &Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with("pawfile_session=") || value.starts_with("__Host-pawfile_session="))
        .map(str::to_owned)
}

/// A TCP proxy a test puts between Pawfile and a server it depends on, to cut the line (every
/// connection dropped, new ones closed at once), stall it (connections accepted and never answered)
/// and restore it, without touching the shared server.
pub struct TcpProxy {
    pub addr: SocketAddr,
    mode: Arc<std::sync::atomic::AtomicU8>,
    cuts: tokio::sync::watch::Sender<u64>,
    accept: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Starts forwarding a loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> TcpProxy {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(std::sync::atomic::AtomicU8::new(Self::OPEN));
        let (cuts, _) = tokio::sync::watch::channel(0u64);
        let accept = tokio::spawn({
            let mode = mode.clone();
            let cuts = cuts.clone();
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let mut cut = cuts.subscribe();
                    match mode.load(Ordering::SeqCst) {
                        Self::CUT => continue, // dropped: the client sees the connection closed
                        Self::STALLED => {
                            // Held open, never answered, until the line changes again.
                            tokio::spawn(async move {
                                let _ = cut.changed().await;
                                drop(client);
                            });
                            continue;
                        }
                        _ => {}
                    }
                    tokio::spawn(async move {
                        let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = cut.changed() => {}
                        }
                    });
                }
            }
        });
        TcpProxy {
            addr,
            mode,
            cuts,
            accept,
        }
    }

    const OPEN: u8 = 0;
    const CUT: u8 = 1;
    const STALLED: u8 = 2;

    fn switch(&self, mode: u8) {
        self.mode.store(mode, std::sync::atomic::Ordering::SeqCst);
        self.cuts.send_modify(|cuts| *cuts += 1);
    }

    /// Drops every connection and closes new ones until [`TcpProxy::restore`].
    pub fn cut(&self) {
        self.switch(Self::CUT);
    }

    /// Drops every connection and holds new ones open without an answer until [`TcpProxy::restore`].
    pub fn stall(&self) {
        self.switch(Self::STALLED);
    }

    /// Forwards again.
    pub fn restore(&self) {
        self.switch(Self::OPEN);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cuts.send_modify(|cuts| *cuts += 1);
    }
}

/// The mail in `folder` for `to`, once `count` arrived (waits up to 10 s, then fails the test).
pub async fn wait_for_mail(folder: &std::path::Path, to: &str, count: usize) -> Vec<ReceivedMail> {
    for _ in 0..200 {
        let mail: Vec<ReceivedMail> = ReceivedMail::in_folder(folder)
            .into_iter()
            .filter(|mail| mail.to == to)
            .collect();
        if mail.len() >= count {
            return mail;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {count} mails for {to} in {}", folder.display());
}

/// Another server on a test app's database and buckets (see [`TestApp::replica`]).
pub struct Replica {
    pub address: String,
    pub metrics_address: String,
    pub shutdown: CancellationToken,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Replica {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// See [`TestApp::metric`].
    pub async fn metric(&self, series: &str) -> f64 {
        metric_value(&self.metrics_address, series).await
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.server.await.unwrap().unwrap();
    }
}

/// Reads one series' value from the metrics at `url` (0 when absent).
pub async fn metric_value(url: &str, series: &str) -> f64 {
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    parse_metric(&text, series)
}

/// The value of `series` (`name{labels}` exactly as exposed) in an exposition; 0 when absent.
pub fn parse_metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

/// The single number `sql` (a `select count(*) …`) answers.
pub(crate) async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}
