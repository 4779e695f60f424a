//! JavaScript functions: the engine under every limit, each outcome as a
//! pair in JavaScript, the blocked features, determinism and isolation.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use aifn_runtime::{
    Context, Execution, Invocation, Limits, LoadedModule, ModuleError, OutcomeKind, Runtime,
};

use crate::{assert_kind, output};

/// One runtime for every JavaScript test: the engine is built once.
pub(crate) static RT: LazyLock<Runtime> = LazyLock::new(crate::runtime);

/// A host whose fuel outlasts its deadline.
static WIDE: LazyLock<Runtime> = LazyLock::new(|| {
    crate::runtime_with(Limits {
        fuel: u64::MAX / 2,
        timeout_ms: 200,
        ..Limits::default()
    })
});

fn load(source: &str) -> LoadedModule {
    let rt = &*RT;
    let package = rt.javascript(source).expect("packaged");
    rt.load(&package).expect("JavaScript loads")
}

fn call_with(source: &str, input: &str, limits: Limits) -> Execution {
    let m = load(source);
    RT.invoke(
        &m,
        &Invocation::new(input.as_bytes(), &Context::local(), limits),
    )
}

fn call(source: &str, input: &str) -> Execution {
    call_with(source, input, *RT.limits())
}

#[test]
fn main_gets_the_input_and_the_context_and_its_value_is_the_output() {
    let e = call(
        "export function main(input, context) { return { sum: input.a + input.b, ctx: context }; }",
        r#"{"a": 2, "b": 40}"#,
    );
    let out = output(&e);
    assert_eq!(out["sum"], 42);
    let ctx = Context::local();
    assert_eq!(out["ctx"]["tenant_id"], ctx.tenant_id.as_str());
    assert_eq!(out["ctx"]["execution_id"], ctx.execution_id.as_str());
    assert_eq!(out["ctx"].as_object().map(|o| o.len()), Some(6));
}

#[test]
fn main_may_be_the_default_export_and_may_return_a_promise() {
    let e = call(
        "export default async function (input) { return [input, await 1]; }",
        "7",
    );
    assert_eq!(output(&e), serde_json::json!([7, 1]));
    let e = call("export default (input) => input.x;", r#"{"x":"y"}"#);
    assert_eq!(output(&e), serde_json::json!("y"));
}

#[test]
fn a_thrown_error_is_a_function_error_with_its_message() {
    let e = call(
        "export function main(i) { if (!i.ok) throw new Error('no leave left'); return 1; }",
        r#"{"ok": false}"#,
    );
    assert_kind(&e, OutcomeKind::FunctionError);
    assert_eq!(e.message.as_deref(), Some("Error: no leave left"));
    let ok = call(
        "export function main(i) { if (!i.ok) throw new Error('no leave left'); return 1; }",
        r#"{"ok": true}"#,
    );
    assert_eq!(output(&ok), 1);
    let rejected = call(
        "export async function main() { throw new TypeError('bad'); }",
        "0",
    );
    assert_kind(&rejected, OutcomeKind::FunctionError);
    assert_eq!(rejected.message.as_deref(), Some("TypeError: bad"));
}

#[test]
fn values_json_cannot_hold_are_invalid_output_with_the_reason() {
    let cases = [
        ("return undefined;", "undefined"),
        ("return () => 1;", "a function"),
        ("return Symbol('s');", "a symbol"),
        ("return 10n;", "BigInt"),
        (
            "const a = {}; a.self = a; return a;",
            "cannot be serialized",
        ),
        ("return { n: 1n };", "cannot be serialized"),
    ];
    for (body, reason) in cases {
        let e = call(&format!("export function main() {{ {body} }}"), "0");
        assert_kind(&e, OutcomeKind::InvalidOutput);
        let msg = e.message.clone().unwrap_or_default();
        assert!(msg.contains(reason), "{body}: {msg}");
    }
    // Their nearest JSON-able neighbours are fine.
    for body in [
        "return null;",
        "return { f: undefined, n: 1 };",
        "return [1, 'x', true];",
    ] {
        assert_kind(
            &call(&format!("export function main() {{ {body} }}"), "0"),
            OutcomeKind::Ok,
        );
    }
}

#[test]
fn a_promise_that_never_settles_is_a_function_error() {
    let e = call(
        "export function main() { return new Promise(() => {}); }",
        "0",
    );
    assert_kind(&e, OutcomeKind::FunctionError);
    assert_eq!(e.message.as_deref(), Some("main's promise never settled"));
    let settles = call(
        "export function main() { return new Promise((ok) => Promise.resolve().then(() => ok(5))); }",
        "0",
    );
    assert_eq!(output(&settles), 5);
}

#[test]
fn a_module_without_main_is_a_function_error() {
    let e = call("export function helper() { return 1; }", "0");
    assert_kind(&e, OutcomeKind::FunctionError);
    assert!(e.message.unwrap_or_default().contains("no function main"));
}

#[test]
fn a_syntax_error_is_refused_at_load_with_its_line_and_column() {
    let rt = &*RT;
    let package = rt
        .javascript("export function main() {\n  return 1 +;\n}\n")
        .expect("packaged");
    match rt.load(&package) {
        Err(ModuleError::ScriptError {
            line,
            column,
            message,
        }) => {
            assert_eq!(line, 2, "{message}");
            assert!(column > 0, "{message}");
            assert!(message.contains("SyntaxError"), "{message}");
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
    let err = rt.load(&package).expect_err("still refused");
    assert_eq!(err.kind(), OutcomeKind::InvalidModule);
}

#[test]
fn the_engines_memory_is_the_calls_memory_limit() {
    let bomb = "export function main(i) { const a = []; for (let k = 0; k < i.n; k++) a.push(new Uint8Array(1 << 20)); return a.length; }";
    let limits = Limits {
        memory_bytes: 8 << 20,
        ..*RT.limits()
    };
    assert_eq!(output(&call_with(bomb, r#"{"n": 4}"#, limits)), 4);
    let e = call_with(bomb, r#"{"n": 100000}"#, limits);
    assert_kind(&e, OutcomeKind::MemoryLimit);
}

#[test]
fn deep_recursion_is_a_stack_overflow() {
    let f = "function depth(n) { return n === 0 ? 0 : 1 + depth(n - 1); } export function main(i) { return depth(i.n); }";
    assert_eq!(output(&call(f, r#"{"n": 500}"#)), 500);
    let e = call(f, r#"{"n": 10000000}"#);
    assert_kind(&e, OutcomeKind::StackOverflow);
    // A call with a large frame (many locals) fills the engine's own
    // stack first: a RangeError, which the function may also catch.
    let locals: String = (0..200).map(|k| format!("let v{k} = n + {k}; ")).collect();
    let wide = format!("function d(n) {{ {locals} return 1 + d(n + 1) + v0 + v199; }}");
    let e = call(
        &format!("{wide} export function main() {{ return d(0); }}"),
        "0",
    );
    assert_kind(&e, OutcomeKind::StackOverflow);
    let msg = e.message.unwrap_or_default();
    assert!(
        msg.starts_with("JavaScript stack exhausted: RangeError"),
        "{msg}"
    );
    let caught = call(
        &format!(
            "{wide} export function main() {{ try {{ return d(0); }} catch (e) {{ return String(e); }} }}"
        ),
        "0",
    );
    assert_eq!(
        output(&caught),
        "RangeError: Maximum call stack size exceeded"
    );
}

#[test]
fn an_endless_loop_runs_out_of_fuel_or_time() {
    let spin = "export function main(i) { let n = 0; while (n < i.n) { n++; } for (;;) { if (i.stop) break; } return n; }";
    assert_eq!(output(&call(spin, r#"{"n": 1000, "stop": true}"#)), 1000);
    let limits = Limits {
        fuel: 20_000_000,
        ..*RT.limits()
    };
    assert_kind(
        &call_with(spin, r#"{"n": 1, "stop": false}"#, limits),
        OutcomeKind::FuelExhausted,
    );
    // With fuel to spare, the deadline ends it; inside it, it returns.
    let rt = &*WIDE;
    let m = rt
        .load(&rt.javascript(spin).expect("packaged"))
        .expect("loads");
    let on_wide = |input: &str| {
        let ctx = Context::local();
        rt.invoke(&m, &Invocation::new(input.as_bytes(), &ctx, *rt.limits()))
    };
    assert_kind(&on_wide(r#"{"n": 1, "stop": false}"#), OutcomeKind::Timeout);
    assert_kind(&on_wide(r#"{"n": 1000, "stop": true}"#), OutcomeKind::Ok);
}

#[test]
fn a_catastrophic_regular_expression_is_stopped() {
    let f = "export function main(i) { return /^(a+)+$/.test(i.s); }";
    assert_eq!(output(&call(f, r#"{"s": "aaaa"}"#)), true);
    let limits = Limits {
        fuel: 50_000_000,
        ..*RT.limits()
    };
    let e = call_with(f, &format!(r#"{{"s": "{}b"}}"#, "a".repeat(40)), limits);
    assert!(
        matches!(e.kind, OutcomeKind::FuelExhausted | OutcomeKind::Timeout),
        "{e:#?}"
    );
}

#[test]
fn output_over_the_limit_ends_the_call() {
    let f = "export function main(i) { return 'x'.repeat(i.n); }";
    let limits = Limits {
        output_bytes: 1000,
        ..*RT.limits()
    };
    assert_kind(&call_with(f, r#"{"n": 990}"#, limits), OutcomeKind::Ok);
    assert_kind(
        &call_with(f, r#"{"n": 1000}"#, limits),
        OutcomeKind::OutputTooLarge,
    );
}

#[test]
fn console_writes_to_the_bounded_logs() {
    let e = call(
        "export function main() { console.log('a', 1, {b: 2}); console.warn('w'); console.error('e'); console.debug('d'); return 0; }",
        "0",
    );
    assert_kind(&e, OutcomeKind::Ok);
    let lines: Vec<(String, &str)> = e
        .logs
        .iter()
        .map(|l| (format!("{:?}", l.level), l.message.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            ("Info".to_owned(), r#"a 1 {"b":2}"#),
            ("Warn".to_owned(), "w"),
            ("Error".to_owned(), "e"),
            ("Debug".to_owned(), "d"),
        ]
    );
    let limits = Limits {
        log_bytes: 64,
        ..*RT.limits()
    };
    let e = call_with(
        "export function main() { for (let i = 0; i < 100; i++) console.log('line ' + i); return 0; }",
        "0",
        limits,
    );
    assert_kind(&e, OutcomeKind::Ok);
    assert!(e.logs.iter().map(|l| l.message.len()).sum::<usize>() < 64 + 32);
    assert_eq!(
        e.logs.last().map(|l| l.message.as_str()),
        Some("[log truncated]")
    );
}

#[test]
fn eval_function_and_imports_are_unavailable() {
    let blocked = [
        "return eval('1 + 1');",
        "return new Function('return 1')();",
        "return Function('return 1')();",
        "return (function () {}).constructor('return 1')();",
        "return Object.getPrototypeOf(async function () {}).constructor('return 1');",
        "return Object.getPrototypeOf(function* () {}).constructor('yield 1');",
        "return globalThis['ev' + 'al']('1');",
    ];
    for body in blocked {
        let e = call(&format!("export function main() {{ {body} }}"), "0");
        assert_kind(&e, OutcomeKind::FunctionError);
    }
    let dynamic = call(
        "export async function main() { const m = await import('x'); return 1; }",
        "0",
    );
    assert_kind(&dynamic, OutcomeKind::FunctionError);
    // An import declaration has nothing to import: refused at upload.
    let package = RT
        .javascript("import { x } from 'other';\nexport function main() { return x; }")
        .expect("packaged");
    match RT.load(&package) {
        Err(ModuleError::ScriptError { message, line, .. }) => {
            assert!(
                message.contains("could not load module 'other'"),
                "{message}"
            );
            assert_eq!(line, 0, "no place is known: {message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Plain language features are all there.
    let fine = call(
        "export function main() { return [JSON.stringify({a: [1]}), new Map([[1, 2]]).size, /a/.test('a'), [3, 1, 2].sort(), new Date(0).toISOString(), Math.max(1, 2), typeof Proxy, typeof WeakRef]; }",
        "0",
    );
    assert_eq!(
        output(&fine),
        serde_json::json!([
            "{\"a\":[1]}",
            1,
            true,
            [1, 2, 3],
            "1970-01-01T00:00:00.000Z",
            2,
            "function",
            "function"
        ])
    );
}

#[test]
fn no_host_objects_are_reachable() {
    let names = [
        "std",
        "os",
        "require",
        "process",
        "fetch",
        "setTimeout",
        "setInterval",
        "WebAssembly",
        "SharedArrayBuffer",
        "Atomics",
        "XMLHttpRequest",
        "Deno",
        "Bun",
        "scriptArgs",
        "print",
        "performance",
    ];
    let list = serde_json::to_string(&names).expect("json");
    let e = call(
        &format!(
            "export function main() {{ return {list}.filter((n) => typeof globalThis[n] !== 'undefined'); }}"
        ),
        "0",
    );
    assert_eq!(output(&e), serde_json::json!([]));
}

#[test]
fn clocks_read_the_invocations_start_and_random_follows_the_execution_id() {
    let f = "export function main() { return [Date.now(), new Date().getTime(), Math.random(), Math.random()]; }";
    let m = load(f);
    let start = SystemTime::UNIX_EPOCH + Duration::from_millis(1_760_000_000_123);
    let run = |id: &str| {
        let mut ctx = Context::local();
        ctx.execution_id = id.parse().expect("execution id");
        let inv = Invocation {
            start_time: start,
            ..Invocation::new(b"0", &ctx, *RT.limits())
        };
        let e = RT.invoke(&m, &inv);
        assert_kind(&e, OutcomeKind::Ok);
        e.output.expect("output")
    };
    let a = run("0193c9a4e1f27c3a9d1e5b0c7f00a1b2");
    let v: serde_json::Value = serde_json::from_slice(&a).expect("json");
    assert_eq!(v[0], 1_760_000_000_123u64);
    assert_eq!(v[1], 1_760_000_000_123u64);
    assert_ne!(v[2], v[3]);
    assert_eq!(run("0193c9a4e1f27c3a9d1e5b0c7f00a1b2"), a);
    assert_ne!(run("0193c9a4e1f27c3a9d1e5b0c7f00a1b3"), a);
}

#[test]
fn a_thousand_runs_give_identical_bytes() {
    let f = "export function main(i, c) { const o = {}; for (let k = 0; k < 50; k++) o['k' + k] = Math.random() * k; return [o, new Date().toISOString(), c.execution_id, i]; }";
    let m = load(f);
    let ctx = Context::local();
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let inv = Invocation {
        start_time: start,
        ..Invocation::new(br#"{"x":[1,2,3]}"#, &ctx, *RT.limits())
    };
    let first = RT.invoke(&m, &inv).output.expect("output");
    for _ in 0..1000 {
        assert_eq!(RT.invoke(&m, &inv).output.as_deref(), Some(&first[..]));
    }
}

#[test]
fn a_prototype_change_in_one_call_is_never_seen_by_the_next() {
    let f = "export function main(i) { const seen = [typeof Object.prototype.polluted, typeof globalThis.leak, typeof [].push]; if (i.pollute) { Object.prototype.polluted = 1; Array.prototype.push = null; globalThis.leak = 1; } return seen; }";
    let m = load(f);
    let ctx = Context::local();
    let first = RT.invoke(
        &m,
        &Invocation::new(br#"{"pollute":true}"#, &ctx, *RT.limits()),
    );
    assert_eq!(
        output(&first),
        serde_json::json!(["undefined", "undefined", "function"])
    );
    let next = RT.invoke(
        &m,
        &Invocation::new(br#"{"pollute":false}"#, &ctx, *RT.limits()),
    );
    assert_eq!(
        output(&next),
        serde_json::json!(["undefined", "undefined", "function"])
    );
}

#[test]
fn uploaded_modules_cannot_import_the_engines_script_functions() {
    let wat = r#"(module (import "aifn_js" "script_len" (func (result i32)))
      (memory (export "memory") 1) (func (export "aifn_call") (result i32) (i32.const 0)))"#;
    let bytes = wat::parse_str(wat).expect("wat");
    let err = RT.load(&bytes).expect_err("refused");
    assert_eq!(err.kind(), OutcomeKind::ForbiddenImport);
}
