;; Out of bounds host call: output_write running past the end.
(module
  (import "aifn" "input_len" (func $input_len (result i32)))
  (import "aifn" "input_read" (func $input_read (param i32)))
  (import "aifn" "context_len" (func $context_len (result i32)))
  (import "aifn" "context_read" (func $context_read (param i32)))
  (import "aifn" "output_write" (func $output_write (param i32 i32)))
  (import "aifn" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"ok\":true}")
  
  (func (export "aifn_call") (result i32)
    (local $i i32) (local $p i32)
    (call $output_write (i32.const 0) (i32.const 11))
    (call $output_write (i32.const 65535) (i32.const 2))
    (i32.const 0)))
