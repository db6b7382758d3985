//! SQL for list queries, shared by the SQL stores: translates a parsed visibility query into a
//! WHERE clause and ORDER BY over the `runs` table, with stored search attributes looked up in
//! `run_attrs` by index. The stores' schemas have the same tables and columns; the [`Dialect`]
//! covers where their SQL differs (placeholders, booleans, the order of NULLs).

use crate::{Attr, CmpOp, Expr, Literal, OrderBy, SystemColumn, ValueType};

/// Largest integer: the `close_order` of an open run.
pub const OPEN_ORDER: i64 = i64::MAX;

/// The SQL a store speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// `?N` placeholders, `0` for false, NULLs sort first ascending.
    Sqlite,
    /// `$N` placeholders, `FALSE`, NULLs placed as SQLite places them.
    Postgres,
}

/// A parameter's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Sql {
    Text(String),
    Integer(i64),
    Real(f64),
}

/// A WHERE clause with its parameters. Parameter 1 is always the namespace. Text attributes
/// are matched by the store's `uw_text_match(field, query)` function
/// ([`crate::text::text_matches`]).
pub struct Where {
    pub sql: String,
    pub params: Vec<Sql>,
    dialect: Dialect,
    /// `FALSE` in the dialect.
    none: &'static str,
}

impl Where {
    pub fn new(dialect: Dialect, namespace: &str) -> Self {
        let none = match dialect {
            Dialect::Sqlite => "0",
            Dialect::Postgres => "FALSE",
        };
        Self { sql: String::new(), params: vec![Sql::Text(namespace.to_string())], dialect, none }
    }

    fn bind(&mut self, value: Sql) -> String {
        self.params.push(value);
        match self.dialect {
            Dialect::Sqlite => format!("?{}", self.params.len()),
            Dialect::Postgres => format!("${}", self.params.len()),
        }
    }

    /// The namespace's placeholder.
    pub fn namespace(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "?1",
            Dialect::Postgres => "$1",
        }
    }

    /// Appends `AND (<filter>)` for a query filter.
    pub fn filter(&mut self, filter: Option<&Expr>) {
        if let Some(expr) = filter {
            let sql = self.expr(expr);
            self.sql.push_str(" AND ");
            self.sql.push_str(&sql);
        }
    }

    /// Appends `AND <sql>`; its placeholders were bound with `param`.
    pub fn push(&mut self, sql: &str) {
        self.sql.push_str(" AND ");
        self.sql.push_str(sql);
    }

    pub fn param(&mut self, value: Sql) -> String {
        self.bind(value)
    }

    /// Translates a filter. Stored attributes follow SQL's three-valued logic, as Temporal's SQL
    /// visibility does: a missing scalar value satisfies no comparison, negated or not. Text and
    /// KeywordList `!=` (and NOT IN) match runs without the attribute, as in Temporal.
    /// `positive` tells whether the expression sits under an even number of NOTs; only there
    /// can equality be answered by the index of values.
    fn expr(&mut self, expr: &Expr) -> String {
        self.expr_in(expr, true)
    }

    fn expr_in(&mut self, expr: &Expr, positive: bool) -> String {
        match expr {
            Expr::And(a, b) => format!("({} AND {})", self.expr_in(a, positive), self.expr_in(b, positive)),
            Expr::Or(a, b) => format!("({} OR {})", self.expr_in(a, positive), self.expr_in(b, positive)),
            Expr::Not(a) => format!("(NOT {})", self.expr_in(a, !positive)),
            Expr::Compare { attr, ty, op, value } => match attr {
                Attr::Column(column) => self.column_compare(*column, *op, value),
                Attr::Stored { name, .. } => self.stored_compare(name, *ty, *op, value, positive),
            },
            Expr::In { attr, ty, values, negated } => match attr {
                Attr::Column(column) => {
                    let parts: Vec<String> =
                        values.iter().map(|v| self.column_compare(*column, CmpOp::Eq, v)).collect();
                    let any =
                        if parts.is_empty() { self.none.to_string() } else { format!("({})", parts.join(" OR ")) };
                    if *negated { format!("(NOT {any})") } else { any }
                }
                Attr::Stored { name, .. } if is_multi(*ty) || (positive && !negated) => {
                    // Any value in the set: found through the index of values.
                    let name = self.bind(Sql::Text(name.clone()));
                    let (col, _) = stored_value(*ty, &Literal::Int(0));
                    let set: Vec<String> = values.iter().map(|v| self.bind(stored_value(*ty, v).1)).collect();
                    let any = if set.is_empty() {
                        self.none.to_string()
                    } else {
                        format!(
                            "runs.run_id IN (SELECT run_id FROM run_attrs WHERE namespace = {ns} AND name = {name} AND {col} IN ({}))",
                            set.join(", "),
                            ns = self.namespace()
                        )
                    };
                    if *negated { format!("(NOT {any})") } else { any }
                }
                Attr::Stored { name, .. } => {
                    let value = self.scalar(name, *ty);
                    let set: Vec<String> = values.iter().map(|v| self.bind(stored_value(*ty, v).1)).collect();
                    if set.is_empty() {
                        return if *negated { format!("({value} IS NOT NULL)") } else { self.none.to_string() };
                    }
                    let not = if *negated { "NOT " } else { "" };
                    format!("({value} {not}IN ({}))", set.join(", "))
                }
            },
            Expr::Between { attr, ty, low, high, negated } => {
                let not = if *negated { "NOT " } else { "" };
                match attr {
                    Attr::Column(column) => {
                        let lo = self.column_compare(*column, CmpOp::Ge, low);
                        let hi = self.column_compare(*column, CmpOp::Le, high);
                        format!("({not}({lo} AND {hi}))")
                    }
                    Attr::Stored { name, .. } => {
                        let value = self.scalar(name, *ty);
                        let (lo, hi) = (self.bind(stored_value(*ty, low).1), self.bind(stored_value(*ty, high).1));
                        format!("({value} {not}BETWEEN {lo} AND {hi})")
                    }
                }
            }
            Expr::StartsWith { attr, ty, prefix, negated } => {
                let lo = self.bind(Sql::Text(prefix.clone()));
                let hi = self.bind(Sql::Text(format!("{prefix}\u{10FFFF}")));
                let test = match attr {
                    Attr::Column(column) => {
                        let (col, _) = column_sql(*column);
                        format!("({col} >= {lo} AND {col} < {hi})")
                    }
                    Attr::Stored { name, .. } if is_multi(*ty) => {
                        let name = self.bind(Sql::Text(name.clone()));
                        format!(
                            "EXISTS (SELECT 1 FROM run_attrs a WHERE a.run_id = runs.run_id AND a.name = {name} AND a.sval >= {lo} AND a.sval < {hi})"
                        )
                    }
                    Attr::Stored { name, .. } => {
                        let value = self.scalar(name, *ty);
                        format!("({value} >= {lo} AND {value} < {hi})")
                    }
                };
                if *negated { format!("(NOT {test})") } else { test }
            }
            Expr::IsNull { attr, negated, .. } => {
                let present = match attr {
                    Attr::Column(column) => match column_sql(*column) {
                        (col, ColumnKind::Text) => format!("({col} IS NOT NULL AND {col} != '')"),
                        (col, _) => format!("({col} IS NOT NULL)"),
                    },
                    Attr::Stored { name, .. } => {
                        let name = self.bind(Sql::Text(name.clone()));
                        format!("EXISTS (SELECT 1 FROM run_attrs a WHERE a.run_id = runs.run_id AND a.name = {name})")
                    }
                };
                if *negated { present } else { format!("(NOT {present})") }
            }
        }
    }

    /// A stored single-valued attribute of the run as an SQL value (NULL when missing).
    fn scalar(&mut self, name: &str, ty: ValueType) -> String {
        let name = self.bind(Sql::Text(name.to_string()));
        let (col, _) = stored_value(ty, &Literal::Int(0));
        format!(
            "(SELECT a.{col} FROM run_attrs a WHERE a.run_id = runs.run_id AND a.name = {name} ORDER BY a.seq LIMIT 1)"
        )
    }

    fn column_compare(&mut self, column: SystemColumn, op: CmpOp, value: &Literal) -> String {
        let (col, kind) = column_sql(column);
        match (kind, value) {
            (ColumnKind::Millis, Literal::Time(ns)) => match millis_bound(op, *ns) {
                Some((op, ms)) => format!("{col} {} {}", op_sql(op), self.bind(Sql::Integer(ms))),
                None if op == CmpOp::Ne => format!("{col} IS NOT NULL"),
                None => self.none.to_string(),
            },
            _ => {
                let v = self.bind(literal_sql(value));
                format!("{col} {} {v}", op_sql(op))
            }
        }
    }

    fn stored_compare(&mut self, name: &str, ty: ValueType, op: CmpOp, value: &Literal, positive: bool) -> String {
        if is_multi(ty) {
            // Text and KeywordList: a match among the run's values; `!=` is its negation and
            // includes runs without the attribute.
            let name = self.bind(Sql::Text(name.to_string()));
            let v = self.bind(stored_value(ty, value).1);
            let test = if ty == ValueType::Text { format!("uw_text_match(sval, {v})") } else { format!("sval = {v}") };
            let ns = self.namespace();
            let found = format!(
                "runs.run_id IN (SELECT run_id FROM run_attrs WHERE namespace = {ns} AND name = {name} AND {test})"
            );
            return if op == CmpOp::Ne { format!("(NOT {found})") } else { found };
        }
        if op == CmpOp::Eq && positive {
            // Equality is selective: the index of values finds the runs.
            let name = self.bind(Sql::Text(name.to_string()));
            let (col, v) = stored_value(ty, value);
            let v = self.bind(v);
            let ns = self.namespace();
            return format!(
                "runs.run_id IN (SELECT run_id FROM run_attrs WHERE namespace = {ns} AND name = {name} AND {col} = {v})"
            );
        }
        let scalar = self.scalar(name, ty);
        let v = self.bind(stored_value(ty, value).1);
        format!("({scalar} {} {v})", op_sql(op))
    }
}

/// Attributes matched by membership (several values, or text tokens) rather than by value.
fn is_multi(ty: ValueType) -> bool {
    matches!(ty, ValueType::Text | ValueType::KeywordList)
}

#[derive(Clone, Copy, PartialEq)]
enum ColumnKind {
    Text,
    Int,
    Millis,
}

fn column_sql(column: SystemColumn) -> (&'static str, ColumnKind) {
    use ColumnKind::*;
    match column {
        SystemColumn::WorkflowId => ("runs.workflow_id", Text),
        SystemColumn::RunId => ("runs.run_id", Text),
        SystemColumn::WorkflowType => ("runs.workflow_type", Text),
        SystemColumn::TaskQueue => ("runs.task_queue", Text),
        SystemColumn::ExecutionStatus => ("runs.status", Int),
        SystemColumn::StartTime => ("runs.start_time", Millis),
        SystemColumn::ExecutionTime => ("runs.execution_time", Millis),
        SystemColumn::CloseTime => ("NULLIF(runs.close_order, 9223372036854775807)", Millis),
        SystemColumn::HistoryLength => ("runs.history_length", Int),
        SystemColumn::HistorySizeBytes => ("runs.history_size_bytes", Int),
        SystemColumn::ExecutionDuration => ("runs.execution_duration", Int),
        SystemColumn::StateTransitionCount => ("runs.state_transition_count", Int),
        SystemColumn::ParentWorkflowId => ("runs.parent_workflow_id", Text),
        SystemColumn::ParentRunId => ("runs.parent_run_id", Text),
        SystemColumn::RootWorkflowId => ("runs.root_workflow_id", Text),
        SystemColumn::RootRunId => ("runs.root_run_id", Text),
    }
}

/// The `run_attrs` column a type is kept in, and a literal's SQL value for it.
fn stored_value(ty: ValueType, value: &Literal) -> (&'static str, Sql) {
    let col = match ty {
        ValueType::Text | ValueType::Keyword | ValueType::KeywordList => "sval",
        ValueType::Int | ValueType::Bool | ValueType::Datetime => "ival",
        ValueType::Double => "rval",
    };
    let v = match (ty, value) {
        (ValueType::Double, Literal::Int(i)) => Sql::Real(*i as f64),
        _ => literal_sql(value),
    };
    (col, v)
}

fn literal_sql(value: &Literal) -> Sql {
    match value {
        Literal::Str(s) => Sql::Text(s.clone()),
        Literal::Int(i) => Sql::Integer(*i),
        Literal::Double(d) => Sql::Real(*d),
        Literal::Bool(b) => Sql::Integer(i64::from(*b)),
        Literal::Time(ns) => Sql::Integer(*ns),
    }
}

fn op_sql(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "=",
        CmpOp::Ne => "!=",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
    }
}

/// Translates a comparison against nanoseconds into one against a millisecond column, exactly.
/// None when no millisecond value can be equal (`=`/`!=` with a sub-millisecond part).
fn millis_bound(op: CmpOp, ns: i64) -> Option<(CmpOp, i64)> {
    let floor = ns.div_euclid(1_000_000);
    let exact = ns.rem_euclid(1_000_000) == 0;
    let ceil = if exact { floor } else { floor + 1 };
    match op {
        CmpOp::Eq | CmpOp::Ne => exact.then_some((op, floor)),
        CmpOp::Gt | CmpOp::Le => Some((op, floor)),
        CmpOp::Ge | CmpOp::Lt => Some((op, ceil)),
    }
}

/// The ORDER BY clause: the query's own order, or Temporal's (open first, then latest close,
/// latest start), always ending with the run id so pages are stable.
pub fn order_by(w: &mut Where, order: &[OrderBy]) -> String {
    if order.is_empty() {
        return "runs.close_order DESC, runs.start_time DESC, runs.run_id".to_string();
    }
    let mut parts = Vec::new();
    for o in order {
        let dir = if o.descending { "DESC" } else { "ASC" };
        let key = match &o.attr {
            Attr::Column(column) => column_sql(*column).0.to_string(),
            Attr::Stored { name, .. } => {
                let (col, _) = stored_value(o.ty, &Literal::Int(0));
                let name = w.param(Sql::Text(name.clone()));
                format!(
                    "(SELECT {col} FROM run_attrs a WHERE a.run_id = runs.run_id AND a.name = {name} ORDER BY a.seq LIMIT 1)"
                )
            }
        };
        // SQLite places NULLs first in ascending order; PostgreSQL is told to do the same.
        let nulls = match (w.dialect, o.descending) {
            (Dialect::Sqlite, _) => "",
            (Dialect::Postgres, false) => " NULLS FIRST",
            (Dialect::Postgres, true) => " NULLS LAST",
        };
        parts.push(format!("{key} {dir}{nulls}"));
    }
    parts.push("runs.run_id".to_string());
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millisecond_bounds_are_exact() {
        assert_eq!(millis_bound(CmpOp::Gt, 1_500_000), Some((CmpOp::Gt, 1)));
        assert_eq!(millis_bound(CmpOp::Ge, 1_500_000), Some((CmpOp::Ge, 2)));
        assert_eq!(millis_bound(CmpOp::Lt, 1_500_000), Some((CmpOp::Lt, 2)));
        assert_eq!(millis_bound(CmpOp::Le, 1_500_000), Some((CmpOp::Le, 1)));
        assert_eq!(millis_bound(CmpOp::Eq, 1_500_000), None);
        assert_eq!(millis_bound(CmpOp::Eq, 2_000_000), Some((CmpOp::Eq, 2)));
        assert_eq!(millis_bound(CmpOp::Ge, -1_500_000), Some((CmpOp::Ge, -1)));
    }
}
