;; Forbidden feature: memory64.
(module
  (memory (export "memory") i64 1)
  
  (func (export "aifn_call") (result i32)
    (i32.const 0)))
