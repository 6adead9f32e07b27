//! Which snapshots to keep: restic's meaning, in UTC. Keep the newest complete snapshot of each of the
//! last N days, M ISO weeks and K months that have one; always keep the newest snapshot and the newest
//! one a drill passed. A pure function, so the policy is tested without a bucket.

use std::{collections::HashSet, fmt, str::FromStr};
use time::OffsetDateTime;
use uuid::Uuid;

/// How many days, weeks and months keep a snapshot each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Daily snapshots kept.
    pub days: u32,
    /// Weekly (ISO week) snapshots kept.
    pub weeks: u32,
    /// Monthly snapshots kept.
    pub months: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            days: 7,
            weeks: 4,
            months: 12,
        }
    }
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}d,{}w,{}m", self.days, self.weeks, self.months)
    }
}

impl FromStr for Retention {
    type Err = String;

    /// `7d,4w,12m`: any of the three, in any order; a missing one keeps none of its kind.
    fn from_str(text: &str) -> Result<Self, String> {
        let mut retention = Retention {
            days: 0,
            weeks: 0,
            months: 0,
        };
        let mut seen = HashSet::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (number, unit) = part.split_at(part.len() - 1);
            let count: u32 = number
                .parse()
                .map_err(|_| format!("{part:?}: expected a count and d, w or m, such as 7d,4w,12m"))?;
            if !seen.insert(unit.to_owned()) {
                return Err(format!("{part:?}: {unit} is given twice"));
            }
            match unit {
                "d" => retention.days = count,
                "w" => retention.weeks = count,
                "m" => retention.months = count,
                _ => {
                    return Err(format!(
                        "{part:?}: the unit must be d, w or m (such as 7d,4w,12m)"
                    ));
                }
            }
        }
        Ok(retention)
    }
}

impl Retention {
    /// How many days the oldest kept snapshot may be old: the longest of the three horizons (a month
    /// counted as 31 days), at least one.
    pub fn horizon_days(&self) -> u32 {
        self.days
            .max(self.weeks.saturating_mul(7))
            .max(self.months.saturating_mul(31))
            .max(1)
    }
}

/// A complete snapshot, as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Its id.
    pub id: Uuid,
    /// When it was taken.
    pub at: OffsetDateTime,
}

/// The snapshots to keep from `snapshots` (complete ones, in any order).
pub fn keep(snapshots: &[Snapshot], policy: Retention, newest_drilled: Option<Uuid>) -> HashSet<Uuid> {
    let mut newest_first = snapshots.to_vec();
    newest_first.sort_by(|a, b| b.at.cmp(&a.at).then(b.id.cmp(&a.id)));
    let mut kept = HashSet::new();
    if let Some(newest) = newest_first.first() {
        kept.insert(newest.id);
    }
    if let Some(drilled) = newest_drilled.filter(|id| snapshots.iter().any(|s| s.id == *id)) {
        kept.insert(drilled);
    }
    let mut bucket = |count: u32, key: &dyn Fn(OffsetDateTime) -> (i32, u32)| {
        let mut buckets = HashSet::new();
        for snapshot in &newest_first {
            if buckets.len() as u32 >= count {
                break;
            }
            if buckets.insert(key(snapshot.at.to_offset(time::UtcOffset::UTC))) {
                kept.insert(snapshot.id);
            }
        }
    };
    bucket(policy.days, &|at| (at.year(), u32::from(at.ordinal())));
    bucket(policy.weeks, &|at| {
        let (year, week, _) = at.to_iso_week_date();
        (year, u32::from(week))
    });
    bucket(policy.months, &|at| (at.year(), u32::from(u8::from(at.month()))));
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn snap(n: u128, at: OffsetDateTime) -> Snapshot {
        Snapshot {
            id: Uuid::from_u128(n),
            at,
        }
    }

    fn ids(kept: &HashSet<Uuid>) -> Vec<u128> {
        let mut ids: Vec<u128> = kept.iter().map(|id| id.as_u128()).collect();
        ids.sort_unstable();
        ids
    }

    #[test]
    fn the_horizon_is_the_longest_kind_kept() {
        assert_eq!(Retention::default().horizon_days(), 372);
        assert_eq!("10d".parse::<Retention>().unwrap().horizon_days(), 10);
        assert_eq!("2d,3w".parse::<Retention>().unwrap().horizon_days(), 21);
        assert_eq!("".parse::<Retention>().unwrap().horizon_days(), 1);
    }

    #[test]
    fn the_setting_parses_and_prints() {
        assert_eq!("7d,4w,12m".parse::<Retention>().unwrap(), Retention::default());
        assert_eq!(Retention::default().to_string(), "7d,4w,12m");
        assert_eq!(
            "2w".parse::<Retention>().unwrap(),
            Retention {
                days: 0,
                weeks: 2,
                months: 0
            }
        );
        assert!("7x".parse::<Retention>().is_err());
        assert!("d".parse::<Retention>().is_err());
        assert!("1d,2d".parse::<Retention>().is_err());
    }

    #[test]
    fn the_newest_of_each_day_is_kept_for_n_days_that_have_one() {
        // Two a day for five days, then a gap, then two older days.
        let mut history = Vec::new();
        for day in 0..5u8 {
            history.push(snap(
                u128::from(day) * 2,
                datetime!(2026-11-20 02:00 UTC) + time::Duration::days(i64::from(day)),
            ));
            history.push(snap(
                u128::from(day) * 2 + 1,
                datetime!(2026-11-20 14:00 UTC) + time::Duration::days(i64::from(day)),
            ));
        }
        history.push(snap(100, datetime!(2026-11-10 02:00 UTC)));
        history.push(snap(101, datetime!(2026-11-09 02:00 UTC)));
        let policy = Retention {
            days: 6,
            weeks: 0,
            months: 0,
        };
        // The evening snapshot of each of the five days, and the sixth day that has one (11-10).
        assert_eq!(ids(&keep(&history, policy, None)), vec![1, 3, 5, 7, 9, 100]);
    }

    #[test]
    fn weeks_are_iso_weeks_and_months_are_calendar_months_in_utc() {
        let history = [
            snap(1, datetime!(2026-11-30 01:00 UTC)),    // Monday, week 49
            snap(2, datetime!(2026-11-29 23:00 UTC)),    // Sunday, week 48, November
            snap(3, datetime!(2026-11-23 10:00 UTC)),    // week 48
            snap(4, datetime!(2026-10-31 23:30 -02:00)), // 1 November 01:30 UTC: week 44, November
            snap(5, datetime!(2026-10-15 10:00 UTC)),
            snap(6, datetime!(2026-09-15 10:00 UTC)),
        ];
        let weeks = Retention {
            days: 0,
            weeks: 2,
            months: 0,
        };
        assert_eq!(ids(&keep(&history, weeks, None)), vec![1, 2]);
        let months = Retention {
            days: 0,
            weeks: 0,
            months: 3,
        };
        // November's newest is 1; October's is 5 (4 is November in UTC); September's is 6.
        assert_eq!(ids(&keep(&history, months, None)), vec![1, 5, 6]);
    }

    #[test]
    fn the_newest_and_the_newest_drilled_are_always_kept() {
        let history = [
            snap(1, datetime!(2026-11-30 02:00 UTC)),
            snap(2, datetime!(2026-11-29 02:00 UTC)),
            snap(3, datetime!(2026-11-28 02:00 UTC)),
        ];
        let nothing = Retention {
            days: 0,
            weeks: 0,
            months: 0,
        };
        assert_eq!(ids(&keep(&history, nothing, None)), vec![1]);
        assert_eq!(
            ids(&keep(&history, nothing, Some(Uuid::from_u128(3)))),
            vec![1, 3]
        );
        // A drilled snapshot that is not in the list (already gone) changes nothing.
        assert_eq!(ids(&keep(&history, nothing, Some(Uuid::from_u128(9)))), vec![1]);
        assert!(keep(&[], Retention::default(), None).is_empty());
    }

    #[test]
    fn the_default_policy_over_a_year_of_dailies_keeps_seven_days_four_weeks_and_twelve_months() {
        let start = datetime!(2025-12-01 02:00 UTC);
        let history: Vec<Snapshot> = (0..365)
            .map(|day| snap(day, start + time::Duration::days(day as i64)))
            .collect();
        let kept = keep(&history, Retention::default(), None);
        // 7 dailies (days 358..=364); weeks and months add the newest of each older week and month.
        for day in 358..365 {
            assert!(kept.contains(&Uuid::from_u128(day)));
        }
        assert!(kept.len() <= 7 + 4 + 12, "{}", kept.len());
        assert!(kept.len() >= 12, "{}", kept.len());
        // The oldest kept is the last snapshot of the twelfth month back (December 2025: day 30).
        assert_eq!(ids(&kept)[0], 30);
    }
}
