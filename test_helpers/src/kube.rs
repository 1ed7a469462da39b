//! A real Kubernetes control plane for tests: etcd and kube-apiserver,
//! built from their Go modules by `scripts/build-tools.sh` into
//! `$HOME/.cache/inflow-tools/bin`, on loopback ports with a temp dir.
//!
//! The API server makes its own self-signed serving certificate; clients
//! authenticate with a static token of group `system:masters` and skip TLS
//! verification (the kubeconfig says so). No kubelet runs: objects are
//! stored and validated, pods are not started.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The versions `scripts/build-tools.sh` builds.
pub const KUBERNETES_VERSION: &str = "v1.36.3";
/// etcd's version.
pub const ETCD_VERSION: &str = "v3.6.16";
/// helm's version.
pub const HELM_VERSION: &str = "v4.3.2";
/// kwok's version.
pub const KWOK_VERSION: &str = "v0.8.0";

/// Where the Go-built tools are.
pub fn tools_bin() -> PathBuf {
    match std::env::var_os("INFLOW_TOOLS") {
        Some(d) => PathBuf::from(d).join("bin"),
        None => {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/inflow-tools/bin")
        }
    }
}

/// The path of a built tool, or a panic naming the script that builds it.
pub fn tool(name: &str, version: &str) -> PathBuf {
    let p = tools_bin().join(format!("{name}-{version}"));
    assert!(
        p.exists(),
        "{} is not built; run scripts/build-tools.sh (scripts/test.sh does)",
        p.display()
    );
    p
}

/// etcd and kube-apiserver (and, with nodes, the controller manager, the
/// scheduler and kwok), killed on drop.
#[derive(Debug)]
pub struct ControlPlane {
    etcd: Child,
    apiserver: Child,
    others: Vec<Child>,
    dir: tempfile::TempDir,
    /// The kubeconfig for `kubectl`, `helm` and kube-rs clients.
    pub kubeconfig: PathBuf,
    /// The API server's URL.
    pub url: String,
}

fn spawn(cmd: &mut Command, log: &Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    let err = out.try_clone().unwrap();
    cmd.stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"))
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver and waits until the API server is ready.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (client, peer, secure) = (super::free_port(), super::free_port(), super::free_port());
        let etcd = spawn(
            Command::new(tool("etcd", ETCD_VERSION))
                .arg("--data-dir")
                .arg(d.join("etcd"))
                .arg(format!("--listen-client-urls=http://127.0.0.1:{client}"))
                .arg(format!("--advertise-client-urls=http://127.0.0.1:{client}"))
                .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
                .arg(format!(
                    "--initial-advertise-peer-urls=http://127.0.0.1:{peer}"
                ))
                .arg(format!("--initial-cluster=default=http://127.0.0.1:{peer}"))
                .arg("--unsafe-no-fsync"),
            &d.join("etcd.log"),
        );
        // The service-account key pair and the admin token.
        let key = d.join("sa.key");
        let ok = Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&key)
            .arg("2048")
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "openssl genrsa failed");
        let token = "inflow-test-admin-token";
        std::fs::write(
            d.join("tokens.csv"),
            format!("{token},admin,admin,\"system:masters\"\n"),
        )
        .unwrap();
        let apiserver = spawn(
            Command::new(tool("kube-apiserver", KUBERNETES_VERSION))
                .arg(format!("--etcd-servers=http://127.0.0.1:{client}"))
                .arg("--cert-dir")
                .arg(d.join("certs"))
                .arg(format!("--secure-port={secure}"))
                .arg("--bind-address=127.0.0.1")
                .arg("--advertise-address=127.0.0.1")
                .arg("--service-cluster-ip-range=10.0.0.0/24")
                .arg("--allow-privileged=true")
                .arg("--authorization-mode=RBAC")
                .arg("--token-auth-file")
                .arg(d.join("tokens.csv"))
                .arg(format!(
                    "--service-account-issuer=https://127.0.0.1:{secure}/"
                ))
                .arg("--service-account-key-file")
                .arg(&key)
                .arg("--service-account-signing-key-file")
                .arg(&key)
                .arg("--disable-admission-plugins=ServiceAccount"),
            &d.join("apiserver.log"),
        );
        let url = format!("https://127.0.0.1:{secure}");
        let kubeconfig = d.join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {url}\n    insecure-skip-tls-verify: true\n\
                 users:\n- name: admin\n  user:\n    token: {token}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: admin\n    namespace: default\n\
                 current-context: test\n"
            ),
        )
        .unwrap();
        let mut plane = Self {
            etcd,
            apiserver,
            others: Vec::new(),
            dir,
            kubeconfig,
            url,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (ok, out, _) = plane.kubectl(&["get", "--raw", "/readyz"]);
            if ok && out.trim() == "ok" {
                break;
            }
            if let Ok(Some(status)) = plane.apiserver.try_wait() {
                panic!(
                    "kube-apiserver exited ({status}):\n{}",
                    plane.log("apiserver.log")
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "kube-apiserver not ready after 120 s:\n{}",
                    plane.log("apiserver.log")
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        plane
    }

    /// Also runs kube-controller-manager and kube-scheduler, and kwok with
    /// one fake node: Deployments and StatefulSets get pods, which are
    /// scheduled and become Running and Ready without a kubelet.
    pub fn start_with_nodes() -> Self {
        let mut plane = Self::start();
        let kubeconfig = plane.kubeconfig.clone();
        let d = plane.dir.path().to_path_buf();
        let common = |cmd: &mut Command| {
            cmd.arg("--kubeconfig")
                .arg(&kubeconfig)
                .arg("--authentication-kubeconfig")
                .arg(&kubeconfig)
                .arg("--authorization-kubeconfig")
                .arg(&kubeconfig)
                .arg("--leader-elect=false")
                .arg(format!("--secure-port={}", super::free_port()))
                .arg("--bind-address=127.0.0.1");
        };
        let mut kcm = Command::new(tool("kube-controller-manager", KUBERNETES_VERSION));
        common(&mut kcm);
        kcm.arg("--controllers=*,-serviceaccount-token")
            .arg("--use-service-account-credentials=false");
        let kcm = spawn(&mut kcm, &d.join("controller-manager.log"));
        plane.others.push(kcm);
        let mut scheduler = Command::new(tool("kube-scheduler", KUBERNETES_VERSION));
        common(&mut scheduler);
        let scheduler = spawn(&mut scheduler, &d.join("scheduler.log"));
        plane.others.push(scheduler);
        // The stages travel inside the binary: a path fixed at build time
        // breaks when the target dir is shared by checkouts elsewhere.
        let stages = d.join("kwok-stages.yaml");
        std::fs::write(&stages, include_str!("../kwok/stages.yaml")).unwrap();
        let kwok = spawn(
            Command::new(tool("kwok", KWOK_VERSION))
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .arg("--config")
                .arg(&stages)
                .arg("--manage-all-nodes=false")
                .arg("--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake")
                .arg("--manage-nodes-with-label-selector=")
                .arg("--cidr=10.0.1.0/24")
                .arg("--node-ip=10.0.1.1")
                .arg(format!("--server-address=127.0.0.1:{}", super::free_port())),
            &d.join("kwok.log"),
        );
        plane.others.push(kwok);
        plane.apply(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: kwok-node-0\n\
             \x20 annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: \"0\"}\n\
             \x20 labels: {kubernetes.io/hostname: kwok-node-0, kubernetes.io/os: linux, kubernetes.io/arch: amd64, type: kwok}\n\
             status:\n  allocatable: {cpu: \"32\", memory: 256Gi, pods: \"110\"}\n\
             \x20 capacity: {cpu: \"32\", memory: 256Gi, pods: \"110\"}\n",
        );
        plane
    }

    /// A log file of the control plane (`etcd.log`, `apiserver.log`).
    pub fn log(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        text.lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A temp dir that lives as long as the control plane.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `kubectl` against this control plane: (success, stdout, stderr).
    pub fn kubectl(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("kubectl: {e}"));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `kubectl apply -f -` of a manifest; panics with kubectl's error.
    pub fn apply(&self, manifest: &str) {
        let path = self
            .dir
            .path()
            .join(format!("manifest-{}.yaml", super::free_port()));
        std::fs::write(&path, manifest).unwrap();
        let (ok, _, err) = self.kubectl(&["apply", "-f", path.to_str().unwrap()]);
        assert!(ok, "kubectl apply failed: {err}\n{manifest}");
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for c in &mut self.others {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.apiserver.kill();
        let _ = self.apiserver.wait();
        let _ = self.etcd.kill();
        let _ = self.etcd.wait();
    }
}
