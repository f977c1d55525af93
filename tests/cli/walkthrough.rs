//! The README's walk-through redone with the command line only: register,
//! map, read the classes, provision (seeing its steps), create a Trigger with
//! a CESQL filter, tail the Broker while the Application sends, deprovision.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::commands::{EXAMPLES, cli, stderr, succeeded};
use crate::common::Broker;
use crate::common::fixtures::ORDER_SERVICE;
use crate::common::sink::Sink;

/// `meshbroker tail`, its stdout lines arriving on a channel.
struct TailProcess {
    child: Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl TailProcess {
    fn start(broker: &Broker, args: &[&str]) -> Self {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_meshbroker"))
            .args(args)
            .args(["--server", &broker.control, "--token", &broker.admin_token])
            .stdout(Stdio::piped())
            .spawn()
            .expect("the CLI runs");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    /// The next line containing `wanted`, within the deadline (waiting
    /// without blocking the runtime the test's sink answers on).
    async fn line_with(&mut self, wanted: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("no tail line with {wanted:?} in time"));
            if line.contains(wanted) {
                return line;
            }
        }
    }
}

impl Drop for TailProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_readme_walk_through_with_the_command_line_only() {
    let broker = Broker::start().await;
    // 1–2: the Application (its token shown once), a namespace, the mapping.
    let applied = succeeded(&cli(
        &broker,
        &[
            "apply",
            "-f",
            &format!("{EXAMPLES}/order-service.application.yaml"),
        ],
    ));
    assert!(
        applied.starts_with("applications/commerce created\n"),
        "{applied}"
    );
    let app_token = applied
        .lines()
        .find_map(|l| l.strip_prefix("  token (shown once, keep it): "))
        .unwrap_or_else(|| panic!("the Application's token is shown: {applied}"))
        .to_string();
    succeeded(&cli(
        &broker,
        &["apply", "-f", &format!("{EXAMPLES}/team-a.namespace.yaml")],
    ));
    succeeded(&cli(
        &broker,
        &[
            "apply",
            "-f",
            &format!("{EXAMPLES}/commerce.mapping.yaml"),
            "-n",
            "team-a",
        ],
    ));

    // 3: the classes team-a may provision.
    let classes: Value = crate::common::eventually("team-a's classes", async || {
        let json = succeeded(&cli(&broker, &["classes", "-n", "team-a", "-o", "json"]));
        let classes: Value = serde_json::from_str(&json).expect("JSON");
        (classes.as_array().is_some_and(|c| !c.is_empty())).then_some(classes)
    })
    .await;
    let class = classes
        .as_array()
        .and_then(|all| all.iter().find(|c| c["id"] == ORDER_SERVICE))
        .expect("the order service is a class");
    let class_name = class["name"].as_str().expect("a name");
    let table = succeeded(&cli(&broker, &["classes", "-n", "team-a"]));
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(class_name) && l.contains(ORDER_SERVICE)),
        "{table}"
    );

    // 4–5: provision, seeing the operation's steps, then it is an instance.
    let provisioned = succeeded(&cli(
        &broker,
        &[
            "provision",
            "orders-a",
            "--class",
            class_name,
            "-n",
            "team-a",
        ],
    ));
    assert!(
        provisioned
            .lines()
            .any(|l| l.starts_with("provision orders-a: ")),
        "the steps are shown: {provisioned}"
    );
    assert!(
        provisioned.ends_with("serviceinstances/orders-a provisioned\n"),
        "{provisioned}"
    );
    let instances = succeeded(&cli(&broker, &["instances", "-n", "team-a"]));
    let row = instances
        .lines()
        .find(|l| l.starts_with("orders-a"))
        .unwrap_or_else(|| panic!("orders-a is listed: {instances}"));
    assert!(
        row.contains("team-a") && row.contains("commerce") && row.contains("succeeded"),
        "{row}"
    );
    let unknown_class = cli(
        &broker,
        &["provision", "x", "--class", "nope", "-n", "team-a"],
    );
    assert_eq!(unknown_class.status.code(), Some(2));
    assert!(
        stderr(&unknown_class).contains(class_name),
        "{}",
        stderr(&unknown_class)
    );

    // 7: a Trigger with a CESQL filter, checked by the server first.
    let sink = Sink::start().await;
    let create = |cesql: &str| {
        cli(
            &broker,
            &[
                "trigger",
                "create",
                "new-orders",
                "-n",
                "team-a",
                "--type",
                "order.created",
                "--cesql",
                cesql,
                "--sink",
                &sink.url,
            ],
        )
    };
    let bad = create("eventtypeversion = 'v1' AND");
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("column"), "{}", stderr(&bad));
    let nothing = succeeded(&cli(&broker, &["get", "triggers", "-n", "team-a"]));
    assert_eq!(nothing, "No resources found.\n", "nothing was written");
    let created = succeeded(&create("eventtypeversion = 'v1'"));
    assert_eq!(
        created,
        "triggers/new-orders created\ntriggers/new-orders Ready\n"
    );

    // 8: tail the Broker while the Application sends.
    let mut tail = TailProcess::start(&broker, &["tail", "default", "-n", "team-a"]);
    tail.line_with("tailing Broker team-a/default").await;
    let sent = std::process::Command::new(env!("CARGO_BIN_EXE_meshbroker"))
        .args([
            "send",
            "--application",
            "commerce",
            "--type",
            "order.created",
            "--id",
            "order-1",
            "-x",
            "eventtypeversion=v1",
            "--data",
            r#"{"orderId": "42", "total": 9.5}"#,
        ])
        .args(["--events", &broker.events, "--token", &app_token])
        .output()
        .expect("the CLI runs");
    assert_eq!(succeeded(&sent), "event order-1 accepted (202)\n");
    let received = tail.line_with("RECEIVED").await;
    assert!(
        received.contains("order.created")
            && received.contains("id=order-1")
            && received.contains("source=commerce")
            && received.contains("→ new-orders"),
        "{received}"
    );
    let delivered = tail.line_with("DELIVERED").await;
    assert!(
        delivered.contains("id=order-1") && delivered.contains("to new-orders"),
        "{delivered}"
    );
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].header("ce-id"), Some("order-1"));

    // A payload that breaks the schema: the server's words, exit 1.
    let refused = cli(
        &broker,
        &[
            "send",
            "--application",
            "commerce",
            "--type",
            "order.created",
            "-x",
            "eventtypeversion=v1",
            "--data",
            r#"{"total": 9.5}"#,
            "--structured",
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("400") && stderr(&refused).contains("orderId"),
        "{}",
        stderr(&refused)
    );

    // 9: deprovision, seeing the steps; the instance is gone.
    let deprovisioned = succeeded(&cli(&broker, &["deprovision", "orders-a"]));
    assert!(
        deprovisioned.ends_with("serviceinstances/orders-a deprovisioned\n"),
        "{deprovisioned}"
    );
    let left = succeeded(&cli(&broker, &["instances"]));
    assert_eq!(left, "No instances found.\n");
}

#[test]
fn completion_scripts_name_the_commands() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_meshbroker"))
        .args(["completion", "bash"])
        .output()
        .expect("the CLI runs");
    let script = succeeded(&output);
    for command in ["provision", "tail", "trigger", "classes"] {
        assert!(script.contains(command), "{command} completes");
    }
}

#[tokio::test]
async fn login_saves_a_context_that_later_commands_use() {
    let broker = Broker::start().await;
    let home = tempfile::tempdir().expect("directory");
    let config = home.path().join("config.json");
    let empty_data_dir = home.path().join("no-server-here");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_meshbroker"))
            .args(args)
            .env("MESHBROKER_DATA_DIR", &empty_data_dir)
            .env("MESHBROKER_CONFIG", &config)
            .env_remove("MESHBROKER_SERVER")
            .env_remove("MESHBROKER_TOKEN")
            .env_remove("MESHBROKER_CONTEXT")
            .output()
            .expect("the CLI runs")
    };
    let refused = run(&["login", "--server", &broker.control, "--token", "wrong"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(!config.exists(), "a refused login saves nothing");
    let logged_in = succeeded(&run(&[
        "login",
        "--as",
        "local",
        "--server",
        &broker.control,
        "--events",
        &broker.events,
        "--token",
        &broker.admin_token,
    ]));
    assert!(
        logged_in.starts_with(&format!("logged in to {} as admin", broker.control)),
        "{logged_in}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&config)
            .expect("saved")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "only its owner may read the token");
    }
    let namespaces = succeeded(&run(&["get", "namespaces"]));
    assert!(
        namespaces
            .lines()
            .any(|l| l.starts_with("kyma-integration")),
        "{namespaces}"
    );
    let listed = succeeded(&run(&["contexts"]));
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with('*') && l.contains("local")),
        "{listed}"
    );
    let unknown = run(&["use-context", "prod"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("local"), "{}", stderr(&unknown));
    let named = run(&["get", "namespaces", "--context", "prod"]);
    assert_eq!(named.status.code(), Some(2), "{}", stderr(&named));
}

#[tokio::test]
async fn describe_spells_a_trigger_out_and_get_watch_follows_changes() {
    let broker = Broker::start().await;
    crate::common::mesh::provisioned(&broker, &["team-a"]).await;
    let mut watching = TailProcess::start(&broker, &["get", "triggers", "-n", "team-a", "-w"]);
    watching.line_with("No resources found.").await;
    succeeded(&cli(
        &broker,
        &[
            "trigger",
            "create",
            "big",
            "-n",
            "team-a",
            "--type",
            "order.created",
            "--cesql",
            "eventtypeversion = 'v1'",
            "--sink",
            "http://127.0.0.1:9/",
        ],
    ));
    let row = watching.line_with("big").await;
    assert!(row.starts_with("team-a"), "{row}");
    watching.line_with("True").await;

    let described = succeeded(&cli(
        &broker,
        &["describe", "trigger", "big", "-n", "team-a"],
    ));
    assert!(described.contains("Name:        big\n"), "{described}");
    assert!(
        described.contains(
            "Filter:      type = order.created\n             AND CESQL eventtypeversion = 'v1'\n"
        ),
        "{described}"
    );
    assert!(
        described.contains("Subscriber:  http://127.0.0.1:9/\n"),
        "{described}"
    );
    assert!(described.contains("  Ready"), "{described}");
}
