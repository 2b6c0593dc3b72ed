//! Reading a config: the file, then `CASEBRIDGE__*` environment overrides, then every
//! setting's range ([`super::check`]). Every problem names the setting and where it was
//! written: `file:line:col: path: problem` for the file, the variable for an override.
//!
//! Overrides are named `CASEBRIDGE__` + the setting's path with `__` between sections:
//! `CASEBRIDGE__POLL__INTERVAL=30s` sets `poll.interval`. The two underscores after
//! `CASEBRIDGE` keep overrides apart from the variables admins name for secrets
//! (`CASEBRIDGE_ADMIN_TOKEN`, read through `{env: ...}`), which are never settings. An
//! override that names no setting is refused with a suggestion, and so is a variable in
//! the one-underscore form that spells a setting exactly (`CASEBRIDGE_POLL__INTERVAL`).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;

use super::Config;
use crate::yaml_locations::{self, Locations};

/// The prefix of environment overrides.
pub const ENV_PREFIX: &str = "CASEBRIDGE__";
/// The prefix every casebridge variable shares (overrides, logging, secrets admins name).
const FAMILY_PREFIX: &str = "CASEBRIDGE_";
/// A config file larger than this is refused (real ones are a few kilobytes).
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// A configuration problem, said so that an admin can fix it. Values of secrets are never
/// part of a message.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{file}:{line}:{column}: {setting}: {problem}")]
    Invalid { file: String, line: usize, column: usize, setting: String, problem: String },
    #[error("environment variable {var} (setting {setting}): {problem}")]
    Env { var: String, setting: String, problem: String },
    #[error("{path}: {problem}")]
    Secret { path: String, problem: String },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several(Vec<ConfigError>),
}

/// One `CASEBRIDGE__*` variable, read as a setting.
struct Override {
    var: String,
    setting: String,
    value: serde_yaml::Value,
}

impl Config {
    /// Reads, overrides from the environment, and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = crate::bounded_file::read(path, MAX_CONFIG_BYTES as u64)
            .map_err(|source| ConfigError::Read { path: file.clone(), source })?;
        let env: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k.starts_with(FAMILY_PREFIX)).collect();
        Self::parse(&text, &file, &env)
    }

    /// Parses config text with the given environment (only `CASEBRIDGE_*` names matter).
    pub fn parse(text: &str, file: &str, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let at = |line, column, setting: &str, problem: String| ConfigError::Invalid {
            file: file.to_string(),
            line,
            column,
            setting: setting.to_string(),
            problem,
        };
        if text.len() > MAX_CONFIG_BYTES {
            return Err(at(1, 1, "(file)", format!("larger than {} KiB", MAX_CONFIG_BYTES / 1024)));
        }
        let locations = yaml_locations::index(text).map_err(|e| at(e.at.line, e.at.column, "(syntax)", e.problem))?;
        let mut tree: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
            let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((1, 1));
            at(line, column, "(syntax)", e.to_string().split(" at line ").next().unwrap_or_default().to_string())
        })?;
        if tree.is_null() {
            tree = serde_yaml::Value::Mapping(Default::default());
        }
        let overrides = read_overrides(env, &secret_variables(&tree))?;
        for o in &overrides {
            set_path(&mut tree, &o.setting, o.value.clone()).map_err(|problem| ConfigError::Env {
                var: o.var.clone(),
                setting: o.setting.clone(),
                problem,
            })?;
        }
        let config: Config = deserialize(tree.clone()).map_err(|(setting, problem)| {
            let setting = narrow(&tree, &setting, &problem);
            locate(file, &locations, &overrides, &setting, problem)
        })?;
        let problems: Vec<ConfigError> = config
            .problems()
            .into_iter()
            .map(|(setting, problem)| locate(file, &locations, &overrides, &setting, problem))
            .collect();
        match problems.len() {
            0 => Ok(config),
            1 => Err(problems.into_iter().next().expect("one problem")),
            _ => Err(ConfigError::Several(problems)),
        }
    }
}

/// Places a problem with `setting`: on the override that set it, or where the file says it.
fn locate(file: &str, locations: &Locations, overrides: &[Override], setting: &str, problem: String) -> ConfigError {
    let setting = if setting.is_empty() || setting == "." { "(top)".to_string() } else { setting.to_string() };
    let from_env =
        overrides.iter().rev().find(|o| setting == o.setting || setting.starts_with(&format!("{}.", o.setting)));
    if let Some(o) = from_env {
        return ConfigError::Env { var: o.var.clone(), setting, problem };
    }
    // An unknown field is placed on its key; anything else on its value.
    let unknown = problem.strip_prefix("unknown field `").and_then(|r| r.split('`').next());
    let location = match unknown {
        Some(key) if setting == key || setting.ends_with(&format!(".{key}")) => locations.key(&setting),
        Some(key) if setting == "(top)" => locations.key(key),
        Some(key) => locations.key(&format!("{setting}.{key}")),
        None => locations.value(&setting),
    };
    let (line, column) = location.map(|l| (l.line, l.column)).unwrap_or((1, 1));
    ConfigError::Invalid { file: file.to_string(), line, column, setting, problem }
}

/// Deserializes the tree; an error is `(path, problem)`.
fn deserialize(tree: serde_yaml::Value) -> Result<Config, (String, String)> {
    serde_path_to_error::deserialize(tree).map_err(|e| {
        let setting = e.path().to_string();
        let problem = serde_problem(&setting, &e.into_inner().to_string());
        (setting, problem)
    })
}

/// serde cannot see inside internally tagged sections (`org.auth`, `agent`): an error in
/// one is reported at the section. Finds the setting inside it whose removal makes that
/// error go away, so the admin is pointed at the line they wrote.
fn narrow(tree: &serde_yaml::Value, setting: &str, problem: &str) -> String {
    if problem.starts_with("missing field") || problem.starts_with("unknown field") {
        return setting.to_string();
    }
    let parts: Vec<&str> = if setting == "." { vec![] } else { setting.split('.').collect() };
    let section = parts.iter().try_fold(tree, |node, key| node.get(*key));
    let Some(serde_yaml::Value::Mapping(map)) = section else { return setting.to_string() };
    // The tags that choose a section's kind are never the culprit (without one, every
    // section is wrong).
    for key in map.keys().filter_map(|k| k.as_str()).filter(|k| !matches!(*k, "grant" | "backend")) {
        let mut without = tree.clone();
        let parent = parts.iter().try_fold(&mut without, |node, key| node.get_mut(*key));
        if let Some(serde_yaml::Value::Mapping(m)) = parent {
            m.remove(key);
        }
        match deserialize(without) {
            Err((_, p)) if p == problem => continue,
            _ => return if parts.is_empty() { key.to_string() } else { format!("{setting}.{key}") },
        }
    }
    setting.to_string()
}

/// serde_yaml's message without the path it sometimes repeats or its own position.
fn serde_problem(setting: &str, message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or(message);
    match message.split_once(": ") {
        Some((prefix, rest)) if setting.starts_with(prefix) => rest.to_string(),
        _ => message.to_string(),
    }
}

/// The `CASEBRIDGE__*` overrides in `env`; a variable that looks meant as one but names no
/// setting is an error.
fn read_overrides(env: &[(String, String)], secrets: &BTreeSet<String>) -> Result<Vec<Override>, ConfigError> {
    let known = setting_paths();
    let mut out = Vec::new();
    for (var, value) in env {
        if let Some(rest) = var.strip_prefix(ENV_PREFIX) {
            let setting = rest.to_lowercase().replace("__", ".");
            if !known.contains(&setting) {
                let hint = crate::spelling::closest(known.iter().map(String::as_str), &setting, 3)
                    .map(|s| format!("; did you mean {}?", env_name(s)))
                    .unwrap_or_else(|| "; schema/config.schema.json lists every setting".into());
                return Err(ConfigError::Env {
                    var: var.clone(),
                    setting,
                    problem: format!("there is no such setting{hint}"),
                });
            }
            // A value is read as YAML (numbers, booleans, `{env: X}`), or as text when it is not YAML.
            let value = serde_yaml::from_str(value).unwrap_or_else(|_| serde_yaml::Value::String(value.clone()));
            out.push(Override { var: var.clone(), setting, value });
        } else if let Some(rest) = var.strip_prefix(FAMILY_PREFIX)
            && !secrets.contains(var)
        {
            let setting = rest.to_lowercase().replace("__", ".");
            if known.contains(&setting) {
                return Err(ConfigError::Env {
                    var: var.clone(),
                    setting: setting.clone(),
                    problem: format!(
                        "overrides are named with two underscores after CASEBRIDGE: rename it to {}",
                        env_name(&setting)
                    ),
                });
            }
        }
    }
    Ok(out)
}

/// The variables the config names for secrets (`{env: VAR}` anywhere): never overrides,
/// whatever they are called (`credentials_key: {env: CASEBRIDGE_CREDENTIALS_KEY}`).
fn secret_variables(tree: &serde_yaml::Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![tree];
    while let Some(node) = stack.pop() {
        match node {
            serde_yaml::Value::Mapping(m) => {
                if let Some(serde_yaml::Value::String(var)) = m.get("env") {
                    out.insert(var.clone());
                }
                stack.extend(m.values());
            }
            serde_yaml::Value::Sequence(s) => stack.extend(s),
            _ => {}
        }
    }
    out
}

/// The override variable of a setting path: `poll.interval` → `CASEBRIDGE__POLL__INTERVAL`.
pub fn env_name(setting: &str) -> String {
    format!("{ENV_PREFIX}{}", setting.replace('.', "__").to_uppercase())
}

/// Every setting path (sections and leaves) the config schema knows.
pub fn setting_paths() -> &'static BTreeSet<String> {
    static PATHS: OnceLock<BTreeSet<String>> = OnceLock::new();
    PATHS.get_or_init(|| {
        let schema = Config::json_schema();
        let mut out = BTreeSet::new();
        collect_paths(&schema, &schema, "", &mut out, 0);
        out
    })
}

fn collect_paths(
    root: &serde_json::Value,
    node: &serde_json::Value,
    prefix: &str,
    out: &mut BTreeSet<String>,
    depth: usize,
) {
    if depth > 16 {
        return;
    }
    if let Some(reference) = node.get("$ref").and_then(|r| r.as_str()) {
        let target = reference.strip_prefix("#/").map(|p| p.split('/').fold(root, |n, k| &n[k]));
        if let Some(target) = target {
            collect_paths(root, target, prefix, out, depth + 1);
        }
    }
    for combinator in ["oneOf", "anyOf", "allOf"] {
        for branch in node.get(combinator).and_then(|b| b.as_array()).into_iter().flatten() {
            collect_paths(root, branch, prefix, out, depth + 1);
        }
    }
    for (name, child) in node.get("properties").and_then(|p| p.as_object()).into_iter().flatten() {
        let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        out.insert(path.clone());
        collect_paths(root, child, &path, out, depth + 1);
    }
}

fn set_path(tree: &mut serde_yaml::Value, path: &str, value: serde_yaml::Value) -> Result<(), String> {
    let mut current = tree;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let map = current.as_mapping_mut().ok_or_else(|| format!("{} is not a section", parts[..i].join(".")))?;
        let key = serde_yaml::Value::String(part.to_string());
        if i == parts.len() - 1 {
            map.insert(key, value);
            return Ok(());
        }
        current = map.entry(key).or_insert_with(|| serde_yaml::Value::Mapping(Default::default()));
    }
    Ok(())
}
