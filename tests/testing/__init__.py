"""Tests of sal_kafka.testing: the embedded Apache Kafka, one node and three."""
