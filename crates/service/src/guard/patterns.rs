//! The tenant's own detectors: named regular expressions, compiled with
//! the `regex` crate (linear time in the text, no backtracking) under
//! size caps, and matched together as one `RegexSet`.
//!
//! Bounds: at most [`MAX_PATTERNS`] patterns of at most
//! [`MAX_PATTERN_BYTES`] bytes; each compiles to at most
//! [`PATTERN_SIZE_LIMIT`] and the set to at most [`SET_SIZE_LIMIT`], with
//! a lazy-DFA cache of at most [`DFA_SIZE_LIMIT`] per thread. Names are
//! `[a-z0-9_]{1,64}` and unique. A pattern that matches the empty string
//! would flag (or block) every output, and is refused.

use regex::{RegexBuilder, RegexSet, RegexSetBuilder};

use aifn_types::GuardPattern;

/// The most patterns a tenant may define.
pub(crate) const MAX_PATTERNS: usize = 32;
/// The longest pattern source.
pub(crate) const MAX_PATTERN_BYTES: usize = 1024;
/// The longest pattern name.
pub(crate) const MAX_NAME_BYTES: usize = 64;
/// The compiled size cap of one pattern.
pub(crate) const PATTERN_SIZE_LIMIT: usize = 256 * 1024;
/// The compiled size cap of the tenant's set.
pub(crate) const SET_SIZE_LIMIT: usize = 2 * 1024 * 1024;
/// The lazy DFA's cache cap (per thread that scans).
pub(crate) const DFA_SIZE_LIMIT: usize = 1024 * 1024;

/// Why output-guard settings cannot be compiled.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GuardError {
    /// More patterns than allowed.
    #[error("the output guard allows at most {max} patterns, not {count}")]
    TooManyPatterns {
        /// How many were given.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// A name that is not `[a-z0-9_]{1,64}`.
    #[error("pattern name {name:?} is not 1 to 64 of a-z, 0-9 and _")]
    BadName {
        /// The name (cut to 64 bytes).
        name: String,
    },
    /// Two patterns of one name.
    #[error("pattern name {name} is used twice")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// A source longer than allowed.
    #[error("pattern {name} is {len} bytes; at most {max} are allowed")]
    PatternTooLong {
        /// The pattern's name.
        name: String,
        /// Its length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// Not a valid expression of the `regex` crate's syntax.
    #[error("pattern {name} is not a valid regular expression: {reason}")]
    InvalidPattern {
        /// The pattern's name.
        name: String,
        /// What the parser said, on one line.
        reason: String,
        /// The parser's error.
        #[source]
        source: regex::Error,
    },
    /// Over a compiled size cap.
    #[error("pattern {name} compiles to more than {limit} bytes")]
    PatternTooBig {
        /// The pattern's name, or `(all patterns)` for the set.
        name: String,
        /// The cap that was hit.
        limit: usize,
    },
    /// A pattern that matches the empty string.
    #[error("pattern {name} matches the empty string, so it would match every output")]
    MatchesEmpty {
        /// The pattern's name.
        name: String,
    },
    /// The built-in credential detector failed to compile (a bug).
    #[error("the built-in credential detector does not compile")]
    Builtin {
        /// The regex error.
        #[source]
        source: regex::Error,
    },
}

/// A tenant's compiled patterns.
#[derive(Debug, Clone)]
pub(super) struct TenantPatterns {
    set: RegexSet,
    names: Vec<String>,
}

impl TenantPatterns {
    /// `None` when the tenant has no patterns.
    pub(super) fn compile(patterns: &[GuardPattern]) -> Result<Option<TenantPatterns>, GuardError> {
        if patterns.len() > MAX_PATTERNS {
            return Err(GuardError::TooManyPatterns {
                count: patterns.len(),
                max: MAX_PATTERNS,
            });
        }
        if patterns.is_empty() {
            return Ok(None);
        }
        let mut names: Vec<String> = Vec::with_capacity(patterns.len());
        for p in patterns {
            check_name(&p.name)?;
            if names.contains(&p.name) {
                return Err(GuardError::DuplicateName {
                    name: p.name.clone(),
                });
            }
            check_one(p)?;
            names.push(p.name.clone());
        }
        let set = RegexSetBuilder::new(patterns.iter().map(|p| p.regex.as_str()))
            .size_limit(SET_SIZE_LIMIT)
            .dfa_size_limit(DFA_SIZE_LIMIT)
            .build()
            .map_err(|e| regex_error("(all patterns)", SET_SIZE_LIMIT, e))?;
        Ok(Some(TenantPatterns { set, names }))
    }

    /// Whether any pattern matches (allocates nothing).
    pub(super) fn is_match(&self, s: &str) -> bool {
        self.set.is_match(s)
    }

    /// The names of the patterns that match `s`.
    pub(super) fn matching<'a>(&'a self, s: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.set
            .matches(s)
            .into_iter()
            .filter_map(|i| self.names.get(i).map(String::as_str))
    }
}

fn check_name(name: &str) -> Result<(), GuardError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
    if ok {
        return Ok(());
    }
    let mut cut = name.len().min(MAX_NAME_BYTES);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    Err(GuardError::BadName {
        name: name[..cut].to_owned(),
    })
}

/// Compiles one pattern alone, for an error that names it.
fn check_one(p: &GuardPattern) -> Result<(), GuardError> {
    if p.regex.len() > MAX_PATTERN_BYTES {
        return Err(GuardError::PatternTooLong {
            name: p.name.clone(),
            len: p.regex.len(),
            max: MAX_PATTERN_BYTES,
        });
    }
    let re = RegexBuilder::new(&p.regex)
        .size_limit(PATTERN_SIZE_LIMIT)
        .dfa_size_limit(DFA_SIZE_LIMIT)
        .build()
        .map_err(|e| regex_error(&p.name, PATTERN_SIZE_LIMIT, e))?;
    if re.is_match("") {
        return Err(GuardError::MatchesEmpty {
            name: p.name.clone(),
        });
    }
    Ok(())
}

fn regex_error(name: &str, limit: usize, e: regex::Error) -> GuardError {
    match &e {
        regex::Error::CompiledTooBig(_) => GuardError::PatternTooBig {
            name: name.to_owned(),
            limit,
        },
        other => {
            let text = other.to_string();
            // The parser's message ends with `error: <what>` under a caret.
            let reason = text
                .lines()
                .rev()
                .find_map(|l| l.trim().strip_prefix("error: "))
                .unwrap_or(text.trim())
                .to_owned();
            GuardError::InvalidPattern {
                name: name.to_owned(),
                reason,
                source: e,
            }
        }
    }
}
