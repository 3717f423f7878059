//! UTC calendar dates for the `date=` partition, without a calendar dependency.

use crate::Timestamp;

/// Days since the Unix epoch (UTC) of a timestamp.
pub(crate) fn utc_day(ts: Timestamp) -> i64 {
    ts.as_micros().div_euclid(86_400_000_000)
}

/// `YYYY-MM-DD` (UTC) of a timestamp.
#[cfg(test)]
fn utc_date(ts: Timestamp) -> String {
    day_to_date(utc_day(ts))
}

/// `YYYY-MM-DD` of a day number (Howard Hinnant's `civil_from_days`).
pub(crate) fn day_to_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(utc_date(Timestamp::from_secs(0)), "1970-01-01");
        assert_eq!(utc_date(Timestamp::from_secs(-1)), "1969-12-31");
        assert_eq!(utc_date(Timestamp::from_secs(951_782_400)), "2000-02-29");
        assert_eq!(utc_date(Timestamp::from_secs(1_798_761_599)), "2026-12-31");
        assert_eq!(utc_date(Timestamp::from_secs(1_798_761_600)), "2027-01-01");
    }
}

/// Day number of a `YYYY-MM-DD` date (Howard Hinnant's `days_from_civil`).
pub(crate) fn date_to_day(date: &str) -> Option<i64> {
    let mut parts = date.splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod round_trip {
    #[test]
    fn dates_and_days_agree() {
        // Years 0001 to 4160.
        for day in -719_000..800_000i64 {
            if day % 997 == 0 {
                assert_eq!(super::date_to_day(&super::day_to_date(day)), Some(day));
            }
        }
        assert_eq!(super::date_to_day("2026-13-01"), None);
    }
}
