//! History and state growth: UW501 endless waiting loops without continue-as-new, UW502 state that only grows.

use std::collections::HashSet;

use ruff_python_ast::visitor::{self, Visitor};
use ruff_python_ast::{self as ast, Expr, Stmt};
use ruff_text_size::{Ranged, TextRange};

use super::workflow_code::{contains_await, self_attribute};
use crate::lint::Reporter;
use crate::semantic::{MethodKind, Module, WorkflowClass};

const GROWERS: &[&str] = &["append", "extend", "insert", "add", "appendleft", "extendleft", "update", "setdefault"];
const SHRINKERS: &[&str] = &["pop", "popleft", "popitem", "clear", "remove", "discard"];

pub fn check(module: &Module<'_>, reporter: &mut Reporter<'_>) {
    for workflow in &module.workflows {
        let continues = class_continues_as_new(module, workflow);
        check_loops(module, workflow, reporter);
        if !continues {
            check_growth(workflow, reporter);
        }
    }
}

/// Whether any method of the class calls `workflow.continue_as_new`.
fn class_continues_as_new(module: &Module<'_>, workflow: &WorkflowClass<'_>) -> bool {
    workflow.methods.iter().any(|(_, method)| calls_continue_as_new(module, &method.body, None))
}

/// Whether the statements call `workflow.continue_as_new`, directly or through a `self.<method>()` of `class`.
fn calls_continue_as_new(module: &Module<'_>, body: &[Stmt], class: Option<&WorkflowClass<'_>>) -> bool {
    struct Finder<'m, 'a> {
        module: &'m Module<'a>,
        class: Option<&'m WorkflowClass<'a>>,
        found: bool,
        depth: usize,
    }
    impl<'a> Visitor<'a> for Finder<'_, '_> {
        fn visit_expr(&mut self, expr: &'a Expr) {
            if let Expr::Call(call) = expr {
                if self.module.qualify(&call.func).as_deref() == Some("temporalio.workflow.continue_as_new") {
                    self.found = true;
                }
                if let Some(class) = self.class
                    && self.depth < 3
                    && let Some(name) = self_attribute(&call.func)
                    && let Some((_, method)) = class.methods.iter().find(|(_, m)| m.name.as_str() == name)
                {
                    self.depth += 1;
                    for stmt in &method.body {
                        self.visit_stmt(stmt);
                    }
                    self.depth -= 1;
                }
            }
            visitor::walk_expr(self, expr);
        }
    }
    let mut finder = Finder { module, class, found: false, depth: 0 };
    for stmt in body {
        finder.visit_stmt(stmt);
    }
    finder.found
}

fn is_constant_true(expr: &Expr) -> bool {
    match expr {
        Expr::BooleanLiteral(literal) => literal.value,
        Expr::NumberLiteral(number) => {
            matches!(&number.value, ast::Number::Int(int) if int.as_i64() != Some(0))
        }
        _ => false,
    }
}

/// Whether the loop body can leave the loop: `break` at this loop's level or `return` anywhere.
fn loop_exits(body: &[Stmt]) -> bool {
    struct Finder {
        exits: bool,
        loop_depth: usize,
    }
    impl<'a> Visitor<'a> for Finder {
        fn visit_stmt(&mut self, stmt: &'a Stmt) {
            match stmt {
                Stmt::FunctionDef(_) | Stmt::ClassDef(_) => {}
                Stmt::Return(_) => self.exits = true,
                Stmt::Break(_) if self.loop_depth == 0 => self.exits = true,
                Stmt::For(_) | Stmt::While(_) => {
                    self.loop_depth += 1;
                    visitor::walk_stmt(self, stmt);
                    self.loop_depth -= 1;
                }
                _ => visitor::walk_stmt(self, stmt),
            }
        }
    }
    let mut finder = Finder { exits: false, loop_depth: 0 };
    for stmt in body {
        finder.visit_stmt(stmt);
    }
    finder.exits
}

fn check_loops(module: &Module<'_>, workflow: &WorkflowClass<'_>, reporter: &mut Reporter<'_>) {
    struct Loops<'m, 'a, 'r> {
        module: &'m Module<'a>,
        workflow: &'m WorkflowClass<'a>,
        reporter: &'m mut Reporter<'r>,
    }
    impl<'a> Visitor<'a> for Loops<'_, 'a, '_> {
        fn visit_stmt(&mut self, stmt: &'a Stmt) {
            if let Stmt::While(while_stmt) = stmt
                && is_constant_true(&while_stmt.test)
                && contains_await(&while_stmt.body)
                && !loop_exits(&while_stmt.body)
                && !calls_continue_as_new(self.module, &while_stmt.body, Some(self.workflow))
            {
                self.reporter.report(
                    "UW501",
                    TextRange::new(while_stmt.range().start(), while_stmt.test.range().end()),
                    "endless loop waits on workflow events but never calls `workflow.continue_as_new`; history grows until the 50,000-event limit terminates the workflow — continue as new when `workflow.info().is_continue_as_new_suggested()`",
                );
            }
            if !matches!(stmt, Stmt::FunctionDef(_) | Stmt::ClassDef(_)) {
                visitor::walk_stmt(self, stmt);
            }
        }
    }
    for (kind, method) in &workflow.methods {
        if !method.is_async || matches!(kind, MethodKind::Query | MethodKind::Validator) {
            continue;
        }
        let mut loops = Loops { module, workflow, reporter: &mut *reporter };
        for stmt in &method.body {
            loops.visit_stmt(stmt);
        }
    }
}

/// A place where `self.<attribute>` grows.
struct Growth {
    attribute: String,
    range: TextRange,
    how: String,
}

fn check_growth(workflow: &WorkflowClass<'_>, reporter: &mut Reporter<'_>) {
    let mut growth = Vec::new();
    let mut bounded = HashSet::new();
    for (kind, method) in &workflow.methods {
        let handler = matches!(kind, MethodKind::Signal | MethodKind::Update);
        let mut scan = GrowthScan {
            growth: &mut growth,
            bounded: &mut bounded,
            loop_depth: 0,
            handler,
            init: *kind == MethodKind::Init,
        };
        for stmt in &method.body {
            scan.visit_stmt(stmt);
        }
    }
    for site in growth {
        if bounded.contains(&site.attribute) {
            continue;
        }
        reporter.report(
            "UW502",
            site.range,
            format!(
                "`self.{}` only grows ({}) and is never trimmed; keep counters or IDs in workflow state, store the data in an activity, or continue as new",
                site.attribute, site.how
            ),
        );
    }
}

struct GrowthScan<'g> {
    growth: &'g mut Vec<Growth>,
    bounded: &'g mut HashSet<String>,
    loop_depth: usize,
    handler: bool,
    init: bool,
}

impl<'a> Visitor<'a> for GrowthScan<'_> {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        match stmt {
            Stmt::For(_) | Stmt::While(_) => {
                self.loop_depth += 1;
                visitor::walk_stmt(self, stmt);
                self.loop_depth -= 1;
                return;
            }
            Stmt::Assign(assign) => {
                for target in &assign.targets {
                    if let Some(attribute) = self_attribute(target)
                        && !self.init
                    {
                        // Reassigning outside `__init__` resets or trims the collection.
                        self.bounded.insert(attribute.to_string());
                    }
                    if let Expr::Subscript(subscript) = target
                        && let Some(attribute) = self_attribute(&subscript.value)
                        && self.loop_depth > 0
                        && !self.init
                    {
                        self.growth.push(Growth {
                            attribute: attribute.to_string(),
                            range: target.range(),
                            how: "item assignment in a loop".to_string(),
                        });
                    }
                }
            }
            Stmt::Delete(delete) => {
                for target in &delete.targets {
                    if let Expr::Subscript(subscript) = target
                        && let Some(attribute) = self_attribute(&subscript.value)
                    {
                        self.bounded.insert(attribute.to_string());
                    }
                }
            }
            _ => {}
        }
        visitor::walk_stmt(self, stmt);
    }

    fn visit_expr(&mut self, expr: &'a Expr) {
        if let Expr::Call(call) = expr
            && let Expr::Attribute(method) = call.func.as_ref()
            && let Some(attribute) = self_attribute(&method.value)
        {
            let name = method.attr.as_str();
            if SHRINKERS.contains(&name) {
                self.bounded.insert(attribute.to_string());
            } else if GROWERS.contains(&name) && !self.init && (self.loop_depth > 0 || self.handler) {
                let place = if self.loop_depth > 0 { "in a loop" } else { "in a signal/update handler" };
                self.growth.push(Growth {
                    attribute: attribute.to_string(),
                    range: call.range(),
                    how: format!("`{name}` {place}"),
                });
            }
        }
        visitor::walk_expr(self, expr);
    }
}
