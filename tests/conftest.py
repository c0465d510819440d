"""Shared pytest setup: make the helper modules in tests/ importable.

pytest's default import mode already puts this directory on ``sys.path`` for
test modules outside a package; inserting it here as well keeps
``from gradcheck import ...`` working under other import modes too.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
