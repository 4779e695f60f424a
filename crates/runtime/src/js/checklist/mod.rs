//! The approver's checklist for a JavaScript source: warnings with line
//! numbers. It reads tokens (nothing in a comment or string counts as
//! code) in a few linear passes, one per family of rules. Heuristic and
//! forgiving: it never fails, and prefers missing a case to flagging
//! sound code.

mod input;
mod lexer;
mod rules;
#[cfg(test)]
mod tests;

use std::collections::HashSet;

use aifn_types::{CheckFinding, CheckRule as R};
use lexer::{Kind, Token};

const GLOBALS: &[&str] = &["globalThis", "window", "self", "global"];
const LOOP_METHODS: &[&str] = &[
    "forEach",
    "map",
    "filter",
    "reduce",
    "reduceRight",
    "some",
    "every",
    "flatMap",
    "find",
    "findIndex",
    "findLast",
    "findLastIndex",
];

/// The checklist's findings for `source`, sorted by line, column and rule.
pub(crate) fn findings(source: &str) -> Vec<CheckFinding> {
    let mut a = A::new(lexer::tokenize(source));
    a.words();
    a.brackets();
    a.loops();
    a.recursion();
    a.input();
    let creds = lexer::credentials(&a.t);
    a.extend(creds.into_iter().map(|(i, m)| (i, R::CredentialLiteral, m)));
    let mut out = a.out;
    out.sort_by_key(|f| (f.line, f.column, f.rule));
    out.dedup_by_key(|f| (f.line, f.column, f.rule));
    out
}

/// An element of a member chain `a.b["c"]`: token, name, reached by `?.`.
type Link = (usize, String, bool);
type Found = Vec<(usize, R, String)>;

/// The tokens, their structure and the findings so far.
struct A {
    t: Vec<Token>,
    /// The matching bracket of each bracket token.
    mate: Vec<Option<usize>>,
    /// The innermost open bracket around each token.
    encl: Vec<Option<usize>>,
    /// Where the statement from each token ends: its `;` or closer.
    end: Vec<usize>,
    /// Whether each token is in a `for`/`while` header.
    hdr: Vec<bool>,
    globals: HashSet<String>,
    out: Vec<CheckFinding>,
}

impl A {
    fn new(t: Vec<Token>) -> A {
        let n = t.len();
        let (mate, encl, end, hdr) = (vec![None; n], vec![None; n], vec![n; n + 1], vec![false; n]);
        let (globals, out) = (GLOBALS.iter().map(|g| g.to_string()).collect(), Vec::new());
        let mut a = A {
            t,
            mate,
            encl,
            end,
            hdr,
            globals,
            out,
        };
        let mut stack: Vec<usize> = Vec::new();
        for i in 0..n {
            a.encl[i] = stack.last().copied();
            let want = match a.w(i) {
                "(" | "[" | "{" => {
                    stack.push(i);
                    continue;
                }
                ")" => "(",
                "]" => "[",
                "}" => "{",
                _ => continue,
            };
            // Recover from a stray opener a few levels down, no deeper.
            if let Some(d) = stack.iter().rev().take(8).position(|&o| a.w(o) == want) {
                let o = stack[stack.len() - 1 - d];
                stack.truncate(stack.len() - 1 - d);
                (a.mate[o], a.mate[i]) = (Some(i), Some(o));
            }
        }
        for i in (0..n).rev() {
            a.end[i] = match a.mate[i] {
                _ if matches!(a.w(i), ";" | ")" | "]" | "}") => i,
                Some(m) if m > i => a.end[m + 1],
                _ => a.end[i + 1],
            };
        }
        // `const g = globalThis` aliases it; `const self = this` shadows it.
        for i in 0..n {
            if !a.decl(i) {
                continue;
            }
            let plain = !matches!(a.w(i + 4), "." | "[");
            let name = a.t[i + 1].text.clone();
            if a.w(i + 2) == "=" && a.global(i + 3) && plain {
                a.globals.insert(name);
            } else {
                a.globals.remove(&name);
            }
        }
        a
    }

    fn extend(&mut self, found: impl IntoIterator<Item = (usize, R, String)>) {
        for (i, rule, message) in found {
            if let Some(t) = self.t.get(i) {
                let (line, column) = (t.line, t.col);
                self.out.push(CheckFinding {
                    rule,
                    line,
                    column,
                    message,
                });
            }
        }
    }

    /// The text at `i` if it is a word or punctuator, else "".
    fn w(&self, i: usize) -> &str {
        match self.t.get(i) {
            Some(t) if matches!(t.kind, Kind::Ident | Kind::Punct) => &t.text,
            _ => "",
        }
    }
    fn back(&self, i: usize, k: usize) -> &str {
        self.w(i.wrapping_sub(k))
    }
    fn kind(&self, i: usize) -> Option<Kind> {
        self.t.get(i).map(|t| t.kind)
    }
    fn name(&self, i: usize) -> Option<&str> {
        self.t
            .get(i)
            .filter(|t| t.kind == Kind::Ident)
            .map(|t| t.text.as_str())
    }
    fn m(&self, i: usize) -> Option<usize> {
        self.mate.get(i).copied().flatten()
    }
    fn close(&self, i: usize, open: &str) -> Option<usize> {
        self.m(i).filter(|_| self.w(i) == open)
    }
    fn dot(&self, i: usize) -> bool {
        matches!(self.back(i, 1), "." | "?.")
    }
    /// `const NAME` at `i`.
    fn decl(&self, i: usize) -> bool {
        matches!(self.w(i), "const" | "let" | "var") && self.name(i + 1).is_some()
    }
    fn global(&self, i: usize) -> bool {
        self.name(i).is_some_and(|w| self.globals.contains(w)) && !self.dot(i)
    }
    /// An object literal's `key:`, not a destructuring pattern's.
    fn is_key(&self, i: usize) -> bool {
        let open = self.encl.get(i).copied().flatten();
        let pattern = open
            .and_then(|o| self.close(o, "{"))
            .is_some_and(|c| self.w(c + 1) == "=");
        matches!(self.back(i, 1), "{" | ",") && self.w(i + 1) == ":" && !pattern
    }
    fn assign(&self, i: usize) -> bool {
        let w = self.w(i);
        w.ends_with('=') && !matches!(w, "==" | "===" | "!=" | "!==" | "<=" | ">=")
    }
    fn literal(&self, i: usize) -> bool {
        let word = matches!(self.w(i), "null" | "undefined" | "void" | "true" | "false");
        word || matches!(self.kind(i), Some(Kind::Str | Kind::Num))
    }
    /// The token after the one at `i`, or after its brackets.
    fn skip(&self, i: usize) -> usize {
        match self.m(i) {
            Some(m) if m > i => m + 1,
            _ => i + 1,
        }
    }
    /// The tokens directly inside the brackets `open`..`close`.
    fn top(&self, open: usize, close: usize) -> Vec<usize> {
        let (mut v, mut j) = (Vec::new(), open + 1);
        while j < close {
            v.push(j);
            j = self.skip(j);
        }
        v
    }
    /// Where a body starting at `s` ends (exclusive): block or statement.
    fn body_end(&self, s: usize) -> usize {
        if let Some(m) = self.close(s, "{") {
            return m + 1;
        }
        let e = self.end.get(s).copied().unwrap_or(self.t.len());
        e + usize::from(self.w(e) == ";")
    }

    /// A concatenation of string literals filling the brackets at `open`.
    fn fold(&self, open: usize) -> Option<String> {
        let close = self.close(open, "[")?;
        let (mut s, mut want_str) = (String::new(), true);
        for t in &self.t[open + 1..close] {
            match (t.kind, t.text.as_str()) {
                (Kind::Punct, "(" | ")") => continue,
                (Kind::Str, v) if want_str => s.push_str(v),
                (Kind::Punct, "+") if !want_str => {}
                _ => return None,
            }
            want_str = !want_str;
        }
        (!want_str).then_some(s)
    }

    /// The member chain from the identifier at `i`, and where it ends.
    fn chain(&self, i: usize) -> (Vec<Link>, usize) {
        let (mut v, mut j) = (vec![(i, self.t[i].text.clone(), false)], i + 1);
        loop {
            let opt = self.w(j) == "?.";
            if let Some(name) = self.name(j + 1).filter(|_| opt || self.w(j) == ".") {
                v.push((j + 1, name.to_string(), opt));
                j += 2;
            } else if let Some(key) = self.fold(j + usize::from(opt)) {
                v.push((j + usize::from(opt), key, opt));
                j = self.skip(j + usize::from(opt));
            } else {
                return (v, j);
            }
        }
    }

    /// A function or arrow at `i`: (params, body start, body end).
    fn func_at(&self, mut i: usize) -> Option<(usize, usize, usize)> {
        i += usize::from(self.w(i) == "async");
        if self.w(i) == "function" {
            i += 1 + usize::from(self.w(i + 1) == "*");
            i += usize::from(self.name(i).is_some());
            let close = self.close(i, "(")?;
            return (self.w(close + 1) == "{").then(|| (i, close + 1, self.body_end(close + 1)));
        }
        let arrow = match self.close(i, "(") {
            Some(c) => c + 1,
            None => i + usize::from(self.name(i).is_some()),
        };
        (self.w(arrow) == "=>").then(|| (i, arrow + 1, self.body_end(arrow + 1)))
    }
}
