//! calculate_leave_days: working days between two dates, holidays and
//! weekends, and errors that name the field.

use aifn_types::OutcomeKind;
use serde_json::{Value, json};

use crate::{call, function_error, ok};

pub(crate) const LEAVE: &str = "calculate_leave_days";

#[test]
fn leave_days_over_the_holidays() {
    let out = ok(
        LEAVE,
        r#"{"start_date":"2024-12-23","end_date":"2025-01-03","holidays":["2024-12-25","2024-12-26","2025-01-01"]}"#,
    );
    assert_eq!(
        out,
        json!({"working_days":7,"calendar_days":12,"weekend_days":2,"holidays_excluded":["2024-12-25","2024-12-26","2025-01-01"]})
    );
}

#[test]
fn leave_days_across_a_leap_day() {
    let out = ok(
        LEAVE,
        r#"{"start_date":"2024-02-26","end_date":"2024-03-04"}"#,
    );
    assert_eq!(
        out,
        json!({"working_days":6,"calendar_days":8,"weekend_days":2,"holidays_excluded":[]})
    );
}

#[test]
fn leave_days_ignore_duplicate_weekend_and_outside_holidays() {
    // 2024-06-08 is a Saturday, 2024-06-10 is listed twice, 2024-07-01 is
    // outside the range.
    let out = ok(
        LEAVE,
        r#"{"start_date":"2024-06-03","end_date":"2024-06-16","holidays":["2024-06-08","2024-06-10","2024-06-10","2024-07-01"]}"#,
    );
    assert_eq!(
        out,
        json!({"working_days":9,"calendar_days":14,"weekend_days":4,"holidays_excluded":["2024-06-10"]})
    );
}

#[test]
fn leave_days_with_a_friday_saturday_weekend() {
    let out = ok(
        LEAVE,
        r#"{"start_date":"2024-03-28","end_date":"2024-04-06","weekend":["friday","saturday"]}"#,
    );
    assert_eq!(
        out,
        json!({"working_days":6,"calendar_days":10,"weekend_days":4,"holidays_excluded":[]})
    );
}

#[test]
fn leave_days_single_days_and_long_ranges() {
    let sat = ok(
        LEAVE,
        r#"{"start_date":"2024-06-15","end_date":"2024-06-15"}"#,
    );
    assert_eq!(
        sat,
        json!({"working_days":0,"calendar_days":1,"weekend_days":1,"holidays_excluded":[]})
    );
    // 2050-12-25 is a Sunday: not excluded twice.
    let century = ok(
        LEAVE,
        r#"{"start_date":"2000-01-01","end_date":"2099-12-31","holidays":["2050-12-25"]}"#,
    );
    assert_eq!(
        century,
        json!({"working_days":26089,"calendar_days":36525,"weekend_days":10436,"holidays_excluded":[]})
    );
    // The whole supported calendar, in constant time.
    let e = call(
        LEAVE,
        r#"{"start_date":"0001-01-01","end_date":"9999-12-31"}"#,
    );
    assert_eq!(e.kind, OutcomeKind::Ok);
    let all: Value = serde_json::from_slice(&e.output.expect("output")).expect("json");
    assert_eq!(
        all,
        json!({"working_days":2608615,"calendar_days":3652059,"weekend_days":1043444,"holidays_excluded":[]})
    );
    assert!(e.fuel_used < 1_000_000, "{}", e.fuel_used);
}

#[test]
fn leave_days_reject_bad_dates_naming_the_field() {
    let cases = [
        (
            r#"{"start_date":"2024-02-01","end_date":"2024-01-01"}"#,
            "invalid input at .end_date: 2024-01-01 is before start_date 2024-02-01",
        ),
        (
            r#"{"start_date":"2024-13-01","end_date":"2024-12-31"}"#,
            r#"invalid input at .start_date: month 13 is out of range in "2024-13-01""#,
        ),
        (
            r#"{"start_date":"2023-02-01","end_date":"2023-02-29"}"#,
            r#"invalid input at .end_date: day 29 is out of range in "2023-02-29" (2023-02 has 28 days)"#,
        ),
        (
            r#"{"start_date":"1/2/2024","end_date":"2024-12-31"}"#,
            r#"invalid input at .start_date: expected a date as YYYY-MM-DD, got "1/2/2024""#,
        ),
        (
            r#"{"start_date":"2024-01-01","end_date":"2024-12-31","holidays":["2024-05-01","May 8"]}"#,
            r#"invalid input at .holidays[1]: expected a date as YYYY-MM-DD, got "May 8""#,
        ),
        // Type errors come from the SDK and name the field the same way.
        (
            r#"{"start_date":20240101,"end_date":"2024-12-31"}"#,
            "invalid input at .start_date: invalid type: integer `20240101`, expected a string",
        ),
        (
            r#"{"start_date":"2024-01-01"}"#,
            "invalid input: missing field `end_date`",
        ),
        (
            r#"{"start_date":"2024-01-01","end_date":"2024-01-02","weekend":["sunday","funday"]}"#,
            "invalid input at .weekend[1]: unknown variant `funday`, expected one of `monday`, `tuesday`, \
             `wednesday`, `thursday`, `friday`, `saturday`, `sunday`",
        ),
        (
            r#"{"start_date":"2024-01-01","end_date":"2024-01-02","country":"DE"}"#,
            "invalid input at .country: unknown field `country`, expected one of `start_date`, `end_date`, \
             `holidays`, `weekend`",
        ),
        (
            r#""2024-01-01""#,
            r#"invalid input: invalid type: string "2024-01-01", expected struct LeaveRequest"#,
        ),
    ];
    for (input, want) in cases {
        assert_eq!(function_error(LEAVE, input), want, "{input}");
    }
}
