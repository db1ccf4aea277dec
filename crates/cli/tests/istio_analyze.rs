//! Istio's own analyzers judge everything `magnetar render` produces.
//!
//! For every compatibility manifest (`../shared/compat/*.yaml`) and example
//! (`examples/*.yaml`) that renders, the rendered objects go, with stand-ins
//! for what a cluster holds beside them so that references resolve, through
//! two analyses built from the pinned `istio.io/istio` module by
//! `tools/build-istio.sh`:
//! - `istioctl analyze --use-kube=false --all-namespaces --failure-threshold
//!   Info -o json`, as a user runs it offline. It drops Namespaces, Pods,
//!   Services, Secrets and Nodes from its input files (it reads those only
//!   from a live cluster), so every analyzer needing one is skipped — 21 of
//!   them, among them the gateway's selector, ports and credentialName,
//!   VirtualService destination hosts and AuthorizationPolicy selectors;
//! - `analyze-files` (`tools/istio/cmd/analyze-files`): the same analyzers,
//!   all of them, over the same files with those kinds read as Istio's own
//!   analyzer tests read them.
//!
//! No error and no warning may remain but the accepted ones of [`ACCEPTED`],
//! each listed with its reason in docs/design.md ("istioctl analyze: messages
//! we accept"). Informational messages are printed, not judged.
//!
//! The stand-ins (written to `stand-ins.yaml` beside `rendered.yaml` under
//! the test's target tmpdir, kept for inspection):
//! - a Namespace for each namespace of the render, and `istio-system`;
//! - the pods the controllers would create: `<sts>-<ordinal>` for every
//!   replica of a StatefulSet (with the `statefulset.kubernetes.io/pod-name`
//!   label the per-broker objects select on), `<deployment>-0` for a
//!   Deployment, each with the template's labels, annotations, service
//!   account and containers (name, image, ports), and what the mesh adds at
//!   admission or start: the `istio-proxy` container the injector adds to a
//!   pod labelled `sidecar.istio.io/inject: "true"` or `istio.io/rev`, the
//!   `ambient.istio.io/redirection: enabled` annotation istio-cni sets on a
//!   pod labelled `istio.io/dataplane-mode: ambient`;
//! - the ingress gateway the Istio guide installs in `istio-system`: its pod
//!   (`istio: ingressgateway`, `app: istio-ingressgateway` and StreamNative's
//!   `cloud.streamnative.io/role: istio-ingressgateway`, as `magnetar dev`
//!   stands it in), a pod for any other selector a Gateway names, and a
//!   Service per gateway with the ports of Istio's gateway chart (15021, 80,
//!   443) plus every port the Gateways listen on — opening those is the
//!   user's step, so IST0162 (gateway port not on its Service) does not
//!   judge magnetar here;
//! - a `kubernetes.io/tls` Secret in the gateway's namespace for every
//!   `credentialName` (the analyzer parses the certificate:
//!   `tests/istio/stand-in-tls.crt`, self-signed, valid until 2126).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;

use common::stand_ins::{stand_ins, str_at};
use common::{manifests, render_for_istio};
use magnetar_testenv::crds::yaml_documents;
use magnetar_testenv::istio_tools;
use serde_json::{Value, json};

/// A message the analyzers report that we judge a false positive.
/// `resource` is the message's origin (`Kind namespace/name`, as in
/// `ServiceEntry pulsar/private-cloud-broker-0`); a trailing `*` matches any
/// suffix.
struct Accepted {
    code: &'static str,
    resource: &'static str,
    reason: &'static str,
}

/// Keep in step with docs/design.md, "istioctl analyze: messages we accept".
const ACCEPTED: &[Accepted] = &[];

/// One message of `istioctl analyze -o json` (or `analyze-files`).
#[derive(Debug)]
struct Finding {
    code: String,
    level: String,
    origin: String,
    message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}: {}", self.level, self.code, self.origin, self.message)
    }
}

/// The two analyses.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Tool {
    /// `istioctl analyze` offline.
    Istioctl,
    /// `analyze-files`: every analyzer, Pods and Services included.
    AnalyzeFiles,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Istioctl => "istioctl analyze",
            Tool::AnalyzeFiles => "analyze-files",
        }
    }
}

/// Runs one analysis over `files`: its messages, and the analyzers it
/// skipped (`analyze-files` only).
fn analyze(tool: Tool, files: &[PathBuf]) -> (Vec<Finding>, Vec<String>) {
    let bin = istio_tools().expect("Istio tools (tools/build-istio.sh)").join("bin");
    let mut cmd = match tool {
        Tool::Istioctl => {
            let mut c = Command::new(bin.join("istioctl"));
            c.args(["analyze", "--use-kube=false", "--all-namespaces", "--failure-threshold", "Info", "-o", "json"]);
            c
        }
        Tool::AnalyzeFiles => Command::new(bin.join("analyze-files")),
    };
    let out = cmd.args(files).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{}: {e}", tool.name()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // istioctl: 0, or 79 when messages reach the failure threshold (with
    // `-o json` it exits 0 either way); 65 when it cannot parse a file.
    let code = out.status.code().unwrap_or(-1);
    assert!(code == 0 || code == 79, "{} exited with {code}\nstdout:\n{stdout}\nstderr:\n{stderr}", tool.name());
    let messages: Value = if stdout.trim().is_empty() {
        json!([])
    } else {
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{} JSON: {e}\n{stdout}", tool.name()))
    };
    let messages = messages.as_array().unwrap_or_else(|| panic!("not a JSON array: {stdout}"));
    let findings = messages
        .iter()
        .map(|m| Finding {
            code: str_at(m, "/code").to_string(),
            level: str_at(m, "/level").to_string(),
            origin: str_at(m, "/origin").to_string(),
            message: str_at(m, "/message").to_string(),
        })
        .collect();
    let skipped = stderr.lines().filter_map(|l| l.strip_prefix("skipped ")).map(str::to_string).collect();
    (findings, skipped)
}

fn accepted(f: &Finding) -> Option<&'static Accepted> {
    ACCEPTED.iter().find(|a| {
        a.code == f.code
            && match a.resource.strip_suffix('*') {
                Some(prefix) => f.origin.starts_with(prefix),
                None => a.resource == f.origin,
            }
    })
}

#[test]
fn istioctl_analyze_finds_nothing_in_any_rendered_manifest() {
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("istio_analyze");
    let mut analyzed = 0;
    let mut failures = Vec::new();
    let mut used = BTreeSet::new();
    let mut stand_ins_read = false;
    for path in manifests() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(yaml) = render_for_istio(&path) else {
            eprintln!("{name}: skipped (magnetar refuses it)");
            continue;
        };
        let rendered = yaml_documents(&yaml).unwrap_or_else(|e| panic!("{name}: rendered YAML: {e:#}"));
        assert!(!rendered.is_empty(), "{name}: render produced nothing");
        let dir = work.join(path.file_stem().unwrap());
        std::fs::create_dir_all(&dir).unwrap();
        let rendered_file = dir.join("rendered.yaml");
        let stand_ins_file = dir.join("stand-ins.yaml");
        std::fs::write(&rendered_file, &yaml).unwrap();
        let extra = stand_ins(&rendered);
        let stand_ins: Vec<String> = extra.iter().map(|d| serde_norway::to_string(d).unwrap()).collect();
        std::fs::write(&stand_ins_file, stand_ins.join("---\n")).unwrap();

        // The stand-ins are read: without the gateway's Secret, the first
        // manifest whose Gateway names one gets IST0101 from analyze-files.
        if !stand_ins_read && extra.iter().any(|d| d["kind"] == "Secret") {
            let without: Vec<String> =
                extra.iter().filter(|d| d["kind"] != "Secret").map(|d| serde_norway::to_string(d).unwrap()).collect();
            let without_file = dir.join("stand-ins-without-secrets.yaml");
            std::fs::write(&without_file, without.join("---\n")).unwrap();
            let (findings, _) = analyze(Tool::AnalyzeFiles, &[rendered_file.clone(), without_file]);
            assert!(
                findings.iter().any(|f| f.code == "IST0101" && f.message.contains("credentialName")),
                "{name}: without the TLS Secret analyze-files should report the credentialName: {findings:#?}"
            );
            stand_ins_read = true;
        }

        analyzed += 1;
        eprintln!("{name}: {} object(s) ({})", rendered.len(), dir.display());
        for tool in [Tool::Istioctl, Tool::AnalyzeFiles] {
            let (findings, skipped) = analyze(tool, &[rendered_file.clone(), stand_ins_file.clone()]);
            assert!(skipped.is_empty(), "{name}: {} skipped analyzers: {skipped:?}", tool.name());
            eprintln!("  {}: {} message(s)", tool.name(), findings.len());
            for f in &findings {
                let judged = f.level == "Error" || f.level == "Warning";
                match accepted(f) {
                    Some(a) => {
                        used.insert((a.code, a.resource));
                        eprintln!("    accepted: {f} ({})", a.reason);
                    }
                    None if judged => {
                        eprintln!("    FAIL: {f}");
                        failures.push(format!("{name}: {}: {f}", tool.name()));
                    }
                    None => eprintln!("    info: {f}"),
                }
            }
        }
    }
    assert!(analyzed > 0, "no manifest rendered");
    assert!(stand_ins_read, "no rendered Gateway names a credentialName: the stand-ins went unchecked");
    for a in ACCEPTED.iter().filter(|a| !used.contains(&(a.code, a.resource))) {
        eprintln!(
            "note: accepted {} {} was not reported by any manifest; drop it (and its docs/design.md entry)?",
            a.code, a.resource
        );
    }
    assert!(
        failures.is_empty(),
        "istioctl analyze reported {} error(s)/warning(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Both analyses, run as above, find a broken reference in a namespace other
/// than `default` (without `--all-namespaces` istioctl looks at `default`
/// only and finds nothing): a VirtualService bound to a Gateway that does not
/// exist, routing to a Service that does not exist. Only `analyze-files`
/// sees the second: istioctl offline skips the destination-host analyzer,
/// which needs Services.
#[test]
fn both_analyses_report_a_broken_reference() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("istio_analyze/control");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("broken.yaml");
    let docs = [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "control"}}),
        json!({
            "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "orphan", "namespace": "control"},
            "spec": {
                "hosts": ["orphan.example.com"], "gateways": ["no-such-gateway"],
                "tls": [{"match": [{"port": 6651, "sniHosts": ["orphan.example.com"]}],
                         "route": [{"destination": {"host": "no-such-service.control.svc.cluster.local", "port": {"number": 6651}}}]}]
            }
        }),
    ];
    let text: Vec<String> = docs.iter().map(|d| serde_norway::to_string(d).unwrap()).collect();
    std::fs::write(&file, text.join("---\n")).unwrap();
    for tool in [Tool::Istioctl, Tool::AnalyzeFiles] {
        let (findings, _) = analyze(tool, std::slice::from_ref(&file));
        let found = |needle: &str| findings.iter().any(|f| f.code == "IST0101" && f.message.contains(needle));
        assert!(found("gateway not found: \"no-such-gateway\""), "{}: {findings:#?}", tool.name());
        assert_eq!(
            found("host not found: \"no-such-service.control.svc.cluster.local\""),
            tool == Tool::AnalyzeFiles,
            "{}: {findings:#?}",
            tool.name()
        );
    }
}
