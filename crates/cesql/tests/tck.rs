//! Runs the CloudEvents SQL conformance suite (TCK) in `tests/data/cesql-tck`
//! against `cesql`.
//!
//! Every case of every file runs; failures are collected and reported
//! together, by file and case name, in one assertion message.
//!
//! A case gives an `expression`, optionally the expected `result`
//! (bool/int/string) and `error` kind, and the input event: `event` as is, or
//! else a minimal valid event with `eventOverrides` applied on top.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use cesql::{ErrorKind, Expression, Value};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

#[derive(Deserialize)]
struct Suite {
    tests: Vec<Case>,
}

/// One case. `expression` is read as a string rather than through a
/// `serde_json::Value`, so that plain YAML scalars such as `TRUE`, `-10` or
/// `0` reach the parser with their original spelling.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Case {
    name: String,
    expression: String,
    result: Option<Json>,
    error: Option<String>,
    event: Option<Map<String, Json>>,
    event_overrides: Option<Map<String, Json>>,
}

#[test]
fn cesql_conformance_suite() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cesql-tck");
    let files = suite_files(&dir);
    assert!(!files.is_empty(), "no *.yaml files in {}", dir.display());

    let mut total = 0;
    let mut failures = Vec::new();
    for path in &files {
        let file = path.file_name().unwrap_or_default().to_string_lossy();
        let text = fs::read_to_string(path).expect("suite file is readable");
        let suite: Suite = serde_saphyr::from_str(&text)
            .unwrap_or_else(|e| panic!("{file} is not a valid TCK file: {e}"));
        assert!(!suite.tests.is_empty(), "{file} has no tests");
        for case in &suite.tests {
            total += 1;
            if let Err(reason) = run_case(case) {
                failures.push(format!(
                    "{file}: {}\n    {}\n    {reason}",
                    case.name, case.expression
                ));
            }
        }
    }

    println!(
        "CESQL TCK: {} of {total} cases passed ({} files)",
        total - failures.len(),
        files.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {total} CESQL TCK cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn suite_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("suite directory is readable")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

/// Runs one case; `Err` describes how the outcome differed from the expectation.
fn run_case(case: &Case) -> Result<(), String> {
    let expected_error = case.error.as_deref();
    let expected_value = case.result.as_ref().map(expected_value).transpose()?;

    let expression = match Expression::parse(&case.expression) {
        Ok(expression) => expression,
        Err(error) if expected_error == Some("parse") => {
            // The message must say where and what, whatever the case.
            return if error.to_string().starts_with("column ") {
                Ok(())
            } else {
                Err(format!("unhelpful parse error message: {error}"))
            };
        }
        Err(error) => return Err(format!("unexpected parse error: {error}")),
    };
    if expected_error == Some("parse") {
        return Err("parsed, but a parse error was expected".to_owned());
    }

    let evaluation = expression.evaluate(&input_event(case));
    let mut problems = String::new();
    if let Some(expected) = &expected_value
        && evaluation.value != *expected
    {
        let _ = write!(
            problems,
            "value {:?}, expected {expected:?}; ",
            evaluation.value
        );
    }
    let kinds: Vec<&str> = evaluation
        .errors
        .iter()
        .map(|e| tck_name(e.kind()))
        .collect();
    match expected_error {
        None if !kinds.is_empty() => {
            let _ = write!(problems, "unexpected errors {:?}", evaluation.errors);
        }
        Some(expected) if kinds.is_empty() || kinds.iter().any(|kind| *kind != expected) => {
            let _ = write!(problems, "errors {kinds:?}, expected only {expected}");
        }
        _ => {}
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn expected_value(result: &Json) -> Result<Value, String> {
    match result {
        Json::Bool(b) => Ok(Value::Boolean(*b)),
        Json::String(s) => Ok(Value::String(s.clone())),
        Json::Number(n) => n
            .as_i64()
            .and_then(|i| i32::try_from(i).ok())
            .map(Value::Integer)
            .ok_or_else(|| format!("result {n} is not a 32-bit integer")),
        other => Err(format!("unsupported result {other}")),
    }
}

/// `event` if the case has one, else a minimal valid event; then
/// `eventOverrides` on top.
fn input_event(case: &Case) -> Json {
    let mut event = case.event.clone().unwrap_or_else(|| {
        let mut event = Map::new();
        event.insert("specversion".into(), json!("1.0"));
        event.insert("id".into(), json!("tck-event"));
        event.insert("source".into(), json!("https://tck.example/source"));
        event.insert("type".into(), json!("io.cloudevents.tck"));
        event
    });
    if let Some(overrides) = &case.event_overrides {
        event.extend(overrides.clone());
    }
    Json::Object(event)
}

/// The TCK's name for an error kind (its README's `error` values).
fn tck_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Math => "math",
        ErrorKind::Cast => "cast",
        ErrorKind::MissingAttribute => "missingAttribute",
        ErrorKind::MissingFunction => "missingFunction",
        ErrorKind::FunctionEvaluation => "functionEvaluation",
        // Not a spec error type: no TCK case expects it.
        ErrorKind::Limit => "limit",
    }
}
