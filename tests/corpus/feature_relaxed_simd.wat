;; Forbidden feature: relaxed SIMD.
(module
  (memory (export "memory") 1)
  
  (func (export "aifn_call") (result i32)
    (f32x4.extract_lane 0 (f32x4.relaxed_madd (v128.const f32x4 1 1 1 1) (v128.const f32x4 1 1 1 1) (v128.const f32x4 1 1 1 1)))
    (drop)
    (i32.const 0)))
