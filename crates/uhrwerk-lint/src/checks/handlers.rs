//! UW201: query handlers and update validators must be synchronous and read-only.

use ruff_python_ast::visitor::{self, Visitor};
use ruff_python_ast::{Expr, Stmt, StmtFunctionDef};
use ruff_text_size::Ranged;

use super::COMMAND_APIS;
use crate::lint::Reporter;
use crate::semantic::{MethodKind, Module};

const MUTATORS: &[&str] = &[
    "append",
    "extend",
    "insert",
    "remove",
    "pop",
    "popleft",
    "popitem",
    "clear",
    "add",
    "discard",
    "update",
    "setdefault",
    "appendleft",
    "extendleft",
    "sort",
    "reverse",
];

pub fn check(module: &Module<'_>, reporter: &mut Reporter<'_>) {
    for workflow in &module.workflows {
        for (kind, method) in &workflow.methods {
            let what = match kind {
                MethodKind::Query => "query handler",
                MethodKind::Validator => "update validator",
                _ => continue,
            };
            check_handler(module, reporter, method, what);
        }
    }
}

fn check_handler(module: &Module<'_>, reporter: &mut Reporter<'_>, method: &StmtFunctionDef, what: &'static str) {
    let name = method.name.as_str();
    if method.is_async {
        reporter.report(
            "UW201",
            method.name.range(),
            format!("{what} `{name}` is `async`; make it a plain `def` that only reads state"),
        );
    }
    let mut visitor = ReadOnly { module, reporter, what, name };
    for stmt in &method.body {
        visitor.visit_stmt(stmt);
    }
}

/// Whether the expression is `self`, `self.x`, `self.x[k]`, `self.x.y`...
fn rooted_at_self(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Attribute(attribute) => match attribute.value.as_ref() {
            Expr::Name(name) if name.id.as_str() == "self" => Some(format!("self.{}", attribute.attr)),
            inner => rooted_at_self(inner),
        },
        Expr::Subscript(subscript) => rooted_at_self(&subscript.value),
        _ => None,
    }
}

struct ReadOnly<'m, 'a, 'r> {
    module: &'m Module<'a>,
    reporter: &'m mut Reporter<'r>,
    what: &'static str,
    name: &'m str,
}

impl ReadOnly<'_, '_, '_> {
    fn mutation(&mut self, target: &Expr) {
        if let Some(state) = rooted_at_self(target) {
            let message = format!(
                "{} `{}` modifies `{state}`; queries are not recorded in history, so replayed state diverges — mutate state in a signal or update handler",
                self.what, self.name
            );
            self.reporter.report("UW201", target.range(), message);
        }
    }
}

impl<'a> Visitor<'a> for ReadOnly<'_, 'a, '_> {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        match stmt {
            Stmt::Assign(assign) => assign.targets.iter().for_each(|target| self.mutation(target)),
            Stmt::AugAssign(assign) => self.mutation(&assign.target),
            Stmt::AnnAssign(assign) if assign.value.is_some() => self.mutation(&assign.target),
            Stmt::Delete(delete) => delete.targets.iter().for_each(|target| self.mutation(target)),
            _ => {}
        }
        visitor::walk_stmt(self, stmt);
    }

    fn visit_expr(&mut self, expr: &'a Expr) {
        match expr {
            Expr::Await(_) => {
                let message =
                    format!("{} `{}` awaits; it must answer immediately from current state", self.what, self.name);
                self.reporter.report("UW201", expr.range(), message);
            }
            Expr::Call(call) => {
                if let Some(qualified) = self.module.qualify(&call.func)
                    && let Some(api) = qualified.strip_prefix("temporalio.workflow.")
                    && COMMAND_APIS.contains(&api)
                {
                    let message = format!(
                        "{} `{}` calls `workflow.{api}()`; it must not schedule work or wait — use a signal or update",
                        self.what, self.name
                    );
                    self.reporter.report("UW201", call.func.range(), message);
                } else if let Expr::Attribute(attribute) = call.func.as_ref()
                    && MUTATORS.contains(&attribute.attr.as_str())
                    && let Some(state) = rooted_at_self(&attribute.value)
                {
                    let message = format!(
                        "{} `{}` calls `{state}.{}()`, which mutates workflow state; mutate state in a signal or update handler",
                        self.what, self.name, attribute.attr
                    );
                    self.reporter.report("UW201", call.func.range(), message);
                }
            }
            _ => {}
        }
        visitor::walk_expr(self, expr);
    }
}
