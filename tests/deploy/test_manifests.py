"""deploy/kubernetes/: valid Kubernetes objects that agree with the worker they deploy.

The manifests are checked against Kubernetes' own JSON schemas (kubernetes-validate ships
them), and against the code: every WORKER_* name is a real setting, the ConfigMap is a valid
configuration, the ports, probes and grace periods fit how the worker behaves.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from kubernetes_validate import utils as kubernetes_schemas

from tests.broker.operator_mode import Operator
from tests.broker.pki import Authority
from tests.deploy.helpers import (
    EXIT_MARGIN,
    KUBERNETES,
    ROOT,
    WORKER_VARIABLE,
    find,
    kubernetes_objects,
    load_documents,
    setting_variables,
    yaml_files,
)
from worker.broker.embedded import find_nats_server
from worker.config import Settings
from worker.http.app import OPEN_ROUTES, ROUTES

# Kinds from custom resource definitions (Prometheus Operator, KEDA): no schema ships for them.
CUSTOM_KINDS = {"ServiceMonitor", "ScaledObject"}
# The oldest and the newest Kubernetes whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.25.0", kubernetes_schemas.latest_version())


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("WORKER_"):
            monkeypatch.delenv(key)


def _worker_pod() -> dict[str, Any]:
    pod: dict[str, Any] = find("Deployment", "agentos-worker")["spec"]["template"]["spec"]
    return pod


def _worker_container() -> dict[str, Any]:
    (container,) = _worker_pod()["containers"]
    return dict(container)


def _manifest_settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The Settings a worker of the Deployment starts with (secrets stood in for)."""
    container = _worker_container()
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(find("ConfigMap", source["configMapRef"]["name"])["data"])
    secret = load_documents(KUBERNETES / "worker-secret.example.yaml")[0]["stringData"]
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        elif "secretKeyRef" in var.get("valueFrom", {}):
            ref = var["valueFrom"]["secretKeyRef"]
            if ref["key"] in secret:
                env[var["name"]] = secret[ref["key"]]
            else:
                assert ref.get("optional"), f"{var['name']}: key {ref['key']} not in the Secret"
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    return Settings.load([])


def _pod_templates() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"])
        for _, doc in kubernetes_objects()
        if doc["kind"] in {"Deployment", "StatefulSet"}
    ]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_matches_the_kubernetes_schema(version: str) -> None:
    checked = 0
    for path, doc in kubernetes_objects():
        if doc["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_schemas.validate(doc, version, strict=True)
        except kubernetes_schemas.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{path.name} {doc['kind']}: {where}: {exc.message}")
        checked += 1
    assert checked >= 9


def test_kustomization_lists_every_manifest_but_the_examples() -> None:
    (kustomization,) = load_documents(KUBERNETES / "kustomization.yaml")
    on_disk = {
        p.name
        for p in KUBERNETES.glob("*.yaml")
        if p.name != "kustomization.yaml" and ".example." not in p.name
    }
    assert set(kustomization["resources"]) == on_disk
    image = _worker_container()["image"].split(":")[0]
    assert [i["name"] for i in kustomization["images"]] == [image]


def test_every_worker_variable_named_is_a_setting() -> None:
    known = setting_variables()
    files = [
        *yaml_files(ROOT / "deploy"),
        ROOT / "Dockerfile",
        ROOT / "docs" / "operations.md",
    ]
    named: dict[str, set[str]] = {}
    for path in files:
        for name in WORKER_VARIABLE.findall(path.read_text(encoding="utf-8")):
            named.setdefault(name, set()).add(path.name)
    unknown = {name: sorted(where) for name, where in named.items() if name not in known}
    assert not unknown, f"not fields of worker.config.Settings: {unknown}"
    assert len(named) > 20  # the scan found them at all


def test_the_configmap_and_secret_make_a_valid_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _manifest_settings(monkeypatch)
    assert settings.http_host == "0.0.0.0"
    assert settings.auth_tokens, "bound beyond loopback: tokens are required"
    assert not settings.allow_unauthenticated
    assert settings.callback_secret is not None
    assert settings.callback_allow
    # The NATS URL names the NATS Service of nats.yaml, on its client port.
    url = urlsplit(settings.nats_url or "")
    nats = find("Service", "nats")
    assert url.hostname == nats["metadata"]["name"]
    assert url.port in {p["port"] for p in nats["spec"]["ports"] if p["name"] == "nats"}
    # One NATS node keeps one copy: more replicas than servers cannot be created.
    servers = find("StatefulSet", "nats")["spec"]["replicas"]
    assert settings.kv_replicas <= servers
    assert settings.frames_replicas <= servers


def test_container_port_is_the_worker_http_port(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _manifest_settings(monkeypatch)
    ports = {p["name"]: p["containerPort"] for p in _worker_container()["ports"]}
    assert ports == {"http": settings.http_port}
    annotations = find("Deployment", "agentos-worker")["spec"]["template"]["metadata"][
        "annotations"
    ]
    assert int(annotations["prometheus.io/port"]) == settings.http_port
    assert annotations["prometheus.io/path"] in {op.path for op, _ in ROUTES}
    service = find("Service", "agentos-worker")
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "http"


def test_probes_use_the_right_paths_without_a_token() -> None:
    container = _worker_container()
    paths = {
        probe: container[probe]["httpGet"]["path"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    assert paths == {
        "startupProbe": "/healthz",
        "readinessProbe": "/readyz",
        "livenessProbe": "/healthz",
    }
    # Probes send no Authorization header: their paths must be open with WORKER_AUTH_TOKENS set.
    assert set(paths.values()) <= OPEN_ROUTES
    for probe in paths:
        assert container[probe]["httpGet"]["port"] == "http"


def _prestop_seconds(container: dict[str, Any]) -> float:
    pre_stop = container.get("lifecycle", {}).get("preStop", {})
    if "sleep" in pre_stop:
        return float(pre_stop["sleep"]["seconds"])
    command = pre_stop.get("exec", {}).get("command", [])
    if command[:1] == ["sleep"]:
        return float(command[1])
    assert not pre_stop, f"unexpected preStop hook {pre_stop}: count its time here"
    return 0.0


def test_grace_period_outlasts_the_worker_drain(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _manifest_settings(monkeypatch)
    pod = _worker_pod()
    container = _worker_container()
    grace = pod["terminationGracePeriodSeconds"]
    # The kubelet counts a preStop hook's time against the grace period, then sends SIGTERM.
    needed = _prestop_seconds(container) + settings.shutdown_grace + EXIT_MARGIN
    assert grace >= needed, f"terminationGracePeriodSeconds {grace} < {needed}"
    assert settings.shutdown_grace == 25.0
    # The HTTP door closes at SIGTERM while jobs drain: liveness must not give up first.
    liveness = container["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= grace


def test_pool_shape() -> None:
    deployment = find("Deployment", "agentos-worker")
    assert deployment["spec"]["replicas"] == 3
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = {
        "Deployment": deployment["spec"]["selector"]["matchLabels"],
        "Service": find("Service", "agentos-worker")["spec"]["selector"],
        "PodDisruptionBudget": find("PodDisruptionBudget", "agentos-worker")["spec"]["selector"][
            "matchLabels"
        ],
        "ServiceMonitor": find("ServiceMonitor", "agentos-worker")["spec"]["selector"][
            "matchLabels"
        ],
    }
    for kind, selector in selectors.items():
        assert selector.items() <= pod_labels.items(), f"{kind} selects no worker pod"
    resources = _worker_container()["resources"]
    assert resources["requests"]["cpu"]
    assert resources["requests"]["memory"]
    assert resources["limits"]["memory"]


def test_secret_references_agree() -> None:
    secret = load_documents(KUBERNETES / "worker-secret.example.yaml")[0]
    keys = set(secret["stringData"])
    for var in _worker_container()["env"]:
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None:
            assert ref["name"] == secret["metadata"]["name"]
            assert ref["key"] in keys or ref.get("optional")
    (endpoint,) = find("ServiceMonitor", "agentos-worker")["spec"]["endpoints"]
    credentials = endpoint["authorization"]["credentials"]
    assert credentials == {"name": secret["metadata"]["name"], "key": "metrics-token"}
    assert endpoint["port"] == "http"
    # The metrics token must be one of the worker's tokens, or /metrics answers 401.
    tokens = {t.strip() for t in secret["stringData"]["WORKER_AUTH_TOKENS"].split(",")}
    assert secret["stringData"]["metrics-token"] in tokens


def test_keda_scales_the_pool_consumer() -> None:
    scaled = find("ScaledObject", "agentos-worker")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "agentos-worker"
    (trigger,) = scaled["spec"]["triggers"]
    defaults = Settings.model_fields
    assert trigger["metadata"]["stream"] == defaults["tasks_stream"].default
    assert trigger["metadata"]["consumer"] == defaults["tasks_consumer"].default
    (kustomization,) = load_documents(KUBERNETES / "kustomization.yaml")
    host = trigger["metadata"]["natsServerMonitoringEndpoint"]
    assert host == f"nats.{kustomization['namespace']}.svc.cluster.local:8222"
    assert (
        scaled["spec"]["minReplicaCount"]
        <= find("Deployment", "agentos-worker")["spec"]["replicas"]
    )


@pytest.mark.parametrize("name", [name for name, _ in _pod_templates()])
def test_pods_meet_the_restricted_security_profile(name: str) -> None:
    pod = dict(_pod_templates())[name]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"]:
        ctx = container["securityContext"]
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"]
        assert ctx["readOnlyRootFilesystem"] is True


def _mounts(container: dict[str, Any], pod: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """Each mount path of ``container``, with the volume mounted there."""
    volumes = {v["name"]: v for v in pod["volumes"]}
    return {m["mountPath"]: (m["name"], volumes.get(m["name"])) for m in container["volumeMounts"]}


def test_nats_config_is_accepted_by_nats_server(tmp_path: Path) -> None:
    """nats.conf, with stand-ins for what its Secrets hold (accounts from an operator made
    here, a certificate from a CA made here), where its volumes put them."""
    config = find("ConfigMap", "nats-config")["data"]["nats.conf"]
    statefulset = find("StatefulSet", "nats")
    pod = statefulset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = _mounts(container, pod)
    # The config folder projects nats.conf and the Secret nats-auth's auth.conf together.
    _, projected = mounts["/etc/nats-config"]
    sources = projected["projected"]["sources"]
    assert {"name": "nats-config"} in [s.get("configMap") for s in sources]
    (auth,) = [s["secret"] for s in sources if "secret" in s]
    assert auth["name"] == "nats-auth"
    assert auth["items"] == [{"key": "auth.conf", "path": "auth.conf"}]
    assert "include ./auth.conf" in config
    (tmp_path / "nats.conf").write_text(config, encoding="utf-8")
    (tmp_path / "auth.conf").write_text(Operator().resolver_config(), encoding="utf-8")
    # The server's certificate and key, in the Secret nats-server-tls's volume.
    _, tls = mounts["/etc/nats-tls"]
    assert tls["secret"]["secretName"] == "nats-server-tls"
    assert [i["path"] for i in tls["secret"]["items"]] == ["tls.crt", "tls.key"]
    issued = Authority("ca", tmp_path / "pki").issue("nats", hosts=("nats",))
    config = config.replace("/etc/nats-tls/tls.crt", str(issued.cert))
    config = config.replace("/etc/nats-tls/tls.key", str(issued.key))
    assert "/etc/nats-tls" not in config
    (tmp_path / "nats.conf").write_text(config, encoding="utf-8")
    done = subprocess.run(
        [str(find_nats_server()), "-t", "-c", str(tmp_path / "nats.conf")],
        env={**os.environ, "SERVER_NAME": "nats-0"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert "store_dir: /data" in config
    assert mounts["/data"][0] == claim["metadata"]["name"]


def test_workers_reach_nats_over_tls_with_mounted_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _manifest_settings(monkeypatch)
    assert urlsplit(settings.nats_url or "").scheme == "tls"
    assert settings.nats_creds is not None
    assert settings.nats_tls_ca is not None
    mounts = _mounts(_worker_container(), _worker_pod())
    examples = {
        doc["metadata"]["name"]: doc
        for doc in load_documents(KUBERNETES / "nats-secrets.example.yaml")
    }
    # The credentials file is an item of the Secret nats-credentials, where it is mounted.
    _, creds = mounts[str(settings.nats_creds.parent)]
    assert creds["secret"]["secretName"] == "nats-credentials"
    (item,) = creds["secret"]["items"]
    assert item["path"] == settings.nats_creds.name
    assert item["key"] in examples["nats-credentials"]["stringData"]
    # The CA is the ConfigMap nats-ca's.
    _, ca = mounts[str(settings.nats_tls_ca.parent)]
    assert ca["configMap"]["name"] == "nats-ca"
    (item,) = ca["configMap"]["items"]
    assert item["path"] == settings.nats_tls_ca.name
    assert item["key"] in examples["nats-ca"]["data"]
    # The server's side: its volumes read the keys the example objects have.
    nats_pod = find("StatefulSet", "nats")["spec"]["template"]["spec"]
    for volume in nats_pod["volumes"]:
        secrets = [volume.get("secret")] + [
            s.get("secret") for s in volume.get("projected", {}).get("sources", [])
        ]
        for secret in filter(None, secrets):
            name = secret.get("secretName") or secret["name"]
            keys = examples[name]["stringData"]
            assert all(i["key"] in keys for i in secret["items"]), name
