//! SECURITY.md backs each claim with tests, named `path.rs::test_name`.
//! A test checks that each one named still exists, so that moving or
//! renaming a test cannot leave a claim without its evidence.

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every `` `dir/…/file.rs::name` `` in `text`.
    fn references(text: &str) -> Vec<(&str, &str)> {
        text.split('`')
            .skip(1)
            .step_by(2)
            .filter_map(|quoted| quoted.split_once(".rs::"))
            .filter(|(path, name)| {
                ["crates/", "tests/", "fuzz/", "benches/"]
                    .iter()
                    .any(|d| path.starts_with(d))
                    && !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
            .collect()
    }

    fn defines(source: &str, name: &str) -> bool {
        source.match_indices(&format!("fn {name}")).any(|(i, m)| {
            !source[i + m.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        })
    }

    #[test]
    fn every_test_security_md_names_exists() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let text = std::fs::read_to_string(root.join("SECURITY.md")).expect("SECURITY.md");
        let refs = references(&text);
        assert!(refs.len() > 50, "found only {} references", refs.len());
        let missing: Vec<String> = refs
            .iter()
            .filter(|(path, name)| {
                let source = std::fs::read_to_string(root.join(format!("{path}.rs")));
                !source.is_ok_and(|s| defines(&s, name))
            })
            .map(|(path, name)| format!("{path}.rs::{name}"))
            .collect();
        assert!(
            missing.is_empty(),
            "SECURITY.md names tests that do not exist: {missing:#?}"
        );
    }

    #[test]
    fn references_and_definitions_are_found_exactly() {
        let refs = references("see `crates/a/b.rs::t_1` and `x.rs::y`, `tests/c.rs::` `ok`");
        assert_eq!(refs, [("crates/a/b", "t_1")]);
        assert!(defines("fn t_1() {}", "t_1"));
        assert!(!defines("fn t_10() {}", "t_1"));
        assert!(!defines("// t_1", "t_1"));
    }
}
