use std::fmt;

use serde::{Deserialize, Serialize};

/// The language of a source-uploaded function: aifn builds the module from
/// the text itself, so the approver reads the code that runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(
    rename_all = "snake_case",
    expecting = "a source language: wat or javascript"
)]
pub enum SourceLanguage {
    /// The WebAssembly text format.
    Wat,
    /// One ES module exporting `main`, run by aifn's JavaScript engine.
    Javascript,
}

impl SourceLanguage {
    /// The product name.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceLanguage::Wat => "wat",
            SourceLanguage::Javascript => "javascript",
        }
    }
}

impl fmt::Display for SourceLanguage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A function's source as uploaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a JSON object with language and text"
)]
pub struct Source {
    /// Its language.
    pub language: SourceLanguage,
    /// The text, UTF-8.
    pub text: String,
}

impl Source {
    /// The largest source text accepted, in bytes.
    pub const MAX_BYTES: usize = 1 << 20;
}

/// What a version's listing says of its source, without the text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// Its language.
    pub language: SourceLanguage,
    /// Lowercase hex sha256 of the text's bytes.
    pub sha256: String,
    /// Size of the text in bytes.
    pub size_bytes: u64,
}
