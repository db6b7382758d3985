//! The list query language, as far as Uhrwerk supports it so far: comparisons `=` and `!=`
//! (also `<>`) on WorkflowId, RunId, WorkflowType, TaskQueue and ExecutionStatus, combined with
//! AND, OR, NOT and parentheses, optionally followed by ORDER BY (results are always newest
//! first). Errors name the position, as `invalid query: ...`.

use uhrwerk_proto::temporal::api::enums::v1 as enums_pb;
use uhrwerk_store::{Column, CompareOp, RunFilter, Value};

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Op(&'static str),
    LParen,
    RParen,
}

fn err(message: String) -> Error {
    Error::InvalidArgument(format!("invalid query: {message}"))
}

fn tokenize(query: &str) -> Result<Vec<(usize, Token)>> {
    let chars: Vec<(usize, char)> = query.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((pos, Token::LParen));
                i += 1;
            }
            ')' => {
                out.push((pos, Token::RParen));
                i += 1;
            }
            ',' => {
                out.push((pos, Token::Ident(",".into())));
                i += 1;
            }
            '=' => {
                out.push((pos, Token::Op("=")));
                i += 1;
            }
            '!' | '<' if chars.get(i + 1).is_some_and(|(_, n)| *n == '=' || (c == '<' && *n == '>')) => {
                out.push((pos, Token::Op("!=")));
                i += 2;
            }
            '\'' | '"' | '`' => {
                let quote = c;
                let mut value = String::new();
                i += 1;
                loop {
                    let Some(&(_, ch)) = chars.get(i) else {
                        return Err(err(format!("unterminated quote starting at position {}", pos + 1)));
                    };
                    i += 1;
                    if ch == quote {
                        break;
                    }
                    value.push(ch);
                }
                out.push((pos, if quote == '`' { Token::Ident(value) } else { Token::Str(value) }));
            }
            c if c.is_alphanumeric() || c == '_' || c == '.' => {
                let start = i;
                while i < chars.len() && (chars[i].1.is_alphanumeric() || chars[i].1 == '_' || chars[i].1 == '.') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().map(|(_, c)| c).collect();
                out.push((pos, Token::Ident(word)));
            }
            other => return Err(err(format!("unexpected character {other:?} at position {}", pos + 1))),
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    at: usize,
    len: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(_, t)| t)
    }

    fn position(&self) -> usize {
        self.tokens.get(self.at).map_or(self.len, |(p, _)| *p) + 1
    }

    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Ident(w)) if w.eq_ignore_ascii_case(word)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn or_expr(&mut self) -> Result<RunFilter> {
        let mut left = self.and_expr()?;
        while self.keyword("or") {
            left = RunFilter::Or(Box::new(left), Box::new(self.and_expr()?));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<RunFilter> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            left = RunFilter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<RunFilter> {
        if self.keyword("not") {
            return Ok(RunFilter::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Token::LParen) {
            self.at += 1;
            let inner = self.or_expr()?;
            if self.peek() != Some(&Token::RParen) {
                return Err(err(format!("expected ')' at position {}", self.position())));
            }
            self.at += 1;
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<RunFilter> {
        let position = self.position();
        let Some(Token::Ident(name)) = self.peek().cloned() else {
            return Err(err(format!("expected a search attribute at position {position}")));
        };
        self.at += 1;
        let column = match name.as_str() {
            "WorkflowId" => Column::WorkflowId,
            "RunId" => Column::RunId,
            "WorkflowType" => Column::WorkflowType,
            "TaskQueue" => Column::TaskQueue,
            "ExecutionStatus" => Column::ExecutionStatus,
            other => return Err(err(format!("invalid search attribute: {other}"))),
        };
        let op = match self.peek() {
            Some(Token::Op("=")) => CompareOp::Eq,
            Some(Token::Op("!=")) => CompareOp::Ne,
            _ => return Err(err(format!("operator at position {} is not supported; use = or !=", self.position()))),
        };
        self.at += 1;
        let value_position = self.position();
        let Some(Token::Str(value)) = self.peek().cloned() else {
            return Err(err(format!("expected a quoted value at position {value_position}")));
        };
        self.at += 1;
        let value = if column == Column::ExecutionStatus { Value::Int(i64::from(parse_status(&value)?)) } else { Value::Text(value) };
        Ok(RunFilter::Compare(column, op, value))
    }
}

fn parse_status(value: &str) -> Result<i32> {
    use enums_pb::WorkflowExecutionStatus as S;
    let status = match value {
        "Running" => S::Running,
        "Completed" => S::Completed,
        "Failed" => S::Failed,
        "Canceled" => S::Canceled,
        "Terminated" => S::Terminated,
        "ContinuedAsNew" => S::ContinuedAsNew,
        "TimedOut" => S::TimedOut,
        other => return Err(err(format!("invalid ExecutionStatus value {other:?}"))),
    };
    Ok(status as i32)
}

/// Parses a list or count query into a store filter.
pub fn parse(query: &str) -> Result<RunFilter> {
    let tokens = tokenize(query)?;
    let mut parser = Parser { tokens, at: 0, len: query.len() };
    let order_by_at = |p: &Parser| matches!(p.peek(), Some(Token::Ident(w)) if w.eq_ignore_ascii_case("order"));
    let filter = if parser.peek().is_none() || order_by_at(&parser) { RunFilter::All } else { parser.or_expr()? };
    if parser.keyword("order") {
        if !parser.keyword("by") {
            return Err(err(format!("expected BY at position {}", parser.position())));
        }
        // Results are always newest first; the ORDER BY clause is checked and accepted.
        while let Some(Token::Ident(_)) = parser.peek() {
            parser.at += 1;
            if parser.keyword(",") {
                continue;
            }
        }
    }
    if parser.peek().is_some() {
        return Err(err(format!("unexpected input at position {}", parser.position())));
    }
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(column: Column, value: &str) -> RunFilter {
        RunFilter::Compare(column, CompareOp::Eq, Value::Text(value.into()))
    }

    #[test]
    fn parses_supported_queries() {
        assert_eq!(parse("").expect("empty"), RunFilter::All);
        assert_eq!(parse("  ORDER BY StartTime DESC").expect("order only"), RunFilter::All);
        let f = parse("WorkflowType = 'Order' and ExecutionStatus=\"Running\" ORDER BY StartTime DESC").expect("valid");
        let running = RunFilter::Compare(Column::ExecutionStatus, CompareOp::Eq, Value::Int(1));
        assert_eq!(f, RunFilter::And(Box::new(eq(Column::WorkflowType, "Order")), Box::new(running)));
        assert_eq!(parse("WorkflowId = 'a and b'").expect("quoted and"), eq(Column::WorkflowId, "a and b"));
        let f = parse("(WorkflowId = 'a' OR `WorkflowId` = 'b') AND NOT TaskQueue != 'q'").expect("nested");
        assert!(matches!(f, RunFilter::And(_, _)));
    }

    #[test]
    fn rejects_bad_queries_with_positions() {
        for bad in ["WorkflowId > 'x'", "Nope = 'x'", "WorkflowId = x", "ExecutionStatus = 'Sleeping'", "=", "(WorkflowId = 'a'", "WorkflowId = 'a' junk", "'", "WorkflowId = 'a' ORDER"] {
            match parse(bad) {
                Err(Error::InvalidArgument(m)) => assert!(m.starts_with("invalid query: "), "{bad}: {m}"),
                other => panic!("{bad}: expected an error, got {other:?}"),
            }
        }
        assert_eq!(parse("Foo = 'x'"), Err(err("invalid search attribute: Foo".into())));
    }
}
