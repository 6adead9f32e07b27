//! The benchmark harness behind `scripts/bench`: everything people wait for, measured through Pawfile
//! and side by side with a baseline that does the same work without Pawfile, in the same run on the
//! same machine. It prints the tables and writes them to `BENCHMARKS.md` with an SVG chart.
//!
//! Every row runs against a fresh Pawfile server (the release binary, a process of its own) on a fresh
//! database and fresh buckets. The S3 endpoints are processes of their own too: the embedded endpoint
//! (the same s3s-fs code `pawfile serve` embeds, started by this harness) and Garage (started by
//! `scripts/bench`, `PAWFILE_TEST_GARAGE_*`). This process is the client. Limits that would stop a
//! benchmark (upload size, hourly allowances, quotas, registrations) are raised for the run and printed.
//!
//! Benchmarks print numbers; nothing here fails for being slow.

// A benchmark's printed table is its result.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use anyhow::{Context as _, Result, bail};
use aws_sdk_s3::{
    Client as S3,
    config::{BehaviorVersion, Credentials, Region},
    primitives::ByteStream,
    types::{CompletedMultipartUpload, CompletedPart},
};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use futures::{Stream, StreamExt, TryStreamExt, stream};
use pawfile::storage::PART_SIZE;
use reqwest::{
    cookie::{CookieStore, Jar},
    header::{HeaderMap, HeaderValue},
};
use sqlx::PgPool;
use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

const MIB: u64 = 1024 * 1024;
/// The chunk size the client sends and the fake files are made of.
const CHUNK: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Row {
    /// Upload throughput through Pawfile vs a plain aws-sdk-s3 upload (every S3 endpoint chosen).
    Upload,
    /// Download throughput and a ranged read vs a direct GetObject (every S3 endpoint chosen).
    Download,
    /// The server's peak memory above idle: a large upload, a slow download, concurrent uploads.
    Memory,
    /// Many uploads at once by several users: errors and latency.
    Concurrency,
    /// Pages at a fixed request rate, beside `/healthz`.
    Pages,
    /// Full, incremental and restore, beside a plain copy and pg_dump.
    Backup,
    /// Process start to `/readyz` answering 200.
    Startup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// Garage, the self-hosted S3 server (`PAWFILE_TEST_GARAGE_*`).
    Garage,
    /// The embedded endpoint (s3s-fs on a local folder), run as a process of its own.
    Embedded,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::Garage => "Garage",
            Self::Embedded => "embedded",
        }
    }
}

/// Pawfile's benchmark harness (run through `scripts/bench`).
#[derive(Debug, Parser)]
struct Args {
    /// Rows to run (all when none is named).
    #[arg(value_enum)]
    rows: Vec<Row>,
    /// S3 endpoints, in order; rows other than upload and download use the first.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "garage,embedded")]
    s3: Vec<Backend>,
    /// Smaller sizes and shorter runs (a smoke test of the harness, not for the record).
    #[arg(long)]
    quick: bool,
    /// Where the results go (Markdown); the chart is written beside it.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The command line to print in the results (scripts/bench passes its own).
    #[arg(long, default_value = "scripts/bench")]
    command: String,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
    /// For profiling: after seeding the pages row, print its URLs and cookies and wait this many seconds.
    #[arg(long, hide = true, default_value_t = 0)]
    hold: u64,
    /// Internal: serve an embedded S3 endpoint on this folder (credentials from the environment).
    #[arg(long, hide = true)]
    serve_s3: Option<PathBuf>,
}

/// Sizes and counts of one run.
#[derive(Debug, Clone, Copy)]
struct Scale {
    runs: usize,
    small_count: usize,
    large_mib: u64,
    huge_mib: u64,
    slow_seconds: u64,
    concurrent_large: usize,
    page_seconds: u64,
    backup_files: usize,
    backup_total_files: usize,
    patients: usize,
}

impl Scale {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                runs: 3,
                small_count: 40,
                large_mib: 64,
                huge_mib: 256,
                slow_seconds: 10,
                concurrent_large: 4,
                page_seconds: 4,
                backup_files: 100,
                backup_total_files: 400,
                patients: 1000,
            }
        } else {
            Self {
                runs: 3,
                small_count: 200,
                large_mib: 256,
                huge_mib: 1024,
                slow_seconds: 60,
                concurrent_large: 16,
                page_seconds: 15,
                backup_files: 2000,
                backup_total_files: 10_000,
                patients: 10_000,
            }
        }
    }
}

/// Limits raised for the run: (setting, value used, default).
const LIMITS: &[(&str, &str, &str)] = &[
    ("PAWFILE_MAX_UPLOAD_SIZE", "2GiB", "256MiB"),
    ("PAWFILE_LIMIT_UPLOAD_PER_HOUR", "1TiB", "10GiB"),
    ("PAWFILE_LIMIT_DOWNLOAD_PER_HOUR", "1TiB", "50GiB"),
    ("PAWFILE_LIMIT_CONCURRENT_UPLOADS", "32", "10"),
    ("PAWFILE_QUOTA_PER_OWNER", "1TiB", "2GiB"),
    ("PAWFILE_QUOTA_PER_CLINIC", "1TiB", "500GiB"),
    ("PAWFILE_LIMIT_REGISTRATIONS_PER_ADDRESS", "1000/1h", "20/1h"),
];

// ---------------------------------------------------------------------------------------------------
// Numbers

/// Several measurements of one thing.
#[derive(Debug, Clone, Default)]
struct Sample(Vec<f64>);

impl Sample {
    fn of(values: Vec<f64>) -> Self {
        let mut values = values;
        values.sort_by(f64::total_cmp);
        Self(values)
    }
    fn median(&self) -> f64 {
        self.0.get(self.0.len() / 2).copied().unwrap_or(f64::NAN)
    }
    fn min(&self) -> f64 {
        self.0.first().copied().unwrap_or(f64::NAN)
    }
    fn max(&self) -> f64 {
        self.0.last().copied().unwrap_or(f64::NAN)
    }
    /// The value at quantile `q` (0..=1) of the sorted values.
    fn quantile(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let index = ((self.0.len() - 1) as f64 * q).round() as usize;
        self.0[index]
    }
    fn show(&self, unit: &str) -> String {
        if self.0.len() <= 1 {
            return format!("{} {unit}", num(self.median()));
        }
        format!(
            "{} {unit} ({}–{})",
            num(self.median()),
            num(self.min()),
            num(self.max())
        )
    }
}

fn num(value: f64) -> String {
    if value.is_nan() {
        "–".to_owned()
    } else if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// One line of a results table.
#[derive(Debug, Clone)]
struct Line {
    what: String,
    pawfile: String,
    baseline: String,
    ratio: String,
    goal: String,
}

impl Line {
    fn new(what: impl Into<String>, pawfile: impl Into<String>, baseline: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            pawfile: pawfile.into(),
            baseline: baseline.into(),
            ratio: String::new(),
            goal: String::new(),
        }
    }
    fn ratio(mut self, ratio: f64) -> Self {
        self.ratio = format!("{ratio:.2}×");
        self
    }
    fn goal(mut self, goal: impl Into<String>) -> Self {
        self.goal = goal.into();
        self
    }
}

/// A throughput pair for the chart.
#[derive(Debug, Clone)]
struct Bar {
    label: String,
    pawfile: f64,
    baseline: f64,
}

#[derive(Debug, Default)]
struct Report {
    sections: Vec<(String, Vec<Line>, Vec<String>)>,
    bars: Vec<Bar>,
}

impl Report {
    fn section(&mut self, title: impl Into<String>, lines: Vec<Line>, notes: Vec<String>) {
        let title = title.into();
        println!("\n## {title}");
        print!("{}", table(&lines));
        for note in &notes {
            println!("{note}");
        }
        self.sections.push((title, lines, notes));
    }
}

fn table(lines: &[Line]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let mut out = String::from("| | Pawfile | baseline | ratio | goal |\n|---|---|---|---|---|\n");
    for line in lines {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            line.what, line.pawfile, line.baseline, line.ratio, line.goal
        );
    }
    out
}

// ---------------------------------------------------------------------------------------------------
// Bytes

/// A PDF-looking part of `len` bytes (at most a part), cut from one shared buffer (no copy).
fn pattern() -> Bytes {
    static PATTERN: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    PATTERN
        .get_or_init(|| {
            let mut bytes: Vec<u8> = (0..PART_SIZE).map(|i| (i % 251) as u8).collect();
            bytes[..9].copy_from_slice(b"%PDF-1.7\n");
            Bytes::from(bytes)
        })
        .clone()
}

/// A file of `total` bytes as a stream of chunks, generated as it is sent (the client holds nothing).
fn body(total: u64) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    // Each body differs from every other in its first line (after the PDF signature), so no two
    // documents share a checksum: backups store identical content once, and would copy nothing.
    static UPLOADS: AtomicU64 = AtomicU64::new(0);
    let serial = UPLOADS.fetch_add(1, Ordering::Relaxed);
    let pattern = pattern();
    let chunks = total.div_ceil(CHUNK as u64);
    stream::iter((0..chunks).map(move |index| {
        let left = (total - index * CHUNK as u64).min(CHUNK as u64) as usize;
        let start = if index == 0 { 0 } else { CHUNK };
        let chunk = pattern.slice(start..start + left);
        if index > 0 {
            return Ok(chunk);
        }
        let mut first = chunk.to_vec();
        let tag = format!("%{}:{serial:016x}\n", std::process::id());
        let from = 9.min(first.len());
        let to = (from + tag.len()).min(first.len());
        first[from..to].copy_from_slice(&tag.as_bytes()[..to - from]);
        Ok(Bytes::from(first))
    }))
}

/// The same bytes as [`body`], cut into parts of `PART_SIZE` for the SDK.
fn parts(total: u64) -> Vec<Bytes> {
    let mut parts = Vec::new();
    let mut left = total;
    while left > 0 {
        let length = left.min(PART_SIZE as u64) as usize;
        parts.push(pattern().slice(..length));
        left -= length as u64;
    }
    parts
}

// ---------------------------------------------------------------------------------------------------
// Processes

/// Resident memory of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// Runs `work` while sampling the RSS of `pid` every 10 ms; returns its output and the peak.
async fn peak_rss<T>(pid: u32, work: impl Future<Output = T>) -> (T, u64) {
    let peak = Arc::new(AtomicU64::new(rss(pid)));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let output = work.await;
    done.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    (output, peak.load(Ordering::Relaxed))
}

/// CPU time (user and system, with reaped children) spent by each side of a measurement, read from
/// `/proc/<pid>/stat`: where the two cores went while Pawfile or the baseline moved the bytes.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    server: f64,
    s3: f64,
    postgres: f64,
    client: f64,
}

impl Cpu {
    /// Clock ticks per second in `/proc/<pid>/stat` (Linux's `USER_HZ`).
    const TICKS: f64 = 100.0;

    fn now(server: u32, s3: &[u32]) -> Self {
        let mut cpu = Self::default();
        let me = std::process::id();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return cpu;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let Some((head, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let comm = head.split_once('(').map_or("", |(_, comm)| comm);
            // After the name: state is the first field, utime, stime, cutime and cstime the 12th to 15th.
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let seconds = fields.get(11..15).map_or(0.0, |times| {
                times
                    .iter()
                    .filter_map(|value| value.parse::<f64>().ok())
                    .sum::<f64>()
            }) / Self::TICKS;
            if pid == server {
                cpu.server += seconds;
            } else if pid == me {
                cpu.client += seconds;
            } else if s3.contains(&pid) || comm == "garage" {
                cpu.s3 += seconds;
            } else if comm == "postgres" {
                cpu.postgres += seconds;
            }
        }
        cpu
    }

    fn since(self, start: Self) -> Self {
        Self {
            server: self.server - start.server,
            s3: self.s3 - start.s3,
            postgres: self.postgres - start.postgres,
            client: self.client - start.client,
        }
    }

    fn add(&mut self, other: Self) {
        self.server += other.server;
        self.s3 += other.s3;
        self.postgres += other.postgres;
        self.client += other.client;
    }

    fn total(&self) -> f64 {
        self.server + self.s3 + self.postgres + self.client
    }

    /// CPU-seconds per GiB moved, by process, and how busy the cores were.
    fn per_gib(&self, bytes: f64, wall: f64) -> String {
        let gib = bytes / (1024.0 * MIB as f64);
        let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        let mut parts = Vec::new();
        for (name, seconds) in [
            ("Pawfile", self.server),
            ("S3", self.s3),
            ("PostgreSQL", self.postgres),
            ("client", self.client),
        ] {
            if seconds > 0.0 {
                parts.push(format!("{name} {}", num(seconds / gib)));
            }
        }
        format!(
            "{} CPU-s/GiB ({}), cores {:.0} % busy",
            num(self.total() / gib),
            parts.join(", "),
            100.0 * self.total() / (wall * cores)
        )
    }
}

/// CPU and wall time spent by one side of a comparison, summed over the runs it measures.
struct Spent<'a> {
    server: u32,
    s3: &'a [u32],
    cpu: Cpu,
    wall: f64,
}

impl<'a> Spent<'a> {
    fn new(server: u32, s3: &'a [u32]) -> Self {
        Self {
            server,
            s3,
            cpu: Cpu::default(),
            wall: 0.0,
        }
    }

    /// Runs `work`, adding what it took; returns its output and its seconds.
    async fn measure<T>(&mut self, work: impl Future<Output = T>) -> (T, f64) {
        let (before, started) = (Cpu::now(self.server, self.s3), Instant::now());
        let output = work.await;
        let seconds = started.elapsed().as_secs_f64();
        self.wall += seconds;
        self.cpu.add(Cpu::now(self.server, self.s3).since(before));
        (output, seconds)
    }

    fn per_gib(&self, bytes: f64) -> String {
        self.cpu.per_gib(bytes, self.wall)
    }

    /// The ratio to `baseline` that CPU time alone would allow if both kept every core busy: its CPU
    /// per byte over ours. Where both sides saturate the cores, the measured ratio cannot pass it.
    fn ceiling(&self, bytes: f64, baseline: &Spent<'_>, baseline_bytes: f64) -> String {
        let ours = self.cpu.total() / bytes;
        let theirs = baseline.cpu.total() / baseline_bytes;
        if ours > 0.0 {
            format!("CPU per byte alone allows at most {:.2}×", theirs / ours)
        } else {
            "no CPU time measured".to_owned()
        }
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn random_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// One S3 bucket and how to reach it.
#[derive(Debug, Clone)]
struct Bucket {
    endpoint: String,
    region: String,
    key: String,
    secret: String,
    name: String,
}

impl Bucket {
    fn client(&self) -> S3 {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(self.region.clone()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new(&self.key, &self.secret, None, None, "bench"))
            .force_path_style(true)
            // As Pawfile's own client: no checksum unless an operation requires one (Garage refuses
            // parts with a CRC32 the upload did not announce).
            .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
            .build();
        S3::from_conf(config)
    }

    fn named(&self, name: String) -> Self {
        Self { name, ..self.clone() }
    }

    async fn create(&self) -> Result<()> {
        match self.client().create_bucket().bucket(&self.name).send().await {
            Ok(_) => Ok(()),
            Err(err)
                if matches!(
                    aws_sdk_s3::error::ProvideErrorMetadata::code(&err),
                    Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
                ) =>
            {
                Ok(())
            }
            Err(err) => Err(anyhow::Error::new(err).context(format!("creating bucket {}", self.name))),
        }
    }

    fn env(&self, prefix: &str) -> Vec<(String, String)> {
        [
            ("ENDPOINT", self.endpoint.clone()),
            ("REGION", self.region.clone()),
            ("BUCKET", self.name.clone()),
            ("ACCESS_KEY_ID", self.key.clone()),
            ("SECRET_ACCESS_KEY", self.secret.clone()),
            ("FORCE_PATH_STYLE", "true".to_owned()),
        ]
        .into_iter()
        .map(|(name, value)| (format!("{prefix}{name}"), value))
        .collect()
    }
}

/// The S3 side of a run: where documents and backups go (each its own endpoint and key when embedded).
struct Stores {
    backend: Backend,
    documents: Bucket,
    backups: Bucket,
    processes: Vec<Child>,
}

impl Stores {
    /// The embedded endpoints' processes (Garage is found by name).
    fn s3_pids(&self) -> Vec<u32> {
        self.processes.iter().filter_map(Child::id).collect()
    }

    async fn start(backend: Backend, work: &Path) -> Result<Self> {
        match backend {
            Backend::Embedded => {
                let (documents, first) = embedded_endpoint(&work.join("s3-documents")).await?;
                let (backups, second) = embedded_endpoint(&work.join("s3-backups")).await?;
                Ok(Self {
                    backend,
                    documents,
                    backups,
                    processes: vec![first, second],
                })
            }
            Backend::Garage => {
                let var = |name: &str| {
                    std::env::var(name)
                        .with_context(|| format!("{name} is not set: run scripts/bench, which starts Garage"))
                };
                let documents = Bucket {
                    endpoint: var("PAWFILE_TEST_GARAGE_ENDPOINT")?,
                    region: var("PAWFILE_TEST_GARAGE_REGION")?,
                    key: var("PAWFILE_TEST_GARAGE_ACCESS_KEY_ID")?,
                    secret: var("PAWFILE_TEST_GARAGE_SECRET_ACCESS_KEY")?,
                    name: String::new(),
                };
                Ok(Self {
                    backend,
                    backups: documents.clone(),
                    documents,
                    processes: Vec::new(),
                })
            }
        }
    }
}

/// Starts this program as an embedded S3 endpoint on `folder` and waits until it listens.
async fn embedded_endpoint(folder: &Path) -> Result<(Bucket, Child)> {
    let (key, secret) = (format!("bench{}", random_token()), random_token());
    let mut child = Command::new(std::env::current_exe()?)
        .arg("--serve-s3")
        .arg(folder)
        .env("BENCH_S3_ACCESS_KEY_ID", &key)
        .env("BENCH_S3_SECRET_ACCESS_KEY", &secret)
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("the endpoint's output")?;
    let line = BufReader::new(stdout)
        .lines()
        .next_line()
        .await?
        .context("the embedded endpoint exited before listening")?;
    let endpoint = line
        .strip_prefix("listening ")
        .context("the embedded endpoint said something else")?
        .to_owned();
    Ok((
        Bucket {
            endpoint,
            region: "us-east-1".to_owned(),
            key,
            secret,
            name: String::new(),
        },
        child,
    ))
}

/// The `--serve-s3` mode: an embedded endpoint until killed.
async fn serve_s3(folder: &Path) -> Result<()> {
    let credentials = pawfile::config::S3Credentials {
        access_key_id: std::env::var("BENCH_S3_ACCESS_KEY_ID")?,
        secret_access_key: secrecy::SecretString::from(std::env::var("BENCH_S3_SECRET_ACCESS_KEY")?),
    };
    let endpoint =
        pawfile::storage::EmbeddedS3::start_with(folder, "127.0.0.1:0".parse()?, credentials).await?;
    println!("listening {}", endpoint.endpoint());
    std::future::pending::<()>().await;
    Ok(())
}

/// A Pawfile server process.
struct Server {
    child: Child,
    base: String,
    pid: u32,
}

/// What every server of a row shares: its database, buckets and settings.
struct Site {
    env: Vec<(String, String)>,
    database: String,
    url: String,
    pool: PgPool,
    documents: Bucket,
    backups: Bucket,
    identity: PathBuf,
    log: PathBuf,
    root: PathBuf,
}

static SITES: AtomicU64 = AtomicU64::new(0);

impl Site {
    /// A fresh database and fresh buckets on `stores`.
    async fn fresh(ctx: &Ctx, stores: &Stores) -> Result<Self> {
        let number = SITES.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}-{number}", std::process::id());
        let database = format!("pawfile_bench_{}", tag.replace('-', "_"));
        sqlx::query(&format!("create database {database}"))
            .execute(&ctx.admin)
            .await?;
        let mut url: url::Url = ctx.database_url.parse()?;
        url.set_path(&database);
        let url = url.to_string();
        let pool = PgPool::connect(&url).await?;
        let documents = stores.documents.named(format!("bench-documents-{tag}"));
        let backups = stores.backups.named(format!("bench-backups-{tag}"));
        documents.create().await?;
        backups.create().await?;
        let (identity_text, recipient) = pawfile::backup::crypto::generate_key_pair();
        let identity = ctx.work.join(format!("backup-key-{tag}.txt"));
        std::fs::write(&identity, identity_text)?;
        let data = ctx.work.join(format!("data-{tag}"));
        let mut env: Vec<(String, String)> = vec![
            ("DATABASE_URL".into(), url.clone()),
            ("PAWFILE_DATA_DIR".into(), data.display().to_string()),
            ("PAWFILE_BACKUP_SCHEDULE".into(), "off".into()),
            ("PAWFILE_BACKUP_RECIPIENTS".into(), recipient),
            ("RUST_LOG".into(), "warn".into()),
        ];
        env.extend(documents.env("PAWFILE_S3_"));
        env.extend(backups.env("PAWFILE_BACKUP_S3_"));
        env.extend(
            LIMITS
                .iter()
                .map(|(name, value, _)| ((*name).to_owned(), (*value).to_owned())),
        );
        Ok(Self {
            env,
            database,
            url,
            pool,
            documents,
            backups,
            identity,
            log: ctx.work.join(format!("server-{tag}.log")),
            root: ctx.root.clone(),
        })
    }

    /// Runs the Pawfile binary with this site's settings and `args`; fails on a non-zero exit.
    async fn pawfile(&self, args: &[&str], extra: &[(String, String)]) -> Result<()> {
        let output = Command::new(env!("CARGO_BIN_EXE_pawfile"))
            .args(args)
            .envs(self.env.iter().cloned())
            .envs(extra.iter().cloned())
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .output()
            .await?;
        if !output.status.success() {
            bail!(
                "pawfile {} failed: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// Starts `pawfile serve`; returns it with the time from spawning to `/readyz` answering 200.
    async fn serve(&self) -> Result<(Server, Duration)> {
        let port = free_port()?;
        let base = format!("http://127.0.0.1:{port}");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let started = Instant::now();
        let child = Command::new(env!("CARGO_BIN_EXE_pawfile"))
            .arg("serve")
            .envs(self.env.iter().cloned())
            .env("PAWFILE_LISTEN", format!("127.0.0.1:{port}"))
            .env("PAWFILE_PUBLIC_URL", format!("{base}/"))
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().context("the server's pid")?;
        let client = reqwest::Client::new();
        let mut server = Server { child, base, pid };
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "the server exited ({status}); its log: {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if let Ok(response) = client.get(format!("{}/readyz", server.base)).send().await
                && response.status().is_success()
            {
                return Ok((server, started.elapsed()));
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("the server was not ready within two minutes");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn drop_database(self, ctx: &Ctx) -> Result<()> {
        self.pool.close().await;
        sqlx::query(&format!("drop database {} with (force)", self.database))
            .execute(&ctx.admin)
            .await?;
        Ok(())
    }
}

impl Server {
    async fn stop(mut self) -> Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    fn rss(&self) -> u64 {
        rss(self.pid)
    }
}

// ---------------------------------------------------------------------------------------------------
// HTTP client

/// A signed-in browser-like client (a cookie jar and Pawfile's script header).
#[derive(Clone)]
struct User {
    http: reqwest::Client,
    jar: Arc<Jar>,
    base: String,
}

impl User {
    fn new(base: &str) -> Result<Self> {
        let jar = Arc::new(Jar::default());
        let mut headers = HeaderMap::new();
        headers.insert("x-pawfile-client", HeaderValue::from_static("1"));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .cookie_provider(jar.clone())
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Self {
            http,
            jar,
            base: base.to_owned(),
        })
    }

    /// An owner account made directly in the database (signing up waits for a mailed link), signed in.
    async fn owner(pool: &PgPool, base: &str, email: &str) -> Result<Self> {
        use pawfile::domain::{DisplayName, Email, NewPassword, Role, Roles};
        let account = pawfile::auth::NewUser {
            email: Email::parse(email)?,
            display_name: DisplayName::parse("Bench")?,
            password: NewPassword::parse("benchmark password")?,
            roles: Roles::new([Role::Owner]),
            clinic_id: None,
        };
        pawfile::auth::create_user(pool, &pawfile::auth::PasswordHasher::new(1), account).await?;
        Self::login(base, email, "benchmark password").await
    }

    /// Signs in; the demo staff and admin with the current code of their known TOTP key.
    async fn login(base: &str, email: &str, password: &str) -> Result<Self> {
        let user = Self::new(base)?;
        let code = pawfile::demo::DEMO_ACCOUNTS
            .iter()
            .find(|account| account.email == email)
            .and_then(|account| account.totp_secret)
            .map(|secret| pawfile::auth::two_factor::code_for(secret, 0))
            .transpose()?
            .unwrap_or_default();
        user.post_form(
            "/api/login",
            &[("email", email), ("password", password), ("code", &code)],
        )
        .await?;
        Ok(user)
    }

    /// The `Cookie` header this user sends, for a load generator.
    fn cookie(&self) -> Result<String> {
        let url: url::Url = self.base.parse()?;
        let cookies = self.jar.cookies(&url).context("signed in")?;
        Ok(cookies.to_str()?.to_owned())
    }

    async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Result<serde_json::Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("POST {path} answered {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }

    async fn get_json(&self, path: &str) -> Result<serde_json::Value> {
        let response = self.http.get(format!("{}{path}", self.base)).send().await?;
        let status = response.status();
        if !status.is_success() {
            bail!("GET {path} answered {status}");
        }
        Ok(response.json().await?)
    }

    async fn create_pet(&self, name: &str) -> Result<String> {
        let id = self
            .post_form("/api/pets/create", &[("name", name), ("species", "dog")])
            .await?;
        id.as_str().map(str::to_owned).context("a pet id")
    }

    /// Uploads a file of `size` bytes (streamed, with its length declared as a browser does);
    /// returns the document's id.
    async fn upload(&self, pet: &str, size: u64) -> Result<String> {
        let part = reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(body(size)), size)
            .file_name("bench.pdf")
            .mime_str("application/pdf")?;
        let response = self
            .http
            .post(format!("{}/api/pets/{pet}/documents", self.base))
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            bail!("the upload answered {status}: {}", response.text().await?);
        }
        let views: serde_json::Value = response.json().await?;
        views[0]["id"]
            .as_str()
            .map(str::to_owned)
            .context("the upload's document id")
    }

    /// Downloads a document to nowhere; returns the bytes read.
    async fn download(&self, document: &str) -> Result<u64> {
        let response = self
            .http
            .get(format!("{}/api/documents/{document}/content", self.base))
            .send()
            .await?
            .error_for_status()?;
        let mut body = response.bytes_stream();
        let mut read = 0;
        while let Some(chunk) = body.next().await {
            read += chunk?.len() as u64;
        }
        Ok(read)
    }

    /// Reads `length` bytes at `offset`; returns (time to the first byte, total time).
    async fn range(&self, document: &str, offset: u64, length: u64) -> Result<(Duration, Duration)> {
        let started = Instant::now();
        let response = self
            .http
            .get(format!("{}/api/documents/{document}/content", self.base))
            .header("range", format!("bytes={offset}-{}", offset + length - 1))
            .send()
            .await?
            .error_for_status()?;
        let mut body = response.bytes_stream();
        let mut first = None;
        let mut read = 0;
        while let Some(chunk) = body.next().await {
            first.get_or_insert_with(|| started.elapsed());
            read += chunk?.len() as u64;
        }
        if read != length {
            bail!("the range read {read} bytes of {length}");
        }
        Ok((first.unwrap_or_default(), started.elapsed()))
    }
}

// ---------------------------------------------------------------------------------------------------
// The baseline: aws-sdk-s3 straight to the bucket

/// Uploads `size` bytes under `key` as a plain client would: one PutObject up to a part, else a
/// multipart upload of `PART_SIZE` parts one after another, no checksums (S3 checks the signed
/// payload's SHA-256).
async fn direct_put(s3: &S3, bucket: &str, key: &str, size: u64) -> Result<()> {
    let parts = parts(size);
    if parts.len() <= 1 {
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(parts.into_iter().next().unwrap_or_default()))
            .send()
            .await?;
        return Ok(());
    }
    let upload = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await?;
    let upload_id = upload.upload_id().context("an upload id")?;
    let mut completed = Vec::new();
    for (index, part) in parts.into_iter().enumerate() {
        let number = index as i32 + 1;
        let sent = s3
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(part))
            .send()
            .await?;
        completed.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(sent.e_tag().map(str::to_owned))
                .build(),
        );
    }
    s3.complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .send()
        .await?;
    Ok(())
}

async fn direct_get(s3: &S3, bucket: &str, key: &str, range: Option<(u64, u64)>) -> Result<(u64, Duration)> {
    let started = Instant::now();
    let mut request = s3.get_object().bucket(bucket).key(key);
    if let Some((offset, length)) = range {
        request = request.range(format!("bytes={offset}-{}", offset + length - 1));
    }
    let mut body = request.send().await?.body;
    let mut first = None;
    let mut read = 0;
    while let Some(chunk) = body.try_next().await? {
        first.get_or_insert_with(|| started.elapsed());
        read += chunk.len() as u64;
    }
    Ok((read, first.unwrap_or_default()))
}

async fn object_key(pool: &PgPool, document: &str) -> Result<String> {
    let id: uuid::Uuid = document.parse()?;
    let key: String = sqlx::query_scalar("select object_key from documents where id = $1")
        .bind(id)
        .fetch_one(pool)
        .await?;
    Ok(key)
}

// ---------------------------------------------------------------------------------------------------
// The rows

struct Ctx {
    admin: PgPool,
    database_url: String,
    work: PathBuf,
    root: PathBuf,
    scale: Scale,
    hold: u64,
}

/// Times `count` uploads of `size` bytes, `at_once` at a time; MiB/s, and the document ids.
async fn timed_uploads(
    user: &User,
    pet: &str,
    size: u64,
    count: usize,
    at_once: usize,
) -> Result<(f64, Vec<String>)> {
    let started = Instant::now();
    let ids: Vec<String> = stream::iter(0..count)
        .map(|_| user.upload(pet, size))
        .buffer_unordered(at_once)
        .try_collect()
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(((size * count as u64) as f64 / MIB as f64 / seconds, ids))
}

async fn timed_direct_puts(s3: &S3, bucket: &str, size: u64, count: usize, at_once: usize) -> Result<f64> {
    let keys: Vec<String> = (0..count).map(|_| format!("direct/{}", random_token())).collect();
    let started = Instant::now();
    stream::iter(keys.iter())
        .map(|key| direct_put(s3, bucket, key, size))
        .buffer_unordered(at_once)
        .try_collect::<Vec<()>>()
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok((size * count as u64) as f64 / MIB as f64 / seconds)
}

/// Upload and download throughput at three object sizes, and a ranged read.
async fn transfer_rows(ctx: &Ctx, stores: &Stores, rows: &[Row], report: &mut Report) -> Result<()> {
    let scale = ctx.scale;
    let site = Site::fresh(ctx, stores).await?;
    let (server, _) = site.serve().await?;
    let user = User::owner(&site.pool, &server.base, "transfer@example.org").await?;
    let pet = user.create_pet("Transfer").await?;
    let s3 = site.documents.client();
    let bucket = site.documents.name.clone();
    // Warm both paths (connections, allocator pools).
    user.upload(&pet, MIB).await?;
    direct_put(&s3, &bucket, "warm", MIB).await?;

    let sizes: [(u64, usize, usize); 3] = [
        (MIB, scale.small_count, 8),
        (16 * MIB, 8, 1),
        (scale.large_mib * MIB, 1, 1),
    ];
    let name = stores.backend.name();
    let mut up_lines = Vec::new();
    let mut down_lines = Vec::new();
    let cpu_note =
        "CPU time by process while the bytes moved (all runs), per GiB moved; the client is this harness:";
    let (mut up_cpu, mut down_cpu) = (vec![cpu_note.to_owned()], vec![cpu_note.to_owned()]);
    let s3_pids = stores.s3_pids();
    let mut largest: Option<String> = None;
    for (size, count, at_once) in sizes {
        let label = format!(
            "{} MiB × {count}{}",
            size / MIB,
            if at_once > 1 {
                format!(", {at_once} at a time")
            } else {
                String::new()
            }
        );
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        let mut documents = Vec::new();
        let moved = (size * count as u64 * scale.runs as u64) as f64;
        let (mut spent_ours, mut spent_theirs) =
            (Spent::new(server.pid, &s3_pids), Spent::new(server.pid, &s3_pids));
        for _ in 0..scale.runs {
            let (uploaded, _) = spent_ours
                .measure(timed_uploads(&user, &pet, size, count, at_once))
                .await;
            let (rate, ids) = uploaded?;
            ours.push(rate);
            documents = ids;
            let (rate, _) = spent_theirs
                .measure(timed_direct_puts(&s3, &bucket, size, count, at_once))
                .await;
            theirs.push(rate?);
        }
        up_cpu.push(format!(
            "- {label}: Pawfile {}; direct {}; {}.",
            spent_ours.per_gib(moved),
            spent_theirs.per_gib(moved),
            spent_ours.ceiling(moved, &spent_theirs, moved)
        ));
        let (ours, theirs) = (Sample::of(ours), Sample::of(theirs));
        if rows.contains(&Row::Upload) {
            up_lines.push(
                Line::new(
                    format!("{name}: upload {label}"),
                    ours.show("MiB/s"),
                    theirs.show("MiB/s"),
                )
                .ratio(ours.median() / theirs.median())
                .goal("≥ 0.9×"),
            );
            report.bars.push(Bar {
                label: format!("{name} upload {} MiB", size / MIB),
                pawfile: ours.median(),
                baseline: theirs.median(),
            });
        }
        if rows.contains(&Row::Download) {
            // The baseline reads the very objects Pawfile stored for the documents.
            let mut stored = Vec::new();
            for document in &documents {
                stored.push(object_key(&site.pool, document).await?);
            }
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            let (mut spent_ours, mut spent_theirs) =
                (Spent::new(server.pid, &s3_pids), Spent::new(server.pid, &s3_pids));
            for _ in 0..scale.runs {
                let (read, seconds) = spent_ours
                    .measure(
                        stream::iter(documents.iter())
                            .map(|id| user.download(id))
                            .buffer_unordered(at_once)
                            .try_collect::<Vec<u64>>(),
                    )
                    .await;
                ours.push(read?.iter().sum::<u64>() as f64 / MIB as f64 / seconds);
                let (read, seconds) = spent_theirs
                    .measure(
                        stream::iter(stored.iter())
                            .map(|key| direct_get(&s3, &bucket, key, None))
                            .buffer_unordered(at_once)
                            .try_collect::<Vec<(u64, Duration)>>(),
                    )
                    .await;
                theirs.push(read?.iter().map(|(n, _)| n).sum::<u64>() as f64 / MIB as f64 / seconds);
            }
            let moved = (size * documents.len() as u64 * scale.runs as u64) as f64;
            down_cpu.push(format!(
                "- {label}: Pawfile {}; direct {}; {}.",
                spent_ours.per_gib(moved),
                spent_theirs.per_gib(moved),
                spent_ours.ceiling(moved, &spent_theirs, moved)
            ));
            let (ours, theirs) = (Sample::of(ours), Sample::of(theirs));
            down_lines.push(
                Line::new(
                    format!("{name}: download {label}"),
                    ours.show("MiB/s"),
                    theirs.show("MiB/s"),
                )
                .ratio(ours.median() / theirs.median())
                .goal("≥ 0.9×"),
            );
            report.bars.push(Bar {
                label: format!("{name} download {} MiB", size / MIB),
                pawfile: ours.median(),
                baseline: theirs.median(),
            });
        }
        largest = documents.last().cloned();
    }
    if rows.contains(&Row::Download)
        && let Some(document) = largest
    {
        // The baseline reads the very object Pawfile stored for the document.
        let key = object_key(&site.pool, &document).await?;
        let offset = scale.large_mib * MIB / 2;
        let (mut first_ours, mut total_ours, mut first_theirs, mut total_theirs) =
            (vec![], vec![], vec![], vec![]);
        for _ in 0..5 {
            let (first, total) = user.range(&document, offset, MIB).await?;
            first_ours.push(first.as_secs_f64() * 1000.0);
            total_ours.push(total.as_secs_f64() * 1000.0);
            let started = Instant::now();
            let (_, first) = direct_get(&s3, &bucket, &key, Some((offset, MIB))).await?;
            first_theirs.push(first.as_secs_f64() * 1000.0);
            total_theirs.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        let (first_ours, total_ours, first_theirs, total_theirs) = (
            Sample::of(first_ours),
            Sample::of(total_ours),
            Sample::of(first_theirs),
            Sample::of(total_theirs),
        );
        down_lines.push(
            Line::new(
                format!(
                    "{name}: 1 MiB range from the middle of {} MiB, first byte",
                    scale.large_mib
                ),
                first_ours.show("ms"),
                first_theirs.show("ms"),
            )
            .ratio(first_theirs.median() / first_ours.median()),
        );
        down_lines.push(
            Line::new(
                format!(
                    "{name}: 1 MiB range from the middle of {} MiB, whole",
                    scale.large_mib
                ),
                total_ours.show("ms"),
                total_theirs.show("ms"),
            )
            .ratio(total_theirs.median() / total_ours.median()),
        );
    }
    if !up_lines.is_empty() {
        report.section(
            format!("Upload throughput ({name})"),
            up_lines,
            vec![format!(
                "Median of {} runs (min–max). Pawfile: `POST /api/pets/{{id}}/documents`, multipart, length declared. \
                 Baseline: aws-sdk-s3 (payload signed, no extra checksum), PutObject up to {} MiB, else a multipart upload of {} MiB \
                 parts one after another. Ratio: Pawfile / baseline.",
                scale.runs,
                PART_SIZE as u64 / MIB,
                PART_SIZE as u64 / MIB
            )]
            .into_iter()
            .chain(up_cpu)
            .collect(),
        );
    }
    if !down_lines.is_empty() {
        report.section(
            format!("Download throughput ({name})"),
            down_lines,
            vec![format!(
                "Median of {} runs (5 for the ranges). Pawfile: `GET /api/documents/{{id}}/content` (signed in, \
                 audited); baseline: GetObject of the same size. Ratio: Pawfile / baseline for throughput, \
                 baseline / Pawfile for times.",
                scale.runs
            )]
            .into_iter()
            .chain(down_cpu)
            .collect(),
        );
    }
    server.stop().await?;
    site.drop_database(ctx).await
}

/// Peak server memory above idle during a large upload, a slow download and concurrent uploads.
async fn memory_rows(ctx: &Ctx, stores: &Stores, report: &mut Report) -> Result<()> {
    let scale = ctx.scale;
    let site = Site::fresh(ctx, stores).await?;
    let (server, _) = site.serve().await?;
    let user = User::owner(&site.pool, &server.base, "memory@example.org").await?;
    let pet = user.create_pet("Memory").await?;
    user.upload(&pet, 16 * MIB).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mib = |bytes: u64| bytes as f64 / MIB as f64;
    let mut lines = Vec::new();

    let idle = server.rss();
    let started = Instant::now();
    let (uploaded, peak) = peak_rss(server.pid, user.upload(&pet, scale.huge_mib * MIB)).await;
    let seconds = started.elapsed().as_secs_f64();
    uploaded?;
    lines.push(
        Line::new(
            format!(
                "one {} MiB upload ({:.0} MiB/s)",
                scale.huge_mib,
                scale.huge_mib as f64 / seconds
            ),
            format!("+{:.1} MiB", mib(peak.saturating_sub(idle))),
            format!("idle {:.1} MiB", mib(idle)),
        )
        .goal("≤ +64 MiB"),
    );

    // A slow reader: 1 MiB/s for `slow_seconds` of a 128 MiB document.
    let slow = user.upload(&pet, 128 * MIB).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = server.rss();
    let (read, peak) = peak_rss(server.pid, async {
        let response = user
            .http
            .get(format!("{}/api/documents/{slow}/content", server.base))
            .send()
            .await?
            .error_for_status()?;
        let mut body = response.bytes_stream();
        let started = Instant::now();
        let mut read = 0u64;
        while started.elapsed() < Duration::from_secs(scale.slow_seconds) {
            let Some(chunk) = body.next().await else { break };
            read += chunk?.len() as u64;
            let due = Duration::from_secs_f64(read as f64 / MIB as f64);
            if due > started.elapsed() {
                tokio::time::sleep(due - started.elapsed()).await;
            }
        }
        anyhow::Ok(read)
    })
    .await;
    let read = read?;
    lines.push(
        Line::new(
            format!(
                "a slow download (1 MiB/s for {} s of 128 MiB; {:.0} MiB read)",
                scale.slow_seconds,
                mib(read)
            ),
            format!("+{:.1} MiB", mib(peak.saturating_sub(idle))),
            format!("idle {:.1} MiB", mib(idle)),
        )
        .goal("≤ +16 MiB"),
    );

    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = server.rss();
    let (done, peak) = peak_rss(server.pid, async {
        let uploads: Vec<_> = (0..scale.concurrent_large)
            .map(|_| {
                let (user, pet) = (user.clone(), pet.clone());
                tokio::spawn(async move { user.upload(&pet, 64 * MIB).await })
            })
            .collect();
        for upload in uploads {
            upload.await??;
        }
        anyhow::Ok(())
    })
    .await;
    done?;
    lines.push(Line::new(
        format!("{} concurrent 64 MiB uploads", scale.concurrent_large),
        format!("+{:.1} MiB", mib(peak.saturating_sub(idle))),
        format!("idle {:.1} MiB", mib(idle)),
    ));
    report.section(
        format!("Memory ({})", stores.backend.name()),
        lines,
        vec![
            "The server's peak resident memory (VmRSS of its process, sampled every 10 ms) above its RSS \
              just before; the client and the S3 endpoint are other processes. The baseline column shows the \
              idle RSS."
                .to_owned(),
        ],
    );
    server.stop().await?;
    site.drop_database(ctx).await
}

/// 100 uploads of 1 MiB at once by 10 users.
async fn concurrency_rows(ctx: &Ctx, stores: &Stores, report: &mut Report) -> Result<()> {
    let site = Site::fresh(ctx, stores).await?;
    let (server, _) = site.serve().await?;
    let mut users = Vec::new();
    for index in 0..10 {
        let user = User::owner(
            &site.pool,
            &server.base,
            &format!("concurrent{index}@example.org"),
        )
        .await?;
        let pet = user.create_pet("Concurrent").await?;
        user.upload(&pet, MIB).await?;
        users.push((user, pet));
    }
    let started = Instant::now();
    let tasks: Vec<_> = (0..100)
        .map(|index| {
            let (user, pet) = users[index % 10].clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let result = user.upload(&pet, MIB).await;
                (result, started.elapsed())
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    for task in tasks {
        let (result, elapsed) = task.await?;
        latencies.push(elapsed.as_secs_f64() * 1000.0);
        if let Err(err) = result {
            errors.push(err.to_string());
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let latencies = Sample::of(latencies);
    // The baseline: the same 100 objects straight to the bucket, all at once.
    let s3 = site.documents.client();
    let started = Instant::now();
    let direct: Vec<_> = (0..100)
        .map(|index| {
            let (s3, bucket) = (s3.clone(), site.documents.name.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let result = direct_put(&s3, &bucket, &format!("concurrent/{index}"), MIB).await;
                (result, started.elapsed())
            })
        })
        .collect();
    let mut direct_latencies = Vec::new();
    let mut direct_errors = 0;
    for task in direct {
        let (result, elapsed) = task.await?;
        direct_latencies.push(elapsed.as_secs_f64() * 1000.0);
        direct_errors += usize::from(result.is_err());
    }
    let direct_wall = started.elapsed().as_secs_f64();
    let direct_latencies = Sample::of(direct_latencies);
    let lines = vec![
        Line::new("errors", errors.len().to_string(), direct_errors.to_string()).goal("0"),
        Line::new(
            "latency p50 / p99",
            format!(
                "{} / {} ms",
                num(latencies.quantile(0.5)),
                num(latencies.quantile(0.99))
            ),
            format!(
                "{} / {} ms",
                num(direct_latencies.quantile(0.5)),
                num(direct_latencies.quantile(0.99))
            ),
        )
        .ratio(direct_latencies.quantile(0.5) / latencies.quantile(0.5)),
        Line::new(
            "all 100 done in",
            format!("{wall:.2} s"),
            format!("{direct_wall:.2} s"),
        )
        .ratio(direct_wall / wall),
    ];
    let mut notes = vec![format!(
        "100 uploads of 1 MiB started at once by 10 signed-in users (10 each) through Pawfile; the baseline \
         puts 100 objects of 1 MiB at once with aws-sdk-s3 ({}).",
        stores.backend.name()
    )];
    if let Some(first) = errors.first() {
        notes.push(format!("First error: {first}"));
    }
    report.section(format!("Concurrency ({})", stores.backend.name()), lines, notes);
    server.stop().await?;
    site.drop_database(ctx).await
}

/// `hey` holding `rate` requests per second for `seconds`; (achieved rate, p50 ms, p99 ms, non-2xx).
async fn hey(url: &str, cookie: Option<&str>, rate: u32, seconds: u64) -> Result<(f64, f64, f64, u64)> {
    let workers = 10;
    let mut command = Command::new("hey");
    command
        .arg("-z")
        .arg(format!("{seconds}s"))
        .arg("-c")
        .arg(workers.to_string())
        .arg("-q")
        .arg((rate / workers).to_string());
    if let Some(cookie) = cookie {
        command.arg("-H").arg(format!("Cookie: {cookie}"));
    }
    let output = command
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .await
        .context("running hey (Debian's package `hey`; scripts/bench installs it)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |prefix: &str| -> Option<f64> {
        text.lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse().ok())
    };
    let rate = field("Requests/sec:").with_context(|| format!("hey said: {text}"))?;
    let p50 = field("50% in").unwrap_or(f64::NAN) * 1000.0;
    let p99 = field("99% in").unwrap_or(f64::NAN) * 1000.0;
    let mut failed = 0;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix('[')
            && let Some((code, count)) = rest.split_once(']')
            && !code.starts_with('2')
        {
            failed += count
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    if text.contains("Error distribution:") {
        failed += text
            .split("Error distribution:")
            .nth(1)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.trim().strip_prefix('['))
            .filter_map(|rest| rest.split(']').next())
            .filter_map(|n| n.parse::<u64>().ok())
            .sum::<u64>();
    }
    Ok((rate, p50, p99, failed))
}

/// A pet page with 50 records and 100 documents, and a clinic's patient search over many pets.
async fn pages_rows(ctx: &Ctx, stores: &Stores, report: &mut Report) -> Result<()> {
    let scale = ctx.scale;
    let site = Site::fresh(ctx, stores).await?;
    let (server, _) = site.serve().await?;
    site.pawfile(&["seed-demo"], &[]).await?;
    let owner = User::owner(&site.pool, &server.base, "pages@example.org").await?;
    let vet = User::login(&server.base, "vet@pawfile.test", "vet-demo-pass").await?;
    let pet = owner.create_pet("Pepper").await?;
    let clinics = owner.get_json("/api/clinics").await?;
    let clinic = clinics
        .as_array()
        .and_then(|clinics| clinics.first())
        .and_then(|clinic| clinic["id"].as_str())
        .context("the demo clinic")?
        .to_owned();
    owner
        .post_form("/api/pets/share", &[("pet_id", &pet), ("clinic_id", &clinic)])
        .await?;
    for index in 0..50 {
        let date = format!("2026-{:02}-{:02}", 1 + index % 11, 1 + index % 28);
        vet.post_form(
            "/api/records/create",
            &[
                ("pet_id", &pet),
                ("visit_date", &date),
                ("kind", "consultation"),
                ("title", &format!("Check-up {index}")),
                (
                    "body",
                    "Weight stable. Coat and skin normal. Heart and lungs clear. Next visit in a month.",
                ),
            ],
        )
        .await?;
    }
    stream::iter(0..100)
        .map(|_| owner.upload(&pet, 64 * 1024))
        .buffer_unordered(8)
        .try_collect::<Vec<_>>()
        .await?;
    let clinic_id: uuid::Uuid = clinic.parse()?;
    sqlx::query(
        "with new as (
             insert into pets (id, name, species, breed, owner_email)
             select gen_random_uuid(), 'Patient ' || n, case when n % 3 = 0 then 'cat' else 'dog' end, 'Mixed',
                    'owner' || n || '@example.org'
             from generate_series(1, $2) n
             returning id)
         insert into pet_clinic_access (pet_id, clinic_id) select id, $1 from new",
    )
    .bind(clinic_id)
    .bind(scale.patients as i32)
    .execute(&site.pool)
    .await?;
    sqlx::query("analyze").execute(&site.pool).await?;

    if ctx.hold > 0 {
        println!(
            "holding {} s: server {} pid {}, pet {pet}, owner cookie {}, vet cookie {}",
            ctx.hold,
            server.base,
            server.pid,
            owner.cookie()?,
            vet.cookie()?
        );
        tokio::time::sleep(Duration::from_secs(ctx.hold)).await;
    }
    let rate = 200;
    let seconds = scale.page_seconds;
    let rows: Vec<(String, String, Option<String>)> = vec![
        (
            "/healthz (the floor)".into(),
            format!("{}/healthz", server.base),
            None,
        ),
        (
            "owner's pet page (50 records, 100 documents)".into(),
            format!("{}/pets/{pet}", server.base),
            Some(owner.cookie()?),
        ),
        (
            "vet's view of that pet page (audited view)".into(),
            format!("{}/pets/{pet}", server.base),
            Some(vet.cookie()?),
        ),
        (
            format!(
                "clinic patient search over {} pets (`/clinic?q=Patient 123`)",
                scale.patients
            ),
            format!("{}/clinic?q=Patient+123", server.base),
            Some(vet.cookie()?),
        ),
        (
            "the same search through the API".into(),
            format!("{}/api/clinic/patients?q=Patient+123", server.base),
            Some(vet.cookie()?),
        ),
    ];
    let mut lines = Vec::new();
    let mut floor = None;
    for (what, url, cookie) in rows {
        // Warm up, and check the page answers before loading it.
        let check = reqwest::Client::new()
            .get(&url)
            .header("cookie", cookie.clone().unwrap_or_default())
            .send()
            .await?;
        if !check.status().is_success() {
            bail!("{url} answered {}", check.status());
        }
        let (achieved, p50, p99, failed) = hey(&url, cookie.as_deref(), rate, seconds).await?;
        let shown = format!(
            "{achieved:.0} req/s, p50 {} ms, p99 {} ms{}",
            num(p50),
            num(p99),
            if failed > 0 {
                format!(", {failed} failed")
            } else {
                String::new()
            }
        );
        match floor {
            None => {
                floor = Some(shown.clone());
                lines.push(Line::new(what, shown, "(this is the floor)"));
            }
            Some(ref floor) => lines.push(Line::new(what, shown, floor.clone()).goal("p99 ≤ 50 ms")),
        }
    }
    report.section(
        format!("Pages at {rate} requests per second ({})", stores.backend.name()),
        lines,
        vec![format!(
            "`hey -z {seconds}s -c 10 -q {}` (10 connections, each at most {} req/s), signed in with a session \
             cookie; release build; the baseline column is `/healthz` at the same rate.",
            rate / 10,
            rate / 10
        )],
    );
    server.stop().await?;
    site.drop_database(ctx).await
}

/// Starts a backup through the admin API and waits for it; (seconds, bytes copied, objects copied,
/// snapshot bytes) as the run recorded them.
async fn backup_once(site: &Site, admin: &User) -> Result<(f64, i64, i32, i64)> {
    // The server backs up once when it starts on a database that has no backup yet: let that end.
    loop {
        let running: bool =
            sqlx::query_scalar("select exists(select 1 from backup_runs where status = 'running')")
                .fetch_one(&site.pool)
                .await?;
        if !running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The run that just ended may still hold its lock for a moment: 409 means try again shortly.
    let mut tries = 0;
    let id = loop {
        match admin.post_form("/api/admin/backups/run", &[]).await {
            Err(err) if err.to_string().contains("409") && tries < 100 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => break other?,
        }
    };
    let id: uuid::Uuid = id.as_str().context("a run id")?.parse()?;
    loop {
        let row: (String, Option<f64>, i64, i32, i64, Option<String>) = sqlx::query_as(
            "select status, extract(epoch from finished_at - started_at)::float8, bytes_copied, \
             objects_copied, snapshot_bytes, error from backup_runs where id = $1",
        )
        .bind(id)
        .fetch_one(&site.pool)
        .await?;
        match row.0.as_str() {
            "running" => tokio::time::sleep(Duration::from_millis(50)).await,
            "complete" => return Ok((row.1.unwrap_or(f64::NAN), row.2, row.3, row.4)),
            other => bail!("the backup ended {other}: {}", row.5.unwrap_or_default()),
        }
    }
}

/// The baseline of a backup: every object of `from` streamed into `to` under the same key.
/// Objects the plain copy moves at once: as many as a backup copies.
const PLAIN_COPIES_AT_ONCE: usize = 8;

async fn plain_copy(from: &Bucket, to: &Bucket) -> Result<(f64, u64)> {
    let (source, target) = (from.client(), to.client());
    let started = Instant::now();
    let mut keys = Vec::new();
    let mut pages = source
        .list_objects_v2()
        .bucket(&from.name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        keys.extend(
            page?
                .contents()
                .iter()
                .filter_map(|object| object.key().map(str::to_owned)),
        );
    }
    // As many objects at once as a backup copies (its FILES_AT_ONCE).
    let copied: Vec<u64> = stream::iter(keys)
        .map(|key| {
            let (source, target) = (&source, &target);
            async move {
                let object = source.get_object().bucket(&from.name).key(&key).send().await?;
                let data = object.body.collect().await?.into_bytes();
                let bytes = data.len() as u64;
                target
                    .put_object()
                    .bucket(&to.name)
                    .key(&key)
                    .body(ByteStream::from(data))
                    .send()
                    .await?;
                Ok::<_, anyhow::Error>(bytes)
            }
        })
        .buffer_unordered(PLAIN_COPIES_AT_ONCE)
        .try_collect()
        .await?;
    Ok((started.elapsed().as_secs_f64(), copied.iter().sum()))
}

/// Full and incremental backups, the table dump beside pg_dump, and a restore.
async fn backup_rows(ctx: &Ctx, stores: &Stores, report: &mut Report) -> Result<()> {
    let scale = ctx.scale;
    let site = Site::fresh(ctx, stores).await?;
    let (server, _) = site.serve().await?;
    site.pawfile(&["seed-demo"], &[]).await?;
    let admin = User::login(&server.base, "admin@pawfile.test", "admin-demo-pass").await?;
    let owner = User::owner(&site.pool, &server.base, "backup@example.org").await?;
    let pet = owner.create_pet("Backup").await?;
    let seeding = Instant::now();
    stream::iter(0..scale.backup_files)
        .map(|_| owner.upload(&pet, MIB))
        .buffer_unordered(8)
        .try_collect::<Vec<_>>()
        .await?;
    eprintln!(
        "seeded {} documents of 1 MiB in {:.1} s",
        scale.backup_files,
        seeding.elapsed().as_secs_f64()
    );
    let mut lines = Vec::new();
    let gib = scale.backup_files as f64 / 1024.0;

    let s3_pids = stores.s3_pids();
    let mut spent_backup = Spent::new(server.pid, &s3_pids);
    let (backed_up, _) = spent_backup.measure(backup_once(&site, &admin)).await;
    let (full, copied, objects, _) = backed_up?;
    let copy = site.backups.named(format!("{}-plain", site.backups.name));
    copy.create().await?;
    let mut spent_plain = Spent::new(server.pid, &s3_pids);
    let (plain_copied, _) = spent_plain.measure(plain_copy(&site.documents, &copy)).await;
    let (plain, plain_bytes) = plain_copied?;
    let mut notes = vec![format!(
        "CPU time by process during the full backup and the plain copy, per GiB copied (the plain copy runs \
         in this harness, the client): backup {}; plain copy {}; {}.",
        spent_backup.per_gib(copied as f64),
        spent_plain.per_gib(plain_bytes as f64),
        spent_backup.ceiling(copied as f64, &spent_plain, plain_bytes as f64)
    )];
    lines.push(
        Line::new(
            format!(
                "full backup of {gib:.2} GiB in {} documents (1 run)",
                scale.backup_files
            ),
            format!(
                "{full:.1} s, {:.0} MiB/s ({objects} objects, {:.0} MiB written)",
                copied as f64 / MIB as f64 / full,
                copied as f64 / MIB as f64
            ),
            format!(
                "{plain:.1} s, {:.0} MiB/s (plain GET + PUT, {PLAIN_COPIES_AT_ONCE} at a time)",
                plain_bytes as f64 / MIB as f64 / plain
            ),
        )
        .ratio(plain / full)
        .goal("≥ 0.8×"),
    );

    // Bring the database to the total number of documents with small files, back them up, then
    // measure a backup with nothing changed.
    let seeding = Instant::now();
    stream::iter(0..scale.backup_total_files.saturating_sub(scale.backup_files))
        .map(|_| owner.upload(&pet, 4 * 1024))
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    eprintln!(
        "seeded up to {} documents in {:.1} s",
        scale.backup_total_files,
        seeding.elapsed().as_secs_f64()
    );
    backup_once(&site, &admin).await?;
    let mut incremental = Vec::new();
    let mut incremental_bytes = Vec::new();
    let mut incremental_objects = Vec::new();
    for _ in 0..scale.runs {
        let (seconds, bytes, objects, _) = backup_once(&site, &admin).await?;
        incremental.push(seconds);
        incremental_bytes.push(bytes);
        incremental_objects.push(objects);
    }
    let mut dumps = Vec::new();
    for _ in 0..scale.runs {
        let started = Instant::now();
        let status = Command::new("pg_dump")
            .args(["--format=custom", "--no-sync", "--file=/dev/null", &site.url])
            .stdin(Stdio::null())
            .status()
            .await?;
        if !status.success() {
            bail!("pg_dump failed");
        }
        dumps.push(started.elapsed().as_secs_f64());
    }
    let (incremental, dumps) = (Sample::of(incremental), Sample::of(dumps));
    lines.push(
        Line::new(
            format!("no-change incremental of {} documents", scale.backup_total_files),
            format!(
                "{} (written: {} objects, {:.1} MiB: the table dumps and manifest; files: none)",
                incremental.show("s"),
                incremental_objects.iter().max().copied().unwrap_or_default(),
                incremental_bytes.iter().max().copied().unwrap_or_default() as f64 / MIB as f64
            ),
            format!("{} (`pg_dump -Fc` of the same database)", dumps.show("s")),
        )
        .ratio(dumps.median() / incremental.median())
        .goal("0 file bytes, ≤ 5 s"),
    );

    // Restore the newest snapshot into a fresh database and bucket with `pawfile restore`.
    let target_database = format!("{}_restore", site.database);
    sqlx::query(&format!("create database {target_database}"))
        .execute(&ctx.admin)
        .await?;
    let mut target_url: url::Url = ctx.database_url.parse()?;
    target_url.set_path(&target_database);
    let target_bucket = site.documents.named(format!("{}-restore", site.documents.name));
    target_bucket.create().await?;
    let snapshot_bytes: i64 = sqlx::query_scalar(
        "select snapshot_bytes from backup_runs where status = 'complete' order by started_at desc limit 1",
    )
    .fetch_one(&site.pool)
    .await?;
    let mut spent_restore = Spent::new(server.pid, &s3_pids);
    let (restored, restore) = spent_restore
        .measure(site.pawfile(
            &[
                "restore",
                "latest",
                "--identity",
                &site.identity.display().to_string(),
            ],
            &[
                ("DATABASE_URL".to_owned(), target_url.to_string()),
                ("PAWFILE_S3_BUCKET".to_owned(), target_bucket.name.clone()),
            ],
        ))
        .await;
    restored?;
    lines.push(
        Line::new(
            format!(
                "restore of the newest snapshot ({:.2} GiB)",
                snapshot_bytes as f64 / (1024.0 * MIB as f64)
            ),
            format!(
                "{restore:.1} s, {:.0} MiB/s",
                snapshot_bytes as f64 / MIB as f64 / restore
            ),
            format!("{plain:.1} s (the plain copy above)"),
        )
        .ratio(plain / restore),
    );
    notes.push(format!(
        "CPU time by process during the restore, per GiB restored (the client is the `pawfile restore` \
         process, counted with this harness once it has exited): {}.",
        spent_restore.per_gib(snapshot_bytes as f64)
    ));
    sqlx::query(&format!("drop database {target_database} with (force)"))
        .execute(&ctx.admin)
        .await?;
    report.section(
        format!("Backups ({})", stores.backend.name()),
        lines,
        {
            notes.insert(
                0,
                format!(
                    "Backups are encrypted (age, one recipient) and started through `POST /api/admin/backups/run`; \
                     times are the run's own (started to finished, from `backup_runs`). The plain copy moves every \
                     object of the documents bucket into a fresh bucket on the backup store, {PLAIN_COPIES_AT_ONCE} at \
                     a time (as many as a backup copies), with aws-sdk-s3. Restore is `pawfile restore latest` into an \
                     empty database and bucket (a process of its own)."
                ),
            );
            notes
        },
    );
    server.stop().await?;
    site.drop_database(ctx).await
}

/// Process start to `/readyz` answering 200 on a database that is already migrated.
async fn startup_rows(ctx: &Ctx, stores: &Stores, report: &mut Report) -> Result<()> {
    let site = Site::fresh(ctx, stores).await?;
    let (server, first) = site.serve().await?;
    site.pawfile(&["seed-demo"], &[]).await?;
    server.stop().await?;
    let mut times = Vec::new();
    for _ in 0..ctx.scale.runs.max(5) {
        let (server, ready) = site.serve().await?;
        times.push(ready.as_secs_f64() * 1000.0);
        server.stop().await?;
    }
    let times = Sample::of(times);
    report.section(
        format!("Start-up ({})", stores.backend.name()),
        vec![Line::new(
            "process start to `/readyz` 200 (existing database)",
            times.show("ms"),
            format!(
                "{:.0} ms (first start: migrations on an empty database)",
                first.as_secs_f64() * 1000.0
            ),
        )],
        vec![],
    );
    site.drop_database(ctx).await
}

// ---------------------------------------------------------------------------------------------------
// The chart

fn chart(bars: &[Bar]) -> String {
    let (left, bar_height, gap, width) = (230.0, 12.0, 10.0, 420.0);
    let top = 40.0;
    let most = bars
        .iter()
        .flat_map(|bar| [bar.pawfile, bar.baseline])
        .filter(|value| value.is_finite())
        .fold(1.0_f64, f64::max);
    let height = top + bars.len() as f64 * (2.0 * bar_height + gap) + 30.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n\
         <text x=\"10\" y=\"18\" font-size=\"14\" font-weight=\"bold\">Throughput by object size (MiB/s, median)</text>\n\
         <rect x=\"{left}\" y=\"26\" width=\"10\" height=\"10\" fill=\"#2f6fb2\"/><text x=\"{}\" y=\"35\">Pawfile</text>\n\
         <rect x=\"{}\" y=\"26\" width=\"10\" height=\"10\" fill=\"#9aa3ad\"/><text x=\"{}\" y=\"35\">aws-sdk-s3 straight to S3</text>\n",
        left + width + 80.0,
        left + 14.0,
        left + 90.0,
        left + 104.0
    );
    for (index, bar) in bars.iter().enumerate() {
        let y = top + index as f64 * (2.0 * bar_height + gap);
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            left - 6.0,
            y + bar_height + 4.0,
            bar.label
        );
        for (offset, value, colour) in [
            (0.0, bar.pawfile, "#2f6fb2"),
            (bar_height, bar.baseline, "#9aa3ad"),
        ] {
            let length = if value.is_finite() {
                value / most * width
            } else {
                0.0
            };
            let _ = writeln!(
                svg,
                "<rect x=\"{left}\" y=\"{}\" width=\"{length:.1}\" height=\"{}\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{}\">{}</text>",
                y + offset,
                bar_height - 1.0,
                left + length + 4.0,
                y + offset + bar_height - 2.0,
                num(value)
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

// ---------------------------------------------------------------------------------------------------

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|name| name.trim().to_owned())
        })
        .unwrap_or_default();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("MemTotal:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{cores} cores ({cpu}), {memory:.0} GiB memory")
}

fn git(root: &Path, args: &[&str]) -> String {
    std::process::Command::new("git")
        .args(args)
        .current_dir(root)
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The code a run measured, read when it starts (before it writes its own results).
struct Source {
    commit: String,
    /// Changes beside the commit, other than the results a previous run wrote.
    dirty: bool,
    date: String,
}

impl Source {
    fn read(root: &Path) -> Self {
        Self {
            commit: git(root, &["rev-parse", "--short", "HEAD"]),
            dirty: !git(
                root,
                &[
                    "status",
                    "--porcelain",
                    "--untracked-files=no",
                    "--",
                    ".",
                    ":!BENCHMARKS.md",
                    ":!app/benches/throughput.svg",
                ],
            )
            .is_empty(),
            date: git(root, &["log", "-1", "--format=%cs"]),
        }
    }
}

fn markdown(
    report: &Report,
    args: &Args,
    root: &Path,
    source: &Source,
    chart_name: Option<&str>,
    elapsed: Duration,
) -> String {
    let Source { commit, dirty, date } = source;
    let mut out = String::from("# Benchmarks\n\n");
    let _ = writeln!(
        out,
        "The latest run of `{}`{} ({} minutes). Every number below came from that command; it never fails for \
         being slow. How it measures: [app/benches/harness.rs](app/benches/harness.rs).\n",
        args.command,
        if args.quick {
            " (quick: smaller sizes, not for the record)"
        } else {
            ""
        },
        (elapsed.as_secs_f64() / 60.0).ceil()
    );
    let _ = writeln!(out, "- Machine: {}", machine());
    let _ = writeln!(
        out,
        "- Commit: `{commit}`{} (committed {date}); release build (`cargo bench` profile: thin LTO)",
        if *dirty { " with uncommitted changes" } else { "" }
    );
    let _ = writeln!(
        out,
        "- Processes: this client, the Pawfile server, each S3 endpoint and PostgreSQL 15 are separate \
         processes on this one machine, so they share its cores."
    );
    let _ = writeln!(out, "- Limits raised for the run (default in brackets):");
    for (name, value, default) in LIMITS {
        let _ = writeln!(out, "  `{name}={value}` ({default})");
    }
    let _ = writeln!(
        out,
        "- Garage's backup bucket is on the same Garage server with the same key (the server warns: not \
         separate storage); the embedded runs use a second embedded endpoint with its own key, as `pawfile \
         serve` does.\n"
    );
    if let Some(name) = chart_name {
        let _ = writeln!(
            out,
            "![Throughput by object size, Pawfile beside aws-sdk-s3]({name})\n"
        );
    }
    for (title, lines, notes) in &report.sections {
        let _ = writeln!(out, "## {title}\n");
        out.push_str(&table(lines));
        out.push('\n');
        for note in notes {
            let _ = writeln!(out, "{note}\n");
        }
    }
    // What the profiles showed and what is left: written by people, kept beside the harness, and
    // repeated under every run's numbers.
    if let Ok(findings) = std::fs::read_to_string(root.join("app/benches/findings.md")) {
        out.push_str(&findings);
    }
    out
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(folder) = &args.serve_s3 {
        return serve_s3(folder).await;
    }
    let rows: Vec<Row> = if args.rows.is_empty() {
        Row::value_variants().to_vec()
    } else {
        args.rows.clone()
    };
    let backends = args.s3.clone();
    let first = *backends.first().context("choose at least one S3 endpoint")?;
    let database_url = std::env::var("DATABASE_URL").context("set DATABASE_URL (scripts/bench does)")?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the workspace")?
        .to_owned();
    let source = Source::read(&root);
    let work = tempfile::Builder::new().prefix("pawfile-bench-").tempdir()?;
    let ctx = Ctx {
        admin: PgPool::connect(&database_url).await?,
        database_url,
        work: work.path().to_owned(),
        root: root.clone(),
        scale: Scale::new(args.quick),
        hold: args.hold,
    };
    let started = Instant::now();
    let mut report = Report::default();
    println!("# Pawfile benchmarks: {}", machine());
    let mut stores = Vec::new();
    for backend in &backends {
        stores.push(Stores::start(*backend, &ctx.work.join(backend.name())).await?);
    }
    let main_stores = &stores[0];
    debug_assert_eq!(main_stores.backend, first);
    let mut failures = Vec::new();
    if rows.contains(&Row::Upload) || rows.contains(&Row::Download) {
        for store in &stores {
            let result = transfer_rows(&ctx, store, &rows, &mut report).await;
            note_failure(&mut failures, "upload/download", store, result);
        }
    }
    if rows.contains(&Row::Memory) {
        let result = memory_rows(&ctx, main_stores, &mut report).await;
        note_failure(&mut failures, "memory", main_stores, result);
    }
    if rows.contains(&Row::Concurrency) {
        let result = concurrency_rows(&ctx, main_stores, &mut report).await;
        note_failure(&mut failures, "concurrency", main_stores, result);
    }
    if rows.contains(&Row::Pages) {
        let result = pages_rows(&ctx, main_stores, &mut report).await;
        note_failure(&mut failures, "pages", main_stores, result);
    }
    if rows.contains(&Row::Backup) {
        let result = backup_rows(&ctx, main_stores, &mut report).await;
        note_failure(&mut failures, "backup", main_stores, result);
    }
    if rows.contains(&Row::Startup) {
        let result = startup_rows(&ctx, main_stores, &mut report).await;
        note_failure(&mut failures, "startup", main_stores, result);
    }
    if !failures.is_empty() {
        report.section("Rows that could not be measured", Vec::new(), failures.clone());
    }
    let elapsed = started.elapsed();
    if let Some(out) = &args.out {
        // Beside the harness when the results go to the repository's root, else beside the results.
        let chart_name = (!report.bars.is_empty()).then(|| {
            let at_root = out.parent().is_some_and(|parent| parent == root);
            let name = if at_root {
                "app/benches/throughput.svg"
            } else {
                "throughput.svg"
            };
            (out.with_file_name(name), name)
        });
        if let Some((path, _)) = &chart_name {
            std::fs::write(path, chart(&report.bars))?;
        }
        std::fs::write(
            out,
            markdown(
                &report,
                &args,
                &root,
                &source,
                chart_name.map(|(_, name)| name),
                elapsed,
            ),
        )?;
        println!("\nwrote {}", out.display());
    }
    if failures.is_empty() {
        Ok(())
    } else {
        bail!("{} row(s) could not be measured", failures.len())
    }
}

/// Keeps a row's error for the report (the other rows still run).
fn note_failure(failures: &mut Vec<String>, row: &str, stores: &Stores, result: Result<()>) {
    if let Err(err) = result {
        eprintln!("the {row} row ({}) failed: {err:#}", stores.backend.name());
        failures.push(format!("- {row} ({}): {err:#}", stores.backend.name()));
    }
}
