//! Backup and restore throughput, side by side with a baseline: a plain streamed GET + PUT copy of the
//! same objects from the documents bucket to another bucket (no encryption, no database), on the same
//! S3 endpoint in the same run. Rows: full backup (fresh backup bucket), incremental backup (nothing
//! changed), restore (fresh database and documents bucket). Median of `PAWFILE_BENCH_RUNS` runs (default
//! 3) with min and max.
//!
//! Needs `DATABASE_URL` (a role that may create databases). Data: `PAWFILE_BENCH_BACKUP_FILES` files
//! (default 32) of `PAWFILE_BENCH_BACKUP_FILE_MIB` MiB (default 4).
//! Run: `cargo bench -p pawfile-app --bench backup` (or `scripts/bench`).

// A benchmark's printed table is its result.
#![allow(clippy::print_stdout)]

use bytes::Bytes;
use futures::{StreamExt, stream};
use pawfile::{
    access::Actor,
    auth::{NewUser, PasswordHasher, create_user, load_session_user},
    backup::{
        Backups, Identities, Policy, Recipients, Retention, StartedBy, Trigger,
        crypto::generate_key_pair,
        restore::{Quiet, Which, restore},
    },
    documents::{UploadBatch, UploadDetails, upload::Policy as UploadPolicy},
    domain::{DisplayName, Email, NewPassword, PetDetails, PetForm, Role, Roles},
    storage::ObjectStore,
    testing::TestBucket,
};
use sqlx::PgPool;
use std::{io::Write, time::Instant};
use tokio_util::sync::CancellationToken;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn file(size: usize, seed: u8) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.extend((0..size - 9).map(|i| ((i % 251) as u8).wrapping_add(seed)));
    bytes
}

async fn database(admin: &PgPool, url: &str, name: &str) -> anyhow::Result<PgPool> {
    sqlx::query(&format!("create database {name}"))
        .execute(admin)
        .await?;
    let mut url: url::Url = url.parse()?;
    url.set_path(name);
    Ok(PgPool::connect(url.as_str()).await?)
}

/// The baseline: every object of `from` streamed into `to` under the same key, as a copy tool would.
async fn plain_copy(from: &ObjectStore, to: &ObjectStore) -> anyhow::Result<u64> {
    let mut bytes = 0;
    for object in from.list("").await? {
        let mut body = from.get_stream(&object.key, None).await?.into_stream();
        let mut writer = to.writer(&object.key);
        while let Some(chunk) = body.next().await {
            writer.write(chunk?).await?;
        }
        bytes += writer.finish().await?.size;
        writer.keep();
    }
    Ok(bytes)
}

struct Row {
    name: &'static str,
    seconds: Vec<f64>,
}

impl Row {
    fn median(&self) -> f64 {
        let mut sorted = self.seconds.clone();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let files = env_u64("PAWFILE_BENCH_BACKUP_FILES", 32);
    let file_mib = env_u64("PAWFILE_BENCH_BACKUP_FILE_MIB", 4);
    let runs = env_u64("PAWFILE_BENCH_RUNS", 3).max(1);
    let url = std::env::var("DATABASE_URL").map_err(|_| anyhow::anyhow!("set DATABASE_URL"))?;
    let admin = PgPool::connect(&url).await?;
    let prefix = format!("pawfile_bench_backup_{}", std::process::id());
    let pool = database(&admin, &url, &prefix).await?;
    pawfile::db::MIGRATOR.run(&pool).await?;

    // An owner, a pet, and the files, uploaded through the core's upload path.
    let documents = TestBucket::embedded().await;
    let user = create_user(
        &pool,
        &PasswordHasher::new(1),
        NewUser {
            email: Email::parse("bench@example.org")?,
            display_name: DisplayName::parse("Bench")?,
            password: NewPassword::parse("benchmark password")?,
            roles: Roles::new([Role::Owner]),
            clinic_id: None,
        },
    )
    .await?;
    let actor = Actor::new(
        load_session_user(&pool, user, 0)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the bench user"))?,
        None,
    );
    let details = PetDetails::parse(
        &PetForm {
            name: "Bench".into(),
            species: "dog".into(),
            ..PetForm::default()
        },
        time::OffsetDateTime::now_utc().date(),
    )?;
    let pet = pawfile::pets::create_pet(&pool, &actor, &details).await?;
    for n in 0..files {
        let bytes = file((file_mib * 1024 * 1024) as usize, n as u8);
        let policy = UploadPolicy {
            max_bytes: u64::MAX,
            accepted: vec!["application/pdf".to_owned()],
        };
        let mut batch = UploadBatch::begin(&pool, &documents.store, policy, &actor, pet).await?;
        let chunks: Vec<Result<Bytes, std::io::Error>> = bytes
            .chunks(256 * 1024)
            .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
            .collect();
        batch.add_file("scan.pdf", stream::iter(chunks)).await?;
        batch.finish(UploadDetails::default()).await?;
    }
    let total_mib = (files * file_mib) as f64;

    let (identity_text, public) = generate_key_pair();
    let mut identity_file = tempfile::NamedTempFile::new()?;
    identity_file.write_all(identity_text.as_bytes())?;
    let identities = Identities::from_files(&[identity_file.path()]).map_err(anyhow::Error::msg)?;
    let policy = Policy {
        recipients: Recipients::parse(&public).map_err(anyhow::Error::msg)?,
        allow_unencrypted: false,
        retention: Retention::default(),
        prune: false,
        pace: None,
    };
    let by = StartedBy {
        trigger: Trigger::Cli,
        user: None,
        client_addr: None,
    };

    let mut rows = vec![
        Row {
            name: "baseline: plain GET + PUT copy",
            seconds: Vec::new(),
        },
        Row {
            name: "full backup (encrypted)",
            seconds: Vec::new(),
        },
        Row {
            name: "incremental backup (no change)",
            seconds: Vec::new(),
        },
        Row {
            name: "restore (database and files)",
            seconds: Vec::new(),
        },
    ];
    for run in 0..runs {
        let copy_target = TestBucket::embedded().await;
        let started = Instant::now();
        plain_copy(&documents.store, &copy_target.store).await?;
        rows[0].seconds.push(started.elapsed().as_secs_f64());

        let backup_bucket = TestBucket::embedded().await;
        // A fresh catalogue each run: the catalogue tables are emptied so the run is a full one.
        sqlx::query(
            "truncate backup_snapshot_objects, backup_uploads, backup_objects, backup_drills, backup_runs",
        )
        .execute(&pool)
        .await?;
        let backups = Backups::new(
            pool.clone(),
            documents.store.clone(),
            backup_bucket.store.clone(),
            policy.clone(),
            CancellationToken::new(),
        );
        let started = Instant::now();
        backups.run(by).await?.ok_or_else(|| anyhow::anyhow!("locked"))?;
        rows[1].seconds.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        backups.run(by).await?.ok_or_else(|| anyhow::anyhow!("locked"))?;
        rows[2].seconds.push(started.elapsed().as_secs_f64());

        let target = database(&admin, &url, &format!("{prefix}_restore_{run}")).await?;
        let target_bucket = TestBucket::embedded().await;
        let started = Instant::now();
        restore(
            &target,
            &target_bucket.store,
            &backup_bucket.store,
            Which::Latest,
            Some(&identities),
            &Quiet,
        )
        .await?;
        rows[3].seconds.push(started.elapsed().as_secs_f64());
        target.close().await;
        sqlx::query(&format!("drop database {prefix}_restore_{run} with (force)"))
            .execute(&admin)
            .await?;
    }

    let baseline = rows[0].median();
    println!(
        "backup and restore of {files} files x {file_mib} MiB ({total_mib} MiB), embedded S3 on loopback, {runs} runs"
    );
    println!(
        "{:<34} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "", "median s", "min s", "max s", "MiB/s", "ratio"
    );
    for row in &rows {
        let median = row.median();
        let min = row.seconds.iter().copied().fold(f64::INFINITY, f64::min);
        let max = row.seconds.iter().copied().fold(0.0, f64::max);
        println!(
            "{:<34} {:>10.2} {:>10.2} {:>10.2} {:>10.1} {:>8.2}",
            row.name,
            median,
            min,
            max,
            total_mib / median,
            baseline / median
        );
    }
    println!("ratio: the baseline's time over the row's (1.00 = as fast as a plain copy; higher is faster)");

    pool.close().await;
    sqlx::query(&format!("drop database {prefix} with (force)"))
        .execute(&admin)
        .await?;
    Ok(())
}
