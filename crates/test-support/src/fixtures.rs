//! WAT guests that several test binaries and fuzz targets run.

/// Echoes its input (up to 1 MiB, 17 pages of memory) as its output: the
/// benign control of the adversarial corpus, where it lives as
/// `tests/corpus/ok_echo.wat`.
pub const ECHO_WAT: &str = include_str!("../../../tests/corpus/ok_echo.wat");

/// Outputs its context: what the host tells the guest about the call.
pub const CONTEXT_ECHO_WAT: &str = r#"(module
  (import "aifn" "context_len" (func $context_len (result i32)))
  (import "aifn" "context_read" (func $context_read (param i32)))
  (import "aifn" "output_write" (func $output_write (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "aifn_call") (result i32)
    (call $context_read (i32.const 0))
    (call $output_write (i32.const 0) (call $context_len))
    (i32.const 0)))"#;

/// A stand-in for a JavaScript engine that an older aifn release embedded
/// and this one does not: the engine ABI (`aifn_js_init`, snapshotted;
/// `aifn_js_compile`; `aifn_call`) with a trivial language whose bytecode
/// is its source and whose call outputs it. A call whose start-up did not
/// run (no snapshot) fails.
pub const OLDER_ENGINE_WAT: &str = r#"(module
  (import "aifn" "output_write" (func $write (param i32 i32)))
  (import "aifn_js" "script_len" (func $len (result i32)))
  (import "aifn_js" "script_read" (func $read (param i32)))
  (memory (export "memory") 1)
  (global $started (mut i32) (i32.const 0))
  (func (export "aifn_js_init") (global.set $started (i32.const 1)))
  (func (export "aifn_js_compile") (result i32)
    (call $read (i32.const 0))
    (call $write (i32.const 0) (call $len))
    (i32.const 0))
  (func (export "aifn_call") (result i32)
    (if (i32.eqz (global.get $started)) (then (return (i32.const 1))))
    (call $read (i32.const 0))
    (call $write (i32.const 0) (call $len))
    (i32.const 0)))"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_echo_fixture_is_the_corpus_control() {
        assert!(ECHO_WAT.starts_with(";; Benign: echoes its input"));
        for import in ["input_len", "input_read", "output_write"] {
            assert!(ECHO_WAT.contains(&format!("\"aifn\" \"{import}\"")));
        }
        assert!(CONTEXT_ECHO_WAT.contains("\"context_read\""));
        assert!(OLDER_ENGINE_WAT.contains("\"aifn_js_init\""));
    }
}
