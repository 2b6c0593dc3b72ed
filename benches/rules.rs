//! Rule engine benchmarks (run with `cargo bench --bench rules`; figures go in docs/benchmarks.md):
//!
//! 1. Decisions per second on one core through the shipped rule set, the agent excluded
//!    (a fixed answer), over the shipped fixtures; and the 99th-percentile decision time;
//!    beside the same rules run through Rhai directly ([`lean`]), and the ratio of the two.
//! 2. Reload latency: from a rule file being written (by rename, as editors save) to the new
//!    rule set being active, with the debounce `casebridge run` uses; and the load alone.
//! 3. `worst`: the worst case of one decision whatever the rule set: adversarial scripts
//!    (the most data a script can hold in variables, arrays, maps and map keys, recursion to
//!    the call limit, `matches()` and `contains_any` over long texts, a one-call string
//!    blow-up, many rules each just under the deadline), each in a fresh process (this bench
//!    run again with `--attack NAME`), with the decision's wall-clock time and the process's
//!    peak resident memory growth (VmHWM, reset through `/proc/self/clear_refs` just before
//!    the decision).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "rules/lean.rs"]
mod lean;

use casebridge::agent::Agent;

use casebridge::decide;
use casebridge::model::AgentAnswer;
use casebridge::rules::RuleSet;
use casebridge::rules::testing::load_fixture;
use casebridge::rules::watch::{Reloader, watch};
use casebridge::script::Limits;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `decide` over the fixtures in turn, `n` times: decisions a second and each time.
fn measure(n: usize, mut decide: impl FnMut(usize)) -> (f64, Vec<Duration>) {
    let mut times = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        decide(i);
        times.push(t.elapsed());
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    times.sort();
    (rate, times)
}

/// The output of a future that is ready at its first poll, as `decide` is with a fixed
/// answer: the daemon awaits it inside a task, so a runtime's `block_on` around every
/// decision would measure the runtime, not the decision.
fn ready<T>(future: impl std::future::Future<Output = T>) -> T {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
        std::task::Poll::Ready(out) => out,
        std::task::Poll::Pending => panic!("a decision with a fixed answer waits for nothing"),
    }
}

fn decisions() {
    let rules = RuleSet::load(&root().join("rules")).unwrap();
    let lean = lean::Lean::load(&root().join("rules"));
    let fixtures: Vec<_> = ["billing-question", "asks-for-human", "email-firmware", "high-priority"]
        .iter()
        .map(|f| load_fixture(&root().join(format!("rules/tests/fixtures/{f}.json"))).unwrap())
        .collect();
    let answer = AgentAnswer::answered(
        "fixed",
        "You can download past invoices from the customer portal.".into(),
        0.8,
        Vec::new(),
    );
    let agent = Agent::Fixed(answer.clone());
    // Short rounds, many of them: this machine is shared, and the best round of each is the
    // one least disturbed.
    let (n, rounds) = (10_000, 5);
    let mut evaluations = 0;
    let mut casebridge = |i: usize| {
        let d = ready(decide::decide(&rules, &agent, &fixtures[i % fixtures.len()])).unwrap();
        evaluations += d.trace.0.len();
        std::hint::black_box(d);
    };
    let mut lean_decision = |i: usize| {
        std::hint::black_box(lean.decide(&fixtures[i % fixtures.len()], &answer));
    };
    // Warm up both, then alternate rounds so that neither gets the quieter moments.
    measure(1_000, &mut casebridge);
    measure(1_000, &mut lean_decision);
    let (mut ours, mut theirs) = ((0.0, Vec::new()), (0.0, Vec::new()));
    for _ in 0..rounds {
        let round = measure(n, &mut casebridge);
        if round.0 > ours.0 {
            ours = round;
        }
        let round = measure(n, &mut lean_decision);
        if round.0 > theirs.0 {
            theirs = round;
        }
    }
    let p = |times: &[Duration], q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    let per_decision = evaluations as f64 / (n as f64 * rounds as f64 + 1_000.0);
    println!(
        "decisions through the shipped rule set (one core, agent excluded, best of {rounds} rounds of {n}): {:.0} decisions/s = {:.0} rule evaluations/s ({per_decision:.1} a decision); p50 {:?}, p99 {:?}, max {:?}",
        ours.0,
        ours.0 * per_decision,
        p(&ours.1, 0.50),
        p(&ours.1, 0.99),
        ours.1[ours.1.len() - 1]
    );
    println!(
        "the same rules through Rhai directly (benches/rules/lean.rs: one scope a decision, no trace): {:.0} decisions/s; p50 {:?}, p99 {:?}",
        theirs.0,
        p(&theirs.1, 0.50),
        p(&theirs.1, 0.99)
    );
    println!("casebridge / lean Rhai: {:.2}", ours.0 / theirs.0);
}

fn reload() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    for f in [
        "mappings.yaml",
        "handover.yaml",
        "topics.yaml",
        "email.yaml",
        "templates/reply.txt.hbs",
        "templates/reply.html.hbs",
    ] {
        let to = rules.join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(root().join("rules").join(f), to).unwrap();
    }
    let loads: Vec<Duration> = (0..20)
        .map(|_| {
            let t = Instant::now();
            RuleSet::load(&rules).unwrap();
            t.elapsed()
        })
        .collect();
    let set = RuleSet::load(&rules).unwrap();
    let hash = set.hash.clone();
    let shared = decide::shared(Box::new(set));
    let reloader = Arc::new(Reloader::new(&rules, shared, hash, Limits::default()));
    let _watcher = watch(reloader.clone(), Duration::from_millis(250), Duration::from_secs(3600)).unwrap();
    let mut latencies = Vec::new();
    for i in 0..10 {
        let before = reloader.status().active;
        let text =
            std::fs::read_to_string(root().join("rules/topics.yaml")).unwrap() + format!("# edit {i}\n").as_str();
        let tmp = rules.join(".topics.yaml.tmp");
        std::fs::write(&tmp, text).unwrap();
        let t = Instant::now();
        std::fs::rename(&tmp, rules.join("topics.yaml")).unwrap();
        while reloader.status().active == before {
            assert!(t.elapsed() < Duration::from_secs(10), "no reload");
            std::thread::sleep(Duration::from_millis(1));
        }
        latencies.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(300));
    }
    latencies.sort();
    let mut sorted_loads = loads.clone();
    sorted_loads.sort();
    println!(
        "reload latency, file saved → new rule set active (250 ms debounce, as in `casebridge run`): median {:?}, max {:?}; loading and compiling the rule set alone: median {:?}",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
        sorted_loads[sorted_loads.len() / 2]
    );
}

/// Builds a 256 KiB string of `x` in a script variable `s` (the longest string allowed).
const LONGEST: &str = "let s = \"x\"; while s.len() < 262144 { s += s; }";

/// Builds a string of `len` (131,073 to 262,144) bytes of `x` in a script variable `s`.
fn text_of(len: usize) -> String {
    format!("let s = \"x\"; while s.len() < 131072 {{ s += s; }} s += s.sub_string({});", 262_144 - len)
}

/// Script lines declaring `vars` variables `v1`… each a distinct 256 KiB string: a digit
/// and `s` (262,143 bytes), a new allocation each, copied at memory speed.
fn strings(vars: usize) -> String {
    (1..=vars).map(|i| format!("let v{i} = \"{}\" + s;\n", i % 10)).collect()
}

/// A 262,143-byte text `s` of 4,096 pieces of 63 bytes (62 `x` and `last`) separated by
/// commas: `s.split(",")` makes it an array of 4,096 distinct strings holding 258,048 bytes
/// of text, as much as one value may hold.
fn pieces(last: char) -> String {
    format!("let u = \"{}{last},\"; let s = u; while s.len() < 262144 {{ s += s; }} s.crop(0, 262143);", "x".repeat(62))
}

/// An adversarial rule set: a script, and the rules that call it.
struct Attack {
    name: &'static str,
    what: &'static str,
    script: String,
    /// `handover.yaml` (one rule, `when: attack()`), or `topics.yaml` with this many topics
    /// each `when: attack()`.
    topics: usize,
    /// An address-space limit for the process (bytes), so that an attack meant to exhaust
    /// memory stops at it instead of taking the machine.
    address_space: Option<u64>,
}

fn attacks() -> Vec<Attack> {
    // Words of 62 `x` and a `y`, over a text of `x`: a near miss at every position.
    let near_misses = pieces('y');
    let pieces = pieces('x');
    let a = |name, what, script: String| Attack { name, what, script, topics: 0, address_space: None };
    vec![
        a(
            "strings_64_variables",
            "64 variables each a distinct 256 KiB string, in one function",
            format!("fn attack() {{ {}\n{}false }}", text_of(262_143), strings(63)),
        ),
        a(
            "strings_64_variables_each_call_level",
            "recursion to the call limit, each level holding 62 distinct 256 KiB strings (64 variables with its 2 parameters)",
            format!(
                "fn level(n, s) {{\n{}level(n + 1, s) }}\nfn attack() {{ {} level(0, s) }}",
                strings(62),
                text_of(262_143)
            ),
        ),
        a(
            "arrays_of_4096_strings_62_variables",
            "62 arrays of 4,096 distinct strings (258,048 bytes of text each, the most one value may hold)",
            format!(
                "fn attack() {{ {pieces}\n{}false }}",
                (1..=62).map(|i| format!("let a{i} = s.split(\",\");\n")).collect::<String>()
            ),
        ),
        a(
            "arrays_of_4096_strings_each_call_level",
            "recursion to the call limit, each level holding 62 such arrays",
            format!(
                "fn level(n, s) {{\n{}level(n + 1, s) }}\nfn attack() {{ {pieces} level(0, s) }}",
                (1..=62).map(|i| format!("let a{i} = s.split(\",\");\n")).collect::<String>()
            ),
        ),
        a(
            "maps_of_4096_entries",
            "maps of 4,096 entries (about 70-byte keys, 63-byte values), as many as the operation limit lets a script fill",
            format!(
                "fn attack() {{ {pieces} let p = s.split(\",\");\n{}false }}",
                (1..=60)
                    .map(|i| format!("let m{i} = #{{}}; for (k, i) in p {{ m{i}[`{i}.${{i}}.` + k] = k; }}\n"))
                    .collect::<String>()
            ),
        ),
        a(
            "map_keys_of_256_kib",
            "one map whose 4,096 keys are distinct 256 KiB strings (the limits count map values, not keys)",
            format!("fn attack() {{ {} let m = #{{}}; for i in 0..4096 {{ m[`${{i}}` + s] = i; }} false }}", text_of(262_140)),
        ),
        a(
            "recursion_to_the_call_limit",
            "a function calling itself until the call limit",
            "fn down(n) { down(n + 1) }\nfn attack() { down(0) }".into(),
        ),
        a(
            "matches_in_a_loop_over_256_kib",
            "matches(s, \"a.*z\") in a loop over a 256 KiB text",
            "fn attack() { let s = \"ab\"; while s.len() < 262144 { s += s; } for i in 0..100000 { matches(s, \"a.*z\"); } false }".into(),
        ),
        a(
            "matches_one_call_worst_pattern",
            "one matches() call: the pattern (?s:.){1,450}a(?s:.){1,450}zz (31 characters, under the 1 MiB compiled limit) over a 196,608-byte text of \"éa\"",
            format!("fn attack() {{ let s = \"éa\"; while s.len() < 131072 {{ s += s; }} matches(s, \"{WORST_PATTERN}\") }}"),
        ),
        a(
            "matches_worst_pattern_in_a_loop",
            "the same call in a loop",
            format!("fn attack() {{ let s = \"éa\"; while s.len() < 131072 {{ s += s; }} for i in 0..1000 {{ matches(s, \"{WORST_PATTERN}\"); }} false }}"),
        ),
        a(
            "matches_pattern_the_dfa_gives_up_on",
            "matches() in a loop: the pattern (?s:.){1,800}a(?s:.){1,800}zz over a 196,608-byte text of \"éa\" (the lazy DFA gives up from its second search)",
            format!("fn attack() {{ let s = \"éa\"; while s.len() < 131072 {{ s += s; }} for i in 0..1000 {{ matches(s, \"{GIVES_UP_PATTERN}\"); }} false }}"),
        ),
        a(
            "contains_any_4096_words_once",
            "one contains_any call: 4,096 words of 63 bytes, none present, over a 256 KiB text",
            format!(
                "fn attack() {{ {near_misses} let w = s.split(\",\"); let t = \"x\"; while t.len() < 262144 {{ t += t; }} contains_any(t, w) }}"
            ),
        ),
        a(
            "contains_any_4096_words_in_a_loop",
            "the same call in a loop",
            format!(
                "fn attack() {{ {near_misses} let w = s.split(\",\"); let t = \"x\"; while t.len() < 262144 {{ t += t; }} for n in 0..1000 {{ contains_any(t, w); }} false }}"
            ),
        ),
        a(
            "replace_one_call_1_gib",
            "one built-in call, s.replace(\"x\", t), a 256 KiB s and a 4 KiB t: a 1 GiB string before the size check",
            format!("fn attack() {{ {LONGEST} let t = s.sub_string(0, 4096); s.replace(\"x\", t); false }}"),
        ),
        Attack {
            address_space: Some(4 << 30),
            ..a(
                "replace_one_call_64_gib",
                "the same with a 256 KiB t (a 64 GiB string), the process limited to 4 GiB of address space",
                format!("fn attack() {{ {LONGEST} let t = s; s.replace(\"x\", t); false }}"),
            )
        },
        Attack {
            topics: 40,
            ..a(
                "40_rules_each_just_under_the_deadline",
                "40 topic conditions, each busy for 230 ms (timestamp(), 256 KiB copies) and then false",
                format!(
                    "fn attack() {{ let t = timestamp(); {} while t.elapsed < 0.23 {{ let c = \"1\" + s; }} false }}",
                    text_of(262_143)
                ),
            )
        },
    ]
}

/// A pattern for `matches()` within its limits that is slow for the regex crate on a long
/// text with a two-byte character (found by trying: its lazy DFA gives up, and the
/// fallback runs in time proportional to the pattern's size times the text's).
const WORST_PATTERN: &str = "(?s:.){1,450}a(?s:.){1,450}zz";

/// A pattern that makes the lazy DFA give up over that text, even with a 2 MiB cache.
const GIVES_UP_PATTERN: &str = "(?s:.){1,800}a(?s:.){1,800}zz";

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// Runs one attack in this process (a fresh one) and prints its line.
fn attack(name: &str) {
    let attack = attacks().into_iter().find(|a| a.name == name).expect("no such attack");
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    copy(&root().join("rules"), &rules);
    std::fs::write(rules.join("attack.rhai"), &attack.script).unwrap();
    if attack.topics > 0 {
        let topics: String = (0..attack.topics).map(|i| format!("  - name: attack{i}\n    when: attack()\n")).collect();
        std::fs::write(rules.join("topics.yaml"), format!("kind: topics\ntopics:\n{topics}")).unwrap();
    } else {
        std::fs::write(
            rules.join("handover.yaml"),
            "kind: handover\nrules:\n  - name: attack\n    when: attack()\n    reason: r\n",
        )
        .unwrap();
    }
    let set = RuleSet::load(&rules).unwrap_or_else(|e| panic!("{}", e[0]));
    let conversation = load_fixture(&root().join("rules/tests/fixtures/billing-question.json")).unwrap();
    let agent = Agent::Fixed(AgentAnswer::cannot_help("fixed", 0.0, "unused"));
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    if let Some(bytes) = attack.address_space {
        let limit = libc::rlimit { rlim_cur: bytes, rlim_max: bytes };
        // SAFETY: setrlimit with a valid struct; it only lowers this process's own limit.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
    }
    // The peak so far forgotten: VmHWM restarts from the current RSS (Linux 4.0+).
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let (rss, hwm) = (status_kib("VmRSS:"), status_kib("VmHWM:"));
    let started = Instant::now();
    let decision = runtime.block_on(decide::decide(&set, &agent, &conversation)).unwrap();
    let elapsed = started.elapsed();
    let peak = status_kib("VmHWM:");
    let error = decision
        .trace
        .0
        .iter()
        .find(|t| t.stage == casebridge::model::TraceStage::Error)
        .map(|t| t.detail.clone())
        .unwrap_or_default();
    // Paths made relative to the temporary rules folder.
    let error = error.split_once("/rules/").map_or(error.as_str(), |(_, rest)| rest);
    let error: String = error.chars().take(110).collect();
    let evaluations = decision.trace.0.len();
    println!(
        "{:<40} {:>9.1} ms  peak RSS +{:>7.1} MiB{}  ({evaluations} trace entries) {error}",
        attack.name,
        elapsed.as_secs_f64() * 1000.0,
        peak.saturating_sub(rss) as f64 / 1024.0,
        if reset { String::new() } else { format!(" (VmHWM not reset: {hwm} KiB before)") },
    );
    if name.starts_with("matches_one_call_worst") {
        // The same search alone, call after call: as `matches()` runs it (rules/pattern.rs),
        // and as the regex crate runs it with a 1 MiB lazy-DFA cache (what `matches()` did).
        let text = "éa".repeat(65_536);
        let time = |search: &dyn Fn() -> String| -> String {
            let calls: Vec<String> = (0..8)
                .map(|_| {
                    let t = Instant::now();
                    let outcome = search();
                    format!("{:.0}{outcome}", t.elapsed().as_secs_f64() * 1000.0)
                })
                .collect();
            calls.join(", ")
        };
        let ours = casebridge::rules::pattern::Pattern::new(WORST_PATTERN).unwrap();
        let ours = time(&|| if ours.is_match(&text).is_ok() { String::new() } else { " (refused)".into() });
        let crate_re =
            regex::RegexBuilder::new(WORST_PATTERN).size_limit(1 << 20).dfa_size_limit(1 << 20).build().unwrap();
        let crate_re = time(&|| {
            std::hint::black_box(crate_re.is_match(&text));
            String::new()
        });
        println!("(the same search outside Rhai, 8 calls in a row, ms: matches() {ours}; the regex crate {crate_re})");
    }
}

/// Each attack in a fresh process; one that kills its process is reported as such.
fn worst_cases() {
    let exe = std::env::current_exe().unwrap();
    println!(
        "worst case of one decision, each attack in a fresh process (decision time, peak RSS growth during it, the error the trace shows):"
    );
    for a in attacks() {
        println!("  # {}: {}", a.name, a.what);
        let started = Instant::now();
        let out = std::process::Command::new(&exe).args(["--attack", a.name]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if out.status.success() {
            for line in stdout.lines() {
                println!("  {line}");
            }
        } else {
            use std::os::unix::process::ExitStatusExt;
            let stderr = String::from_utf8_lossy(&out.stderr);
            println!(
                "  {:<40} the process died after {:.1} s ({}): {}",
                a.name,
                started.elapsed().as_secs_f64(),
                out.status.signal().map_or_else(|| out.status.to_string(), |s| format!("signal {s}")),
                stderr.lines().find(|l| l.contains("memory allocation")).or(stderr.lines().last()).unwrap_or_default()
            );
        }
    }
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() { copy(&e.path(), &target) } else { std::fs::copy(e.path(), target).map(|_| ()).unwrap() }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--attack") {
        attack(&args[i + 1]);
        return;
    }
    let filter: Option<&String> = args.iter().find(|a| !a.starts_with('-'));
    let run = |name: &str| filter.is_none_or(|f| name.contains(f.as_str()));
    if run("decisions") {
        decisions();
    }
    if run("reload") {
        reload();
    }
    if run("worst") {
        worst_cases();
    }
}
