//! The documentation is a test. Every command in the README, every page of `docs/` and
//! `rules/README.md` runs here as written (optional `[...]` parts each way, placeholders such
//! as `FILE` or `500...` filled in), in a copy of the repository's examples and rules, except
//! the Salesforce CLI's, which need a real org: what they name must exist in `salesforce/`.
//! Every config snippet and org seed parses; every `CASEBRIDGE_*` variable the docs and
//! examples name is one the binary reads, a setting's override, or a secret a snippet names;
//! every relative link leads somewhere; and the examples load. A command the harness does not
//! know how to run fails the test, so docs cannot drift.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use casebridge::config::Config;
use common::{bin, copy_dir, root, wait_within, walk};

/// The documents whose commands run and whose snippets parse: the README, every page of
/// `docs/` (listed from the folder, so a new page is covered), and the rule set's README.
fn docs() -> Vec<String> {
    let mut pages: Vec<String> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    pages.sort();
    [vec!["README.md".to_string()], pages, vec!["rules/README.md".to_string()]].concat()
}

/// A code block of a document: fenced (with its language) or indented by four spaces.
struct Block {
    doc: String,
    lang: String,
    text: String,
}

fn blocks(doc: &str) -> Vec<Block> {
    let text = std::fs::read_to_string(root().join(doc)).unwrap();
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    let mut previous_blank = true;
    while let Some(line) = lines.next() {
        if let Some(lang) = line.trim_start().strip_prefix("```") {
            // A fence inside a list item is indented as the item is; so are its lines.
            let indent = line.len() - line.trim_start().len();
            let mut body = String::new();
            for l in lines.by_ref() {
                if l.trim_start().starts_with("```") {
                    break;
                }
                body += &l[indent.min(l.len() - l.trim_start_matches(' ').len())..];
                body.push('\n');
            }
            out.push(Block { doc: doc.to_string(), lang: lang.trim().to_string(), text: body });
        } else if previous_blank && line.starts_with("    ") && !line.trim().is_empty() {
            let mut body = format!("{}\n", &line[4..]);
            while lines.peek().is_some_and(|l| l.starts_with("    ")) {
                body += &lines.next().unwrap()[4..];
                body.push('\n');
            }
            out.push(Block { doc: doc.to_string(), lang: "sh".into(), text: body });
        }
        previous_blank = line.trim().is_empty();
    }
    out
}

/// The commands of a shell block: continuations joined, comments dropped.
fn commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = strip_comment(line);
        if let Some(head) = line.trim_end().strip_suffix('\\') {
            current += head;
            continue;
        }
        current += &line;
        if !current.trim().is_empty() {
            out.push(current.trim().to_string());
        }
        current.clear();
    }
    out
}

/// The steps of a command line: `a; b` is `a`, then `b` (a `;` outside quotes).
fn steps(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = None;
    for c in line.chars() {
        match (c, quoted) {
            ('"' | '\'', None) => quoted = Some(c),
            (q, Some(open)) if q == open => quoted = None,
            (';', None) => {
                out.push(String::new());
                continue;
            }
            _ => {}
        }
        out.last_mut().unwrap().push(c);
    }
    out.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

/// Whether a command line is a shell script: it calls curl, or pipes (a `|` outside quotes
/// and outside optional `[...]` parts, where it separates alternatives).
fn is_script(line: &str) -> bool {
    let mut quoted = None;
    let mut optional = 0;
    let mut pipe = false;
    for c in line.chars() {
        match (c, quoted) {
            ('"' | '\'', None) => quoted = Some(c),
            (q, Some(open)) if q == open => quoted = None,
            ('[', None) => optional += 1,
            (']', None) => optional -= 1,
            ('|', None) if optional == 0 => pipe = true,
            _ => {}
        }
    }
    pipe || line.contains("curl ")
}

/// A line without its `# comment` (a `#` outside quotes, after a space).
fn strip_comment(line: &str) -> String {
    let mut quoted = None;
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match (c, quoted) {
            ('"' | '\'', None) => quoted = Some(c),
            (q, Some(open)) if q == open => quoted = None,
            ('#', None) if previous.is_whitespace() => return line[..i].to_string(),
            _ => {}
        }
        previous = c;
    }
    line.to_string()
}

/// `a [--x X] [--f json|junit]` → `a`, `a --x X`, `a --f json`, `a --f junit`.
fn variants(command: &str) -> Vec<String> {
    let Some(open) = command.find('[') else { return vec![command.to_string()] };
    let close = open + command[open..].find(']').unwrap();
    let (before, inner, after) = (&command[..open], &command[open + 1..close], &command[close + 1..]);
    let mut out: Vec<String> = variants(&format!("{}{}", before.trim_end(), after)).into_iter().collect();
    // Alternatives inside an optional part: `--format json|junit`.
    let (flag, values) = inner.rsplit_once(' ').unwrap_or(("", inner));
    for value in values.split('|') {
        let part = if flag.is_empty() { value.to_string() } else { format!("{flag} {value}") };
        if let Some(first) = variants(&format!("{before}{part}{after}")).into_iter().next() {
            out.push(first);
        }
    }
    out
}

/// Splits a command into words, honouring double and single quotes.
fn words(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = None;
    let mut any = false;
    for c in command.chars() {
        match (c, quoted) {
            ('"' | '\'', None) => {
                quoted = Some(c);
                any = true;
            }
            (q, Some(open)) if q == open => quoted = None,
            (c, None) if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            (c, _) => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(word);
    }
    out
}

/// A scratch copy of what the docs' commands read and write.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for folder in ["examples", "rules", "schema", "scripts"] {
        copy_dir(&root().join(folder), &dir.path().join(folder));
    }
    // The embedding model is installed once, in the repository's models/ (CI's .ci/run
    // installs it before the tests; `scripts/install-model` here does when it is not).
    std::fs::create_dir_all(root().join("models")).unwrap();
    std::os::unix::fs::symlink(root().join("models"), dir.path().join("models")).unwrap();
    dir
}

/// A long-running command (`sim`, `run`), stopped with SIGTERM when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let _ = self.0.wait();
    }
}

struct Runner {
    dir: tempfile::TempDir,
    running: Vec<Running>,
    /// The daemons a documented `run` started: stopped before a `compact`, as it asks.
    daemons: Vec<Running>,
    ran: Vec<String>,
    /// The Salesforce CLI's commands, checked but not run: they need a real org.
    not_run: Vec<String>,
    /// The folders an `sf project retrieve` of the docs writes (outside the repository).
    retrieved: Vec<String>,
    /// The variables the command being run sets (`NAME=value casebridge ...`).
    env: Vec<(String, String)>,
}

impl Runner {
    fn bin(&self, args: &[String]) -> Command {
        let mut c = bin();
        c.args(args).current_dir(self.dir.path()).env("CASEBRIDGE_LOG", "warn").envs(self.env.iter().cloned());
        c
    }

    /// A path a command names, in the workspace: `/etc/casebridge/...` (where the docs keep
    /// keys) is the workspace's `etc/casebridge/...`; nothing is written outside it.
    fn local(&self, doc: &str, path: &str) -> PathBuf {
        let relative = path.strip_prefix('/').unwrap_or(path);
        assert!(
            !path.starts_with('/') || path.starts_with("/etc/casebridge/"),
            "{doc}: `{path}`: the harness maps only /etc/casebridge/ into its workspace; teach it"
        );
        let local = self.dir.path().join(relative);
        std::fs::create_dir_all(local.parent().unwrap()).unwrap();
        local
    }

    /// Runs one documented command; `cargo run --release --` is the same binary.
    fn run(&mut self, doc: &str, command: &str) {
        let command = command.replace("cargo run --release -- ", "casebridge ");
        let mut args = words(&command);
        // `NAME=value command`: a variable of casebridge's, or a secret the document's
        // snippets name (`{env: NAME}`).
        self.env.clear();
        while let Some((name, value)) = args.first().and_then(|w| w.split_once('=')).filter(|(name, _)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        }) {
            let text = std::fs::read_to_string(root().join(doc)).unwrap();
            assert!(
                name.starts_with("CASEBRIDGE_") || text.contains(&format!("{{env: {name}}}")),
                "{doc}: `{command}` sets {name}, which no snippet names"
            );
            self.env.push((name.to_string(), value.to_string()));
            args.remove(0);
        }
        match args.first().map(String::as_str) {
            Some("casebridge") => {}
            Some("sf") => return self.salesforce_cli(doc, &args, &command),
            Some("cd") => {
                // Only into the Salesforce DX project, where the `sf` commands run.
                assert!(
                    args.len() == 2 && root().join(&args[1]).join("sfdx-project.json").is_file(),
                    "{doc}: `{command}` is not the Salesforce DX project; teach the harness"
                );
                return;
            }
            Some("grep" | "rm") => {
                // They read, then remove, what the docs' `sf project retrieve` wrote.
                let dir = args.last().unwrap();
                assert!(self.retrieved.contains(dir), "{doc}: `{command}`: no documented retrieve writes {dir}");
                self.not_run.push(command.clone());
                return;
            }
            Some("chmod") => {
                assert_eq!(args.len(), 3, "{doc}: `{command}`");
                let out = Command::new("chmod").arg(&args[1]).arg(self.local(doc, &args[2])).output().unwrap();
                assert!(out.status.success(), "{doc}: `{command}` failed: {}", String::from_utf8_lossy(&out.stderr));
                self.ran.push(command.clone());
                return;
            }
            Some("openssl") => {
                assert!(
                    Command::new("which").arg("openssl").output().unwrap().status.success(),
                    "openssl is needed (.ci/run installs it)"
                );
                let args: Vec<PathBuf> = args[1..]
                    .iter()
                    .map(|a| if a.starts_with("/etc/") { self.local(doc, a) } else { PathBuf::from(a) })
                    .collect();
                let out = Command::new("openssl").args(&args).current_dir(self.dir.path()).output().unwrap();
                assert!(out.status.success(), "{doc}: `{command}` failed: {}", String::from_utf8_lossy(&out.stderr));
                self.ran.push(command.clone());
                return;
            }
            Some("scripts/install-model") => {
                let out = Command::new("bash").args(&args).current_dir(self.dir.path()).output().unwrap();
                assert!(out.status.success(), "{doc}: `{command}` failed: {}", String::from_utf8_lossy(&out.stderr));
                assert!(
                    self.dir.path().join("models/all-MiniLM-L6-v2/model.safetensors").is_file(),
                    "{doc}: `{command}`"
                );
                return;
            }
            Some("cargo") if command == "cargo test" => return, // the command running this test
            Some("cargo") if command.starts_with("cargo install --path . --locked") => {
                // Installing builds a release binary (minutes); what can fail is the lock.
                let ok = Command::new(env!("CARGO"))
                    .args(["metadata", "--locked", "--format-version", "1", "--no-deps"])
                    .current_dir(root())
                    .stdout(Stdio::null())
                    .status()
                    .unwrap();
                assert!(ok.success(), "{doc}: Cargo.lock is not current, so `{command}` fails");
                return;
            }
            _ => panic!("{doc}: the docs harness does not know how to run `{command}`; teach it"),
        }
        args.remove(0);
        self.ran.push(command.clone());
        if let Some(at) = args.iter().position(|a| a == ">") {
            // `casebridge auth keygen > FILE`: what it prints goes to the file.
            let file = self.local(doc, &args[at + 1]);
            args.truncate(at);
            let out = self.bin(&args).output().unwrap();
            assert!(out.status.success(), "{doc}: `{command}` failed: {}", String::from_utf8_lossy(&out.stderr));
            std::fs::write(&file, &out.stdout).unwrap();
            if args == ["auth", "keygen"] {
                use base64::Engine;
                let key = base64::engine::general_purpose::STANDARD.decode(String::from_utf8_lossy(&out.stdout).trim());
                assert_eq!(key.map(|k| k.len()).ok(), Some(32), "{doc}: `{command}` prints 32 bytes in base64");
            }
            return;
        }
        match args.first().map(String::as_str) {
            Some("sim") => {
                let sim = self.start(&args, "casebridge sim listening on", &command);
                self.running.push(sim);
            }
            Some("run") => {
                let status = self.status_file(&args);
                let daemon = self.start(&args, "", &command);
                self.daemons.push(daemon);
                wait_within(Duration::from_secs(60), &command, || status.exists());
            }
            Some("compact") => {
                // It needs the daemon stopped (the store is locked while it runs).
                self.daemons.clear();
                let out = self.bin(&args).output().unwrap();
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert!(out.status.success(), "{doc}: `{command}` failed: {}", String::from_utf8_lossy(&out.stderr));
                assert!(stdout.starts_with("Compacted the store"), "{doc}: `{command}` printed {stdout}");
            }
            Some("auth") if args.get(1).is_some_and(|a| a == "login") => {
                // It waits for a person in a browser; its arguments must parse.
                let out = self.bin(&args).arg("--help").output().unwrap();
                assert!(out.status.success(), "{doc}: `{command}`: {}", String::from_utf8_lossy(&out.stderr));
            }
            Some("demo") => {
                let out = self.bin(&args).output().unwrap();
                assert!(out.status.success(), "{doc}: `{command}` failed: {}", String::from_utf8_lossy(&out.stderr));
                assert!(String::from_utf8_lossy(&out.stdout).contains("handed over"), "{doc}: `{command}`");
            }
            _ => {
                let out = self.bin(&args).output().unwrap();
                assert!(
                    out.status.success(),
                    "{doc}: `{command}` exited {:?}:\n{}{}",
                    out.status.code(),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }

    /// The status file of the config a `run` names: `{store_path}.status.json`.
    fn status_file(&self, args: &[String]) -> PathBuf {
        let config = args.windows(2).find(|w| w[0] == "--config").map_or("casebridge.yaml", |w| w[1].as_str());
        let path = self.dir.path().join(config);
        let c = Config::parse(&std::fs::read_to_string(&path).unwrap(), config, &[]).unwrap();
        PathBuf::from(format!("{}.status.json", path.parent().unwrap().join(&c.store_path).display()))
    }

    /// A Salesforce CLI command: it needs a real org and an admin signed in to it, so it is
    /// not run; the folders, permission sets and components it names must be in the
    /// Salesforce DX project (`salesforce/`, where it runs), and what it retrieves must go
    /// outside the repository.
    fn salesforce_cli(&mut self, doc: &str, args: &[String], command: &str) {
        let project = root().join("salesforce");
        let names: Vec<String> =
            walk(&project).iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
        let values = |flag: &str| args.windows(2).filter(|w| w[0] == flag).map(|w| w[1].clone()).collect::<Vec<_>>();
        for dir in values("--source-dir") {
            assert!(project.join(&dir).is_dir(), "{doc}: `{command}`: salesforce/{dir} is not a folder");
        }
        for set in values("--name") {
            let file = format!("{set}.permissionset-meta.xml");
            assert!(names.contains(&file), "{doc}: `{command}`: salesforce/ ships no permission set {set}");
        }
        for metadata in values("--metadata") {
            let name = metadata.split_once(':').map_or(metadata.as_str(), |(_, name)| name);
            assert!(
                names.iter().any(|n| n.starts_with(&format!("{name}."))),
                "{doc}: `{command}`: salesforce/ ships no component {name}"
            );
        }
        for dir in values("--output-dir") {
            assert!(
                Path::new(&dir).is_absolute() && !Path::new(&dir).starts_with(root()),
                "{doc}: `{command}` must retrieve outside the repository"
            );
            self.retrieved.push(dir);
        }
        self.not_run.push(command.to_string());
    }

    fn start(&mut self, args: &[String], ready: &str, command: &str) -> Running {
        let mut child = self.bin(args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        if !ready.is_empty() {
            let mut line = String::new();
            BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
            assert!(line.starts_with(ready), "`{command}` printed {line:?}");
        }
        Running(child)
    }

    fn stop_all(&mut self) {
        self.daemons.clear();
        while let Some(r) = self.running.pop() {
            drop(r);
        }
    }
}

/// Fills the docs' placeholders: `FILE` (an org seed), `N`, `F`, `500...` (a case Id).
fn fill(command: &str, case_id: &str) -> String {
    command
        .replace("--org FILE", "--org examples/demo/org.yaml")
        .replace("--batch-size N", "--batch-size 100")
        .replace("--filter F", "--filter billing")
        .replace("500...", case_id)
}

/// The demo config as `casebridge.yaml` in the workspace, for the commands that name it.
fn write_workspace_config(dir: &Path) {
    let text = std::fs::read_to_string(dir.join("examples/demo/casebridge.yaml")).unwrap();
    let text = text
        .replace("{file: secrets/", "{file: examples/demo/secrets/")
        .replace("dir: help-center", "dir: examples/demo/help-center")
        .replace("rules_dir: ../../rules", "rules_dir: rules")
        .replace("store_path: casebridge-demo.db", "store_path: casebridge.db");
    std::fs::write(dir.join("casebridge.yaml"), text).unwrap();
}

#[test]
fn every_documented_command_runs_as_written() {
    let mut runner = Runner {
        dir: workspace(),
        running: Vec::new(),
        daemons: Vec::new(),
        ran: Vec::new(),
        not_run: Vec::new(),
        retrieved: Vec::new(),
        env: Vec::new(),
    };
    write_workspace_config(runner.dir.path());
    let mut shell_blocks = Vec::new();
    for doc in docs() {
        for block in blocks(&doc).into_iter().filter(|b| b.lang == "sh") {
            let lines = commands(&block.text);
            // Blocks that are shell scripts (variables, pipes, curl) run through bash.
            if lines.iter().any(|l| is_script(l)) {
                shell_blocks.push(block);
                continue;
            }
            for step in lines.iter().flat_map(|l| steps(l)) {
                // The case for `record` exists once a simulator runs (the README starts one).
                let case_id = std::env::var("DOCS_CASE_ID").unwrap_or_else(|_| demo_case_id());
                for variant in variants(&fill(&step, &case_id)) {
                    runner.run(&block.doc, &variant);
                }
            }
        }
    }
    runner.stop_all();
    for block in shell_blocks {
        run_script(&runner, &block);
    }
    println!("ran: {:#?}", runner.ran);
    println!("not run (they need a real org): {:#?}", runner.not_run);
    for expected in [
        "demo",
        "sim --listen",
        "setup check",
        "run --config",
        "status",
        "errors",
        "rules check",
        "rules test",
        "rules explain",
        "record",
    ] {
        assert!(runner.ran.iter().any(|c| c.contains(expected)), "no documented `{expected}` ran: {:?}", runner.ran);
    }
}

/// A case Id of the demo org served on 127.0.0.1:8080 by the documented `sim` command.
fn demo_case_id() -> String {
    let out = Command::new("curl").args(["-s", "http://127.0.0.1:8080/__sim/keys"]).output();
    let keys: serde_json::Value =
        out.ok().and_then(|o| serde_json::from_slice(&o.stdout).ok()).unwrap_or(serde_json::Value::Null);
    keys.as_object()
        .and_then(|m| m.values().filter_map(|v| v.as_str()).find(|v| v.starts_with("500")).map(str::to_string))
        .unwrap_or_else(|| "500000000000000AAA".into())
}

/// Runs a documented shell script with bash, `casebridge` and `cargo run --release --`
/// being the built binary, and stops what it left running.
fn run_script(runner: &Runner, block: &Block) {
    for tool in ["bash", "curl", "jq"] {
        assert!(
            Command::new("which").arg(tool).output().unwrap().status.success(),
            "{tool} is needed (.ci/run installs it)"
        );
    }
    let bin_dir = runner.dir.path().join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_casebridge"), bin_dir.join("casebridge")).ok();
    let script = block.text.replace("cargo run --release -- ", "casebridge ");
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash")
        .args(["-c", &format!("set -eo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\n{script}")])
        .current_dir(runner.dir.path())
        .env("PATH", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}: the script failed:\n{script}\n{stdout}{}",
        block.doc,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("\"records\""), "{}: the script's query printed {stdout}", block.doc);
}

/// Every YAML block parses as what it shows: a config (alone or as a fragment of one), a
/// rule file, or an org seed.
#[test]
fn every_documented_yaml_snippet_parses() {
    let minimal = "org:\n  auth: {grant: refresh_token, client_id: a, refresh_token: {env: X}}\nagent_user: a\nhandover: {default_target: q}\n";
    for doc in docs() {
        for block in blocks(&doc).into_iter().filter(|b| b.lang == "yaml") {
            if block.text.contains("users:") || block.text.contains("connected_apps:") {
                let dir = tempfile::tempdir().unwrap();
                std::fs::create_dir_all(dir.path().join("keys")).unwrap();
                std::fs::copy(root().join("tests/fixtures/jwt-test-key.pub.pem"), dir.path().join("keys/app.pub.pem"))
                    .unwrap();
                std::fs::write(dir.path().join("org.yaml"), &block.text).unwrap();
                casebridge::sim::seed::load_file(&dir.path().join("org.yaml"))
                    .unwrap_or_else(|e| panic!("{doc}: the org seed does not load: {e}\n{}", block.text));
            } else if block.text.starts_with("kind:") {
                // A rule file: it loads beside the shipped rule set.
                let (_dir, rules) = common::scratch_rules();
                std::fs::write(rules.join("documented.yaml"), &block.text).unwrap();
                if let Err(errors) = casebridge::rules::RuleSet::load(&rules) {
                    panic!("{doc}: the rule file does not load: {}\n{}", errors[0], block.text);
                }
            } else {
                let fragment = block.text.starts_with("org:") && !block.text.contains("agent_user");
                let text =
                    if fragment { config_with(minimal, &block.text) } else { format!("{minimal}{}", block.text) };
                Config::parse(&text, &doc, &[])
                    .unwrap_or_else(|e| panic!("{doc}: the config snippet does not parse: {e}\n{}", block.text));
            }
        }
    }
}

/// `minimal` with its `org:` section replaced by the snippet's.
fn config_with(minimal: &str, org: &str) -> String {
    let rest: String = minimal.lines().skip(2).map(|l| format!("{l}\n")).collect();
    format!("{org}{rest}")
}

/// Config snippets written inline in the prose (`admin: {listen: ..., token: {env: ...}}`)
/// parse, and every `CASEBRIDGE_*` name means something to the binary.
#[test]
fn every_documented_setting_and_variable_is_real() {
    let minimal = "org:\n  auth: {grant: refresh_token, client_id: a, refresh_token: {env: X}}\nagent_user: a\nhandover: {default_target: q}\n";
    let mut secrets = Vec::new();
    let mut sources = Vec::new();
    for doc in docs() {
        let text = std::fs::read_to_string(root().join(&doc)).unwrap();
        sources.push((doc, text));
    }
    let pages = walk(&root().join("docs")).into_iter().filter(|p| p.extension().is_none_or(|e| e != "md"));
    for e in walk(&root().join("examples")).into_iter().chain(pages) {
        if let Ok(text) = std::fs::read_to_string(&e) {
            sources.push((e.display().to_string(), text));
        }
    }
    for (doc, text) in &sources {
        for span in text.split('`').skip(1).step_by(2) {
            let top = span.split(':').next().unwrap_or("");
            if span.contains(": {") && ["admin", "poll", "agent", "smtp", "reply", "org", "messenger"].contains(&top) {
                Config::parse(&format!("{minimal}{span}\n"), doc, &[])
                    .unwrap_or_else(|e| panic!("{doc}: `{span}` does not parse: {e}"));
            }
        }
        for cap in text.split("{env: ").skip(1) {
            secrets.push(cap.split('}').next().unwrap_or("").trim().to_string());
        }
    }
    let known =
        ["CASEBRIDGE_CONFIG", "CASEBRIDGE_LOG", "CASEBRIDGE_LOG_FORMAT", "CASEBRIDGE_SIM_LISTEN", "CASEBRIDGE_SIM_ORG"];
    for (doc, text) in &sources {
        for (i, _) in text.match_indices("CASEBRIDGE_") {
            let name: String =
                text[i..].chars().take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_').collect();
            if name == "CASEBRIDGE__" {
                continue; // the prefix itself, in prose
            }
            let setting =
                name.strip_prefix(casebridge::config::ENV_PREFIX).map(|s| s.to_lowercase().replace("__", "."));
            let ok = known.contains(&name.as_str())
                || setting.as_ref().is_some_and(|s| casebridge::config::setting_paths().contains(s))
                || secrets.contains(&name);
            assert!(
                ok,
                "{doc}: {name} is neither read by casebridge, a setting's override, nor a secret a snippet names"
            );
            if known.contains(&name.as_str()) {
                assert!(command_line_source().contains(&format!("\"{name}\"")), "{name} is not read");
            }
        }
    }
    // The documented override really sets the setting.
    let vars = vec![("CASEBRIDGE__POLL__INTERVAL".to_string(), "30s".to_string())];
    let c = Config::parse(minimal, "c.yaml", &vars).unwrap();
    assert_eq!(c.poll.interval, Duration::from_secs(30));
}

/// The command's source: `main.rs` and every file of `cli/`, where the variables the
/// command reads are named.
fn command_line_source() -> String {
    let mut text = std::fs::read_to_string(root().join("src/main.rs")).unwrap();
    for entry in std::fs::read_dir(root().join("src/cli")).unwrap() {
        text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    text
}

/// The examples load as casebridge reads them.
#[test]
fn the_examples_load() {
    let config = root().join("examples/demo/casebridge.yaml");
    let c = Config::parse(&std::fs::read_to_string(&config).unwrap(), "casebridge.yaml", &[]).unwrap();
    let base = config.parent().unwrap();
    assert!(base.join(&c.rules_dir).is_dir() && casebridge::rules::RuleSet::load(&base.join(&c.rules_dir)).is_ok());
    c.credentials(base).expect("the demo's secret files exist");
    casebridge::sim::seed::load_file(&root().join("examples/demo/org.yaml")).unwrap();
    for set in ["b2b-hardware", "saas-self-serve"] {
        casebridge::rules::RuleSet::load(&root().join("examples/rules").join(set))
            .unwrap_or_else(|e| panic!("{set}: {}", e[0]));
    }
    // The systemd unit's command, and the container's (its config comes from CASEBRIDGE_CONFIG).
    let unit = std::fs::read_to_string(root().join("examples/deploy/casebridge.service")).unwrap();
    let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).unwrap();
    let args: Vec<&str> = exec.split_whitespace().skip(1).collect();
    assert_eq!(args[..2], ["run", "--config"], "{exec}");
    let out = bin().arg("run").env("CASEBRIDGE_CONFIG", "/nonexistent/c.yaml").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/c.yaml"), "`run` reads CASEBRIDGE_CONFIG");
}

/// The README opens on what a newcomer runs first: its first code block is the two commands.
#[test]
fn the_readme_starts_with_the_two_commands() {
    let first = blocks("README.md").into_iter().next().expect("the README has a code block");
    assert_eq!(first.lang, "sh");
    assert_eq!(commands(&first.text), ["cargo run --release -- demo", "cargo test"], "{}", first.text);
}

/// The README's "Where to go next" links every page of `docs/`, and every page opens with
/// a one-line `# Title`.
#[test]
fn the_readme_links_every_page() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let pages: Vec<String> = docs().into_iter().filter(|d| d.starts_with("docs/")).collect();
    assert!(pages.contains(&"docs/salesforce-setup.md".to_string()), "{pages:?}");
    for page in pages {
        assert!(readme.contains(&format!("]({page})")), "README.md does not link {page}");
        let text = std::fs::read_to_string(root().join(&page)).unwrap();
        assert!(
            text.starts_with("# ") && text.lines().nth(1) == Some(""),
            "{page} does not open with a `# Title` line"
        );
    }
}

/// Every relative link of the docs leads to a file, and its `#anchor` to a heading there.
#[test]
fn every_relative_link_resolves() {
    for doc in docs() {
        let text = prose(&std::fs::read_to_string(root().join(&doc)).unwrap());
        for (at, _) in text.match_indices("](") {
            let target = &text[at + 2..at + 2 + text[at + 2..].find(')').unwrap()];
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
            let file = if path.is_empty() { root().join(&doc) } else { root().join(&doc).parent().unwrap().join(path) };
            assert!(file.exists(), "{doc}: the link ({target}) leads nowhere");
            if !anchor.is_empty() {
                let heads = headings(&std::fs::read_to_string(&file).unwrap());
                assert!(heads.iter().any(|h| h == anchor), "{doc}: ({target}): no such heading; there are {heads:?}");
            }
        }
    }
}

/// A document without its fenced code blocks.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out += line;
            out.push('\n');
        }
    }
    out
}

/// The anchors of a document's headings, as GitHub makes them: lower case, punctuation
/// dropped, spaces as hyphens.
fn headings(text: &str) -> Vec<String> {
    prose(text)
        .lines()
        .filter_map(|l| l.strip_prefix('#').map(|h| h.trim_start_matches('#').trim()))
        .map(|h| {
            h.to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect()
}
