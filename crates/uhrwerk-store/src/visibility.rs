//! SQL for list queries: translates a parsed visibility query into a WHERE clause and ORDER BY
//! over the `runs` table, with stored search attributes looked up in `run_attrs` by index.

use rusqlite::types::Value as Sql;
use uhrwerk_visibility::{Attr, CmpOp, Expr, Literal, OrderBy, SystemColumn, ValueType};

/// Largest integer: the `close_order` of an open run.
pub const OPEN_ORDER: i64 = i64::MAX;

/// A WHERE clause with its parameters. Parameter 1 is always the namespace.
pub struct Where {
    pub sql: String,
    pub params: Vec<Sql>,
}

impl Where {
    pub fn new(namespace: &str) -> Self {
        Self { sql: String::new(), params: vec![Sql::Text(namespace.to_string())] }
    }

    fn bind(&mut self, value: Sql) -> String {
        self.params.push(value);
        format!("?{}", self.params.len())
    }

    /// Appends `AND (<filter>)` for a query filter.
    pub fn filter(&mut self, filter: Option<&Expr>) {
        if let Some(expr) = filter {
            let sql = self.expr(expr);
            self.sql.push_str(" AND ");
            self.sql.push_str(&sql);
        }
    }

    pub fn push(&mut self, sql_with_placeholders: impl FnOnce(&mut Self) -> String) {
        let sql = sql_with_placeholders(self);
        self.sql.push_str(" AND ");
        self.sql.push_str(&sql);
    }

    pub fn param(&mut self, value: Sql) -> String {
        self.bind(value)
    }

    fn expr(&mut self, expr: &Expr) -> String {
        match expr {
            Expr::And(a, b) => format!("({} AND {})", self.expr(a), self.expr(b)),
            Expr::Or(a, b) => format!("({} OR {})", self.expr(a), self.expr(b)),
            Expr::Not(a) => format!("(NOT {})", self.expr(a)),
            Expr::Compare { attr, ty, op, value } => match attr {
                Attr::Column(column) => self.column_compare(*column, *op, value),
                Attr::Stored { name, .. } => match op {
                    // Absent values count as "not equal", as in Temporal's document store.
                    CmpOp::Ne => {
                        let inner = self.stored_compare(name, *ty, CmpOp::Eq, value);
                        format!("(NOT {inner})")
                    }
                    _ => self.stored_compare(name, *ty, *op, value),
                },
            },
            Expr::In { attr, ty, values, negated } => {
                let parts: Vec<String> = values
                    .iter()
                    .map(|v| match attr {
                        Attr::Column(column) => self.column_compare(*column, CmpOp::Eq, v),
                        Attr::Stored { name, .. } => self.stored_compare(name, *ty, CmpOp::Eq, v),
                    })
                    .collect();
                let any = if parts.is_empty() { "0".to_string() } else { format!("({})", parts.join(" OR ")) };
                if *negated { format!("(NOT {any})") } else { any }
            }
            Expr::Between { attr, ty, low, high, negated } => {
                let both = match attr {
                    Attr::Column(column) => {
                        let lo = self.column_compare(*column, CmpOp::Ge, low);
                        let hi = self.column_compare(*column, CmpOp::Le, high);
                        format!("({lo} AND {hi})")
                    }
                    Attr::Stored { name, .. } => {
                        let (col, lo) = stored_value(*ty, low);
                        let (_, hi) = stored_value(*ty, high);
                        let name = self.bind(Sql::Text(name.clone()));
                        let (lo, hi) = (self.bind(lo), self.bind(hi));
                        format!("EXISTS (SELECT 1 FROM run_attrs a WHERE a.run_id = runs.run_id AND a.name = {name} AND a.{col} BETWEEN {lo} AND {hi})")
                    }
                };
                if *negated { format!("(NOT {both})") } else { both }
            }
            Expr::StartsWith { attr, prefix, negated, .. } => {
                let lo = self.bind(Sql::Text(prefix.clone()));
                let hi = self.bind(Sql::Text(format!("{prefix}\u{10FFFF}")));
                let test = match attr {
                    Attr::Column(column) => {
                        let (col, _) = column_sql(*column);
                        format!("({col} >= {lo} AND {col} < {hi})")
                    }
                    Attr::Stored { name, .. } => {
                        let name = self.bind(Sql::Text(name.clone()));
                        format!("EXISTS (SELECT 1 FROM run_attrs a WHERE a.run_id = runs.run_id AND a.name = {name} AND a.sval >= {lo} AND a.sval < {hi})")
                    }
                };
                if *negated { format!("(NOT {test})") } else { test }
            }
            Expr::IsNull { attr, negated, .. } => {
                let present = match attr {
                    Attr::Column(column) => {
                        let (col, _) = column_sql(*column);
                        format!("({col} IS NOT NULL AND {col} != '')")
                    }
                    Attr::Stored { name, .. } => {
                        let name = self.bind(Sql::Text(name.clone()));
                        format!("EXISTS (SELECT 1 FROM run_attrs a WHERE a.run_id = runs.run_id AND a.name = {name})")
                    }
                };
                if *negated { present } else { format!("(NOT {present})") }
            }
        }
    }

    fn column_compare(&mut self, column: SystemColumn, op: CmpOp, value: &Literal) -> String {
        let (col, kind) = column_sql(column);
        match (kind, value) {
            (ColumnKind::Millis, Literal::Time(ns)) => match millis_bound(op, *ns) {
                Some((op, ms)) => format!("{col} {} {}", op_sql(op), self.bind(Sql::Integer(ms))),
                None if op == CmpOp::Ne => format!("{col} IS NOT NULL"),
                None => "0".to_string(),
            },
            _ => {
                let v = self.bind(literal_sql(value));
                format!("{col} {} {v}", op_sql(op))
            }
        }
    }

    fn stored_compare(&mut self, name: &str, ty: ValueType, op: CmpOp, value: &Literal) -> String {
        let name = self.bind(Sql::Text(name.to_string()));
        let (col, v) = stored_value(ty, value);
        let v = self.bind(v);
        if ty == ValueType::Text && op == CmpOp::Eq {
            // Text matches when every token of the value occurs in the stored text.
            return format!("runs.run_id IN (SELECT run_id FROM run_attrs WHERE namespace = ?1 AND name = {name} AND uw_text_match(sval, {v}))");
        }
        if op == CmpOp::Eq {
            // Equality is selective: the index of values finds the runs.
            return format!("runs.run_id IN (SELECT run_id FROM run_attrs WHERE namespace = ?1 AND name = {name} AND {col} = {v})");
        }
        // Ranges may match most runs: test each candidate run instead of collecting them all.
        format!("EXISTS (SELECT 1 FROM run_attrs a WHERE a.run_id = runs.run_id AND a.name = {name} AND a.{col} {} {v})", op_sql(op))
    }
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
                format!("(SELECT {col} FROM run_attrs a WHERE a.run_id = runs.run_id AND a.name = {name} ORDER BY a.seq LIMIT 1)")
            }
        };
        parts.push(format!("{key} {dir}"));
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
