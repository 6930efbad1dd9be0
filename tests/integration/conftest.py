"""Fixtures for fief's integration tests: real daemons, real clients.

Every test that needs a launcher gets a fresh host of its own (state,
tenants, homes and logs under one temporary folder, a cgroup parent of its
own) and a fast busybox distro that is built once per session.

The gateway fixtures (GwHost, gw, keys, distros, gw_user) and the client
helpers that several test files share live here too, so that test files
never import from each other.
"""
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
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


def launcher_children(host):
    """{pid: comm} of the launcher's children (every thread's)."""
    pid = host.launcher.pid
    kids = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            for k in open(f"/proc/{pid}/task/{task}/children").read().split():
                kids[int(k)] = Path(f"/proc/{k}/comm").read_text().strip()
        except FileNotFoundError:
            pass
    return kids


def zygotes(host):
    """The pids of the launcher's fief-zygote children (one when all is well)."""
    return [p for p, comm in launcher_children(host).items() if comm == "fief-zygote"]


@contextlib.contextmanager
def hung_zygote(host):
    """The launcher's zygote stopped (SIGSTOP) for the block; yields its pid.
    The launcher is expected to kill it; a survivor is let go on exit."""
    (z,) = zygotes(host)
    os.kill(z, signal.SIGSTOP)
    try:
        yield z
    finally:
        try:
            os.kill(z, signal.SIGCONT)
        except ProcessLookupError:
            pass


def deploy_many(host, names, uid0, timeout):
    """Write a tenant file for each name (uids from uid0), then wait until
    all of them run."""
    for i, name in enumerate(names):
        host.write_tenant(name, tenant_yaml(uid0 + i))
    wait_for(lambda: sum(t["state"] == "running" for t in host.tenants_json()) == len(names),
             timeout=timeout, interval=0.2, what=f"{len(names)} tenants running")


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


# ------------------------------------------------------------ gateway

def import_paramiko():
    """paramiko, imported only by the tests that use it (its deprecation
    warnings about old ciphers silenced)."""
    import warnings
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    return pytest.importorskip("paramiko")


GW_USER = "fief-gw-test"
WORKERS = 2
SSH_BASE = ["-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes",
            "-o", "ConnectTimeout=10"]
DENIED = "Permission denied (publickey,password)."


# ----------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def gw_user():
    require_root()
    if subprocess.run(["id", GW_USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        GW_USER], check=True)
    return GW_USER


@pytest.fixture(scope="session")
def distros(testroot):
    """mini (from conftest) and the Debian distro, next to each other."""
    env = dict(os.environ, FIEF_DISTROS_DIR=str(DISTROS))
    r = subprocess.run([str(REPO / "scripts" / "make-distro"), "bookworm"], env=env,
                       capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        pytest.skip("cannot build the bookworm distro: " + r.stderr[-500:])
    return DISTROS


@pytest.fixture(scope="session")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    for name in ("alice", "bob", "carol", "dave", "eve"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(d / name)],
                       check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "3072", "-N", "", "-f", str(d / "carol_rsa")],
                   check=True)
    return d


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def have_ipv6():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def pubkey(keys, name):
    return (keys / f"{name}.pub").read_text().strip()


def tenant_file(uid, key, distro="mini", shell="/bin/sh", extra_ssh="", extra="",
                limits="{ memory: 256M, cpu: 1, pids: 256, tmp: 64M }"):
    return (f"uid: {uid}\n"
            f"distro: {distro}\n"
            f"limits: {limits}\n"
            "ssh:\n"
            f"  shell: {shell}\n"
            "  authorized_keys:\n"
            f"    - {key}\n" + extra_ssh + extra)


class GwHost(Host):
    """A Host whose host file has a gateway section, and its gateway."""

    def __init__(self, base, distros, keys, **gateway):
        super().__init__(base, distros)
        self.keys = keys
        self.port = free_port()
        self.ipv6 = have_ipv6()
        self.gw = None
        self.gw_log_path = self.base / "gateway.log"
        self.gateway_opts = gateway
        self.host_text = re.sub(r"^gateway:.*\n", "", self.host_file.read_text(), flags=re.M)
        self.write_host_file()

    def write_host_file(self):
        listen = [f'"127.0.0.1:{self.port}"'] + ([f'"[::1]:{self.port}"'] if self.ipv6 else [])
        g = {"listen": "[" + ", ".join(listen) + "]", "host_keys_dir": str(self.base / "hostkeys"),
             "user": GW_USER, "workers": str(WORKERS)}
        g.update({k: str(v) for k, v in self.gateway_opts.items()})
        text = self.host_text + "gateway:\n" + "".join(f"  {k}: {v}\n" for k, v in g.items())
        tmp = self.host_file.with_suffix(".tmp")
        tmp.write_text(text)
        os.rename(tmp, self.host_file)

    # --- the gateway ---
    def gw_log(self):
        try:
            return self.gw_log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start_gateway(self, build=None):
        exe = str(Path(build) / "fief-gateway") if build else binary("fief-gateway")
        self.gw_out = open(self.gw_log_path, "ab")
        env = dict(os.environ, FIEF_LOG_LEVEL=os.environ.get("FIEF_GW_LOG_LEVEL", "info"))
        self.gw = subprocess.Popen([exe, "-c", str(self.host_file)], stdout=self.gw_out,
                                   stderr=subprocess.STDOUT, env=env)
        self.wait_workers(WORKERS)
        return self.gw

    def wait_workers(self, n, since=0):
        wait_for(lambda: self.gw.poll() is not None or
                 self.gw_log().count("ready as", since) >= n, timeout=20, what="gateway workers")
        assert self.gw.poll() is None, self.gw_log()

    def reload_gateway(self, **opts):
        """Rewrite the host file and SIGHUP: a new generation of workers."""
        self.gateway_opts.update(opts)
        self.write_host_file()
        mark = len(self.gw_log())
        self.gw.send_signal(signal.SIGHUP)
        self.wait_workers(WORKERS, since=mark)

    def stop_gateway(self, timeout=20):
        if not self.gw or self.gw.poll() is not None:
            return self.gw.returncode if self.gw else None
        self.gw.send_signal(signal.SIGTERM)
        try:
            self.gw.wait(timeout)
        except subprocess.TimeoutExpired:
            self.gw.kill()
            self.gw.wait()
            raise AssertionError("gateway did not stop in time:\n" + self.gw_log()[-3000:])
        return self.gw.returncode

    def worker_pids(self):
        out = subprocess.run(["pgrep", "-P", str(self.gw.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    # --- clients ---
    def ssh_args(self, user, key=None, opts=(), host="127.0.0.1"):
        key = key or user
        return (["ssh", *SSH_BASE, "-p", str(self.port), "-i", str(self.keys / key), *opts,
                 f"{user}@{host}"])

    def ssh(self, user, command=None, key=None, opts=(), input=None, timeout=60, host="127.0.0.1",
            text=True):
        args = self.ssh_args(user, key, opts, host) + ([command] if command is not None else [])
        return subprocess.run(args, input=input, capture_output=True, text=text, timeout=timeout)

    def ssh_command(self, key):
        """For rsync -e, GIT_SSH_COMMAND, scp and sftp -S."""
        return " ".join(["ssh", *SSH_BASE, "-p", str(self.port), "-i", str(self.keys / key)])

    def paramiko(self, user, key=None, **kw):
        paramiko = import_paramiko()
        c = paramiko.SSHClient()
        c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        pkey = paramiko.Ed25519Key.from_private_key_file(str(self.keys / (key or user)))
        c.connect("127.0.0.1", self.port, user, pkey=pkey, allow_agent=False, look_for_keys=False,
                  timeout=10, banner_timeout=10, auth_timeout=10, **kw)
        return c


def cleanup_cgroups(h):
    for p in h.cgroup_dirs():
        for d in sorted(p.rglob("*"), reverse=True):
            if d.is_dir():
                d.rmdir()
        p.rmdir()


@contextlib.contextmanager
def gateway_host(prefix, distros, keys, tenants, stopped=(), extra_host="", before=None, ready=None,
                 start_timeout=15, check_launcher=True):
    """A GwHost with its launcher, the tenants given (name -> tenant file
    text) running, then its gateway; everything stopped and removed after.
    before(h) runs once the launcher is up, ready(h) once the tenants are.
    The gateway must exit cleanly and log no sanitizer report."""
    base = tempfile.mkdtemp(prefix=prefix)
    # The gateway runs as its own user: it must reach tenants.d and state/agents.
    os.chmod(base, 0o755)
    h = GwHost(base, distros, keys)
    if extra_host:
        h.host_text += extra_host
        h.write_host_file()
    h.start_launcher()
    try:
        if before:
            before(h)
        for name, text in tenants.items():
            h.write_tenant(name, text)
        for name in tenants:
            h.wait_state(name, "running", timeout=start_timeout)
        for name in stopped:
            h.ctl("stop", name)
            h.wait_state(name, "stopped")
        if ready:
            ready(h)
        h.start_gateway(os.environ.get("FIEF_BUILD"))
        yield h
    finally:
        rc = h.stop_gateway()
        gw_log = h.gw_log()
        # pytest shows this only when the test failed
        print("---- gateway log (last lines) ----\n" + "\n".join(gw_log.splitlines()[-60:]))
        lrc = h.stop_launcher()
        cleanup_cgroups(h)
        shutil.rmtree(base, ignore_errors=True)
    assert rc == 0, "gateway exited with %s:\n%s" % (rc, gw_log[-3000:])
    assert lrc == 0 or not check_launcher
    assert "Sanitizer" not in gw_log and "runtime error" not in gw_log, gw_log[-5000:]


@pytest.fixture
def gw(distros, keys, gw_user):
    tenants = {
        "alice": tenant_file(21001, pubkey(keys, "alice")),
        "bob": tenant_file(21002, pubkey(keys, "bob")),
        "carol": tenant_file(21003, pubkey(keys, "carol"), distro="bookworm", shell="/bin/bash",
                             limits="{ memory: 1G, cpu: 2, pids: 2048, tmp: 256M }",
                             extra_ssh="  accept_env: [FIEF_NOPE, MY_*, EXACT]\n"),
        "dave": tenant_file(21004, pubkey(keys, "dave")),
    }
    with gateway_host("fief-gw-", distros, keys, tenants, stopped=("dave",)) as h:
        yield h



class Deadline:
    """Kill these processes if they are still running after `seconds`: a
    stalled relay must fail the test, not hang it."""

    def __init__(self, seconds, *procs):
        self.procs = procs
        self.timer = threading.Timer(seconds, self.fire)
        self.fired = False

    def fire(self):
        self.fired = True
        for p in self.procs:
            if p.poll() is None:
                p.kill()

    def __enter__(self):
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.cancel()
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        assert not self.fired, "timed out"


def hash_stream(f, size):
    h = hashlib.sha256()
    left = size
    while left:
        chunk = f.read(min(left, 1 << 20))
        assert chunk, "stream ended early"
        h.update(chunk)
        left -= len(chunk)
    assert f.read(1) == b""
    return h.hexdigest()


def feed_random(proc, size, seed):
    """Write size pseudo-random bytes to proc.stdin; return their sha256."""
    h = hashlib.sha256()
    block = hashlib.shake_256(seed).digest(1 << 20)
    sent = 0
    while sent < size:
        chunk = block[: min(len(block), size - sent)]
        proc.stdin.write(chunk)
        h.update(chunk)
        block = block[1:] + block[:1]           # every MiB differs
        sent += len(chunk)
    proc.stdin.close()
    return h.hexdigest()



def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))



def login_time(gw):
    t0 = time.monotonic()
    assert gw.ssh("alice", "echo quick").stdout == "quick\n"
    return time.monotonic() - t0


def baseline(gw):
    """How long a login takes right now on this (possibly busy) machine."""
    return sorted(login_time(gw) for _ in range(3))[1]
