"""Tests of sal_kafka.codec."""
