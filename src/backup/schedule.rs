//! When backups and restore drills run by themselves: the schedule a setting names, the loop that
//! keeps it on every replica (each slot once, whichever replica comes first), and the weekly drill.

use super::{Backups, Identities, StartedBy, Trigger};
use secrecy::{ExposeSecret, SecretString};
use std::{str::FromStr, sync::Arc, time::Duration};
use tokio_util::sync::CancellationToken;

/// When the server backs up by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupSchedule {
    /// Never (tests, and operators who run `pawfile backup run` from elsewhere).
    Off,
    /// Every day at this UTC time (hour, minute).
    Daily(u8, u8),
    /// Every so often (`every 6h`), in slots counted from the Unix epoch, so every replica agrees on
    /// them. For installations that want more than the daily backup.
    Every(Duration),
}

impl BackupSchedule {
    /// The start of the next slot after `now` (`None` when off): when a scheduled backup runs, and the
    /// instant a run must have started after to count as that slot's.
    pub fn next_after(self, now: time::OffsetDateTime) -> Option<time::OffsetDateTime> {
        let now = now.to_offset(time::UtcOffset::UTC);
        match self {
            Self::Off => None,
            Self::Daily(hour, minute) => {
                let at = time::Time::from_hms(hour, minute, 0).unwrap_or(time::Time::MIDNIGHT);
                let today = now.replace_time(at);
                Some(if today > now {
                    today
                } else {
                    today + time::Duration::days(1)
                })
            }
            Self::Every(every) => {
                let every = i128::from(every.as_secs().max(1)) * 1_000_000_000;
                let nanos = now.unix_timestamp_nanos();
                let next = nanos - nanos.rem_euclid(every) + every;
                Some(time::OffsetDateTime::from_unix_timestamp_nanos(next).unwrap_or(now))
            }
        }
    }
}

impl FromStr for BackupSchedule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.trim().eq_ignore_ascii_case("off") {
            return Ok(Self::Off);
        }
        if let Some(every) = text.trim().strip_prefix("every ") {
            return match humantime::parse_duration(every.trim()) {
                Ok(every) if every >= Duration::from_secs(1) => Ok(Self::Every(every)),
                Ok(_) => Err(format!("{text:?}: at least every 1s")),
                Err(err) => Err(format!("{text:?}: {err}")),
            };
        }
        let parsed = text
            .trim()
            .split_once(':')
            .and_then(|(h, m)| Some((h.parse::<u8>().ok()?, m.parse::<u8>().ok()?)))
            .filter(|(h, m)| *h < 24 && *m < 60 && text.trim().len() == 5);
        parsed.map(|(h, m)| Self::Daily(h, m)).ok_or_else(|| {
            format!("{text:?}: expected HH:MM (UTC, such as 02:00), every DURATION (every 6h) or off")
        })
    }
}

/// What the server's weekly restore drill needs.
#[derive(Debug, Clone)]
pub struct DrillSetup {
    /// The private key(s).
    pub identities: Arc<Identities>,
    /// The scratch database; `None`: the live database's name with `_drill`, created when missing.
    pub database_url: Option<SecretString>,
    /// The live database's URL, to derive the scratch database from.
    pub live_url: SecretString,
}

/// Backups on `schedule` (each slot once, whichever replica comes first: the others find it done or
/// running), and one at start-up when the newest complete backup is older than a day (or there is none).
pub async fn run_backups(backups: Backups, schedule: BackupSchedule, shutdown: CancellationToken) {
    let run = |trigger, since| {
        let backups = backups.clone();
        async move {
            let by = StartedBy {
                trigger,
                user: None,
                client_addr: None,
            };
            match backups.run_unless_done_since(by, since).await {
                Ok(Some(report)) => tracing::info!(run = %report.id, "scheduled backup complete"),
                Ok(None) => tracing::info!("a backup is running elsewhere or this one is done; skipped"),
                Err(err) => tracing::error!(error = %err, "scheduled backup failed"),
            }
        }
    };
    let stale = match super::last_complete(backups.pool()).await {
        Ok(last) => last.is_none_or(|at| time::OffsetDateTime::now_utc() - at > time::Duration::days(1)),
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the last backup time");
            false
        }
    };
    // A run is not raced against `shutdown`: a shutdown cancels it through `Backups`, and it records
    // that (a run dropped half-way would stay `running`).
    if stale && !shutdown.is_cancelled() {
        // Another replica starting at the same moment backs up once between them.
        let since = time::OffsetDateTime::now_utc() - time::Duration::days(1);
        run(Trigger::Startup, Some(since)).await;
    }
    loop {
        let Some(next) = schedule.next_after(time::OffsetDateTime::now_utc()) else {
            return;
        };
        let wait = (next - time::OffsetDateTime::now_utc())
            .try_into()
            .unwrap_or(Duration::ZERO);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        run(Trigger::Schedule, Some(next)).await;
    }
}

/// How often the server looks whether a weekly drill is due.
const DRILL_CHECK_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// The weekly restore drill: checked hourly (first after ten minutes, so a start-up backup goes first);
/// runs when no drill ran for 7 days and there is a snapshot to drill.
pub async fn run_drills(backups: Backups, drill: DrillSetup, shutdown: CancellationToken) {
    let mut wait = Duration::from_secs(10 * 60);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = DRILL_CHECK_INTERVAL;
        match backups.drill_due().await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(err) => {
                tracing::warn!(error = %err, "cannot tell whether a restore drill is due");
                continue;
            }
        }
        let scratch = match &drill.database_url {
            Some(url) => url.clone(),
            None => match scratch_database(&drill.live_url).await {
                Ok(url) => url,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot prepare the drill's scratch database: set PAWFILE_BACKUP_DRILL_DATABASE_URL");
                    continue;
                }
            },
        };
        match backups.drill(&drill.identities, &scratch).await {
            Ok(Some(report)) if report.passed => {
                tracing::info!(snapshot = %report.snapshot, "restore drill passed");
            }
            Ok(Some(report)) => {
                tracing::error!(snapshot = %report.snapshot, problems = ?report.problems, "restore drill FAILED");
            }
            Ok(None) => tracing::info!("a backup runs; the drill waits for the next check"),
            Err(err) => tracing::error!(error = %err, "restore drill could not run"),
        }
    }
}

/// The live database's name with `_drill`, created when missing (needs the CREATEDB right).
async fn scratch_database(live: &SecretString) -> Result<SecretString, String> {
    let mut url = url::Url::parse(live.expose_secret()).map_err(|err| err.to_string())?;
    let name = format!("{}_drill", url.path().trim_start_matches('/'));
    let pool = sqlx::PgPool::connect(live.expose_secret())
        .await
        .map_err(|err| err.to_string())?;
    let exists: bool = sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
        .bind(&name)
        .fetch_one(&pool)
        .await
        .map_err(|err| err.to_string())?;
    if !exists {
        sqlx::query(&format!("create database \"{}\"", name.replace('"', "\"\"")))
            .execute(&pool)
            .await
            .map_err(|err| err.to_string())?;
    }
    pool.close().await;
    url.set_path(&name);
    Ok(SecretString::from(url.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_next_daily_backup_is_today_if_its_time_is_ahead_else_tomorrow() {
        let at_two = BackupSchedule::Daily(2, 0);
        assert_eq!(
            at_two.next_after(datetime!(2026-11-30 01:00 UTC)),
            Some(datetime!(2026-11-30 02:00 UTC))
        );
        assert_eq!(
            at_two.next_after(datetime!(2026-11-30 02:00 UTC)),
            Some(datetime!(2026-12-01 02:00 UTC))
        );
        // 03:00 at UTC+2 is 01:00 UTC: the 02:00 UTC backup is still ahead today.
        assert_eq!(
            at_two.next_after(datetime!(2026-11-30 03:00 +02:00)),
            Some(datetime!(2026-11-30 02:00 UTC))
        );
        assert_eq!(
            BackupSchedule::Daily(0, 15).next_after(datetime!(2026-11-30 23:30 UTC)),
            Some(datetime!(2026-12-01 00:15 UTC))
        );
        assert_eq!(
            BackupSchedule::Off.next_after(datetime!(2026-11-30 23:30 UTC)),
            None
        );
    }

    #[test]
    fn every_replica_agrees_on_the_slots_of_a_schedule_in_hours() {
        let every = BackupSchedule::Every(Duration::from_secs(6 * 60 * 60));
        assert_eq!(
            every.next_after(datetime!(2026-11-30 13:59:59 UTC)),
            Some(datetime!(2026-11-30 18:00 UTC))
        );
        assert_eq!(
            every.next_after(datetime!(2026-11-30 18:00 +00:00)),
            Some(datetime!(2026-12-01 00:00 UTC))
        );
        assert_eq!("every 6h".parse::<BackupSchedule>(), Ok(every));
        assert!("every 0s".parse::<BackupSchedule>().is_err());
        assert!("every".parse::<BackupSchedule>().is_err());
    }

    #[test]
    fn backup_schedules_are_utc_times_or_off() {
        assert_eq!(
            "02:00".parse::<BackupSchedule>().unwrap(),
            BackupSchedule::Daily(2, 0)
        );
        assert_eq!(
            "23:59".parse::<BackupSchedule>().unwrap(),
            BackupSchedule::Daily(23, 59)
        );
        assert_eq!("OFF".parse::<BackupSchedule>().unwrap(), BackupSchedule::Off);
        for bad in ["24:00", "2:00", "02:60", "noon", ""] {
            assert!(bad.parse::<BackupSchedule>().is_err(), "{bad}");
        }
    }
}
