"""The sink tests' PostgreSQL: one embedded PostgreSQL 18, a database per test."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from sal_kafka import KafkaConfig
from sal_kafka.testing import EmbeddedPostgres
from tests.sinks import with_search_path


@pytest.fixture(scope="session")
def postgres() -> Iterator[EmbeddedPostgres]:
    with EmbeddedPostgres() as server:
        yield server


@pytest.fixture
def database(postgres: EmbeddedPostgres, kafka_config: KafkaConfig) -> str:
    """A database of its own for the test (named after its topic sub-namespace), whose
    sessions see the tables of that sub-namespace's schema unqualified."""
    name = kafka_config.topic_subname.lower()
    with psycopg.connect(postgres.url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return with_search_path(postgres.url.replace("/postgres?", f"/{name}?"), kafka_config.topic_subname)
