//! The manifests: Kubernetes' schemas accept them, rollouts and stops
//! drain, and certificates wharf makes stay with one pod.

use super::*;

#[test]
fn the_manifests_pass_kubernetes_schemas_and_drain_on_every_rollout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = site(dir.path(), 8080, 9180, "");
    let manifests = stdout(&export(&[
        "kubernetes",
        "-c",
        config.to_str().expect("utf-8"),
        "--image",
        "registry.example.com/my-app:1.0",
        "--name",
        "my-app",
        "--namespace",
        "shop",
        "--replicas",
        "3",
    ]));
    validate(&manifests, dir.path());
    let documents = yaml_documents(&manifests, dir.path());
    let kinds: Vec<&str> = documents
        .iter()
        .filter_map(|d| d["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["Deployment", "Service", "PodDisruptionBudget"]);
    assert!(documents
        .iter()
        .all(|d| d["metadata"]["namespace"] == "shop"));

    let deployment = &kind(&documents, "Deployment")["spec"];
    assert_eq!(deployment["replicas"], 3);
    assert_eq!(deployment["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
    let pod = &deployment["template"]["spec"];
    // preStop 5s + shutdown_timeout 20s + the app's stop_timeout 15s + 5s.
    assert_eq!(pod["terminationGracePeriodSeconds"], 45);
    assert_eq!(pod["securityContext"]["runAsUser"], 10001);
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "registry.example.com/my-app:1.0");
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    // Two instances of 256 MiB and 128 MiB for wharf.
    assert_eq!(container["resources"]["limits"]["memory"], "640Mi");
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"][0],
        "ALL"
    );
    let service = &kind(&documents, "Service")["spec"];
    assert_eq!(service["type"], "ClusterIP");
    assert_eq!(service["ports"][0]["port"], 80);
    assert_eq!(service["ports"][0]["targetPort"], "http");
}

#[test]
fn certificates_wharf_orders_live_on_a_volume_of_one_pod() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = dir.path().join("certificates");
    let config = site(
        dir.path(),
        8080,
        9180,
        &format!(
            "https = [\"0.0.0.0:8443\"]\n[tls]\nmode = \"acme\"\nemail = \"ops@example.com\"\nstorage = \"{}\"\n",
            storage.display()
        ),
    );
    let config_arg = config.to_str().expect("utf-8");
    let manifests = stdout(&export(&[
        "kubernetes",
        "-c",
        config_arg,
        "--image",
        "my-app:1",
    ]));
    validate(&manifests, dir.path());
    let documents = yaml_documents(&manifests, dir.path());
    let deployment = &kind(&documents, "Deployment")["spec"];
    assert_eq!(deployment["strategy"]["type"], "Recreate");
    let pod = &deployment["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["volumeMounts"][0]["mountPath"],
        storage.to_str().expect("utf-8")
    );
    assert_eq!(
        pod["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "wharf"
    );
    kind(&documents, "PersistentVolumeClaim");
    // wharf terminates TLS: it is the edge.
    let service = &kind(&documents, "Service")["spec"];
    assert_eq!(service["type"], "LoadBalancer");
    assert_eq!(service["ports"][1]["port"], 443);

    let dockerfile = stdout(&export(&["dockerfile", "-c", config_arg]));
    let volume = format!("VOLUME [\"{}\"]", storage.display());
    assert!(dockerfile.lines().any(|l| l == volume), "{dockerfile}");
    assert!(dockerfile.contains("EXPOSE 8080 8443"), "{dockerfile}");
    // The image makes its storage; the exporting machine's is left alone.
    assert!(!storage.exists(), "export made {}", storage.display());

    let output = export(&[
        "kubernetes",
        "-c",
        config_arg,
        "--image",
        "my-app:1",
        "--replicas",
        "2",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("--replicas 1"), "{said}");
    for (flag, value) in [("--name", "My_App"), ("--service-type", "Ingress")] {
        let output = export(&[
            "kubernetes",
            "-c",
            config_arg,
            "--image",
            "my-app:1",
            flag,
            value,
        ]);
        assert_eq!(output.status.code(), Some(1), "{flag} {value}");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.contains(value), "{said}");
    }
}

#[test]
fn without_an_admin_api_readiness_is_a_connect_and_port_80_needs_no_capability() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = site(dir.path(), 80, 9180, "");
    let text = std::fs::read_to_string(&config).expect("read");
    std::fs::write(
        &config,
        text.replace("admin = \"127.0.0.1:9180\"", "admin = \"off\""),
    )
    .expect("write");
    let config_arg = config.to_str().expect("utf-8");
    let manifests = stdout(&export(&[
        "kubernetes",
        "-c",
        config_arg,
        "--image",
        "my-app:1",
    ]));
    validate(&manifests, dir.path());
    let documents = yaml_documents(&manifests, dir.path());
    let container = &kind(&documents, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["readinessProbe"]["tcpSocket"]["port"], "http");
    assert!(container["readinessProbe"]["exec"].is_null(), "{container}");
    // Port 80 as uid 10001 with no capability: the safe sysctl.
    let pod = &kind(&documents, "Deployment")["spec"]["template"]["spec"];
    let sysctl = &pod["securityContext"]["sysctls"][0];
    assert_eq!(sysctl["name"], "net.ipv4.ip_unprivileged_port_start");
    assert_eq!(sysctl["value"], "0");
    let security = &container["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"], false, "{security}");
    assert_eq!(security["capabilities"]["drop"][0], "ALL");
    assert!(security["capabilities"]["add"].is_null(), "{security}");

    let dockerfile = stdout(&export(&["dockerfile", "-c", config_arg]));
    assert!(
        !dockerfile.lines().any(|l| l.starts_with("HEALTHCHECK")),
        "{dockerfile}"
    );
    assert!(
        dockerfile.contains("server.admin is \"off\""),
        "{dockerfile}"
    );
}
