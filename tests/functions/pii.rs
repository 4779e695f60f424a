//! redact_pii: every kind masked, look-alikes left alone, a linear cost.

use aifn_types::{Limits, OutcomeKind};
use serde_json::{Value, json};

use crate::{call, function_error, ok};

pub(crate) const PII: &str = "redact_pii";

#[test]
fn redacts_every_kind() {
    let out = ok(
        PII,
        r#"{"text":"Hi, I'm Jane (jane.doe@example.com, +1 415-555-0132). SSN 123-45-6789, card 4111 1111 1111 1111. Please update my address."}"#,
    );
    assert_eq!(
        out,
        json!({
            "redacted": "Hi, I'm Jane ([EMAIL], [PHONE]). SSN [SSN], card [CARD]. Please update my address.",
            "found": {"email": 1, "phone": 1, "ssn": 1, "card": 1},
            "total": 4
        })
    );
}

#[test]
fn redacts_phone_formats_and_keeps_unicode() {
    let out = ok(
        PII,
        r#"{"text":"Zoë: (415) 555-0132, 415.555.0199, +44 20 7946 0958 — Grüße an max.mustermann@firma.de"}"#,
    );
    assert_eq!(
        out,
        json!({
            "redacted": "Zoë: [PHONE], [PHONE], [PHONE] — Grüße an [EMAIL]",
            "found": {"email": 1, "phone": 3},
            "total": 4
        })
    );
}

#[test]
fn card_numbers_failing_luhn_are_not_masked() {
    let text = "card 4111 1111 1111 1112, order 4111111111111112, amex 3782 822463 10005";
    let out = ok(PII, &json!({ "text": text }).to_string());
    assert_eq!(
        out,
        json!({
            "redacted": "card 4111 1111 1111 1112, order 4111111111111112, amex [CARD]",
            "found": {"card": 1},
            "total": 1
        })
    );
}

#[test]
fn look_alikes_are_left_alone() {
    let text = "Invoice 2024-01-15 10:30, total 1,234,567.89, host 192.168.100.200, SSN 666-12-3456, \
                user@localhost, ID5551234567, version 1.2.3";
    let out = ok(PII, &json!({ "text": text }).to_string());
    assert_eq!(out, json!({ "redacted": text, "found": {}, "total": 0 }));
}

/// The scanner is linear: four times the text costs about four times the
/// fuel, and a 300 KB text of dense PII stays within the default budget.
#[test]
fn redaction_cost_is_linear() {
    let line = "Call 555-123-4567 or mail a.b@example.org; card 4111 1111 1111 1111, ref 12345. ";
    let run = |n: usize| {
        let input = json!({ "text": line.repeat(n) }).to_string();
        let e = call(PII, &input);
        assert_eq!(e.kind, OutcomeKind::Ok, "{n}: {:?}", e.message);
        let out: Value = serde_json::from_slice(&e.output.expect("output")).expect("json");
        assert_eq!(out["total"], json!(3 * n));
        e.fuel_used
    };
    let (small, large) = (run(100), run(400));
    assert!(
        large < small * 9 / 2,
        "100 lines: {small} fuel, 400 lines: {large}"
    );
    let huge = run(3700); // about 300 KB
    assert!(huge < Limits::default().fuel / 2, "{huge}");
}

#[test]
fn redacts_only_the_kinds_asked_for() {
    let out = ok(
        PII,
        r#"{"text":"a@b.io 123-45-6789 555-123-4567","kinds":["ssn"]}"#,
    );
    assert_eq!(
        out,
        json!({"redacted":"a@b.io [SSN] 555-123-4567","found":{"ssn":1},"total":1})
    );
}

#[test]
fn redact_rejects_bad_input() {
    assert_eq!(
        function_error(PII, r#"{"txt":"x"}"#),
        "invalid input at .txt: unknown field `txt`, expected `text` or `kinds`"
    );
    assert_eq!(
        function_error(PII, r#"{"kinds":[]}"#),
        "invalid input: missing field `text`"
    );
    assert_eq!(
        function_error(PII, r#"{"text":"x","kinds":[]}"#),
        "invalid input at .kinds: must name at least one kind (email, phone, ssn, card)"
    );
    assert_eq!(
        function_error(PII, r#"{"text":"x","kinds":["iban"]}"#),
        "invalid input at .kinds[0]: unknown variant `iban`, expected one of `email`, `phone`, `ssn`, `card`"
    );
    assert_eq!(
        function_error(PII, r#"{"text":["x"]}"#),
        "invalid input at .text: invalid type: sequence, expected a string"
    );
}
