//! Times are stored as RFC 3339 UTC with milliseconds (`2026-11-22T10:00:00.123Z`)
//! in record bodies and as integer milliseconds in an indexed column.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::UtcDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

use crate::AuditError;

const FORMAT: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// The latest time we accept: the end of year 9999 (four-digit years).
const MAX_MS: i64 = 253_402_300_799_999;

/// Milliseconds since the Unix epoch (truncated), for 1970 to 9999.
pub(crate) fn to_ms(t: SystemTime) -> Result<i64, AuditError> {
    let d = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| AuditError::invalid("time is before 1970"))?;
    match i64::try_from(d.as_millis()) {
        Ok(ms) if ms <= MAX_MS => Ok(ms),
        _ => Err(AuditError::invalid("time is after 9999")),
    }
}

pub(crate) fn from_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

pub(crate) fn format_ms(ms: i64) -> String {
    let nanos = i128::from(ms.clamp(0, MAX_MS)) * 1_000_000;
    UtcDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        // Unreachable for the clamped range; a fixed string beats a panic.
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_owned())
}

pub(crate) fn parse_ms(s: &str) -> Option<i64> {
    let t = UtcDateTime::parse(s, FORMAT).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

pub(crate) fn now_ms() -> i64 {
    to_ms(SystemTime::now()).unwrap_or(0)
}

/// `#[serde(with = "crate::timefmt::rfc3339")]` for `SystemTime` fields.
pub(crate) mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer, de, ser};

    pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let ms = super::to_ms(*t).map_err(ser::Error::custom)?;
        s.serialize_str(&super::format_ms(ms))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let s = String::deserialize(d)?;
        let ms = super::parse_ms(&s).ok_or_else(|| de::Error::custom(format!("bad time {s:?}")))?;
        Ok(super::from_ms(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_milliseconds_and_round_trips() {
        let ms = 1_795_341_600_123; // 2026-11-22T10:00:00.123Z
        assert_eq!(format_ms(ms), "2026-11-22T10:00:00.123Z");
        assert_eq!(parse_ms("2026-11-22T10:00:00.123Z"), Some(ms));
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(parse_ms("2026-11-22 10:00:00"), None);
    }

    #[test]
    fn truncates_to_milliseconds_and_bounds_the_range() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_999_999);
        assert_eq!(to_ms(t).expect("in range"), 1);
        assert!(to_ms(UNIX_EPOCH - Duration::from_secs(1)).is_err());
    }
}
