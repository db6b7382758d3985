//! Activity calls and signatures: UW301 timeouts, UW302 local-activity idempotency, UW401 positional parameters.

use ruff_python_ast::visitor::{self, Visitor};
use ruff_python_ast::{self as ast, Expr, StmtFunctionDef};
use ruff_text_size::Ranged;

use super::ACTIVITY_APIS;
use crate::lint::Reporter;
use crate::semantic::{MethodKind, Module, has_opaque_arguments, keyword, positional_params};

pub fn check(module: &Module<'_>, reporter: &mut Reporter<'_>) {
    let mut calls = ActivityCalls { module, reporter: &mut *reporter };
    for stmt in module.suite {
        calls.visit_stmt(stmt);
    }
    check_signatures(module, reporter);
}

struct ActivityCalls<'m, 'a, 'r> {
    module: &'m Module<'a>,
    reporter: &'m mut Reporter<'r>,
}

impl<'a> Visitor<'a> for ActivityCalls<'_, 'a, '_> {
    fn visit_expr(&mut self, expr: &'a Expr) {
        if let Expr::Call(call) = expr
            && let Some(qualified) = self.module.qualify(&call.func)
            && let Some(api) = qualified.strip_prefix("temporalio.workflow.")
            && ACTIVITY_APIS.contains(&api)
            && !has_opaque_arguments(call)
        {
            let has_timeout = keyword(call, "start_to_close_timeout").is_some()
                || keyword(call, "schedule_to_close_timeout").is_some();
            if !has_timeout {
                self.reporter.report(
                    "UW301",
                    call.func.range(),
                    format!("`workflow.{api}()` needs `start_to_close_timeout` (or `schedule_to_close_timeout`); without it the SDK raises at runtime — add `start_to_close_timeout=timedelta(...)`"),
                );
            }
            if api.contains("local_activity") {
                check_local_activity(self.module, self.reporter, call, api);
            }
        }
        visitor::walk_expr(self, expr);
    }
}

fn check_local_activity(module: &Module<'_>, reporter: &mut Reporter<'_>, call: &ast::ExprCall, api: &str) {
    let key_names = &reporter.config.idempotency_key_names;
    let mentions_key = |text: &str| {
        let lower = text.to_ascii_lowercase();
        key_names.iter().any(|key| lower.contains(&key.to_ascii_lowercase()))
    };
    let mut identifiers = Vec::new();
    for arg in call.arguments.args.iter().skip(1) {
        collect_identifiers(arg, &mut identifiers);
    }
    for keyword in &call.arguments.keywords {
        if let Some(arg) = &keyword.arg {
            identifiers.push(arg.to_string());
        }
        if keyword.arg.as_ref().is_some_and(|arg| arg.as_str() == "args" || arg.as_str() == "arg") {
            collect_identifiers(&keyword.value, &mut identifiers);
        }
    }
    // The activity's own signature may carry the key (e.g. a dataclass input with `idempotency_key`).
    if let Some(Expr::Name(name)) = call.arguments.args.first()
        && let Some(definition) = module.activities.iter().find(|function| function.name.as_str() == name.id.as_str())
    {
        for param in positional_params(definition, false) {
            identifiers.push(param.parameter.name.to_string());
        }
    }
    if identifiers.iter().any(|identifier| mentions_key(identifier)) {
        return;
    }
    if retries_bounded(call) {
        return;
    }
    reporter.report(
        "UW302",
        call.func.range(),
        format!("`workflow.{api}()` passes no idempotency key and retries without limit; a local activity re-runs after a worker crash — pass an idempotency key, bound `retry_policy=RetryPolicy(maximum_attempts=...)`, or use a regular activity"),
    );
}

fn collect_identifiers(expr: &Expr, out: &mut Vec<String>) {
    struct Collector<'o>(&'o mut Vec<String>);
    impl<'a> Visitor<'a> for Collector<'_> {
        fn visit_expr(&mut self, expr: &'a Expr) {
            match expr {
                Expr::Name(name) => self.0.push(name.id.to_string()),
                Expr::Attribute(attribute) => self.0.push(attribute.attr.to_string()),
                Expr::StringLiteral(literal) => self.0.push(literal.value.to_str().to_string()),
                _ => {}
            }
            visitor::walk_expr(self, expr);
        }
        fn visit_keyword(&mut self, keyword: &'a ast::Keyword) {
            if let Some(arg) = &keyword.arg {
                self.0.push(arg.to_string());
            }
            visitor::walk_keyword(self, keyword);
        }
    }
    Collector(out).visit_expr(expr);
}

/// `retry_policy=RetryPolicy(maximum_attempts=N)` with N > 0, or a `schedule_to_close_timeout`.
fn retries_bounded(call: &ast::ExprCall) -> bool {
    if keyword(call, "schedule_to_close_timeout").is_some() {
        return true;
    }
    let Some(Expr::Call(policy)) = keyword(call, "retry_policy") else {
        // A policy built elsewhere cannot be inspected; assume it is bounded rather than guess.
        return keyword(call, "retry_policy").is_some();
    };
    match keyword(policy, "maximum_attempts") {
        Some(Expr::NumberLiteral(number)) => !matches!(&number.value, ast::Number::Int(int) if int.as_i64() == Some(0)),
        Some(_) => true,
        None => false,
    }
}

fn check_signatures(module: &Module<'_>, reporter: &mut Reporter<'_>) {
    let limit = reporter.config.max_positional_params;
    let mut report = |function: &StmtFunctionDef, is_method: bool, what: &str| {
        let count = positional_params(function, is_method).len();
        if count > limit {
            reporter.report(
                "UW401",
                function.name.range(),
                format!(
                    "{what} `{}` takes {count} positional parameters (limit {limit}); use one dataclass input so fields can be added without breaking running executions",
                    function.name
                ),
            );
        }
    };
    for workflow in &module.workflows {
        for (kind, method) in &workflow.methods {
            if *kind == MethodKind::Run {
                report(method, true, "workflow run method");
            }
        }
    }
    for activity in &module.activities {
        let is_method = activity.parameters.args.first().is_some_and(|param| param.parameter.name.as_str() == "self");
        report(activity, is_method, "activity");
    }
}
