"""The Kubernetes manifests and the compose file: valid against Kubernetes' own schemas (offline,
kubernetes-validate's bundled copies), and true to the code they start."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from deploy import commands
from webapp.metrics import QueueDepth

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.33.0"


def _kustomization() -> dict:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def _resources() -> list[tuple[str, dict]]:
    found = []
    for name in _kustomization()["resources"]:
        for document in yaml.safe_load_all((K8S / name).read_text()):
            found.append((name, document))
    return found


def _of_kind(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for _, doc in _resources() if doc["kind"] == kind}


def _container(deployment: dict) -> dict:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _role(container: dict) -> str:
    command = container["command"]
    assert command[:3] == ["python", "-m", "deploy.commands"], command
    return command[3]


def test_every_file_of_the_folder_is_applied():
    listed = set(_kustomization()["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


@pytest.mark.parametrize(
    ("name", "document"), _resources(), ids=lambda v: v if isinstance(v, str) else v["kind"]
)
def test_each_resource_validates_against_the_kubernetes_schema(name, document):
    # strict: a misspelt or misplaced field is an error, as `kubectl apply` would refuse it.
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_validator_refuses_a_misplaced_field():
    deployment = _of_kind("Deployment")["skinsight-web"]
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_each_role_has_one_deployment_started_as_make_run_starts_it():
    roles = [_role(_container(d)) for d in _of_kind("Deployment").values()]
    assert sorted(roles) == sorted(commands.ROLES)


def test_selectors_pick_their_own_pods():
    for deployment in _of_kind("Deployment").values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    web = _of_kind("Service")["skinsight-web"]
    web_pods = _of_kind("Deployment")["skinsight-web"]["spec"]["template"]["metadata"]["labels"]
    assert web["spec"]["selector"].items() <= web_pods.items()


def test_pods_read_the_shared_config_and_the_secret():
    config = _of_kind("ConfigMap")
    for deployment in _of_kind("Deployment").values():
        sources = _container(deployment)["envFrom"]
        assert {"configMapRef": {"name": "skinsight-config"}} in sources
        assert {"secretRef": {"name": "skinsight-secrets"}} in sources
    assert "skinsight-config" in config
    # No secret value is written into the manifests.
    secret_names = {"DJANGO_SECRET_KEY", "DATABASE_URL", "S3_SECRET_ACCESS_KEY", "METRICS_TOKEN"}
    assert not secret_names & set(config["skinsight-config"]["data"])


def test_inference_is_ready_on_its_health_port_and_scaled_on_its_queue():
    inference = _of_kind("Deployment")["skinsight-inference"]
    container = _container(inference)
    env = {e["name"]: e["value"] for e in container["env"]}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert int(env["WORKER_METRICS_PORT"]) == ports["health"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}

    (hpa,) = _of_kind("HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"]["name"] == "skinsight-inference"
    (metric,) = hpa["spec"]["metrics"]
    assert metric["external"]["metric"]["name"] == QueueDepth.metric_name
    assert metric["external"]["metric"]["selector"]["matchLabels"] == {"queue": "inference"}


def test_web_and_live_probes_name_an_allowed_host():
    config = _of_kind("ConfigMap")["skinsight-config"]["data"]
    allowed = config["DJANGO_ALLOWED_HOSTS"].split(",")
    for name in ("skinsight-web", "skinsight-live"):
        container = _container(_of_kind("Deployment")[name])
        for probe in ("readinessProbe", "livenessProbe"):
            (header,) = container[probe]["httpGet"]["httpHeaders"]
            assert header["name"] == "Host" and header["value"] in allowed


def test_the_ingress_sends_sockets_to_the_live_servers_and_the_rest_to_the_web():
    (ingress,) = _of_kind("Ingress").values()
    (rule,) = ingress["spec"]["rules"]
    routes = {p["path"]: p["backend"]["service"]["name"] for p in rule["http"]["paths"]}
    assert routes == {"/ws/": "skinsight-live", "/": "skinsight-web"}
    services = _of_kind("Service")
    assert set(routes.values()) <= set(services)
    # Same address for pages and sockets, so the pages must not be told another port.
    assert "LIVE_PORT" not in _of_kind("ConfigMap")["skinsight-config"]["data"]


def test_compose_starts_each_role_with_the_same_command():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    roles = set()
    for name, service in compose["services"].items():
        if "build" not in service or name == "migrate":
            continue
        roles.add(_role(service))
    assert roles == set(commands.ROLES)
