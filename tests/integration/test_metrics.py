"""The Prometheus endpoint: scraped, and checked with promtool."""
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import urllib.request

import pytest

from conftest import Host, hung_zygote, tenant_yaml, wait_for


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mhost(testroot):
    port = free_port()
    h = Host(tempfile.mkdtemp(prefix="fief-m-"), testroot,
             extra_host=f"metrics: {{ listen: '127.0.0.1:{port}' }}\n")
    h.metrics_url = f"http://127.0.0.1:{port}/metrics"
    h.start_launcher()
    wait_for(lambda: listening(port), what="the metrics endpoint")   # opened after launcher.sock
    yield h
    h.stop_launcher()
    for p in h.cgroup_dirs():
        for d in sorted(p.rglob("*"), reverse=True):
            if d.is_dir():
                d.rmdir()
        p.rmdir()
    shutil.rmtree(h.base, ignore_errors=True)


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
        return True
    except OSError:
        return False


def scrape(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def test_metrics_per_tenant_and_promtool(mhost, tmp_path):
    mhost.write_tenant("alice", tenant_yaml(20001))
    mhost.wait_state("alice", "running")
    text = scrape(mhost.metrics_url)
    assert 'fief_tenant_up{tenant="alice"} 1' in text
    assert 'fief_tenant_state{tenant="alice",state="running"} 1' in text
    assert f'fief_tenant_memory_limit_bytes{{tenant="alice"}} {128 << 20}' in text
    assert 'fief_tenant_pids_limit{tenant="alice"} 64' in text
    assert "fief_tenants 1" in text
    assert 'fief_launcher_inits_total{by="zygote"} 1' in text
    assert 'fief_launcher_inits_total{by="launcher"} 0' in text
    assert "fief_launcher_zygote_starts_total 1" in text
    if not shutil.which("promtool"):
        pytest.skip("promtool (Debian prometheus) not installed")
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_metrics_count_inits_the_launcher_cloned_itself(mhost):
    """A hung zygote: the launcher clones that init itself, the series say
    so, and the next start has a new zygote."""
    with hung_zygote(mhost):
        mhost.write_tenant("alice", tenant_yaml(20001))
        mhost.wait_state("alice", "running")
    mhost.write_tenant("bob", tenant_yaml(20002))
    mhost.wait_state("bob", "running")
    text = scrape(mhost.metrics_url)
    assert 'fief_launcher_inits_total{by="launcher"} 1' in text
    assert 'fief_launcher_inits_total{by="zygote"} 1' in text
    assert "fief_launcher_zygote_starts_total 2" in text


def test_metrics_endpoint_refuses_other_requests(mhost):
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(mhost.metrics_url.replace("/metrics", "/secret"), timeout=5)
    assert e.value.code == 404
    req = urllib.request.Request(mhost.metrics_url, data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 405


def test_a_request_in_pieces_is_answered(mhost):
    """The blank line that ends a request may come split across packets,
    and a peer may send a byte at a time: the head is still found, and
    the launcher answers the scrape."""
    port = int(mhost.metrics_url.split(":")[2].split("/")[0])
    for pieces in ([b"GET /metrics HTTP/1.0\r\n\r", b"\n"],
                   [bytes([c]) for c in b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n"]):
        with socket.create_connection(("127.0.0.1", port), 5) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for p in pieces:
                s.sendall(p)
                time.sleep(0.01)
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200 OK\r\n") and b"fief_launcher_inits_total" in reply, reply[:200]


def test_peer_daemons_add_their_samples(mhost):
    import os
    import threading
    path = mhost.state / "metrics" / "test.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(4)

    def serve():
        c, _ = srv.accept()
        c.sendall(b"# HELP fief_test_total A peer's counter.\n# TYPE fief_test_total counter\nfief_test_total 7\n")
        c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    assert "fief_test_total 7" in scrape(mhost.metrics_url)
    srv.close()
    os.unlink(path)


# ------------------------------------------------------- the gateway's series

from conftest import gateway_host, pubkey, tenant_file  # noqa: E402

INTRUDER = "mallory-zq7"          # a name no tenant has: must never become a label


@pytest.fixture
def gwm(testroot, keys, gw_user):
    port = free_port()

    def endpoint_up(h):
        h.metrics_url = f"http://127.0.0.1:{port}/metrics"
        wait_for(lambda: listening(port), what="the metrics endpoint")

    tenants = {"alice": tenant_file(21001, pubkey(keys, "alice")), "bob": tenant_file(21002, pubkey(keys, "bob"))}
    with gateway_host("fief-gwm-", testroot, keys, tenants, before=endpoint_up,
                      extra_host=f"metrics: {{ listen: '127.0.0.1:{port}' }}\n") as h:
        yield h


def samples(text):
    """{'name{labels}': value} of every sample; duplicates fail."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            assert key not in out, "duplicate series " + key
            out[key] = float(value)
    return out


def gw_value(url, series):
    return samples(scrape(url)).get(series)


def promtool(text):
    if shutil.which("promtool"):
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


def test_gateway_logins_and_sessions(gwm):
    ok_a = 'fief_gateway_logins_total{tenant="alice",result="ok"}'
    failed_a = 'fief_gateway_logins_total{tenant="alice",result="failed"}'
    unknown = 'fief_gateway_logins_total{tenant="_unknown",result="failed"}'
    open_a = 'fief_gateway_ssh_sessions{tenant="alice"}'
    sock = gwm.state / "metrics" / "gateway.sock"
    st = sock.stat()
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660 and st.st_uid == 0
    assert st.st_gid == pwd.getpwnam(gwm.gateway_opts.get("user", "fief-gw-test")).pw_gid

    assert gwm.ssh("alice", "echo in").stdout == "in\n"            # a good login
    r = gwm.ssh("alice", "echo in", key="bob")                       # a wrong key
    assert r.returncode == 255
    r = gwm.ssh(INTRUDER, "echo in", key="alice")                    # no such tenant
    assert r.returncode == 255
    wait_for(lambda: gw_value(gwm.metrics_url, unknown) == 1 and gw_value(gwm.metrics_url, failed_a) == 1,
          what="the failures counted")
    text = scrape(gwm.metrics_url)
    s = samples(text)
    assert s[ok_a] == 1 and s[failed_a] == 1 and s[unknown] == 1 and s[open_a] == 0
    assert not any(k.startswith("fief_gateway_") and 'tenant="bob"' in k for k in s)   # no login tried yet
    assert INTRUDER not in text and "mallory" not in text
    assert text.count("# TYPE fief_gateway_logins_total counter") == 1
    assert text.count("# TYPE fief_gateway_ssh_sessions gauge") == 1
    promtool(text)

    # an open connection is a session until it closes
    c = gwm.paramiko("alice")
    try:
        wait_for(lambda: gw_value(gwm.metrics_url, open_a) == 1, what="one open session")
        assert gw_value(gwm.metrics_url, ok_a) == 2
    finally:
        c.close()
    wait_for(lambda: gw_value(gwm.metrics_url, open_a) == 0, what="the session closed")

    # SIGHUP: a new generation of workers, the same counters
    gwm.reload_gateway()
    assert gw_value(gwm.metrics_url, ok_a) == 2 and gw_value(gwm.metrics_url, unknown) == 1
    assert gwm.ssh("alice", "true").returncode == 0
    wait_for(lambda: gw_value(gwm.metrics_url, ok_a) == 3, what="a login after the reload")

    # a worker killed with sessions open: the master forgets them
    c = gwm.paramiko("alice")
    try:
        wait_for(lambda: gw_value(gwm.metrics_url, open_a) == 1, what="one open session")
        mark = len(gwm.gw_log())
        for w in gwm.worker_pids():
            os.kill(w, signal.SIGKILL)
        gwm.wait_workers(2, since=mark)
        wait_for(lambda: gw_value(gwm.metrics_url, open_a) == 0, what="the killed worker's session forgotten")
    finally:
        c.close()
    promtool(scrape(gwm.metrics_url))

    # a gateway restart starts from zero; stopping removes the socket
    started = gw_value(gwm.metrics_url, "fief_gateway_start_time_seconds")
    assert gwm.stop_gateway() == 0
    assert not sock.exists()
    assert "fief_gateway_" not in scrape(gwm.metrics_url)
    time.sleep(1.1)
    mark = len(gwm.gw_log())
    gwm.start_gateway(os.environ.get("FIEF_BUILD"))
    gwm.wait_workers(2, since=mark)
    s = samples(scrape(gwm.metrics_url))
    assert s[unknown] == 0 and ok_a not in s and s["fief_gateway_start_time_seconds"] > started


def test_stuck_peer_does_not_hold_the_scrape(mhost):
    """A peer that accepts and never writes (or trickles) costs one deadline,
    and its half text is left out."""
    import threading
    path = mhost.state / "metrics" / "stuck.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(4)
    conns = []

    def serve():
        for _ in range(2):
            try:
                c, _ = srv.accept()
            except OSError:
                return
            conns.append(c)
            c.sendall(b"# TYPE fief_half_total counter\nfief_half_to")   # then nothing

    threading.Thread(target=serve, daemon=True).start()
    try:
        t0 = time.monotonic()
        text = scrape(mhost.metrics_url)
        assert time.monotonic() - t0 < 2.0
        assert "fief_half" not in text and "fief_tenants 0" in text
    finally:
        srv.close()
        for c in conns:
            c.close()
        os.unlink(path)
