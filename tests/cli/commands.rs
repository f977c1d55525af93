//! Each command, its output, and every refusal printed as the server said it.

use std::process::Output;

use serde_json::Value;

use crate::common::fixtures::NAMESPACES;
use crate::common::mesh::namespace_token;
use crate::common::{Broker, eventually};

pub const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");

/// Runs `meshbroker <args>` against `broker` with the admin token.
pub fn cli(broker: &Broker, args: &[&str]) -> Output {
    cli_as(broker, &broker.admin_token, args)
}

pub fn cli_as(broker: &Broker, token: &str, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_meshbroker"))
        .args(args)
        .args(["--server", &broker.control, "--token", token])
        .args(["--events", &broker.events])
        .output()
        .expect("the CLI runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn succeeded(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
    stdout(output)
}

#[tokio::test]
async fn the_walk_through_with_the_command_line() {
    let broker = Broker::start().await;
    let application = format!("{EXAMPLES}/order-service.application.yaml");
    let applied = succeeded(&cli(&broker, &["apply", "-f", &application]));
    assert!(
        applied.starts_with("applications/commerce created\n  token (shown once, keep it): mbapp_"),
        "{applied}"
    );
    let again = succeeded(&cli(&broker, &["apply", "-f", &application]));
    assert_eq!(again, "applications/commerce unchanged\n");
    succeeded(&cli(
        &broker,
        &["apply", "-f", &format!("{EXAMPLES}/team-a.namespace.yaml")],
    ));
    let mapped = succeeded(&cli(
        &broker,
        &[
            "apply",
            "-f",
            &format!("{EXAMPLES}/commerce.mapping.yaml"),
            "-n",
            "team-a",
        ],
    ));
    assert_eq!(mapped, "applicationmappings/commerce created\n");

    // A table in kubectl's style, once the Application is Ready.
    let table = eventually("commerce to be Ready in the table", async || {
        let text = succeeded(&cli(&broker, &["get", "applications"]));
        text.lines()
            .any(|l| l.starts_with("commerce") && l.contains("True"))
            .then_some(text)
    })
    .await;
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table
            .lines()
            .next()
            .is_some_and(|h| h.contains("READY") && h.contains("AGE")),
        "{table}"
    );

    // YAML out, and back in through apply: nothing changes.
    let yaml = succeeded(&cli(
        &broker,
        &["get", "application", "commerce", "-o", "yaml"],
    ));
    let read: Value = serde_saphyr::from_str(&yaml).expect("YAML");
    assert_eq!(read["metadata"]["name"], "commerce");
    let dir = tempfile::tempdir().expect("directory");
    let file = dir.path().join("commerce.yaml");
    std::fs::write(&file, &yaml).expect("written");
    let round_trip = succeeded(&cli(&broker, &["apply", "-f", &file.display().to_string()]));
    assert_eq!(round_trip, "applications/commerce unchanged\n");

    // A change applies as a replace.
    let changed = yaml.replace("Commerce backend", "Commerce backend, v2");
    assert_ne!(changed, yaml, "the example's description is in the YAML");
    std::fs::write(&file, &changed).expect("written");
    let configured = succeeded(&cli(&broker, &["apply", "-f", &file.display().to_string()]));
    assert_eq!(configured, "applications/commerce configured\n");

    let json = succeeded(&cli(
        &broker,
        &["get", "applicationmappings", "-n", "team-a", "-o", "json"],
    ));
    let list: Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));

    let deleted = succeeded(&cli(
        &broker,
        &["delete", "applicationmapping", "commerce", "-n", "team-a"],
    ));
    assert_eq!(deleted, "applicationmappings/commerce deleted\n");
    let gone = cli(
        &broker,
        &["get", "applicationmapping", "commerce", "-n", "team-a"],
    );
    assert_eq!(gone.status.code(), Some(1), "{}", stderr(&gone));
    assert!(
        stderr(&gone).contains("404") && stderr(&gone).contains("not found"),
        "{}",
        stderr(&gone)
    );
}

#[tokio::test]
async fn refusals_are_printed_as_the_server_said_them_with_exit_codes_to_rely_on() {
    let broker = Broker::start().await;
    let wrong = cli_as(&broker, "not-a-token", &["get", "triggers"]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        stderr(&wrong).contains("401") && stderr(&wrong).contains("not valid"),
        "{}",
        stderr(&wrong)
    );

    succeeded(&cli(
        &broker,
        &["apply", "-f", &format!("{EXAMPLES}/team-a.namespace.yaml")],
    ));
    let token = namespace_token(&broker, "team-a", "cli").await;
    let elsewhere = cli_as(
        &broker,
        &token,
        &["get", "triggers", "-n", "kyma-integration"],
    );
    assert_eq!(elsewhere.status.code(), Some(1));
    assert!(stderr(&elsewhere).contains("403"), "{}", stderr(&elsewhere));
    let own = cli_as(&broker, &token, &["get", "triggers", "-n", "team-a"]);
    assert_eq!(succeeded(&own), "No resources found.\n");

    let unknown = cli(&broker, &["get", "gizmos"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("no kind \"gizmos\""),
        "{}",
        stderr(&unknown)
    );
    let usage = cli(&broker, &["delete", "trigger"]);
    assert_eq!(usage.status.code(), Some(2), "{}", stderr(&usage));

    let invalid = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(
        invalid.path(),
        "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec: {broker: default, subscriber: {uri: 42}}\n",
    )
    .expect("written");
    let refused = cli(
        &broker,
        &[
            "apply",
            "-f",
            &invalid.path().display().to_string(),
            "-n",
            "team-a",
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("spec.subscriber.uri"),
        "the server names the field: {}",
        stderr(&refused)
    );

    // A name goes into a request path: one that would name another path is
    // the command's mistake, and nothing is touched.
    for args in [
        &["delete", "trigger", "../namespaces/team-a", "-n", "team-a"][..],
        &["delete", "broker", "default?dryRun=All", "-n", "team-a"],
        &["describe", "namespace", "team-a/x"],
        &["get", "triggers", "-n", "team-a/../kyma-integration"],
        &[
            "send",
            "--application",
            "commerce/v1/events#",
            "--type",
            "t",
        ],
    ] {
        let refused = cli(&broker, args);
        assert_eq!(
            refused.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&refused)
        );
        assert!(stderr(&refused).contains("not a"), "{}", stderr(&refused));
    }
    let misnamed = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(
        misnamed.path(),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: \"team-a/../x\"}\n",
    )
    .expect("written");
    let from_file = cli(
        &broker,
        &["apply", "-f", &misnamed.path().display().to_string()],
    );
    assert_eq!(from_file.status.code(), Some(2), "{}", stderr(&from_file));
    assert!(
        stderr(&from_file).contains("metadata.name"),
        "{}",
        stderr(&from_file)
    );
    assert!(
        broker
            .admin()
            .find(&format!("{NAMESPACES}/team-a"))
            .await
            .is_some(),
        "team-a is still there"
    );
    // An extension may not stand in for an attribute `send` sets itself.
    let core = cli(
        &broker,
        &[
            "send",
            "--broker",
            "default",
            "-n",
            "team-a",
            "--type",
            "t",
            "--structured",
            "-x",
            "id=other",
        ],
    );
    assert_eq!(core.status.code(), Some(2), "{}", stderr(&core));
    assert!(
        stderr(&core).contains("core attribute"),
        "{}",
        stderr(&core)
    );
    // No answer at all names its cause.
    let nowhere = std::process::Command::new(env!("CARGO_BIN_EXE_meshbroker"))
        .args([
            "get",
            "triggers",
            "--server",
            "http://127.0.0.1:9",
            "--token",
            "t",
        ])
        .output()
        .expect("the CLI runs");
    assert_eq!(nowhere.status.code(), Some(1));
    assert!(
        stderr(&nowhere)
            .to_lowercase()
            .contains("connection refused"),
        "{}",
        stderr(&nowhere)
    );
}

#[tokio::test]
async fn a_server_on_this_machine_is_found_through_its_data_directory() {
    let broker = Broker::start().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_meshbroker"))
        .args(["get", "namespaces", "--data-dir"])
        .arg(broker.data_dir())
        .env_remove("MESHBROKER_SERVER")
        .env_remove("MESHBROKER_TOKEN")
        .output()
        .expect("the CLI runs");
    let table = succeeded(&output);
    assert!(
        table.lines().any(|l| l.starts_with("kyma-integration")),
        "{table}"
    );
}
