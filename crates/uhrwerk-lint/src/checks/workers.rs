//! Worker construction: UW701 worker next to a web app, UW702 monolith worker, UW703 untuned worker.

use ruff_python_ast::visitor::{self, Visitor};
use ruff_python_ast::{self as ast, Expr};
use ruff_text_size::Ranged;

use crate::lint::Reporter;
use crate::semantic::{Module, keyword};

const WEB_APPS: &[&str] = &[
    "fastapi.FastAPI",
    "flask.Flask",
    "starlette.applications.Starlette",
    "aiohttp.web.Application",
    "uvicorn.run",
    "quart.Quart",
    "sanic.Sanic",
    "litestar.Litestar",
];

struct Calls<'m, 'a, 'c> {
    module: &'m Module<'a>,
    workers: Vec<&'c ast::ExprCall>,
    web_apps: Vec<(&'c ast::ExprCall, String)>,
}

impl<'a> Visitor<'a> for Calls<'_, '_, 'a> {
    fn visit_expr(&mut self, expr: &'a Expr) {
        if let Expr::Call(call) = expr
            && let Some(qualified) = self.module.qualify(&call.func)
        {
            if qualified == "temporalio.worker.Worker" {
                self.workers.push(call);
            } else if WEB_APPS.contains(&qualified.as_str()) {
                self.web_apps.push((call, qualified));
            }
        }
        visitor::walk_expr(self, expr);
    }
}

pub fn check(module: &Module<'_>, reporter: &mut Reporter<'_>) {
    let mut calls = Calls { module, workers: Vec::new(), web_apps: Vec::new() };
    for stmt in module.suite {
        calls.visit_stmt(stmt);
    }
    for worker in &calls.workers {
        if let Some((app, kind)) = calls.web_apps.first() {
            let line = reporter.line_of(app.range().start());
            reporter.report(
                "UW701",
                worker.func.range(),
                format!("this module builds a Temporal Worker and a web application (`{kind}` on line {line}); run them as separate processes so they scale, deploy and fail independently"),
            );
        }
        check_registrations(worker, reporter);
        let opaque = worker.arguments.keywords.iter().any(|keyword| keyword.arg.is_none());
        let tuned = worker
            .arguments
            .keywords
            .iter()
            .any(|keyword| keyword.arg.as_ref().is_some_and(|arg| arg.as_str().starts_with("max_concurrent_")));
        if !opaque && !tuned {
            reporter.report(
                "UW703",
                worker.func.range(),
                "Worker uses default concurrency; set `max_concurrent_workflow_tasks` / `max_concurrent_activities` from measured schedule-to-start latency",
            );
        }
    }
}

fn check_registrations(worker: &ast::ExprCall, reporter: &mut Reporter<'_>) {
    let limits = [
        ("workflows", reporter.config.max_workflows_per_worker),
        ("activities", reporter.config.max_activities_per_worker),
    ];
    for (name, limit) in limits {
        let count = match keyword(worker, name) {
            Some(Expr::List(list)) => list.elts.len(),
            Some(Expr::Tuple(tuple)) => tuple.elts.len(),
            _ => continue,
        };
        if count > limit {
            let queue = match keyword(worker, "task_queue") {
                Some(Expr::StringLiteral(literal)) => {
                    format!(" on task queue \"{}\"", literal.value.to_str())
                }
                _ => String::new(),
            };
            reporter.report(
                "UW702",
                worker.func.range(),
                format!("one Worker registers {count} {name}{queue} (limit {limit}); split workers per domain with their own task queues so they scale and deploy independently"),
            );
        }
    }
}
