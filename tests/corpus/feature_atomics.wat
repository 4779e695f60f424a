;; Forbidden feature: threads (an atomic instruction).
(module
  (memory (export "memory") 1)
  
  (func (export "aifn_call") (result i32)
    (i32.atomic.load (i32.const 0))))
