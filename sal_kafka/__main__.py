"""``python -m sal_kafka``: the same as the ``sal-kafka`` command."""

import sys

from ._cli import main

sys.exit(main())
