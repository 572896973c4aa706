"""A CSC with configuration files, as ts_salobj 8's ``ConfigurableCsc`` is.

The configuration of a CSC is a folder of YAML files, ``config_dir``:
``$<CONFIG_PKG>_DIR/<component name>/<schema version>/`` by default (the
package `ConfigurableCsc.get_config_pkg` names, e.g. ``ts_config_attcs``,
upper-cased, and the schema's ``title`` ending in ``v<N>``). ``start`` reads,
in order, ``_init.yaml``, ``_<site>.yaml`` if there is one (``$LSST_SITE``),
and the override the command names (``configurationOverride``: a file, or
``file.yaml:<git ref>`` for that version of it); each later file overrides
what the earlier ones set. The result is validated against the CSC's JSON
schema (jsonschema, draft 7) and given to `ConfigurableCsc.configure`, then
``configurationApplied`` is written. ``configurationsAvailable`` lists the
override files (those not starting with ``_``) and the folder's git version.
A missing file, YAML that is not a mapping, or a configuration the schema
refuses fails ``start`` (CMD_FAILED) with the file and the schema's complaint,
and the CSC stays in STANDBY.
"""

from __future__ import annotations

import argparse
import copy
import os
import pathlib
import subprocess
import types
from typing import Any

import yaml

from ..errors import ConfigError
from ..schemas._model import ComponentInfo
from ._csc import BaseCsc
from ._enums import ExpectedError, State

__all__ = ["ConfigurableCsc", "DefaultingValidator"]


class DefaultingValidator:
    """A JSON-schema validator that also fills in the schema's defaults, as
    ts_salobj's ``DefaultingValidator`` (draft 7, with ``jsonschema``).

    Parameters
    ----------
    schema : dict
        The JSON schema.

    Raises
    ------
    jsonschema.SchemaError
        If ``schema`` is not a valid draft 7 schema.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        import jsonschema

        jsonschema.Draft7Validator.check_schema(schema)
        self.schema = schema
        self._checker = jsonschema.Draft7Validator(schema)
        self._filler = _defaulting(jsonschema)(schema)

    def iter_errors(self, data: Any) -> Any:
        """The schema's errors of ``data`` as given (no default filled in)."""
        return self._checker.iter_errors(data)

    def fill(self, data: Any) -> Any:
        """A copy of ``data`` with every default the schema gives filled in (where
        the schema is walked: properties of objects present, or given by default);
        ``None`` is an empty mapping. Nothing is checked."""
        filled = {} if data is None else copy.deepcopy(data)
        for _ in self._filler.iter_errors(filled):  # the walk sets the defaults
            pass
        return filled

    def validate(self, data: Any) -> Any:
        """``data`` with the schema's defaults filled in (a copy), checked.

        Raises
        ------
        jsonschema.ValidationError
            The first problem of ``data`` with its defaults.
        """
        import jsonschema

        filled = self.fill(data)
        error = jsonschema.exceptions.best_match(self._checker.iter_errors(filled))
        if error is not None:
            raise error
        return filled


def _defaulting(jsonschema: Any) -> Any:
    """Draft 7's validator class whose ``properties`` keyword also sets each
    missing property that has a ``default`` (then validates it as given)."""
    base = jsonschema.Draft7Validator
    check_properties = base.VALIDATORS["properties"]

    def properties(validator: Any, props: dict[str, Any], instance: Any, schema: dict[str, Any]) -> Any:
        if isinstance(instance, dict):
            for name, sub in props.items():
                if isinstance(sub, dict) and "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from check_properties(validator, props, instance, schema)

    return jsonschema.validators.extend(base, {"properties": properties})


class ConfigurableCsc(BaseCsc):
    """A `BaseCsc` configured from a folder of YAML files on ``start``.

    Parameters
    ----------
    name, index
        The component and its SAL index.
    config_schema : dict
        The configuration's JSON schema (as ts_salobj CSCs load it from YAML);
        its ``title`` ends with the schema version, e.g. ``"ATDome v3"``.
    config_dir : str or path, optional
        The configuration folder; default ``$<CONFIG_PKG>_DIR/<name>/<version>``.
    initial_state : State
        As `BaseCsc`'s; DISABLED or ENABLED is reached through ``start``, with
    override : str
        the ``configurationOverride`` it uses.
    **kwargs
        `BaseCsc`'s other arguments.

    Raises
    ------
    ConfigError
        If ``$LSST_SITE`` is not set, the schema is not a valid JSON schema or its
        title has no version, or the configuration folder does not exist.
    """

    def __init__(
        self,
        name: str | ComponentInfo,
        index: int | None = None,
        *,
        config_schema: dict[str, Any],
        config_dir: str | os.PathLike[str] | None = None,
        initial_state: State = State.STANDBY,
        override: str = "",
        **kwargs: Any,
    ) -> None:
        import jsonschema  # a dependency of configurable CSCs only

        site = os.environ.get("LSST_SITE")
        if not site:
            raise ConfigError("$LSST_SITE is not set: the site whose configuration to use (summit, base, ...)")
        self.site = site
        try:
            jsonschema.Draft7Validator.check_schema(config_schema)
        except jsonschema.SchemaError as exc:
            raise ConfigError(f"the configuration schema is not a valid JSON schema: {exc.message}") from None
        title = str(config_schema.get("title", ""))
        version = title.rsplit(" ", 1)[-1] if " " in title else ""
        if not version.startswith("v"):
            raise ConfigError(f"the configuration schema's title {title!r} must end with ' v<version>'")
        self.config_schema = config_schema
        self.schema_version = version
        self.config_validator = DefaultingValidator(config_schema)
        self._start_override = override
        component_name = name if isinstance(name, str) else name.name
        self.config_dir = config_dir if config_dir is not None else self._default_config_dir(component_name)
        super().__init__(name, index, initial_state=initial_state, **kwargs)
        for event in ("evt_configurationsAvailable", "evt_configurationApplied"):
            if hasattr(self, event):
                getattr(self, event).set(schemaVersion=self.schema_version, url=self.config_dir.as_uri())

    # ------------------------------------------------------------------ where the files are

    @property
    def config_dir(self) -> pathlib.Path:
        """The configuration folder (absolute)."""
        return self._config_dir

    @config_dir.setter
    def config_dir(self, config_dir: str | os.PathLike[str]) -> None:
        path = pathlib.Path(config_dir).resolve()
        if not path.is_dir():
            raise ConfigError(f"config_dir={path} does not exist or is not a folder")
        self._config_dir = path

    @staticmethod
    def get_config_pkg() -> str:
        """The configuration package, e.g. ``"ts_config_attcs"`` (override it: its
        ``$<PACKAGE>_DIR`` holds the default configuration folder)."""
        raise NotImplementedError("a ConfigurableCsc names its configuration package: override get_config_pkg")

    def _default_config_dir(self, name: str) -> pathlib.Path:
        variable = f"{self.get_config_pkg().upper()}_DIR"
        root = os.environ.get(variable)
        if not root:
            raise ConfigError(f"${variable} is not set (the configuration package); or give config_dir")
        folder = pathlib.Path(root) / name / self.schema_version
        if not folder.is_dir():
            raise ConfigError(f"{folder} (${variable}/{name}/{self.schema_version}) does not exist")
        return folder

    # ------------------------------------------------------------------ reading

    @classmethod
    def read_config_files(
        cls, config_validator: Any, config_dir: pathlib.Path, files_to_read: list[str], git_hash: str = ""
    ) -> types.SimpleNamespace:
        """Read ``files_to_read`` in order (each overriding the earlier ones), validate,
        and return the configuration as a namespace of its top-level keys.

        Raises
        ------
        ExpectedError
            Naming the file (missing, not YAML, not a mapping, not at ``git_hash``)
            or the schema's complaint and where (``$.path``).
        """
        merged: dict[str, Any] = {}
        for filename in filter(None, files_to_read):
            path = config_dir / filename
            if not path.is_file():
                raise ExpectedError(f"config file {str(path)!r} does not exist")
            if git_hash:
                try:
                    text = subprocess.run(
                        ["git", "show", f"{git_hash}:./{filename}"],
                        cwd=config_dir,
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout
                except (OSError, subprocess.CalledProcessError) as exc:
                    detail = getattr(exc, "stderr", "") or str(exc)
                    raise ExpectedError(f"cannot read {path} at git {git_hash!r}: {detail.strip()}") from None
            else:
                text = path.read_text()
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ExpectedError(f"{path} is not YAML: {' '.join(str(exc).split())}") from None
            if data is None:
                continue
            if not isinstance(data, dict):
                raise ExpectedError(f"{path} does not hold a mapping (got {type(data).__name__})")
            _merge(merged, data)
        merged.pop("metadata", None)  # not part of the schema
        if isinstance(config_validator, DefaultingValidator):  # what the files leave out: the schema's defaults
            merged = config_validator.fill(merged)
        error = next(iter(sorted(config_validator.iter_errors(merged), key=lambda e: list(e.path))), None)
        if error is not None:
            where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
            files = ", ".join(f for f in files_to_read if f)
            raise ExpectedError(f"configuration from {files} refused by the schema: {error.message} - at {where}")
        return types.SimpleNamespace(**merged)

    def override_files(self) -> list[str]:
        """The override files of `config_dir` (``*.yaml`` not starting with ``_``)."""
        return sorted(p.name for p in self.config_dir.glob("*.yaml") if not p.name.startswith("_"))

    def configs_version(self) -> str:
        """`config_dir`'s git version (``git describe``), or "" when it is not a git repository."""
        try:
            done = subprocess.run(
                ["git", "describe", "--all", "--long", "--always", "--dirty"],
                cwd=self.config_dir,
                capture_output=True,
                text=True,
                timeout=10,
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    async def read_config_dir(self) -> None:
        """Write ``configurationsAvailable`` (the override files and the version)."""
        version = self.configs_version()
        if hasattr(self, "evt_configurationsAvailable"):
            await self.evt_configurationsAvailable.set_write(overrides=",".join(self.override_files()), version=version)
        if hasattr(self, "evt_configurationApplied"):
            self.evt_configurationApplied.set(version=version)

    # ------------------------------------------------------------------ the life cycle

    async def _report_state(self) -> None:
        if self.summary_state is State.STANDBY:  # where an override is chosen: what there is
            await self.read_config_dir()
        await super()._report_state()

    async def begin_start(self, data: Any) -> None:
        """Read and validate the configuration, and `configure` the CSC, before DISABLED."""
        await self.read_config_dir()
        override = str(getattr(data, "configurationOverride", "") or "")
        filename, _, git_hash = override.partition(":")
        files = ["_init.yaml"]
        if (self.config_dir / f"_{self.site}.yaml").is_file():
            files.append(f"_{self.site}.yaml")
        if filename:
            if filename.startswith("_"):
                raise ExpectedError(f"configurationOverride {filename!r} must not start with '_'")
            files.append(filename)
        config = self.read_config_files(self.config_validator, self.config_dir, files, git_hash)
        await self.configure(config)
        if hasattr(self, "evt_configurationApplied"):
            await self.evt_configurationApplied.set_write(configurations=",".join(files), force_output=True)

    async def configure(self, config: Any) -> None:
        """Apply ``config`` (a namespace of the schema's top-level keys); override it.
        Called by ``start`` just before DISABLED; raising fails the command."""
        raise NotImplementedError("a ConfigurableCsc applies its configuration: override configure")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--configdir", "--config-dir", dest="configdir", help="the configuration folder (default: the package's)"
        )
        if cls.enable_cmdline_state:
            parser.add_argument("--override", default="", help="the override to apply with --state disabled/enabled")

    @classmethod
    def add_kwargs_from_args(cls, args: argparse.Namespace, kwargs: dict[str, Any]) -> None:
        kwargs["config_dir"] = args.configdir
        if hasattr(args, "override"):
            kwargs["override"] = args.override


def _merge(main: dict[str, Any], override: dict[str, Any]) -> None:
    """Update ``main`` with ``override``, mappings merged key by key (as ts_salobj's)."""
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(main.get(key), dict):
            _merge(main[key], value)
        else:
            main[key] = value
