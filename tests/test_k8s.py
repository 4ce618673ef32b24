"""The Kubernetes tree (deploy/k8s): a Kustomize base per account, overlays made
by new-account.sh, rendered by a real kustomize (``kubectl kustomize``) and
validated against Kubernetes' own schemas (kubernetes-validate, offline).

Secrets exist only as files an operator writes into ``accounts/NAME/secrets/``;
the tests write random ones into a copy of the tree and check that rendering
without them fails, so no placeholder can ever be applied.
"""

from __future__ import annotations

import base64
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from otp_bot.config import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
SECRET_FILES = ("OTP_BOT_API_KEY", "OTP_BOT_IMAP_PASSWORD", "OTP_BOT_CONTROL_TOKEN")
# Oldest and newest Kubernetes the manifests are validated against.
K8S_VERSIONS = ("1.28.0", "1.37.0")


def kubectl() -> str:
    """kubectl on PATH (``make test`` installs Debian's kubernetes-client when missing)."""
    found = shutil.which("kubectl")
    assert found, "kubectl is missing: run `make test`, which installs it"
    return found


def tree(tmp_path: Path, *, with_secrets: bool = True) -> Path:
    """A copy of deploy/k8s, with random secret files for each account when asked."""
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy, ignore=shutil.ignore_patterns("secrets"))
    if with_secrets:
        for account in (copy / "accounts").iterdir():
            (account / "secrets").mkdir(mode=0o700)
            for name in SECRET_FILES:
                (account / "secrets" / name).write_text(secrets.token_urlsafe(24))
    return copy


def render(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl(), "kustomize", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def objects(path: Path) -> list[dict[str, Any]]:
    done = render(path)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return objects(tree(tmp_path_factory.mktemp("k8s")))


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def accounts() -> list[str]:
    return sorted(p.name for p in (K8S / "accounts").iterdir() if p.is_dir())


def test_tree_shows_several_accounts() -> None:
    """The example tree has at least two accounts, each in the top kustomization."""
    names = accounts()
    assert len(names) >= 2
    top = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert [f"accounts/{n}" for n in names] == [b for b in top["bases"] if b.startswith("acc")]


def test_rendering_without_secret_files_fails(tmp_path: Path) -> None:
    """No secret files, no manifests: a placeholder secret can never be applied."""
    done = render(tree(tmp_path, with_secrets=False))
    assert done.returncode != 0
    assert "OTP_BOT_API_KEY" in done.stderr


def test_no_secret_values_in_the_repository() -> None:
    """Nothing committed under deploy/k8s carries a Secret's data or a key's value."""
    for path in K8S.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "stringData" not in text, path
            assert "pp_live_" not in text, path


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_validate_against_the_schemas(tmp_path: Path, version: str) -> None:
    """Every rendered object is valid (strict: no unknown field) for Kubernetes `version`."""
    out = tmp_path / "all.yaml"
    done = render(tree(tmp_path))
    assert done.returncode == 0, done.stderr
    out.write_text(done.stdout)
    validate = Path(sys.executable).with_name("kubernetes-validate")
    checked = subprocess.run(
        [str(validate), "--strict", "--quiet", "-k", version, str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_one_hardened_pod_per_account(rendered: list[dict[str, Any]]) -> None:
    """replicas 1 with Recreate, non-root read-only container, health and liveness probes."""
    deployments = of_kind(rendered, "Deployment")
    assert sorted(deployments) == [f"otp-bot-{a}" for a in accounts()]
    for deployment in deployments.values():
        spec, pod = deployment["spec"], deployment["spec"]["template"]["spec"]
        assert spec["replicas"] == 1
        assert spec["strategy"]["type"] == "Recreate"
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001  # the image's USER
        (container,) = pod["containers"]
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert container["readinessProbe"]["exec"]["command"] == ["otp-bot", "health"]
        for probe in ("startupProbe", "livenessProbe"):
            assert container[probe]["exec"]["command"] == ["otp-bot", "health", "--live"]


def _settings(
    deployment: dict[str, Any],
    rendered: list[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    """The settings the pod's container would build, from its ConfigMap, Secret and env."""
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    claim = mounts[env["OTP_BOT_STATE_DIR"]]["persistentVolumeClaim"]["claimName"]
    assert of_kind(rendered, "PersistentVolumeClaim")[claim]["spec"]["accessModes"] == [
        "ReadWriteOnce"
    ]
    secret = of_kind(rendered, "Secret")[
        mounts[env["CREDENTIALS_DIRECTORY"]]["secret"]["secretName"]
    ]
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    for key, value in secret["data"].items():
        (credentials / key).write_bytes(base64.b64decode(value))
    (ref,) = container["envFrom"]
    config = of_kind(rendered, "ConfigMap")[ref["configMapRef"]["name"]]["data"]
    assert not set(config) & set(secret["data"])  # a variable would win over the file
    assert not set(config) & set(env)  # the Deployment's own settings are not overridden
    env["CREDENTIALS_DIRECTORY"] = str(credentials)
    env["OTP_BOT_STATE_DIR"] = str(tmp_path / "state")
    for name, value in (config | env).items():
        monkeypatch.setenv(name, value)
    return load_settings()


@pytest.mark.parametrize("account", accounts())
def test_account_settings_validate(
    account: str,
    rendered: list[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ConfigMap + Secret files + the Deployment's env give valid settings with a token."""
    deployment = of_kind(rendered, "Deployment")[f"otp-bot-{account}"]
    settings = _settings(deployment, rendered, tmp_path, monkeypatch)
    assert settings.api_key.get_secret_value()
    assert settings.control_token is not None  # listening beyond loopback needs one


def test_accounts_are_distinct(rendered: list[dict[str, Any]]) -> None:
    """No two accounts share an account id, a volume claim, a Secret or an object name."""
    configs = of_kind(rendered, "ConfigMap").values()
    ids = [c["data"]["OTP_BOT_ACCOUNT_ID"] for c in configs]
    assert len(set(ids)) == len(ids) == len(accounts())
    names = [f"{o['kind']}/{o['metadata']['name']}" for o in rendered]
    assert len(set(names)) == len(names)


def test_each_service_selects_only_its_account(rendered: list[dict[str, Any]]) -> None:
    """A Service's selector matches its own account's pod labels and port name only."""
    deployments = of_kind(rendered, "Deployment")
    for name, service in of_kind(rendered, "Service").items():
        selector = service["spec"]["selector"]
        matching = [
            d
            for d in deployments.values()
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert [d["metadata"]["name"] for d in matching] == [name]
        (container,) = matching[0]["spec"]["template"]["spec"]["containers"]
        ports = {p["name"] for p in container["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports
        assert service["metadata"]["annotations"]["prometheus.io/scrape"] == "true"


def test_new_account_script_adds_a_rendered_account(tmp_path: Path) -> None:
    """new-account.sh makes an overlay that renders as one more hardened account."""
    copy = tree(tmp_path)
    script = copy / "new-account.sh"
    done = subprocess.run(
        [
            "bash",
            str(script),
            "initech",
            "acc_linkedin_INITECH",
            "imap.example.org",
            "hr@initech.example",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (copy / "accounts" / "initech" / "secrets").stat().st_mode & 0o777 == 0o700
    assert render(copy).returncode != 0  # its secret files are not written yet
    for name in SECRET_FILES:
        (copy / "accounts" / "initech" / "secrets" / name).write_text(secrets.token_urlsafe(24))
    docs = objects(copy)
    deployment = of_kind(docs, "Deployment")["otp-bot-initech"]
    assert deployment["spec"]["replicas"] == 1
    config = of_kind(docs, "ConfigMap")["otp-bot-settings-initech"]["data"]
    assert config["OTP_BOT_ACCOUNT_ID"] == "acc_linkedin_INITECH"


@pytest.mark.parametrize("name", ["Bad_Name", "x" * 40, "a;b", "-lead"])
def test_new_account_script_refuses_bad_names(tmp_path: Path, name: str) -> None:
    """A name that is not a short DNS label is refused with exit 2, nothing written."""
    copy = tree(tmp_path)
    before = (copy / "kustomization.yaml").read_text()
    done = subprocess.run(
        ["bash", str(copy / "new-account.sh"), name, "acc_1", "imap.example.org", "u@example.org"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert (copy / "kustomization.yaml").read_text() == before
