"""Tests of sal_kafka.observe."""
