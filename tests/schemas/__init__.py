"""Tests of sal_kafka.schemas."""
