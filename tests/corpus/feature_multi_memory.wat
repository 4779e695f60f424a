;; Forbidden feature: multiple memories.
(module
  (memory (export "memory") 1) (memory $second 1)
  
  (func (export "aifn_call") (result i32)
    (i32.const 0)))
