//! Determinism: the same input and context give identical output bytes,
//! NaN-producing float code and WASI randomness included.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, UNIX_EPOCH};

use aifn_runtime::{Context, Invocation, Runtime};
use aifn_types::OutcomeKind;

use crate::{case_defaults, runtime, wat};

/// Writes, as a JSON array of hex strings, the bit patterns of NaN-producing
/// f32/f64/SIMD operations (some fed from the input's length), the
/// sign/abs/copysign of NaNs, 32 bytes of WASI `random_get` and the WASI
/// clock.
const FLOATS: &str = r#"(module
  (import "aifn" "input_len" (func $input_len (result i32)))
  (import "aifn" "output_write" (func $output_write (param i32 i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (global $o (mut i32) (i32.const 4096))
  (func $put (param $c i32)
    (i32.store8 (global.get $o) (local.get $c))
    (global.set $o (i32.add (global.get $o) (i32.const 1))))
  (func $hexdigit (param $v i32)
    (call $put (select (i32.add (i32.const 48) (local.get $v)) (i32.add (i32.const 87) (local.get $v))
                       (i32.lt_u (local.get $v) (i32.const 10)))))
  ;; "<hex of len bytes at p, most significant first>",
  (func $hex (param $p i32) (param $len i32)
    (local $i i32) (local $b i32)
    (call $put (i32.const 34))
    (local.set $i (local.get $len))
    (block $done (loop $l
      (br_if $done (i32.eqz (local.get $i)))
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (local.set $b (i32.load8_u (i32.add (local.get $p) (local.get $i))))
      (call $hexdigit (i32.shr_u (local.get $b) (i32.const 4)))
      (call $hexdigit (i32.and (local.get $b) (i32.const 15)))
      (br $l)))
    (call $put (i32.const 34))
    (call $put (i32.const 44)))
  (func $f32 (param $x f32) (f32.store (i32.const 1024) (local.get $x)) (call $hex (i32.const 1024) (i32.const 4)))
  (func $f64 (param $x f64) (f64.store (i32.const 1024) (local.get $x)) (call $hex (i32.const 1024) (i32.const 8)))
  (func $v128 (param $x v128) (v128.store (i32.const 1024) (local.get $x)) (call $hex (i32.const 1024) (i32.const 16)))
  (func (export "aifn_call") (result i32)
    (local $n i32) (local $snan f32) (local $qnan f32) (local $dnan f64) (local $zero f32) (local $dzero f64)
    (local.set $n (call $input_len))
    ;; Payload NaNs built from the input's length: the host cannot fold them.
    (local.set $snan (f32.reinterpret_i32 (i32.or (i32.const 0x7f800000) (i32.and (local.get $n) (i32.const 0x3fffff)))))
    (local.set $qnan (f32.reinterpret_i32 (i32.or (i32.const 0xffc00000) (local.get $n))))
    (local.set $dnan (f64.reinterpret_i64 (i64.or (i64.const 0x7ff0000000000000) (i64.extend_i32_u (local.get $n)))))
    (local.set $zero (f32.convert_i32_u (i32.sub (local.get $n) (local.get $n))))
    (local.set $dzero (f64.convert_i32_u (i32.sub (local.get $n) (local.get $n))))
    (call $put (i32.const 91))
    ;; Arithmetic NaNs (canonicalised).
    (call $f32 (f32.div (local.get $zero) (local.get $zero)))
    (call $f32 (f32.sqrt (f32.sub (local.get $zero) (f32.const 1))))
    (call $f32 (f32.sub (f32.div (f32.const 1) (local.get $zero)) (f32.div (f32.const 1) (local.get $zero))))
    (call $f32 (f32.add (local.get $snan) (f32.const 1)))
    (call $f32 (f32.mul (local.get $qnan) (local.get $snan)))
    (call $f32 (f32.min (local.get $qnan) (f32.const 1)))
    (call $f32 (f32.max (local.get $snan) (local.get $qnan)))
    (call $f32 (f32.nearest (local.get $snan)))
    (call $f32 (f32.demote_f64 (local.get $dnan)))
    (call $f64 (f64.div (local.get $dzero) (local.get $dzero)))
    (call $f64 (f64.sqrt (f64.sub (local.get $dzero) (f64.const 1))))
    (call $f64 (f64.add (local.get $dnan) (f64.const 1)))
    (call $f64 (f64.promote_f32 (local.get $snan)))
    (call $f64 (f64.mul (local.get $dnan) (f64.promote_f32 (local.get $qnan))))
    (call $v128 (f32x4.div (f32x4.splat (local.get $zero)) (f32x4.splat (local.get $zero))))
    (call $v128 (f64x2.add (f64x2.splat (local.get $dnan)) (f64x2.splat (f64.const 1))))
    ;; Non-arithmetic operations keep the payload, bit for bit.
    (call $f32 (f32.neg (local.get $snan)))
    (call $f32 (f32.abs (local.get $qnan)))
    (call $f32 (f32.copysign (local.get $snan) (f32.const -1)))
    (call $f64 (f64.neg (local.get $dnan)))
    ;; WASI: random bytes and the clock.
    (drop (call $random_get (i32.const 2048) (i32.const 32)))
    (call $hex (i32.const 2048) (i32.const 32))
    (drop (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 2048)))
    (call $hex (i32.const 2048) (i32.const 8))
    ;; Close the array: replace the last comma.
    (global.set $o (i32.sub (global.get $o) (i32.const 1)))
    (call $put (i32.const 93))
    (call $output_write (i32.const 4096) (i32.sub (global.get $o) (i32.const 4096)))
    (i32.const 0)))"#;

#[test]
fn the_same_input_and_context_give_identical_output_bytes_1000_times() {
    let rt = Arc::new(runtime(8));
    let m = rt.load(&wat(FLOATS)).expect("loads");
    let start = UNIX_EPOCH + Duration::from_millis(1_795_341_600_123);
    let ctx = Context {
        execution_id: "0193c9a4e1f27c3a9d1e5b0c7f00a1b2".into(),
        ..Context::local()
    };
    let input = br#"{"x":[1,2,3]}"#;
    let run = |rt: &Runtime, ctx: &Context| {
        let inv = Invocation {
            input,
            context: ctx,
            limits: case_defaults(),
            start_time: start,
            cancel: None,
        };
        let e = rt.invoke(&m, &inv);
        assert_eq!(e.kind, OutcomeKind::Ok, "{e:?}");
        e.output.expect("output")
    };
    let first = run(&rt, &ctx);
    let v: Vec<String> = serde_json::from_slice(&first).expect("an array of hex strings");
    // The engine canonicalises arithmetic NaNs: the hardware's payloads never show.
    for (i, h) in v[..9].iter().enumerate() {
        assert_eq!(h, "7fc00000", "f32 result {i}");
    }
    for (i, h) in v[9..14].iter().enumerate() {
        assert_eq!(h, "7ff8000000000000", "f64 result {i}");
    }
    assert_eq!(v[14], "7fc000007fc000007fc000007fc00000");
    assert_eq!(v[15], "7ff80000000000007ff8000000000000");
    // neg/abs/copysign are bit operations and keep the payload (input length 13 = 0xd).
    assert_eq!(
        &v[16..20],
        ["ff80000d", "7fc0000d", "ff80000d", "fff000000000000d"]
    );
    let clock = u64::from_str_radix(&v[21], 16).expect("hex clock");
    assert_eq!(
        clock, 1_795_341_600_123_000_000,
        "the WASI clock reads the invocation's start time"
    );

    // 1,000 runs on 4 threads (different cores): identical bytes.
    let same = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (rt, ctx, first, same, m) = (
                Arc::clone(&rt),
                ctx.clone(),
                first.clone(),
                Arc::clone(&same),
                m.clone(),
            );
            thread::spawn(move || {
                for _ in 0..250 {
                    let inv = Invocation {
                        input,
                        context: &ctx,
                        limits: case_defaults(),
                        start_time: start,
                        cancel: None,
                    };
                    let out = rt.invoke(&m, &inv).output.expect("output");
                    assert_eq!(out, first, "output bytes differ between runs");
                    same.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("identical outputs");
    }
    assert_eq!(same.load(Ordering::Relaxed), 1000);

    // Another execution id: other random bytes, the rest identical.
    let other = Context {
        execution_id: "another-execution".into(),
        ..ctx.clone()
    };
    let w: Vec<String> = serde_json::from_slice(&run(&rt, &other)).expect("json");
    assert_ne!(w[20], v[20], "random_get is seeded from the execution id");
    assert_eq!(w[..20], v[..20]);
}
