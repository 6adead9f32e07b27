//! The hostile-client suite: what one machine can throw at a running Pawfile, without an account or with
//! a fresh one, against the real binary (`pawfile serve`, a process of its own, so its memory and its
//! sockets are its own): floods of silent connections and HTTP/2 prefaces, a Slowloris, an upload part
//! whose header never ends, passwords built to make the strength check crawl, and guessed second-factor
//! codes. Each attack has a bounded count and duration; `/healthz` must keep answering throughout.

use crate::startup::{database_url, unused_port};
use crate::support::{PASSWORD, metric_value};
use pawfile::{
    auth::{NewUser, PasswordHasher, create_user},
    domain::{DisplayName, Email, NewPassword, Role, Roles},
};
use sqlx::PgPool;
use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
    time::Instant,
};

/// The header-read timeout the served binary runs with.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// Its keep-alive timeout.
const KEEP_ALIVE: Duration = Duration::from_secs(1);
/// The password the probe found costliest to score: every substitutable character, up to the limit.
const L33T_BOMB: &str = "4@8({[</369&#!1/|0$5+7%2/";

/// Client and server sockets of a flood exceed the default limit of 1,024 open files: raised for this
/// process and the servers it starts (they inherit it).
fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let wanted = 16_384.min(hard);
    setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).unwrap();
}

/// `pawfile serve` as a process of its own on `pool`'s database, with the embedded stores in a folder
/// of its own, metrics on a port of its own, and `env` on top of the suite's settings.
pub(crate) struct Served {
    child: std::process::Child,
    pub(crate) addr: SocketAddr,
    metrics: String,
    pub(crate) data: tempfile::TempDir,
}

impl Served {
    pub(crate) async fn start(pool: &PgPool, env: &[(&str, &str)]) -> Served {
        raise_open_file_limit();
        let data = tempfile::tempdir().unwrap();
        let (port, metrics_port) = (unused_port(), unused_port());
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pawfile"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("DATABASE_URL", database_url(pool).await)
            .env("PAWFILE_LISTEN", format!("127.0.0.1:{port}"))
            .env("PAWFILE_METRICS_LISTEN", format!("127.0.0.1:{metrics_port}"))
            .env("PAWFILE_DATA_DIR", data.path())
            .env("PAWFILE_BACKUP_SCHEDULE", "off")
            .env(
                "PAWFILE_HEADER_READ_TIMEOUT",
                format!("{}s", HEADER_TIMEOUT.as_secs()),
            )
            .env("PAWFILE_KEEP_ALIVE_TIMEOUT", format!("{}s", KEEP_ALIVE.as_secs()))
            .env("RUST_LOG", "warn")
            .args(["serve"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().unwrap();
        let served = Served {
            child,
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            metrics: format!("http://127.0.0.1:{metrics_port}/metrics"),
            data,
        };
        let started = Instant::now();
        while healthz(served.addr).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "pawfile serve did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        served
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn metric(&self, series: &str) -> f64 {
        metric_value(&self.metrics, series).await
    }

    /// The server's resident memory now and its peak so far, in bytes (`/proc`).
    fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
                .unwrap()
                * 1024
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /healthz` on a fresh connection from 127.0.0.1: how long the answer took.
async fn healthz(addr: SocketAddr) -> Result<Duration, String> {
    let started = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        let mut stream = TcpStream::connect(addr).await.map_err(|err| err.to_string())?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|err| err.to_string())?;
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .await
            .map_err(|err| err.to_string())?;
        Ok::<_, String>(answer)
    })
    .await
    .map_err(|_| "no answer within 5 s".to_owned())??;
    if !answer.starts_with(b"HTTP/1.1 200") {
        return Err(String::from_utf8_lossy(&answer).into_owned());
    }
    Ok(started.elapsed())
}

/// Asks `/healthz` every 200 ms for `during`; returns the slowest answer (failing on none).
async fn watch_health(addr: SocketAddr, during: Duration) -> Duration {
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    while started.elapsed() < during {
        let took = healthz(addr).await.expect("/healthz answers during the attack");
        slowest = slowest.max(took);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    slowest
}

/// A connection to `addr` from the loopback address `from` (127.0.0.2, …: another client, as far as
/// the server can tell).
async fn connect_from(from: IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(addr).await
}

/// How long until the server closes `stream` (reads until EOF or a reset), at most `within`.
async fn closed_after(mut stream: TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

/// Opens `count` connections from `from` that send `first` (maybe nothing) and then nothing, watching
/// `/healthz` meanwhile; checks every answer came within a second, every silent connection was closed
/// within the header timeout, and the open-connection gauge came back to where it was.
async fn flood(served: &Served, from: IpAddr, count: usize, first: &[u8]) {
    let gauge = "pawfile_http_open_connections{listener=\"public\"}";
    let before = served.metric(gauge).await;
    let refused_before = served
        .metric("pawfile_http_connections_refused_total{listener=\"public\",reason=\"address_cap\"}")
        .await;
    let mut closes = Vec::new();
    for _ in 0..count {
        let mut stream = connect_from(from, served.addr).await.unwrap();
        if !first.is_empty() {
            // A connection the server already closed may refuse the write: it is closed, as wanted.
            let _ = stream.write_all(first).await;
        }
        closes.push(tokio::spawn(closed_after(
            stream,
            HEADER_TIMEOUT + Duration::from_secs(3),
        )));
    }
    let slowest = watch_health(served.addr, HEADER_TIMEOUT + Duration::from_secs(2)).await;
    assert!(
        slowest < Duration::from_secs(1),
        "/healthz took {slowest:?} during the flood"
    );
    for close in closes {
        let closed = close.await.unwrap();
        assert!(
            closed.is_some_and(|after| after <= HEADER_TIMEOUT + Duration::from_millis(1500)),
            "a silent connection was still open after {:?}",
            HEADER_TIMEOUT + Duration::from_secs(3)
        );
    }
    let started = Instant::now();
    loop {
        let now = served.metric(gauge).await;
        if now == before {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "open connections stayed at {now} (before the flood: {before})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = served
        .metric("pawfile_http_connections_refused_total{listener=\"public\",reason=\"address_cap\"}")
        .await;
    assert!(
        refused - refused_before >= (count - 256) as f64,
        "connections over the per-address cap are closed at once and counted: {refused_before} -> {refused}"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn silent_connections_from_one_address_cannot_silence_the_server(pool: PgPool) {
    let served = Served::start(&pool, &[]).await;
    flood(&served, "127.0.0.2".parse().unwrap(), 1100, b"").await;
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn http2_prefaces_that_go_no_further_are_closed_like_silent_connections(pool: PgPool) {
    let served = Served::start(&pool, &[]).await;
    flood(
        &served,
        "127.0.0.2".parse().unwrap(),
        1100,
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    )
    .await;
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_slowloris_is_closed_at_the_header_timeout_and_an_idle_kept_alive_connection_at_its_own(
    pool: PgPool,
) {
    let served = Served::start(&pool, &[]).await;
    // Fifty connections each sending a byte of a request line every 300 ms: none finishes its headers.
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut stream = connect_from("127.0.0.2".parse().unwrap(), served.addr)
            .await
            .unwrap();
        slow.push(tokio::spawn(async move {
            let started = Instant::now();
            for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ".iter().cycle() {
                if stream.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                if started.elapsed() > HEADER_TIMEOUT + Duration::from_secs(5) {
                    return None;
                }
            }
            Some(started.elapsed())
        }));
    }
    let slowest = watch_health(served.addr, HEADER_TIMEOUT + Duration::from_secs(1)).await;
    assert!(slowest < Duration::from_secs(1), "/healthz took {slowest:?}");
    for connection in slow {
        let cut = connection.await.unwrap();
        assert!(
            cut.is_some_and(|after| after <= HEADER_TIMEOUT + Duration::from_secs(2)),
            "a Slowloris connection outlived the header timeout: {cut:?}"
        );
    }

    // A kept-alive connection that asks nothing more is closed after the keep-alive timeout.
    let mut stream = TcpStream::connect(served.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 256];
    let read = stream.read(&mut answer).await.unwrap();
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"));
    let idle = closed_after(stream, Duration::from_secs(5)).await;
    assert!(
        idle.is_some_and(|after| after >= KEEP_ALIVE - Duration::from_millis(200)
            && after <= KEEP_ALIVE + Duration::from_secs(1)),
        "closed after {idle:?}, the keep-alive timeout is {KEEP_ALIVE:?}"
    );
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_per_address_cap_spares_trusted_proxies_and_the_metrics_port_is_bounded_too(pool: PgPool) {
    let served = Served::start(
        &pool,
        &[
            ("PAWFILE_MAX_CONNECTIONS_PER_ADDRESS", "5"),
            ("PAWFILE_TRUSTED_PROXIES", "127.0.0.3"),
        ],
    )
    .await;
    let hold = |from: &'static str, addr: SocketAddr| async move {
        let mut held = Vec::new();
        for _ in 0..10 {
            let stream = connect_from(from.parse().unwrap(), addr).await.unwrap();
            held.push(tokio::spawn(closed_after(stream, Duration::from_secs(6))));
        }
        let mut at_once = 0;
        for close in held {
            let closed = close
                .await
                .unwrap()
                .expect("closed within the header timeout at the latest");
            if closed < Duration::from_millis(500) {
                at_once += 1;
            } else {
                assert!(
                    closed <= HEADER_TIMEOUT + Duration::from_millis(1500),
                    "{closed:?}"
                );
            }
        }
        at_once
    };
    let (client, proxy) = tokio::join!(hold("127.0.0.2", served.addr), hold("127.0.0.3", served.addr));
    assert_eq!(client, 5, "five over the cap were closed at once");
    assert_eq!(proxy, 0, "a trusted proxy is not capped");

    let metrics_addr: SocketAddr = served
        .metrics
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .parse()
        .unwrap();
    let on_metrics = hold("127.0.0.2", metrics_addr).await;
    assert_eq!(on_metrics, 5, "the metrics port caps an address too");
    assert!(
        served
            .metric("pawfile_http_connections_timed_out_total{listener=\"metrics\"}")
            .await
            >= 5.0,
        "and closes silent connections at the header timeout"
    );
}

/// An account with `role` (password [`PASSWORD`]) made directly in the database.
async fn account(pool: &PgPool, email: &str, role: Role) -> pawfile::domain::UserId {
    create_user(
        pool,
        &PasswordHasher::new(1),
        NewUser {
            email: Email::parse(email).unwrap(),
            display_name: DisplayName::parse("Olivia Owner").unwrap(),
            password: NewPassword::parse(PASSWORD).unwrap(),
            roles: Roles::new([role]),
            clinic_id: None,
        },
    )
    .await
    .unwrap()
}

/// An owner (with a pet) on `pool`, signed in to `served`: the session cookie and the pet's id.
pub(crate) async fn owner_with_pet(pool: &PgPool, served: &Served, email: &str) -> (String, String) {
    account(pool, email, Role::Owner).await;
    let (client, jar) = crate::support::client_with_jar();
    let signed_in = client
        .post(served.url("/api/login"))
        .form(&[("email", email), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), reqwest::StatusCode::OK);
    let pet: serde_json::Value = client
        .post(served.url("/api/pets/create"))
        .form(&[("name", "Biscuit"), ("species", "dog")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cookie = reqwest::cookie::CookieStore::cookies(&*jar, &served.url("/").parse().unwrap())
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    (cookie, pet.as_str().unwrap().to_owned())
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_part_header_that_never_ends_is_refused_at_8_kib_and_the_server_stays_small(pool: PgPool) {
    let served = Served::start(&pool, &[]).await;
    let (cookie, pet) = owner_with_pet(&pool, &served, "olivia@example.org").await;
    // The probes: one part whose header line runs for 256 MiB before the blank line, and one whose
    // header block is empty (the parser then reads everything after it as headers), each sent chunked.
    let long_header: &[u8] = b"--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"";
    let empty_headers: &[u8] = b"--XYZ  \r\n\r\n";
    for start in [long_header, empty_headers] {
        // The peak so far is set back to what the server holds now.
        std::fs::write(format!("/proc/{}/clear_refs", served.child.id()), "5").unwrap();
        let (resident, _) = served.memory();

        let mut stream = TcpStream::connect(served.addr).await.unwrap();
        let head = format!(
            "POST /api/pets/{pet}/documents HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nX-Pawfile-Client: 1\r\n\
             Content-Type: multipart/form-data; boundary=XYZ\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let (mut reader, mut writer) = stream.into_split();
        let sender = tokio::spawn(async move {
            let chunk = |data: &[u8]| [format!("{:x}\r\n", data.len()).as_bytes(), data, b"\r\n"].concat();
            writer.write_all(&chunk(start)).await?;
            let filler = chunk(&vec![b'a'; 1 << 20]);
            for _ in 0..256 {
                writer.write_all(&filler).await?;
            }
            Ok::<_, std::io::Error>(())
        });
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(60), reader.read_to_end(&mut answer)).await;
        sender.abort();
        let answer = String::from_utf8_lossy(&answer);
        let probe = String::from_utf8_lossy(start);

        assert!(answer.starts_with("HTTP/1.1 413"), "{probe:?}: {answer}");
        assert!(
            answer.contains("8.0 KiB of headers"),
            "{probe:?}: the limit is named: {answer}"
        );
        let (_, peak) = served.memory();
        assert!(
            peak.saturating_sub(resident) < 32 << 20,
            "{probe:?}: memory grew by {} MiB",
            peak.saturating_sub(resident) >> 20
        );
        let stored: i64 = sqlx::query_scalar("select count(*) from documents")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(stored, 0, "{probe:?}: nothing stored");
    }

    // More file parts than an upload may carry: refused, the limit named, nothing stored.
    let mut form = reqwest::multipart::Form::new();
    for n in 0..21 {
        form = form.part(
            "file",
            reqwest::multipart::Part::bytes(b"%PDF-1.7\nsmall".to_vec()).file_name(format!("{n}.pdf")),
        );
    }
    let response = reqwest::Client::new()
        .post(served.url(&format!("/api/pets/{pet}/documents")))
        .header("cookie", &cookie)
        .header("x-pawfile-client", "1")
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(matches!(status.as_u16(), 400 | 413), "{status} {body}");
    assert!(body.contains("at most 20 files"), "{body}");
    let stored: i64 = sqlx::query_scalar("select count(*) from documents")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing stored");
}

/// The l33t password at its longest: 128 characters.
fn l33t_bomb() -> String {
    L33T_BOMB.repeat(6)[..NewPassword::MAX_LEN].to_owned()
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_costliest_password_is_judged_quickly_on_every_path_and_eight_leave_the_server_answering(
    pool: PgPool,
) {
    let served = Served::start(&pool, &[]).await;
    let bomb = l33t_bomb();
    let client = || crate::support::client_with_jar().0;
    let timed = |request: reqwest::RequestBuilder| async move {
        let started = Instant::now();
        let response = request.send().await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        (started.elapsed(), status, body)
    };

    // Sign-up.
    let (took, status, body) = timed(client().post(served.url("/api/register")).form(&[
        ("email", "bomb@example.org"),
        ("display_name", "Bo Mb"),
        ("password", bomb.as_str()),
    ]))
    .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{body}");
    assert!(took < Duration::from_secs(1), "sign-up took {took:?}");

    // Confirmation (the password is asked again).
    let mail_folder = served.data.path().join("mail");
    let mail = crate::support::wait_for_mail(&mail_folder, "bomb@example.org", 1).await;
    let token = mail[0].token("/verify-email").unwrap();
    let (took, status, body) = timed(
        client()
            .post(served.url("/api/verify-email"))
            .form(&[("token", token.as_str()), ("password", bomb.as_str())]),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert!(took < Duration::from_secs(1), "confirmation took {took:?}");

    // Change (signed in).
    let (owner, _) = crate::support::client_with_jar();
    owner
        .post(served.url("/api/login"))
        .form(&[("email", "bomb@example.org"), ("password", bomb.as_str())])
        .send()
        .await
        .unwrap();
    let changed = format!("{}x", &bomb[..NewPassword::MAX_LEN - 1]);
    let (took, status, body) = timed(owner.post(served.url("/api/account/password")).form(&[
        ("current_password", bomb.as_str()),
        ("new_password", changed.as_str()),
    ]))
    .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert!(took < Duration::from_secs(1), "the change took {took:?}");

    // Reset.
    client()
        .post(served.url("/api/password/forgot"))
        .form(&[("email", "bomb@example.org")])
        .send()
        .await
        .unwrap();
    let mail = crate::support::wait_for_mail(&mail_folder, "bomb@example.org", 2).await;
    let token = mail
        .iter()
        .find_map(|mail| mail.token("/reset-password"))
        .unwrap();
    let (took, status, body) = timed(
        client()
            .post(served.url("/api/password/reset"))
            .form(&[("token", token.as_str()), ("new_password", bomb.as_str())]),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert!(took < Duration::from_secs(1), "the reset took {took:?}");

    // Invitation.
    let clinic = pawfile::domain::ClinicId::new();
    sqlx::query("insert into clinics (id, name) values ($1, 'Riverside')")
        .bind(clinic.0)
        .execute(&pool)
        .await
        .unwrap();
    let admin = account(&pool, "admin@example.org", Role::Admin).await;
    let admin = pawfile::access::Actor::new(
        pawfile::auth::load_session_user(&pool, admin, 0)
            .await
            .unwrap()
            .unwrap(),
        None,
    );
    pawfile::auth::invite_staff(
        &pool,
        &admin,
        pawfile::auth::StaffInvitation {
            email: Email::parse("vet@example.org").unwrap(),
            display_name: DisplayName::parse("Vera Vet").unwrap(),
            clinic_id: clinic,
            also_admin: false,
        },
    )
    .await
    .unwrap();
    let mail = crate::support::wait_for_mail(&mail_folder, "vet@example.org", 1).await;
    let token = mail[0].token("/accept-invitation").unwrap();
    let (took, status, body) = timed(
        client()
            .post(served.url("/api/invitation/accept"))
            .form(&[("token", token.as_str()), ("password", bomb.as_str())]),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert!(took < Duration::from_secs(1), "the invitation took {took:?}");

    // Eight sign-ups with it at once: the server keeps answering (a liveness bound).
    let signups = (0..8).map(|n| {
        let request = client().post(served.url("/api/register")).form(&[
            ("email", format!("bomb{n}@example.org")),
            ("display_name", "Bo Mb".to_owned()),
            ("password", bomb.clone()),
        ]);
        tokio::spawn(async move { request.send().await.unwrap().status() })
    });
    let signups: Vec<_> = signups.collect();
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    while signups.iter().any(|signup| !signup.is_finished()) {
        slowest = slowest.max(healthz(served.addr).await.unwrap());
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the sign-ups did not end"
        );
    }
    for signup in signups {
        assert_eq!(signup.await.unwrap(), reqwest::StatusCode::ACCEPTED);
    }
    assert!(slowest < Duration::from_millis(500), "/healthz took {slowest:?}");
}

/// The body timeout the in-flight tests run with.
const BODY_TIMEOUT: Duration = Duration::from_secs(3);

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_body_that_trickles_in_without_an_account_is_answered_408_at_the_body_timeout(pool: PgPool) {
    let timeout = format!("{}s", BODY_TIMEOUT.as_secs());
    let served = Served::start(&pool, &[("PAWFILE_BODY_IDLE_TIMEOUT", &timeout)]).await;
    // A byte a second never trips an idle timeout; the body's deadline ends it all the same. To a
    // server function and to a path that does not exist alike.
    for path in ["/api/pets/create", "/no/such/path"] {
        let mut stream = TcpStream::connect(served.addr).await.unwrap();
        stream
            .write_all(
                format!(
                    "POST {path} HTTP/1.1\r\nHost: x\r\nX-Pawfile-Client: 1\r\n\
                     Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 2000000\r\n\r\nn"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        let started = Instant::now();
        let (mut reader, mut writer) = stream.into_split();
        let trickle = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if writer.write_all(b"a").await.is_err() {
                    break;
                }
            }
        });
        let mut answer = [0u8; 256];
        let read = tokio::time::timeout(BODY_TIMEOUT * 3, reader.read(&mut answer))
            .await
            .expect("answered")
            .unwrap();
        trickle.abort();
        let answer = String::from_utf8_lossy(&answer[..read]);
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(
            started.elapsed() >= BODY_TIMEOUT - Duration::from_millis(200)
                && started.elapsed() <= BODY_TIMEOUT + Duration::from_secs(2),
            "{path}: answered after {:?}",
            started.elapsed()
        );
    }
    healthz(served.addr).await.unwrap();
}

/// Sends `GET path` on a socket that takes 32 KiB at a time.
async fn download_request(served: &Served, path: &str, cookie: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(32 * 1024).unwrap();
    let mut stream = socket.connect(served.addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    stream
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn a_slow_reader_gets_its_whole_download_and_a_reader_that_stops_is_closed_at_the_body_timeout(
    pool: PgPool,
) {
    let timeout = format!("{}s", BODY_TIMEOUT.as_secs());
    let served = Served::start(&pool, &[("PAWFILE_BODY_IDLE_TIMEOUT", &timeout)]).await;
    let (cookie, pet) = owner_with_pet(&pool, &served, "olivia@example.org").await;
    let mut content = b"%PDF-1.7\n".to_vec();
    content.resize(16 << 20, b' ');
    let uploaded: serde_json::Value = reqwest::Client::new()
        .post(served.url(&format!("/api/pets/{pet}/documents")))
        .header("cookie", &cookie)
        .header("x-pawfile-client", "1")
        .multipart(reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(content.clone()).file_name("big.pdf"),
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path = format!("/api/documents/{}/content", uploaded[0]["id"].as_str().unwrap());

    // A reader at about 2 MB/s: the last of the file is still queued (in the kernel and in the server's
    // own buffer) long after the response was handed over, well past the keep-alive timeout (1 s).
    let mut stream = download_request(&served, &path, &cookie).await;
    let mut received = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let head_end = loop {
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "closed before the headers");
        received.extend_from_slice(&chunk[..read]);
        if let Some(at) = received.windows(4).position(|window| window == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut body = received.len() - head_end;
    'reading: while body < content.len() {
        let mut this_turn = 0;
        while this_turn < 512 * 1024 {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break 'reading,
                Ok(read) => {
                    this_turn += read;
                    body += read;
                }
            }
            if body >= content.len() {
                break 'reading;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(body, content.len(), "the whole file arrived");
    // (Closed by the client, so its keep-alive timeout is not counted below.)
    drop(stream);
    tokio::time::sleep(Duration::from_millis(200)).await;

    // A reader that stops: closed once nothing could be written for the body timeout.
    let timed_out = "pawfile_http_connections_timed_out_total{listener=\"public\"}";
    let before = served.metric(timed_out).await;
    let stalled = download_request(&served, &path, &cookie).await;
    let started = Instant::now();
    while served.metric(timed_out).await <= before {
        assert!(
            started.elapsed() < BODY_TIMEOUT * 3,
            "a reader that reads nothing is still connected after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(started.elapsed() >= BODY_TIMEOUT - Duration::from_millis(500));
    let mut rest = Vec::new();
    let mut stalled = stalled;
    let _ = tokio::time::timeout(Duration::from_secs(10), stalled.read_to_end(&mut rest)).await;
    assert!(
        rest.len() < content.len(),
        "the stalled download did not complete"
    );
    healthz(served.addr).await.unwrap();
}
