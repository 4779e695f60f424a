//! The rules read from words and brackets: eval, the Function
//! constructor, imports, computed globals, prototype writes, endless
//! loops and recursion with no base case.

use std::collections::{HashMap, HashSet};

use super::lexer::{Kind, Token};
use super::{A, Found, LOOP_METHODS, R};

const BUILTINS: &[&str] = &[
    "Object", "Array", "Function", "String", "Number", "Boolean", "Promise", "RegExp", "Date",
    "Map", "Set", "JSON", "Math", "Symbol", "Error",
];
/// Words after which `[` opens an array literal rather than an index.
const NOT_OPERAND: &[&str] = &[
    "return",
    "typeof",
    "case",
    "in",
    "of",
    "new",
    "delete",
    "void",
    "throw",
    "else",
    "do",
    "yield",
    "await",
    "instanceof",
    "let",
    "const",
    "var",
    "export",
    "default",
    "extends",
];

/// A loop or switch, for matching `break`s to it.
struct Loop {
    kw: usize,
    end: usize,
    label: String,
    exits: bool,
    what: Option<String>,
}

fn num_truthy(text: &str) -> bool {
    let s = text.replace('_', "").to_ascii_lowercase();
    let s = s.strip_suffix('n').unwrap_or(&s);
    let radix = [("0x", 16), ("0o", 8), ("0b", 2)]
        .into_iter()
        .find(|(p, _)| s.starts_with(p));
    match radix {
        Some((p, r)) => u128::from_str_radix(&s[p.len()..], r).is_ok_and(|v| v != 0),
        None => s.parse::<f64>().is_ok_and(|v| v != 0.0),
    }
}

impl A {
    /// Eval, the Function constructor, imports and prototype writes.
    pub(super) fn words(&mut self) {
        let mut f: Found = Vec::new();
        for i in 0..self.t.len() {
            let (dot, key, call) = (self.dot(i), self.is_key(i), self.w(i + 1) == "(");
            let lit_key = matches!(self.back(i, 1), "{" | ",") && self.w(i + 1) == ":";
            let proto_str = self.kind(i) == Some(Kind::Str) && self.t[i].text == "__proto__";
            if proto_str && lit_key {
                f.push((
                    i,
                    R::PrototypeWrite,
                    "an object literal sets __proto__".into(),
                ));
            }
            let via = (dot && self.global(i.wrapping_sub(2))).then(|| self.back(i, 2));
            let reached = (!dot || via.is_some()) && !key;
            let Some(w) = self.name(i) else { continue };
            let (rule, msg) = match w {
                "eval" if reached => match via {
                    Some(g) => (R::Eval, format!("eval is reached through {g}")),
                    None if call => (R::Eval, "eval is called".into()),
                    None => (R::Eval, "eval is referenced".into()),
                },
                "Function" if reached && !self.benign_function(i) => {
                    let msg = match () {
                        _ if self.back(i, 1) == "new" => "new Function builds code from a string",
                        _ if call => "the Function constructor is called",
                        _ => "the Function constructor is referenced",
                    };
                    (R::FunctionConstructor, msg.into())
                }
                "AsyncFunction" | "GeneratorFunction" | "AsyncGeneratorFunction" if !key => (
                    R::FunctionConstructor,
                    format!("{w} is referenced: a Function constructor"),
                ),
                "constructor" if dot && self.reaches_function(i) => {
                    let msg = "Function constructor reached through .constructor";
                    (R::FunctionConstructor, msg.into())
                }
                "import" if !dot && !key => match self.w(i + 1) {
                    "(" => (R::Import, "import() loads a module at run time".into()),
                    "." => (R::Import, "import.meta is used".into()),
                    _ => (
                        R::Import,
                        "a static import declaration loads a module".into(),
                    ),
                },
                "export" if !dot && self.export_from(i) => (
                    R::Import,
                    "an export ... from declaration loads a module".into(),
                ),
                "__proto__" if (dot && self.assign(i + 1)) || lit_key => match dot {
                    true => (R::PrototypeWrite, "assignment to __proto__".into()),
                    false => (R::PrototypeWrite, "an object literal sets __proto__".into()),
                },
                "setPrototypeOf"
                    if dot && call && matches!(self.back(i, 2), "Object" | "Reflect") =>
                {
                    let msg = format!("{}.setPrototypeOf changes a prototype", self.back(i, 2));
                    f.push((i - 2, R::PrototypeWrite, msg));
                    continue;
                }
                b if BUILTINS.contains(&b) && !dot && self.w(i + 1) == "." => {
                    let Some(how) = self.prototype_write(i) else {
                        continue;
                    };
                    (R::PrototypeWrite, format!("{b}.prototype is modified{how}"))
                }
                _ => continue,
            };
            f.push((i, rule, msg));
        }
        self.extend(f);
    }

    /// `x instanceof Function` and `Function.prototype...` build nothing.
    fn benign_function(&self, i: usize) -> bool {
        let proto = self.w(i + 1) == "." && self.w(i + 2) == "prototype";
        self.back(i, 1) == "instanceof" || proto
    }

    fn export_from(&self, i: usize) -> bool {
        match self.w(i + 1) {
            "*" => (i + 2..i + 5).any(|k| self.w(k) == "from"),
            "{" => self
                .close(i + 1, "{")
                .is_some_and(|c| self.w(c + 1) == "from"),
            _ => false,
        }
    }

    /// `B.prototype` at `i` written to: how, if so.
    fn prototype_write(&self, i: usize) -> Option<String> {
        if self.w(i + 2) != "prototype" {
            return None;
        }
        let mut j = i + 3;
        while matches!(self.w(j), "." | "?." | "[") {
            j = if self.w(j) == "[" {
                self.skip(j)
            } else {
                j + 2
            };
        }
        let through = [
            "assign",
            "defineProperty",
            "defineProperties",
            "setPrototypeOf",
        ];
        let callee = self.back(i, 2);
        if self.assign(j) || self.back(i, 1) == "delete" {
            Some(String::new())
        } else if self.back(i, 1) == "(" && through.contains(&callee) {
            Some(format!(" through {callee}"))
        } else {
            None
        }
    }

    /// `.constructor` at `i` that reaches `Function`: called, or taken
    /// from a function, a prototype or another constructor.
    fn reaches_function(&self, i: usize) -> bool {
        let o = i.wrapping_sub(2);
        let called = self.w(i + 1) == "(" || (self.w(i + 1) == "?." && self.w(i + 2) == "(");
        let fn_at = |k: usize| matches!(self.w(k), "function" | "async");
        let named_fn = |k: usize| fn_at(k) || (self.name(k).is_some() && fn_at(k.wrapping_sub(1)));
        let from = match self.w(o) {
            "constructor" => self.dot(o),
            ")" => self.m(o).is_some_and(|m| {
                let arrow = self
                    .close(m + 1, "(")
                    .is_some_and(|c| self.w(c + 1) == "=>");
                self.back(m, 1) == "getPrototypeOf" || fn_at(m + 1) || arrow
            }),
            // `function name(...) {}.constructor`
            "}" => {
                let paren = self.m(o).and_then(|m| self.close(m.wrapping_sub(1), ")"));
                paren.is_some_and(|p| named_fn(p.wrapping_sub(1)))
            }
            _ => false,
        };
        called || from
    }
    /// Computed member access: folded keys and globals.
    pub(super) fn brackets(&mut self) {
        let mut f: Found = Vec::new();
        for i in (0..self.t.len()).filter(|&i| self.w(i) == "[") {
            let operand = match self.t.get(i.wrapping_sub(1)) {
                Some(t) if t.kind == Kind::Ident => !NOT_OPERAND.contains(&t.text.as_str()),
                Some(t) if t.kind == Kind::Punct => matches!(t.text.as_str(), ")" | "]" | "?."),
                other => other.is_some(),
            };
            let obj = i.wrapping_sub(1 + usize::from(self.back(i, 1) == "?."));
            let at = if self.global(obj) { obj } else { i };
            let (rule, msg) = match self.fold(i).as_deref() {
                _ if !operand => continue,
                Some("eval") => (R::Eval, "eval is reached through a computed key".into()),
                Some("Function" | "AsyncFunction" | "GeneratorFunction" | "constructor") => {
                    let msg = "Function constructor reached through a computed key";
                    (R::FunctionConstructor, msg.into())
                }
                Some("__proto__") if self.assign(self.skip(i)) => {
                    (R::PrototypeWrite, "assignment to __proto__".into())
                }
                None if at == obj => {
                    let msg = format!("{} is indexed with a computed key", self.w(obj));
                    (R::ComputedGlobalAccess, msg)
                }
                _ => continue,
            };
            f.push((at, rule, msg));
        }
        self.extend(f);
    }

    /// The condition in `a..b`, as written, if it is a constant true.
    fn const_true(&self, a: usize, b: usize) -> Option<String> {
        let toks = self.t.get(a..b).filter(|t| t.len() < 8)?.iter();
        let toks: Vec<&Token> = toks
            .filter(|t| !matches!(t.text.as_str(), "(" | ")"))
            .collect();
        let text: String = toks.iter().map(|t| t.text.as_str()).collect();
        let words = [
            "true",
            "!0",
            "!false",
            "!!1",
            "!!true",
            "!null",
            "!undefined",
        ];
        let truthy = match toks[..] {
            [t] if t.kind == Kind::Num => num_truthy(&t.text),
            _ => words.contains(&text.as_str()),
        };
        truthy.then_some(text)
    }

    /// How a `for`/`while`/`do` at `i` with header `open..close` never
    /// ends by its condition, if it does not.
    fn endless(&self, i: usize, open: usize, close: usize) -> Option<String> {
        match self.w(i) {
            "while" => self
                .const_true(open + 1, close)
                .map(|c| format!("while ({c})")),
            "for" => {
                let top = self.top(open, close);
                let semis: Vec<&usize> = top.iter().filter(|&&j| self.w(j) == ";").collect();
                let [&a, &b] = semis[..] else { return None };
                let bare = close - open == 3;
                let what = if bare {
                    "for (;;)"
                } else {
                    "for loop with no condition"
                };
                (b - a == 1 || self.const_true(a + 1, b).is_some()).then(|| what.to_string())
            }
            _ => self
                .const_true(open + 1, close)
                .map(|c| format!("do ... while ({c})")),
        }
    }

    /// Loops with a constant true condition and no exit of their own.
    pub(super) fn loops(&mut self) {
        let n = self.t.len();
        let (mut cs, mut tails, mut hdr) = (Vec::<Loop>::new(), HashSet::new(), vec![0i32; n + 1]);
        for i in (0..n).filter(|&i| !self.dot(i)) {
            let word = self.w(i);
            let (body, mut what) = match word {
                "for" | "while" | "switch" if !tails.contains(&i) => {
                    let open = i + 1 + usize::from(self.w(i + 1) == "await");
                    let Some(close) = self.close(open, "(") else {
                        continue;
                    };
                    (hdr[open], hdr[close]) = (hdr[open] + 1, hdr[close] - 1);
                    let what = if word == "switch" {
                        None
                    } else {
                        self.endless(i, open, close)
                    };
                    (close + 1, what)
                }
                "do" => (i + 1, None),
                _ => continue,
            };
            let end = self.body_end(body).min(n);
            let tail = word == "do" && self.w(end) == "while";
            if let Some(close) = self.close(end + 1, "(").filter(|_| tail) {
                tails.insert(end);
                what = self.endless(i, end + 1, close);
            }
            let label = if self.back(i, 1) == ":" {
                self.back(i, 2)
            } else {
                ""
            }
            .to_string();
            cs.push(Loop {
                kw: i,
                end,
                label,
                exits: false,
                what,
            });
        }
        let mut acc = 0;
        for (i, h) in hdr.iter().enumerate().take(n) {
            acc += h;
            self.hdr[i] = acc > 0;
        }
        let (mut rets, mut stack, mut next) = (vec![0u32; n + 1], Vec::<usize>::new(), 0);
        for i in 0..n {
            let exit = matches!(self.w(i), "return" | "throw") && !self.dot(i);
            rets[i + 1] = rets[i] + u32::from(exit);
            while stack.last().is_some_and(|&top| cs[top].end <= i) {
                stack.pop();
            }
            while cs.get(next).is_some_and(|c| c.kw == i) {
                stack.push(next);
                next += 1;
            }
            if self.w(i) != "break" || self.dot(i) {
                continue;
            }
            let same_line = self.t.get(i + 1).is_some_and(|t| t.line == self.t[i].line);
            let label = self
                .name(i + 1)
                .filter(|w| same_line && !matches!(*w, "case" | "default"));
            let up = stack.iter().rev().take(64);
            let target = label.and_then(|l| up.clone().position(|&k| cs[k].label == l));
            for &k in stack.iter().rev().take(target.map_or(1, |d| d + 1)) {
                cs[k].exits = true;
            }
        }
        let endless = cs.iter().filter(|c| !c.exits && rets[c.end] == rets[c.kw]);
        let msg = |w: &String| format!("{w} loop has no break, return or throw");
        let f = endless.filter_map(|c| Some((c.kw, R::UnboundedLoop, msg(c.what.as_ref()?))));
        let f: Found = f.collect();
        self.extend(f);
    }

    /// Functions that call themselves with nothing conditional before.
    pub(super) fn recursion(&mut self) {
        let n = self.t.len();
        let (mut marks, mut rets, mut last) =
            (vec![0u32; n + 1], vec![0u32; n + 1], vec![None; n + 1]);
        let mut calls: HashMap<&str, Vec<usize>> = HashMap::new();
        for i in 0..n {
            let w = self.w(i);
            // Conditionals, and loops around the call (a walk over children).
            let method = self.dot(i) && LOOP_METHODS.contains(&w) && self.w(i + 1) == "(";
            let cond = [
                "if", "switch", "for", "while", "?", "&&", "||", "??", "&&=", "||=", "??=",
            ];
            let mark = method || (!self.dot(i) && cond.contains(&w));
            let ret = w == "return" && !self.dot(i);
            marks[i + 1] = marks[i] + u32::from(mark);
            rets[i + 1] = rets[i] + u32::from(ret);
            last[i + 1] = if ret { Some(i) } else { last[i] };
            if let Some(name) = self
                .name(i)
                .filter(|_| self.w(i + 1) == "(" && !self.dot(i))
            {
                calls.entry(name).or_default().push(i);
            }
        }
        let mut f: Found = Vec::new();
        for i in 0..n {
            let (name, func) = match self.w(i) {
                "function" if !self.dot(i) => (
                    self.name(i + 1 + usize::from(self.w(i + 1) == "*")),
                    self.func_at(i),
                ),
                _ if self.decl(i) && self.w(i + 2) == "=" => {
                    (self.name(i + 1), self.func_at(i + 3))
                }
                _ => continue,
            };
            let (Some(name), Some((_, s, e))) = (name, func) else {
                continue;
            };
            let list = calls.get(name).map_or(&[][..], |l| &l[..]);
            let Some(&c) = list
                .get(list.partition_point(|&c| c < s))
                .filter(|&&c| c < e)
            else {
                continue;
            };
            let r = rets[c] - rets[s];
            let early_return = r >= 2 || (r == 1 && last[c].is_some_and(|x| self.end[x] < c));
            if marks[c] == marks[s] && !early_return {
                let msg = format!("{name} calls itself with no base case before the call");
                f.push((c, R::RecursionWithoutBaseCase, msg));
            }
        }
        self.extend(f);
    }
}
