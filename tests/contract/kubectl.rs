//! kubectl against the embedded store, as a platform team would drive it: the
//! control listener over TLS (kubectl sends a bearer token over TLS only),
//! discovery, apply, wait, patch and delete. kubectl is installed by
//! scripts/kubectl.sh; the flags used are ones both Debian's kubectl 1.20 and
//! current ones take.

use std::path::Path;

use crate::common::Broker;
use crate::common::kube::kubectl;

/// A self-signed certificate for 127.0.0.1, written as PEM files in `dir`:
/// (certificate, key).
fn certificate_in(dir: &Path) -> (String, String) {
    let issued = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
        .expect("a self-signed certificate");
    let cert = dir.join("control.crt");
    let key = dir.join("control.key");
    std::fs::write(&cert, issued.cert.pem()).expect("write the certificate");
    std::fs::write(&key, issued.signing_key.serialize_pem()).expect("write the key");
    let text = |p: &Path| p.to_str().expect("a UTF-8 path").to_string();
    (text(&cert), text(&key))
}

struct Kubectl {
    kubeconfig: String,
}

impl Kubectl {
    fn for_broker(broker: &Broker, ca: &str, dir: &Path) -> Self {
        let kubeconfig = dir.join("kubeconfig");
        let config = format!(
            "apiVersion: v1\nkind: Config\n\
             clusters: [{{name: mesh, cluster: {{server: \"{}\", certificate-authority: \"{ca}\"}}}}]\n\
             users: [{{name: admin, user: {{token: \"{}\"}}}}]\n\
             contexts: [{{name: mesh, context: {{cluster: mesh, user: admin}}}}]\n\
             current-context: mesh\n",
            broker.control, broker.admin_token
        );
        std::fs::write(&kubeconfig, config).expect("write the kubeconfig");
        Self {
            kubeconfig: kubeconfig.to_str().expect("a UTF-8 path").to_string(),
        }
    }

    fn run(&self, args: &[&str]) -> Result<String, String> {
        kubectl(Path::new(&self.kubeconfig), args)
    }

    fn ok(&self, args: &[&str]) -> String {
        self.run(args)
            .unwrap_or_else(|failure| panic!("kubectl {}: {failure}", args.join(" ")))
    }
}

const MANIFEST: &str = "\
apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: orders, namespace: demo}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: paid, namespace: demo}
spec:
  broker: orders
  filter: {attributes: {type: order.paid}}
  subscriber: {uri: \"http://127.0.0.1:9/\"}
";

#[tokio::test]
async fn kubectl_applies_waits_patches_and_deletes() {
    let files = tempfile::tempdir().expect("temporary directory");
    let (cert, key) = certificate_in(files.path());
    let broker =
        Broker::start_with(&["--control-tls-cert", &cert, "--control-tls-key", &key]).await;
    assert!(broker.control.starts_with("https://"), "{}", broker.control);
    let kubectl = Kubectl::for_broker(&broker, &cert, files.path());

    let kinds = kubectl.ok(&["api-resources"]);
    for kind in [
        "triggers",
        "brokers",
        "subscriptions",
        "channels",
        "namespaces",
    ] {
        assert!(kinds.contains(kind), "{kind} not discovered:\n{kinds}");
    }

    let manifest = files.path().join("mesh.yaml");
    std::fs::write(&manifest, MANIFEST).expect("write the manifest");
    let manifest = manifest.to_str().expect("a UTF-8 path");
    // No OpenAPI document is served (kubectl wants it as protobuf), so
    // kubectl's own schema check is off; the server validates every write.
    let applied = kubectl.ok(&["apply", "--validate=false", "-f", manifest]);
    assert!(
        applied.contains("trigger.eventing.knative.dev/paid created"),
        "{applied}"
    );
    let waited = kubectl.ok(&[
        "wait",
        "--for=condition=Ready",
        "trigger/paid",
        "-n",
        "demo",
        "--timeout=60s",
    ]);
    assert!(waited.contains("condition met"), "{waited}");

    kubectl.ok(&[
        "patch",
        "trigger",
        "paid",
        "-n",
        "demo",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"filter":{"attributes":{"type":"order.refunded"}}}}"#,
    ]);
    let read = |path: &str| {
        kubectl.ok(&[
            "get",
            "trigger",
            "paid",
            "-n",
            "demo",
            "-o",
            &format!("jsonpath={path}"),
        ])
    };
    assert_eq!(read("{.spec.filter.attributes.type}"), "order.refunded");
    kubectl.ok(&[
        "patch",
        "trigger",
        "paid",
        "-n",
        "demo",
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/spec/subscriber/uri","value":"http://127.0.0.1:10/"}]"#,
    ]);
    assert_eq!(read("{.spec.subscriber.uri}"), "http://127.0.0.1:10/");
    let refused = kubectl
        .run(&[
            "patch",
            "trigger",
            "paid",
            "-n",
            "demo",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"broker":"other"}}"#,
        ])
        .expect_err("spec.broker is immutable");
    assert!(refused.contains("spec.broker"), "{refused}");

    // Applied again, the manifest is a merge patch of what changed since.
    std::fs::write(manifest, MANIFEST.replace("order.paid", "order.shipped")).expect("rewrite");
    let reapplied = kubectl.ok(&["apply", "--validate=false", "-f", manifest]);
    assert!(
        reapplied.contains("trigger.eventing.knative.dev/paid configured"),
        "{reapplied}"
    );
    assert_eq!(read("{.spec.filter.attributes.type}"), "order.shipped");

    // Neither a server-side dry run nor a field selector naming no object
    // deletes anything.
    kubectl.ok(&[
        "delete",
        "trigger",
        "paid",
        "-n",
        "demo",
        "--dry-run=server",
    ]);
    let selected = kubectl.ok(&[
        "delete",
        "triggers",
        "-n",
        "demo",
        "--field-selector",
        "metadata.name=nothing",
    ]);
    assert!(!selected.contains("paid"), "{selected}");
    assert_eq!(read("{.spec.filter.attributes.type}"), "order.shipped");

    kubectl.ok(&["delete", "trigger", "paid", "-n", "demo"]);
    let gone = kubectl
        .run(&["get", "trigger", "paid", "-n", "demo"])
        .expect_err("deleted");
    assert!(
        gone.contains("NotFound") || gone.contains("not found"),
        "{gone}"
    );
}
