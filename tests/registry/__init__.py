"""Tests of sal_kafka.registry."""
