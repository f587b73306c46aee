"""A real Kubernetes control plane for the cluster tests: etcd and kube-apiserver 1.20 (token auth, RBAC),
optionally the controller manager and scheduler, started by scripts/k8s/start.sh on free loopback ports.

The binaries are built once per machine by scripts/k8s/build.sh (.ci/run calls it). With CI=true a missing
binary fails the test; elsewhere the test skips and says how to build them. There is no kubelet: a test
that needs ready pods creates Node objects and patches pod or StatefulSet status itself.

    from _kube import kube  # noqa: F401  (a module-scoped fixture)

    def test_x(kube):
        api = kube.client()               # admin (system:masters)
        api = kube.client(token=sa_token) # as a service account
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts" / "k8s"
BIN = Path(os.environ.get("PLAIT_ENVTEST_BIN", "/var/cache/plait-envtest/bin"))
NAMES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")


def binaries_present() -> bool:
    return all(os.access(BIN / name, os.X_OK) for name in NAMES)


def _free_ports(count: int) -> int:
    """A first port p with p .. p+count-1 all free on loopback (etcd takes a client and a peer port)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            first = s.getsockname()[1]
        if first + count > 65535:
            continue
        try:
            held = []
            for port in range(first, first + count):
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
        return first
    raise RuntimeError("no free run of loopback ports")


@dataclass
class Cluster:
    """One started control plane: its folder, kubeconfig, admin token and API server port."""

    dir: Path
    port: int

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.dir / "certs" / "apiserver.crt"

    @property
    def admin_token(self) -> str:
        return (self.dir / "token").read_text().strip()

    def client(self, token: str | None = None):  # -> kubernetes.client.ApiClient
        """An API client as admin, or as whoever `token` belongs to (a service account's token)."""
        from kubernetes import client

        config = client.Configuration()
        config.host = self.server
        config.ssl_ca_cert = str(self.ca_file)
        config.api_key = {"authorization": f"Bearer {token or self.admin_token}"}
        return client.ApiClient(config)

    def write_kubeconfig(self, path: Path, token: str) -> Path:
        """A kubeconfig for `token` (e.g. the operator's service account), for commands given --kubeconfig."""
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: envtest\n  cluster: {{server: \"{self.server}\", certificate-authority: \"{self.ca_file}\"}}\n"
            f"users:\n- name: user\n  user: {{token: \"{token}\"}}\n"
            "contexts:\n- name: envtest\n  context: {cluster: envtest, user: user}\ncurrent-context: envtest\n")
        return path


def start(controllers: bool = False) -> Cluster:
    """Start a control plane in a fresh temporary folder (stop it with `stop`)."""
    if not binaries_present():
        message = (f"the Kubernetes test binaries are not in {BIN}: run `bash scripts/k8s/build.sh` "
                   "(about 5 minutes once per machine)")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    folder = Path(tempfile.mkdtemp(prefix="plait-kube-"))
    api_port, etcd_port = _free_ports(1), _free_ports(2)
    env = {**os.environ, "PORT": str(api_port), "ETCD_PORT": str(etcd_port), "PLAIT_ENVTEST_BIN": str(BIN)}
    args = ["bash", str(SCRIPTS / "start.sh"), str(folder)] + (["--controllers"] if controllers else [])
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        subprocess.run(["bash", str(SCRIPTS / "stop.sh"), str(folder)], capture_output=True)
        raise RuntimeError(f"start.sh failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return Cluster(dir=folder, port=api_port)


def stop(cluster: Cluster) -> None:
    subprocess.run(["bash", str(SCRIPTS / "stop.sh"), str(cluster.dir)], capture_output=True, timeout=60)
    shutil.rmtree(cluster.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def kube() -> Iterator[Cluster]:
    """A control plane (API server and etcd only) for one test module."""
    cluster = start()
    try:
        yield cluster
    finally:
        stop(cluster)


@pytest.fixture(scope="module")
def kube_controllers() -> Iterator[Cluster]:
    """A control plane with the controller manager (garbage collection) and scheduler, for one module."""
    cluster = start(controllers=True)
    try:
        yield cluster
    finally:
        stop(cluster)
