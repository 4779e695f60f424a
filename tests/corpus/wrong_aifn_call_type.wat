;; aifn_call takes a parameter.
(module (memory (export "memory") 1) (func (export "aifn_call") (param i32) (result i32) (local.get 0)))
