"""For tests, benchmarks and demos: the embedded stack, an in-memory broker, sample records.

`Stack` starts Apache Kafka in KRaft mode (one node, or a cluster of three;
its jars fetched from Maven Central once and cached) and the project's
registry server on free loopback ports; `MemoryTransport` is a
broker in memory for `sal_kafka.Session`; `run_pair` runs a ``sal-kafka
read`` and ``sal-kafka write`` pair as operators do.
"""

from ._broker import KafkaCluster
from ._dev import DEMO, DemoRun, EmbeddedPostgres, Stack, cli_result, free_port, run_pair, spawn_cli
from ._faults import CommandTally, WriteTally, command_through, kill_leader_schedule, write_through
from ._kafka._sample import sample_record
from ._memory import MemoryMessage, MemoryTransport
from ._public import set_public_module

__all__ = [
    "Stack",
    "EmbeddedPostgres",
    "free_port",
    "KafkaCluster",
    "WriteTally",
    "CommandTally",
    "write_through",
    "command_through",
    "kill_leader_schedule",
    "MemoryTransport",
    "MemoryMessage",
    "sample_record",
    "DemoRun",
    "DEMO",
    "spawn_cli",
    "cli_result",
    "run_pair",
]

set_public_module(__name__, globals(), __all__)
