//! The per-module model: import aliases, qualified-name resolution, workflow classes, activities and helpers.

use std::collections::{HashMap, HashSet};

use ruff_python_ast::visitor::{self, Visitor};
use ruff_python_ast::{self as ast, Decorator, Expr, Stmt, StmtClassDef, StmtFunctionDef};

/// What a method of a `@workflow.defn` class is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodKind {
    Run,
    Signal,
    Query,
    Update,
    Validator,
    Init,
    Other,
}

/// A `@workflow.defn` class and its classified methods.
pub struct WorkflowClass<'a> {
    pub class: &'a StmtClassDef,
    pub methods: Vec<(MethodKind, &'a StmtFunctionDef)>,
}

/// Everything the checks need to know about one module.
pub struct Module<'a> {
    /// Local name → fully qualified name, from every import statement in the file.
    imports: HashMap<String, String>,
    /// Names bound anywhere in the file by assignment, parameter, `def` or `class` (scopes are not tracked).
    bound: HashSet<String>,
    /// Module-level names bound to a `logging.getLogger(...)` result.
    pub loggers: HashSet<String>,
    /// Module-level functions that are not activities, by name.
    pub helpers: HashMap<&'a str, &'a StmtFunctionDef>,
    pub workflows: Vec<WorkflowClass<'a>>,
    /// `@activity.defn` functions and methods.
    pub activities: Vec<&'a StmtFunctionDef>,
    pub suite: &'a [Stmt],
}

struct ImportCollector<'m> {
    imports: &'m mut HashMap<String, String>,
    bound: &'m mut HashSet<String>,
}

impl<'a> Visitor<'a> for ImportCollector<'_> {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        match stmt {
            Stmt::Import(import) => {
                for alias in &import.names {
                    let full = alias.name.as_str();
                    match &alias.asname {
                        Some(asname) => {
                            self.imports.insert(asname.as_str().to_string(), full.to_string());
                        }
                        None => {
                            // `import a.b` binds `a`.
                            let root = full.split('.').next().unwrap_or(full);
                            self.imports.insert(root.to_string(), root.to_string());
                        }
                    }
                }
            }
            Stmt::ImportFrom(import) => {
                let module = import.module.as_ref().map_or("", |m| m.as_str());
                for alias in &import.names {
                    if alias.name.as_str() == "*" {
                        continue;
                    }
                    let local = alias.asname.as_ref().unwrap_or(&alias.name).as_str();
                    let full = if module.is_empty() || import.level > 0 {
                        // Relative imports are project-local; keep the bare name so they never match stdlib patterns.
                        format!(".{}", alias.name.as_str())
                    } else {
                        format!("{module}.{}", alias.name.as_str())
                    };
                    self.imports.insert(local.to_string(), full);
                }
            }
            Stmt::FunctionDef(function) => {
                self.bound.insert(function.name.to_string());
                visitor::walk_stmt(self, stmt);
            }
            Stmt::ClassDef(class) => {
                self.bound.insert(class.name.to_string());
                visitor::walk_stmt(self, stmt);
            }
            _ => visitor::walk_stmt(self, stmt),
        }
    }

    fn visit_expr(&mut self, expr: &'a Expr) {
        if let Expr::Name(name) = expr
            && name.ctx == ast::ExprContext::Store
        {
            self.bound.insert(name.id.to_string());
        }
        visitor::walk_expr(self, expr);
    }

    fn visit_parameter(&mut self, parameter: &'a ast::Parameter) {
        self.bound.insert(parameter.name.to_string());
        visitor::walk_parameter(self, parameter);
    }
}

impl<'a> Module<'a> {
    pub fn new(suite: &'a [Stmt]) -> Module<'a> {
        let mut imports = HashMap::new();
        let mut bound = HashSet::new();
        let mut collector = ImportCollector { imports: &mut imports, bound: &mut bound };
        for stmt in suite {
            collector.visit_stmt(stmt);
        }
        let mut module = Module {
            imports,
            bound,
            loggers: HashSet::new(),
            helpers: HashMap::new(),
            workflows: Vec::new(),
            activities: Vec::new(),
            suite,
        };
        module.collect_definitions(suite);
        module
    }

    fn collect_definitions(&mut self, suite: &'a [Stmt]) {
        for stmt in suite {
            match stmt {
                Stmt::FunctionDef(function) => {
                    if self.has_decorator(&function.decorator_list, "temporalio.activity.defn") {
                        self.activities.push(function);
                    } else {
                        self.helpers.insert(function.name.as_str(), function);
                    }
                }
                Stmt::ClassDef(class) => {
                    if self.has_decorator(&class.decorator_list, "temporalio.workflow.defn") {
                        let methods = self.classify_methods(class);
                        self.workflows.push(WorkflowClass { class, methods });
                    } else {
                        for item in &class.body {
                            if let Stmt::FunctionDef(method) = item
                                && self.has_decorator(&method.decorator_list, "temporalio.activity.defn")
                            {
                                self.activities.push(method);
                            }
                        }
                    }
                }
                Stmt::Assign(assign) => {
                    if let Expr::Call(call) = assign.value.as_ref()
                        && self.qualify(&call.func).as_deref() == Some("logging.getLogger")
                    {
                        for target in &assign.targets {
                            if let Expr::Name(name) = target {
                                self.loggers.insert(name.id.to_string());
                            }
                        }
                    }
                }
                Stmt::If(if_stmt) => {
                    self.collect_definitions(&if_stmt.body);
                    for clause in &if_stmt.elif_else_clauses {
                        self.collect_definitions(&clause.body);
                    }
                }
                Stmt::With(with) => self.collect_definitions(&with.body),
                Stmt::Try(try_stmt) => self.collect_definitions(&try_stmt.body),
                _ => {}
            }
        }
    }

    fn classify_methods(&self, class: &'a StmtClassDef) -> Vec<(MethodKind, &'a StmtFunctionDef)> {
        let mut methods = Vec::new();
        for item in &class.body {
            let Stmt::FunctionDef(method) = item else {
                continue;
            };
            let mut kind = if method.name.as_str() == "__init__" { MethodKind::Init } else { MethodKind::Other };
            for decorator in &method.decorator_list {
                let expr = decorator_target(decorator);
                if let Expr::Attribute(attribute) = expr
                    && attribute.attr.as_str() == "validator"
                    && matches!(attribute.value.as_ref(), Expr::Name(_))
                {
                    kind = MethodKind::Validator;
                    continue;
                }
                match self.qualify(expr).as_deref() {
                    Some("temporalio.workflow.run") => kind = MethodKind::Run,
                    Some("temporalio.workflow.signal") => kind = MethodKind::Signal,
                    Some("temporalio.workflow.query") => kind = MethodKind::Query,
                    Some("temporalio.workflow.update") => kind = MethodKind::Update,
                    Some("temporalio.workflow.init") => kind = MethodKind::Init,
                    _ => {}
                }
            }
            methods.push((kind, method));
        }
        methods
    }

    /// Whether any decorator (called or not) resolves to `qualified`.
    pub fn has_decorator(&self, decorators: &[Decorator], qualified: &str) -> bool {
        decorators.iter().any(|decorator| self.qualify(decorator_target(decorator)).as_deref() == Some(qualified))
    }

    /// Resolves a name or attribute chain to a dotted, import-resolved name.
    ///
    /// Names bound in the file become `<local>.name`. Other unimported names stay as written, except `workflow`, `activity` and `Worker`, which the chapter's
    /// fragments use without imports and which always mean the Temporal SDK objects.
    pub fn qualify(&self, expr: &Expr) -> Option<String> {
        match expr {
            Expr::Name(name) => {
                let id = name.id.as_str();
                if let Some(full) = self.imports.get(id) {
                    return Some(full.clone());
                }
                if self.bound.contains(id) {
                    // A project-local variable, function or class: never an SDK or stdlib object.
                    return Some(format!("<local>.{id}"));
                }
                Some(match id {
                    "workflow" => "temporalio.workflow".to_string(),
                    "activity" => "temporalio.activity".to_string(),
                    "Worker" => "temporalio.worker.Worker".to_string(),
                    other => other.to_string(),
                })
            }
            Expr::Attribute(attribute) => {
                let base = self.qualify(&attribute.value)?;
                Some(format!("{base}.{}", attribute.attr.as_str()))
            }
            _ => None,
        }
    }

    /// Whether the local name comes from an import statement.
    pub fn is_imported(&self, name: &str) -> bool {
        self.imports.contains_key(name)
    }
}

/// The decorator expression without a trailing call: `@workflow.defn(name="x")` → `workflow.defn`.
pub fn decorator_target(decorator: &Decorator) -> &Expr {
    match &decorator.expression {
        Expr::Call(call) => &call.func,
        other => other,
    }
}

/// Positional parameters of a function, without `self`/`cls` for methods.
pub fn positional_params(function: &StmtFunctionDef, is_method: bool) -> Vec<&ast::ParameterWithDefault> {
    let params = &function.parameters;
    let mut all: Vec<_> = params.posonlyargs.iter().chain(params.args.iter()).collect();
    if is_method && !all.is_empty() {
        all.remove(0);
    }
    all
}

/// Keyword argument by name.
pub fn keyword<'a>(call: &'a ast::ExprCall, name: &str) -> Option<&'a Expr> {
    call.arguments
        .keywords
        .iter()
        .find(|keyword| keyword.arg.as_ref().is_some_and(|arg| arg.as_str() == name))
        .map(|keyword| &keyword.value)
}

/// Whether the call forwards `**kwargs` or `*args`, or passes a literal `...` placeholder (elided code).
pub fn has_opaque_arguments(call: &ast::ExprCall) -> bool {
    call.arguments.keywords.iter().any(|keyword| keyword.arg.is_none())
        || call.arguments.args.iter().any(|arg| matches!(arg, Expr::Starred(_) | Expr::EllipsisLiteral(_)))
}
