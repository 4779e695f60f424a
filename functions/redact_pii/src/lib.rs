//! Masks e-mail addresses, phone numbers, US social security numbers and
//! payment card numbers in a text. A hand-written scanner (no regex crate,
//! to stay small); the rules are in README.md.

use aifn_guest::{Context, FunctionError};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    /// The text to redact.
    text: String,
    /// Which kinds to mask; all of them by default.
    #[serde(default = "all_kinds")]
    kinds: Vec<Kind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Email,
    Phone,
    Ssn,
    Card,
}

impl Kind {
    fn mask(self) -> &'static str {
        match self {
            Kind::Email => "[EMAIL]",
            Kind::Phone => "[PHONE]",
            Kind::Ssn => "[SSN]",
            Kind::Card => "[CARD]",
        }
    }
}

fn all_kinds() -> Vec<Kind> {
    vec![Kind::Email, Kind::Phone, Kind::Ssn, Kind::Card]
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// How many of each kind were masked; kinds not found are left out.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
struct Found {
    #[serde(skip_serializing_if = "is_zero")]
    email: u32,
    #[serde(skip_serializing_if = "is_zero")]
    phone: u32,
    #[serde(skip_serializing_if = "is_zero")]
    ssn: u32,
    #[serde(skip_serializing_if = "is_zero")]
    card: u32,
}

#[derive(Serialize)]
struct Redacted {
    /// The text with every match replaced by `[EMAIL]`, `[PHONE]`, `[SSN]`
    /// or `[CARD]`.
    redacted: String,
    /// Counts per kind found.
    found: Found,
    /// Total number of masked spans.
    total: u32,
}

/// A span of the text to mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
    kind: Kind,
}

fn is_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-')
}

/// The next `@` at or after `from`, eight bytes at a time (text has few
/// of them, and fuel is counted per instruction).
fn find_at_sign(b: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const ATS: u64 = ONES * b'@' as u64;
    let mut i = from;
    while i + 8 <= b.len() {
        let mut word = [0u8; 8];
        word.copy_from_slice(&b[i..i + 8]);
        let x = u64::from_le_bytes(word) ^ ATS;
        // A zero byte in x is an `@` in the text.
        if x.wrapping_sub(ONES) & !x & HIGHS != 0 {
            break;
        }
        i += 8;
    }
    b[i.min(b.len())..]
        .iter()
        .position(|c| *c == b'@')
        .map(|p| p + i)
}

/// `local@domain.tld`: a local part of letters, digits and `._%+-`, a
/// domain of at least two dot-separated labels, the last alphabetic and at
/// least two letters long.
fn emails(b: &[u8]) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut floor = 0; // no match may start before the previous one's end
    let mut from = 0;
    while let Some(at) = find_at_sign(b, from) {
        from = at + 1;
        if at < floor {
            continue;
        }
        let mut start = at;
        while start > floor && is_local(b[start - 1]) {
            start -= 1;
        }
        while start < at && b[start] == b'.' {
            start += 1;
        }
        let mut end = at + 1;
        let mut dot = false;
        while end < b.len() && is_domain(b[end]) {
            dot |= b[end] == b'.';
            end += 1;
        }
        if !dot {
            continue;
        }
        while end > at + 1 && !b[end - 1].is_ascii_alphanumeric() {
            end -= 1;
        }
        if start == at || !valid_domain(&b[at + 1..end]) {
            continue;
        }
        spans.push(Span {
            start,
            end,
            kind: Kind::Email,
        });
        floor = end;
    }
    spans
}

fn valid_domain(d: &[u8]) -> bool {
    let mut labels = 0;
    let mut last: &[u8] = &[];
    for l in d.split(|c| *c == b'.') {
        if l.is_empty() || l[0] == b'-' || l[l.len() - 1] == b'-' {
            return false;
        }
        labels += 1;
        last = l;
    }
    labels >= 2 && last.len() >= 2 && last.iter().all(u8::is_ascii_alphabetic)
}

/// The most groups a number is read with: more than any kind needs
/// (`+33 6 12 34 56 78` has six).
const MAX_GROUPS: usize = 7;
/// The most digits any kind has (a 19-digit card number); reading stops
/// past it.
const MAX_DIGITS: usize = 19;

/// A run of digit groups such as `+1 (555) 123-4567` or
/// `4111 1111 1111 1111`, read without allocating. Facts about each
/// leading run of groups are kept as the groups are read, so that
/// classifying any prefix costs a few comparisons (fuel is the cost of a
/// call).
struct Number {
    start: usize,
    plus: bool,
    /// Groups read, at most `MAX_GROUPS`.
    count: usize,
    /// Digits per group.
    len: [usize; MAX_GROUPS],
    /// Where each group ends (after its `)` if any).
    end: [usize; MAX_GROUPS],
    /// `sep[g]`: the separator before group `g` (` `, `-` or `.`; ` ` after
    /// a parenthesized group with none).
    sep: [u8; MAX_GROUPS],
    /// Digits in groups `0..=g`.
    digits_upto: [usize; MAX_GROUPS],
    /// Whether one of groups `0..=g` is parenthesized.
    parens_upto: [bool; MAX_GROUPS],
    /// Whether the separators before groups `1..=g` are all the same.
    same_upto: [bool; MAX_GROUPS],
    /// Whether a separator before groups `1..=g` is a dot.
    dot_upto: [bool; MAX_GROUPS],
    /// Whether groups `1..=g` all have at least 2 digits.
    rest2_upto: [bool; MAX_GROUPS],
    /// Whether groups `0..=g` all have at least 3 digits.
    all3_upto: [bool; MAX_GROUPS],
    /// The first `MAX_DIGITS` digits.
    digits: [u8; MAX_DIGITS],
}

impl Number {
    fn new() -> Number {
        Number {
            start: 0,
            plus: false,
            count: 0,
            len: [0; MAX_GROUPS],
            end: [0; MAX_GROUPS],
            sep: [0; MAX_GROUPS],
            digits_upto: [0; MAX_GROUPS],
            parens_upto: [false; MAX_GROUPS],
            same_upto: [true; MAX_GROUPS],
            dot_upto: [false; MAX_GROUPS],
            rest2_upto: [true; MAX_GROUPS],
            all3_upto: [true; MAX_GROUPS],
            digits: [0; MAX_DIGITS],
        }
    }
}

/// The first `k` groups of a number: what is classified.
struct Prefix<'a> {
    n: &'a Number,
    /// Index of the last group (`k - 1`).
    g: usize,
}

impl Prefix<'_> {
    fn groups(&self) -> &[usize] {
        &self.n.len[..=self.g]
    }

    fn digit_count(&self) -> usize {
        self.n.digits_upto[self.g]
    }

    /// The digits, when there are at most `MAX_DIGITS`.
    fn digits(&self) -> Option<&[u8]> {
        let c = self.digit_count();
        if c <= MAX_DIGITS {
            Some(&self.n.digits[..c])
        } else {
            None
        }
    }

    fn parens(&self) -> bool {
        self.n.parens_upto[self.g]
    }

    fn same_seps(&self) -> bool {
        self.n.same_upto[self.g]
    }

    fn dots(&self) -> bool {
        self.n.dot_upto[self.g]
    }

    fn end(&self) -> usize {
        self.n.end[self.g]
    }
}

/// Reads the number starting at `i` (a digit, `+` or `(`) into `n`, reused
/// between calls; false when there is no digit group there.
fn number_at(b: &[u8], i: usize, n: &mut Number) -> bool {
    n.start = i;
    n.plus = false;
    n.count = 0;
    let mut ndigits = 0;
    let mut j = i;
    if b[j] == b'+' {
        n.plus = true;
        j += 1;
    }
    let mut pending = 0;
    loop {
        // One group: digits, or `(digits)`.
        let open = j < b.len() && b[j] == b'(';
        let k = if open { j + 1 } else { j };
        let mut e = k;
        while e < b.len() && b[e].is_ascii_digit() {
            if ndigits < MAX_DIGITS {
                n.digits[ndigits] = b[e];
            }
            ndigits += 1;
            e += 1;
        }
        if e == k || (open && (e >= b.len() || b[e] != b')')) {
            break;
        }
        let g = n.count;
        let len = e - k;
        n.sep[g] = pending;
        n.len[g] = len;
        j = if open { e + 1 } else { e };
        n.end[g] = j;
        n.digits_upto[g] = ndigits;
        if g == 0 {
            n.parens_upto[0] = open;
            n.same_upto[0] = true;
            n.dot_upto[0] = false;
            n.rest2_upto[0] = true;
            n.all3_upto[0] = len >= 3;
        } else {
            n.parens_upto[g] = n.parens_upto[g - 1] || open;
            n.same_upto[g] = n.same_upto[g - 1] && (g == 1 || pending == n.sep[g - 1]);
            n.dot_upto[g] = n.dot_upto[g - 1] || pending == b'.';
            n.rest2_upto[g] = n.rest2_upto[g - 1] && len >= 2;
            n.all3_upto[g] = n.all3_upto[g - 1] && len >= 3;
        }
        n.count += 1;
        if n.count == MAX_GROUPS || ndigits > MAX_DIGITS {
            break;
        }
        // A separator counts only when another group follows it.
        let mut s = j;
        let mut sep = None;
        if s < b.len() && matches!(b[s], b' ' | b'-' | b'.') {
            sep = Some(b[s]);
            s += 1;
        }
        let next_group = s < b.len()
            && (b[s].is_ascii_digit()
                || (b[s] == b'(' && s + 1 < b.len() && b[s + 1].is_ascii_digit()));
        if !next_group || (sep.is_none() && !open && b[s] != b'(') {
            break;
        }
        // `(555)123`: no separator after a parenthesized group.
        pending = sep.unwrap_or(b' ');
        j = s;
    }
    n.count > 0
}

fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum % 10 == 0
}

/// `AAA-GG-SSSS` (dashes or spaces), excluding numbers never issued:
/// area 000, 666 or 900-999, group 00, serial 0000.
fn is_ssn(p: &Prefix<'_>) -> bool {
    if p.n.plus || p.parens() || p.groups() != [3, 2, 4] || !p.same_seps() || p.dots() {
        return false;
    }
    let d = match p.digits() {
        Some(d) => d,
        None => return false,
    };
    let area = &d[0..3];
    area != b"000" && area != b"666" && area[0] != b'9' && &d[3..5] != b"00" && &d[5..9] != b"0000"
}

/// 13 to 19 digits, in one run or in groups of at least 3 separated by the
/// same space or dash, passing the Luhn check.
fn is_card(p: &Prefix<'_>) -> bool {
    !p.n.plus
        && !p.parens()
        && (13..=19).contains(&p.digit_count())
        && p.n.all3_upto[p.g]
        && p.same_seps()
        && !p.dots()
        && p.digits().map_or(false, luhn)
}

/// With a leading `+`: 8 to 15 digits (E.164). Without: 10 or 11 digits
/// written with one kind of separator or with an area code in
/// parentheses (dots only as `555.123.4567`); in both cases every group
/// after the first has at least 2 digits.
fn is_phone(p: &Prefix<'_>) -> bool {
    let len = p.digit_count();
    let groups_ok = p.n.rest2_upto[p.g];
    if p.n.plus {
        (8..=15).contains(&len) && groups_ok
    } else if p.dots() {
        // Dots only as in 555.123.4567, so that IP addresses and
        // decimals are left alone.
        p.groups() == [3, 3, 4] && p.same_seps()
    } else {
        (10..=11).contains(&len) && groups_ok && (p.parens() || p.same_seps())
    }
}

fn classify(n: &Prefix<'_>) -> Option<Kind> {
    if is_ssn(n) {
        Some(Kind::Ssn)
    } else if is_card(n) {
        Some(Kind::Card)
    } else if is_phone(n) {
        Some(Kind::Phone)
    } else {
        None
    }
}

/// Bytes a number can start with: digits, `+` and `(`.
static CANDIDATE: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = b'0';
    while c <= b'9' {
        t[c as usize] = true;
        c += 1;
    }
    t[b'+' as usize] = true;
    t[b'(' as usize] = true;
    t
};

fn numbers(b: &[u8], taken: &[Span], kinds: &[Kind]) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut n = Number::new();
    let mut t = 0; // the next e-mail span that is not behind us
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if !CANDIDATE[usize::from(c)] {
            i += 1;
            continue;
        }
        while t < taken.len() && taken[t].end <= i {
            t += 1;
        }
        if t < taken.len() && taken[t].start <= i {
            i = taken[t].end;
            continue;
        }
        let starts = c.is_ascii_digit() || (i + 1 < b.len() && b[i + 1].is_ascii_digit());
        let boundary = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if !(starts && boundary) {
            i += 1;
            // The rest of a digit run glued to a word is no number either.
            while c.is_ascii_digit() && i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            continue;
        }
        if !number_at(b, i, &mut n) {
            i += 1;
            continue;
        }
        // The longest run of leading groups that is PII wins, so that
        // `123-45-6789 555-123-4567` is an SSN and then a phone number.
        let limit = taken.get(t).map_or(b.len(), |s| s.start);
        let mut hit = None;
        for g in (0..n.count).rev() {
            // Every kind has 8 to 19 digits.
            if !(8..=MAX_DIGITS).contains(&n.digits_upto[g]) {
                continue;
            }
            let p = Prefix { n: &n, g };
            let end = p.end();
            let glued = end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_');
            if end > limit || glued {
                continue;
            }
            if let Some(kind) = classify(&p).filter(|k| kinds.contains(k)) {
                hit = Some((end, kind));
                break;
            }
        }
        match hit {
            Some((end, kind)) => {
                spans.push(Span {
                    start: n.start,
                    end,
                    kind,
                });
                i = end;
            }
            // Not PII from here: go on after its first group.
            None => i = n.end[0],
        }
    }
    spans
}

fn redact(text: &str, kinds: &[Kind]) -> Redacted {
    let b = text.as_bytes();
    let mut spans = if kinds.contains(&Kind::Email) {
        emails(b)
    } else {
        Vec::new()
    };
    // Digits inside an e-mail address are never a phone or card number.
    let mut more = numbers(b, &spans, kinds);
    spans.append(&mut more);
    spans.sort_by_key(|s| s.start);

    let mut out = String::with_capacity(text.len());
    let mut found = Found::default();
    let mut last = 0;
    for s in &spans {
        // Spans start and end on ASCII bytes, so these are char boundaries.
        out.push_str(&text[last..s.start]);
        out.push_str(s.kind.mask());
        last = s.end;
        *match s.kind {
            Kind::Email => &mut found.email,
            Kind::Phone => &mut found.phone,
            Kind::Ssn => &mut found.ssn,
            Kind::Card => &mut found.card,
        } += 1;
    }
    out.push_str(&text[last..]);
    Redacted {
        redacted: out,
        found,
        total: spans.len() as u32,
    }
}

fn redact_pii(_ctx: &Context, req: Request) -> Result<Redacted, FunctionError> {
    if req.kinds.is_empty() {
        return Err(FunctionError::invalid_input(
            "kinds",
            "must name at least one kind (email, phone, ssn, card)",
        ));
    }
    Ok(redact(&req.text, &req.kinds))
}

aifn_guest::export!(redact_pii);

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> String {
        redact(text, &all_kinds()).redacted
    }

    #[test]
    fn masks_each_kind() {
        assert_eq!(r("mail jane.doe+hr@example.co.uk."), "mail [EMAIL].");
        assert_eq!(r("call +1 (555) 123-4567 now"), "call [PHONE] now");
        assert_eq!(r("call 555-123-4567"), "call [PHONE]");
        assert_eq!(r("ssn 123-45-6789"), "ssn [SSN]");
        assert_eq!(r("card 4111 1111 1111 1111"), "card [CARD]");
        assert_eq!(r("card 4111111111111111"), "card [CARD]");
    }

    #[test]
    fn leaves_look_alikes() {
        assert_eq!(r("card 4111 1111 1111 1112"), "card 4111 1111 1111 1112");
        assert_eq!(r("on 2024-01-15 10:30"), "on 2024-01-15 10:30");
        assert_eq!(r("ssn 666-45-6789"), "ssn 666-45-6789");
        assert_eq!(r("1 2 3 4 5 6 7 8 9 10 11"), "1 2 3 4 5 6 7 8 9 10 11");
        assert_eq!(r("user@localhost"), "user@localhost");
        assert_eq!(r("ID5551234567"), "ID5551234567");
        assert_eq!(r("total 1,234,567.89"), "total 1,234,567.89");
        assert_eq!(r("host 192.168.100.200"), "host 192.168.100.200");
        assert_eq!(r("call 555.123.4567"), "call [PHONE]");
        assert_eq!(r("a@b.c 5@x.org"), "a@b.c [EMAIL]");
        assert_eq!(r("12 555-123-4567"), "12 [PHONE]");
        assert_eq!(r("123-45-6789 555-123-4567"), "[SSN] [PHONE]");
        assert_eq!(
            r("4111 1111 1111 1111 4111 1111 1111 1111"),
            "[CARD] [CARD]"
        );
    }

    #[test]
    fn luhn_check() {
        assert!(luhn(b"4111111111111111"));
        assert!(luhn(b"378282246310005"));
        assert!(!luhn(b"4111111111111112"));
    }
}
