//! A small, forgiving JavaScript tokenizer (nothing in a comment, string,
//! template or regex is taken for code), and the checks on literal text:
//! credentials in strings and template text. It never fails; malformed
//! input just ends a token early.

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// An identifier, keyword or `#private` name, escapes decoded.
    Ident,
    /// A numeric literal.
    Num,
    /// A string literal or a template with no substitution, decoded.
    Str,
    /// A piece of template text around `${...}` substitutions.
    Template,
    /// A regular expression literal.
    Regex,
    /// A punctuator, or any other character.
    Punct,
}

/// One token: its kind, its text (decoded for strings) and where it starts.
#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) kind: Kind,
    pub(super) text: String,
    /// 1-based line and column, the column in characters.
    pub(super) line: u32,
    pub(super) col: u32,
}

/// Punctuators of more than one character, longest first.
const PUNCTS: &[&str] = &[
    ">>>=", "...", "===", "!==", "**=", "<<=", ">>=", ">>>", "&&=", "||=", "??=", "=>", "==", "!=",
    "<=", ">=", "&&", "||", "??", "?.", "++", "--", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=",
    "**", "<<", ">>",
];

/// Words after which a `/` starts a regex rather than a division.
const REGEX_AFTER: &[&str] = &[
    "return",
    "typeof",
    "instanceof",
    "in",
    "of",
    "new",
    "delete",
    "void",
    "throw",
    "case",
    "do",
    "else",
    "yield",
    "await",
];

struct Lexer {
    c: Vec<char>,
    pos: usize,
    line_starts: Vec<usize>,
    out: Vec<Token>,
    /// Whether a `/` here would start a regex.
    regex_ok: bool,
    /// Open braces, `true` for a template's `${`.
    braces: Vec<bool>,
}

/// Tokenizes `source`, dropping comments and whitespace.
pub(super) fn tokenize(source: &str) -> Vec<Token> {
    let c: Vec<char> = source.chars().collect();
    let mut line_starts = vec![0];
    for (i, &ch) in c.iter().enumerate() {
        if ch == '\n' || (ch == '\r' && c.get(i + 1) != Some(&'\n')) {
            line_starts.push(i + 1);
        }
    }
    let (out, braces) = (Vec::new(), Vec::new());
    let mut lx = Lexer {
        c,
        pos: 0,
        line_starts,
        out,
        regex_ok: true,
        braces,
    };
    lx.run();
    lx.out
}

fn id_start(c: char) -> bool {
    c == '$' || c == '_' || c.is_alphabetic()
}

fn id_part(c: char) -> bool {
    id_start(c) || c.is_alphanumeric() || c == '\u{200c}' || c == '\u{200d}'
}

impl Lexer {
    fn at(&self, i: usize) -> Option<char> {
        self.c.get(i).copied()
    }

    fn here(&self, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(k, c)| self.at(self.pos + k) == Some(c))
    }

    fn text(&self, start: usize) -> String {
        self.c[start..self.pos].iter().collect()
    }

    fn push(&mut self, kind: Kind, text: String, start: usize) {
        let line = self.line_starts.partition_point(|&s| s <= start).max(1);
        let col = start - self.line_starts[line - 1] + 1;
        self.regex_ok = match kind {
            Kind::Ident => REGEX_AFTER.contains(&text.as_str()),
            Kind::Punct => !matches!(text.as_str(), ")" | "]" | "++" | "--"),
            _ => false,
        };
        let (line, col) = (u32::try_from(line), u32::try_from(col));
        let (line, col) = (line.unwrap_or(u32::MAX), col.unwrap_or(u32::MAX));
        self.out.push(Token {
            kind,
            text,
            line,
            col,
        });
    }

    fn run(&mut self) {
        if self.here("#!") {
            self.skip_line();
        }
        while let Some(c) = self.at(self.pos) {
            let start = self.pos;
            let digit_at = |k: usize| self.at(start + k).is_some_and(|d| d.is_ascii_digit());
            if c.is_whitespace() || c == '\u{feff}' {
                self.pos += 1;
            } else if self.here("//") {
                self.skip_line();
            } else if self.here("/*") {
                self.pos += 2;
                while self.at(self.pos).is_some() && !self.here("*/") {
                    self.pos += 1;
                }
                self.pos = (self.pos + 2).min(self.c.len());
            } else if c == '\'' || c == '"' {
                let value = self.string(c);
                self.push(Kind::Str, value, start);
            } else if c == '`' || (c == '}' && self.braces.last() == Some(&true)) {
                if c == '}' {
                    self.braces.pop();
                }
                self.pos += 1;
                self.template(start);
            } else if c.is_ascii_digit() || (c == '.' && digit_at(1)) {
                self.number(start);
            } else if id_start(c) || c == '\\' || (c == '#' && self.at(start + 1).is_some()) {
                self.pos += usize::from(c == '#');
                let name = self.ident();
                match name.is_empty() {
                    true => self.punct(start),
                    false if c == '#' => self.push(Kind::Ident, format!("#{name}"), start),
                    false => self.push(Kind::Ident, name, start),
                }
            } else if c == '/' && self.regex_ok && self.regex() {
                let text = self.text(start);
                self.push(Kind::Regex, text, start);
            } else {
                match c {
                    '{' => self.braces.push(false),
                    '}' => {
                        self.braces.pop();
                    }
                    _ => {}
                }
                self.punct(start);
            }
        }
    }

    fn skip_line(&mut self) {
        while self.at(self.pos).is_some_and(|c| c != '\n' && c != '\r') {
            self.pos += 1;
        }
    }

    fn punct(&mut self, start: usize) {
        self.pos = start;
        let digit_after = self.at(start + 2).is_some_and(|d| d.is_ascii_digit());
        let long = PUNCTS
            .iter()
            .find(|p| self.here(p) && !(**p == "?." && digit_after));
        let text = long.map_or_else(|| self.c[start].to_string(), |p| (*p).to_string());
        self.pos += text.chars().count();
        self.push(Kind::Punct, text, start);
    }

    fn number(&mut self, start: usize) {
        let hex = matches!(self.c.get(start..start + 2), Some(['0', 'x' | 'X']));
        while let Some(c) = self.at(self.pos) {
            let e_before = matches!(self.at(self.pos.wrapping_sub(1)), Some('e' | 'E'));
            let sign = (c == '+' || c == '-') && e_before && !hex;
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || sign {
                self.pos += 1;
            } else {
                break;
            }
        }
        let text = self.text(start);
        self.push(Kind::Num, text, start);
    }

    /// An identifier with `\u` escapes decoded; empty if none is here.
    fn ident(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.at(self.pos) {
            if c == '\\' && self.at(self.pos + 1) == Some('u') {
                self.pos += 2;
                match self.unicode_escape() {
                    Some(d) => name.push(d),
                    None => break,
                }
            } else if id_part(c) {
                name.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        name
    }

    /// After `\u`: `XXXX` or `{X...}`.
    fn unicode_escape(&mut self) -> Option<char> {
        let braced = self.at(self.pos) == Some('{');
        let from = self.pos + usize::from(braced);
        let mut to = from;
        while to < from + if braced { 6 } else { 4 }
            && self.at(to).is_some_and(|c| c.is_ascii_hexdigit())
        {
            to += 1;
        }
        if (braced && self.at(to) != Some('}')) || (!braced && to != from + 4) {
            return None;
        }
        let code = u32::from_str_radix(&self.c[from..to].iter().collect::<String>(), 16).ok()?;
        self.pos = to + usize::from(braced);
        Some(char::from_u32(code).unwrap_or('\u{fffd}'))
    }

    /// One escape after a backslash, appended to `out`.
    fn escape(&mut self, out: &mut String) {
        let Some(c) = self.at(self.pos) else { return };
        self.pos += 1;
        let hex2 = self
            .c
            .get(self.pos..self.pos + 2)
            .map(|h| h.iter().collect::<String>());
        let decoded = match c {
            'n' => Some('\n'),
            't' => Some('\t'),
            'r' => Some('\r'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'v' => Some('\u{b}'),
            '0' if !self.at(self.pos).is_some_and(|d| d.is_ascii_digit()) => Some('\0'),
            'x' => match hex2.and_then(|h| u32::from_str_radix(&h, 16).ok()) {
                Some(code) => {
                    self.pos += 2;
                    char::from_u32(code)
                }
                None => Some('x'),
            },
            'u' => self.unicode_escape().or(Some('u')),
            '\r' => {
                self.pos += usize::from(self.at(self.pos) == Some('\n'));
                None
            }
            '\n' | '\u{2028}' | '\u{2029}' => None,
            other => Some(other),
        };
        out.extend(decoded);
    }

    /// A quoted string; ends at its quote or, unterminated, at the line end.
    fn string(&mut self, quote: char) -> String {
        self.pos += 1;
        let mut value = String::new();
        while let Some(c) = self.at(self.pos) {
            self.pos += 1;
            match c {
                _ if c == quote => break,
                '\n' | '\r' => {
                    self.pos -= 1;
                    break;
                }
                '\\' => self.escape(&mut value),
                _ => value.push(c),
            }
        }
        value
    }

    /// Template text up to its backtick or `${`; `start` is where this
    /// piece began (its backtick, or the `}` that resumed it).
    fn template(&mut self, start: usize) {
        let whole = self.c[start] == '`';
        let mut value = String::new();
        while let Some(c) = self.at(self.pos) {
            self.pos += 1;
            if c == '`' {
                let kind = if whole { Kind::Str } else { Kind::Template };
                return self.push(kind, value, start);
            } else if c == '$' && self.at(self.pos) == Some('{') {
                self.pos += 1;
                self.braces.push(true);
                self.push(Kind::Template, value, start);
                self.regex_ok = true;
                return;
            } else if c == '\\' {
                self.escape(&mut value);
            } else {
                value.push(c);
            }
        }
        self.push(Kind::Template, value, start);
    }

    /// A regex literal at `pos`; `false`, consuming nothing, if none ends
    /// on this line.
    fn regex(&mut self) -> bool {
        let (mut i, mut class) = (self.pos + 1, false);
        loop {
            match self.at(i) {
                None | Some('\n' | '\r') => return false,
                Some('\\') if matches!(self.at(i + 1), None | Some('\n' | '\r')) => return false,
                Some('\\') => i += 1,
                Some('[') => class = true,
                Some(']') => class = false,
                Some('/') if !class => break,
                Some(_) => {}
            }
            i += 1;
        }
        i += 1;
        while self.at(i).is_some_and(id_part) {
            i += 1;
        }
        self.pos = i;
        true
    }
}

/// How many leading bytes of `b`, up to `cap`, satisfy `f`.
fn run(b: &[u8], cap: usize, f: impl Fn(u8) -> bool) -> usize {
    b.iter().take(cap).take_while(|&&c| f(c)).count()
}

fn word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

fn alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

/// What kind of credential `b` looks like, if any.
fn credential_kind(b: &[u8]) -> Option<&'static str> {
    let find = |hay: &[u8], pat: &[u8]| hay.windows(pat.len()).position(|w| w == pat);
    if let Some(k) = find(b, b"-----BEGIN ") {
        let rest = &b[k + 11..];
        let header = find(rest, b"-----").map(|e| &rest[..e.min(64)]);
        if header.is_some_and(|h| find(h, b"PRIVATE KEY").is_some()) {
            return Some("a private key");
        }
    }
    let upper_digit = |c: u8| c.is_ascii_uppercase() || c.is_ascii_digit();
    let token68 = |c: u8| word(c) || b"._~+/=".contains(&c);
    for i in (0..b.len()).filter(|&i| i == 0 || !word(b[i - 1])) {
        let r = &b[i..];
        let hit = |p: &[u8], n: usize, f: &dyn Fn(u8) -> bool| {
            r.strip_prefix(p).is_some_and(|t| run(t, n, f) >= n)
        };
        let aws = hit(b"AKIA", 16, &upper_digit) || hit(b"ASIA", 16, &upper_digit);
        let gh = [
            &b"ghp_"[..],
            b"gho_",
            b"ghs_",
            b"ghu_",
            b"ghr_",
            b"github_pat_",
        ];
        let slack = r.starts_with(b"xox") && r.get(3).is_some_and(|c| b"abprs".contains(c));
        let jwt = || {
            let s1 = run(r, usize::MAX, word);
            let s2 = r.get(s1 + 1..).map_or(0, |t| run(t, usize::MAX, word));
            let dots = r.get(s1) == Some(&b'.') && r.get(s1 + 1 + s2) == Some(&b'.');
            let s3 = r.get(s1 + s2 + 2..).map_or(0, |t| run(t, 2, word));
            r.starts_with(b"eyJ") && s1 >= 10 && s2 >= 2 && dots && s3 >= 2
        };
        let kind = if aws && !r.get(20).copied().is_some_and(alnum) {
            "an AWS access key"
        } else if gh.iter().any(|p| hit(p, 20, &|c| alnum(c) || c == b'_')) {
            "a GitHub token"
        } else if slack && r.get(4) == Some(&b'-') && run(&r[5..], 8, word) >= 8 {
            "a Slack token"
        } else if hit(b"sk_live_", 8, &alnum) || hit(b"rk_live_", 8, &alnum) {
            "a Stripe secret key"
        } else if hit(b"sk-", 20, &word) {
            "an OpenAI-style API key"
        } else if r
            .strip_prefix(b"AIza")
            .is_some_and(|t| run(t, 36, word) == 35)
        {
            "a Google API key"
        } else if jwt() {
            "a JSON Web Token"
        } else if hit(b"Bearer ", 20, &token68) || hit(b"bearer ", 20, &token68) {
            "a bearer token"
        } else {
            continue;
        };
        return Some(kind);
    }
    None
}

/// A long base64-like string with more than 4 bits of entropy a character.
fn high_entropy(b: &[u8]) -> bool {
    if b.len() < 32 || !b.iter().all(|&c| word(c) || b"+/=".contains(&c)) {
        return false;
    }
    let mut counts = [0u32; 256];
    b.iter().for_each(|&c| counts[usize::from(c)] += 1);
    let n = b.len() as f64;
    let p = counts.iter().filter(|&&k| k > 0).map(|&k| f64::from(k) / n);
    p.map(|p| -p * p.log2()).sum::<f64>() > 4.0
}

/// Strings and template text that look like credentials: (token, message).
/// Messages name the kind, never the text.
pub(super) fn credentials(t: &[Token]) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (i, tok) in t.iter().enumerate() {
        if !matches!(tok.kind, Kind::Str | Kind::Template) {
            continue;
        }
        let what = if tok.kind == Kind::Str {
            "a string literal"
        } else {
            "template text"
        };
        let op = t.get(i.wrapping_sub(1)).filter(|o| o.kind == Kind::Punct);
        let assigns = op.is_some_and(|o| o.text == "=" || o.text == ":");
        let name = t
            .get(i.wrapping_sub(2))
            .filter(|n| assigns && n.kind != Kind::Punct);
        let low = name
            .map(|n| n.text.to_ascii_lowercase())
            .unwrap_or_default();
        let words = [
            "key", "token", "secret", "password", "passwd", "apikey", "auth",
        ];
        if let Some(kind) = credential_kind(tok.text.as_bytes()) {
            found.push((i, format!("{what} looks like {kind}")));
        } else if words.iter().any(|w| low.contains(w)) && high_entropy(tok.text.as_bytes()) {
            let n = name.map_or("", |n| n.text.as_str());
            found.push((i, format!("{what} with high entropy is assigned to {n}")));
        }
    }
    found
}
