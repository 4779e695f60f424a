//! The allowlist of imports: ABI v1 and zero-capability WASI, with exact
//! signatures. Everything else is `forbidden_import`.

use wasmparser::{FuncType, ValType};

use crate::{abi, wasi};

/// A value type in a host function signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    I32,
    I64,
}

/// A host function signature.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sig {
    pub(crate) params: &'static [Ty],
    pub(crate) results: &'static [Ty],
}

impl Sig {
    pub(crate) const fn new(params: &'static [Ty], results: &'static [Ty]) -> Sig {
        Sig { params, results }
    }

    fn matches(&self, ty: &FuncType) -> bool {
        fn same(ours: &[Ty], theirs: &[ValType]) -> bool {
            ours.len() == theirs.len()
                && ours.iter().zip(theirs).all(|(a, b)| {
                    matches!((a, b), (Ty::I32, ValType::I32) | (Ty::I64, ValType::I64))
                })
        }
        same(self.params, ty.params()) && same(self.results, ty.results())
    }
}

/// Why an import is refused.
pub(crate) enum Refusal {
    UnknownModule,
    UnknownName,
    WrongSignature(Sig),
}

/// Who is being linked: an uploaded module, or aifn's own JavaScript
/// engine, which alone may import `aifn_js`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Importer {
    Function,
    Engine,
}

/// Whether a function import is provided by the host with that signature.
/// Returns whether it is a WASI import.
pub(crate) fn check_func(
    importer: Importer,
    module: &str,
    name: &str,
    ty: &FuncType,
) -> Result<bool, Refusal> {
    let (table, is_wasi) = match module {
        abi::MODULE => (abi::FUNCS, false),
        wasi::MODULE => (wasi::FUNCS, true),
        abi::SCRIPT_MODULE if importer == Importer::Engine => (abi::SCRIPT_FUNCS, false),
        _ => return Err(Refusal::UnknownModule),
    };
    match table.iter().find(|(n, _)| *n == name) {
        None => Err(Refusal::UnknownName),
        Some((_, sig)) if sig.matches(ty) => Ok(is_wasi),
        Some((_, sig)) => Err(Refusal::WrongSignature(*sig)),
    }
}

/// Renders a signature the way reports show it: `(i32, i32) -> i32`.
pub(crate) fn render(params: &[ValType], results: &[ValType]) -> String {
    let list = |v: &[ValType]| {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let results = match results.len() {
        0 => "()".to_owned(),
        1 => list(results),
        _ => format!("({})", list(results)),
    };
    format!("({}) -> {}", list(params), results)
}

pub(crate) fn render_sig(sig: &Sig) -> String {
    let conv = |v: &[Ty]| {
        v.iter()
            .map(|t| match t {
                Ty::I32 => ValType::I32,
                Ty::I64 => ValType::I64,
            })
            .collect::<Vec<_>>()
    };
    render(&conv(sig.params), &conv(sig.results))
}
