//! A real Kubernetes API server for one test (scripts/kube-apiserver.sh: etcd and
//! kube-apiserver, no controllers), with meshbroker's CRDs from deploy/crds.yaml
//! and a user for meshbroker that is its deploy/ ServiceAccount, bound by RBAC to
//! a ClusterRole — the one in deploy/meshbroker.yaml unless a test narrows it.

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::PostParams;
use serde_json::Value;

use super::eventually;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kube-apiserver.sh");
const SERVICE_ACCOUNT: &str = "system:serviceaccount:meshbroker-system:meshbroker";
/// meshbroker's own namespace in deploy/: the leader election Lease, the CA Secret.
pub const LEASE_NAMESPACE: &str = "meshbroker-system";

pub struct Cluster {
    dir: tempfile::TempDir,
    /// An administrator (system:masters), for what the test sets up or plays.
    pub admin: kube::Client,
}

impl Cluster {
    /// A server where meshbroker has exactly the deploy/ ClusterRole.
    pub async fn start() -> Self {
        Self::start_with_role(deploy_object("ClusterRole")).await
    }

    pub async fn start_with_role(role: ClusterRole) -> Self {
        let dir = tempfile::tempdir().expect("cluster directory");
        let token = format!("mb{}", std::process::id());
        let user = format!(
            "{token},{SERVICE_ACCOUNT},meshbroker-sa,\"system:serviceaccounts,system:serviceaccounts:meshbroker-system\""
        );
        script(&["start", path_str(dir.path()), "RBAC", &user]);
        let admin = client(&dir.path().join("kubeconfig")).await;
        let cluster = Self { dir, admin };
        cluster.write_meshbroker_kubeconfig(&token);
        cluster.apply_crds().await;
        let roles: Api<ClusterRole> = Api::all(cluster.admin.clone());
        roles
            .create(&PostParams::default(), &role)
            .await
            .expect("ClusterRole created");
        let bindings: Api<ClusterRoleBinding> = Api::all(cluster.admin.clone());
        bindings
            .create(&PostParams::default(), &deploy_object("ClusterRoleBinding"))
            .await
            .expect("ClusterRoleBinding created");
        cluster
    }

    /// meshbroker's own namespace with deploy/'s Role and RoleBinding there:
    /// its leader election Lease and the Connector's CA Secret.
    pub async fn grant_own_namespace(&self) {
        let namespaces: Api<Namespace> = Api::all(self.admin.clone());
        let mut namespace = Namespace::default();
        namespace.metadata.name = Some(LEASE_NAMESPACE.into());
        namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .expect("meshbroker's namespace created");
        let roles: Api<Role> = Api::namespaced(self.admin.clone(), LEASE_NAMESPACE);
        roles
            .create(&PostParams::default(), &deploy_object("Role"))
            .await
            .expect("Role created");
        let bindings: Api<RoleBinding> = Api::namespaced(self.admin.clone(), LEASE_NAMESPACE);
        bindings
            .create(&PostParams::default(), &deploy_object("RoleBinding"))
            .await
            .expect("RoleBinding created");
    }

    /// Who holds the leader election Lease now.
    pub async fn leader(&self) -> Option<String> {
        let leases: Api<Lease> = Api::namespaced(self.admin.clone(), LEASE_NAMESPACE);
        let lease = leases.get_opt("meshbroker").await.ok()??;
        lease.spec?.holder_identity.filter(|h| !h.is_empty())
    }

    /// kubectl as an administrator (system:masters): its output, or why it
    /// failed.
    pub fn kubectl(&self, args: &[&str]) -> Result<String, String> {
        kubectl(&self.dir.path().join("kubeconfig"), args)
    }

    /// Creates `object` with kubectl, past meshbroker (and its checks).
    pub fn create_past_meshbroker(&self, object: &serde_json::Value) {
        let file = tempfile::NamedTempFile::new().expect("file");
        std::fs::write(file.path(), object.to_string()).expect("written");
        let path = file.path().display().to_string();
        self.kubectl(&["create", "-f", &path])
            .expect("the API server takes it");
    }

    /// The kubeconfig meshbroker runs with: its ServiceAccount's identity.
    pub fn meshbroker_kubeconfig(&self) -> PathBuf {
        self.dir.path().join("meshbroker.kubeconfig")
    }

    /// Restarts the API server on the same etcd and port (the state is kept).
    pub fn restart_apiserver(&self) {
        script(&["restart-apiserver", path_str(self.dir.path())]);
    }

    /// What the API server logged (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kube-apiserver.log")).unwrap_or_default()
    }

    fn write_meshbroker_kubeconfig(&self, token: &str) {
        let env = std::fs::read_to_string(self.dir.path().join("env")).expect("cluster env");
        let value = |key: &str| {
            env.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or_else(|| panic!("{key} in the cluster env"))
                .to_string()
        };
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\n\
             clusters:\n- name: test\n  cluster:\n    server: {}\n    certificate-authority: {}\n\
             users:\n- name: meshbroker\n  user:\n    token: {token}\n\
             contexts:\n- name: test\n  context:\n    cluster: test\n    user: meshbroker\n\
             current-context: test\n",
            value("SERVER"),
            value("CA_FILE"),
        );
        std::fs::write(self.meshbroker_kubeconfig(), kubeconfig).expect("kubeconfig written");
    }

    async fn apply_crds(&self) {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/crds.yaml"))
                .expect("deploy/crds.yaml");
        let crds: Vec<CustomResourceDefinition> =
            serde_saphyr::from_multiple(&text).expect("CRDs parse");
        let api: Api<CustomResourceDefinition> = Api::all(self.admin.clone());
        for crd in &crds {
            api.create(&PostParams::default(), crd)
                .await
                .unwrap_or_else(|e| panic!("the API server takes {:?}: {e}", crd.metadata.name));
        }
        for crd in &crds {
            let name = crd.metadata.name.clone().unwrap_or_default();
            eventually(&format!("CRD {name} to be established"), async || {
                let crd = api.get(&name).await.ok()?;
                crd.status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            })
            .await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        script(&["stop", path_str(self.dir.path())]);
    }
}

/// The object of `kind` in deploy/meshbroker.yaml.
pub fn deploy_object<T: serde::de::DeserializeOwned>(kind: &str) -> T {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/meshbroker.yaml"
    ))
    .expect("deploy/meshbroker.yaml");
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text).expect("deploy YAML parses");
    let object = documents
        .into_iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("a {kind} in deploy/meshbroker.yaml"));
    serde_json::from_value(object).expect("deploy object has its kind's shape")
}

async fn client(kubeconfig: &Path) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("client config");
    kube::Client::try_from(config).expect("client")
}

fn script(args: &[&str]) {
    let output = Command::new(SCRIPT)
        .args(args)
        .output()
        .expect("scripts/kube-apiserver.sh runs");
    assert!(
        output.status.success(),
        "scripts/kube-apiserver.sh {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

/// Runs kubectl (installed by scripts/kubectl.sh) with `kubeconfig`: its
/// standard output when it succeeds, else what it said.
pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> Result<String, String> {
    let output = std::process::Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("kubectl runs (installed by scripts/kubectl.sh)");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).to_string();
    if output.status.success() {
        Ok(text(&output.stdout))
    } else {
        Err(format!("{}{}", text(&output.stdout), text(&output.stderr)))
    }
}
