;; Forbidden feature: exception handling (a tag and throw).
(module
  (memory (export "memory") 1)
  (tag $e)
  (func (export "aifn_call") (result i32)
    (throw $e)))
