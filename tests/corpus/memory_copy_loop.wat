;; memory.copy of 8 MiB in a loop: one instruction, much work (fuel is high).
(module
  (import "aifn" "input_len" (func $input_len (result i32)))
  (import "aifn" "input_read" (func $input_read (param i32)))
  (import "aifn" "context_len" (func $context_len (result i32)))
  (import "aifn" "context_read" (func $context_read (param i32)))
  (import "aifn" "output_write" (func $output_write (param i32 i32)))
  (import "aifn" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 256)
  (data (i32.const 0) "{\"ok\":true}")
  
  (func (export "aifn_call") (result i32)
    (local $i i32) (local $p i32)
    (call $output_write (i32.const 0) (i32.const 11))
    (loop $l
      (memory.copy (i32.const 0) (i32.const 8388608) (i32.const 8388608))
      (br $l))
    (i32.const 0)))
