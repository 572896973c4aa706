#!/usr/bin/env python
"""Write messages of one SAL topic to Kafka and report the rate.

Same as ``sal-kafka write``; ``--help`` lists the options.
Example: ``scripts/write_kafka.py KMirror forceActuatorData -n 100000 --acks 1``.
"""

import sys

from sal_kafka._cli import main

if __name__ == "__main__":
    sys.exit(main(["write", *sys.argv[1:]]))
