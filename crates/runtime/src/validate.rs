//! Static validation and inspection of a module, before any compiling:
//! caps, allowed features, the import allowlist and the ABI's exports.

use aifn_types::{ExportInfo, ImportInfo, Limits, MemoryInfo, ModuleReport, TableInfo};
use sha2::{Digest, Sha256};
use wasmparser::{
    Encoding, ExternalKind, FuncType, Parser, Payload, TypeRef, Validator, WasmFeatures,
};

use crate::ModuleError;
use crate::error::WasmError;
use crate::imports::{self, Importer, Refusal};

const WASM_PAGE: u64 = 65536;

/// The proposals a module may use (beyond the MVP), by report name.
const OPTIONAL: &[(&str, WasmFeatures)] = &[
    ("mutable_global", WasmFeatures::MUTABLE_GLOBAL),
    (
        "saturating_float_to_int",
        WasmFeatures::SATURATING_FLOAT_TO_INT,
    ),
    ("sign_extension", WasmFeatures::SIGN_EXTENSION),
    ("multi_value", WasmFeatures::MULTI_VALUE),
    ("bulk_memory", WasmFeatures::BULK_MEMORY),
    ("reference_types", WasmFeatures::REFERENCE_TYPES),
    ("simd", WasmFeatures::SIMD),
    ("extended_const", WasmFeatures::EXTENDED_CONST),
    ("tail_call", WasmFeatures::TAIL_CALL),
];

/// Proposals that are refused, by name, to say which one a module needs.
const REFUSED: &[(&str, WasmFeatures)] = &[
    ("threads", WasmFeatures::THREADS),
    (
        "shared_everything_threads",
        WasmFeatures::SHARED_EVERYTHING_THREADS,
    ),
    ("memory64", WasmFeatures::MEMORY64),
    ("multi_memory", WasmFeatures::MULTI_MEMORY),
    ("relaxed_simd", WasmFeatures::RELAXED_SIMD),
    ("exceptions", WasmFeatures::EXCEPTIONS),
    ("legacy_exceptions", WasmFeatures::LEGACY_EXCEPTIONS),
    ("gc", WasmFeatures::GC),
    ("externref", WasmFeatures::GC_TYPES),
    ("function_references", WasmFeatures::FUNCTION_REFERENCES),
    ("stack_switching", WasmFeatures::STACK_SWITCHING),
    ("custom_page_sizes", WasmFeatures::CUSTOM_PAGE_SIZES),
    ("wide_arithmetic", WasmFeatures::WIDE_ARITHMETIC),
    ("memory_control", WasmFeatures::MEMORY_CONTROL),
    ("custom_descriptors", WasmFeatures::CUSTOM_DESCRIPTORS),
    ("compact_imports", WasmFeatures::COMPACT_IMPORTS),
];

/// The feature set aifn accepts; the engine is configured with the same.
/// `gc_types` stays off, so `externref` (which would need a GC) is refused.
pub(crate) fn allowed_features() -> WasmFeatures {
    let mut f = WasmFeatures::FLOATS;
    for (_, flag) in OPTIONAL {
        f |= *flag;
    }
    f
}

/// A module that passed every static check.
pub(crate) struct Validated {
    pub(crate) report: ModuleReport,
    pub(crate) has_initialize: bool,
}

fn invalid(e: wasmparser::BinaryReaderError) -> ModuleError {
    ModuleError::Invalid(WasmError(e))
}

fn cap(what: &'static str, actual: u64, limit: u64) -> Result<(), ModuleError> {
    if actual > limit {
        Err(ModuleError::OverCap {
            what,
            actual,
            limit,
        })
    } else {
        Ok(())
    }
}

fn kind_name(k: ExternalKind) -> &'static str {
    match k {
        ExternalKind::Func | ExternalKind::FuncExact => "func",
        ExternalKind::Table => "table",
        ExternalKind::Memory => "memory",
        ExternalKind::Global => "global",
        ExternalKind::Tag => "tag",
    }
}

/// Validates `bytes` against the caps in `limits` and the ABI, and
/// describes what it found.
pub(crate) fn validate(bytes: &[u8], limits: &Limits) -> Result<Validated, ModuleError> {
    validate_as(Importer::Function, bytes, limits)
}

/// Validates an uploaded module (`Importer::Function`) or aifn's own
/// JavaScript engine, which may also import `aifn_js`.
pub(crate) fn validate_as(
    importer: Importer,
    bytes: &[u8],
    limits: &Limits,
) -> Result<Validated, ModuleError> {
    cap_size(bytes, limits)?;
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(ModuleError::NotWasm {
            reason: "missing the \\0asm header".into(),
        });
    }
    // Caps first: they are cheap and bound everything that follows.
    let facts = scan(bytes, limits)?;
    // Imports before features: a forbidden capability is the clearer refusal.
    let report_imports = check_imports(importer, &facts)?;
    validate_features(bytes)?;
    let has_initialize = check_exports(&facts)?;

    // More than one memory needs multi_memory, refused with the features.
    if facts.tables.len() > 1 {
        return Err(ModuleError::OverCap {
            what: "tables",
            actual: facts.tables.len() as u64,
            limit: 1,
        });
    }
    let memory = facts.memories.first().map(|m| MemoryInfo {
        min_pages: m.initial,
        max_pages: m.maximum,
    });
    if let Some(m) = &memory {
        cap(
            "initial memory (bytes)",
            m.min_pages.saturating_mul(WASM_PAGE),
            limits.memory_bytes,
        )?;
    }
    let table = facts.tables.first().map(|t| TableInfo {
        min: t.initial,
        max: t.maximum,
    });
    if let Some(t) = &table {
        cap("initial table elements", t.min, limits.table_elements)?;
    }

    let features = OPTIONAL
        .iter()
        .filter(|(_, flag)| {
            Validator::new_with_features(allowed_features() - *flag)
                .validate_all(bytes)
                .is_err()
        })
        .map(|(name, _)| (*name).to_owned())
        .collect();

    let report = ModuleReport {
        sha256: hex::encode(Sha256::digest(bytes)),
        size_bytes: bytes.len() as u64,
        uses_wasi: report_imports
            .iter()
            .any(|i| i.module == crate::wasi::MODULE),
        imports: report_imports,
        exports: facts
            .exports
            .iter()
            .map(|(n, k, _)| ExportInfo {
                name: n.clone(),
                kind: kind_name(*k).into(),
            })
            .collect(),
        memory,
        table,
        function_count: facts.defined_funcs.len() as u64,
        code_size_bytes: facts.code_size,
        largest_function_bytes: facts.largest_body,
        features,
        has_start: facts.has_start,
        script: None,
    };
    Ok(Validated {
        report,
        has_initialize,
    })
}

fn cap_size(bytes: &[u8], limits: &Limits) -> Result<(), ModuleError> {
    let size = bytes.len() as u64;
    if size > limits.module_bytes {
        return Err(ModuleError::TooLarge {
            size,
            limit: limits.module_bytes,
        });
    }
    Ok(())
}

/// What one pass over the sections finds.
#[derive(Default)]
struct Facts {
    types: Vec<FuncType>,
    imports: Vec<(String, String, TypeRef)>,
    imported_funcs: u64,
    defined_funcs: Vec<u32>,
    memories: Vec<wasmparser::MemoryType>,
    tables: Vec<wasmparser::TableType>,
    exports: Vec<(String, ExternalKind, u32)>,
    has_start: bool,
    code_size: u64,
    largest_body: u64,
}

impl Facts {
    fn func_type(&self, func_index: u32) -> Option<&FuncType> {
        let idx = func_index as u64;
        let type_index = if idx < self.imported_funcs {
            self.imports
                .iter()
                .filter_map(|(_, _, t)| match t {
                    TypeRef::Func(i) => Some(*i),
                    _ => None,
                })
                .nth(idx as usize)?
        } else {
            *self
                .defined_funcs
                .get((idx - self.imported_funcs) as usize)?
        };
        self.types.get(type_index as usize)
    }
}

fn scan(bytes: &[u8], limits: &Limits) -> Result<Facts, ModuleError> {
    let mut f = Facts::default();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(invalid)? {
            Payload::Version {
                encoding: Encoding::Component,
                ..
            } => {
                return Err(ModuleError::NotWasm {
                    reason: "this is a component; aifn runs core modules".into(),
                });
            }
            Payload::TypeSection(r) => {
                for t in r.into_iter_err_on_gc_types() {
                    f.types.push(t.map_err(invalid)?);
                }
            }
            Payload::ImportSection(r) => {
                for imp in r.into_imports() {
                    let imp = imp.map_err(invalid)?;
                    // wasmparser 0.254 reads and validates exact function
                    // imports without their proposal, but wasmtime 48 cannot
                    // compile them: refuse here, so that inspection and
                    // compilation agree (found by fuzz/validate).
                    if matches!(imp.ty, TypeRef::FuncExact(_)) {
                        return Err(ModuleError::ForbiddenFeature {
                            feature: "custom-descriptors (exact function imports)".into(),
                        });
                    }
                    if matches!(imp.ty, TypeRef::Func(_)) {
                        f.imported_funcs += 1;
                    }
                    f.imports
                        .push((imp.module.to_owned(), imp.name.to_owned(), imp.ty));
                }
                cap("functions", f.imported_funcs, limits.functions)?;
            }
            Payload::FunctionSection(r) => {
                cap(
                    "functions",
                    f.imported_funcs + u64::from(r.count()),
                    limits.functions,
                )?;
                for ty in r {
                    f.defined_funcs.push(ty.map_err(invalid)?);
                }
            }
            Payload::TableSection(r) => {
                for t in r {
                    f.tables.push(t.map_err(invalid)?.ty);
                }
            }
            Payload::MemorySection(r) => {
                for m in r {
                    f.memories.push(m.map_err(invalid)?);
                }
            }
            Payload::ExportSection(r) => {
                for e in r {
                    let e = e.map_err(invalid)?;
                    f.exports.push((e.name.to_owned(), e.kind, e.index));
                }
            }
            Payload::StartSection { .. } => f.has_start = true,
            Payload::CodeSectionEntry(body) => {
                let size = body.range().len() as u64;
                cap(
                    "function body size (bytes)",
                    size,
                    limits.function_body_bytes,
                )?;
                let mut locals: u64 = 0;
                for entry in body.get_locals_reader().map_err(invalid)? {
                    let (count, _) = entry.map_err(invalid)?;
                    locals += u64::from(count);
                    cap("locals in one function", locals, limits.locals)?;
                }
                f.code_size += size;
                f.largest_body = f.largest_body.max(size);
            }
            _ => {}
        }
    }
    Ok(f)
}

fn validate_features(bytes: &[u8]) -> Result<(), ModuleError> {
    let Err(err) = Validator::new_with_features(allowed_features()).validate_all(bytes) else {
        return Ok(());
    };
    // Valid with everything on means it needs a refused proposal: find which.
    if Validator::new_with_features(WasmFeatures::all())
        .validate_all(bytes)
        .is_ok()
    {
        for (name, flag) in REFUSED {
            if Validator::new_with_features(allowed_features().union(*flag))
                .validate_all(bytes)
                .is_ok()
            {
                return Err(ModuleError::ForbiddenFeature {
                    feature: (*name).to_owned(),
                });
            }
        }
        return Err(ModuleError::ForbiddenFeature {
            feature: "a combination of proposals".to_owned(),
        });
    }
    Err(invalid(err))
}

fn check_imports(importer: Importer, f: &Facts) -> Result<Vec<ImportInfo>, ModuleError> {
    let mut out = Vec::with_capacity(f.imports.len());
    for (module, name, ty) in &f.imports {
        let refuse = |reason: String| ModuleError::ForbiddenImport {
            module: module.clone(),
            name: name.clone(),
            reason,
        };
        let (kind, signature) = match ty {
            TypeRef::Func(i) => {
                let fty = f
                    .types
                    .get(*i as usize)
                    .ok_or(ModuleError::UnknownType { index: *i })?;
                match imports::check_func(importer, module, name, fty) {
                    Ok(_) => {}
                    Err(Refusal::UnknownModule) => {
                        return Err(refuse(
                            "the host provides only `aifn` (ABI v1) and zero-capability `wasi_snapshot_preview1`".into(),
                        ));
                    }
                    Err(Refusal::UnknownName) => {
                        return Err(refuse(format!(
                            "the host has no function `{name}` in `{module}`"
                        )));
                    }
                    Err(Refusal::WrongSignature(sig)) => {
                        return Err(refuse(format!(
                            "wrong signature {}, the host provides {}",
                            imports::render(fty.params(), fty.results()),
                            imports::render_sig(&sig)
                        )));
                    }
                }
                ("func", imports::render(fty.params(), fty.results()))
            }
            TypeRef::Memory(_) => {
                return Err(refuse(
                    "memories cannot be imported; define and export `memory`".into(),
                ));
            }
            TypeRef::Table(_) => return Err(refuse("tables cannot be imported".into())),
            TypeRef::Global(_) => return Err(refuse("globals cannot be imported".into())),
            TypeRef::Tag(_) => return Err(refuse("tags cannot be imported".into())),
            TypeRef::FuncExact(_) => {
                return Err(ModuleError::ForbiddenFeature {
                    feature: "custom-descriptors (exact function imports)".into(),
                });
            }
        };
        out.push(ImportInfo {
            module: module.clone(),
            name: name.clone(),
            kind: kind.into(),
            signature,
        });
    }
    Ok(out)
}

/// Checks `memory` and `aifn_call`; returns whether `_initialize` exists.
fn check_exports(f: &Facts) -> Result<bool, ModuleError> {
    let find = |name: &str| f.exports.iter().find(|(n, _, _)| n == name);
    let call_ty = "a function of type () -> i32";
    match find("aifn_call") {
        None => {
            return Err(ModuleError::MissingExport {
                name: "aifn_call",
                expected: call_ty,
            });
        }
        Some((_, ExternalKind::Func | ExternalKind::FuncExact, idx)) => {
            let ok = f.func_type(*idx).is_some_and(|t| {
                t.params().is_empty() && t.results() == [wasmparser::ValType::I32]
            });
            if !ok {
                return Err(ModuleError::WrongExport {
                    name: "aifn_call",
                    expected: call_ty,
                });
            }
        }
        Some(_) => {
            return Err(ModuleError::WrongExport {
                name: "aifn_call",
                expected: call_ty,
            });
        }
    }
    match find("memory") {
        None => {
            return Err(ModuleError::MissingExport {
                name: "memory",
                expected: "the module's linear memory",
            });
        }
        Some((_, ExternalKind::Memory, _)) => {}
        Some(_) => {
            return Err(ModuleError::WrongExport {
                name: "memory",
                expected: "a memory",
            });
        }
    }
    let init_ty = "a function of type () -> ()";
    match find("_initialize") {
        None => Ok(false),
        Some((_, ExternalKind::Func | ExternalKind::FuncExact, idx)) => {
            if f.func_type(*idx)
                .is_some_and(|t| t.params().is_empty() && t.results().is_empty())
            {
                Ok(true)
            } else {
                Err(ModuleError::WrongExport {
                    name: "_initialize",
                    expected: init_ty,
                })
            }
        }
        Some(_) => Err(ModuleError::WrongExport {
            name: "_initialize",
            expected: init_ty,
        }),
    }
}
