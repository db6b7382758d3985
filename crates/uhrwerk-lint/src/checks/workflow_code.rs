//! Checks on code that runs inside the workflow sandbox: determinism, I/O, sets, asyncio, logging,
//! unawaited calls, heavy work, patch ids, and hazards reached through same-module helper functions.

use std::collections::{HashMap, HashSet, VecDeque};

use ruff_python_ast::visitor::{self, Visitor};
use ruff_python_ast::{self as ast, Expr, Stmt};
use ruff_text_size::{Ranged, TextRange, TextSize};

use super::{AWAITABLE_APIS, Hazard, classify_call};
use crate::config::Config;
use crate::lint::Reporter;
use crate::semantic::Module;

const HEAVY_LIBRARIES: &[&str] =
    &["numpy", "pandas", "scipy", "sklearn", "torch", "tensorflow", "cv2", "PIL", "polars"];
const LOG_METHODS: &[&str] = &["debug", "info", "warning", "warn", "error", "exception", "critical", "log"];

/// First hazardous call found in a helper function.
#[derive(Clone)]
struct HelperHit {
    hazard: Hazard,
    qualified: String,
    offset: TextSize,
}

/// Per-helper summary used to follow call chains out of workflow code.
struct HelperSummary<'a> {
    direct: Option<HelperHit>,
    callees: Vec<&'a str>,
}

pub fn check(module: &Module<'_>, reporter: &mut Reporter<'_>) {
    if module.workflows.is_empty() {
        return;
    }
    let helpers = summarize_helpers(module, reporter.config);
    let mut patch_ids: HashMap<String, String> = HashMap::new();
    for workflow in &module.workflows {
        let set_attributes = set_attributes(&workflow.class.body);
        let class_name = workflow.class.name.as_str();
        for (_, method) in &workflow.methods {
            let mut visitor = WorkflowCode {
                module,
                reporter: &mut *reporter,
                helpers: &helpers,
                set_attributes: &set_attributes,
                set_locals: HashSet::new(),
                class_name,
                patch_ids: &mut patch_ids,
            };
            for stmt in &method.body {
                visitor.visit_stmt(stmt);
            }
        }
    }
}

/// Names of `self.<attr>` assigned a set anywhere in the class.
fn set_attributes(body: &[Stmt]) -> HashSet<String> {
    struct Finder(HashSet<String>);
    impl<'a> Visitor<'a> for Finder {
        fn visit_stmt(&mut self, stmt: &'a Stmt) {
            let (targets, value): (Vec<&Expr>, Option<&Expr>) = match stmt {
                Stmt::Assign(assign) => (assign.targets.iter().collect(), Some(&assign.value)),
                Stmt::AnnAssign(assign) => {
                    let annotated_set = matches!(assign.annotation.as_ref(), Expr::Subscript(sub) if matches!(sub.value.as_ref(), Expr::Name(n) if n.id.as_str() == "set" || n.id.as_str() == "frozenset"))
                        || matches!(assign.annotation.as_ref(), Expr::Name(n) if n.id.as_str() == "set" || n.id.as_str() == "frozenset");
                    if annotated_set && let Some(attr) = self_attribute(&assign.target) {
                        self.0.insert(attr.to_string());
                    }
                    (vec![assign.target.as_ref()], assign.value.as_deref())
                }
                _ => (Vec::new(), None),
            };
            if let Some(value) = value
                && is_set_literal(value)
            {
                for target in targets {
                    if let Some(attr) = self_attribute(target) {
                        self.0.insert(attr.to_string());
                    }
                }
            }
            visitor::walk_stmt(self, stmt);
        }
    }
    let mut finder = Finder(HashSet::new());
    for stmt in body {
        finder.visit_stmt(stmt);
    }
    finder.0
}

/// `self.x` → `x`.
pub fn self_attribute(expr: &Expr) -> Option<&str> {
    if let Expr::Attribute(attribute) = expr
        && let Expr::Name(name) = attribute.value.as_ref()
        && name.id.as_str() == "self"
    {
        return Some(attribute.attr.as_str());
    }
    None
}

/// A set display, set comprehension or `set(...)`/`frozenset(...)` call.
fn is_set_literal(expr: &Expr) -> bool {
    match expr {
        Expr::Set(_) | Expr::SetComp(_) => true,
        Expr::Call(call) => {
            matches!(call.func.as_ref(), Expr::Name(name) if name.id.as_str() == "set" || name.id.as_str() == "frozenset")
        }
        _ => false,
    }
}

fn summarize_helpers<'a>(module: &Module<'a>, config: &Config) -> HashMap<&'a str, HelperSummary<'a>> {
    struct Summarizer<'m, 'a> {
        module: &'m Module<'a>,
        config: &'m Config,
        direct: Option<HelperHit>,
        callees: Vec<&'a str>,
    }
    impl<'a> Visitor<'a> for Summarizer<'_, 'a> {
        fn visit_expr(&mut self, expr: &'a Expr) {
            if let Expr::Call(call) = expr {
                if let Expr::Name(name) = call.func.as_ref()
                    && let Some((helper_name, _)) = self.module.helpers.get_key_value(name.id.as_str())
                {
                    self.callees.push(helper_name);
                }
                if self.direct.is_none()
                    && let Some(qualified) = self.module.qualify(&call.func)
                    && let Some((hazard, _)) = classify_call(&qualified, self.config)
                {
                    self.direct = Some(HelperHit { hazard, qualified, offset: call.range().start() });
                }
            }
            visitor::walk_expr(self, expr);
        }
    }
    let mut summaries = HashMap::new();
    for (&name, function) in &module.helpers {
        let mut summarizer = Summarizer { module, config, direct: None, callees: Vec::new() };
        for stmt in &function.body {
            summarizer.visit_stmt(stmt);
        }
        summaries.insert(name, HelperSummary { direct: summarizer.direct, callees: summarizer.callees });
    }
    summaries
}

/// Breadth-first search from `start` to the nearest helper with a direct hazard; returns the chain.
fn find_chain<'a>(start: &'a str, helpers: &HashMap<&'a str, HelperSummary<'a>>) -> Option<(Vec<&'a str>, HelperHit)> {
    let mut queue = VecDeque::from([vec![start]]);
    let mut seen = HashSet::from([start]);
    while let Some(chain) = queue.pop_front() {
        let last = *chain.last()?;
        let summary = helpers.get(last)?;
        if let Some(hit) = &summary.direct {
            return Some((chain, hit.clone()));
        }
        for &callee in &summary.callees {
            if seen.insert(callee) {
                let mut next = chain.clone();
                next.push(callee);
                queue.push_back(next);
            }
        }
    }
    None
}

struct WorkflowCode<'m, 'a, 'r> {
    module: &'m Module<'a>,
    reporter: &'m mut Reporter<'r>,
    helpers: &'m HashMap<&'a str, HelperSummary<'a>>,
    set_attributes: &'m HashSet<String>,
    set_locals: HashSet<String>,
    class_name: &'m str,
    patch_ids: &'m mut HashMap<String, String>,
}

impl WorkflowCode<'_, '_, '_> {
    fn is_set_expr(&self, expr: &Expr) -> bool {
        match expr {
            Expr::Name(name) => self.set_locals.contains(name.id.as_str()),
            Expr::Attribute(_) => self_attribute(expr).is_some_and(|attr| self.set_attributes.contains(attr)),
            Expr::BinOp(binop) => {
                matches!(
                    binop.op,
                    ast::Operator::BitOr | ast::Operator::BitAnd | ast::Operator::Sub | ast::Operator::BitXor
                ) && (self.is_set_expr(&binop.left) || self.is_set_expr(&binop.right))
            }
            Expr::Call(call) => {
                if is_set_literal(expr) {
                    return true;
                }
                // `list(s)`, `tuple(s)`, `enumerate(s)` keep the set's arbitrary order; `sorted(s)` fixes it.
                if let Expr::Name(name) = call.func.as_ref()
                    && matches!(name.id.as_str(), "list" | "tuple" | "enumerate" | "iter" | "reversed")
                    && let Some(first) = call.arguments.args.first()
                {
                    return self.is_set_expr(first);
                }
                false
            }
            _ => is_set_literal(expr),
        }
    }

    fn check_iteration(&mut self, iter: &Expr) {
        if self.is_set_expr(iter) {
            self.reporter.report(
                "UW103",
                iter.range(),
                "iteration order of a set is not stable across processes (str hashing is randomized); iterate `sorted(...)` or use a list or dict",
            );
        }
    }

    fn check_call(&mut self, call: &ast::ExprCall) {
        let func_range = call.func.range();
        if let Expr::Name(name) = call.func.as_ref()
            && self.helpers.contains_key(name.id.as_str())
        {
            let start = name.id.as_str();
            if let Some((start_key, _)) = self.helpers.get_key_value(start)
                && let Some((chain, hit)) = find_chain(start_key, self.helpers)
            {
                let line = self.reporter.line_of(hit.offset);
                let via = chain.join(" → ");
                self.reporter.report(
                    hit.hazard.code(),
                    call.range(),
                    format!(
                        "`{start}()` reaches `{}()` (line {line}) via {via}; helpers called from workflow code run in the workflow — {}",
                        hit.qualified,
                        hit.hazard.advice()
                    ),
                );
            }
            return;
        }
        let Some(qualified) = self.module.qualify(&call.func) else {
            return;
        };
        if let Some((hazard, what)) = classify_call(&qualified, self.reporter.config) {
            self.reporter.report(
                hazard.code(),
                call.range(),
                format!("`{qualified}()` uses {what} in workflow code; {}", hazard.advice()),
            );
            return;
        }
        match qualified.as_str() {
            "asyncio.wait" | "asyncio.as_completed" => {
                let replacement = if qualified.ends_with("wait") { "workflow.wait" } else { "workflow.as_completed" };
                self.reporter.report(
                    "UW104",
                    func_range,
                    format!("`{qualified}()` orders results through a set; use `{replacement}()` for a deterministic order"),
                );
            }
            "asyncio.sleep" => self.reporter.report(
                "UW105",
                func_range,
                "use `workflow.sleep()` for timers in workflow code; it states the durable timer explicitly and accepts a summary",
            ),
            "print" => self.reporter.report(
                "UW106",
                func_range,
                "`print()` in workflow code repeats on every replay; use `workflow.logger`, which is replay-aware",
            ),
            "temporalio.workflow.patched" | "temporalio.workflow.deprecate_patch" => self.check_patch_id(call, &qualified),
            q if q.starts_with("logging.") && LOG_METHODS.iter().any(|m| q.ends_with(&format!(".{m}"))) => {
                self.reporter.report(
                    "UW106",
                    func_range,
                    format!("`{q}()` in workflow code repeats on every replay; use `workflow.logger`"),
                );
            }
            q => {
                if let Some(root) = q.split('.').next()
                    && HEAVY_LIBRARIES.contains(&root)
                    && self.module_imports_root(&call.func)
                {
                    self.reporter.report(
                        "UW601",
                        func_range,
                        format!("`{q}()` is CPU-heavy library code in the workflow; run it in an activity so it can retry and does not block the workflow task"),
                    );
                }
            }
        }
        if let Expr::Attribute(attribute) = call.func.as_ref()
            && let Expr::Name(receiver) = attribute.value.as_ref()
            && self.module.loggers.contains(receiver.id.as_str())
            && LOG_METHODS.contains(&attribute.attr.as_str())
        {
            self.reporter.report(
                "UW106",
                func_range,
                format!(
                    "`{}.{}()` uses a `logging` logger in workflow code; use `workflow.logger`",
                    receiver.id, attribute.attr
                ),
            );
        }
    }

    fn module_imports_root(&self, func: &Expr) -> bool {
        let mut expr = func;
        while let Expr::Attribute(attribute) = expr {
            expr = &attribute.value;
        }
        matches!(expr, Expr::Name(name) if self.module.is_imported(name.id.as_str()))
    }

    fn check_patch_id(&mut self, call: &ast::ExprCall, qualified: &str) {
        let Some(first) = call.arguments.args.first() else {
            return;
        };
        let api = qualified.rsplit('.').next().unwrap_or(qualified).to_string();
        match first {
            Expr::StringLiteral(literal) => {
                let key = format!("{}\u{0}{}", self.class_name, literal.value.to_str());
                match self.patch_ids.get(&key) {
                    Some(other) if *other != api => {
                        let message = format!(
                            "patch id \"{}\" is used with both `workflow.{other}()` and `workflow.{api}()` in `{}`; a patch is either active or deprecated, use a new id for a new change",
                            literal.value.to_str(),
                            self.class_name
                        );
                        self.reporter.report("UW108", first.range(), message);
                    }
                    Some(_) => {}
                    None => {
                        self.patch_ids.insert(key, api);
                    }
                }
            }
            _ => self.reporter.report(
                "UW108",
                first.range(),
                format!("`{qualified}()` id must be a string literal; a computed id can change between deployments and break replay"),
            ),
        }
    }

    fn check_heavy_loop(&mut self, for_stmt: &ast::StmtFor) {
        let Expr::Call(call) = for_stmt.iter.as_ref() else {
            return;
        };
        if !matches!(call.func.as_ref(), Expr::Name(name) if name.id.as_str() == "range") {
            return;
        }
        let bound = match call.arguments.args.as_ref() {
            [stop] => literal_int(stop),
            [_, stop] | [_, stop, _] => literal_int(stop),
            _ => None,
        };
        let Some(bound) = bound else { return };
        if bound < self.reporter.config.heavy_loop_iterations || contains_await(&for_stmt.body) {
            return;
        }
        self.reporter.report(
            "UW601",
            TextRange::new(for_stmt.range().start(), for_stmt.iter.range().end()),
            format!("loop of {bound} iterations without an `await` blocks the workflow task (deadlock detection fires after 2 s); do the computation in an activity"),
        );
    }
}

/// Integer value of a literal such as `1000000`, `1_000_000` or `10**6`.
fn literal_int(expr: &Expr) -> Option<i64> {
    match expr {
        Expr::NumberLiteral(number) => match &number.value {
            ast::Number::Int(int) => int.as_i64(),
            _ => None,
        },
        Expr::BinOp(binop) if binop.op == ast::Operator::Pow => {
            let base = literal_int(&binop.left)?;
            let exponent = u32::try_from(literal_int(&binop.right)?).ok()?;
            base.checked_pow(exponent)
        }
        Expr::BinOp(binop) if binop.op == ast::Operator::Mult => {
            literal_int(&binop.left)?.checked_mul(literal_int(&binop.right)?)
        }
        _ => None,
    }
}

/// Whether the statements contain an `await` (nested function bodies excluded).
pub fn contains_await(body: &[Stmt]) -> bool {
    struct Finder(bool);
    impl<'a> Visitor<'a> for Finder {
        fn visit_stmt(&mut self, stmt: &'a Stmt) {
            match stmt {
                Stmt::FunctionDef(_) | Stmt::ClassDef(_) => {}
                Stmt::For(for_stmt) if for_stmt.is_async => self.0 = true,
                Stmt::With(with) if with.is_async => self.0 = true,
                _ => visitor::walk_stmt(self, stmt),
            }
        }
        fn visit_expr(&mut self, expr: &'a Expr) {
            match expr {
                Expr::Await(_) => self.0 = true,
                Expr::Lambda(_) => {}
                _ => visitor::walk_expr(self, expr),
            }
        }
    }
    let mut finder = Finder(false);
    for stmt in body {
        finder.visit_stmt(stmt);
    }
    finder.0
}

impl<'a> Visitor<'a> for WorkflowCode<'_, 'a, '_> {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        match stmt {
            Stmt::For(for_stmt) => {
                self.check_iteration(&for_stmt.iter);
                self.check_heavy_loop(for_stmt);
            }
            Stmt::Assign(assign) => {
                for target in &assign.targets {
                    if let Expr::Name(name) = target {
                        if self.is_set_expr(&assign.value) {
                            self.set_locals.insert(name.id.to_string());
                        } else {
                            self.set_locals.remove(name.id.as_str());
                        }
                    }
                }
            }
            Stmt::Expr(expr_stmt) => {
                if let Expr::Call(call) = expr_stmt.value.as_ref()
                    && let Some(qualified) = self.module.qualify(&call.func)
                {
                    let api = qualified.strip_prefix("temporalio.workflow.");
                    if api.is_some_and(|api| AWAITABLE_APIS.contains(&api)) || qualified == "asyncio.sleep" {
                        self.reporter.report(
                            "UW107",
                            call.range(),
                            format!("`{qualified}()` returns a coroutine that is never awaited, so nothing is scheduled; add `await`"),
                        );
                    }
                }
            }
            _ => {}
        }
        visitor::walk_stmt(self, stmt);
    }

    fn visit_expr(&mut self, expr: &'a Expr) {
        match expr {
            Expr::Call(call) => self.check_call(call),
            Expr::Attribute(_) if self.module.qualify(expr).as_deref() == Some("os.environ") => {
                self.reporter.report(
                    "UW101",
                    expr.range(),
                    "`os.environ` reads the worker's environment, which differs between workers and replays; pass configuration in the workflow input",
                );
            }
            _ => {}
        }
        visitor::walk_expr(self, expr);
    }

    fn visit_comprehension(&mut self, comprehension: &'a ast::Comprehension) {
        self.check_iteration(&comprehension.iter);
        visitor::walk_comprehension(self, comprehension);
    }
}
