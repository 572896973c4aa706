#!/usr/bin/env python
"""Read SAL topics from Kafka and report rate, latency, lost and undecodable messages.

Same as ``sal-kafka read``; ``--help`` lists the options.
Example: ``scripts/read_kafka.py KMirror forceActuatorData -n 100000``.
"""

import sys

from sal_kafka._cli import main

if __name__ == "__main__":
    sys.exit(main(["read", *sys.argv[1:]]))
