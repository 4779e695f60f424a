//! No residue between instances in one pooling slot: memory, table and
//! globals a tenant filled read back as zeros in the next instance.

use aifn_runtime::{Context, Invocation, Limits};
use aifn_types::OutcomeKind;

use crate::{MIB, host_limits, runtime, wat};

const PAGES: u32 = 24;

/// Grows to `PAGES` pages, fills all of them with 0xa5 and its table with
/// function references, writes `{}` and then ends as `ending` says.
fn filler(ending: &str) -> String {
    let end = match ending {
        "ok" => "(i32.const 0)",
        "trap" => "unreachable",
        "fuel" => "(loop $l (br $l)) (i32.const 0)",
        other => panic!("{other}"),
    };
    format!(
        r#"(module
  (import "aifn" "output_write" (func $output_write (param i32 i32)))
  (memory (export "memory") 1)
  (table $t 64 funcref)
  (func $f)
  (elem declare func $f)
  (global $g (mut i64) (i64.const 0))
  (func (export "aifn_call") (result i32)
    (drop (memory.grow (i32.const {grow})))
    (memory.fill (i32.const 0) (i32.const 0xa5) (i32.const {bytes}))
    (table.fill $t (i32.const 0) (ref.func $f) (i32.const 64))
    (global.set $g (i64.const -1))
    (i32.store16 (i32.const 0) (i32.const 0x7d7b))
    (call $output_write (i32.const 0) (i32.const 2))
    {end}))"#,
        grow = PAGES - 1,
        bytes = PAGES * 65536
    )
}

/// Grows to `PAGES` pages and, before writing anything, counts the non-zero
/// 8-byte words of its whole memory, the non-null entries of its table and
/// whether its global is non-zero; then hex-encodes its first 4 pages
/// behind them and outputs `{"nz":N,"table":N,"global":N,"mem":"<hex>"}`.
const PROBER: &str = r#"(module
  (import "aifn" "output_write" (func $output_write (param i32 i32)))
  (memory (export "memory") 1)
  (table $t 64 funcref)
  (global $g (mut i64) (i64.const 0))
  (global $o (mut i32) (i32.const 0))
  (func $put (param $c i32)
    (i32.store8 (global.get $o) (local.get $c))
    (global.set $o (i32.add (global.get $o) (i32.const 1))))
  (func $str (param $s i32) (param $n i32)
    (local $i i32)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (call $put (i32.load8_u (i32.add (local.get $s) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))))
  (func $dec (param $v i32)
    (if (i32.ge_u (local.get $v) (i32.const 10)) (then (call $dec (i32.div_u (local.get $v) (i32.const 10)))))
    (call $put (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10)))))
  (func $hexdigit (param $v i32)
    (call $put (select (i32.add (i32.const 48) (local.get $v)) (i32.add (i32.const 87) (local.get $v))
                       (i32.lt_u (local.get $v) (i32.const 10)))))
  (func (export "aifn_call") (result i32)
    (local $i i32) (local $nz i32) (local $nn i32) (local $b i32) (local $top i32)
    (drop (memory.grow (i32.const 23)))
    (local.set $top (i32.mul (memory.size) (i32.const 65536)))
    ;; Scan all memory before writing anything.
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $top)))
      (if (i64.ne (i64.load (local.get $i)) (i64.const 0)) (then (local.set $nz (i32.add (local.get $nz) (i32.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 8)))
      (br $l)))
    (local.set $i (i32.const 0))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (table.size $t)))
      (if (i32.eqz (ref.is_null (table.get $t (local.get $i)))) (then (local.set $nn (i32.add (local.get $nn) (i32.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    ;; The output goes after the first 4 pages; the labels are built in
    ;; place (the memory was all zeros a moment ago).
    (global.set $o (i32.const 262144))
    (call $put (i32.const 123))
    (call $put (i32.const 34)) (call $put (i32.const 110)) (call $put (i32.const 122)) (call $put (i32.const 34)) (call $put (i32.const 58))
    (call $dec (local.get $nz))
    (call $put (i32.const 44))
    (call $put (i32.const 34)) (call $put (i32.const 116)) (call $put (i32.const 97)) (call $put (i32.const 98)) (call $put (i32.const 108))
    (call $put (i32.const 101)) (call $put (i32.const 34)) (call $put (i32.const 58))
    (call $dec (local.get $nn))
    (call $put (i32.const 44))
    (call $put (i32.const 34)) (call $put (i32.const 103)) (call $put (i32.const 108)) (call $put (i32.const 111)) (call $put (i32.const 98))
    (call $put (i32.const 97)) (call $put (i32.const 108)) (call $put (i32.const 34)) (call $put (i32.const 58))
    (call $dec (i64.ne (global.get $g) (i64.const 0)))
    (call $put (i32.const 44))
    (call $put (i32.const 34)) (call $put (i32.const 109)) (call $put (i32.const 101)) (call $put (i32.const 109)) (call $put (i32.const 34))
    (call $put (i32.const 58)) (call $put (i32.const 34))
    (local.set $i (i32.const 0))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (i32.const 262144)))
      (local.set $b (i32.load8_u (local.get $i)))
      (call $hexdigit (i32.shr_u (local.get $b) (i32.const 4)))
      (call $hexdigit (i32.and (local.get $b) (i32.const 15)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (call $put (i32.const 34))
    (call $put (i32.const 125))
    (call $output_write (i32.const 262144) (i32.sub (global.get $o) (i32.const 262144)))
    (i32.const 0)))"#;

#[test]
fn no_residue_crosses_instances_in_one_pooling_slot() {
    // One slot: every instance, of any tenant, reuses it.
    let rt = runtime(1);
    let fillers: Vec<_> = [
        ("ok", OutcomeKind::Ok),
        ("trap", OutcomeKind::Trap),
        ("fuel", OutcomeKind::FuelExhausted),
    ]
    .into_iter()
    .map(|(how, kind)| (rt.load(&wat(&filler(how))).expect("filler loads"), kind))
    .collect();
    let prober = rt.load(&wat(PROBER)).expect("prober loads");
    let tenant = |t: &str| Context {
        tenant_id: t.into(),
        ..Context::local()
    };
    let (a, b) = (tenant("tenant-a"), tenant("tenant-b"));
    let limits = Limits {
        fuel: 100_000_000,
        memory_bytes: 4 * MIB,
        output_bytes: 2 * MIB,
        ..host_limits()
    };
    let probe = |round: usize| {
        let e = rt.invoke(&prober, &Invocation::new(b"{}", &b, limits));
        assert_eq!(e.kind, OutcomeKind::Ok, "probe {round}: {e:?}");
        let v: serde_json::Value =
            serde_json::from_slice(e.output.as_deref().expect("output")).expect("json");
        assert_eq!(
            v["nz"], 0,
            "round {round}: non-zero words in the new instance's memory"
        );
        assert_eq!(
            v["table"], 0,
            "round {round}: non-null table entries in the new instance"
        );
        assert_eq!(v["global"], 0, "round {round}: a global kept its value");
        let hex = v["mem"].as_str().expect("hex");
        assert_eq!(hex.len(), 2 * 262_144);
        assert!(
            hex.bytes().all(|c| c == b'0'),
            "round {round}: the first 4 pages read back non-zero"
        );
    };
    probe(0);
    for round in 1..=60 {
        let (m, kind) = &fillers[round % fillers.len()];
        let fuel = if *kind == OutcomeKind::FuelExhausted {
            5_000_000
        } else {
            limits.fuel
        };
        let e = rt.invoke(m, &Invocation::new(b"{}", &a, Limits { fuel, ..limits }));
        assert_eq!(e.kind, *kind, "filler {round}: {e:?}");
        assert_eq!(e.memory_peak_bytes, u64::from(PAGES) * 65536);
        probe(round);
    }
}
