//! The detectors, each with a value it must find and a look-alike it must
//! not, the pointers of findings, and the bounds of tenant patterns.

use aifn_types::{Finding, FindingKind, GuardMode, GuardPattern, GuardSettings};
use serde_json::{Value, json};

use super::patterns::{MAX_NAME_BYTES, MAX_PATTERN_BYTES, MAX_PATTERNS};
use super::{GuardError, OutputGuard, credentials, effective_mode};

fn guard() -> OutputGuard {
    OutputGuard::compile(&GuardSettings::default()).expect("default settings compile")
}

fn with(patterns: &[(&str, &str)]) -> Result<OutputGuard, GuardError> {
    OutputGuard::compile(&GuardSettings {
        mode: GuardMode::Block,
        patterns: patterns
            .iter()
            .map(|(name, regex)| GuardPattern {
                name: (*name).to_owned(),
                regex: (*regex).to_owned(),
            })
            .collect(),
    })
}

/// The kinds found in one string.
fn kinds(s: &str) -> Vec<FindingKind> {
    guard()
        .scan(&Value::String(s.to_owned()))
        .into_iter()
        .map(|f| f.kind)
        .collect()
}

fn finding(kind: FindingKind, path: &str) -> Finding {
    Finding {
        kind,
        path: path.to_owned(),
        pattern: None,
    }
}

// A JWT of the header {"alg":"HS256","typ":"JWT"} (jwt.io's example).
const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";

#[test]
fn an_ssn_is_found_and_a_masked_or_never_issued_one_is_not() {
    for s in ["ssn: 123-45-6789", "123 45 6789", "(078-05-1120)"] {
        assert_eq!(kinds(s), [FindingKind::Ssn], "{s}");
    }
    for s in [
        "ssn: ***-**-6789",
        "000-12-3456",
        "666-12-3456",
        "912-34-5678",
        "123-00-4567",
        "123-45-0000",
        "123-45 6789",
        "plain 123456789",
        "1-123-45-6789",
        "123-45-6789-1",
        "A123-45-6789",
    ] {
        assert!(kinds(s).is_empty(), "{s}");
    }
}

#[test]
fn a_luhn_valid_card_is_found_and_an_invalid_or_masked_one_is_not() {
    for s in [
        "4111111111111111",
        "card 4111 1111 1111 1111 exp 12/29",
        "5555-5555-5555-4444",
        "3782 822463 10005",
        "2223000048400011",
        "4111111111111111 4111111111111111",
    ] {
        assert_eq!(kinds(s), [FindingKind::PaymentCard], "{s}");
    }
    for s in [
        "4111111111111112",
        "XXXX-XXXX-XXXX-4242",
        "4111 11** **** 1111",
        "4111-1111 1111-1111",
        "1718000000000 ms",
        "41111111111111110000",
        "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",
    ] {
        assert!(kinds(s).is_empty(), "{s}");
    }
}

#[test]
fn a_card_number_given_as_a_json_number_is_found() {
    let found = guard().scan(&json!({"n": 4111111111111111u64, "ms": 1718000000000u64}));
    assert_eq!(found, [finding(FindingKind::PaymentCard, "/n")]);
    assert!(
        guard()
            .scan(&json!([4111111111111112u64, -4111111111111111i64, 4.5]))
            .is_empty()
    );
}

#[test]
fn an_iban_is_found_and_one_with_a_wrong_check_digit_is_not() {
    for s in [
        "DE89370400440532013000",
        "pay to DE89 3704 0044 0532 0130 00.",
        "GB82WEST12345698765432",
        "NO9386011117947",
    ] {
        assert_eq!(kinds(s), [FindingKind::Iban], "{s}");
    }
    for s in [
        "DE88370400440532013000",
        "DE89 3704 0044 0532 0130 0",
        "DE8937040044 0532013000",
        "ZZ89370400440532013000",
        "XDE89370400440532013000",
        "DE89 XXXX XXXX XXXX XXXX XX",
    ] {
        assert!(kinds(s).is_empty(), "{s}");
    }
}

#[test]
fn a_credential_is_found_and_a_look_alike_is_not() {
    let keys = [
        "sk-proj-Ab3dEfGh1jKlMnOpQrStUvWx",
        "key=sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
        "github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwx",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKl",
        "AKIAIOSFODNN7EXAMPLE",
        "AIzaSyA-1234567890abcdefghijklmnopqrstu",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow...",
        "-----BEGIN PRIVATE KEY-----",
        JWT,
    ];
    for s in keys {
        assert_eq!(kinds(s), [FindingKind::Credential], "{s}");
    }
    let look_alikes = [
        "use sk-learn-preprocessing-pipeline",
        "task-abcdefghijklmnopqrstuvwxyz",
        "sk-****************************",
        "ghp_short",
        "AKIAIOSFODNN7EXAMPLEX",
        "-----BEGIN PUBLIC KEY-----",
        "xoxb-abcdefghijklmnop",
        // Three base64url segments, but the first decodes to `{"not json...`.
        "eyJub3QganNvbi4uLg.eyJzdWIiOiIxIn0.c2ln",
        // The header is JSON but names no alg: {"typ":"JWT"}.
        "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.c2ln",
    ];
    for s in look_alikes {
        assert!(kinds(s).is_empty(), "{s}");
    }
}

#[test]
fn base64url_decodes_unpadded_segments_and_refuses_bad_ones() {
    assert_eq!(
        credentials::base64url("eyJhIjoxfQ").as_deref(),
        Some(&br#"{"a":1}"#[..])
    );
    assert_eq!(credentials::base64url("TWFu").as_deref(), Some(&b"Man"[..]));
    assert_eq!(credentials::base64url("TWE").as_deref(), Some(&b"Ma"[..]));
    assert!(credentials::base64url("TWFuT").is_none());
    assert!(credentials::base64url("TW+u").is_none());
}

#[test]
fn clean_typical_output_has_no_findings() {
    let out = json!({
        "id": "ord_20240611_0042", "customer": "Alice Example", "total": 1234.5,
        "items": [{"sku": "A-100-2", "qty": 3, "price": 19.99}],
        "phone": "+1 (555) 010-9999", "zip": "94103-1234", "created_ms": 1718000000000u64,
        "note": "Your order ships within 2 business days; tracking 1Z999AA10123456784.",
        "ssn": "***-**-1234", "card": "XXXX-XXXX-XXXX-4242", "ok": true, "none": null
    });
    assert_eq!(guard().scan(&out), []);
}

#[test]
fn findings_carry_rfc6901_pointers_sorted_and_deduplicated() {
    let out = json!({
        "a/b": {"c~d": ["x", "123-45-6789", "123-45-6789 and 4111111111111111"]},
        "list": ["4111111111111111", "4111111111111111"],
        "123-45-6789": "the key is the leak"
    });
    let found = guard().scan(&out);
    assert_eq!(
        found,
        [
            finding(FindingKind::Ssn, "/123-45-6789"),
            finding(FindingKind::Ssn, "/a~1b/c~0d/1"),
            finding(FindingKind::Ssn, "/a~1b/c~0d/2"),
            finding(FindingKind::PaymentCard, "/a~1b/c~0d/2"),
            finding(FindingKind::PaymentCard, "/list/0"),
            finding(FindingKind::PaymentCard, "/list/1"),
        ]
    );
    assert_eq!(
        guard().scan(&json!("123-45-6789 123-45-6789")),
        [finding(FindingKind::Ssn, "")]
    );
}

#[test]
fn a_finding_names_the_kind_and_path_but_never_the_value() {
    let found = guard().scan(&json!({"secret": "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"}));
    let text = serde_json::to_string(&found).expect("serializes");
    assert_eq!(text, r#"[{"kind":"credential","path":"/secret"}]"#);
}

#[test]
fn tenant_patterns_are_found_by_name_on_strings_keys_and_integers() {
    let g = with(&[("employee_id", r"\bE\d{6}\b"), ("account", r"^\d{10}$")]).expect("compiles");
    let found = g.scan(&json!({"who": "E123456", "E654321": 1, "acct": 1234567890u64, "x": "E12"}));
    let pattern = |name: &str, path: &str| Finding {
        kind: FindingKind::Pattern,
        path: path.to_owned(),
        pattern: Some(name.to_owned()),
    };
    assert_eq!(
        found,
        [
            pattern("employee_id", "/E654321"),
            pattern("account", "/acct"),
            pattern("employee_id", "/who"),
        ]
    );
    assert_eq!(g.mode(), GuardMode::Block);
    assert!(g.scan(&json!({"who": "e123456"})).is_empty());
}

#[test]
fn pattern_names_are_checked() {
    assert!(with(&[("ok_name_1", "x")]).is_ok());
    let long = "a".repeat(MAX_NAME_BYTES);
    assert!(with(&[(long.as_str(), "x")]).is_ok());
    let longer = "a".repeat(MAX_NAME_BYTES + 1);
    for name in ["", "Upper", "dash-ed", "sp ace", "é", longer.as_str()] {
        assert!(
            matches!(with(&[(name, "x")]), Err(GuardError::BadName { .. })),
            "{name:?}"
        );
    }
    assert!(matches!(
        with(&[("twice", "x"), ("twice", "y")]),
        Err(GuardError::DuplicateName { .. })
    ));
}

#[test]
fn at_most_32_patterns_are_allowed() {
    let names: Vec<String> = (0..=MAX_PATTERNS).map(|i| format!("p{i}")).collect();
    let all: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "x")).collect();
    assert!(with(&all[..MAX_PATTERNS]).is_ok());
    let err = with(&all).expect_err("33 patterns");
    assert!(
        matches!(err, GuardError::TooManyPatterns { count: 33, max: 32 }),
        "{err}"
    );
}

#[test]
fn invalid_oversized_and_empty_matching_patterns_are_refused() {
    let err = with(&[("bad", "(unclosed")]).expect_err("syntax");
    assert!(matches!(err, GuardError::InvalidPattern { .. }), "{err}");
    assert!(err.to_string().contains("unclosed group"), "{err}");
    // Backreferences and look-around do not exist in a linear-time engine.
    assert!(with(&[("backref", r"(a)\1")]).is_err());
    let huge = with(&[("huge", r"\w{200}\w{200}")]).expect_err("size");
    assert!(matches!(huge, GuardError::PatternTooBig { .. }), "{huge}");
    let long = "a".repeat(MAX_PATTERN_BYTES + 1);
    assert!(matches!(
        with(&[("long", long.as_str())]),
        Err(GuardError::PatternTooLong { .. })
    ));
    assert!(with(&[("just_fits", "a".repeat(MAX_PATTERN_BYTES).as_str())]).is_ok());
    for empty in ["a*", "^", "x|"] {
        assert!(
            matches!(
                with(&[("empty", empty)]),
                Err(GuardError::MatchesEmpty { .. })
            ),
            "{empty}"
        );
    }
}

#[test]
fn the_manifest_mode_wins_over_the_tenants() {
    assert_eq!(effective_mode(GuardMode::Flag, None), GuardMode::Flag);
    assert_eq!(
        effective_mode(GuardMode::Flag, Some(GuardMode::Block)),
        GuardMode::Block
    );
    assert_eq!(
        effective_mode(GuardMode::Block, Some(GuardMode::Off)),
        GuardMode::Off
    );
    assert_eq!(guard().mode(), GuardMode::Flag);
}

#[test]
fn the_guard_is_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<OutputGuard>();
}
