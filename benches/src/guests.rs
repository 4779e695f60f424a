//! The benchmark guests, in WAT, all ABI v1 (`aifn_call` returning 0 after
//! `output_write` of a JSON document).

/// An echo guest: copies its input to its output.
pub const ECHO_WAT: &str = r#"(module
  (import "aifn" "input_len" (func $input_len (result i32)))
  (import "aifn" "input_read" (func $input_read (param i32)))
  (import "aifn" "output_write" (func $output_write (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "aifn_call") (result i32)
    (local $n i32)
    (local.set $n (call $input_len))
    (call $input_read (i32.const 0))
    (call $output_write (i32.const 0) (local.get $n))
    (i32.const 0)))"#;

/// A ~50-byte JSON input.
pub const ECHO_INPUT: &[u8] = br#"{"employee":"e-1042","from":"2026-03-02","days":3}"#;

/// The echo guest made unique by `id` (an unused global), so that many
/// functions have many distinct modules, each compiled and cached apart.
pub fn echo_variant(id: u64) -> String {
    ECHO_WAT.replacen(
        "(memory",
        &format!("(global $id i64 (i64.const {id}))\n  (memory"),
        1,
    )
}

/// `$itoa`: writes the decimal digits of an unsigned i32 at address 0 and
/// returns their count.
const ITOA: &str = r#"
  (func $itoa (param $v i32) (result i32)
    (local $len i32) (local $t i32) (local $i i32)
    (local.set $t (local.get $v))
    (local.set $len (i32.const 1))
    (block $counted
      (loop $count
        (br_if $counted (i32.lt_u (local.get $t) (i32.const 10)))
        (local.set $t (i32.div_u (local.get $t) (i32.const 10)))
        (local.set $len (i32.add (local.get $len) (i32.const 1)))
        (br $count)))
    (local.set $i (local.get $len))
    (loop $write
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (i32.store8 (local.get $i) (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
      (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
      (br_if $write (i32.gt_u (local.get $i) (i32.const 0))))
    (local.get $len))"#;

/// Call-heavy: recursive `fib(n)`, about `2 fib(n+1)` calls; outputs the
/// result as a JSON number. `fib(25)` is 242,785 calls.
pub fn fib_wat(n: u32) -> String {
    format!(
        r#"(module
  (import "aifn" "output_write" (func $out (param i32 i32)))
  (memory (export "memory") 1)
  (func $fib (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  {ITOA}
  (func (export "aifn_call") (result i32)
    (call $out (i32.const 0) (call $itoa (call $fib (i32.const {n}))))
    (i32.const 0)))"#
    )
}

/// Loop-heavy: the sieve of Eratosthenes below `n` (at most 100,000: the
/// flags live in the first 128 KiB, which stay resident between calls);
/// outputs the number of primes as a JSON number (9,592 below 100,000).
pub fn sieve_wat(n: u32) -> String {
    assert!(n <= 100_000, "the sieve's flags must fit in two pages");
    format!(
        r#"(module
  (import "aifn" "output_write" (func $out (param i32 i32)))
  (memory (export "memory") 2)
  (func $sieve (param $n i32) (result i32)
    (local $i i32) (local $j i32) (local $count i32)
    (local.set $i (i32.const 2))
    (block $done
      (loop $outer
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (if (i32.eqz (i32.load8_u offset=1024 (local.get $i)))
          (then
            (local.set $count (i32.add (local.get $count) (i32.const 1)))
            (if (i32.le_u (local.get $i) (i32.const 46340))
              (then
                (local.set $j (i32.mul (local.get $i) (local.get $i)))
                (block $jdone
                  (loop $inner
                    (br_if $jdone (i32.ge_u (local.get $j) (local.get $n)))
                    (i32.store8 offset=1024 (local.get $j) (i32.const 1))
                    (local.set $j (i32.add (local.get $j) (local.get $i)))
                    (br $inner)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $outer)))
    (local.get $count))
  {ITOA}
  (func (export "aifn_call") (result i32)
    (call $out (i32.const 0) (call $itoa (call $sieve (i32.const {n}))))
    (i32.const 0)))"#
    )
}

/// Grows memory by 16 MiB and writes one word in each 4 KiB page of it;
/// outputs `1`.
pub const ALLOC16_TOUCH_WAT: &str = r#"(module
  (import "aifn" "output_write" (func $out (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "aifn_call") (result i32)
    (local $p i32)
    (if (i32.lt_s (memory.grow (i32.const 256)) (i32.const 0)) (then (return (i32.const 1))))
    (local.set $p (i32.const 65536))
    (loop $touch
      (i32.store (local.get $p) (local.get $p))
      (local.set $p (i32.add (local.get $p) (i32.const 4096)))
      (br_if $touch (i32.lt_u (local.get $p) (i32.const 16842752))))
    (i32.store8 (i32.const 0) (i32.const 49))
    (call $out (i32.const 0) (i32.const 1))
    (i32.const 0)))"#;

/// Grows memory by 16 MiB and fills all of it (`memory.fill`); outputs `1`.
pub const ALLOC16_FILL_WAT: &str = r#"(module
  (import "aifn" "output_write" (func $out (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "aifn_call") (result i32)
    (if (i32.lt_s (memory.grow (i32.const 256)) (i32.const 0)) (then (return (i32.const 1))))
    (memory.fill (i32.const 65536) (i32.const 7) (i32.const 16777216))
    (i32.store8 (i32.const 0) (i32.const 49))
    (call $out (i32.const 0) (i32.const 1))
    (i32.const 0)))"#;

/// Hostile: an infinite loop. Only fuel or the deadline end it.
pub const SPIN_WAT: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "aifn_call") (result i32)
    (loop $forever (br $forever))
    (i32.const 0)))"#;

/// Hostile: a memory bomb. Grows memory 1 MiB at a time until the host
/// refuses, fills everything it got, then traps.
pub const BOMB_WAT: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "aifn_call") (result i32)
    (loop $grow
      (br_if $grow (i32.ge_s (memory.grow (i32.const 16)) (i32.const 0))))
    (memory.fill (i32.const 0) (i32.const 255) (i32.mul (memory.size) (i32.const 65536)))
    (unreachable)))"#;
