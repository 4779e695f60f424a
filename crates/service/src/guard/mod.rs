//! The output guard: every `ok` output is scanned for sensitive values
//! before it is answered (after the output-schema check). The mode is the
//! function's manifest override if it has one, else the tenant's: `off`
//! (no scan), `flag` (the answer goes out, the record lists the findings)
//! or `block` (the output is withheld: `output_blocked`).
//!
//! What is scanned: every string of the output, object keys included (a
//! finding in a key points at its member), and integers (a card number
//! given as a JSON number). What is found: US SSNs, payment card numbers,
//! IBANs, credentials ([`numbers`], [`credentials`]) and the tenant's own
//! patterns ([`patterns`]). A finding is a kind and a JSON pointer, never
//! the value: nothing here stores, logs or returns what it saw.
//!
//! Cost: the walk allocates nothing while the output is clean. Strings
//! shorter than any built-in detector's shortest match (11 bytes) only
//! meet the tenant's patterns; the digit detectors run only on strings
//! with enough digits; credentials are looked for, in strings of 20 bytes
//! or more, by a byte-pair pass and then one regex. Tenant patterns are
//! one `RegexSet`, asked for the names only when it matches. The walk is
//! recursive; outputs come from the JSON parser, at most 128 levels deep.

mod credentials;
mod numbers;
mod patterns;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;

use aifn_types::{Finding, FindingKind, GuardMode, GuardSettings};
use regex::Regex;
use serde_json::Value;

pub use patterns::GuardError;

/// The shortest string a built-in detector can find something in
/// (`123-45-6789`).
const MIN_BUILTIN: usize = 11;

/// The mode that applies to one call: the manifest's override if it has
/// one (approved with the function), else the tenant's.
pub(crate) fn effective_mode(tenant: GuardMode, manifest: Option<GuardMode>) -> GuardMode {
    manifest.unwrap_or(tenant)
}

/// A tenant's output-guard settings, compiled once: `Send + Sync`, shared
/// by every call of the tenant until its settings change.
#[derive(Debug, Clone)]
pub struct OutputGuard {
    mode: GuardMode,
    credentials: Regex,
    patterns: Option<patterns::TenantPatterns>,
}

impl OutputGuard {
    /// Compiles `settings`; a bad pattern name, an invalid or oversized
    /// expression, or too many patterns is refused.
    pub fn compile(settings: &GuardSettings) -> Result<OutputGuard, GuardError> {
        Ok(OutputGuard {
            mode: settings.mode,
            credentials: credentials::regex()?,
            patterns: patterns::TenantPatterns::compile(&settings.patterns)?,
        })
    }

    /// The tenant's mode (a manifest may override it: [`effective_mode`]).
    pub fn mode(&self) -> GuardMode {
        self.mode
    }

    /// Every finding in `output`, sorted and deduplicated. Scans whatever
    /// the mode: the caller skips the scan when the effective mode is off.
    pub fn scan(&self, output: &Value) -> Vec<Finding> {
        let mut found = Vec::new();
        self.walk(output, &Path::Root, &mut found);
        if found.len() > 1 {
            found.sort();
            found.dedup();
        }
        found
    }

    fn walk(&self, value: &Value, path: &Path<'_>, found: &mut Vec<Finding>) {
        match value {
            Value::String(s) => self.text(s, path, found),
            Value::Number(n) => self.number(n, path, found),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.walk(item, &Path::Index(i, path), found);
                }
            }
            Value::Object(members) => {
                for (key, item) in members {
                    let here = Path::Key(key, path);
                    self.text(key, &here, found);
                    self.walk(item, &here, found);
                }
            }
            Value::Null | Value::Bool(_) => {}
        }
    }

    /// Scans one string (a value or a key) found at `path`.
    fn text(&self, s: &str, path: &Path<'_>, found: &mut Vec<Finding>) {
        let kinds = if s.len() < MIN_BUILTIN {
            Kinds::NONE
        } else {
            let b = s.as_bytes();
            let digits = numbers::count_digits(b);
            let mut kinds = numbers::scan(b, digits);
            if b.len() >= credentials::MIN_LEN && credentials::found(&self.credentials, s) {
                kinds.add(FindingKind::Credential);
            }
            kinds
        };
        self.report(s, kinds, path, found);
    }

    /// Scans an integer: a card number (the digit detectors' own rules)
    /// and the tenant's patterns, on its decimal form.
    fn number(&self, n: &serde_json::Number, path: &Path<'_>, found: &mut Vec<Finding>) {
        let int = match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Some((false, u)),
            (None, Some(i), _) => Some((true, i.unsigned_abs())),
            // A float with an integral value below 2^53 is exact.
            (None, None, Some(f)) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
                Some((f < 0.0, f.abs() as u64))
            }
            _ => None,
        };
        let Some((negative, magnitude)) = int else {
            return;
        };
        // Below 13 digits only the tenant's patterns can find anything.
        if self.patterns.is_none() && (negative || magnitude < 1_000_000_000_000) {
            return;
        }
        let mut buf = Decimal::new();
        let text = buf.render(negative, magnitude);
        let kinds = if negative {
            Kinds::NONE
        } else {
            numbers::scan_integer(text.as_bytes())
        };
        self.report(text, kinds, path, found);
    }

    /// Adds the findings of one scanned text: the built-in `kinds`, and
    /// the tenant patterns that match it. The pointer is built only here.
    fn report(&self, s: &str, kinds: Kinds, path: &Path<'_>, found: &mut Vec<Finding>) {
        let tenant = self.patterns.as_ref().filter(|p| p.is_match(s));
        if kinds.is_empty() && tenant.is_none() {
            return;
        }
        let pointer = path.pointer();
        for kind in kinds.iter() {
            found.push(Finding {
                kind,
                path: pointer.clone(),
                pattern: None,
            });
        }
        if let Some(tenant) = tenant {
            for name in tenant.matching(s) {
                found.push(Finding {
                    kind: FindingKind::Pattern,
                    path: pointer.clone(),
                    pattern: Some(name.to_owned()),
                });
            }
        }
    }
}

/// Where a value sits, as a chain of steps on the stack (no allocation
/// until a finding needs its pointer).
enum Path<'a> {
    Root,
    Key(&'a str, &'a Path<'a>),
    Index(usize, &'a Path<'a>),
}

impl Path<'_> {
    /// The RFC 6901 JSON pointer: `~` is written `~0` and `/` is `~1`.
    fn pointer(&self) -> String {
        let mut steps = Vec::new();
        let mut at = self;
        loop {
            match at {
                Path::Root => break,
                Path::Key(_, parent) | Path::Index(_, parent) => {
                    steps.push(at);
                    at = parent;
                }
            }
        }
        let mut out = String::new();
        for step in steps.iter().rev() {
            out.push('/');
            match step {
                Path::Key(key, _) => {
                    for c in key.chars() {
                        match c {
                            '~' => out.push_str("~0"),
                            '/' => out.push_str("~1"),
                            c => out.push(c),
                        }
                    }
                }
                Path::Index(i, _) => {
                    let _ = write!(out, "{i}");
                }
                Path::Root => {}
            }
        }
        out
    }
}

/// A set of built-in finding kinds, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Kinds(u8);

impl Kinds {
    pub(crate) const NONE: Kinds = Kinds(0);
    const ORDER: [FindingKind; 4] = [
        FindingKind::Ssn,
        FindingKind::PaymentCard,
        FindingKind::Iban,
        FindingKind::Credential,
    ];

    fn bit(kind: FindingKind) -> u8 {
        match kind {
            FindingKind::Ssn => 1,
            FindingKind::PaymentCard => 2,
            FindingKind::Iban => 4,
            FindingKind::Credential => 8,
            FindingKind::Pattern => 0,
        }
    }

    pub(crate) fn add(&mut self, kind: FindingKind) {
        self.0 |= Kinds::bit(kind);
    }

    pub(crate) fn has(self, kind: FindingKind) -> bool {
        self.0 & Kinds::bit(kind) != 0
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn iter(self) -> impl Iterator<Item = FindingKind> {
        Kinds::ORDER.into_iter().filter(move |k| self.has(*k))
    }
}

/// An integer's decimal form, written on the stack.
struct Decimal {
    buf: [u8; 21],
}

impl Decimal {
    fn new() -> Decimal {
        Decimal { buf: [0; 21] }
    }

    fn render(&mut self, negative: bool, mut n: u64) -> &str {
        let mut at = self.buf.len();
        loop {
            at -= 1;
            self.buf[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        if negative {
            at -= 1;
            self.buf[at] = b'-';
        }
        // Only ASCII digits and '-' were written.
        std::str::from_utf8(&self.buf[at..]).unwrap_or("")
    }
}
