//! The syntax of the list query language: tokens to a filter tree without recursion, with depth limits and positioned syntax errors.

use crate::lexer::{Kw, Tok, Token};
use crate::query::{CmpOp, Expr, MAX_NESTING_DEPTH, MAX_TREE_DEPTH, QueryError};

/// A value as written in the query, before the attribute's type is known.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Str(String),
    /// Number text without sign, and whether a unary minus preceded it.
    Num {
        text: String,
        negative: bool,
    },
    Bool(bool),
    Null,
    /// An identifier where a value was expected (a forgotten quote, usually).
    Ident(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawVal {
    pub(crate) val: Val,
    pub(crate) pos: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PredKind {
    Cmp(CmpOp, RawVal),
    In(Vec<RawVal>, bool),
    Between(RawVal, RawVal, bool),
    StartsWith(RawVal, bool),
    Like(bool),
    IsNull(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawPred {
    pub(crate) name: String,
    pub(crate) pos: usize,
    pub(crate) kind: PredKind,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawName {
    pub(crate) name: String,
    pub(crate) pos: usize,
}

/// A typed subtree and its depth; `None` once a predicate failed to type (the error is kept aside).
type Node = Option<(Expr, usize)>;

/// One parenthesis level of the expression being read.
#[derive(Default)]
struct Frame {
    /// Finished operands of the OR chain.
    ors: Vec<Node>,
    /// Finished operands of the current AND chain.
    ands: Vec<Node>,
    /// NOTs read before the operand being parsed.
    pending_not: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawQuery {
    /// The filter, or the first error met while typing it (reported only if the syntax is fine).
    pub(crate) filter: Option<Result<Expr, QueryError>>,
    pub(crate) group_by: Vec<RawName>,
    pub(crate) order_by: Vec<(RawName, bool)>,
    /// Position of a LIMIT keyword, which Temporal rejects after parsing.
    pub(crate) limit: Option<usize>,
}

pub(crate) struct Parser {
    toks: Vec<Token>,
    i: usize,
}

impl Parser {
    pub(crate) fn new(toks: Vec<Token>) -> Self {
        Parser { toks, i: 0 }
    }

    fn peek(&self) -> (&Tok, usize) {
        match self.toks.get(self.i).or(self.toks.last()) {
            Some(t) => (&t.tok, t.pos),
            None => (&Tok::Eof, 1),
        }
    }

    fn bump(&mut self) {
        if self.i < self.toks.len() {
            self.i += 1;
        }
    }

    fn at_kw(&self, kw: Kw) -> bool {
        matches!(self.peek().0, Tok::Kw(k) if *k == kw)
    }

    fn eat_kw(&mut self, kw: Kw) -> bool {
        let found = self.at_kw(kw);
        if found {
            self.bump();
        }
        found
    }

    fn unexpected(&self, expected: &str) -> QueryError {
        let (tok, pos) = self.peek();
        QueryError::syntax(pos, format!("expected {expected}, found {}", tok.describe()))
    }

    fn expect_kw(&mut self, kw: Kw) -> Result<(), QueryError> {
        if self.eat_kw(kw) { Ok(()) } else { Err(self.unexpected(kw.text())) }
    }

    /// query := [expr] [GROUP BY names] [ORDER BY name [ASC|DESC], ...] [LIMIT ...] EOF
    pub(crate) fn parse_query(
        &mut self,
        type_pred: &mut dyn FnMut(RawPred) -> Result<Expr, QueryError>,
    ) -> Result<RawQuery, QueryError> {
        let mut q = RawQuery { filter: None, group_by: Vec::new(), order_by: Vec::new(), limit: None };
        let (tok, _) = self.peek();
        let clause_start = matches!(tok, Tok::Eof | Tok::Kw(Kw::Order | Kw::Group | Kw::Limit));
        if !clause_start {
            q.filter = Some(self.parse_filter(type_pred)?);
        }
        if self.eat_kw(Kw::Group) {
            self.expect_kw(Kw::By)?;
            loop {
                q.group_by.push(self.parse_name()?);
                if !self.eat_comma() {
                    break;
                }
            }
        }
        if self.eat_kw(Kw::Order) {
            self.expect_kw(Kw::By)?;
            loop {
                let name = self.parse_name()?;
                let descending = if self.eat_kw(Kw::Desc) {
                    true
                } else {
                    self.eat_kw(Kw::Asc);
                    false
                };
                q.order_by.push((name, descending));
                if !self.eat_comma() {
                    break;
                }
            }
        }
        if self.at_kw(Kw::Limit) {
            let (_, pos) = self.peek();
            q.limit = Some(pos);
            self.bump();
            match self.peek().0 {
                Tok::Num(_) => self.bump(),
                _ => return Err(self.unexpected("a number")),
            }
            if self.eat_comma() {
                match self.peek().0 {
                    Tok::Num(_) => self.bump(),
                    _ => return Err(self.unexpected("a number")),
                }
            }
        }
        let expected = if q.limit.is_some() || !q.order_by.is_empty() {
            "',' or end of input"
        } else if !q.group_by.is_empty() {
            "',', ORDER BY or end of input"
        } else if q.filter.is_some() {
            "AND, OR, GROUP BY, ORDER BY or end of input"
        } else {
            "a search attribute name"
        };
        match self.peek().0 {
            Tok::Eof => Ok(q),
            _ => Err(self.unexpected(expected)),
        }
    }

    fn eat_comma(&mut self) -> bool {
        let found = matches!(self.peek().0, Tok::Comma);
        if found {
            self.bump();
        }
        found
    }

    fn check_depth(&self, depth: usize) -> Result<(), QueryError> {
        if depth >= MAX_NESTING_DEPTH {
            let (_, pos) = self.peek();
            return Err(QueryError::new(
                Some(pos),
                format!(
                    "malformed SQL query: nesting depth exceeds the limit of {MAX_NESTING_DEPTH} at position {pos}"
                ),
            ));
        }
        Ok(())
    }

    /// expr := or;  or := and (OR and)*;  and := not (AND not)*;  not := NOT not | primary;
    /// primary := '(' or ')' | predicate.
    ///
    /// Read with an explicit stack of parenthesis levels, so hostile nesting costs no call stack.
    /// Each predicate is typed by `type_pred` as soon as it is read; the first typing error is
    /// returned in place of the tree only when the whole query is syntactically valid.
    fn parse_filter(
        &mut self,
        type_pred: &mut dyn FnMut(RawPred) -> Result<Expr, QueryError>,
    ) -> Result<Result<Expr, QueryError>, QueryError> {
        let mut first_error: Option<QueryError> = None;
        let mut frames: Vec<Frame> = vec![Frame::default()];
        // Open parentheses plus pending NOTs.
        let mut depth = 0usize;
        let node: Node = 'operand: loop {
            // Leading NOTs and opening parentheses of the next operand.
            loop {
                let nested = match self.peek().0 {
                    Tok::Kw(Kw::Not) => false,
                    Tok::LParen => true,
                    _ => break,
                };
                self.check_depth(depth)?;
                depth += 1;
                self.bump();
                if nested {
                    frames.push(Frame::default());
                } else if let Some(top) = frames.last_mut() {
                    top.pending_not += 1;
                }
            }
            let pred = self.parse_predicate()?;
            let mut node: Node = match type_pred(pred) {
                Ok(e) => Some((e, 1)),
                Err(e) => {
                    first_error.get_or_insert(e);
                    None
                }
            };
            // Fold the operand into the enclosing chains, closing parentheses as they come.
            loop {
                let Some(top) = frames.last_mut() else {
                    return Err(self.unexpected("an expression"));
                };
                for _ in 0..top.pending_not {
                    node = node.map(|(e, d)| (Expr::Not(Box::new(e)), d + 1));
                }
                depth = depth.saturating_sub(top.pending_not);
                top.pending_not = 0;
                top.ands.push(node);
                if self.eat_kw(Kw::And) {
                    continue 'operand;
                }
                let ands = std::mem::take(&mut top.ands);
                top.ors.push(balance(ands, Expr::And));
                if self.eat_kw(Kw::Or) {
                    continue 'operand;
                }
                let ors = std::mem::take(&mut top.ors);
                node = balance(ors, Expr::Or);
                if frames.len() == 1 {
                    break 'operand node;
                }
                if !matches!(self.peek().0, Tok::RParen) {
                    return Err(self.unexpected("')'"));
                }
                self.bump();
                frames.pop();
                depth = depth.saturating_sub(1);
                // `node` is now an operand of the enclosing level.
            }
        };
        if let Some(e) = first_error {
            return Ok(Err(e));
        }
        match node {
            Some((_, d)) if d > MAX_TREE_DEPTH => Ok(Err(QueryError::new(
                None,
                format!("malformed SQL query: expression tree depth exceeds the limit of {MAX_TREE_DEPTH}"),
            ))),
            Some((e, _)) => Ok(Ok(e)),
            None => Ok(Err(QueryError::new(None, "invalid expression: empty expression"))),
        }
    }

    fn parse_name(&mut self) -> Result<RawName, QueryError> {
        let (tok, pos) = self.peek();
        let name = match tok {
            Tok::Ident(s) | Tok::Quoted(s) => s.clone(),
            _ => return Err(self.unexpected("a search attribute name")),
        };
        self.bump();
        Ok(RawName { name, pos })
    }

    /// predicate := name (cmp value | [NOT] IN '(' values ')' | [NOT] BETWEEN value AND value
    ///            | [NOT] STARTS_WITH value | [NOT] LIKE value | IS [NOT] NULL)
    fn parse_predicate(&mut self) -> Result<RawPred, QueryError> {
        let RawName { name, pos } = self.parse_name()?;
        let (tok, _) = self.peek();
        let kind = match tok {
            Tok::Op(op) => {
                let op = *op;
                self.bump();
                PredKind::Cmp(op, self.parse_value()?)
            }
            Tok::Kw(Kw::Is) => {
                self.bump();
                let negated = self.eat_kw(Kw::Not);
                self.expect_kw(Kw::Null)?;
                PredKind::IsNull(negated)
            }
            Tok::Kw(Kw::Not) => {
                self.bump();
                self.parse_negatable(true)?.ok_or_else(|| self.unexpected("IN, BETWEEN, STARTS_WITH or LIKE"))?
            }
            _ => self
                .parse_negatable(false)?
                .ok_or_else(|| self.unexpected(&format!("an operator after search attribute '{name}'")))?,
        };
        Ok(RawPred { name, pos, kind })
    }

    /// The operators that may follow NOT; `None` when the next token is none of them.
    fn parse_negatable(&mut self, negated: bool) -> Result<Option<PredKind>, QueryError> {
        let kind = if self.eat_kw(Kw::In) {
            if !matches!(self.peek().0, Tok::LParen) {
                return Err(self.unexpected("'('"));
            }
            self.bump();
            let mut values = vec![self.parse_value()?];
            while self.eat_comma() {
                values.push(self.parse_value()?);
            }
            if !matches!(self.peek().0, Tok::RParen) {
                return Err(self.unexpected("',' or ')'"));
            }
            self.bump();
            PredKind::In(values, negated)
        } else if self.eat_kw(Kw::Between) {
            let low = self.parse_value()?;
            self.expect_kw(Kw::And)?;
            let high = self.parse_value()?;
            PredKind::Between(low, high, negated)
        } else if self.eat_kw(Kw::StartsWith) {
            PredKind::StartsWith(self.parse_value()?, negated)
        } else if self.eat_kw(Kw::Like) {
            self.parse_value()?;
            PredKind::Like(negated)
        } else {
            return Ok(None);
        };
        Ok(Some(kind))
    }

    /// value := string | ['-'|'+'] number | TRUE | FALSE | NULL | identifier
    fn parse_value(&mut self) -> Result<RawVal, QueryError> {
        let (tok, pos) = self.peek();
        let val = match tok {
            Tok::Str(s) => Val::Str(s.clone()),
            Tok::Num(n) => Val::Num { text: n.clone(), negative: false },
            Tok::Minus | Tok::Plus => {
                let negative = matches!(tok, Tok::Minus);
                self.bump();
                let text = match self.peek().0 {
                    Tok::Num(n) => n.clone(),
                    _ => return Err(self.unexpected("a number")),
                };
                Val::Num { text, negative }
            }
            Tok::Kw(Kw::True) => Val::Bool(true),
            Tok::Kw(Kw::False) => Val::Bool(false),
            Tok::Kw(Kw::Null) => Val::Null,
            Tok::Ident(s) | Tok::Quoted(s) => Val::Ident(s.clone()),
            _ => return Err(self.unexpected("a value")),
        };
        self.bump();
        Ok(RawVal { val, pos })
    }
}

/// Joins operands into a balanced tree (depth logarithmic in their number); `None` if any is `None`.
fn balance(mut items: Vec<Node>, join: fn(Box<Expr>, Box<Expr>) -> Expr) -> Node {
    match items.len() {
        0 => None,
        1 => items.pop().flatten(),
        n => {
            let right = items.split_off(n / 2);
            let (l, ld) = balance(items, join)?;
            let (r, rd) = balance(right, join)?;
            Some((join(Box::new(l), Box::new(r)), ld.max(rd) + 1))
        }
    }
}
