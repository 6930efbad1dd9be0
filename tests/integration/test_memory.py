"""Memory of idle tenants, on the release build (make check runs this file
there). Under AddressSanitizer every process carries its shadow memory and
the figures mean nothing: the test skips itself there."""
import re
import time
from pathlib import Path

import pytest

from conftest import deploy_many


def pss_kib(pid):
    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    return int(re.search(r"^Pss:\s+(\d+) kB", text, re.M).group(1))


def test_an_idle_init_stays_under_512_kib(host):
    """Issue 3's bound for init + agent (one process: the agent is part of
    the init), idle, PSS."""
    if "libasan" in Path(f"/proc/{host.launcher.pid}/maps").read_text():
        pytest.skip("a sanitizer build: its memory figures mean nothing")
    n = 20
    deploy_many(host, [f"m{i:02d}" for i in range(n)], 31000, 60)
    time.sleep(1.5)        # the init gives back what its start dirtied 1 s after it
    pss = [pss_kib(host.status(f"m{i:02d}")["pid"]) for i in range(n)]
    assert max(pss) < 512, pss
