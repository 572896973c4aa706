"""For tests, benchmarks and demos: the embedded stack, an in-memory broker, sample records.

`Stack` starts Apache Kafka in KRaft mode (one node, or a cluster of three;
its jars fetched from Maven Central once and cached) and the project's
registry server on free loopback ports; `EmbeddedPostgres` a PostgreSQL 18;
`MemoryTransport` is a broker in memory for `sal_kafka.Session` and
`MemoryBackend` a sink back-end in memory; `write_through` and
`command_through` inject faults and account for every message; `TcpProxy`
hangs what is behind it (a registry outage for one client);
`BaseCscTestCase` and `assertRaisesAckError` are ts_salobj's CSC test helpers; `run_pair`
runs a ``sal-kafka read`` and ``sal-kafka write`` pair as operators do.
"""

from .._public import set_public_module
from ..kafka._sample import sample_record
from ..kafka.transports.memory import MemoryMessage, MemoryTransport
from ._broker import KafkaCluster
from ._csc_test_case import STD_TIMEOUT, BaseCscTestCase, assertRaisesAckError, make_state_transition_dict
from ._faults import CommandTally, WriteTally, command_through, kill_leader_schedule, write_through
from ._memory_sink import MemoryBackend
from ._proxy import TcpProxy
from ._stack import DEMO, DemoRun, EmbeddedPostgres, Stack, cli_result, free_port, run_pair, spawn_cli

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
    "TcpProxy",
    "BaseCscTestCase",
    "make_state_transition_dict",
    "assertRaisesAckError",
    "STD_TIMEOUT",
    "MemoryTransport",
    "MemoryMessage",
    "MemoryBackend",
    "sample_record",
    "DemoRun",
    "DEMO",
    "spawn_cli",
    "cli_result",
    "run_pair",
]

set_public_module(__name__, globals(), __all__)
