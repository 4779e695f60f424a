;; A JSON string holding a lone surrogate escape: not valid Unicode.
(module
  (import "aifn" "output_write" (func $output_write (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\"\\ud800\"")
  (func (export "aifn_call") (result i32)
    (call $output_write (i32.const 0) (i32.const 8))
    (i32.const 0)))
