//! UTC calendar dates for the `date=` partition, without a calendar dependency.

use crate::Timestamp;

/// `YYYY-MM-DD` (UTC) of a timestamp (Howard Hinnant's `civil_from_days`).
pub(crate) fn utc_date(ts: Timestamp) -> String {
    let days = ts.as_micros().div_euclid(86_400_000_000);
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
