//! Each table line is `rule line:column | source` (the source must yield
//! that finding) or `rule - | source` (it must yield none of that rule);
//! `\n` in a source is a newline.

use aifn_types::CheckRule::{self, *};

use super::findings;

const RULES: [CheckRule; 10] = [
    Eval,
    FunctionConstructor,
    Import,
    ComputedGlobalAccess,
    PrototypeWrite,
    UnboundedLoop,
    RecursionWithoutBaseCase,
    UnboundedInputLoop,
    CredentialLiteral,
    UncheckedInput,
];

fn check(table: &str) {
    for case in table.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((head, src)) = case.split_once(" | ") else {
            panic!("bad case {case:?}")
        };
        let src = src.replace("\\n", "\n");
        let (rule, at) = head.split_once(' ').unwrap_or((head, ""));
        let rule = RULES.into_iter().find(|r| r.as_str() == rule);
        let rule = rule.unwrap_or_else(|| panic!("no rule in {case:?}"));
        let found = findings(&src);
        let hit = |line: u32, column: u32| {
            let same = |f: &&aifn_types::CheckFinding| f.line == line && f.column == column;
            found.iter().filter(same).any(|f| f.rule == rule)
        };
        match at.split_once(':') {
            Some((l, c)) => {
                let (l, c) = (l.parse().unwrap_or(0), c.parse().unwrap_or(0));
                assert!(
                    hit(l, c),
                    "expected {rule:?} at {at} in {src:?}, got {found:#?}"
                );
            }
            None => {
                let any = found.iter().any(|f| f.rule == rule);
                assert!(!any, "unexpected {rule:?} in {src:?}: {found:#?}");
            }
        }
    }
}

#[test]
fn eval() {
    check(
        r#"
        eval 1:1 | eval('1')
        eval 1:11 | const e = eval;
        eval 2:14 | x = 1;\n  globalThis.eval(s)
        eval 1:8 | window.eval(s)
        eval 1:1 | globalThis["eval"](s)
        eval 1:11 | const f = globalThis["ev" + 'al'];
        eval 1:1 | self[(`e` + "v") + "al"](s)
        eval 1:1 | \u0065val(s)
        eval 1:9 | const { eval: e } = globalThis;
        eval 1:5 | (0, eval)(s)
        eval - | // eval(s)\n/* eval(s) */ x()
        eval - | const s = 'eval(x)' + "window.eval" + `eval`;
        eval - | evaluate(x); myeval(y); obj.eval_count = 1; obj.eval(z);
        eval - | const o = { eval: 1 }; o['evaluate'];
        eval - | const r = /eval\(/.test(s);
        "#,
    );
}

#[test]
fn function_constructor() {
    check(
        r#"
        function_constructor 1:15 | const f = new Function('a', 'return a');
        function_constructor 1:1 | Function('return this')()
        function_constructor 1:16 | (function(){}).constructor('code')()
        function_constructor 1:54 | const AF = Object.getPrototypeOf(async function(){}).constructor;
        function_constructor 1:26 | const F = [].constructor.constructor;
        function_constructor 1:27 | const F = function f() {}.constructor;
        function_constructor 1:5 | new AsyncFunction('await 1')
        function_constructor 1:11 | const G = GeneratorFunction;
        function_constructor 1:2 | x['constructor']('code')
        function_constructor 1:1 | globalThis['Func' + 'tion']('code')
        function_constructor - | if (f instanceof Function) {} if (typeof g === 'function') {}
        function_constructor - | const n = this.constructor.name; myFunction(); o.Functional();
        function_constructor - | // new Function('x')\nconst s = 'Function(x)';
        function_constructor - | class A { constructor(x) { this.x = x; } }
        function_constructor - | const call = Function.prototype.call.bind(f);
        function_constructor 1:1 | Function.call(null, 'code')
        "#,
    );
}

#[test]
fn import() {
    check(
        r#"
        import 1:1 | import fs from 'fs';
        import 2:1 | x();\nimport 'side-effect';
        import 1:1 | import { a } from './a.js';
        import 1:17 | const m = await import('./m.js');
        import 1:11 | const u = import.meta.url;
        import 1:1 | export * from './b.js';
        import 1:1 | export { c } from './c.js';
        import - | // import x from 'y'\nconst s = "import('x')";
        import - | loader.import('x'); const o = { import: 1 }; export { o };
        "#,
    );
}

#[test]
fn computed_global_access() {
    check(
        r#"
        computed_global_access 1:1 | globalThis[name]()
        computed_global_access 1:11 | const f = window[k];
        computed_global_access 1:1 | self[a + b]
        computed_global_access 1:1 | global[`x${y}`]
        computed_global_access 2:1 | const g = globalThis;\ng[k]()
        computed_global_access - | globalThis.Math.max(1); globalThis['JSON'].stringify(1);
        computed_global_access - | myWindow[k]; obj.self[k]; const a = [window]; arr[globalThis];
        computed_global_access - | const s = 'globalThis[k]'; // window[k]
        computed_global_access - | const self = this; self[k]; let window = [1, 2]; window[i];
        "#,
    );
}

#[test]
fn prototype_write() {
    check(
        r#"
        prototype_write 1:5 | obj.__proto__ = evil;
        prototype_write 1:4 | obj['__proto__'] = evil;
        prototype_write 1:13 | const o = { __proto__: base };
        prototype_write 1:19 | const o = { a: 1, '__proto__': base };
        prototype_write 1:1 | Array.prototype.sum = function () {};
        prototype_write 1:1 | Object.prototype['x'] = 1;
        prototype_write 1:1 | String.prototype.trim.extra ||= 2;
        prototype_write 1:1 | Object.setPrototypeOf(a, b);
        prototype_write 1:1 | Reflect.setPrototypeOf(a, b);
        prototype_write 1:23 | Object.defineProperty(Object.prototype, 'x', {});
        prototype_write 1:15 | Object.assign(Array.prototype, { a() {} });
        prototype_write 1:8 | delete Array.prototype.map;
        prototype_write - | Foo.prototype.bar = function () {}; class A {}
        prototype_write - | const s = Array.prototype.slice.call(args); if (x.__proto__ === y) {}
        prototype_write - | const p = Object.getPrototypeOf(x); const o = { proto: 1 };
        prototype_write - | // Array.prototype.x = 1\nconst s = 'obj.__proto__ = x';
        "#,
    );
}

#[test]
fn unbounded_loop() {
    check(
        r#"
        unbounded_loop 1:1 | while (true) { work(); }
        unbounded_loop 2:3 | x();\n  while(1) work();
        unbounded_loop 1:1 | while (!0) { if (a) continue; }
        unbounded_loop 1:1 | for (;;) { n++; }
        unbounded_loop 1:1 | for (let i = 0; ; i++) { n++; }
        unbounded_loop 1:1 | do { x++; } while (true);
        unbounded_loop 1:1 | do x++; while (1)
        unbounded_loop 1:1 | while (true) { for (const x of xs) { break; } }
        unbounded_loop 1:1 | while (true) { switch (x) { case 1: break; } }
        unbounded_loop 1:1 | for (;;) { while (true) { break; } }
        unbounded_loop - | while (true) { if (done()) break; }
        unbounded_loop - | while(true){ if (x) { return 1; } }
        unbounded_loop - | for (;;) { if (bad) throw new Error('x'); }
        unbounded_loop - | do { x++; } while (x < 10); while (x) {} for (let i = 0; i < n; i++) {}
        unbounded_loop - | outer: while (true) { for (;;) { break outer; } }
        unbounded_loop - | // while (true) {}\nconst s = 'for (;;) {}';
        "#,
    );
}

#[test]
fn recursion_without_base_case() {
    check(
        r#"
        recursion_without_base_case 2:10 | function f(n) {\n  return f(n - 1);\n}
        recursion_without_base_case 1:30 | function walk(t) { visit(t); walk(t.next); }
        recursion_without_base_case 1:18 | const k = (n) => k(n + 1);
        recursion_without_base_case 1:37 | const g = function (n) { return 1 + g(n); };
        recursion_without_base_case 1:28 | let h = async x => { await h(x); };
        recursion_without_base_case - | function f(n) { if (n <= 0) return 0; return n + f(n - 1); }
        recursion_without_base_case - | const f = (n) => n <= 1 ? 1 : n * f(n - 1);
        recursion_without_base_case - | function f(t) { return t && f(t.next); }
        recursion_without_base_case - | function f(t) { switch (t) { case 0: return 0; } return f(t - 1); }
        recursion_without_base_case - | function f(n) { const m = n - 1; return 0; f(m); }
        recursion_without_base_case - | function f(n) { this.f(n); obj.f(n); } function g() { f(1); }
        recursion_without_base_case - | function walk(n) { for (const c of n.kids) walk(c); }
        recursion_without_base_case - | function walk(n) { n.kids.forEach((c) => walk(c)); }
        "#,
    );
}

#[test]
fn unbounded_input_loop() {
    check(
        r#"
        unbounded_input_loop 2:3 | export function main(p) {\n  for (const x of p.items) {}\n}
        unbounded_input_loop 1:45 | export function main(p) { return p['items'].map((x) => x); }
        unbounded_input_loop 1:45 | export default function ({ items }) { items.forEach(f); }
        unbounded_input_loop 1:57 | export const main = (p) => { const xs = p.xs; return xs.filter(Boolean); };
        unbounded_input_loop 1:33 | export async function main(p) { for (let i = 0; i < p.rows.length; i++) {} }
        unbounded_input_loop 1:55 | export function main(input) { const { rows } = input; for (const k in rows) {} }
        unbounded_input_loop 1:33 | export default async (p) => p.a.some((x) => x);
        unbounded_input_loop - | export function main(p) {\n  if (p.items.length > 100) throw new Error('too many');\n  return p.items.map((x) => x);\n}
        unbounded_input_loop - | export function main({ items }) { if (items.length >= MAX) return []; for (const x of items) {} }
        unbounded_input_loop - | export function main(p) { return p.items.slice(0, 10).map((x) => x); }
        unbounded_input_loop - | export function main(p) { for (let i = 0; i < Math.min(p.items.length, 50); i++) {} }
        unbounded_input_loop - | export function main(p) { for (const x of p.items.slice(0, 5)) {} }
        unbounded_input_loop - | function helper(q) { q.items.map(f); }\nexport function main(p) { return [1, 2].map(f); }
        unbounded_input_loop - | export function main(p) { const xs = p.xs.slice(0, 9); return xs.map(f); }
        "#,
    );
}

#[test]
fn credential_literal() {
    check(
        r#"
        credential_literal 1:11 | const k = 'AKIAIOSFODNN7EXAMPLE';
        credential_literal 1:11 | const t = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
        credential_literal 1:5 | x = 'github_pat_11ABCDEFG0123456789_abcdefghij';
        credential_literal 1:5 | x = 'xoxb-123456789012-abcdefABCDEF';
        credential_literal 1:5 | x = 'sk_live_4eC39HqLyjWDarjtT1zdp7dc';
        credential_literal 1:5 | x = 'sk-proj-abcdefghijklmnopqrstuvwxyz012345';
        credential_literal 1:5 | x = 'AIzaSyA1234567890abcdefghijklmnopqrstuv';
        credential_literal 1:5 | x = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl';
        credential_literal 1:22 | h = { Authorization: 'Bearer abcdefghijklmnopqrstuvwxyz012' };
        credential_literal 1:13 | const pem = `-----BEGIN RSA PRIVATE KEY-----\nMIIE...`;
        credential_literal 1:17 | const API_KEY = 'Zx8Kq2Lm9Np4Rt7Vw1Yb3Cd6Ef0Gh5Jk';
        credential_literal 1:18 | const u = `${host}/path?key=AKIAIOSFODNN7EXAMPLE`;
        credential_literal - | const s = 'task-abcdefghijklmnopqrstuvwxyz'; const m = 'ask-abcdefghijklmnopqrstu1';
        credential_literal - | // const k = 'AKIAIOSFODNN7EXAMPLE'\nconst a = 1;
        credential_literal - | const id = 'Zx8Kq2Lm9Np4Rt7Vw1Yb3Cd6Ef0Gh5Jk';
        credential_literal - | const password = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
        credential_literal - | const h = `Bearer ${token}`; const k = 'AKIA'; const j = 'eyJ';
        "#,
    );
    let secret = "AKIAIOSFODNN7EXAMPLE";
    for f in findings(&format!("const k = '{secret}';")) {
        assert!(
            !f.message.contains(secret) && f.message.contains("AWS"),
            "{}",
            f.message
        );
    }
}

#[test]
fn unchecked_input() {
    check(
        r#"
        unchecked_input 2:19 | export function main(p) {\n  return new Date(p.start_date);\n}
        unchecked_input 1:34 | export function main(p) { return p['count'] * 2; }
        unchecked_input 1:45 | export default function ({ days }) { return days * 2; }
        unchecked_input 1:46 | export const main = async (p) => { const n = p.n; return n + 1; };
        unchecked_input 1:70 | export function main(p) { if (typeof p !== 'object') throw 1; return p.x + p.x; }
        unchecked_input - | export function main(p) { if (typeof p.x !== 'number') throw 1; return p.x; }
        unchecked_input - | export function main(p) { if (p.x === undefined) throw 1; return p.x; }
        unchecked_input - | export function main(p) { if (p.x != null) return p.x; }
        unchecked_input - | export function main(p) { if (!('x' in p)) throw 1; return p.x; }
        unchecked_input - | export function main(p) { if (!Object.hasOwn(p, 'x')) throw 1; return p.x; }
        unchecked_input - | export function main(p) { if (!p.hasOwnProperty('x')) throw 1; return p.x; }
        unchecked_input - | export function main(p) { if (!Array.isArray(p.x)) throw 1; return p.x; }
        unchecked_input - | export function main(p) { if (!Number.isFinite(p.x)) throw 1; return p.x; }
        unchecked_input - | export function main(p) { if (!Number.isInteger(p.x)) throw 1; return p.x; }
        unchecked_input - | export function main(p) { if (!p.x) return 0; return p.x; }
        unchecked_input - | export function main(p) { if (p.x) return p.x; return 0; }
        unchecked_input - | export function main(p) { return p.x ?? 0; }
        unchecked_input - | export function main({ x = 0 }) { return x; }
        unchecked_input - | export function main(p) { const { x = 1 } = p; return x; }
        unchecked_input - | export function main(p) { return p.x instanceof Date ? 1 : 0; }
        unchecked_input - | export function main(p) { return p.x?.length; }
        unchecked_input - | export function main(p) { const x = p.x; if (typeof x !== 'string') throw 1; return x; }
        unchecked_input - | function check(q) { if (typeof q.x !== 'string') throw 1; }\nexport function main(p) { check(p); return p.x; }
        unchecked_input - | export function main(p) { return JSON.stringify(p); }
        unchecked_input - | function other(p) { return p.x; }\nexport function main(q) { return 1; }
        "#,
    );
}

const LEAVE_DAYS: &str = r#"// Working days between two dates, minus holidays.
const MAX_HOLIDAYS = 366;

export function main(p, ctx) {
  if (typeof p.start_date !== "string" || typeof p.end_date !== "string") {
    throw new Error("start_date and end_date must be strings");
  }
  if (!Array.isArray(p.holidays)) throw new Error("holidays must be an array");
  if (p.holidays.length > MAX_HOLIDAYS) throw new Error("too many holidays");
  const holidays = new Set(p.holidays.map((h) => String(h)));
  const start = new Date(p.start_date);
  const end = new Date(p.end_date);
  if (isNaN(start) || isNaN(end) || end < start) throw new Error("bad dates");
  let days = 0;
  for (let d = new Date(start); d <= end && days < 1000; d.setDate(d.getDate() + 1)) {
    const day = d.getDay();
    const iso = d.toISOString().slice(0, 10);
    if (day !== 0 && day !== 6 && !holidays.has(iso)) days++;
  }
  return { days, note: `from ${p.start_date} to ${p.end_date}` };
}
"#;

#[test]
fn leave_days_calculator_is_clean() {
    assert_eq!(findings(LEAVE_DAYS), vec![]);
}

#[test]
fn lexing_is_not_fooled() {
    check(
        r#"
        eval - | const r = /[/]eval(/g; const d = a / b / eval_;
        eval - | const s = `eval( ${`nested ${'eval('}`} )`;
        eval - | const s = 'unterminated eval(\nx();
        eval - | /* unterminated eval(
        eval - | const s = "a\"eval(\"b"; const t = 'it\'s eval(';
        eval 1:16 | const s = `a ${eval(x)} b`;
        eval 1:37 | const s = `a ${ {k: `${1}`}.k } b`; eval(s)
        eval 1:16 | let x = a / 2; eval(x) / 3
        eval 1:18 | if (/x/.test(s)) eval(s)
        eval 2:8 | const s = `multi\nline`; eval(s)
        eval 1:17 | const é = 'ü—'; eval(x)
        eval 2:1 | x()\r\neval(y)
        "#,
    );
}

#[test]
fn findings_are_sorted_and_unique() {
    let src = "eval(1); Function(2);\nwindow[k]; eval(3);\nglobalThis['eval'](4);";
    let keys: Vec<_> = findings(src)
        .iter()
        .map(|f| (f.line, f.column, f.rule))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(keys, sorted);
    assert_eq!(keys.len(), 5, "{keys:?}");
}

#[test]
fn never_panics_on_garbage_or_prefixes() {
    let alphabet: Vec<char> = "ab(){}[];:,.=+-*/\\'\"`$!?<>&|# \n\r\t019éü—\u{2028}"
        .chars()
        .collect();
    let words = [
        "eval", "function", "while", "for", "export ", "import", "const ", "p.items", "${",
    ];
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut garbage = String::new();
    while garbage.len() < 256 * 1024 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let pick = (seed >> 8) as usize;
        match seed % 5 {
            0 => garbage.push_str(words[pick % words.len()]),
            _ => garbage.push(alphabet[pick % alphabet.len()]),
        }
    }
    let _ = findings(&garbage);
    let extra = "const r = /a[/]b/g; function f(n) { return f(n) }\nwhile (true) { `${x}` }";
    let sample = format!("{LEAVE_DAYS}\n{extra}");
    for (i, _) in sample.char_indices() {
        let _ = findings(&sample[..i]);
    }
}

#[test]
fn pathological_inputs_are_fast() {
    let cases = [
        "while(1){".repeat(30_000),
        "function a(){".repeat(20_000),
        "(".repeat(100_000) + &"}".repeat(100_000),
        "x[(".repeat(60_000),
        "for(;(()=>{".repeat(20_000),
        format!("const k = '{}';", "eyJ".repeat(80_000)),
        "export function main(p){".to_string() + &"p.a.map(".repeat(20_000),
    ];
    for src in cases {
        let start = std::time::Instant::now();
        let _ = findings(&src);
        assert!(
            start.elapsed().as_secs() < 10,
            "too slow on {} bytes",
            src.len()
        );
    }
}
