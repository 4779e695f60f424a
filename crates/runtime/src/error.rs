//! The runtime's typed errors.

use aifn_types::OutcomeKind;

/// Why a module was refused before it could run. Each variant maps to one
/// outcome kind: `invalid_module`, `forbidden_import` or `compile_timeout`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModuleError {
    /// Larger than `Limits::module_bytes`, refused before parsing.
    #[error("module is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// Size of the module.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Not a core wasm module at all.
    #[error("not a wasm module: {reason}")]
    NotWasm {
        /// What was found instead.
        reason: String,
    },
    /// Malformed or invalid wasm.
    #[error("invalid wasm at offset {offset}: {message}")]
    Invalid {
        /// Byte offset of the problem.
        offset: usize,
        /// What the validator said.
        message: String,
    },
    /// Valid wasm, but it needs a proposal aifn does not allow.
    #[error("module uses the {feature} feature, which aifn does not allow")]
    ForbiddenFeature {
        /// The proposal, e.g. `threads`.
        feature: String,
    },
    /// Over one of the static caps checked before compiling.
    #[error("{what} is {actual}, over the limit of {limit}")]
    OverCap {
        /// What was counted.
        what: &'static str,
        /// What the module has.
        actual: u64,
        /// The limit.
        limit: u64,
    },
    /// A required export is missing.
    #[error("missing export `{name}` ({expected})")]
    MissingExport {
        /// The export name.
        name: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// A known export has the wrong kind or type.
    #[error("export `{name}` must be {expected}")]
    WrongExport {
        /// The export name.
        name: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// An import the host does not provide.
    #[error("{module}.{name}: {reason}")]
    ForbiddenImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// Compiling took longer than `Limits::compile_timeout_ms`.
    #[error("compiling took longer than {limit_ms} ms")]
    CompileTimeout {
        /// The deadline.
        limit_ms: u64,
    },
    /// The compiler refused a module that passed validation.
    #[error("compilation failed: {0}")]
    Compile(String),
}

impl ModuleError {
    /// The outcome kind this refusal is reported as.
    pub fn kind(&self) -> OutcomeKind {
        match self {
            ModuleError::ForbiddenImport { .. } => OutcomeKind::ForbiddenImport,
            ModuleError::CompileTimeout { .. } => OutcomeKind::CompileTimeout,
            _ => OutcomeKind::InvalidModule,
        }
    }
}

/// The runtime could not be set up (bad configuration, no memory for the
/// instance pool, an unusable cache directory).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine refused the configuration.
    #[error("cannot create the wasm engine: {0}")]
    Engine(String),
    /// The configuration is inconsistent.
    #[error("invalid runtime configuration: {0}")]
    Config(String),
    /// The on-disk module cache could not be used.
    #[error("module cache at {path}: {source}")]
    Cache {
        /// The cache directory or file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}
