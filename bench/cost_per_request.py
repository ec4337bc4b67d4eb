"""Firestore reads and writes of one call to each endpoint, counted against the emulator.

    .venv/bin/python -m bench.cost_per_request
Runs the access matrices (tests/test_access_matrix*.py: every endpoint, with the world
they set up) with the Firestore meter on, and prints the cost of each endpoint's first
successful call. That lists cost their page size plus a constant is proven by
tests/test_request_cost.py.
"""
import sys

import pytest

from bench.common import ROOT

if __name__ == "__main__":
    matrices = sorted(str(p) for p in (ROOT / "tests").glob("test_access_matrix*.py"))
    sys.exit(pytest.main([*matrices, "--cost-table", "-q", "-p", "no:cacheprovider",
                          "-o", "addopts=", "--rootdir", str(ROOT)]))
