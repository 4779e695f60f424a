//! The digit detectors: US social security numbers, payment card numbers
//! and IBANs, each with its check so that ordinary numbers stay quiet.
//!
//! Rules, chosen to keep false positives low:
//! - **SSN**: `AAA-GG-SSSS` or `AAA GG SSSS` (one separator, used twice),
//!   not glued to other digits or letters; area 000, 666 and 900–999,
//!   group 00 and serial 0000 are never issued and are not findings. Nine
//!   plain digits are not a finding (order numbers, ZIP+4 and the like
//!   look the same).
//! - **Payment card**: 13–19 digits, plain or in groups of 3–7 joined by
//!   one kind of separator (a single space or dash), not glued to other
//!   digits or letters, starting with a major network's IIN digit (2–6:
//!   Mastercard, Amex, Diners, JCB, Visa, Discover, UnionPay, Maestro),
//!   Luhn-valid. The IIN digit keeps 13-digit millisecond timestamps out.
//! - **IBAN**: two uppercase letters of a country that issues IBANs, two
//!   check digits, then the country's exact length of uppercase letters
//!   and digits, plain or in groups of four joined by single spaces;
//!   mod 97 must be 1. A BBAN with four of the same letter in a row
//!   (`XXXX`) is masked, not a finding.
//!
//! Masked values (`***-**-1234`, `XXXX-XXXX-XXXX-4242`) have too few
//! digits, or letters where digits must be, and are never findings.

use aifn_types::FindingKind;

use super::Kinds;

/// The shortest IBAN (Norway).
const MIN_IBAN: usize = 15;

/// The ASCII digits in `b`.
pub(super) fn count_digits(b: &[u8]) -> usize {
    b.iter().filter(|c| c.is_ascii_digit()).count()
}

/// The digit detectors' findings in a string of `digits` ASCII digits.
pub(super) fn scan(b: &[u8], digits: usize) -> Kinds {
    let mut kinds = Kinds::NONE;
    if digits >= 9 && has_ssn(b) {
        kinds.add(FindingKind::Ssn);
    }
    if digits >= 13 && has_card(b) {
        kinds.add(FindingKind::PaymentCard);
    }
    if digits >= 4 && b.len() >= MIN_IBAN && has_iban(b) {
        kinds.add(FindingKind::Iban);
    }
    kinds
}

/// An integer's decimal digits: only a card number can hide there.
pub(super) fn scan_integer(digits: &[u8]) -> Kinds {
    let mut kinds = Kinds::NONE;
    if (13..=19).contains(&digits.len()) && is_card(digits) {
        kinds.add(FindingKind::PaymentCard);
    }
    kinds
}

fn is_sep(c: u8) -> bool {
    c == b'-' || c == b' '
}

/// Whether a character glues two numbers together: a decimal point, or
/// the number's own separator (`sep`).
fn glues(c: u8, sep: Option<u8>) -> bool {
    c == b'.' || Some(c) == sep
}

/// Whether the text before index `i` leaves a number starting at `i`
/// standing alone: no letter or digit right before it, nor a glue that
/// continues an earlier number (`1-123-45-6789`).
fn free_before(b: &[u8], i: usize, sep: Option<u8>) -> bool {
    if i == 0 {
        return true;
    }
    let c = b[i - 1];
    if c.is_ascii_alphanumeric() {
        return false;
    }
    !glues(c, sep) || i < 2 || !b[i - 2].is_ascii_digit()
}

/// Whether a number ending before index `end` stands alone.
fn free_after(b: &[u8], end: usize, sep: Option<u8>) -> bool {
    let Some(&c) = b.get(end) else {
        return true;
    };
    if c.is_ascii_alphanumeric() {
        return false;
    }
    !glues(c, sep) || !b.get(end + 1).is_some_and(u8::is_ascii_digit)
}

fn digits_at(b: &[u8], from: usize, n: usize) -> bool {
    b.get(from..from + n)
        .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
}

fn value(d: &[u8]) -> u32 {
    d.iter().fold(0, |v, c| v * 10 + u32::from(c - b'0'))
}

fn has_ssn(b: &[u8]) -> bool {
    if b.len() < 11 {
        return false;
    }
    // Look for the two separators first: `AAA?GG?SSSS`.
    (3..=b.len() - 8).any(|j| is_sep(b[j]) && b[j + 3] == b[j] && is_ssn_at(b, j - 3))
}

fn is_ssn_at(b: &[u8], i: usize) -> bool {
    let sep = b[i + 3];
    if !is_sep(sep) || b[i + 6] != sep {
        return false;
    }
    if !(digits_at(b, i, 3) && digits_at(b, i + 4, 2) && digits_at(b, i + 7, 4)) {
        return false;
    }
    if !free_before(b, i, Some(sep)) || !free_after(b, i + 11, Some(sep)) {
        return false;
    }
    let area = value(&b[i..i + 3]);
    let group = value(&b[i + 4..i + 6]);
    let serial = value(&b[i + 7..i + 11]);
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

fn has_card(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let (end, card) = card_run(b, i);
        if card {
            return true;
        }
        i = end.max(i + 1);
    }
    false
}

/// Reads the run of digit groups starting at `start`; answers where it
/// ends and whether it is a card number.
fn card_run(b: &[u8], start: usize) -> (usize, bool) {
    let mut digits = [0u8; 19];
    let mut n = 0usize;
    let mut sep: Option<u8> = None;
    let mut group = 0usize;
    let mut groups_ok = true;
    let mut i = start;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() {
            if n < digits.len() {
                digits[n] = c;
            }
            n += 1;
            group += 1;
            i += 1;
        } else if is_sep(c)
            && group <= 7
            && sep.is_none_or(|s| s == c)
            && b.get(i + 1).is_some_and(u8::is_ascii_digit)
        {
            groups_ok &= (3..=7).contains(&group);
            sep = Some(c);
            group = 0;
            i += 1;
        } else {
            break;
        }
    }
    if sep.is_some() {
        groups_ok &= (3..=7).contains(&group);
    }
    let card = (13..=19).contains(&n)
        && groups_ok
        && free_before(b, start, sep)
        && free_after(b, i, sep)
        && is_card(&digits[..n]);
    (i, card)
}

/// A major network's IIN digit and a valid Luhn check, on ASCII digits.
fn is_card(digits: &[u8]) -> bool {
    matches!(digits.first(), Some(b'2'..=b'6')) && luhn(digits)
}

fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, c) in digits.iter().rev().enumerate() {
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

/// The IBAN length of each country that issues them (SWIFT's registry).
#[rustfmt::skip]
const IBAN_LENGTHS: &[(&[u8; 2], u8)] = &[
    (b"AD", 24), (b"AE", 23), (b"AL", 28), (b"AT", 20), (b"AZ", 28), (b"BA", 20),
    (b"BE", 16), (b"BG", 22), (b"BH", 22), (b"BI", 27), (b"BR", 29), (b"BY", 28),
    (b"CH", 21), (b"CR", 22), (b"CY", 28), (b"CZ", 24), (b"DE", 22), (b"DJ", 27),
    (b"DK", 18), (b"DO", 28), (b"EE", 20), (b"EG", 29), (b"ES", 24), (b"FI", 18),
    (b"FK", 18), (b"FO", 18), (b"FR", 27), (b"GB", 22), (b"GE", 22), (b"GI", 23),
    (b"GL", 18), (b"GR", 27), (b"GT", 28), (b"HN", 28), (b"HR", 21), (b"HU", 28),
    (b"IE", 22), (b"IL", 23), (b"IQ", 23), (b"IS", 26), (b"IT", 27), (b"JO", 30),
    (b"KW", 30), (b"KZ", 20), (b"LB", 28), (b"LC", 32), (b"LI", 21), (b"LT", 20),
    (b"LU", 20), (b"LV", 21), (b"LY", 25), (b"MC", 27), (b"MD", 24), (b"ME", 22),
    (b"MK", 19), (b"MN", 20), (b"MR", 27), (b"MT", 31), (b"MU", 30), (b"NI", 28),
    (b"NL", 18), (b"NO", 15), (b"OM", 23), (b"PK", 24), (b"PL", 28), (b"PS", 29),
    (b"PT", 25), (b"QA", 29), (b"RO", 24), (b"RS", 22), (b"RU", 33), (b"SA", 24),
    (b"SC", 31), (b"SD", 18), (b"SE", 24), (b"SI", 19), (b"SK", 24), (b"SM", 27),
    (b"SO", 23), (b"ST", 25), (b"SV", 28), (b"TL", 23), (b"TN", 24), (b"TR", 26),
    (b"UA", 29), (b"VA", 22), (b"VG", 24), (b"XK", 20), (b"YE", 30),
];

fn iban_length(country: &[u8]) -> Option<usize> {
    IBAN_LENGTHS
        .iter()
        .find(|(c, _)| c.as_slice() == country)
        .map(|(_, n)| usize::from(*n))
}

fn has_iban(b: &[u8]) -> bool {
    (0..=b.len() - MIN_IBAN)
        .any(|i| b[i].is_ascii_uppercase() && b[i + 2].is_ascii_digit() && is_iban_at(b, i))
}

fn is_iban_at(b: &[u8], i: usize) -> bool {
    if !(b[i].is_ascii_uppercase()
        && b[i + 1].is_ascii_uppercase()
        && b[i + 2].is_ascii_digit()
        && b[i + 3].is_ascii_digit())
    {
        return false;
    }
    if i > 0 && b[i - 1].is_ascii_alphanumeric() {
        return false;
    }
    let Some(len) = iban_length(&b[i..i + 2]) else {
        return false;
    };
    let mut chars = [0u8; 34];
    let mut n = 0;
    let mut spaced: Option<bool> = None;
    let mut j = i;
    while n < len {
        if n > 0 && n % 4 == 0 {
            let space = b.get(j) == Some(&b' ');
            if *spaced.get_or_insert(space) != space {
                return false;
            }
            if space {
                j += 1;
            }
        }
        match b.get(j) {
            Some(&c) if c.is_ascii_uppercase() || c.is_ascii_digit() => chars[n] = c,
            _ => return false,
        }
        n += 1;
        j += 1;
    }
    if b.get(j).is_some_and(u8::is_ascii_alphanumeric) {
        return false;
    }
    let chars = &chars[..len];
    !masked(&chars[4..]) && mod97(chars) == 1
}

/// Four of the same letter in a row: a mask, not an account.
fn masked(bban: &[u8]) -> bool {
    bban.windows(4)
        .any(|w| w[0].is_ascii_uppercase() && w.iter().all(|c| *c == w[0]))
}

/// ISO 13616's check: the first four characters moved to the end, letters
/// as 10..35, the number mod 97.
fn mod97(iban: &[u8]) -> u32 {
    let (head, bban) = iban.split_at(4);
    bban.iter().chain(head).fold(0u32, |r, c| {
        if c.is_ascii_digit() {
            (r * 10 + u32::from(c - b'0')) % 97
        } else {
            (r * 100 + u32::from(c - b'A') + 10) % 97
        }
    })
}
