;; Forbidden feature: typed function references (call_ref).
(module
  (memory (export "memory") 1)
  (type $t (func (result i32))) (func $f (type $t) (i32.const 0)) (elem declare func $f)
  (func (export "aifn_call") (result i32)
    (call_ref $t (ref.func $f))))
