//! The manifest file (TOML) an author uploads with a module, read into
//! [`Manifest`] here, so that its errors point into the author's file
//! (`FILE:LINE:COLUMN`), never into the JSON request the CLI builds.

use std::path::{Path, PathBuf};

use std::collections::HashSet;

use aifn_types::{CapturePolicy, GuardMode, LimitsRequest, Manifest, ManifestTest};
use anyhow::{Context as _, bail};
use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

/// The file's shape: the [`Manifest`], with schemas inline or in files.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    description: String,
    input_schema: Option<Value>,
    input_schema_file: Option<PathBuf>,
    output_schema: Option<Value>,
    output_schema_file: Option<PathBuf>,
    #[serde(default)]
    limits: LimitsRequest,
    capture: Option<CapturePolicy>,
    output_guard: Option<GuardMode>,
    /// `[[tests]]`, each with its place in the file for errors.
    #[serde(default)]
    tests: Vec<Spanned<ManifestTest>>,
}

/// The longest test name the host accepts.
const MAX_TEST_NAME: usize = 64;

/// The host's rules for `[[tests]]`, checked here too so that a mistake
/// points at its `[[tests]]` entry in the author's file.
fn tests(
    path: &Path,
    text: &str,
    tests: Vec<Spanned<ManifestTest>>,
) -> anyhow::Result<Vec<ManifestTest>> {
    if tests.len() > Manifest::MAX_TESTS {
        let at = position(path, text, tests[Manifest::MAX_TESTS].span().start);
        bail!(
            "{at}: at most {} [[tests]] per manifest",
            Manifest::MAX_TESTS
        );
    }
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(tests.len());
    for t in tests {
        let at = position(path, text, t.span().start);
        let t = t.into_inner();
        let chars = t.name.chars().count();
        if chars == 0 || chars > MAX_TEST_NAME {
            bail!("{at}: a test's name must be 1 to {MAX_TEST_NAME} characters");
        }
        if !names.insert(t.name.clone()) {
            bail!(
                "{at}: two tests are named {:?}: names must be unique",
                t.name
            );
        }
        if let Err(e) = t.expectation() {
            bail!("{at}: {e}");
        }
        out.push(t);
    }
    Ok(out)
}

/// What to write when there is no input schema (docs/authoring.md).
const HOW_TO_GIVE_A_SCHEMA: &str = "give the input's JSON Schema as `input_schema = { type = \"object\", ... }` \
     (or an `[input_schema]` table), as `input_schema_file = \"FILE.json\"`, \
     or in a schema.json beside the manifest";

/// `FILE:LINE:COLUMN` for a byte offset into `text` (1-based, as editors).
pub(crate) fn position(path: &Path, text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    format!("{}:{line}:{column}", path.display())
}

fn schema_file(dir: &Path, file: &Path) -> anyhow::Result<Value> {
    let p = dir.join(file);
    let bytes = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", p.display()))
}

/// One schema: inline, or from its file (not both).
fn schema(
    path: &Path,
    field: &str,
    inline: Option<Value>,
    file: Option<PathBuf>,
) -> anyhow::Result<Option<Value>> {
    let dir = path.parent().unwrap_or(Path::new("."));
    match (inline, file) {
        (Some(_), Some(_)) => bail!("{}: give {field} or {field}_file, not both", path.display()),
        (Some(v), None) => Ok(Some(v)),
        (None, Some(f)) => schema_file(dir, &f).map(Some),
        (None, None) => Ok(None),
    }
}

/// Parses a manifest's text; `path` names it in errors and anchors
/// relative schema files.
pub(crate) fn parse(path: &Path, text: &str) -> anyhow::Result<Manifest> {
    let file: ManifestFile = toml::from_str(text).map_err(|e| {
        let at = e.span().map_or_else(
            || path.display().to_string(),
            |s| position(path, text, s.start),
        );
        anyhow::anyhow!("{at}: {}", e.message().trim_end())
    })?;
    let mut input_schema = schema(
        path,
        "input_schema",
        file.input_schema,
        file.input_schema_file,
    )?;
    if input_schema.is_none() {
        let beside = path.parent().unwrap_or(Path::new(".")).join("schema.json");
        if beside.exists() {
            input_schema = Some(schema_file(Path::new(""), &beside)?);
        }
    }
    let Some(input_schema) = input_schema else {
        bail!(
            "{}: no input schema: {HOW_TO_GIVE_A_SCHEMA}",
            path.display()
        );
    };
    Ok(Manifest {
        description: file.description,
        input_schema,
        output_schema: schema(
            path,
            "output_schema",
            file.output_schema,
            file.output_schema_file,
        )?,
        limits: file.limits,
        capture: file.capture,
        output_guard: file.output_guard,
        tests: tests(path, text, file.tests)?,
    })
}

/// Reads and parses a manifest file.
pub(crate) fn read(path: &Path) -> anyhow::Result<Manifest> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(path, &text)
}

/// The manifest of `module`: the one given, else `MODULE.toml`, `aifn.toml`
/// beside the module, or `./aifn.toml`.
pub(crate) fn locate(module: &Path, manifest: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(m) = manifest {
        return Ok(m);
    }
    for candidate in [
        module.with_extension("toml"),
        module.parent().unwrap_or(Path::new(".")).join("aifn.toml"),
        PathBuf::from("aifn.toml"),
    ] {
        if candidate.exists() {
            return Ok(candidate);
        }
    }
    bail!("no manifest: pass --manifest FILE (a TOML file with description and input_schema)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(text: &str) -> String {
        format!(
            "{:#}",
            parse(Path::new("dir/f.toml"), text).expect_err("refused")
        )
    }

    #[test]
    fn a_complete_manifest_parses() {
        let m = parse(
            Path::new("f.toml"),
            "description = \"d\"\ninput_schema = { type = \"object\" }\n[limits]\nfuel = 5\n",
        )
        .expect("parses");
        assert_eq!(m.input_schema, serde_json::json!({"type": "object"}));
        assert_eq!(m.limits.fuel, Some(5));
    }

    #[test]
    fn errors_point_into_the_toml_file() {
        let e = parse_err("description = \"d\"\ninput_schema = {}\n[limits]\n  fuell = 3\n");
        assert!(e.starts_with("dir/f.toml:4:3: "), "{e}");
        assert!(e.contains("fuell"), "{e}");
        let e = parse_err("description = 5\n");
        assert!(e.starts_with("dir/f.toml:1:15: "), "{e}");
    }

    #[test]
    fn a_missing_input_schema_says_how_to_give_one() {
        let e = parse_err("description = \"d\"\n");
        assert!(e.starts_with("dir/f.toml: no input schema"), "{e}");
        assert!(e.contains("input_schema = "), "{e}");
        assert!(e.contains("schema.json beside the manifest"), "{e}");
        assert!(!e.contains("line"), "no position in a JSON body: {e}");
    }

    const SCHEMA: &str = "description = \"d\"\ninput_schema = { type = \"object\" }\n";

    #[test]
    fn tests_parse_with_each_kind_of_expectation() {
        let text = format!(
            "{SCHEMA}[[tests]]\nname = \"adds\"\ninput = {{ a = 1, b = [2, 3] }}\nexpect_output = {{ sum = 6 }}\n\
             [[tests]]\nname = \"spins\"\ninput = {{}}\nexpect_kind = \"fuel_exhausted\"\n\
             [[tests]]\nname = \"shape\"\ninput = {{}}\n[tests.expect_output_schema]\ntype = \"object\"\n"
        );
        let m = parse(Path::new("f.toml"), &text).expect("parses");
        assert_eq!(m.tests.len(), 3);
        assert_eq!(m.tests[0].name, "adds");
        assert_eq!(m.tests[0].input, serde_json::json!({"a": 1, "b": [2, 3]}));
        assert_eq!(
            m.tests[0].expect_output,
            Some(serde_json::json!({"sum": 6}))
        );
        assert_eq!(
            m.tests[1].expect_kind,
            Some(aifn_types::OutcomeKind::FuelExhausted)
        );
        assert_eq!(
            m.tests[2].expect_output_schema,
            Some(serde_json::json!({"type": "object"}))
        );
        // Without [[tests]] there are none.
        assert!(
            parse(Path::new("f.toml"), SCHEMA)
                .expect("parses")
                .tests
                .is_empty()
        );
    }

    #[test]
    fn a_test_without_exactly_one_expectation_points_at_its_entry() {
        let e = parse_err(&format!("{SCHEMA}[[tests]]\nname = \"t\"\ninput = {{}}\n"));
        assert!(e.starts_with("dir/f.toml:3:1: "), "{e}");
        assert!(e.contains("exactly one of expect_output"), "{e}");
        let e = parse_err(&format!(
            "{SCHEMA}[[tests]]\nname = \"t\"\ninput = {{}}\nexpect_kind = \"ok\"\nexpect_output = 1\n"
        ));
        assert!(e.contains("exactly one of expect_output"), "{e}");
    }

    #[test]
    fn test_names_are_unique_and_bounded() {
        let one = "[[tests]]\nname = \"t\"\ninput = {}\nexpect_kind = \"ok\"\n";
        let e = parse_err(&format!("{SCHEMA}{one}{one}"));
        assert!(e.starts_with("dir/f.toml:7:1: "), "{e}");
        assert!(e.contains("names must be unique"), "{e}");
        let e = parse_err(&format!("{SCHEMA}{}", one.replace("\"t\"", "\"\"")));
        assert!(e.contains("1 to 64 characters"), "{e}");
        let long = format!("\"{}\"", "x".repeat(65));
        let e = parse_err(&format!("{SCHEMA}{}", one.replace("\"t\"", &long)));
        assert!(e.contains("1 to 64 characters"), "{e}");
        let many: String = (0..=Manifest::MAX_TESTS)
            .map(|i| one.replace("\"t\"", &format!("\"t{i}\"")))
            .collect();
        let e = parse_err(&format!("{SCHEMA}{many}"));
        assert!(e.contains("at most 32 [[tests]]"), "{e}");
        let exactly: String = (0..Manifest::MAX_TESTS)
            .map(|i| one.replace("\"t\"", &format!("\"t{i}\"")))
            .collect();
        let m = parse(Path::new("f.toml"), &format!("{SCHEMA}{exactly}")).expect("32 is allowed");
        assert_eq!(m.tests.len(), Manifest::MAX_TESTS);
    }

    #[test]
    fn unknown_keys_in_a_test_point_into_the_file() {
        let e = parse_err(&format!(
            "{SCHEMA}[[tests]]\nname = \"t\"\ninput = {{}}\nexpect = 1\n"
        ));
        assert!(e.starts_with("dir/f.toml:"), "{e}");
        assert!(e.contains("expect"), "{e}");
    }

    #[test]
    fn schema_json_beside_the_manifest_is_the_input_schema() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("schema.json"), r#"{"type":"object"}"#).expect("write");
        let m = parse(&dir.path().join("aifn.toml"), "description = \"d\"\n").expect("parses");
        assert_eq!(m.input_schema, serde_json::json!({"type": "object"}));
    }
}
