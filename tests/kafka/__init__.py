"""Tests of sal_kafka.kafka."""
