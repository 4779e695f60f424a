//! The one time type of aifn: RFC 3339 UTC with milliseconds
//! (`2026-11-22T10:00:00.123Z`) on the wire and in record bodies, integer
//! Unix milliseconds in indexed columns.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use time::format_description::BorrowedFormatItem;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcDateTime};

const FORMAT: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// A point in time to the millisecond, UTC, from 1970 to the end of 9999
/// (four-digit years, so the text form sorts like the time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// A time outside 1970 to 9999, or text that is not RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampError(String);

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TimestampError {}

impl Timestamp {
    /// 1970-01-01T00:00:00.000Z.
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);
    /// 9999-12-31T23:59:59.999Z, the latest time there is a text form for.
    pub const MAX: Timestamp = Timestamp(253_402_300_799_999);

    /// The current time, truncated to the millisecond.
    pub fn now() -> Timestamp {
        Timestamp::from(SystemTime::now())
    }

    /// Milliseconds since the Unix epoch, if within 1970 to 9999.
    pub fn from_unix_ms(ms: i64) -> Result<Timestamp, TimestampError> {
        if (0..=Timestamp::MAX.0).contains(&ms) {
            Ok(Timestamp(ms))
        } else {
            Err(TimestampError(format!(
                "{ms} ms since 1970 is outside 1970 to 9999"
            )))
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_ms(self) -> i64 {
        self.0
    }

    /// This time plus `ms` milliseconds, kept within the range.
    pub fn saturating_add_ms(self, ms: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms).clamp(0, Timestamp::MAX.0))
    }

    /// Parses any RFC 3339 time (any offset, any fraction) and normalizes it
    /// to UTC milliseconds (the fraction is truncated).
    pub fn parse(s: &str) -> Result<Timestamp, TimestampError> {
        let t = OffsetDateTime::parse(s, &Rfc3339)
            .map_err(|e| TimestampError(format!("{s:?} is not an RFC 3339 time: {e}")))?;
        let ms = t.unix_timestamp_nanos().div_euclid(1_000_000);
        Timestamp::from_unix_ms(i64::try_from(ms).unwrap_or(i64::MIN))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = UtcDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .ok()
            .and_then(|t| t.format(FORMAT).ok())
            .ok_or(fmt::Error)?;
        f.write_str(&text)
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Timestamp, TimestampError> {
        Timestamp::parse(s)
    }
}

/// Truncates to the millisecond; a clock outside 1970 to 9999 is clamped
/// into it (the text form has four-digit years).
impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Timestamp {
        let ms = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(_) => 0,
        };
        Timestamp(ms.min(Timestamp::MAX.0))
    }
}

impl From<Timestamp> for SystemTime {
    fn from(t: Timestamp) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(t.0.unsigned_abs())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 time such as 2026-11-22T10:00:00.123Z")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Timestamp, E> {
                Timestamp::parse(s).map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_milliseconds_and_round_trips() {
        let t = Timestamp::from_unix_ms(1_795_341_600_123).expect("in range");
        assert_eq!(t.to_string(), "2026-11-22T10:00:00.123Z");
        assert_eq!(Timestamp::parse("2026-11-22T10:00:00.123Z"), Ok(t));
        assert_eq!(
            Timestamp::UNIX_EPOCH.to_string(),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(Timestamp::MAX.to_string(), "9999-12-31T23:59:59.999Z");
        assert!(Timestamp::parse("2026-11-22 10:00:00").is_err());
        let json = serde_json::to_string(&t).expect("serialize");
        assert_eq!(json, "\"2026-11-22T10:00:00.123Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).expect("parse"), t);
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }

    #[test]
    fn any_offset_is_normalized_to_utc_milliseconds() {
        let t = Timestamp::parse("2026-11-22T11:30:00.1239+01:30").expect("offset");
        assert_eq!(t.to_string(), "2026-11-22T10:00:00.123Z");
        let t = Timestamp::parse("2026-11-22T10:00:00Z").expect("no fraction");
        assert_eq!(t.unix_ms(), 1_795_341_600_000);
        assert!(Timestamp::parse("1969-12-31T23:59:59.999Z").is_err());
        assert!(Timestamp::parse("1970-01-01T00:00:00.000Z").is_ok());
    }

    #[test]
    fn system_time_truncates_to_milliseconds_and_is_clamped_to_the_range() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_999_999);
        assert_eq!(Timestamp::from(t).unix_ms(), 1);
        assert_eq!(
            Timestamp::from(UNIX_EPOCH - Duration::from_secs(1)),
            Timestamp::UNIX_EPOCH
        );
        let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(Timestamp::from(far), Timestamp::MAX);
        let back = SystemTime::from(Timestamp::from_unix_ms(1500).expect("in range"));
        assert_eq!(back, UNIX_EPOCH + Duration::from_millis(1500));
        assert!(Timestamp::from_unix_ms(-1).is_err());
        assert!(Timestamp::from_unix_ms(Timestamp::MAX.unix_ms() + 1).is_err());
        assert!(Timestamp::from_unix_ms(Timestamp::MAX.unix_ms()).is_ok());
        assert_eq!(
            Timestamp::UNIX_EPOCH.saturating_add_ms(-5),
            Timestamp::UNIX_EPOCH
        );
        assert_eq!(Timestamp::MAX.saturating_add_ms(5), Timestamp::MAX);
        assert_eq!(Timestamp::UNIX_EPOCH.saturating_add_ms(5).unix_ms(), 5);
    }

    #[test]
    fn now_is_the_clock_to_the_millisecond() {
        let before = Timestamp::from(SystemTime::now());
        let now = Timestamp::now();
        assert!(now >= before && now.unix_ms() - before.unix_ms() < 60_000);
    }
}
