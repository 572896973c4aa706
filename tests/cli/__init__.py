"""Tests of the command-line tools (sal_kafka._cli)."""
