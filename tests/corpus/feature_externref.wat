;; Forbidden feature: externref (needs a GC).
(module
  (memory (export "memory") 1)
  (global $g (mut externref) (ref.null extern))
  (func (export "aifn_call") (result i32)
    (i32.const 0)))
