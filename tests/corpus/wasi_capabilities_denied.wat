;; Tries to open /etc/passwd through WASI: there is no preopened directory,
;; so path_open answers EBADF (8); the guest returns the errno in its output.
(module
  (import "aifn" "output_write" (func $output_write (param i32 i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "/etc/passwd")
  (data (i32.const 200) "[1  ]")
  (func (export "aifn_call") (result i32)
    (local $e i32)
    (local.set $e (call $path_open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 11) (i32.const 0)
                                   (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 300)))
    (i32.store8 (i32.const 202) (i32.add (i32.const 48) (i32.div_u (local.get $e) (i32.const 10))))
    (i32.store8 (i32.const 203) (i32.add (i32.const 48) (i32.rem_u (local.get $e) (i32.const 10))))
    (call $output_write (i32.const 200) (i32.const 5))
    (i32.const 0)))
