//! deploy/ never drifts from the code: the CRDs there are exactly what
//! `meshbroker crds` prints from the Rust types.

#[test]
fn deploy_crds_equal_what_the_binary_prints() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_meshbroker"))
        .arg("crds")
        .output()
        .expect("meshbroker crds runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8(output.stdout).expect("UTF-8");
    let path = format!("{}/deploy/crds.yaml", env!("CARGO_MANIFEST_DIR"));
    let committed = std::fs::read_to_string(&path).expect("deploy/crds.yaml");
    assert!(
        printed == committed,
        "deploy/crds.yaml is stale: run `cargo run -- crds > deploy/crds.yaml`"
    );
    let documents: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&printed).expect("YAML documents");
    let kinds: Vec<&str> = documents
        .iter()
        .filter_map(|d| d["spec"]["names"]["kind"].as_str())
        .collect();
    for kind in [
        "Application",
        "ApplicationMapping",
        "HTTPSource",
        "Channel",
        "Subscription",
        "Broker",
        "Trigger",
        "ServiceInstance",
        "AccessToken",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
}
