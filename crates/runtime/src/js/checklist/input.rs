//! The rules about the entry point's input: fields looped over with no
//! bound on their length, and fields used with no check.

use std::collections::{HashMap, HashSet};

use super::lexer::Kind;
use super::{A, Found, LOOP_METHODS, Link, R};

const COMPARE: &[&str] = &["<", ">", "<=", ">=", "==", "===", "!=", "!=="];
const EQUALITY: &[&str] = &["==", "===", "!=", "!=="];
/// Postfix operators that test or default the value before them.
const TESTS: &[&str] = &[
    "??",
    "??=",
    "||",
    "||=",
    "&&",
    "&&=",
    "?",
    "?.",
    "instanceof",
];

/// The entry point's input: its name, locals bound to its fields, the
/// fields checked somewhere, and the tokens that declare locals.
#[derive(Default)]
struct Input {
    name: String,
    locals: HashMap<String, String>,
    checked: HashSet<String>,
    decl: HashSet<usize>,
}

impl Input {
    /// The field `ch[..k]` is: `input.field`, or a local bound to one.
    fn field(&self, ch: &[Link], k: usize) -> Option<String> {
        match (k, ch) {
            (1, [(_, local, _), ..]) => self.locals.get(local).cloned(),
            (2, [(_, input, _), (_, field, _), ..]) if *input == self.name => Some(field.clone()),
            _ => None,
        }
    }

    /// The name `ch[..k]` checks: its last element, a local as its field.
    fn name_of(&self, ch: &[Link], k: usize) -> String {
        let last = &ch[k - 1].1;
        let local = self.locals.get(last).filter(|_| k == 1);
        local.unwrap_or(last).clone()
    }
}

fn is_check_fn(name: &str) -> bool {
    let upper = |k: usize| {
        name[k..]
            .chars()
            .next()
            .is_none_or(|c| c.is_ascii_uppercase())
    };
    let prefixes = ["assert", "validate", "check", "ensure"];
    (name.starts_with("is") && upper(2)) || prefixes.iter().any(|p| name.starts_with(p))
}

impl A {
    /// The entry point `main` (named or default): (params, body start, end).
    fn find_main(&self) -> Option<(usize, usize, usize)> {
        let mut fallback = None;
        for i in 0..self.t.len() {
            let at_main = self.w(i + 1) == "main" && fallback.is_none();
            if self.w(i) != "export" || self.dot(i) {
                if at_main && self.w(i) == "function" {
                    fallback = self.func_at(i);
                } else if at_main && self.decl(i) && self.w(i + 2) == "=" {
                    fallback = self.func_at(i + 3);
                }
                continue;
            }
            let k = i + 1 + usize::from(self.w(i + 1) == "async");
            let found = match self.w(i + 1) {
                "default" => self.func_at(i + 2),
                _ if self.w(k) == "function" && self.w(k + 1) == "main" => self.func_at(i + 1),
                _ if self.decl(i + 1) && self.w(i + 2) == "main" && self.w(i + 3) == "=" => {
                    self.func_at(i + 4)
                }
                _ => None,
            };
            if found.is_some() {
                return found;
            }
        }
        fallback
    }

    /// Binds the names of the object pattern at `open` to its fields.
    fn pattern(&self, open: usize, inp: &mut Input) {
        let Some(close) = self.close(open, "{") else {
            return;
        };
        let mut j = open + 1;
        while j < close {
            let key = self.t[j].text.clone();
            let bind = if self.w(j + 1) == ":" { j + 2 } else { j };
            let keyed = matches!(self.t[j].kind, Kind::Ident | Kind::Str);
            if let Some(name) = self.name(bind).filter(|_| keyed) {
                inp.decl.insert(bind);
                inp.locals.insert(name.to_string(), key.clone());
                if self.w(bind + 1) == "=" {
                    inp.checked.insert(key);
                }
            }
            while j < close && self.w(j) != "," {
                j = self.skip(j);
            }
            j += 1;
        }
    }

    /// Whether the string at `i` names a field in a presence check:
    /// `"f" in x`, `x.hasOwnProperty("f")`, `Object.hasOwn(x, "f")`.
    fn presence(&self, i: usize) -> bool {
        let own = |k: usize| matches!(self.back(i, k), "hasOwn" | "hasOwnProperty" | "call");
        let first = self.back(i, 1) == "(" && own(2);
        let second = self.back(i, 1) == "," && self.back(i, 3) == "(" && own(4);
        self.kind(i) == Some(Kind::Str) && (self.w(i + 1) == "in" || first || second)
    }

    /// Whether the chain `i..e` is tested as a whole (typeof, `!`, a
    /// comparison with a literal, a default, an `is...` call).
    fn tested(&self, i: usize, e: usize) -> bool {
        let whole = !matches!(self.w(e), "(" | "[" | "?.") && self.kind(e) != Some(Kind::Template);
        let callee = self.name(i.wrapping_sub(2)).unwrap_or("");
        let prefix = match self.back(i, 1) {
            "typeof" | "!" => true,
            "(" => {
                is_check_fn(callee) || callee == "switch" || (callee == "if" && self.w(e) == ")")
            }
            b => EQUALITY.contains(&b) && self.literal(i.wrapping_sub(2)),
        };
        let after = self.w(e);
        let postfix = TESTS.contains(&after) || (EQUALITY.contains(&after) && self.literal(e + 1));
        (whole && prefix) || postfix
    }

    /// Input fields looped over with no bound, and used with no check.
    pub(super) fn input(&mut self) {
        let Some((params, s, e)) = self.find_main() else {
            return;
        };
        let mut inp = Input::default();
        let open = params + 1;
        match self.w(params) {
            "(" if matches!(self.w(open + 1), "," | ")" | "=") => inp.name = self.w(open).into(),
            "(" => self.pattern(open, &mut inp),
            name => inp.name = name.into(),
        }
        let (mut first_use, mut bound, mut f) = (HashMap::new(), HashSet::new(), Found::new());
        let mut looped = |field: String, at: usize, bound: &HashSet<String>| {
            if !bound.contains(&field) {
                let msg = format!("input field {field} is looped over with no bound on its length");
                f.push((at, R::UnboundedInputLoop, msg));
            }
        };
        for i in 0..self.t.len() {
            let in_main = i >= s && i < e;
            if self.presence(i) {
                inp.checked.insert(self.t[i].text.clone());
            }
            if in_main && self.decl(i) && self.w(i + 2) == "=" && self.name(i + 3).is_some() {
                let (ch, end) = self.chain(i + 3);
                let next_line = self
                    .t
                    .get(end)
                    .is_none_or(|t| t.line > self.t[end - 1].line);
                let alias = next_line || matches!(self.w(end), ";" | "," | "}" | ")");
                if let Some(field) = inp.field(&ch, ch.len()).filter(|_| alias) {
                    inp.locals.insert(self.t[i + 1].text.clone(), field);
                    inp.decl.insert(i + 1);
                }
            }
            let pat = self
                .close(i + 1, "{")
                .filter(|_| matches!(self.w(i), "const" | "let" | "var"));
            let from_input =
                |c: usize| self.w(c + 2) == inp.name && !matches!(self.w(c + 3), "." | "[");
            if pat.is_some_and(|c| in_main && self.w(c + 1) == "=" && from_input(c)) {
                self.pattern(i + 1, &mut inp);
            }
            let header = self
                .close(i + 1, "(")
                .filter(|_| matches!(self.w(i), "for" | "while"));
            if let Some(close) = header.filter(|_| in_main && !self.dot(i)) {
                let top = self.top(i + 1, close);
                let of = top
                    .iter()
                    .find(|&&k| matches!(self.w(k), "of" | "in") && self.w(i) == "for");
                if let Some(&k) = of.filter(|&&k| self.name(k + 1).is_some()) {
                    let (ch, end) = self.chain(k + 1);
                    if let Some(field) = inp.field(&ch, ch.len()).filter(|_| end == close) {
                        looped(field, i, &bound);
                    }
                }
                let semis: Vec<usize> = top.into_iter().filter(|&j| self.w(j) == ";").collect();
                let cond = match semis[..] {
                    [a, b] => a + 1..b,
                    _ if self.w(i) == "while" => i + 2..close,
                    _ => 0..0,
                };
                let cond = cond
                    .take(64)
                    .filter(|&j| self.name(j).is_some() && !self.dot(j));
                for j in cond {
                    let (ch, end) = self.chain(j);
                    let less =
                        matches!(self.back(j, 1), "<" | "<=") || matches!(self.w(end), ">" | ">=");
                    let len = ch.len() >= 2 && ch[ch.len() - 1].1 == "length";
                    if let Some(field) = inp.field(&ch, ch.len() - 1).filter(|_| len && less) {
                        looped(field, i, &bound);
                    }
                }
            }
            if self.name(i).is_none() || self.dot(i) || inp.decl.contains(&i) || self.is_key(i) {
                continue;
            }
            let (ch, end) = self.chain(i);
            let l = ch.len();
            if self.tested(i, end) {
                inp.checked.insert(inp.name_of(&ch, l));
            }
            for k in (1..l).filter(|&k| ch[k].2) {
                inp.checked.insert(inp.name_of(&ch, k));
            }
            // A bound: `x.length` compared (outside a loop header), capped,
            // truncated; or `x` reassigned.
            let (before, after) = (self.back(i, 1), self.w(end));
            let cmp = (COMPARE.contains(&before) || COMPARE.contains(&after)) && !self.hdr[i];
            let min = before == "(" && self.back(i, 2) == "min";
            if l >= 2 && ch[l - 1].1 == "length" && (cmp || min || after == "=") {
                bound.insert(inp.name_of(&ch, l - 1));
            }
            if after == "=" {
                bound.insert(inp.name_of(&ch, l));
            }
            if !in_main {
                continue;
            }
            // `input.f(...)` calls a method, not a field of the JSON input.
            let method = l == 2 && after == "(";
            let used = inp
                .field(&ch, 1)
                .or_else(|| inp.field(&ch, 2).filter(|_| l >= 2 && !method));
            if let Some(field) = used {
                first_use.entry(field).or_insert(i);
            }
            let looping = l >= 2 && LOOP_METHODS.contains(&ch[l - 1].1.as_str()) && after == "(";
            if let Some(field) = inp.field(&ch, l - 1).filter(|_| looping) {
                looped(field, ch[l - 1].0, &bound);
            }
        }
        for (field, i) in first_use
            .into_iter()
            .filter(|(k, _)| !inp.checked.contains(k))
        {
            f.push((
                i,
                R::UncheckedInput,
                format!("input field {field} is used with no check"),
            ));
        }
        self.extend(f);
    }
}
