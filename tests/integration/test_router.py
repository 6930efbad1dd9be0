"""fief-router: tenant networking with a real launcher and a real router.

Network safety: every test runs the whole stack (launcher, router, tenants)
inside an outer network namespace made for that test, and the "internet"
is a second namespace on a veth pair (198.18.0.0/24, the benchmarking
range). Nothing is ever sent anywhere else; every wait and every loop is
bounded; processes are stopped by pid; both namespaces are deleted.
"""
import json
import re
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import Host, binary, tenant_yaml, wait_for

OUT_IP, UP_IP = "198.18.0.1", "198.18.0.2"
# IPv6: the benchmarking range (RFC 5180) outside, a ULA subnet for tenants
OUT6, UP6 = "2001:2::1", "2001:2::2"
ROUTER6, ALICE6, BOB6 = "fd00:f1ef::1", "fd00:f1ef::2", "fd00:f1ef::3"
ALICE_IP, BOB_IP, ROUTER_IP = "10.200.0.2", "10.200.0.3", "10.200.0.1"
HTTP_PORT, UDP_PORT = 8080, 9999

# The upstream "internet": GET /bytes/N sends N bytes, POST returns the
# body length and the peer address; UDP datagrams are logged by source.
# (busybox wget takes the length of --post-file with strlen: upload files
# must hold no NUL byte.)
UPSTREAM = r"""
import http.server, socketserver, sys, threading, socket, json
log = open(sys.argv[1], "a", buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def log_message(self, *a): pass
    def do_GET(self):
        n = int(self.path.rsplit("/", 1)[1]) if self.path.startswith("/bytes/") else 2
        self.send_response(200); self.send_header("Content-Length", str(n)); self.end_headers()
        log.write(json.dumps({"http": self.client_address[0]}) + "\n")
        chunk = b"x" * 65536
        while n > 0:
            self.wfile.write(chunk[:min(n, 65536)]); n -= min(n, 65536)
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0")); got = 0
        while got < n:
            b = self.rfile.read(min(65536, n - got))
            if not b: break
            got += len(b)
        body = ("%d %s\n" % (got, self.client_address[0])).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True; allow_reuse_address = True
def udp(fam, addr):
    s = socket.socket(fam, socket.SOCK_DGRAM); s.bind((addr, UDP_PORT))
    while True:
        d, a = s.recvfrom(65535); log.write(json.dumps({"udp": a[0], "data": d[:32].decode("latin1")}) + "\n")
threading.Thread(target=udp, args=(socket.AF_INET, sys.argv[2]), daemon=True).start()
if len(sys.argv) > 3:
    threading.Thread(target=udp, args=(socket.AF_INET6, sys.argv[3]), daemon=True).start()
if len(sys.argv) > 3:
    class S6(S):
        address_family = socket.AF_INET6
    threading.Thread(target=S6((sys.argv[3], HTTP_PORT), H).serve_forever, daemon=True).start()
S((sys.argv[2], HTTP_PORT), H).serve_forever()
""".replace("UDP_PORT", str(UDP_PORT)).replace("HTTP_PORT", str(HTTP_PORT))

# Run as root in a tenant's network namespace (nsenter -n): send one UDP
# datagram with a chosen source address through a raw socket, as a
# tenant that could write to its tun would.
SPOOF = r"""
import socket, struct, sys
src, dst, port, data, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].encode(), int(sys.argv[5])
udp = struct.pack("!HHHH", 40000, port, 8 + len(data), 0) + data
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                 socket.inet_aton(src), socket.inet_aton(dst))
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for _ in range(count):
    s.sendto(ip + udp, (dst, 0))
"""

# The same for IPv6 (an IPPROTO_RAW socket of AF_INET6 takes the header).
SPOOF6 = r"""
import socket, struct, sys
src, dst, port, data, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].encode(), int(sys.argv[5])
s6, d6 = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
def csum(b):
    b += b"\0" * (len(b) % 2); t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16: t = (t & 0xffff) + (t >> 16)
    return (~t & 0xffff) or 0xffff
udp = struct.pack("!HHHH", 40000, port, 8 + len(data), 0) + data
udp = udp[:6] + struct.pack("!H", csum(s6 + d6 + struct.pack("!II", len(udp), 17) + udp)) + udp[8:]
ip = struct.pack("!IHBB16s16s", 0x60000000, len(udp), 17, 64, s6, d6)
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
for _ in range(count):
    s.sendto(ip + udp, (dst, 0))
"""

# Prepended to the scripts below: one GET /bytes/N from the upstream
# server; returns the number of body bytes received, also when the
# connection fails part way (the error goes to stderr).
FETCH = r"""
import socket, sys
def fetch(host, port, n, timeout):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    got = 0
    try:
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect((host, port))
            s.sendall(("GET /bytes/%d HTTP/1.0\r\n\r\n" % n).encode())
            data = b""
            while b"\r\n\r\n" not in data:
                c = s.recv(65536)
                if not c:
                    return 0
                data += c
            got = len(data.split(b"\r\n\r\n", 1)[1])
            while True:
                c = s.recv(1 << 20)
                if not c:
                    return got
                got += len(c)
    except OSError as e:
        print(e, file=sys.stderr)
        return got
"""

# Run in a tenant's network namespace: GET /bytes/N from HOST:PORT and
# print the byte count (bounded by a timeout).
GET = FETCH + r"""
host, port, n, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
print(fetch(host, port, n, timeout))
"""

# Run in a tenant's network namespace: N parallel TCP flows, each
# GET /bytes/SIZE; print the total of bytes received (bounded).
MULTI_GET = FETCH + r"""
import sys, threading
host, port, flows, n, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
got = [0] * flows
def one(i):
    got[i] = fetch(host, port, n, timeout)
ts = [threading.Thread(target=one, args=(i,)) for i in range(flows)]
for t in ts: t.start()
for t in ts: t.join(timeout + 5)
print(sum(got))
"""

# Run in a tenant's network namespace: FLOWS threads each GET /bytes/SIZE
# again and again until the file STOP exists (at most SECONDS); print how
# many transfers came complete and how many did not.
LOOP_GET = FETCH + r"""
import os, sys, threading, time
host, port, flows, n, stop, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], float(sys.argv[6])
end = time.monotonic() + seconds
ok = [0] * flows; bad = [0] * flows
def one(i):
    while not os.path.exists(stop) and time.monotonic() < end:
        k = fetch(host, port, n, 10)
        if k == n: ok[i] += 1
        else: bad[i] += 1
ts = [threading.Thread(target=one, args=(i,)) for i in range(flows)]
for t in ts: t.start()
for t in ts: t.join(seconds + 15)
print(sum(ok), sum(bad))
"""

# Run in a tenant's network namespace: answer one TCP connection on
# [ADDR]:PORT with a tiny HTTP reply and print what came (bounded).
LISTEN6 = r"""
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM); s.settimeout(20)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1)
c, _ = s.accept(); c.settimeout(10)
print(c.recv(4096).decode(errors="replace"))
c.sendall(b"HTTP/1.0 200 OK\r\n\r\nhello6"); c.close()
"""

# Run in a tenant's network namespace: blast UDP for `seconds` (bounded).
FLOOD = r"""
import socket, sys, time
dst, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setblocking(False)
data = b"f" * 1400; end = time.monotonic() + seconds; sent = 0
while time.monotonic() < end:
    for _ in range(256):
        try: s.sendto(data, (dst, port)); sent += 1
        except (BlockingIOError, ConnectionRefusedError, OSError): pass
print(sent)
"""


def sh(*cmd, check=True, timeout=30, **kw):
    return subprocess.run(cmd, check=check, timeout=timeout, capture_output=True, text=True, **kw)


class Net:
    """The outer namespace (the host's view) and the upstream one."""

    def __init__(self):
        tag = f"{os.getpid()}-{secrets.token_hex(3)}"
        self.outer, self.up = f"fief-rt-{tag}", f"fief-up-{tag}"
        self.procs = []
        sh("ip", "netns", "add", self.outer)
        sh("ip", "netns", "add", self.up)
        sh("ip", "-n", self.outer, "link", "add", "up0", "type", "veth", "peer", "name", "eth0",
           "netns", self.up)
        for ns, dev, addr, addr6 in ((self.outer, "up0", OUT_IP, OUT6), (self.up, "eth0", UP_IP, UP6)):
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            sh("ip", "-n", ns, "addr", "add", f"{addr6}/64", "dev", dev, "nodad")
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")

    def enter_outer(self):
        """Only the network namespace changes: `ip netns exec` would also
        remount /sys and hide the cgroup hierarchies from the launcher."""
        return ["nsenter", f"--net=/run/netns/{self.outer}"]

    def spawn(self, ns, cmd, **kw):
        p = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], **kw)
        self.procs.append(p)
        return p

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        for ns in (self.outer, self.up):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


ROUTER_YAML = """router:
  enabled: true
  device: fief0
  address: 10.200.0.1/16
{threads}{address6}  nat: {{ enabled: true, out_interface: up0 }}
{firewall}"""


class RouterHost(Host):
    """A fief host whose launcher and router run in the outer namespace."""

    def __init__(self, base, distros, net, firewall="", ipv6=False, threads=None, io_uring=True):
        super().__init__(base, distros)
        self.net = net
        text = self.host_file.read_text()
        address6 = f"  address6: '{ROUTER6}/64'\n" if ipv6 else ""
        threads = f"  threads: {threads}\n" if threads else ""
        if not io_uring:
            threads += "  io_uring: false\n"
        self.host_file.write_text(text.replace("router: {enabled: false}\n",
                                               ROUTER_YAML.format(firewall=firewall, address6=address6,
                                                                  threads=threads)))
        self.router = None
        self.router_log = self.base / "router.log"
        self.router_prefix = []          # a command the router runs under

    def start_launcher(self):
        # conftest's launcher, started through nsenter (which execs, so
        # the pid is the launcher's).
        self.log = open(self.log_path, "ab")
        env = dict(os.environ, FIEF_LOG_LEVEL="debug")
        self.launcher = subprocess.Popen(
            [*self.net.enter_outer(), binary("fief-launcher"), "-c", str(self.host_file)],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        wait_for(lambda: (self.state / "launcher.sock").exists() or self.launcher.poll() is not None,
                 what="launcher socket")
        assert self.launcher.poll() is None, self.log_text()
        with open(f"/proc/{self.launcher.pid}/cgroup") as f:
            self.own_cgroups = [l.strip() for l in f if l.strip()]
        return self.launcher

    def start_router(self):
        log = open(self.router_log, "ab")
        self.router = subprocess.Popen(
            [*self.net.enter_outer(), *self.router_prefix, binary("fief-router"), "-d", "-c", str(self.host_file)],
            stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: self.stats_or_none() is not None or self.router.poll() is not None,
                 timeout=20, what="router control socket")
        assert self.router.poll() is None, self.router_log.read_text()
        return self.router

    def stop_router(self, sig=signal.SIGTERM):
        if self.router and self.router.poll() is None:
            self.router.send_signal(sig)
            self.router.wait(20)
        # its cleanup helper holds the lock until NAT is gone
        wait_for(lambda: not (self.state / "router.sock").exists(), timeout=15, what="router cleanup")
        return self.router.returncode

    def stats_or_none(self, name=None):
        try:
            return self.stats(name)
        except OSError:
            return None

    def stats(self, name=None):
        """The router's control socket, parsed: {"router": {...}, "tenants": {name: {...}}}."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.state / "router-control.sock"))
            s.sendall(b"stats" + (b" " + name.encode() if name else b"") + b"\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        recs = []
        for line in data.decode().splitlines():
            rec = {}
            for f in line.split():
                k, v = f.split("=", 1)
                rec[k] = int(v) if v.isdigit() and k != "name" else v
            recs.append(rec)
        assert recs and recs[0].get("ok") == 1, data
        out = {"router": None, "tenants": {}}
        for r in recs[1:]:
            if r["kind"] == "router":
                out["router"] = r
            else:
                out["tenants"][r["name"]] = r
        return out

    def tstats(self, name):
        return self.stats(name)["tenants"][name]

    def netns_run(self, name, script, *args, timeout=30):
        """Run a python script as root in tenant `name`'s network namespace."""
        pid = self.status(name)["pid"]
        return sh("nsenter", "-t", str(pid), "-n", "/usr/bin/python3", "-c", script, *args,
                  timeout=timeout)


@pytest.fixture
def net():
    n = Net()
    yield n
    n.close()


def make_rhost(testroot, net, firewall="", ipv6=False, threads=None, io_uring=True):
    base = tempfile.mkdtemp(prefix="fief-rt-")
    return RouterHost(base, testroot, net, firewall, ipv6, threads, io_uring)


@pytest.fixture
def upstream(net, tmp_path):
    log = tmp_path / "upstream.log"
    log.touch()
    net.spawn(net.up, ["/usr/bin/python3", "-c", UPSTREAM, str(log), UP_IP, UP6])

    def ready():
        r = subprocess.run(["ip", "netns", "exec", net.up, "/usr/bin/python3", "-c",
                            f"import socket; socket.create_connection(('{UP_IP}', {HTTP_PORT}), 1)"],
                           capture_output=True)
        return r.returncode == 0
    wait_for(ready, timeout=15, interval=0.1, what="upstream server")
    return log


def upstream_events(log):
    return [json.loads(l) for l in log.read_text().splitlines() if l.strip()]


def teardown_rhost(h):
    rc = h.stop_launcher()
    if h.router and h.router.poll() is None:
        h.stop_router()
    for p in h.cgroup_dirs():
        for d in sorted(p.rglob("*"), reverse=True):
            if d.is_dir():
                d.rmdir()
        p.rmdir()
    shutil.rmtree(h.base, ignore_errors=True)
    return rc


@pytest.fixture
def rhost(testroot, net, upstream):
    h = make_rhost(testroot, net)
    h.start_router()
    h.start_launcher()
    yield h
    assert teardown_rhost(h) == 0


@pytest.fixture(params=[(1, True), (2, True), (2, False)], ids=["threads1", "threads2", "threads2-syscalls"])
def rhost_mq(request, testroot, net, upstream):
    """A router host with router.threads 1 (one queue, as before
    multi-queue) and 2 (two queues, two forwarding threads), forwarding
    through io_uring; and with two threads making one read(2) and one
    write(2) per packet (router.io_uring: false, what a kernel without
    io_uring gets)."""
    h = make_rhost(testroot, net, threads=request.param[0], io_uring=request.param[1])
    h.threads, h.io_uring = request.param
    h.start_router()
    h.start_launcher()
    # the path asked for is the one taken (this kernel has io_uring)
    want = h.threads if h.io_uring else 0
    wait_for(lambda: (h.stats_or_none() or {}).get("router", {}).get("io_uring") == want,
             what=f"{want} forwarding threads on io_uring")
    yield h
    assert teardown_rhost(h) == 0


def fwd_threads(h):
    """{thread name: ns on CPU} of the router's forwarding threads."""
    out = {}
    for task in Path(f"/proc/{h.router.pid}/task").iterdir():
        try:
            comm = (task / "comm").read_text().strip()
            if comm.startswith("fief-fwd"):
                out[comm] = int((task / "schedstat").read_text().split()[0])
        except OSError:
            pass
    return out


def tenant_queues(h, name):
    """The number of tx queues of eth0 in tenant `name` (one per tun queue)."""
    pid = h.status(name)["pid"]
    # a sysfs of the tenant's network namespace, in a mount namespace of its own
    r = sh("nsenter", "-t", str(pid), "-n", "unshare", "-m", "/bin/sh", "-c",
           "mount -t sysfs none /sys && ls /sys/class/net/eth0/queues")
    return len([q for q in r.stdout.split() if q.startswith("tx-")])


def net_tenant(uid, addr, extra="", addr6=None):
    six = f", address6: '{addr6}'" if addr6 else ""
    return tenant_yaml(uid, extra=f"network: {{ address: {addr}{six} }}\n" + extra)


def start_tenants(h, *specs):
    """specs: (name, uid, addr[, extra[, addr6]]); waits until the router has each."""
    pids = {}
    for spec in specs:
        name, uid, addr = spec[:3]
        h.write_tenant(name, net_tenant(uid, addr, spec[3] if len(spec) > 3 else "",
                                        spec[4] if len(spec) > 4 else None))
    for spec in specs:
        pids[spec[0]] = h.wait_state(spec[0], "running")["pid"]
        wait_for(lambda: spec[0] in h.stats()["tenants"], what=f"{spec[0]} attached to the router")
    return pids


def wget(h, name, url, timeout=20, out="-"):
    return h.enter(name, "/usr/bin/timeout", str(timeout), "/usr/bin/wget", "-q", "-O", out, url,
                   timeout=timeout + 15)


def http_get_size(h, name, nbytes, timeout=20):
    r = h.enter(name, "/bin/sh", "-c",
                f"/usr/bin/timeout {timeout} /usr/bin/wget -q -O - http://{UP_IP}:{HTTP_PORT}/bytes/{nbytes} | /usr/bin/wc -c",
                timeout=timeout + 15)
    return int(r.stdout.strip() or 0), r


def can_connect(h, name, addr, port, timeout=3):
    """A TCP connection from inside tenant `name` (busybox nc)."""
    r = h.enter(name, "/bin/sh", "-c",
                f"echo hello | /usr/bin/timeout {timeout} /usr/bin/nc {addr} {port} && echo CONNECTED",
                timeout=timeout + 15)
    return "CONNECTED" in r.stdout


def listen_in(h, name, port):
    r = h.enter(name, "/bin/sh", "-c",
                f"/usr/bin/timeout 30 /usr/bin/nc -l -p {port} >/tmp/got </dev/null 2>&1 & echo ok")
    assert "ok" in r.stdout, r.stderr


# --------------------------------------------------------------- wiring

def test_tenant_gets_eth0_with_address_and_default_route(rhost):
    start_tenants(rhost, ("alice", 20001, ALICE_IP))
    dev = rhost.enter("alice", "/bin/cat", "/proc/net/dev").stdout
    assert "eth0:" in dev
    routes = rhost.enter("alice", "/bin/cat", "/proc/net/route").stdout.splitlines()[1:]
    default = [r.split() for r in routes if r.split()[1] == "00000000"]
    assert default and default[0][0] == "eth0"
    assert socket.inet_ntoa(int(default[0][2], 16).to_bytes(4, "little")) == ROUTER_IP
    addrs = sh("nsenter", "-t", str(rhost.status("alice")["pid"]), "-n", "ip", "-4", "-o", "addr",
               "show", "dev", "eth0").stdout
    assert f"inet {ALICE_IP} peer {ROUTER_IP}/32" in addrs
    link = sh("nsenter", "-t", str(rhost.status("alice")["pid"]), "-n", "ip", "-o", "link", "show",
              "dev", "eth0").stdout
    assert "mtu 1500" in link and ",UP" in link
    # IPv4 only: no link-local address, no router solicitations to drop
    assert "inet6" not in sh("nsenter", "-t", str(rhost.status("alice")["pid"]), "-n", "ip", "-6",
                             "-o", "addr", "show", "dev", "eth0").stdout
    # (the tenant cannot change any of it: it has no capability at all,
    # see test_deploy_runs_init_as_pid1_in_new_namespaces)


def test_tenant_without_address_has_loopback_only(rhost):
    rhost.write_tenant("carol", tenant_yaml(20003))
    rhost.wait_state("carol", "running")
    assert "eth0:" not in rhost.enter("carol", "/bin/cat", "/proc/net/dev").stdout
    time.sleep(0.3)
    assert "carol" not in rhost.stats()["tenants"]


def test_tenant_reaches_upstream_http_through_nat(rhost, upstream):
    start_tenants(rhost, ("alice", 20001, ALICE_IP))
    size, r = http_get_size(rhost, "alice", 1_000_000)
    assert size == 1_000_000, r.stderr
    # the upstream saw the masqueraded address, never the tenant's
    ev = [e for e in upstream_events(upstream) if "http" in e]
    assert ev and all(e["http"] == OUT_IP for e in ev)
    nft = sh("ip", "netns", "exec", rhost.net.outer, "nft", "list", "table", "ip", "fief").stdout
    assert "masquerade" in nft and "10.200.0.0/16" in nft


def test_router_exit_removes_nat(rhost):
    outer = rhost.net.outer
    assert sh("ip", "netns", "exec", outer, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
    rhost.stop_router()
    assert rhost.router.returncode == 0
    r = sh("ip", "netns", "exec", outer, "nft", "list", "table", "ip", "fief", check=False)
    assert r.returncode != 0
    assert sh("ip", "netns", "exec", outer, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "0"
    assert "fief0" not in sh("ip", "-n", outer, "link").stdout


def test_router_runs_unprivileged(rhost):
    status = Path(f"/proc/{rhost.router.pid}/status").read_text()
    fields = dict(l.split(":", 1) for l in status.splitlines() if ":" in l)
    assert fields["Uid"].split()[0] != "0" and fields["Gid"].split()[0] != "0"
    assert int(fields["CapEff"], 16) == 0 and int(fields["CapPrm"], 16) == 0
    assert int(fields["CapBnd"], 16) == 0
    assert fields["NoNewPrivs"].strip() == "1"
    mode = (rhost.state / "router.sock").stat().st_mode & 0o777
    assert mode == 0o600


# --------------------------------------------------------------- firewall

def test_tenants_cannot_reach_each_other(rhost):
    start_tenants(rhost, ("alice", 20001, ALICE_IP), ("bob", 20002, BOB_IP))
    listen_in(rhost, "bob", 7000)
    assert not can_connect(rhost, "alice", BOB_IP, 7000)
    assert rhost.tstats("alice")["drop_fw_out"] >= 1
    # and both still reach the outside
    assert http_get_size(rhost, "alice", 1000)[0] == 1000
    assert http_get_size(rhost, "bob", 1000)[0] == 1000


def test_rule_order_first_match_wins(testroot, net, upstream):
    fw = ('  firewall:\n'
          '    out: ["allow 10.200.0.0/16 10.200.0.0/16", "allow 10.200.0.2 198.18.0.2",'
          ' "deny 10.200.0.0/16 198.18.0.0/24", "allow 10.200.0.0/16 0.0.0.0/0", "deny"]\n'
          '    in: ["allow 10.200.0.2 10.200.0.3", "allow 10.200.0.3 10.200.0.2",'
          ' "deny 10.200.0.0/16 10.200.0.0/16", "allow 0.0.0.0/0 10.200.0.0/16", "deny"]\n')
    h = make_rhost(testroot, net, fw)
    try:
        h.start_router()
        h.start_launcher()
        start_tenants(h, ("alice", 20001, ALICE_IP), ("bob", 20002, BOB_IP))
        # rule 2 lets alice out before rule 3 denies the upstream subnet
        assert http_get_size(h, "alice", 5000)[0] == 5000
        # bob matches rule 3 first, although rule 4 would allow him
        assert http_get_size(h, "bob", 5000, timeout=3)[0] == 0
        assert h.tstats("bob")["drop_fw_out"] >= 1 and h.tstats("alice")["drop_fw_out"] == 0
        # tenant to tenant, forwarded by the router itself (the rules are
        # stateless: in-rules 1 and 2 allow both directions of alice-bob)
        listen_in(h, "bob", 7000)
        assert can_connect(h, "alice", BOB_IP, 7000)
        assert wait_for(lambda: "hello" in h.enter("bob", "/bin/cat", "/tmp/got").stdout,
                        what="bob got alice's bytes")
        # carol passes out-rule 1 but in-rule 3 stops her before rule 4
        start_tenants(h, ("carol", 20003, "10.200.0.4"))
        listen_in(h, "alice", 7001)
        assert not can_connect(h, "carol", ALICE_IP, 7001)
        assert h.tstats("alice")["drop_fw_in"] >= 1
        assert h.tstats("carol")["drop_fw_out"] == 0
    finally:
        assert teardown_rhost(h) == 0


def test_spoofed_source_is_dropped_and_counted(rhost, upstream):
    start_tenants(rhost, ("alice", 20001, ALICE_IP))
    before = rhost.tstats("alice")
    rhost.netns_run("alice", SPOOF, "10.200.0.99", UP_IP, str(UDP_PORT), "spoofed", "5")
    rhost.netns_run("alice", SPOOF, "198.18.0.77", UP_IP, str(UDP_PORT), "spoofed2", "5")
    rhost.netns_run("alice", SPOOF, ALICE_IP, UP_IP, str(UDP_PORT), "genuine", "1")
    wait_for(lambda: any(e.get("data") == "genuine" for e in upstream_events(upstream)),
             what="the genuine datagram upstream")
    after = rhost.tstats("alice")
    assert after["drop_spoof"] - before["drop_spoof"] == 10
    assert not any(e.get("data", "").startswith("spoofed") for e in upstream_events(upstream))


# --------------------------------------------------------------- accounting

def router_io(h):
    """The kernel's own counts for the router process: completions on its
    io_uring rings (CqTail in each ring's fdinfo), how many rings, and
    its write(2)-family system calls (syscw in /proc/PID/io, which writes
    through a ring do not count)."""
    total, rings = 0, 0
    for fd in Path(f"/proc/{h.router.pid}/fd").iterdir():
        try:
            if os.readlink(fd) != "anon_inode:[io_uring]":
                continue
            info = (Path(f"/proc/{h.router.pid}/fdinfo") / fd.name).read_text()
        except OSError:
            continue
        rings += 1
        total += int(re.search(r"^CqTail:\s*(\d+)", info, re.M).group(1))
    io = Path(f"/proc/{h.router.pid}/io").read_text()
    return total, rings, int(re.search(r"^syscw:\s*(\d+)", io, re.M).group(1))


def test_counters_match_bytes_moved(rhost_mq):
    rhost = rhost_mq
    start_tenants(rhost, ("alice", 20001, ALICE_IP))
    assert tenant_queues(rhost, "alice") == rhost.threads
    assert rhost.tstats("alice")["queues"] == rhost.threads
    n = 4 * 1024 * 1024
    ring0, rings, syscw0 = router_io(rhost)
    assert rings == (rhost.threads if rhost.io_uring else 0)
    before = rhost.tstats("alice")
    assert http_get_size(rhost, "alice", n)[0] == n
    mid = rhost.tstats("alice")
    got_in = mid["in_bytes"] - before["in_bytes"]
    # payload plus IP/TCP headers (at most 52 bytes per 1448-byte segment)
    assert n <= got_in <= n * 1.05 + 20000, got_in
    assert mid["in_packets"] > before["in_packets"]
    r = rhost.enter("alice", "/bin/sh", "-c",
                    f"/bin/dd if=/dev/zero bs=1024 count={n // 1024} 2>/dev/null | /usr/bin/tr '\\000' x >/tmp/up && "
                    f"/usr/bin/timeout 20 /usr/bin/wget -q -O - --post-file /tmp/up http://{UP_IP}:{HTTP_PORT}/count",
                    timeout=40)
    assert r.stdout.split()[0] == str(n), r.stderr
    after = rhost.tstats("alice")
    got_out = after["out_bytes"] - mid["out_bytes"]
    assert n <= got_out <= n * 1.05 + 20000, got_out
    assert after["drops"] == 0
    st = rhost.stats()["router"]
    assert st["tenants"] == 1 and st["in_bytes"] >= got_in
    # The path each packet took, by the kernel's counts: through io_uring
    # every write is a completion on a ring and no write(2); without it,
    # one write(2) per packet. (The control socket's replies are a few
    # writes of their own.)
    moved = (after["in_packets"] - before["in_packets"]) + (after["out_packets"] - before["out_packets"])
    ring1, _, syscw1 = router_io(rhost)
    print(f"{moved} packets forwarded: {ring1 - ring0} ring completions, {syscw1 - syscw0} write calls")
    if rhost.io_uring:
        assert ring1 - ring0 >= moved and syscw1 - syscw0 < 20, (ring1 - ring0, syscw1 - syscw0, moved)
    else:
        assert ring1 == ring0 and syscw1 - syscw0 >= moved, (syscw1 - syscw0, moved)


def test_fiefctl_stats(rhost):
    start_tenants(rhost, ("alice", 20001, ALICE_IP), ("bob", 20002, BOB_IP))
    http_get_size(rhost, "alice", 10000)
    r = rhost.ctl("stats", check=False)
    assert r.returncode == 0, r.stderr
    assert "alice" in r.stdout and "bob" in r.stdout
    j = json.loads(rhost.ctl("stats", "--json").stdout)
    names = [t["name"] for t in j["tenants"]]
    assert names == ["alice", "bob"]
    a = j["tenants"][0]
    assert a["address"] == ALICE_IP and a["in_bytes"] >= 10000
    one = json.loads(rhost.ctl("stats", "alice", "--json").stdout)
    assert [t["name"] for t in one["tenants"]] == ["alice"]
    assert rhost.ctl("stats", "nobody", check=False).returncode != 0
    # the same counters on the launcher's Prometheus endpoint (in the outer namespace)
    m = sh("nsenter", "-t", str(rhost.launcher.pid), "-n", "curl", "-s", "-m", "5",
           "http://127.0.0.1:9187/metrics").stdout
    assert 'fief_tenant_network_bytes_total{tenant="alice",direction="in"}' in m
    assert 'fief_tenant_network_drops_total{tenant="bob",reason="spoof"} 0' in m


def test_stopped_tenant_leaves_the_router(rhost):
    start_tenants(rhost, ("alice", 20001, ALICE_IP), ("bob", 20002, BOB_IP))
    rhost.remove_tenant("bob")
    rhost.wait_gone("bob")
    wait_for(lambda: "bob" not in rhost.stats()["tenants"], what="bob removed from the router")
    assert "alice" in rhost.stats()["tenants"]
    # a restart gives a new tun, and the router follows
    pid = rhost.status("alice")["pid"]
    rhost.ctl("stop", "alice")
    wait_for(lambda: "alice" not in rhost.stats()["tenants"], what="alice detached")
    rhost.ctl("start", "alice")
    wait_for(lambda: (s := rhost.status("alice")) and s["state"] == "running" and s["pid"] != pid,
             what="alice restarted")
    wait_for(lambda: "alice" in rhost.stats()["tenants"], what="alice re-attached")
    assert http_get_size(rhost, "alice", 1000)[0] == 1000


# --------------------------------------------------------------- robustness

def test_router_kill9_and_restart_restores_every_tenant(rhost_mq):
    rhost = rhost_mq
    pids = start_tenants(rhost, ("alice", 20001, ALICE_IP), ("bob", 20002, BOB_IP))
    for name in pids:
        assert http_get_size(rhost, name, 1000)[0] == 1000
    rhost.router.send_signal(signal.SIGKILL)
    rhost.router.wait(10)
    assert http_get_size(rhost, "alice", 1000, timeout=2)[0] == 0
    rhost.start_router()
    wait_for(lambda: set(rhost.stats()["tenants"]) == {"alice", "bob"}, timeout=10,
             what="tenants handed over again")
    # every queue came back: the launcher kept a duplicate of each
    assert all(t["queues"] == rhost.threads for t in rhost.stats()["tenants"].values())
    for name, pid in pids.items():
        assert http_get_size(rhost, name, 100_000)[0] == 100_000
        s = rhost.status(name)
        assert s["pid"] == pid and s["restarts"] == 0, "tenants must not be touched"


def test_launcher_and_router_restart_keep_every_tenant_networked(rhost_mq):
    rhost = rhost_mq
    pids = start_tenants(rhost, ("alice", 20001, ALICE_IP), ("bob", 20002, BOB_IP))
    rhost.launcher.send_signal(signal.SIGKILL)
    rhost.launcher.wait(10)
    rhost.router.send_signal(signal.SIGKILL)
    rhost.router.wait(10)
    rhost.start_router()
    rhost.start_launcher()
    # the new launcher takes each tun back from its init and hands it over
    try:
        wait_for(lambda: set(rhost.stats()["tenants"]) == {"alice", "bob"}, timeout=10,
                 what="tenants handed over by the adopting launcher")
    except AssertionError:
        raise AssertionError(rhost.log_text()[-3000:])
    # the adopting launcher took every queue back from each init
    assert all(t["queues"] == rhost.threads for t in rhost.stats()["tenants"].values())
    for name, pid in pids.items():
        assert http_get_size(rhost, name, 100_000)[0] == 100_000
        s = rhost.status(name)
        assert s["pid"] == pid and s["state"] == "running"


def test_flooding_tenant_does_not_stop_another(rhost):
    start_tenants(rhost, ("alice", 20001, ALICE_IP), ("bob", 20002, BOB_IP))
    n = 32 * 1024 * 1024
    t0 = time.monotonic()
    assert http_get_size(rhost, "bob", n)[0] == n
    quiet = time.monotonic() - t0
    pid = rhost.status("alice")["pid"]
    flood = subprocess.Popen(["nsenter", "-t", str(pid), "-n", "/usr/bin/python3", "-c", FLOOD,
                              UP_IP, "9", "12"], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        t0 = time.monotonic()
        size, r = http_get_size(rhost, "bob", n, timeout=30)
        busy = time.monotonic() - t0
        assert flood.poll() is None, "the flood must still be running during the transfer"
    finally:
        sent = int(flood.communicate(timeout=30)[0].strip() or 0)
    a = rhost.tstats("alice")
    print(f"bob 32 MiB: {quiet:.2f}s quiet, {busy:.2f}s under a flood of {sent} datagrams; "
          f"alice out {a['out_packets']} packets, drops {a['drops']}")
    assert size == n, r.stderr
    assert a["out_packets"] > 10000, "the flood went through the router"
    assert busy < max(10 * quiet, 10.0)


def flood_keeps_control(rhost, enter, dst, meanwhile=None):
    """A 3 s UDP flood to dst, run with the command prefix enter (a
    namespace): a second in, the router's control socket answers within a
    second and still has alice and bob, and meanwhile() (if given) returns
    True (else what went wrong). Returns the datagrams sent."""
    flood = subprocess.Popen([*enter, "/usr/bin/python3", "-c", FLOOD, dst, "9", "3"],
                             stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        t0 = time.monotonic()
        st = rhost.stats()
        assert time.monotonic() - t0 < 1.0, "the control socket answers during the flood"
        assert set(st["tenants"]) == {"alice", "bob"}
        if meanwhile:
            ok = meanwhile()
            assert ok is True, ok
    finally:
        sent = int(flood.communicate(timeout=30)[0].strip() or 0)
    return sent


def test_congested_way_out_keeps_every_tenant(rhost, upstream):
    """The way out is far slower than a tenant sends (a 20 Mbit/s token
    bucket with a deep queue on the outer veth) while it floods: the router
    keeps forwarding without blocking (the kernel queues and drops behind
    it: IP receive takes the skbs off the router's account, so its own
    device bound, and drop_full, only come into play when the stack behind
    a device lags in taking packets at all), answers its control socket,
    detaches no tenant, and both tenants move data once it clears."""
    start_tenants(rhost, ("alice", 20001, ALICE_IP), ("bob", 20002, BOB_IP))
    outer = rhost.net.outer
    sh("ip", "netns", "exec", outer, "tc", "qdisc", "add", "dev", "up0", "root", "tbf", "rate", "20mbit",
       "burst", "64kb", "limit", "64mb")
    try:
        pid = rhost.status("alice")["pid"]
        sent = flood_keeps_control(rhost, ["nsenter", "-t", str(pid), "-n"], UP_IP)
        a = rhost.tstats("alice")
        print(f"alice sent {sent} datagrams: out {a['out_packets']}, drops {a['drops']} (full {a['drop_full']})")
        assert a["out_packets"] > 1000 and a["drop_error"] == 0
    finally:
        sh("ip", "netns", "exec", outer, "tc", "qdisc", "del", "dev", "up0", "root")
    assert set(rhost.stats()["tenants"]) == {"alice", "bob"}
    assert wait_for(lambda: http_get_size(rhost, "alice", 100_000)[0] == 100_000, timeout=20,
                    what="alice's transfer after the congestion")
    assert http_get_size(rhost, "bob", 100_000)[0] == 100_000


# Run in a tenant's network namespace: make eth0 hold what the router
# writes to it. Its ingress is redirected to an ifb device whose 1 Mbit/s
# token bucket queues up to 64 MiB, so the router's skbs stay on the
# router's account (IP receive would release them at once) until the
# device's bound fills and the kernel refuses the router's writes.
HOLD = """
ip link add hold0 type ifb
ip link set hold0 up
tc qdisc add dev hold0 root tbf rate 1mbit burst 16kb limit 64mb
tc qdisc add dev eth0 handle ffff: ingress
tc filter add dev eth0 parent ffff: protocol all u32 match u32 0 0 action mirred egress redirect dev hold0
"""
UNHOLD = "tc qdisc del dev eth0 ingress; ip link del hold0"


def test_full_device_drops_and_counts_and_keeps_the_tenant(rhost_mq):
    """A tenant's eth0 stops taking packets (its stack holds them all):
    the router's writes to it fail, each such packet is dropped and
    counted as `full` against that tenant, the router keeps answering and
    forwarding for the others, and the tenant stays attached and moves
    data again once its device drains."""
    rhost = rhost_mq
    start_tenants(rhost, ("alice", 20001, ALICE_IP), ("bob", 20002, BOB_IP))
    pid = str(rhost.status("alice")["pid"])
    sh("nsenter", "-t", pid, "-n", "/bin/sh", "-ec", HOLD)
    try:
        before = rhost.tstats("alice")
        # from the host side (fief0's address) to alice, through the router
        sent = flood_keeps_control(
            rhost, rhost.net.enter_outer(), ALICE_IP,
            meanwhile=lambda: http_get_size(rhost, "bob", 1_000_000)[0] == 1_000_000 or "bob is not served")
        a = rhost.tstats("alice")
        taken = a["in_packets"] - before["in_packets"]
        full = a["drop_full"] - before["drop_full"]
        print(f"{sent} datagrams sent to alice: {taken} written to her device, {full} dropped as full, "
              f"drops {a['drops']}")
        # 2 MiB of the router's writes per queue, less what 1 Mbit/s drains
        assert full > 0 and a["drop_error"] == 0, a
        # the device took packets until it was full
        assert 0 < taken < 4000 * rhost.threads, taken
        assert full > sent // 4, (full, sent)
    finally:
        sh("nsenter", "-t", pid, "-n", "/bin/sh", "-c", UNHOLD, check=False)
    assert set(rhost.stats()["tenants"]) == {"alice", "bob"}
    assert wait_for(lambda: http_get_size(rhost, "alice", 1_000_000)[0] == 1_000_000, timeout=20,
                    what="alice's transfer once her device drains")


def test_rate_limit_holds_outbound(testroot, net, upstream):
    h = make_rhost(testroot, net)
    try:
        h.start_router()
        h.start_launcher()
        h.write_tenant("alice", tenant_yaml(20001, extra=f"network: {{ address: {ALICE_IP}, rate_limit: 1M }}\n"))
        h.wait_state("alice", "running")
        wait_for(lambda: (t := h.stats()["tenants"].get("alice")) and t["rate_limit"] == 1024 * 1024,
                 what="alice attached with a rate limit")
        n = 3 * 1024 * 1024
        t0 = time.monotonic()
        r = h.enter("alice", "/bin/sh", "-c",
                    f"/bin/dd if=/dev/zero bs=1024 count={n // 1024} 2>/dev/null | /usr/bin/tr '\\000' x >/tmp/up && "
                    f"/usr/bin/timeout 30 /usr/bin/wget -q -O - --post-file /tmp/up http://{UP_IP}:{HTTP_PORT}/count",
                    timeout=50)
        took = time.monotonic() - t0
        assert r.stdout.split()[0] == str(n), r.stderr
        # 3 MiB at 1 MiB/s after a burst of at most 0.1 s worth
        assert took >= 2.2, took
    finally:
        assert teardown_rhost(h) == 0


# --------------------------------------------------------------- multi-queue

def test_two_threads_share_many_flows_with_exact_counters(testroot, net, upstream):
    """router.threads 2: eth0 and fief0 have two queues, the kernel spreads
    16 TCP flows over them by flow hash, both forwarding threads carry
    traffic, and the per-thread counters add up to what was moved."""
    h = make_rhost(testroot, net, threads=2)
    try:
        h.start_router()
        h.start_launcher()
        start_tenants(h, ("alice", 20001, ALICE_IP))
        assert tenant_queues(h, "alice") == 2
        assert h.stats()["router"]["threads"] == 2
        flows, n = 16, 2 * 1024 * 1024
        before, cpu0 = h.tstats("alice"), fwd_threads(h)
        assert sorted(cpu0) == ["fief-fwd0", "fief-fwd1"]
        r = h.netns_run("alice", MULTI_GET, UP_IP, str(HTTP_PORT), str(flows), str(n), "30", timeout=60)
        assert int(r.stdout.strip() or 0) == flows * n, r.stderr
        after, cpu1 = h.tstats("alice"), fwd_threads(h)
        got_in = after["in_bytes"] - before["in_bytes"]
        # payload plus IP/TCP headers (at most 52 bytes per 1448-byte segment), the 16 requests
        assert flows * n <= got_in <= flows * n * 1.05 + 20000 * flows, got_in
        assert after["drops"] == before["drops"] == 0
        busy = {k: (cpu1[k] - cpu0[k]) / 1e6 for k in cpu1}
        print(f"forwarding threads, ms on CPU for {flows} flows: {busy}")
        assert all(ms > 1.0 for ms in busy.values()), busy
        router = h.stats()["router"]
        print({k: v for k, v in router.items() if k.startswith("drop")})
        assert router["out_bytes"] >= got_in and router["drop_full"] == 0 and router["drop_error"] == 0
    finally:
        assert teardown_rhost(h) == 0


# Runs argv[1:] with io_uring_setup(2) answered EPERM by a seccomp filter,
# as on a kernel with kernel.io_uring_disabled set or under a container's
# policy. x86_64 only (the system call number and the arch check).
NO_IO_URING = r"""
import ctypes, os, struct, sys
LD_W_ABS, JEQ_K, RET_K = 0x20, 0x15, 0x06
ARCH_X86_64, NR_IO_URING_SETUP = 0xC000003E, 425
ALLOW, ERRNO_EPERM = 0x7FFF0000, 0x00050000 | 1
KILL = 0x80000000
prog = [(LD_W_ABS, 0, 0, 4), (JEQ_K, 1, 0, ARCH_X86_64), (RET_K, 0, 0, KILL),
        (LD_W_ABS, 0, 0, 0), (JEQ_K, 0, 1, NR_IO_URING_SETUP), (RET_K, 0, 0, ERRNO_EPERM),
        (RET_K, 0, 0, ALLOW)]
raw = b"".join(struct.pack("HBBI", *i) for i in prog)
buf = ctypes.create_string_buffer(raw, len(raw))
class Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
fp = Fprog(len(prog), ctypes.cast(buf, ctypes.c_void_p))
libc = ctypes.CDLL(None, use_errno=True)
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) or \
        libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fp), 0, 0):
    sys.exit("seccomp: " + os.strerror(ctypes.get_errno()))
os.execv(sys.argv[1], sys.argv[1:])
"""


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the filter is written for x86_64")
def test_router_refused_io_uring_forwards_with_read_and_write(testroot, net, upstream):
    """A kernel that refuses io_uring costs the router CPU, not service:
    each forwarding thread says so once and moves packets with read(2) and
    write(2), and every byte still arrives, counted."""
    h = make_rhost(testroot, net, threads=2)
    h.router_prefix = ["/usr/bin/python3", "-c", NO_IO_URING]
    try:
        h.start_router()
        h.start_launcher()
        start_tenants(h, ("alice", 20001, ALICE_IP))
        n = 4 * 1024 * 1024
        before = h.tstats("alice")
        size, r = http_get_size(h, "alice", n)
        assert size == n, r.stderr
        after, router = h.tstats("alice"), h.stats()["router"]
        assert router["threads"] == 2 and router["io_uring"] == 0
        assert n <= after["in_bytes"] - before["in_bytes"] <= n * 1.05 + 20000
        assert after["drops"] == 0
        log = h.router_log.read_text()
        assert "io_uring unavailable" in log and "Operation not permitted" in log, log
    finally:
        assert teardown_rhost(h) == 0


@pytest.mark.parametrize("before,after", [(2, 1), (1, 2)], ids=["2to1", "1to2"])
def test_router_restarted_with_another_thread_count(testroot, net, upstream, before, after):
    """Tenants keep the queues their eth0 was made with; a router restarted
    with another router.threads reads every queue (thread j % threads) and
    writes on queue i % queues, and many flows still get through whole."""
    h = make_rhost(testroot, net, threads=before)
    try:
        h.start_router()
        h.start_launcher()
        start_tenants(h, ("alice", 20001, ALICE_IP))
        assert tenant_queues(h, "alice") == before
        h.stop_router()
        h.host_file.write_text(h.host_file.read_text().replace(f"  threads: {before}\n", f"  threads: {after}\n"))
        h.start_router()
        wait_for(lambda: "alice" in h.stats()["tenants"], what="alice handed over again")
        st = h.stats()
        assert st["router"]["threads"] == after and st["tenants"]["alice"]["queues"] == before
        flows, n = 8, 1024 * 1024
        r = h.netns_run("alice", MULTI_GET, UP_IP, str(HTTP_PORT), str(flows), str(n), "30", timeout=60)
        assert int(r.stdout.strip() or 0) == flows * n, r.stderr
        assert h.tstats("alice")["drops"] == 0
    finally:
        assert teardown_rhost(h) == 0


def test_removed_tenant_is_freed_when_the_router_is_idle(testroot, net, upstream):
    """A removed tenant's entry waits for every forwarding thread to move
    on before it is freed: with no traffic at all the threads are woken
    for that, and the router lets go of the tun's queues within a second
    (holding them would keep the device, and the tenant's namespace, alive)."""
    h = make_rhost(testroot, net, threads=2)
    try:
        h.start_router()
        h.start_launcher()
        start_tenants(h, ("alice", 20001, ALICE_IP), ("bob", 20002, BOB_IP))
        fds = lambda: len(os.listdir(f"/proc/{h.router.pid}/fd"))
        time.sleep(0.5)
        before = fds()
        h.remove_tenant("bob")
        h.wait_gone("bob")
        wait_for(lambda: "bob" not in h.stats()["tenants"], what="bob removed from the router")
        t0 = time.monotonic()
        wait_for(lambda: fds() <= before - 2, timeout=5, what="bob's two queues closed by the router")
        assert time.monotonic() - t0 < 1.0
        assert http_get_size(h, "alice", 100_000)[0] == 100_000
    finally:
        assert teardown_rhost(h) == 0


def test_tenants_come_and_go_while_traffic_flows(testroot, net, upstream):
    """With two forwarding threads, tenants added, replaced and removed by
    the launcher while another tenant's transfer runs through both threads:
    the transfer completes intact, every change reaches the router, and the
    removed tenants' entries are freed (the ASan build checks the frees)."""
    h = make_rhost(testroot, net, threads=2)
    try:
        h.start_router()
        h.start_launcher()
        start_tenants(h, ("alice", 20001, ALICE_IP))
        pid = h.status("alice")["pid"]
        flows, n = 4, 8 * 1024 * 1024
        stop = h.base / "stop-alice"
        p = subprocess.Popen(["nsenter", "-t", str(pid), "-n", "/usr/bin/python3", "-c", LOOP_GET,
                              UP_IP, str(HTTP_PORT), str(flows), str(n), str(stop), "60"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: h.tstats("alice")["in_bytes"] > 4 * n, what="alice's traffic flowing")
            for round_ in range(3):
                h.write_tenant("bob", net_tenant(20002, BOB_IP))
                h.wait_state("bob", "running")
                wait_for(lambda: "bob" in h.stats()["tenants"], what="bob attached")
                assert http_get_size(h, "bob", 100_000)[0] == 100_000
                if round_ == 1:
                    # a restart: a new tun replaces bob's entry
                    old = h.status("bob")["pid"]
                    h.ctl("stop", "bob")
                    wait_for(lambda: "bob" not in h.stats()["tenants"], what="bob detached")
                    h.ctl("start", "bob")
                    wait_for(lambda: (s := h.status("bob")) and s["state"] == "running" and s["pid"] != old,
                             what="bob restarted")
                    wait_for(lambda: "bob" in h.stats()["tenants"], what="bob re-attached")
                h.remove_tenant("bob")
                h.wait_gone("bob")
                wait_for(lambda: "bob" not in h.stats()["tenants"], what="bob removed from the router")
            assert p.poll() is None, "alice's traffic ran the whole time"
            stop.touch()
            out, err = p.communicate(timeout=90)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        ok, bad = map(int, out.split())
        print(f"alice: {ok} transfers of {n} B complete, {bad} not, while bob came and went")
        assert ok >= flows and bad == 0, err
        a = h.tstats("alice")
        assert a["drop_error"] == 0 and a["drop_malformed"] == 0
        assert set(h.stats()["tenants"]) == {"alice"} and h.stats()["router"]["tenants"] == 1
        assert h.router.poll() is None
    finally:
        assert teardown_rhost(h) == 0


# --------------------------------------------------------------- IPv6

def get_in(h, name, host, nbytes, timeout=10):
    """GET /bytes/N from the upstream server, from tenant name's network namespace."""
    r = h.netns_run(name, GET, host, str(HTTP_PORT), str(nbytes), str(timeout), timeout=timeout + 20)
    return int(r.stdout.strip() or 0)


@pytest.fixture
def rhost6(testroot, net, upstream):
    h = make_rhost(testroot, net, ipv6=True)
    h.start_router()
    h.start_launcher()
    yield h
    assert teardown_rhost(h) == 0


def test_ipv6_tenant_reaches_upstream_through_nat(rhost6, upstream):
    pids = start_tenants(rhost6, ("alice", 20001, ALICE_IP, "", ALICE6), ("carol", 20003, "10.200.0.4"))
    pid = pids["alice"]
    addrs = sh("nsenter", "-t", str(pid), "-n", "ip", "-6", "-o", "addr", "show", "dev", "eth0").stdout
    assert f"inet6 {ALICE6}/128" in addrs and "fe80" not in addrs, addrs
    assert "default dev eth0" in sh("nsenter", "-t", str(pid), "-n", "ip", "-6", "route").stdout
    assert rhost6.tstats("alice")["address6"] == ALICE6
    assert "address6" not in rhost6.tstats("carol")
    j = json.loads(rhost6.ctl("stats", "alice", "--json").stdout)
    assert j["tenants"][0]["address6"] == ALICE6 and j["router"]["address6"] == f"{ROUTER6}/64"
    # a tenant without address6 keeps IPv4 only
    carol = rhost6.status("carol")["pid"]
    assert "inet6" not in sh("nsenter", "-t", str(carol), "-n", "ip", "-6", "-o", "addr", "show",
                             "dev", "eth0").stdout
    n = 2_000_000
    before = rhost6.tstats("alice")
    assert get_in(rhost6, "alice", UP6, n) == n
    after = rhost6.tstats("alice")
    got_in = after["in_bytes"] - before["in_bytes"]
    # payload plus IPv6/TCP headers (at most 72 bytes per 1428-byte segment)
    assert n <= got_in <= n * 1.06 + 20000, got_in
    assert after["drop_spoof"] == 0 and after["drop_ipv6_off"] == 0
    # the upstream saw the masqueraded address, never the tenant's
    ev = [e["http"] for e in upstream_events(upstream) if ":" in e.get("http", "")]
    assert ev and all(a == OUT6 for a in ev), ev
    nft = sh("ip", "netns", "exec", rhost6.net.outer, "nft", "list", "table", "ip6", "fief").stdout
    assert "masquerade" in nft and "fd00:f1ef::/64" in nft
    # IPv4 still works beside it
    assert get_in(rhost6, "alice", UP_IP, 10000) == 10000
    # a router restart hands alice back with her IPv6 address
    rhost6.router.send_signal(signal.SIGKILL)
    rhost6.router.wait(10)
    rhost6.start_router()
    wait_for(lambda: rhost6.stats()["tenants"].get("alice", {}).get("address6") == ALICE6, timeout=10,
             what="alice handed over again with IPv6")
    assert get_in(rhost6, "alice", UP6, 100_000) == 100_000
    # and a clean exit removes both NAT tables and restores forwarding
    rhost6.stop_router()
    outer = rhost6.net.outer
    assert sh("ip", "netns", "exec", outer, "nft", "list", "table", "ip6", "fief", check=False).returncode != 0
    assert sh("ip", "netns", "exec", outer, "sysctl", "-n",
              "net.ipv6.conf.all.forwarding").stdout.strip() == "0"


def test_ipv6_spoofing_and_tenant_isolation(rhost6, upstream):
    start_tenants(rhost6, ("alice", 20001, ALICE_IP, "", ALICE6), ("bob", 20002, BOB_IP, "", BOB6))
    before = rhost6.tstats("alice")
    rhost6.netns_run("alice", SPOOF6, "fd00:f1ef::99", UP6, str(UDP_PORT), "spoofed6", "5")
    rhost6.netns_run("alice", SPOOF6, BOB6, UP6, str(UDP_PORT), "spoofed6b", "5")
    rhost6.netns_run("alice", SPOOF6, ALICE6, UP6, str(UDP_PORT), "genuine6", "1")
    wait_for(lambda: any(e.get("data") == "genuine6" for e in upstream_events(upstream)),
             what="the genuine IPv6 datagram upstream")
    after = rhost6.tstats("alice")
    assert after["drop_spoof"] - before["drop_spoof"] == 10
    assert not any(e.get("data", "").startswith("spoofed") for e in upstream_events(upstream))
    # the default rules keep tenants apart over IPv6 too
    r = rhost6.netns_run("alice", GET, BOB6, "7000", "10", "2")
    assert r.stdout.strip() == "0"
    assert rhost6.tstats("alice")["drop_fw_out"] >= 1


def test_ipv6_rule_order_and_families(testroot, net, upstream):
    fw = ('  firewall:\n'
          '    out: ["allow fd00:f1ef::2 2001:2::/64", "deny ::/0 2001:2::/64",'
          ' "allow 10.200.0.0/16 0.0.0.0/0", "allow fd00:f1ef::/64 ::/0", "deny"]\n'
          '    in: ["allow ::/0 fd00:f1ef::/64", "allow 0.0.0.0/0 10.200.0.0/16", "deny"]\n')
    h = make_rhost(testroot, net, fw, ipv6=True)
    try:
        h.start_router()
        h.start_launcher()
        start_tenants(h, ("alice", 20001, ALICE_IP, "", ALICE6), ("bob", 20002, BOB_IP, "", BOB6))
        # rule 1 lets alice out before rule 2 denies the upstream subnet
        assert get_in(h, "alice", UP6, 5000) == 5000
        # bob meets rule 2 first, although rule 4 would allow him
        assert get_in(h, "bob", UP6, 5000, timeout=3) == 0
        assert h.tstats("bob")["drop_fw_out"] >= 1 and h.tstats("alice")["drop_fw_out"] == 0
        # an IPv6 rule never decides an IPv4 packet: bob's IPv4 passes rule 3
        assert get_in(h, "bob", UP_IP, 5000) == 5000
        # tenant to tenant over IPv6, forwarded by the router itself: out-rule 4
        # and in-rule 1 allow bob to reach alice
        apid = h.status("alice")["pid"]
        srv = subprocess.Popen(["nsenter", "-t", str(apid), "-n", "/usr/bin/python3", "-c", LISTEN6, ALICE6, "7000"],
                               stdout=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: "7000" in sh("nsenter", "-t", str(apid), "-n", "ss", "-Hltn").stdout,
                     what="alice listening on IPv6")
            before = h.tstats("alice")["in_packets"]
            r = h.netns_run("bob", GET, ALICE6, "7000", "0", "5")
            assert r.stdout.strip() == str(len(b"hello6")), (r.stderr, h.tstats("alice"), h.tstats("bob"))
            assert "GET /bytes/0" in srv.communicate(timeout=10)[0]
        finally:
            if srv.poll() is None:
                srv.kill()
                srv.wait(10)
        assert h.tstats("alice")["in_packets"] > before and h.tstats("bob")["drop_no_route"] == 0
    finally:
        assert teardown_rhost(h) == 0
