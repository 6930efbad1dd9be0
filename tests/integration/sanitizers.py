"""Sanitizer reports of the daemons under test fail the test that made them.

On the ASan + UBSan build (make check runs most of the integration suite
there), a daemon that hits a bug aborts with a report; a gateway worker or
a tenant is then replaced, and a test could pass over the crash. So every
sanitized process writes its reports into one folder of this session
(ASAN_OPTIONS / UBSAN_OPTIONS log_path, inherited by everything the tests
start), and after each test, once its daemons are stopped and leak checks
have run, any new report fails that test with the report's text.
"""
import os
import tempfile
from pathlib import Path

import pytest

SAN_DIR = Path(tempfile.gettempdir()) / f"fief-sanitizers-{os.getpid()}"


def _add_option(var, opt):
    old = os.environ.get(var, "")
    os.environ[var] = f"{old}:{opt}" if old else opt


def pytest_configure(config):
    SAN_DIR.mkdir(exist_ok=True)
    # Workers drop to an unprivileged user: anyone may create a report here.
    os.chmod(SAN_DIR, 0o1777)
    _add_option("ASAN_OPTIONS", f"log_path={SAN_DIR}/asan")
    _add_option("UBSAN_OPTIONS", f"log_path={SAN_DIR}/ubsan:print_stacktrace=1")


def pytest_unconfigure(config):
    try:
        if not any(SAN_DIR.iterdir()):
            SAN_DIR.rmdir()
    except OSError:
        pass


def _reports():
    try:
        return set(SAN_DIR.iterdir())
    except FileNotFoundError:
        return set()


@pytest.fixture(autouse=True)
def sanitizer_reports():
    before = _reports()
    yield
    new = sorted(_reports() - before)
    if new:
        text = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[:8000]}" for p in new)
        pytest.fail(f"sanitizer reports from the processes of this test (kept in {SAN_DIR}):\n{text}",
                    pytrace=False)
