"""Where the benchmarks find the Stanford Background archive.

The loader looks in a data home (``--data-home``, else ``SKRCNN_DATA``, else
``~/skrcnn_data``) and caches its parse there. When the archive is not in
that folder but this workplace's read-only copy is (``../shared/data`` beside
the repository), the benchmark links it in, so the cache lands in a writable
place. The package itself never looks at ``../shared``.
"""

import os

from skrcnn.datasets import (DataNotFoundError, get_data_home,
                             load_stanford_background)

ARCHIVE = "iccv09Data.tar.gz"
SHARED_COPY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                           "..", "shared", "data", ARCHIVE)


def load_stanford(data_home=None, parser=None):
    """The Stanford Background Bunch, without downloading. With ``parser``
    (a script's ArgumentParser), a missing archive is its usage error."""
    home = get_data_home(data_home)
    target = os.path.join(home, ARCHIVE)
    if not os.path.exists(target) and os.path.exists(SHARED_COPY):
        os.makedirs(home, exist_ok=True)
        os.symlink(os.path.abspath(SHARED_COPY), target)
    try:
        return load_stanford_background(data_home=home,
                                        download_if_missing=False)
    except DataNotFoundError as exc:
        if parser is None:
            raise
        parser.error(str(exc))
