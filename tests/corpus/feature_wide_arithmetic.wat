;; Forbidden feature: wide arithmetic.
(module
  (memory (export "memory") 1)
  
  (func (export "aifn_call") (result i32)
    (i64.add128 (i64.const 1) (i64.const 2) (i64.const 3) (i64.const 4))
    (drop) (drop)
    (i32.const 0)))
