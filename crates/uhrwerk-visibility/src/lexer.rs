//! The tokenizer of the list query language: query text to tokens carrying 1-based character positions.

use crate::query::{CmpOp, QueryError};

/// Reserved words; matched case-insensitively and never usable as bare attribute names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kw {
    And,
    Or,
    Not,
    In,
    Between,
    StartsWith,
    Is,
    Null,
    Order,
    By,
    Asc,
    Desc,
    Group,
    Like,
    True,
    False,
    Limit,
}

const KEYWORDS: &[(&str, Kw)] = &[
    ("AND", Kw::And),
    ("OR", Kw::Or),
    ("NOT", Kw::Not),
    ("IN", Kw::In),
    ("BETWEEN", Kw::Between),
    ("STARTS_WITH", Kw::StartsWith),
    ("IS", Kw::Is),
    ("NULL", Kw::Null),
    ("ORDER", Kw::Order),
    ("BY", Kw::By),
    ("ASC", Kw::Asc),
    ("DESC", Kw::Desc),
    ("GROUP", Kw::Group),
    ("LIKE", Kw::Like),
    ("TRUE", Kw::True),
    ("FALSE", Kw::False),
    ("LIMIT", Kw::Limit),
];

impl Kw {
    pub(crate) fn text(self) -> &'static str {
        KEYWORDS.iter().find(|(_, k)| *k == self).map_or("?", |(t, _)| *t)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A bare identifier that is not a keyword.
    Ident(String),
    /// A backquoted identifier, unescaped.
    Quoted(String),
    Kw(Kw),
    /// A string literal, unescaped.
    Str(String),
    /// A number literal as written (digits, optional fraction and exponent; no sign).
    Num(String),
    Op(CmpOp),
    LParen,
    RParen,
    Comma,
    Minus,
    Plus,
    Eof,
}

impl Tok {
    /// How the token is named in "expected X, found Y" messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("identifier '{s}'"),
            Tok::Quoted(s) => format!("identifier `{s}`"),
            Tok::Kw(k) => format!("keyword {}", k.text()),
            Tok::Str(s) => format!("string '{}'", shorten(s)),
            Tok::Num(s) => format!("number {}", shorten(s)),
            Tok::Op(op) => format!("'{}'", op.symbol()),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Comma => "','".into(),
            Tok::Minus => "'-'".into(),
            Tok::Plus => "'+'".into(),
            Tok::Eof => "end of input".into(),
        }
    }
}

/// Keeps error messages short when a literal is huge.
fn shorten(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push_str("...");
        t
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    /// 1-based character offset of the token's first character.
    pub(crate) pos: usize,
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Splits `input` into tokens; the last token is always [`Tok::Eof`] at position `chars + 1`.
pub(crate) fn lex(input: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<char> = input.chars().collect();
    let at = |i: usize| chars.get(i).copied();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(c) = at(i) {
        let pos = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let simple = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            ',' => Some(Tok::Comma),
            '-' => Some(Tok::Minus),
            '+' => Some(Tok::Plus),
            '=' => Some(Tok::Op(CmpOp::Eq)),
            _ => None,
        };
        if let Some(tok) = simple {
            out.push(Token { tok, pos });
            i += 1;
            continue;
        }
        match c {
            '!' => {
                if at(i + 1) == Some('=') {
                    out.push(Token { tok: Tok::Op(CmpOp::Ne), pos });
                    i += 2;
                } else {
                    return Err(QueryError::syntax(pos, "unexpected character '!'"));
                }
            }
            '<' => {
                let (op, len) = match at(i + 1) {
                    Some('=') => (CmpOp::Le, 2),
                    Some('>') => (CmpOp::Ne, 2),
                    _ => (CmpOp::Lt, 1),
                };
                out.push(Token { tok: Tok::Op(op), pos });
                i += len;
            }
            '>' => {
                let (op, len) = match at(i + 1) {
                    Some('=') => (CmpOp::Ge, 2),
                    _ => (CmpOp::Gt, 1),
                };
                out.push(Token { tok: Tok::Op(op), pos });
                i += len;
            }
            '\'' | '"' => {
                let (s, next) = lex_string(&chars, i, c)?;
                out.push(Token { tok: Tok::Str(s), pos });
                i = next;
            }
            '`' => {
                let (s, next) = lex_backquoted(&chars, i)?;
                out.push(Token { tok: Tok::Quoted(s), pos });
                i = next;
            }
            c if c.is_ascii_digit() || (c == '.' && at(i + 1).is_some_and(|d| d.is_ascii_digit())) => {
                let start = i;
                while at(i).is_some_and(|d| d.is_ascii_digit()) {
                    i += 1;
                }
                if at(i) == Some('.') {
                    i += 1;
                    while at(i).is_some_and(|d| d.is_ascii_digit()) {
                        i += 1;
                    }
                }
                if matches!(at(i), Some('e' | 'E')) {
                    let sign = usize::from(matches!(at(i + 1), Some('+' | '-')));
                    if at(i + 1 + sign).is_some_and(|d| d.is_ascii_digit()) {
                        i += 1 + sign;
                        while at(i).is_some_and(|d| d.is_ascii_digit()) {
                            i += 1;
                        }
                    }
                }
                if let Some(next) = at(i).filter(|&n| is_ident_char(n) || n == '.') {
                    return Err(QueryError::syntax(i + 1, format!("unexpected character '{next}' after number")));
                }
                let text: String = chars.get(start..i).unwrap_or_default().iter().collect();
                out.push(Token { tok: Tok::Num(text), pos });
            }
            c if is_ident_start(c) => {
                let start = i;
                while at(i).is_some_and(is_ident_char) {
                    i += 1;
                }
                let word: String = chars.get(start..i).unwrap_or_default().iter().collect();
                let tok = match KEYWORDS.iter().find(|(k, _)| k.eq_ignore_ascii_case(&word)) {
                    Some((_, kw)) => Tok::Kw(*kw),
                    None => Tok::Ident(word),
                };
                out.push(Token { tok, pos });
            }
            other => {
                return Err(QueryError::syntax(pos, format!("unexpected character '{}'", other.escape_debug())));
            }
        }
    }
    out.push(Token { tok: Tok::Eof, pos: chars.len() + 1 });
    Ok(out)
}

/// Reads a string literal opened by `quote` at `start`; returns the unescaped text and the index after it.
/// A doubled quote stands for itself; backslash escapes follow MySQL (`\n`, `\t`, `\r`, `\0`, `\b`,
/// `\Z`; any other escaped character stands for itself).
fn lex_string(chars: &[char], start: usize, quote: char) -> Result<(String, usize), QueryError> {
    let mut s = String::new();
    let mut i = start + 1;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(QueryError::syntax(start + 1, "unterminated string literal"));
        };
        if c == quote {
            if chars.get(i + 1) == Some(&quote) {
                s.push(quote);
                i += 2;
                continue;
            }
            return Ok((s, i + 1));
        }
        if c == '\\' {
            let Some(&e) = chars.get(i + 1) else {
                return Err(QueryError::syntax(start + 1, "unterminated string literal"));
            };
            s.push(match e {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                '0' => '\0',
                'b' => '\u{8}',
                'Z' => '\u{1a}',
                other => other,
            });
            i += 2;
            continue;
        }
        s.push(c);
        i += 1;
    }
}

/// Reads a backquoted identifier at `start`; a doubled backquote stands for one backquote.
fn lex_backquoted(chars: &[char], start: usize) -> Result<(String, usize), QueryError> {
    let mut s = String::new();
    let mut i = start + 1;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(QueryError::syntax(start + 1, "unterminated quoted identifier"));
        };
        if c == '`' {
            if chars.get(i + 1) == Some(&'`') {
                s.push('`');
                i += 2;
                continue;
            }
            if s.is_empty() {
                return Err(QueryError::syntax(start + 1, "empty quoted identifier"));
            }
            return Ok((s, i + 1));
        }
        s.push(c);
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).expect("lexes").into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn lexes_operators_and_literals() {
        assert_eq!(
            toks("a!=1<>2<=3>=4<5>6=7"),
            vec![
                Tok::Ident("a".into()),
                Tok::Op(CmpOp::Ne),
                Tok::Num("1".into()),
                Tok::Op(CmpOp::Ne),
                Tok::Num("2".into()),
                Tok::Op(CmpOp::Le),
                Tok::Num("3".into()),
                Tok::Op(CmpOp::Ge),
                Tok::Num("4".into()),
                Tok::Op(CmpOp::Lt),
                Tok::Num("5".into()),
                Tok::Op(CmpOp::Gt),
                Tok::Num("6".into()),
                Tok::Op(CmpOp::Eq),
                Tok::Num("7".into()),
                Tok::Eof,
            ]
        );
        assert_eq!(
            toks("'it''s' \"say \"\"hi\"\"\" 'a\\'b\\n' 1.5e3 .5 `a.b-c` `x``y` and Starts_With"),
            vec![
                Tok::Str("it's".into()),
                Tok::Str("say \"hi\"".into()),
                Tok::Str("a'b\n".into()),
                Tok::Num("1.5e3".into()),
                Tok::Num(".5".into()),
                Tok::Quoted("a.b-c".into()),
                Tok::Quoted("x`y".into()),
                Tok::Kw(Kw::And),
                Tok::Kw(Kw::StartsWith),
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn positions_are_one_based_chars() {
        let t = lex("ä = 'ö'").expect("lexes");
        assert_eq!(t.iter().map(|t| t.pos).collect::<Vec<_>>(), vec![1, 3, 5, 8]);
    }

    #[test]
    fn lex_errors() {
        let e = lex("a = 'abc").expect_err("unterminated");
        assert_eq!(e.position, Some(5));
        assert_eq!(e.message, "malformed SQL query: syntax error at position 5: unterminated string literal");
        assert_eq!(lex("a = 'x\\").expect_err("x").position, Some(5));
        assert_eq!(lex("`abc").expect_err("x").position, Some(1));
        assert_eq!(lex("``").expect_err("x").position, Some(1));
        assert_eq!(lex("a ! b").expect_err("x").position, Some(3));
        assert_eq!(lex("a = 10s").expect_err("x").position, Some(7));
        assert_eq!(lex("a ; b").expect_err("x").position, Some(3));
    }
}
