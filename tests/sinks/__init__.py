"""Tests of sal_kafka.sinks."""
