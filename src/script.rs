//! The Rhai sandbox every admin script runs in: one function builds the engine for
//! production and tests alike.
//!
//! Scripts get the language and its standard library, nothing else: no file, network,
//! environment or process access, no `eval`, no `import` of files, and `sleep` is shadowed
//! (it is not bounded by the operation limit). Every evaluation is bounded in operations,
//! call depth, expression depth, variables, string, array and map sizes, and wall-clock
//! time; host helpers check the same deadline ([`check_deadline`]), and `print`/`debug`
//! reach the log only a few short lines at a time. A script that loops forever or builds
//! a huge value is stopped with a clear error.
//!
//! The worst case of one evaluation, whatever the script: [`Limits::worst_case_bytes`] of
//! script data (each of at most `max_variables` values holds at most `max_string_size`
//! bytes of text plus `max_array_size` array elements and `max_map_size` map entries), and
//! the wall-clock budget plus one host call.

use std::cell::Cell;
use std::path::Path;
use std::time::{Duration, Instant};

use rhai::packages::{Package, StandardPackage};
use rhai::{AST, CallFnOptions, Dynamic, Engine, EvalAltResult, Scope};

/// Limits applied to every evaluation.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_operations: u64,
    pub max_call_levels: usize,
    pub max_expr_depth: usize,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    /// Variables alive at once in one evaluation.
    pub max_variables: usize,
    /// Functions one script may define.
    pub max_functions: usize,
    pub wall_clock: Duration,
}

impl Limits {
    /// An upper bound of the script data one evaluation can hold, in bytes: every variable
    /// at its largest (a Rhai value is 16 bytes; a map entry about 64 more for its key).
    pub fn worst_case_bytes(&self) -> usize {
        let per_value = self.max_string_size + self.max_array_size * 16 + self.max_map_size * 80;
        (self.max_variables + self.max_call_levels) * per_value
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 1_000_000,
            max_call_levels: 32,
            max_expr_depth: 64,
            max_string_size: 256 * 1024,
            max_array_size: 4_096,
            max_map_size: 4_096,
            max_variables: 64,
            max_functions: 256,
            wall_clock: Duration::from_millis(250),
        }
    }
}

const SLEEP_REFUSED: &str = "sleep() is not available in casebridge scripts";

thread_local! {
    /// The deadline of the evaluation running on this thread.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// Lines `print`/`debug` may still write in the evaluation running on this thread.
    static PRINT_BUDGET: Cell<u32> = const { Cell::new(0) };
}

/// Lines one evaluation may print; more are dropped.
pub const PRINT_LINES_PER_EVALUATION: u32 = 8;
/// Characters of one printed line; the rest is cut.
pub const PRINT_LINE_CHARS: usize = 200;

/// Errors when the running evaluation is past its wall-clock budget. Host helpers that
/// can take long (regular expressions, word lists over long texts) call it, since the
/// engine checks the clock only between its own operations.
pub fn check_deadline() -> Result<(), Box<EvalAltResult>> {
    let late = DEADLINE.with(|d| d.get().is_some_and(|deadline| Instant::now() > deadline));
    if late { Err("script stopped: wall-clock budget exceeded".into()) } else { Ok(()) }
}

/// Starts an evaluation's budgets on this thread.
fn begin(limits: &Limits) {
    DEADLINE.with(|d| d.set(Some(Instant::now() + limits.wall_clock)));
    PRINT_BUDGET.with(|b| b.set(PRINT_LINES_PER_EVALUATION));
}

fn end() {
    DEADLINE.with(|d| d.set(None));
}

/// Whether one more line may be printed; the line cut to [`PRINT_LINE_CHARS`].
fn printable(text: &str) -> Option<String> {
    let left = PRINT_BUDGET.with(|b| b.get());
    if left == 0 {
        return None;
    }
    PRINT_BUDGET.with(|b| b.set(left - 1));
    let mut line: String = text.chars().take(PRINT_LINE_CHARS).collect();
    if line.len() < text.len() {
        line.push('…');
    }
    Some(line)
}

/// Builds the sandboxed engine.
pub fn sandboxed_engine(limits: &Limits) -> Engine {
    let mut engine = Engine::new_raw();
    engine.register_global_module(StandardPackage::new().as_shared_module());
    engine.disable_symbol("eval");
    // No modules from disk: `import` is refused when the script is compiled.
    engine.disable_symbol("import");
    engine.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
    engine.set_max_operations(limits.max_operations);
    engine.set_max_call_levels(limits.max_call_levels);
    engine.set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth);
    engine.set_max_string_size(limits.max_string_size);
    engine.set_max_array_size(limits.max_array_size);
    engine.set_max_map_size(limits.max_map_size);
    engine.set_max_variables(limits.max_variables);
    engine.set_max_functions(limits.max_functions);
    engine.set_strict_variables(true);
    // Shadow the standard package's exact signatures; a looser one would lose to them.
    engine.register_fn("sleep", |_: rhai::INT| -> Result<(), Box<EvalAltResult>> { Err(SLEEP_REFUSED.into()) });
    engine.register_fn("sleep", |_: rhai::FLOAT| -> Result<(), Box<EvalAltResult>> { Err(SLEEP_REFUSED.into()) });
    engine.on_progress(|ops| {
        if ops % 64 == 0 {
            let late = DEADLINE.with(|d| d.get().is_some_and(|deadline| Instant::now() > deadline));
            if late {
                return Some(Dynamic::from("wall-clock budget exceeded"));
            }
        }
        None
    });
    engine.on_print(|text| {
        if let Some(line) = printable(text) {
            tracing::info!(target: "casebridge::script", "{line}")
        }
    });
    engine.on_debug(|text, source, pos| {
        if let Some(line) = printable(text) {
            tracing::debug!(target: "casebridge::script", source = source.unwrap_or(""), line = pos.line(), "{line}")
        }
    });
    engine
}

/// A script error with where it happened, for admins.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ScriptError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// The script function the error happened in, if any (line and column are then in
    /// that function's script).
    pub function: Option<String>,
}

impl ScriptError {
    fn from_eval(file: &str, err: &EvalAltResult) -> ScriptError {
        // An error inside a script function is placed in that function's file.
        let mut file = file;
        let mut err = err;
        let mut function = None;
        while let EvalAltResult::ErrorInFunctionCall(name, source, inner, _) = err {
            if !source.is_empty() {
                file = source;
            }
            function = Some(name.clone());
            err = inner;
        }
        let pos = err.position();
        let message = match err {
            EvalAltResult::ErrorTerminated(reason, _) => format!("script stopped: {reason}"),
            EvalAltResult::ErrorTooManyOperations(_) => "script stopped: too many operations (an endless loop?)".into(),
            other => other.to_string(),
        };
        ScriptError {
            file: file.to_string(),
            line: pos.line().unwrap_or(0),
            column: pos.position().unwrap_or(0),
            message,
            function,
        }
    }
}

/// Compiles a script file, naming it in every later error.
pub fn compile_file(engine: &Engine, path: &Path) -> Result<AST, ScriptError> {
    let file = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|e| ScriptError {
        file: file.clone(),
        line: 0,
        column: 0,
        message: format!("cannot read: {e}"),
        function: None,
    })?;
    compile(engine, &source, &file)
}

/// Compiles script text; `file` names it in errors.
pub fn compile(engine: &Engine, source: &str, file: &str) -> Result<AST, ScriptError> {
    let mut ast = engine.compile(source).map_err(|e| {
        let pos = e.position();
        ScriptError {
            file: file.to_string(),
            line: pos.line().unwrap_or(0),
            column: pos.position().unwrap_or(0),
            message: e.err_type().to_string(),
            function: None,
        }
    })?;
    ast.set_source(file);
    Ok(ast)
}

/// Whether the script defines `name` with `arity` parameters.
pub fn defines(ast: &AST, name: &str, arity: usize) -> bool {
    ast.iter_functions().any(|f| f.name == name && f.params.len() == arity)
}

/// Calls a function of a compiled script within the limits, without re-running the
/// script's top-level statements.
pub fn call(
    engine: &Engine,
    ast: &AST,
    limits: &Limits,
    name: &str,
    args: impl rhai::FuncArgs,
) -> Result<Dynamic, ScriptError> {
    let file = ast.source().unwrap_or("script").to_string();
    begin(limits);
    let mut scope = Scope::new();
    let result =
        engine.call_fn_with_options::<Dynamic>(CallFnOptions::new().eval_ast(false), &mut scope, ast, name, args);
    end();
    result.map_err(|e| ScriptError::from_eval(&file, &e))
}

/// Evaluates a compiled expression (merged with the rule set's functions) within the
/// limits, with the given variables in scope.
pub fn eval(engine: &Engine, ast: &AST, limits: &Limits, scope: &mut Scope) -> Result<Dynamic, ScriptError> {
    let file = ast.source().unwrap_or("expression").to_string();
    begin(limits);
    let result = engine.eval_ast_with_scope::<Dynamic>(scope, ast);
    end();
    result.map_err(|e| ScriptError::from_eval(&file, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(source: &str, limits: Limits) -> Result<Dynamic, ScriptError> {
        let engine = sandboxed_engine(&limits);
        let ast = compile(&engine, source, "test.rhai")?;
        call(&engine, &ast, &limits, "f", ())
    }

    #[test]
    fn endless_loops_are_stopped() {
        let e = run("fn f() { loop { } }", Limits::default()).unwrap_err();
        assert!(e.message.contains("too many operations"), "{e}");
        let limits =
            Limits { max_operations: u64::MAX / 2, wall_clock: Duration::from_millis(50), ..Limits::default() };
        let started = Instant::now();
        let e = run("fn f() { let x = 0; loop { x += 1; } }", limits).unwrap_err();
        assert!(e.message.contains("wall-clock"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn huge_strings_and_sandbox_escapes_are_refused() {
        let e = run(r#"fn f() { let s = "x"; loop { s += s; } }"#, Limits::default()).unwrap_err();
        assert!(e.message.to_lowercase().contains("length") || e.message.contains("too large"), "{e}");
        assert!(run(r#"fn f() { eval("1") }"#, Limits::default()).is_err());
        assert!(run(r#"import "secrets" as s; fn f() { 1 }"#, Limits::default()).is_err());
        let started = Instant::now();
        assert!(run("fn f() { sleep(10) }", Limits::default()).unwrap_err().message.contains("sleep"));
        assert!(run("fn f() { sleep(1.5) }", Limits::default()).unwrap_err().message.contains("sleep"));
        assert!(started.elapsed() < Duration::from_secs(1), "nothing slept");
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let engine = sandboxed_engine(&Limits::default());
        let e = compile(&engine, "fn f() {\n  let x = ;\n}", "rules/x.rhai").unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("rules/x.rhai", 2));
        let e = run("fn f() {\n  undefined_thing\n}", Limits::default()).unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }
}
