"""Tests of sal_kafka.classes."""
