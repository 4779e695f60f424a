;; Benign: echoes its input (up to 1 MiB). The control of the corpus.
(module
  (import "aifn" "input_len" (func $input_len (result i32)))
  (import "aifn" "input_read" (func $input_read (param i32)))
  (import "aifn" "output_write" (func $output_write (param i32 i32)))
  (memory (export "memory") 17)
  (func (export "aifn_call") (result i32)
    (local $n i32)
    (local.set $n (call $input_len))
    (call $input_read (i32.const 0))
    (call $output_write (i32.const 0) (local.get $n))
    (i32.const 0)))
