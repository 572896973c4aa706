"""A Confluent-compatible schema registry server (aiohttp, SQLite): ``sal-kafka registry serve``."""

from ._app import CONTENT_TYPE, DEFAULT_COMPATIBILITY, make_app, serve
from ._store import Store, Version

__all__ = ["make_app", "serve", "Store", "Version", "CONTENT_TYPE", "DEFAULT_COMPATIBILITY"]
