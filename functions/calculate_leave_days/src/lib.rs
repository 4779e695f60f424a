//! Working days between two ISO dates, inclusive, without weekends and
//! holidays. Proleptic Gregorian calendar, years 0001 to 9999; the
//! calendar math is done here (no date crate).

use aifn_guest::{Context, FunctionError};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeaveRequest {
    /// First day of leave, `YYYY-MM-DD`.
    start_date: String,
    /// Last day of leave (inclusive), `YYYY-MM-DD`.
    end_date: String,
    /// Public holidays to skip, `YYYY-MM-DD`; duplicates and dates outside
    /// the range are ignored.
    #[serde(default)]
    holidays: Vec<String>,
    /// The days that are not worked; Saturday and Sunday by default.
    #[serde(default = "default_weekend")]
    weekend: Vec<Weekday>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

/// The most holidays a request may list (schema.json's `maxItems`).
const MAX_HOLIDAYS: usize = 1000;
/// The most weekend days a request may list: the week's seven.
const MAX_WEEKEND: usize = 7;

fn default_weekend() -> Vec<Weekday> {
    vec![Weekday::Saturday, Weekday::Sunday]
}

#[derive(Serialize)]
struct LeaveDays {
    /// Days of leave to book: weekdays in the range that are not holidays.
    working_days: i64,
    /// Every day in the range, both ends included.
    calendar_days: i64,
    /// Weekend days in the range.
    weekend_days: i64,
    /// The holidays that fell on a working day in the range, sorted.
    holidays_excluded: Vec<String>,
}

/// A day as the number of days since 1970-01-01.
type Day = i64;

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> Day {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Monday = 0 ... Sunday = 6. 1970-01-01 was a Thursday.
fn weekday(day: Day) -> usize {
    (day + 3).rem_euclid(7) as usize
}

/// Parses a strict `YYYY-MM-DD` date; the error explains what is wrong.
fn parse_date(s: &str) -> Result<Day, String> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return Err(format!("expected a date as YYYY-MM-DD, got {:?}", s));
    }
    let num =
        |r: std::ops::Range<usize>| b[r].iter().fold(0i64, |n, c| n * 10 + i64::from(c - b'0'));
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    if y == 0 {
        return Err(format!(
            "year 0000 is out of range in {:?} (0001 to 9999)",
            s
        ));
    }
    if !(1..=12).contains(&m) {
        return Err(format!("month {} is out of range in {:?}", m, s));
    }
    let dim = days_in_month(y, m);
    if d < 1 || d > dim {
        return Err(format!(
            "day {} is out of range in {:?} ({}-{:02} has {} days)",
            d, s, y, m, dim
        ));
    }
    Ok(days_from_civil(y, m, d))
}

fn field(name: &str, s: &str) -> Result<Day, FunctionError> {
    parse_date(s).map_err(|e| FunctionError::invalid_input(name, e))
}

/// The input arrays are bounded as schema.json says, so no input makes a
/// long loop.
fn check_bounds(req: &LeaveRequest) -> Result<(), FunctionError> {
    if req.weekend.len() > MAX_WEEKEND {
        return Err(FunctionError::invalid_input(
            "weekend",
            format!("at most {} days, got {}", MAX_WEEKEND, req.weekend.len()),
        ));
    }
    if req.holidays.len() > MAX_HOLIDAYS {
        return Err(FunctionError::invalid_input(
            "holidays",
            format!(
                "at most {} holidays, got {}",
                MAX_HOLIDAYS,
                req.holidays.len()
            ),
        ));
    }
    Ok(())
}

fn calculate(_ctx: &Context, req: LeaveRequest) -> Result<LeaveDays, FunctionError> {
    let start = field("start_date", &req.start_date)?;
    let end = field("end_date", &req.end_date)?;
    if end < start {
        return Err(FunctionError::invalid_input(
            "end_date",
            format!("{} is before start_date {}", req.end_date, req.start_date),
        ));
    }
    check_bounds(&req)?;
    let mut off = [false; 7];
    for w in &req.weekend {
        off[*w as usize] = true;
    }

    let calendar_days = end - start + 1;
    let per_week = off.iter().filter(|o| !**o).count() as i64;
    let (weeks, rest) = (calendar_days / 7, calendar_days % 7);
    let first = weekday(start);
    let rest_working = (0..rest as usize).filter(|i| !off[(first + i) % 7]).count() as i64;
    let weekdays = weeks * per_week + rest_working;

    let mut holidays = Vec::with_capacity(req.holidays.len());
    for (i, h) in req.holidays.iter().enumerate() {
        let day = field(&format!("holidays[{}]", i), h)?;
        if (start..=end).contains(&day) && !off[weekday(day)] {
            holidays.push((day, h.as_str()));
        }
    }
    holidays.sort_unstable();
    holidays.dedup_by_key(|h| h.0);

    let out = LeaveDays {
        working_days: weekdays - holidays.len() as i64,
        calendar_days,
        weekend_days: calendar_days - weekdays,
        holidays_excluded: holidays.into_iter().map(|(_, h)| h.to_owned()).collect(),
    };
    aifn_guest::log::debug!(
        "{} to {}: {} working days of {}",
        req.start_date,
        req.end_date,
        out.working_days,
        out.calendar_days
    );
    Ok(out)
}

aifn_guest::export!(calculate);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_math() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1, 1, 1), -719_162);
        assert_eq!(weekday(days_from_civil(2024, 12, 25)), 2); // Wednesday
        assert_eq!(weekday(days_from_civil(1, 1, 1)), 0); // Monday
        assert_eq!(parse_date("2024-02-29"), Ok(days_from_civil(2024, 2, 29)));
        assert!(parse_date("2023-02-29").is_err());
        assert!(parse_date("1900-02-29").is_err());
        assert!(parse_date("2000-02-29").is_ok());
        assert!(parse_date("2024-2-01").is_err());
    }

    fn request(holidays: usize, weekend: usize) -> LeaveRequest {
        LeaveRequest {
            start_date: "2024-01-01".into(),
            end_date: "2024-01-31".into(),
            holidays: vec!["2024-01-02".to_owned(); holidays],
            weekend: vec![Weekday::Sunday; weekend],
        }
    }

    #[test]
    fn input_arrays_are_bounded_as_the_schema_says() {
        assert!(check_bounds(&request(MAX_HOLIDAYS, MAX_WEEKEND)).is_ok());
        let holidays = check_bounds(&request(MAX_HOLIDAYS + 1, 1)).err();
        let holidays = holidays.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            holidays.contains("at most 1000 holidays, got 1001"),
            "{}",
            holidays
        );
        let weekend = check_bounds(&request(1, MAX_WEEKEND + 1)).err();
        let weekend = weekend.map(|e| e.to_string()).unwrap_or_default();
        assert!(weekend.contains("at most 7 days, got 8"), "{}", weekend);
    }
}
