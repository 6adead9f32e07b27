//! Time zones: "today" and timestamps as each user reads them.

use crate::domain::Timestamp;
use jiff::tz::TimeZone;
use time::{Date, Month, OffsetDateTime};

fn zone(name: Option<&str>) -> TimeZone {
    name.and_then(|name| TimeZone::get(name).ok())
        .unwrap_or(TimeZone::UTC)
}

/// Whether `name` is a time zone in the IANA database (`Europe/Berlin`).
pub fn is_known_zone(name: &str) -> bool {
    TimeZone::get(name).is_ok()
}

/// Every time zone name, sorted.
pub fn zone_names() -> Vec<String> {
    let mut names: Vec<String> = jiff::tz::db().available().map(|name| name.to_string()).collect();
    names.sort();
    names
}

/// `at` as it reads in time zone `name` (UTC when unknown).
pub fn localize(at: OffsetDateTime, name: Option<&str>) -> Timestamp {
    let local = jiff::Timestamp::from_nanosecond(at.unix_timestamp_nanos())
        .map(|moment| {
            moment
                .to_zoned(zone(name))
                .strftime("%-d %b %Y, %H:%M %Z")
                .to_string()
        })
        .unwrap_or_else(|_| at.to_string());
    Timestamp { utc: at, local }
}

/// Today's date in time zone `name` (UTC when unknown).
pub fn today(name: Option<&str>) -> Date {
    let now = jiff::Zoned::now().with_time_zone(zone(name));
    Month::try_from(now.month() as u8)
        .ok()
        .and_then(|month| Date::from_calendar_date(i32::from(now.year()), month, now.day() as u8).ok())
        .unwrap_or_else(|| OffsetDateTime::now_utc().date())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn timestamps_read_in_the_users_zone() {
        let at = datetime!(2026-11-28 14:05 UTC);
        assert_eq!(
            localize(at, Some("Europe/Berlin")).local,
            "28 Nov 2026, 15:05 CET"
        );
        assert_eq!(
            localize(at, Some("America/New_York")).local,
            "28 Nov 2026, 09:05 EST"
        );
        assert_eq!(localize(at, None).local, "28 Nov 2026, 14:05 UTC");
        assert_eq!(localize(at, Some("Not/AZone")).local, "28 Nov 2026, 14:05 UTC");
    }

    #[test]
    fn zones_are_checked_against_the_database() {
        assert!(is_known_zone("Pacific/Auckland"));
        assert!(!is_known_zone("Mars/Olympus_Mons"));
        assert!(zone_names().iter().any(|name| name == "Europe/Berlin"));
    }

    #[test]
    fn today_is_a_real_date_everywhere() {
        let utc = today(None);
        for zone in ["Pacific/Kiritimati", "Pacific/Pago_Pago"] {
            let local = today(Some(zone));
            assert!((local - utc).whole_days().abs() <= 1, "{zone}: {local} vs {utc}");
        }
    }
}
