;; Imports aifn.input_len with a parameter.
(module
  (import "aifn" "input_len" (func $input_len (param i32) (result i32)))
  (import "aifn" "output_write" (func $output_write (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"ok\":true}")
  
  (func (export "aifn_call") (result i32)
    (local $i i32) (local $p i32)
    (call $output_write (i32.const 0) (i32.const 11))
    (i32.const 0)))
