"""Install the tests' network guard in a child Python process (see no_network.py).

Python imports `sitecustomize` at start-up from the first folder on sys.path that has
one; the test session puts this folder first on PYTHONPATH. No system sitecustomize is
shadowed in the project's virtualenv.
"""

import os

if os.environ.get("RUNNER_TEST_NO_NETWORK") == "1":
    import no_network

    no_network.install()
