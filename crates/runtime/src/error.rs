//! The runtime's typed errors. Each keeps the error it came from as its
//! `source`, so callers can tell failures apart by type.

use std::sync::Arc;

use aifn_types::OutcomeKind;

/// A wasmtime (or operating-system) error kept as the source of a
/// [`ModuleError`]. Shared, so that a refusal stays `Clone`; it is equal
/// only to its own clones, never to another error with the same text.
#[derive(Clone)]
pub struct Cause(Arc<wasmtime::Error>);

impl Cause {
    pub(crate) fn new(error: impl Into<wasmtime::Error>) -> Cause {
        Cause(Arc::new(error.into()))
    }

    /// The underlying error, e.g. to `downcast_ref` it.
    pub fn error(&self) -> &wasmtime::Error {
        &self.0
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Cause) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Cause {}

impl std::fmt::Debug for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&*self.0, f)
    }
}

/// The wasm parser's or validator's error, kept as the source of
/// [`ModuleError::Invalid`]. Equal when it says the same at the same
/// offset, so that two validations of one module compare equal.
#[derive(Debug, Clone)]
pub struct WasmError(pub(crate) wasmparser::BinaryReaderError);

impl WasmError {
    /// Byte offset of the problem.
    pub fn offset(&self) -> usize {
        self.0.offset()
    }

    /// What the parser or validator said.
    pub fn message(&self) -> &str {
        self.0.message()
    }

    /// The underlying error.
    pub fn error(&self) -> &wasmparser::BinaryReaderError {
        &self.0
    }
}

impl PartialEq for WasmError {
    fn eq(&self, other: &WasmError) -> bool {
        (self.offset(), self.message()) == (other.offset(), other.message())
    }
}

impl Eq for WasmError {}

impl std::fmt::Display for WasmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

// The parser's errors have no source of their own.
impl std::error::Error for WasmError {}

// The cause stands for the wasmtime error itself: its sources are the
// wasmtime error's sources.
impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

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
    /// Malformed or invalid wasm, as the parser or validator said.
    #[error("invalid wasm at offset {}: {}", .0.offset(), .0.message())]
    Invalid(#[source] WasmError),
    /// An import names a function type the module does not define.
    #[error("invalid wasm at offset 0: unknown type {index}")]
    UnknownType {
        /// The type index.
        index: u32,
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
    /// The compiler (or the linker) refused a module that passed
    /// validation.
    #[error("compilation failed: {0}")]
    Compile(#[source] Cause),
    /// The compile thread ended without an answer.
    #[error("compilation failed: the compile thread died")]
    CompileThreadDied,
    /// A JavaScript package that is malformed (cut short, not UTF-8, too
    /// large).
    #[error("invalid JavaScript function: {reason}")]
    InvalidScript {
        /// What is wrong.
        reason: String,
    },
    /// The JavaScript source does not compile: a syntax error, or an
    /// `import` declaration (there is nothing to import).
    #[error("the JavaScript source does not compile: {message}{}", place(*.line, *.column))]
    ScriptError {
        /// The engine's message, e.g. `SyntaxError: unexpected token`.
        message: String,
        /// 1-based line; 0 when the engine did not say where.
        line: u32,
        /// 1-based column; 0 when the engine did not say where.
        column: u32,
    },
    /// The package names an engine this aifn does not have.
    #[error("the JavaScript engine {sha256} is not available in this aifn release")]
    UnknownEngine {
        /// The engine's sha256.
        sha256: String,
    },
    /// The JavaScript engine could not be prepared or did not compile the
    /// source (out of fuel, time or memory).
    #[error("the JavaScript engine failed: {reason}")]
    Engine {
        /// What happened.
        reason: String,
    },
}

/// ` (line L, column C)`, when the engine said where.
fn place(line: u32, column: u32) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(" (line {line}, column {column})")
    }
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
    /// The engine refused the configuration, or the linker a host function.
    #[error("cannot create the wasm engine: {0}")]
    Engine(#[source] wasmtime::Error),
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
    /// The compile threads could not be started.
    #[error("cannot start the compile threads: {0}")]
    CompilePool(#[source] rayon::ThreadPoolBuildError),
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::{Cause, ModuleError};

    fn thread_error(text: &str) -> ModuleError {
        ModuleError::Compile(Cause::new(std::io::Error::other(text.to_owned())))
    }

    #[test]
    fn a_refusal_keeps_its_typed_source_and_its_message() {
        let e = thread_error("no threads left");
        assert_eq!(e.to_string(), "compilation failed: no threads left");
        let cause = e
            .source()
            .and_then(|s| s.downcast_ref::<Cause>())
            .expect("the cause is the source");
        assert!(format!("{cause:?}").contains("no threads left"));
        let io = cause.error().downcast_ref::<std::io::Error>();
        assert_eq!(
            io.map(std::io::Error::kind),
            Some(std::io::ErrorKind::Other)
        );
    }

    #[test]
    fn a_cause_reads_as_its_error_and_keeps_that_errors_sources() {
        let disk = std::io::Error::other("disk full");
        let cause = Cause::new(wasmtime::Error::new(disk).context("writing the artifact"));
        assert_eq!(cause.to_string(), "writing the artifact");
        let source = cause.source().expect("the context's source");
        assert_eq!(source.to_string(), "disk full");
    }

    #[test]
    fn causes_are_equal_only_to_their_own_clones() {
        let e = thread_error("same text");
        assert_eq!(e.clone(), e);
        assert_ne!(thread_error("same text"), e);
    }
}
