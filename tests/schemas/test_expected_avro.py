"""Every topic of the real ts_xml v28.0.1 corpus gives exactly the reference schema."""

from __future__ import annotations

import json

import pytest

from sal_kafka import ComponentInfo
from tests.conftest import EXPECTED_AVRO, SAL_INTERFACES, corpus_components, needs_corpus

pytestmark = needs_corpus


def test_corpus_is_complete() -> None:
    assert len(corpus_components()) == 63
    assert sorted(ComponentInfo.list_components(SAL_INTERFACES)) == corpus_components()


@pytest.mark.parametrize("name", corpus_components())
def test_schemas_equal_reference(name: str) -> None:
    expected = json.loads((EXPECTED_AVRO / f"{name}.json").read_text())
    component = ComponentInfo.load(name, SAL_INTERFACES)
    got = {topic.kafka_name: topic.avro_schema for topic in component}
    assert sorted(got) == sorted(expected)
    for kafka_name, schema in expected.items():
        # Compare field by field, in order, so that a failure names the field.
        got_fields = got[kafka_name]["fields"]
        assert [f["name"] for f in got_fields] == [f["name"] for f in schema["fields"]], kafka_name
        for got_field, want_field in zip(got_fields, schema["fields"], strict=True):
            assert got_field == want_field, f"{kafka_name}.{want_field['name']}"
        assert got[kafka_name] == schema, kafka_name


def test_total_topic_count() -> None:
    total = sum(len(ComponentInfo.load(n, SAL_INTERFACES).topics) for n in corpus_components())
    assert total == 3348
