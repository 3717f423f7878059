//! Points in time and UTC calendar dates, shared by features, logs and datasets.
//!
//! One microsecond clock ([`Timestamp`], the log schema's unit) and the proleptic
//! Gregorian calendar of the logs' `date=` partitions. Parsing is strict: a date that
//! does not exist (`2026-02-31`), a year outside 0001–9999 or a time past what an `i64`
//! of microseconds holds is refused, never rolled over or saturated.

use serde::{Deserialize, Serialize};

/// Microseconds in a day.
const DAY_MICROS: i64 = 86_400_000_000;

/// A point in time: microseconds since the Unix epoch, UTC (the log schema's unit).
///
/// ```
/// use fresco::Timestamp;
///
/// let t = Timestamp::from_micros(1_700_000_000_000_000);
/// assert_eq!(t.as_micros(), 1_700_000_000_000_000);
/// assert!(Timestamp::now() > t);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(i64);

impl Timestamp {
    /// From microseconds since the Unix epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    /// From whole seconds since the Unix epoch (saturating: see
    /// [`checked_from_secs`](Timestamp::checked_from_secs) for input that may be out of
    /// range).
    pub const fn from_secs(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000))
    }

    /// From whole seconds since the Unix epoch, or `None` past what microseconds in an
    /// `i64` hold (about ±292,000 years).
    ///
    /// ```
    /// use fresco::Timestamp;
    /// assert_eq!(Timestamp::checked_from_secs(60), Some(Timestamp::from_micros(60_000_000)));
    /// assert_eq!(Timestamp::checked_from_secs(i64::MAX / 10), None);
    /// ```
    pub const fn checked_from_secs(secs: i64) -> Option<Self> {
        match secs.checked_mul(1_000_000) {
            Some(micros) => Some(Timestamp(micros)),
            None => None,
        }
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// The current wall-clock time (`SystemTime::now`); the epoch itself on a platform
    /// without a clock, such as `wasm32-unknown-unknown` outside a browser.
    pub fn now() -> Self {
        #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
        {
            Timestamp(0)
        }
        #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
        {
            let since =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0);
            Timestamp(i64::try_from(since).unwrap_or(i64::MAX))
        }
    }

    /// The UTC calendar date, `YYYY-MM-DD` (the log's `date=` partition).
    ///
    /// ```
    /// assert_eq!(fresco::Timestamp::from_secs(1_764_201_600).utc_date(), "2025-11-27");
    /// ```
    pub fn utc_date(self) -> String {
        day_to_date(utc_day(self))
    }

    /// `self - earlier`, in microseconds (saturating).
    pub const fn micros_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// Why a string is not a [`Timestamp`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{text}` is not a time: {reason} (expected a date YYYY-MM-DD, a UTC time YYYY-MM-DDTHH:MM:SS[.ffffff][Z], \
     or epoch seconds)"
)]
pub struct TimestampError {
    text: String,
    reason: &'static str,
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;

    /// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SS[.ffffff][Z]` (UTC), or whole seconds
    /// since the epoch.
    ///
    /// ```
    /// use fresco::Timestamp;
    ///
    /// assert_eq!("2025-11-27".parse::<Timestamp>()?, Timestamp::from_secs(1_764_201_600));
    /// assert_eq!("2025-11-27T00:00:01Z".parse::<Timestamp>()?, Timestamp::from_secs(1_764_201_601));
    /// assert_eq!("1764201600".parse::<Timestamp>()?, Timestamp::from_secs(1_764_201_600));
    /// assert!("yesterday".parse::<Timestamp>().is_err());
    /// assert!("2026-02-31".parse::<Timestamp>().is_err()); // no such day
    /// # Ok::<(), fresco::time::TimestampError>(())
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason| TimestampError { text: s.to_string(), reason };
        if !s.is_empty() && s.trim_start_matches('-').bytes().all(|b| b.is_ascii_digit()) {
            let secs: i64 = s.parse().map_err(|_| bad("epoch seconds out of range"))?;
            return Timestamp::checked_from_secs(secs).ok_or(bad("epoch seconds out of range"));
        }
        let (date, time) = s.split_once('T').unwrap_or((s, "00:00:00"));
        let day = date_to_day(date).ok_or(bad("not a calendar date between 0001-01-01 and 9999-12-31"))?;
        let time = time.strip_suffix('Z').unwrap_or(time);
        let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
        let mut parts = hms.split(':').map(two_digits);
        let (Some(Some(h)), Some(Some(m)), Some(Some(sec)), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("the time of day is not HH:MM:SS"));
        };
        // 60 seconds is a leap second; it lands on the next minute's first second.
        if h > 23 || m > 59 || sec > 60 {
            return Err(bad("the time of day is out of range"));
        }
        if fraction.len() > 6 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the fraction of a second is not 1 to 6 digits"));
        }
        let micros: i64 = format!("{fraction:0<6}").parse().map_err(|_| bad("the fraction of a second"))?;
        let secs_of_day = h * 3600 + m * 60 + sec;
        // Days within 0001–9999 and a time within the day cannot overflow an i64 of
        // microseconds, but the arithmetic says so rather than assuming it.
        day.checked_mul(DAY_MICROS)
            .and_then(|d| d.checked_add(secs_of_day * 1_000_000 + micros))
            .map(Timestamp)
            .ok_or(bad("out of range"))
    }
}

/// Two ASCII digits as a number.
fn two_digits(s: &str) -> Option<i64> {
    (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// Days since the Unix epoch (UTC) of a timestamp.
pub(crate) fn utc_day(ts: Timestamp) -> i64 {
    ts.as_micros().div_euclid(DAY_MICROS)
}

/// `YYYY-MM-DD` of a day number (Howard Hinnant's `civil_from_days`). Every `i64` of
/// microseconds is within ±107 million days, where this arithmetic cannot overflow.
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

/// Whether `year` is a leap year of the Gregorian calendar.
fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1–12) of `year`.
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Day number of a `YYYY-MM-DD` date between 0001-01-01 and 9999-12-31 (Howard
/// Hinnant's `days_from_civil`), or `None` if it is not such a date.
pub(crate) fn date_to_day(date: &str) -> Option<i64> {
    let bytes = date.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = date.get(range)?;
        part.bytes().all(|b| b.is_ascii_digit()).then(|| part.parse().ok()).flatten()
    };
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    if year == 0 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
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
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(Timestamp::from_secs(0).utc_date(), "1970-01-01");
        assert_eq!(Timestamp::from_secs(-1).utc_date(), "1969-12-31");
        assert_eq!(Timestamp::from_secs(951_782_400).utc_date(), "2000-02-29");
        assert_eq!(Timestamp::from_secs(1_798_761_599).utc_date(), "2026-12-31");
        assert_eq!(Timestamp::from_secs(1_798_761_600).utc_date(), "2027-01-01");
        // The extremes of the clock still have a date.
        assert_eq!(Timestamp::from_micros(i64::MIN).utc_date(), "-290308-12-21");
        assert_eq!(Timestamp::from_micros(i64::MAX).utc_date(), "294247-01-10");
    }

    #[test]
    fn dates_and_days_agree() {
        // Every day from 0001-01-01 to 9999-12-31 goes there and back.
        let first = date_to_day("0001-01-01").unwrap();
        let last = date_to_day("9999-12-31").unwrap();
        for day in first..=last {
            assert_eq!(date_to_day(&day_to_date(day)), Some(day));
        }
        assert_eq!(last - first + 1, 3_652_059);
    }

    #[test]
    fn days_that_do_not_exist_are_refused() {
        for bad in [
            "2026-02-29",
            "2026-02-31",
            "2026-04-31",
            "1900-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-01-00",
            "0000-01-01",
            "300000-01-01",
            "2026-1-01",
            "+026-01-01",
            "2026-01-+1",
            "2026-01-01x",
            "",
        ] {
            assert_eq!(date_to_day(bad), None, "{bad}");
            assert!(bad.parse::<Timestamp>().is_err(), "{bad}");
        }
        assert!(date_to_day("2024-02-29").is_some());
        assert!(date_to_day("2000-02-29").is_some());
    }

    #[test]
    fn times_are_strict() {
        for bad in [
            "2026-01-01T24:00:00",
            "2026-01-01T-1:00:00",
            "2026-01-01T1:00:00",
            "2026-01-01T10:00",
            "2026-01-01T10:00:00.1234567",
            "2026-01-01T10:00:00.-1",
            "9223372036854775807",
            "-9223372036854775808",
            "99999999999999999999",
            "-",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad}");
        }
        let t: Timestamp = "2026-01-01T10:00:00.5Z".parse().unwrap();
        assert_eq!(t, Timestamp::from_micros(date_to_day("2026-01-01").unwrap() * DAY_MICROS + 36_000_500_000));
        assert_eq!("-86400".parse::<Timestamp>().unwrap().utc_date(), "1969-12-31");
        let error = "2026-02-31".parse::<Timestamp>().unwrap_err().to_string();
        assert!(error.contains("`2026-02-31` is not a time: not a calendar date"), "{error}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Any text parses or is refused, without a panic or an overflow; what parses
        /// is in range.
        #[test]
        fn arbitrary_text_never_panics(text in "[-+0-9T:.Z ]{0,30}|.{0,30}") {
            if let Ok(ts) = text.parse::<Timestamp>() {
                let _ = ts.utc_date();
            }
        }

        /// Every time a timestamp prints as parses back to it (to the second).
        #[test]
        fn printed_times_parse_back(secs in -62_135_596_800i64..253_402_300_799) {
            let ts = Timestamp::from_secs(secs);
            let day = utc_day(ts);
            let in_day = secs - day * 86_400;
            let text = format!("{}T{:02}:{:02}:{:02}Z", ts.utc_date(), in_day / 3600, in_day / 60 % 60, in_day % 60);
            proptest::prop_assert_eq!(text.parse::<Timestamp>().unwrap(), ts, "{}", text);
            proptest::prop_assert_eq!(secs.to_string().parse::<Timestamp>().unwrap(), ts);
        }

        /// Huge epoch seconds are refused, never saturated or wrapped.
        #[test]
        fn epoch_seconds_out_of_range_are_refused(secs in proptest::prelude::any::<i64>()) {
            let parsed = secs.to_string().parse::<Timestamp>();
            match secs.checked_mul(1_000_000) {
                Some(micros) => proptest::prop_assert_eq!(parsed.unwrap(), Timestamp::from_micros(micros)),
                None => proptest::prop_assert!(parsed.is_err()),
            }
        }
    }
}
