;; Forbidden feature: GC (a struct type).
(module
  (memory (export "memory") 1)
  (type $point (struct (field i32) (field i32)))
  (func (export "aifn_call") (result i32)
    (struct.get $point 0 (struct.new $point (i32.const 1) (i32.const 2)))))
