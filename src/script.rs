//! The Rhai sandbox every admin script runs in: one function builds the engine for
//! production and tests alike.
//!
//! Scripts get the language and its standard library, nothing else: no file, network,
//! environment or process access, no `eval`, no `import` of files, and `sleep` is shadowed
//! (it is not bounded by the operation limit). Every evaluation is bounded in operations,
//! call depth, expression depth, variables, string, array and map sizes, the memory it
//! holds (counted by [`crate::alloc_meter`], checked after every operation), and wall-clock
//! time; the evaluations of one decision share a second, longer deadline
//! ([`DecisionBudget`]). Host helpers check the same budgets ([`check_budget`]); built-in
//! calls that could build a huge value in one step (`replace`) are shadowed by versions
//! that refuse before building it; `print`/`debug` reach the log only a few short lines at
//! a time. A script that loops forever or builds a huge value is stopped with a clear error.
//!
//! The worst case of one evaluation, whatever the script: `max_memory` plus one value
//! (the largest one operation makes: a 256 KiB string or a 4,096-item array), and the
//! wall-clock budget plus one host call; of one decision, its budget plus one host call.

use std::cell::Cell;
use std::path::Path;
use std::time::{Duration, Instant};

use rhai::packages::{Package, StandardPackage};
use rhai::{AST, CallFnOptions, Dynamic, Engine, EvalAltResult, ImmutableString, Scope};

use crate::alloc_meter;

/// Limits applied to every evaluation.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_operations: u64,
    pub max_call_levels: usize,
    pub max_expr_depth: usize,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    /// Variables alive at once in one function of one evaluation.
    pub max_variables: usize,
    /// Functions one script may define.
    pub max_functions: usize,
    /// Bytes one evaluation may hold (all its values, at every call level, keys included).
    pub max_memory: usize,
    pub wall_clock: Duration,
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
            max_memory: 32 << 20,
            wall_clock: Duration::from_millis(250),
        }
    }
}

/// The wall-clock time all the rule evaluations of one decision may take together.
pub const DECISION_WALL_CLOCK: Duration = Duration::from_secs(1);

const SLEEP_REFUSED: &str = "sleep() is not available in casebridge scripts";

/// The budgets of the evaluation running on a thread.
#[derive(Debug, Clone, Copy)]
struct Running {
    deadline: Instant,
    /// Whether the deadline is the decision's (it came before the evaluation's own).
    decision_deadline: bool,
    wall_clock: Duration,
    held_at_start: isize,
    max_memory: usize,
}

thread_local! {
    /// The budgets of the evaluation running on this thread.
    static RUNNING: Cell<Option<Running>> = const { Cell::new(None) };
    /// The deadline of the decision whose rules run on this thread.
    static DECISION_DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// Lines `print`/`debug` may still write in the evaluation running on this thread.
    static PRINT_BUDGET: Cell<u32> = const { Cell::new(0) };
}

/// Lines one evaluation may print; more are dropped.
pub const PRINT_LINES_PER_EVALUATION: u32 = 8;
/// Characters of one printed line; the rest is cut.
pub const PRINT_LINE_CHARS: usize = 200;

/// Why the running evaluation must stop, if it must. The clock is read only when asked:
/// reading it after every operation would cost more than the operations.
fn over_budget(read_clock: bool) -> Option<String> {
    let running = RUNNING.with(Cell::get)?;
    let held = alloc_meter::held_by_this_thread().saturating_sub(running.held_at_start);
    if held > running.max_memory as isize {
        return Some(format!("it holds more than {} MiB of memory", running.max_memory >> 20));
    }
    if read_clock && Instant::now() > running.deadline {
        return Some(late(running.decision_deadline, running.wall_clock));
    }
    None
}

fn late(decision_deadline: bool, wall_clock: Duration) -> String {
    if decision_deadline {
        format!("wall-clock budget of the decision exceeded ({} ms for all its rules)", DECISION_WALL_CLOCK.as_millis())
    } else {
        format!("wall-clock budget exceeded ({} ms an evaluation)", wall_clock.as_millis())
    }
}

/// Errors when the running evaluation is past its wall-clock budget or holds too much
/// memory. Host helpers that can take long (regular expressions, word lists over long
/// texts) call it, since the engine checks only between its own operations.
pub fn check_budget() -> Result<(), Box<EvalAltResult>> {
    match over_budget(true) {
        Some(why) => Err(format!("script stopped: {why}").into()),
        None => Ok(()),
    }
}

/// The wall-clock time the rule evaluations of one decision share. Rules run in several
/// steps with the agent's answer between them (on whichever thread the runtime picks), so
/// the budget is spent step by step: [`DecisionBudget::spend`] runs one step against what
/// is left.
#[derive(Debug)]
pub struct DecisionBudget {
    left: Duration,
}

impl Default for DecisionBudget {
    fn default() -> Self {
        DecisionBudget { left: DECISION_WALL_CLOCK }
    }
}

impl DecisionBudget {
    /// Runs `step` (rule evaluations on this thread) within what is left of the budget.
    pub fn spend<T>(&mut self, step: impl FnOnce() -> T) -> T {
        /// Puts back the deadline that was set before, even if the step panics.
        struct Restore(Option<Instant>);
        impl Drop for Restore {
            fn drop(&mut self) {
                DECISION_DEADLINE.with(|d| d.set(self.0));
            }
        }
        let started = Instant::now();
        let _restore = Restore(DECISION_DEADLINE.with(|d| d.replace(Some(started + self.left))));
        let out = step();
        self.left = self.left.saturating_sub(started.elapsed());
        out
    }
}

/// Starts an evaluation's budgets on this thread; they end when the guard drops, and the
/// budgets of an evaluation running around this one (if any) come back. An evaluation
/// started after its decision's deadline is refused.
fn begin(limits: &Limits, file: &str) -> Result<EvaluationGuard, ScriptError> {
    let now = Instant::now();
    let own = now + limits.wall_clock;
    let decision = DECISION_DEADLINE.with(Cell::get);
    let (deadline, decision_deadline) = match decision {
        Some(d) if d < own => (d, true),
        _ => (own, false),
    };
    if now > deadline {
        return Err(ScriptError {
            file: file.to_string(),
            line: 0,
            column: 0,
            message: format!("script stopped: {}", late(decision_deadline, limits.wall_clock)),
            function: None,
        });
    }
    let running = Running {
        deadline,
        decision_deadline,
        wall_clock: limits.wall_clock,
        held_at_start: alloc_meter::held_by_this_thread(),
        max_memory: limits.max_memory,
    };
    let previous = RUNNING.with(|r| r.replace(Some(running)));
    let print_budget = PRINT_BUDGET.with(|b| b.replace(PRINT_LINES_PER_EVALUATION));
    Ok(EvaluationGuard { previous, print_budget })
}

struct EvaluationGuard {
    previous: Option<Running>,
    print_budget: u32,
}

impl Drop for EvaluationGuard {
    fn drop(&mut self) {
        RUNNING.with(|r| r.set(self.previous));
        if self.previous.is_some() {
            PRINT_BUDGET.with(|b| b.set(self.print_budget));
        }
    }
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

/// `replace` as the standard library has it, but refused before building a result longer
/// than `max` bytes: the standard one builds the whole result first (a 256 KiB text with
/// every character replaced by 256 KiB is 64 GiB), and the size check comes after.
fn bounded_replace(string: &mut ImmutableString, find: &str, with: &str, max: usize) -> Result<(), Box<EvalAltResult>> {
    if string.is_empty() {
        return Ok(());
    }
    let found = if find.is_empty() { string.chars().count() + 1 } else { string.matches(find).count() };
    let length = (string.len() - found * find.len()).saturating_add(found.saturating_mul(with.len()));
    if length > max {
        return Err(Box::new(EvalAltResult::ErrorDataTooLarge("Length of string".into(), rhai::Position::NONE)));
    }
    *string = string.replace(find, with).into();
    Ok(())
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
    // The clock every 64 operations; the memory count (a thread-local read) after each.
    engine.on_progress(|ops| over_budget(ops % 64 == 0).map(Dynamic::from));
    let max = limits.max_string_size;
    engine.register_fn("replace", move |s: &mut ImmutableString, find: &str, with: &str| {
        bounded_replace(s, find, with, max)
    });
    engine.register_fn("replace", move |s: &mut ImmutableString, find: char, with: &str| {
        bounded_replace(s, find.encode_utf8(&mut [0; 4]), with, max)
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
    let file = ast.source().unwrap_or("script");
    let _running = begin(limits, file)?;
    let mut scope = Scope::new();
    engine
        .call_fn_with_options::<Dynamic>(CallFnOptions::new().eval_ast(false), &mut scope, ast, name, args)
        .map_err(|e| ScriptError::from_eval(file, &e))
}

/// Evaluates a compiled expression (merged with the rule set's functions) within the
/// limits, with the given variables in scope.
pub fn eval(engine: &Engine, ast: &AST, limits: &Limits, scope: &mut Scope) -> Result<Dynamic, ScriptError> {
    let file = ast.source().unwrap_or("expression");
    let _running = begin(limits, file)?;
    engine.eval_ast_with_scope::<Dynamic>(scope, ast).map_err(|e| ScriptError::from_eval(file, &e))
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
    fn memory_is_bounded_across_call_levels_and_in_map_keys() {
        // 62 distinct 256 KiB strings at each of 32 call levels: each level is within the
        // variable limit, the evaluation is not.
        let strings: String = (0..62).map(|i| format!("let s{i} = s + \"{i}\";\n")).collect();
        let levels = format!(
            "fn level(n, s) {{\n{strings} level(n + 1, s) }}\nfn f() {{ let s = \"x\"; while s.len() < 100000 {{ s += s; }} level(0, s) }}"
        );
        let e = run(&levels, Limits::default()).unwrap_err();
        assert!(e.message.contains("holds more than 32 MiB"), "{e}");
        // Map keys are not counted by Rhai's size limits; they are memory.
        let keys = "fn f() { let s = \"x\"; while s.len() < 100000 { s += s; } let m = #{}; for i in 0..4096 { m[`${i}` + s] = i; } m.len() }";
        let e = run(keys, Limits::default()).unwrap_err();
        assert!(e.message.contains("holds more than 32 MiB"), "{e}");
        // What an evaluation held is its own: the next one starts from nothing.
        assert_eq!(
            run("fn f() { let s = \"x\"; while s.len() < 100000 { s += s; } s.len() }", Limits::default())
                .unwrap()
                .as_int()
                .unwrap(),
            131_072
        );
    }

    #[test]
    fn replace_refuses_before_building_a_huge_text() {
        let big = "let s = \"x\"; while s.len() < 200000 { s += s; }";
        for call in ["s.replace(\"x\", s)", "s.replace('x', s)", "s.replace(\"\", \"yy\")"] {
            let held_before = alloc_meter::held_by_this_thread();
            let e = run(&format!("fn f() {{ {big} {call}; s.len() }}"), Limits::default()).unwrap_err();
            assert!(e.message.contains("too large"), "{call}: {e}");
            assert!(alloc_meter::held_by_this_thread() - held_before < 4 << 20, "{call} built its result");
        }
        // Replacing within the size limit works as the standard library's does.
        let ok =
            run("fn f() { let s = \"a-b-c\"; s.replace(\"-\", \"--\"); s.replace('a', \"A\"); s }", Limits::default());
        assert_eq!(ok.unwrap().into_string().unwrap(), "A--b--c");
    }

    #[test]
    fn the_evaluations_of_one_decision_share_its_budget() {
        let limits = Limits { max_operations: u64::MAX / 2, ..Limits::default() };
        let engine = sandboxed_engine(&limits);
        let ast =
            compile(&engine, "fn f() { let t = timestamp(); while t.elapsed < 0.2 { } false }", "t.rhai").unwrap();
        let mut budget = DecisionBudget::default();
        let started = Instant::now();
        let errors: Vec<String> = budget
            .spend(|| (0..20).filter_map(|_| call(&engine, &ast, &limits, "f", ()).err().map(|e| e.message)).collect());
        let elapsed = started.elapsed();
        // About five evaluations fit in one second; the rest are refused at once.
        assert!(elapsed < DECISION_WALL_CLOCK + Duration::from_millis(500), "{elapsed:?}");
        assert!(errors.len() >= 14, "{errors:?}");
        assert!(errors.iter().all(|e| e.contains("of the decision")), "{errors:?}");
        // Outside a decision each evaluation has its own budget again.
        assert!(call(&engine, &ast, &limits, "f", ()).is_ok());
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
