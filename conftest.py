"""Repository-root conftest: its presence puts this checkout first on sys.path for the tests.

It imports anytouch_policy before any test or fixture can import torch, so the test processes get the package's
OpenMP defaults (anytouch_policy/threads.py) as every anytouch process does.
"""

import anytouch_policy  # noqa: F401
