"""Prometheus on loopback, for the tests and ``sal-kafka dev``: Debian's package.

``prometheus`` and ``promtool`` are taken from the PATH (Debian's package
``prometheus`` installed), else fetched once from Debian's archive with
``apt-get download prometheus`` (no root needed) and unpacked with ``dpkg-deb
-x`` into the cache beside the Kafka jars; a SHA-256 manifest is checked at
each use, as for the jars.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import attrs
import yaml

from ..errors import SalKafkaError
from ._broker._cluster import free_port
from ._broker._jars import cache_root
from ._process import Supervised

__all__ = ["PrometheusBinaries", "prometheus_binaries", "PrometheusServer"]


@attrs.frozen
class PrometheusBinaries:
    prometheus: Path
    promtool: Path


def prometheus_binaries() -> PrometheusBinaries:
    """The ``prometheus`` and ``promtool`` programs (see the module's doc).

    Raises
    ------
    SalKafkaError
        Neither on the PATH nor fetchable (no ``apt-get``/``dpkg-deb``, or the
        download failed: its output is shown).
    """
    found = shutil.which("prometheus"), shutil.which("promtool")
    if found[0] and found[1]:
        return PrometheusBinaries(Path(found[0]), Path(found[1]))
    folder = cache_root() / "prometheus-deb"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        binaries = PrometheusBinaries(folder / "usr" / "bin" / "prometheus", folder / "usr" / "bin" / "promtool")
        if not _verified(folder, binaries):
            _fetch(folder)
            _verified(folder, binaries, write=True)
    return binaries


def _digest(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _verified(folder: Path, binaries: PrometheusBinaries, write: bool = False) -> bool:
    manifest = folder / "manifest.json"
    paths = [binaries.prometheus, binaries.promtool]
    if write:
        manifest.write_text(json.dumps({p.name: _digest(p) for p in paths}))
        return True
    if not manifest.is_file() or not all(p.is_file() for p in paths):
        return False
    expected = json.loads(manifest.read_text())
    for path in paths:
        if expected.get(path.name) != _digest(path):
            raise SalKafkaError(f"{path} changed since it was fetched; remove {folder} to fetch it again")
    return True


def _fetch(folder: Path) -> None:
    apt, dpkg = shutil.which("apt-get"), shutil.which("dpkg-deb")
    if apt is None or dpkg is None:
        raise SalKafkaError(
            "no prometheus/promtool on the PATH, and no apt-get/dpkg-deb to fetch Debian's package: "
            "install the package 'prometheus'"
        )
    with tempfile.TemporaryDirectory(prefix="prometheus-deb-") as staging:
        done = subprocess.run([apt, "download", "prometheus"], cwd=staging, capture_output=True, text=True, timeout=600)
        debs = sorted(Path(staging).glob("prometheus_*.deb"))
        if done.returncode != 0 or not debs:
            raise SalKafkaError(f"apt-get download prometheus failed:\n{(done.stdout + done.stderr).strip()[-1500:]}")
        subprocess.run([dpkg, "-x", str(debs[0]), str(folder)], check=True, capture_output=True, timeout=300)


class PrometheusServer(Supervised):
    """A Prometheus server on a free loopback port with ``config`` (a dict, as
    `sal_kafka.observe.prometheus_config` gives) and its rule files.

    Parameters
    ----------
    config : dict
        The configuration; its ``rule_files`` are taken from ``rules``.
    rules : dict, optional
        ``{file name: rules dict}`` written beside the configuration.
    """

    def __init__(
        self,
        config: dict[str, Any],
        rules: dict[str, dict[str, Any]] | None = None,
        folder: str | Path | None = None,
        port: int | None = None,
    ) -> None:
        self.binaries = prometheus_binaries()
        self._tmp = None if folder else tempfile.TemporaryDirectory(prefix="sal-kafka-prometheus-")
        self.folder = Path(folder or self._tmp.name)  # type: ignore[union-attr]
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.config = config
        self.rules = rules or {}
        self.process = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0, detach: bool = False) -> PrometheusServer:
        for name, rules in self.rules.items():
            (self.folder / name).write_text(yaml.safe_dump(rules, sort_keys=False))
        path = self.folder / "prometheus.yml"
        path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        log = open(self.folder / "prometheus.log", "ab")  # noqa: SIM115 - the process owns it
        self.process = subprocess.Popen(
            [
                str(self.binaries.prometheus),
                f"--config.file={path}",
                f"--storage.tsdb.path={self.folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=detach,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SalKafkaError(f"Prometheus exited ({self.process.returncode}):\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2):
                    return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        self.stop()
        raise SalKafkaError(f"Prometheus not ready within {timeout} s:\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        log = self.folder / "prometheus.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.is_file() else ""

    def api(self, path: str, **params: str) -> Any:
        """``/api/v1/<path>``'s ``data`` (raises on an error status)."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                body = json.load(answer)
        except urllib.error.HTTPError as exc:
            raise SalKafkaError(f"Prometheus {path} {params}: {exc.read().decode(errors='replace')}") from None
        if body.get("status") != "success":
            raise SalKafkaError(f"Prometheus {path} {params}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector of ``expr`` now."""
        data = self.api("query", query=expr)
        return list(data["result"])

    def __enter__(self) -> PrometheusServer:
        return self.start()
