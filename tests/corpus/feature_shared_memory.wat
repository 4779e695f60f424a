;; Forbidden feature: threads (a shared memory).
(module
  (memory (export "memory") 1 1 shared)
  
  (func (export "aifn_call") (result i32)
    (i32.const 0)))
