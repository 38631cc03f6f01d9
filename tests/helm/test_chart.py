"""The Helm chart (helm/keysvc): rendered, linted and schema-checked offline.

Rendering and linting use helm-python-sdk (Helm's Go SDK as a library), so these are
Helm's own template engine, values-schema check and linter, not a re-implementation.
Every rendered core manifest is validated with kubernetes-validate against the
Kubernetes 1.30 OpenAPI schemas (strict: unknown fields fail) and against 1.27, the
chart's minimum kubeVersion. The Prometheus Operator CRDs have no bundled schema, so
ServiceMonitor and PrometheusRule are checked structurally here.
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml
from helm_python import HelmRenderError, HelmValuesError

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "keysvc"
RELEASE = "ks"
NAMESPACE = "keysvc"
FULLNAME = "ks-keysvc"
K8S_VERSIONS = ("1.27.0", "1.30.0")
MONITORING_API = "monitoring.coreos.com/v1"
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
SELECTOR = {"app.kubernetes.io/name": "keysvc", "app.kubernetes.io/instance": RELEASE}
STANDARD_LABELS = (
    "helm.sh/chart",
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
)

# The private render path below was verified against exactly this release.
HELM_PYTHON_SDK_VERSION = "0.2.2"

DEFAULT: dict[str, Any] = {}

# Everything optional switched off; a throwaway embedded install without a volume.
MINIMAL: dict[str, Any] = {
    "serviceAccount": {"create": False, "automountToken": False},
    "podDisruptionBudget": {"enabled": False},
    "startupProbe": {"enabled": False},
    "persistence": {"enabled": False, "allowEphemeral": True},
    "tests": {"enabled": False},
}

PRODUCTION: dict[str, Any] = {
    "replicaCount": 3,
    "image": {"repository": "registry.example.com/keysvc", "digest": "sha256:" + "ab" * 32},
    "kek": {"provider": "vault-transit"},
    "vault": {
        "addr": "https://vault.vault.svc:8200",
        "namespace": "callcenter",
        "role": "keysvc",
        "caName": "vault-ca",
    },
    "store": {
        "url": "postgresql://keysvc@postgres.db.svc:5432/keysvc",
        "existingSecret": "keysvc-store",
        "existingSecretPasswordKey": "password",
    },
    "tls": {"enabled": True, "secretName": "keysvc-tls"},
    "access": {"tokensSecret": "keysvc-tokens", "policy": '[[rule]]\nrole = "ivr"\n'},
    "metrics": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "prometheusRule": {"enabled": True, "rotationPeriodSeconds": 2592000},
    },
    "autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 9},
    "networkPolicy": {
        "enabled": True,
        "postgresql": {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "db"}},
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "postgresql"}},
                }
            ]
        },
    },
    "topologySpreadConstraints": [
        {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"}
    ],
    "extraEnv": {"KEYSVC_CACHE_DEK_TTL_SECONDS": 120},
}


def merged(base: dict[str, Any], **override: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with top-level sections deep-merged from ``override``."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


# ---- rendering -----------------------------------------------------------------------


def render_raw(values: dict[str, Any], api_versions: tuple[str, ...] = ()) -> dict[str, str]:
    with helm_python.Chart.load(CHART) as chart:
        if not api_versions:
            return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        # Chart.render() exposes no api_versions (needed for .Capabilities.APIVersions.Has on
        # the Prometheus Operator API), so this one call goes to the native function, as
        # documented in conventions.md. It is private: only trust it on the pinned version.
        installed = importlib.metadata.version("helm-python-sdk")
        assert installed == HELM_PYTHON_SDK_VERSION, (
            f"helm-python-sdk {installed}: re-verify the private helm_render options, then update the pin"
        )
        from helm_python import _native

        opts = {
            "name": RELEASE,
            "namespace": NAMESPACE,
            "is_install": True,
            "api_versions": list(api_versions),
        }
        out: dict[str, str] = json.loads(
            _native.call_string("helm_render", chart._raw(), json.dumps(values), json.dumps(opts))
        )
        return out


class Rendered:
    """One render: manifests as objects (whitespace-only templates dropped) plus NOTES.txt."""

    def __init__(self, values: dict[str, Any], api_versions: tuple[str, ...] = ()) -> None:
        self.values = values
        self.files = render_raw(values, api_versions)
        self.notes = ""
        self.objects: list[dict[str, Any]] = []
        for path, text in sorted(self.files.items()):
            if path.endswith("NOTES.txt"):
                self.notes = text
                continue
            for doc in yaml.safe_load_all(text):
                if doc:
                    doc["__path"] = path
                    self.objects.append(doc)

    def kinds(self) -> list[str]:
        return sorted(o["kind"] for o in self.objects)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [o for o in self.all(kind) if name is None or o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
        return found[0]

    @property
    def deployment(self) -> dict[str, Any]:
        return self.one("Deployment")

    @property
    def pod(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.deployment["spec"]["template"]["spec"]
        return spec

    @property
    def container(self) -> dict[str, Any]:
        containers = self.pod["containers"]
        assert [c["name"] for c in containers] == ["keysvc"]
        return dict(containers[0])

    @property
    def config(self) -> dict[str, Any]:
        return tomllib.loads(self.one("ConfigMap", FULLNAME)["data"]["keysvc.toml"])

    def test_pod(self) -> dict[str, Any]:
        return self.one("Pod")


@pytest.fixture(scope="module")
def default() -> Rendered:
    return Rendered(DEFAULT)


@pytest.fixture(scope="module")
def minimal() -> Rendered:
    return Rendered(MINIMAL)


@pytest.fixture(scope="module")
def production() -> Rendered:
    return Rendered(PRODUCTION, api_versions=(MONITORING_API,))


@pytest.fixture(scope="module")
def all_renders(default: Rendered, minimal: Rendered, production: Rendered) -> dict[str, Rendered]:
    return {"default": default, "minimal": minimal, "production": production}


def strip(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if not k.startswith("__")}


# ---- lint and schema validation ------------------------------------------------------


@pytest.mark.parametrize("values", [DEFAULT, MINIMAL, PRODUCTION], ids=["default", "minimal", "production"])
def test_lint_reports_no_errors_or_warnings(values: dict[str, Any]) -> None:
    report = helm_python.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version="v1.30.0")
    assert report["total_charts_linted"] == 1
    assert report["errors"] == []
    # severity 2 = warning, 3 = error; the only finding left is INFO "icon is recommended".
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_every_core_manifest_passes_strict_kubernetes_schema(all_renders: dict[str, Rendered]) -> None:
    checked = 0
    for label, rendered in all_renders.items():
        for obj in rendered.objects:
            if obj["kind"] in CRD_KINDS:
                continue
            for version in K8S_VERSIONS:
                try:
                    kubernetes_validate.validate(strip(obj), version, strict=True)
                except kubernetes_validate.ValidationError as exc:  # pragma: no cover - failure path
                    pytest.fail(f"{label}: {obj['__path']} invalid for k8s {version}: {exc.message}")
            checked += 1
    assert checked >= 20


def test_the_validator_is_strict_enough_to_catch_a_typo(default: Rendered) -> None:
    deployment = strip(copy.deepcopy(default.deployment))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grcp"] = {"port": 1}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.30.0", strict=True)


def test_each_value_set_renders_the_expected_objects(all_renders: dict[str, Rendered]) -> None:
    assert all_renders["default"].kinds() == sorted(
        [
            "ConfigMap",
            "ConfigMap",
            "Deployment",
            "PersistentVolumeClaim",
            "PodDisruptionBudget",
            "Pod",
            "Service",
            "ServiceAccount",
        ]
    )
    assert all_renders["minimal"].kinds() == ["ConfigMap", "ConfigMap", "Deployment", "Service"]
    assert all_renders["production"].kinds() == sorted(
        [
            "ConfigMap",
            "ConfigMap",
            "Deployment",
            "HorizontalPodAutoscaler",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Pod",
            "PrometheusRule",
            "Service",
            "ServiceAccount",
            "ServiceMonitor",
        ]
    )


# ---- labels and selectors ------------------------------------------------------------


def test_every_object_has_the_standard_labels(all_renders: dict[str, Rendered]) -> None:
    for rendered in all_renders.values():
        for obj in rendered.objects:
            labels = obj["metadata"]["labels"]
            missing = [k for k in STANDARD_LABELS if k not in labels]
            assert not missing, f"{obj['__path']} lacks {missing}"
            assert labels["helm.sh/chart"] == "keysvc-0.1.0"
            assert labels["app.kubernetes.io/managed-by"] == "Helm"
            assert labels["app.kubernetes.io/instance"] == RELEASE
            assert obj["metadata"]["namespace"] == NAMESPACE


def test_selectors_use_only_name_and_instance(production: Rendered) -> None:
    deployment = production.deployment
    assert deployment["spec"]["selector"] == {"matchLabels": SELECTOR}
    template_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert SELECTOR.items() <= template_labels.items()
    assert production.one("Service")["spec"]["selector"] == SELECTOR
    assert production.one("PodDisruptionBudget")["spec"]["selector"] == {"matchLabels": SELECTOR}
    assert production.one("NetworkPolicy")["spec"]["podSelector"] == {"matchLabels": SELECTOR}
    assert production.one("ServiceMonitor")["spec"]["selector"] == {"matchLabels": SELECTOR}
    spread = production.pod["topologySpreadConstraints"][0]
    assert spread["labelSelector"] == {"matchLabels": SELECTOR}


def test_test_pod_is_not_selected_by_the_deployment_or_service(default: Rendered) -> None:
    labels = default.test_pod()["metadata"]["labels"]
    assert not SELECTOR.items() <= labels.items(), "a ReplicaSet would adopt the test pod"


# ---- pod security --------------------------------------------------------------------


@pytest.mark.parametrize("which", ["default", "minimal", "production"])
def test_pod_meets_the_restricted_pod_security_standard(all_renders: dict[str, Rendered], which: str) -> None:
    rendered = all_renders[which]
    pod, container = rendered.pod, rendered.container
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc.get("privileged") is False
    assert "hostNetwork" not in pod and "hostPID" not in pod
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]


@pytest.mark.parametrize("which", ["default", "minimal", "production"])
def test_writable_paths_are_emptydirs(all_renders: dict[str, Rendered], which: str) -> None:
    rendered = all_renders[which]
    volumes = {v["name"]: v for v in rendered.pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in rendered.container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    env = {e["name"]: e for e in rendered.container["env"]}
    multiproc = env["PROMETHEUS_MULTIPROC_DIR"]["value"]
    assert "emptyDir" in volumes[mounts[multiproc]]
    # Every mount that is not an emptyDir or the data volume is read-only.
    for mount in rendered.container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "emptyDir" not in volume and "persistentVolumeClaim" not in volume:
            assert mount.get("readOnly") is True, mount


def test_test_pod_is_restricted_too(default: Rendered) -> None:
    pod = default.test_pod()
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["spec"]["containers"]:
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"] == {"drop": ["ALL"]}


# ---- probes, ports and the health service --------------------------------------------


def container_ports(rendered: Rendered) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in rendered.container["ports"]}


def test_plaintext_probes_use_the_grpc_port(default: Rendered) -> None:
    ports = container_ports(default)
    assert ports == {"grpc": 50051, "metrics": 9090}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert default.container[probe]["grpc"] == {"port": 50051, "service": ""}
    assert "health_listen" not in default.config["server"]


def test_with_mtls_probes_use_the_plaintext_health_port(production: Rendered) -> None:
    ports = container_ports(production)
    assert ports == {"grpc": 50051, "grpc-health": 50052, "metrics": 9090}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert production.container[probe]["grpc"] == {"port": 50052, "service": ""}
    assert production.config["server"]["health_listen"] == "0.0.0.0:50052"
    service_ports = {p["name"]: p["port"] for p in production.one("Service")["spec"]["ports"]}
    assert service_ports == ports


def test_minimal_can_turn_off_the_startup_probe(minimal: Rendered) -> None:
    assert "startupProbe" not in minimal.container
    assert "livenessProbe" in minimal.container and "readinessProbe" in minimal.container


def test_helm_test_hook_checks_every_health_service(default: Rendered, production: Rendered) -> None:
    for rendered, port in ((default, 50051), (production, 50052)):
        pod = rendered.test_pod()
        assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
        assert pod["spec"]["restartPolicy"] == "Never"
        services = []
        for container in pod["spec"]["containers"]:
            assert container["image"] == "ghcr.io/grpc-ecosystem/grpc-health-probe:v0.4.40"
            args = container["args"]
            assert f"-addr={FULLNAME}.{NAMESPACE}.svc:{port}" in args
            services += [a.removeprefix("-service=") for a in args if a.startswith("-service=")]
        assert services == ["", "keysvc.v1.Crypto", "keysvc.v1.Tokenization", "keysvc.v1.Admin"]
    # The NetworkPolicy lets it in as a client.
    assert production.test_pod()["metadata"]["labels"]["keysvc.io/client"] == "true"


def test_test_image_is_configurable() -> None:
    rendered = Rendered({"tests": {"image": {"repository": "probe.example/grpc-health-probe", "tag": "v9"}}})
    images = {c["image"] for c in rendered.test_pod()["spec"]["containers"]}
    assert images == {"probe.example/grpc-health-probe:v9"}


# ---- configuration -------------------------------------------------------------------


def test_default_config_is_embedded_single_node(default: Rendered) -> None:
    config = default.config
    assert config["server"]["listen"] == "0.0.0.0:50051"
    assert config["server"]["metrics_listen"] == "0.0.0.0:9090"
    assert config["server"]["workers"] == 2
    assert config["server"]["reflection"] is False
    assert config["server"]["data_dir"] == "/var/lib/keysvc"
    assert config["store"]["url"] == "sqlite:////var/lib/keysvc/keysvc.db"
    assert config["kek"] == {"provider": "local"}
    assert "vault" not in config and "tls" not in config
    assert config["access"] == {"policy_file": "/etc/keysvc/policy/policy.toml"}
    assert default.deployment["spec"]["replicas"] == 1
    assert default.deployment["spec"]["strategy"]["type"] == "Recreate"
    claim = default.one("PersistentVolumeClaim")
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    volumes = {v["name"]: v for v in default.pod["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert "UNAUTHENTICATED" in default.notes


def test_production_config_points_at_mounted_files(production: Rendered) -> None:
    config = production.config
    assert config["store"]["url"] == "postgresql://keysvc@postgres.db.svc:5432/keysvc"
    assert config["kek"]["provider"] == "vault-transit"
    assert config["vault"] == {
        "addr": "https://vault.vault.svc:8200",
        "namespace": "callcenter",
        "mount": "transit",
        "key": "keysvc-kek",
        "cacert": "/etc/keysvc/vault/ca.crt",
        "auth": "kubernetes",
        "role": "keysvc",
        "jwt_file": "/var/run/secrets/kubernetes.io/serviceaccount/token",
    }
    assert config["tls"] == {
        "cert_file": "/etc/keysvc/tls/tls.crt",
        "key_file": "/etc/keysvc/tls/tls.key",
        "client_ca_file": "/etc/keysvc/tls/ca.crt",
        "require_client_auth": True,
    }
    assert config["access"]["tokens_file"] == "/etc/keysvc/tokens/tokens.toml"
    assert "data_dir" not in config["server"]
    # Each configured file path lies under a mount of the volume that provides it.
    mounts = {m["mountPath"]: m["name"] for m in production.container["volumeMounts"]}
    volumes = {v["name"]: v for v in production.pod["volumes"]}
    expect = {
        "/etc/keysvc/tls": ("secret", "keysvc-tls"),
        "/etc/keysvc/tokens": ("secret", "keysvc-tokens"),
        "/etc/keysvc/vault": ("secret", "vault-ca"),
        "/etc/keysvc/policy": ("configMap", f"{FULLNAME}-policy"),
    }
    for path, (source, name) in expect.items():
        volume = volumes[mounts[path]]
        assert volume[source].get("secretName", volume[source].get("name")) == name
    for file in (
        config["tls"]["cert_file"],
        config["vault"]["cacert"],
        config["access"]["tokens_file"],
        config["access"]["policy_file"],
    ):
        directory, filename = file.rsplit("/", 1)
        items = volumes[mounts[directory]].get("secret", volumes[mounts[directory]].get("configMap"))["items"]
        assert filename in {i["path"] for i in items}
    assert production.pod["automountServiceAccountToken"] is True
    assert production.pod["serviceAccountName"] == FULLNAME
    assert production.deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert production.container["image"] == "registry.example.com/keysvc@sha256:" + "ab" * 32


def test_policy_is_a_directory_mount_so_hot_reload_sees_updates(production: Rendered) -> None:
    policy = next(m for m in production.container["volumeMounts"] if m["name"] == "policy")
    assert "subPath" not in policy
    assert (
        production.one("ConfigMap", f"{FULLNAME}-policy")["data"]["policy.toml"] == '[[rule]]\nrole = "ivr"\n'
    )


def test_config_change_rolls_pods_but_policy_change_does_not(default: Rendered) -> None:
    def checksum(rendered: Rendered) -> str:
        annotations = rendered.deployment["spec"]["template"]["metadata"]["annotations"]
        value: str = annotations["checksum/config"]
        return value

    base = checksum(default)
    assert re.fullmatch(r"[0-9a-f]{64}", base)
    assert checksum(Rendered({"cache": {"dekTtlSeconds": 60}})) != base
    assert checksum(Rendered({"access": {"policy": "# changed\n"}})) == base


def test_toml_strings_are_escaped() -> None:
    rendered = Rendered(
        {
            "kek": {"provider": "vault-transit"},
            "vault": {"addr": "https://vault:8200", "role": 'a"b\\c\nd', "namespace": "ns/ü"},
        }
    )
    assert rendered.config["vault"]["role"] == 'a"b\\c\nd'
    assert rendered.config["vault"]["namespace"] == "ns/ü"


def test_ipv6_bind_address_is_bracketed() -> None:
    config = Rendered({"server": {"bindAddress": "::"}}).config
    assert config["server"]["listen"] == "[::]:50051"


@pytest.mark.parametrize(
    ("auth", "extra", "volume_secret", "config_key", "config_value"),
    [
        (
            "approle",
            {"roleId": "r-1", "secretIdSecret": "keysvc-approle"},
            "keysvc-approle",
            "secret_id_file",
            "/etc/keysvc/vault-auth/secret-id",
        ),
        (
            "token",
            {"tokenSecret": "keysvc-vault-token"},
            "keysvc-vault-token",
            "token_file",
            "/etc/keysvc/vault-auth/token",
        ),
    ],
)
def test_other_vault_auth_methods_mount_their_secret(
    auth: str, extra: dict[str, str], volume_secret: str, config_key: str, config_value: str
) -> None:
    rendered = Rendered(
        {"kek": {"provider": "vault-transit"}, "vault": {"addr": "https://v:8200", "auth": auth, **extra}}
    )
    assert rendered.config["vault"][config_key] == config_value
    volumes = {v["name"]: v for v in rendered.pod["volumes"]}
    assert volumes["vault-auth"]["secret"]["secretName"] == volume_secret
    assert "role" not in rendered.config["vault"]


# ---- secrets by reference only -------------------------------------------------------


def test_no_secret_objects_and_password_only_by_secret_ref(all_renders: dict[str, Rendered]) -> None:
    for rendered in all_renders.values():
        assert "Secret" not in rendered.kinds()
    env = {e["name"]: e for e in all_renders["production"].container["env"]}
    assert env["KEYSVC_STORE_PASSWORD"] == {
        "name": "KEYSVC_STORE_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "keysvc-store", "key": "password"}},
    }
    assert env["KEYSVC_CACHE_DEK_TTL_SECONDS"] == {"name": "KEYSVC_CACHE_DEK_TTL_SECONDS", "value": "120"}
    # Apart from extraEnv, every plain env value is a path: nothing secret-looking inlined.
    plain = [e for e in all_renders["production"].container["env"] if "value" in e]
    assert {e["name"] for e in plain} == {"PROMETHEUS_MULTIPROC_DIR", "KEYSVC_CACHE_DEK_TTL_SECONDS"}


@pytest.mark.parametrize(
    "values",
    [
        {"store": {"password": "hunter2"}},
        {"vault": {"token": "hvs.secret"}},
        {"vault": {"secretId": "s"}},
        {"tls": {"key": "-----BEGIN PRIVATE KEY-----"}},
        {"access": {"tokens": "t"}},
    ],
    ids=["store.password", "vault.token", "vault.secretId", "tls.key", "access.tokens"],
)
def test_schema_has_no_place_for_a_secret_value(values: dict[str, Any]) -> None:
    with pytest.raises(HelmValuesError, match="additional properties"):
        render_raw(values)


@pytest.mark.parametrize("name", ["KEYSVC_STORE_PASSWORD", "VAULT_TOKEN", "keysvc_vault_secret_id"])
def test_secret_looking_plain_env_is_refused(name: str) -> None:
    with pytest.raises(HelmValuesError, match=f"invalid propertyName '{name}'"):
        render_raw({"extraEnv": {name: "hunter2"}})


def test_extra_secret_env_is_by_reference() -> None:
    rendered = Rendered(
        {
            "extraEnv": {"KEYSVC_VAULT_TOKEN_FILE": "/etc/keysvc/vault-auth/token"},
            "extraSecretEnv": {"OTEL_EXPORTER_OTLP_HEADERS": {"secretName": "otel", "key": "headers"}},
        }
    )
    env = {e["name"]: e for e in rendered.container["env"]}
    assert env["KEYSVC_VAULT_TOKEN_FILE"]["value"] == "/etc/keysvc/vault-auth/token"
    assert env["OTEL_EXPORTER_OTLP_HEADERS"]["valueFrom"] == {
        "secretKeyRef": {"name": "otel", "key": "headers"}
    }


def test_password_in_store_url_is_refused() -> None:
    values = {"store": {"url": "postgresql://keysvc:hunter2@pg:5432/keysvc"}}
    with pytest.raises(HelmRenderError, match=re.escape("store.url contains a password")) as info:
        render_raw(values)
    assert "hunter2" not in str(info.value)


# ---- required values and schema ------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"kek": {"provider": "vault-transit"}}, "vault.addr is required when kek.provider is vault-transit"),
        (
            {"kek": {"provider": "vault-transit"}, "vault": {"addr": "https://v:8200"}},
            "vault.role is required when vault.auth is kubernetes",
        ),
        ({"replicaCount": 2}, "store.url is required when more than one replica can run"),
        ({"autoscaling": {"enabled": True}}, "store.url is required when more than one replica can run"),
        ({"replicaCount": 2, "store": {"url": "sqlite:////data/k.db"}}, "SQLite is single-node only"),
        ({"replicaCount": 2, "store": {"url": "postgresql://k@pg/k"}}, "kek.provider=local"),
        ({"tls": {"enabled": True}}, "tls.secretName"),
        ({"persistence": {"enabled": False}}, "persistence.allowEphemeral=true"),
        (
            {"kek": {"provider": "vault-transit"}, "vault": {"addr": "https://v:8200", "auth": "approle"}},
            "vault.roleId is required",
        ),
        (
            {"kek": {"provider": "vault-transit"}, "vault": {"addr": "https://v:8200", "auth": "token"}},
            "vault.tokenSecret",
        ),
        ({"store": {"existingSecret": "pw"}}, "the store is SQLite"),
        (
            merged(PRODUCTION, networkPolicy={"enabled": True, "postgresql": {"to": []}}),
            "networkPolicy.postgresql.to is required",
        ),
        ({"server": {"healthPortEnabled": True, "healthPort": 50051}}, "healthPort must differ"),
    ],
    ids=[
        "vault-addr",
        "vault-role",
        "replicas-need-store",
        "hpa-needs-store",
        "sqlite-multi",
        "local-kek-multi",
        "tls-secret",
        "ephemeral",
        "approle",
        "token",
        "sqlite-password",
        "netpol-postgres",
        "health-port",
    ],
)
def test_missing_required_value_fails_with_a_clear_message(values: dict[str, Any], message: str) -> None:
    with pytest.raises(HelmRenderError) as info:
        render_raw(values)
    assert message in str(info.value)
    assert "keysvc: " in str(info.value)


def test_lint_alone_does_not_catch_a_missing_required_value(capfd: pytest.CaptureFixture[str]) -> None:
    # Helm's linter only logs `required` failures (to stderr, not in its report), which is why
    # the chart is also rendered with real values above.
    values = {"kek": {"provider": "vault-transit"}}
    report = helm_python.lint(CHART, values, namespace=NAMESPACE)
    assert report["errors"] == []
    assert "vault.addr is required" in capfd.readouterr().err
    with pytest.raises(HelmRenderError, match=re.escape("vault.addr is required")):
        render_raw(values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"kek": {"provider": "kms"}}, "/kek/provider"),
        ({"vault": {"auth": "userpass"}}, "/vault/auth"),
        ({"replicaCount": "3"}, "/replicaCount"),
        ({"image": {"tag": "latest"}}, "/image/tag"),
        ({"store": {"url": "mysql://db/keysvc"}}, "/store/url"),
        ({"replicas": 3}, "replicas"),
        ({"server": {"port": 70000}}, "/server/port"),
    ],
    ids=["kek-enum", "auth-enum", "type", "latest", "store-scheme", "typo", "port-range"],
)
def test_schema_rejects_bad_values(values: dict[str, Any], message: str) -> None:
    with pytest.raises(HelmValuesError, match=re.escape(message)):
        render_raw(values)


# ---- availability, scaling and network -----------------------------------------------


def test_pdb_and_hpa(default: Rendered, production: Rendered) -> None:
    assert default.one("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    hpa = production.one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": FULLNAME}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 9)
    assert "replicas" not in production.deployment["spec"], "the HPA owns the replica count"


def test_network_policy_ingress_and_egress(production: Rendered) -> None:
    policy = production.one("NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    clients, scraper = policy["ingress"]
    assert {"podSelector": {"matchLabels": {"keysvc.io/client": "true"}}} in clients["from"]
    assert {"namespaceSelector": {"matchLabels": {"keysvc.io/client": "true"}}} in clients["from"]
    assert sorted(p["port"] for p in clients["ports"]) == [50051, 50052]
    assert [p["port"] for p in scraper["ports"]] == [9090]
    assert scraper["from"][0]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
    }
    egress_ports = [sorted((p["protocol"], p["port"]) for p in rule["ports"]) for rule in policy["egress"]]
    assert egress_ports == [[("TCP", 53), ("UDP", 53)], [("TCP", 8200)], [("TCP", 5432)]]
    dns, vault, postgres = policy["egress"]
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert vault["to"][0]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "vault"}}
    assert postgres["to"] == PRODUCTION["networkPolicy"]["postgresql"]["to"]


def test_network_policy_without_vault_or_postgres_allows_dns_only() -> None:
    rendered = Rendered({"networkPolicy": {"enabled": True}})
    egress = rendered.one("NetworkPolicy")["spec"]["egress"]
    assert [sorted(p["port"] for p in rule["ports"]) for rule in egress] == [[53, 53]]


# ---- monitoring ----------------------------------------------------------------------


def test_monitoring_needs_both_the_api_and_the_flag(default: Rendered) -> None:
    assert not {"ServiceMonitor", "PrometheusRule"} & set(default.kinds())
    flags = {"metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}}
    without_api = Rendered(flags)
    assert not {"ServiceMonitor", "PrometheusRule"} & set(without_api.kinds())
    assert "monitoring.coreos.com/v1" in without_api.notes
    api_only = Rendered({}, api_versions=(MONITORING_API,))
    assert not {"ServiceMonitor", "PrometheusRule"} & set(api_only.kinds())


def test_service_monitor_scrapes_the_metrics_port(production: Rendered) -> None:
    monitor = production.one("ServiceMonitor")
    assert monitor["apiVersion"] == MONITORING_API
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
    assert "metrics" in {p["name"] for p in production.one("Service")["spec"]["ports"]}
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}


def test_prometheus_rule_alerts(production: Rendered) -> None:
    rule = production.one("PrometheusRule")
    assert rule["apiVersion"] == MONITORING_API
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(alerts) == {
        "KeysvcKeyRotationOverdue",
        "KeysvcKekProviderErrors",
        "KeysvcDetokenizeSpike",
        "KeysvcAuditWriteFailures",
    }
    scope = f'{{job="{FULLNAME}", namespace="{NAMESPACE}"}}'
    assert alerts["KeysvcKeyRotationOverdue"]["expr"] == (
        f"max by (namespace, key) (keysvc_key_seconds_since_rotation{scope}) > 2592000"
    )
    assert alerts["KeysvcKekProviderErrors"]["expr"] == (
        f"sum by (namespace, pod) (rate(keysvc_kek_errors_total{scope}[5m])) > 0"
    )
    assert alerts["KeysvcDetokenizeSpike"]["expr"] == (
        f"sum by (namespace, principal) (rate(keysvc_detokenize_items_total{scope}[5m])) > 50"
    )
    assert "keysvc_audit_write_failures_total" in alerts["KeysvcAuditWriteFailures"]["expr"]
    for alert in alerts.values():
        assert alert["labels"]["severity"] in {"warning", "critical"}
        assert alert["annotations"]["summary"]
        # Prometheus templating survives Helm's.
        assert "{{" not in alert["expr"]
    assert "{{ $labels.key }}" in alerts["KeysvcKeyRotationOverdue"]["annotations"]["summary"]


# ---- image ---------------------------------------------------------------------------


def test_default_image_is_the_one_the_dockerfile_builds(default: Rendered) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    title = re.search(r'org\.opencontainers\.image\.title="([^"]+)"', dockerfile)
    assert title is not None
    with helm_python.Chart.load(CHART) as chart:
        app_version = chart.metadata["appVersion"]
    assert default.container["image"] == f"{title.group(1)}:{app_version}"
    assert f"docker build -t {title.group(1)}:{app_version} ." in dockerfile
    assert default.container["args"] == ["serve", "--config", "/etc/keysvc/keysvc.toml"]
    mounts = {m["mountPath"]: m for m in default.container["volumeMounts"]}
    assert mounts["/etc/keysvc/keysvc.toml"]["subPath"] == "keysvc.toml"


def test_app_version_matches_the_server_package() -> None:
    pyproject = ROOT / "pyproject.toml"
    if not pyproject.exists():
        pytest.skip("no pyproject.toml yet")
    version = tomllib.loads(pyproject.read_text())["project"].get("version")
    if version is None:
        pytest.skip("server version is dynamic")
    with helm_python.Chart.load(CHART) as chart:
        assert chart.metadata["appVersion"] == version


def test_production_example_in_the_deployment_doc_renders_and_validates() -> None:
    doc = (ROOT / "docs" / "DEPLOYMENT.md").read_text()
    block = re.search(r"```yaml\n# prod.yaml\n(.*?)```", doc, re.DOTALL)
    assert block is not None
    rendered = Rendered(yaml.safe_load(block.group(1)), api_versions=(MONITORING_API,))
    assert {"HorizontalPodAutoscaler", "NetworkPolicy", "ServiceMonitor", "PrometheusRule"} <= set(
        rendered.kinds()
    )
    for obj in rendered.objects:
        if obj["kind"] not in CRD_KINDS:
            kubernetes_validate.validate(strip(obj), "1.30.0", strict=True)
