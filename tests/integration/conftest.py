"""Fixtures for fief's integration tests: real daemons, real clients.

Every test that needs a launcher gets a fresh host of its own (state,
tenants, homes and logs under one temporary folder, a cgroup parent of its
own) and a fast busybox distro that is built once per session.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

# Sanitizer reports fail the test that made them (see sanitizers.py).
from sanitizers import pytest_configure, pytest_unconfigure, sanitizer_reports  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("FIEF_BUILD", REPO / "build"))
DISTROS = REPO / "build" / "distros"


def binary(name):
    return str(BUILD / name)


def wait_for(pred, timeout=10.0, interval=0.02, what="condition"):
    """Poll pred() until it returns a true value; bounded in time."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def require_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (namespaces, cgroups, pivot_root)")


@pytest.fixture(scope="session")
def testroot():
    """A busybox rootfs with the static probe, as distro 'mini'."""
    require_root()
    DISTROS.mkdir(parents=True, exist_ok=True)
    root = DISTROS / "mini"
    subprocess.run([str(REPO / "scripts" / "make-testroot"), "--probe", binary("fief-probe"),
                    str(root)], check=True)
    # A setuid-root program, to show that it gives a tenant nothing.
    suid = root / "usr" / "bin" / "fief-probe-suid"
    shutil.copyfile(binary("fief-probe"), suid)
    os.chown(suid, 0, 0)
    os.chmod(suid, 0o4755)
    return DISTROS


class Host:
    """A fief host in a temporary folder, with its own launcher."""

    def __init__(self, base, distros, extra_host=""):
        self.base = Path(base)
        self.state = self.base / "state"
        self.tenants = self.base / "tenants.d"
        self.homes = self.base / "homes"
        self.logs = self.base / "logs"
        self.tenants.mkdir()
        self.cgroup_parent = f"fief-test-{os.getpid()}-{self.base.name[-6:]}"
        self.host_file = self.base / "fief.yaml"
        self.host_file.write_text(
            f"state_dir: {self.state}\n"
            f"tenants_dir: {self.tenants}\n"
            f"distros_dir: {distros}\n"
            f"homes_dir: {self.homes}\n"
            f"log_dir: {self.logs}\n"
            f"cgroup_parent: {self.cgroup_parent}\n"
            "gateway: {user: fief-nobody-here}\n"
            "router: {enabled: false}\n"
            f"http: {{reload_command: '', nginx_map: {self.base}/nginx-domains.map}}\n" + extra_host)
        self.launcher = None
        self.log_path = self.base / "launcher.log"

    # --- daemons ---
    def start_launcher(self):
        self.log = open(self.log_path, "ab")
        env = dict(os.environ, FIEF_LOG_LEVEL="debug")
        self.launcher = subprocess.Popen([binary("fief-launcher"), "-c", str(self.host_file)],
                                         stdout=self.log, stderr=subprocess.STDOUT, env=env)
        wait_for(lambda: (self.state / "launcher.sock").exists() or self.launcher.poll() is not None,
                 what="launcher socket")
        assert self.launcher.poll() is None, self.log_text()
        with open(f"/proc/{self.launcher.pid}/cgroup") as f:
            lines = [l.strip() for l in f if l.strip()]
        # a launcher that moved itself into a leaf on cgroup v2 names it
        self.own_cgroups = [re.sub(r"/launcher$", "", l) for l in lines]
        return self.launcher

    def stop_launcher(self, sig=signal.SIGTERM, timeout=20):
        if self.launcher and self.launcher.poll() is None:
            self.launcher.send_signal(sig)
            try:
                self.launcher.wait(timeout)
            except subprocess.TimeoutExpired:
                self.launcher.kill()
                self.launcher.wait()
                raise AssertionError("launcher did not stop in time:\n" + self.log_text())
        return self.launcher.returncode if self.launcher else None

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # --- tenants ---
    def write_tenant(self, name, text):
        """Write a tenant file the way a careful tool does: temp + rename."""
        tmp = self.tenants / f".{name}.yaml.tmp"
        tmp.write_text(text)
        os.rename(tmp, self.tenants / f"{name}.yaml")

    def remove_tenant(self, name):
        (self.tenants / f"{name}.yaml").unlink()

    def ctl(self, *args, check=True, input=None, timeout=30):
        r = subprocess.run([binary("fiefctl"), "-c", str(self.host_file), *args],
                           capture_output=True, text=True, input=input, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"fiefctl {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
        return r

    def status(self, name):
        r = self.ctl("--json", "status", name, check=False)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)

    def tenants_json(self):
        return json.loads(self.ctl("--json", "list").stdout)

    def wait_state(self, name, state, timeout=15):
        def check():
            s = self.status(name)
            return s if s and s["state"] == state else None
        return wait_for(check, timeout, what=f"{name} {state}")

    def wait_gone(self, name, timeout=15):
        return wait_for(lambda: self.status(name) is None, timeout, what=f"{name} gone")

    def enter(self, name, *cmd, input=None, timeout=30, check=False):
        return self.ctl("enter", name, "--", *cmd, input=input, timeout=timeout, check=check)

    def probe(self, name, *args):
        r = self.enter(name, "/usr/bin/fief-probe", *args)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def cgroup_dirs(self, name=""):
        """The cgroup directories of this host's parent (or of one tenant),
        below the launcher's own cgroup in each hierarchy."""
        found = []
        for line in self.own_cgroups:
            _, ctrls, path = line.split(":", 2)
            names = [c for c in ctrls.split(",") if c] or [""]
            for ctrl in names:
                base = Path("/sys/fs/cgroup") / (ctrl if ctrl else ("unified" if Path("/sys/fs/cgroup/unified").is_dir() else ""))
                if not base.is_dir():
                    continue
                p = base / path.lstrip("/") / self.cgroup_parent
                if name:
                    p = p / name
                if p.is_dir():
                    found.append(p)
        return found


def tenant_yaml(uid, distro="mini", extra="", pids=64):
    return (f"uid: {uid}\n"
            f"distro: {distro}\n"
            f"limits: {{ memory: 128M, cpu: 0.5, pids: {pids}, tmp: 16M }}\n"
            "ssh: { shell: /bin/sh }\n" + extra)


@pytest.fixture
def host(testroot):
    base = tempfile.mkdtemp(prefix="fief-")
    h = Host(base, testroot)
    h.start_launcher()
    yield h
    rc = h.stop_launcher()
    leftovers = h.cgroup_dirs()
    for p in leftovers:
        for d in sorted(p.rglob("*"), reverse=True):
            if d.is_dir():
                d.rmdir()
        p.rmdir()
    shutil.rmtree(base, ignore_errors=True)
    assert rc == 0, "launcher exited with %s" % rc


@pytest.fixture(scope="session")
def debian(testroot):
    """The real Debian 12 distro of scripts/make-distro, as 'bookworm' next
    to 'mini' (about 2 s from /var/cache/fief, 100 s the first time)."""
    env = dict(os.environ, FIEF_DISTROS_DIR=str(testroot))
    subprocess.run([str(REPO / "scripts" / "make-distro"), "bookworm"], check=True, env=env,
                   stdout=subprocess.DEVNULL, timeout=1200)
    return testroot
