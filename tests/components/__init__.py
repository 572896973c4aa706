"""Tests of sal_kafka.components."""
