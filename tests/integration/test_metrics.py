"""The Prometheus endpoint: scraped, and checked with promtool."""
import shutil
import socket
import subprocess
import tempfile
import urllib.request

import pytest

from conftest import Host, tenant_yaml, wait_for


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
    yield h
    h.stop_launcher()
    for p in h.cgroup_dirs():
        for d in sorted(p.rglob("*"), reverse=True):
            if d.is_dir():
                d.rmdir()
        p.rmdir()
    shutil.rmtree(h.base, ignore_errors=True)


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
    if not shutil.which("promtool"):
        pytest.skip("promtool (Debian prometheus) not installed")
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_metrics_endpoint_refuses_other_requests(mhost):
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(mhost.metrics_url.replace("/metrics", "/secret"), timeout=5)
    assert e.value.code == 404
    req = urllib.request.Request(mhost.metrics_url, data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 405


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
