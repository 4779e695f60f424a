//! validate_iban (C, no SDK): valid and invalid IBANs as answers, bad input
//! as `function_error`.

use serde_json::json;

use crate::{function_error, ok};

pub(crate) const IBAN: &str = "validate_iban";

#[test]
fn iban_valid_ones() {
    assert_eq!(
        ok(IBAN, r#"{"iban":"DE89 3704 0044 0532 0130 00"}"#),
        json!({"valid":true,"country":"DE","iban":"DE89370400440532013000"})
    );
    assert_eq!(
        ok(IBAN, r#"{ "iban" : "gb82 west 1234 5698 7654 32" }"#),
        json!({"valid":true,"country":"GB","iban":"GB82WEST12345698765432"})
    );
    assert_eq!(
        ok(IBAN, r#"{"iban":"NO9386011117947"}"#),
        json!({"valid":true,"country":"NO","iban":"NO9386011117947"})
    );
    // JSON escapes are decoded before checking.
    assert_eq!(
        ok(IBAN, r#"{"iban":"\u0046R14 2004 1010 0505 0001 3M02 606"}"#),
        json!({"valid":true,"country":"FR","iban":"FR1420041010050500013M02606"})
    );
}

#[test]
fn iban_invalid_ones_are_answers_not_errors() {
    let cases = [
        (
            "DE88 3704 0044 0532 0130 00",
            json!({"valid":false,"country":"DE","reason":"checksum mismatch"}),
        ),
        (
            "DE89 3704 0044 0532 0130 0",
            json!({"valid":false,"country":"DE","reason":"wrong length for the country: expected 22 characters, got 21"}),
        ),
        (
            "ZZ89 3704 0044 0532 0130 00",
            json!({"valid":false,"country":"ZZ","reason":"country code not in the IBAN registry"}),
        ),
        (
            "DE89-3704-0044",
            json!({"valid":false,"country":"DE","reason":"only letters, digits and spaces are allowed"}),
        ),
        ("", json!({"valid":false,"reason":"empty"})),
        (
            "DE8",
            json!({"valid":false,"country":"DE","reason":"too short"}),
        ),
        (
            "1234567890",
            json!({"valid":false,"reason":"must start with a two-letter country code"}),
        ),
        (
            "DEXX370400440532013000",
            json!({"valid":false,"country":"DE","reason":"check digits (characters 3 and 4) must be digits"}),
        ),
        (
            "DE89370400440532013000DE89370400440532013000",
            json!({"valid":false,"country":"DE","reason":"longer than 34 characters"}),
        ),
    ];
    for (iban, want) in cases {
        assert_eq!(
            ok(IBAN, &json!({ "iban": iban }).to_string()),
            want,
            "{iban}"
        );
    }
}

#[test]
fn iban_bad_input_is_a_function_error() {
    let cases = [
        (r#"{}"#, "invalid input: missing field `iban`"),
        (r#"{"iban":5}"#, "invalid input at .iban: expected a string"),
        (
            r#"{"iban":null}"#,
            "invalid input at .iban: expected a string",
        ),
        (
            r#"["DE89370400440532013000"]"#,
            "invalid input: expected an object with a string field `iban`",
        ),
        (
            r#""DE89370400440532013000""#,
            "invalid input: expected an object with a string field `iban`",
        ),
        (
            r#"{"iban":"DE89370400440532013000","bic":"X"}"#,
            "invalid input at .bic: unknown field `bic`, expected `iban`",
        ),
        (
            r#"{"iban":"a","iban":"b"}"#,
            "invalid input: duplicate field `iban`",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(function_error(IBAN, input), want, "{input}");
    }
}
