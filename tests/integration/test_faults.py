"""Faults: kill -9 of each daemon and of a tenant's init while customers
work. The system recovers, neighbours do not notice, finished files stay."""
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import GwHost, cleanup_cgroups, pubkey, tenant_file, wait_for


@pytest.fixture
def fh(distros, keys, gw_user):
    base = tempfile.mkdtemp(prefix="fief-fault-")
    os.chmod(base, 0o755)
    h = GwHost(base, distros, keys)
    h.start_launcher()
    try:
        h.write_tenant("alice", tenant_file(21001, pubkey(keys, "alice")))
        h.write_tenant("bob", tenant_file(21002, pubkey(keys, "bob")))
        for name in ("alice", "bob"):
            h.wait_state(name, "running")
        h.start_gateway(os.environ.get("FIEF_BUILD"))
        yield h
    finally:
        h.stop_gateway()
        h.stop_launcher()
        cleanup_cgroups(h)
        shutil.rmtree(base, ignore_errors=True)


def long_session(h, user, seconds=4):
    """An ssh session that is busy for a while and proves it finished."""
    return subprocess.Popen(h.ssh_args(user) + [f"for i in $(seq {seconds * 10}); do sleep 0.1; done; echo finished"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_launcher_kill9_does_not_touch_sessions_or_tenants(fh):
    pids = {n: fh.status(n)["pid"] for n in ("alice", "bob")}
    sess = long_session(fh, "alice")
    time.sleep(0.5)
    fh.launcher.send_signal(signal.SIGKILL)
    fh.launcher.wait(10)
    # with no launcher at all, logins and sessions go on: the agents serve
    assert fh.ssh("bob", "echo still here").stdout == "still here\n"
    out, _ = sess.communicate(timeout=30)
    assert sess.returncode == 0 and out == "finished\n"
    fh.start_launcher()
    for n, pid in pids.items():
        s = fh.wait_state(n, "running")
        assert s["pid"] == pid and s["restarts"] == 0


def test_gateway_kill9_ends_only_its_connections(fh):
    pids = {n: fh.status(n)["pid"] for n in ("alice", "bob")}
    sess = long_session(fh, "alice", seconds=20)
    time.sleep(0.5)
    for w in fh.worker_pids():
        os.kill(w, signal.SIGKILL)
    fh.gw.send_signal(signal.SIGKILL)
    fh.gw.wait(10)
    sess.communicate(timeout=30)
    assert sess.returncode == 255            # the connection is gone...
    mark = len(fh.gw_log())
    fh.start_gateway(os.environ.get("FIEF_BUILD"))
    fh.wait_workers(2, since=mark)
    r = fh.ssh("alice", "echo back")
    assert r.stdout == "back\n", r.stderr + fh.gw_log()[-2000:]   # ...and comes back
    for n, pid in pids.items():
        assert fh.status(n)["pid"] == pid     # tenants never noticed
    # the session's processes were hung up, not left behind in the tenant
    wait_for(lambda: "seq 200" not in fh.ssh("alice", "cat /proc/*/cmdline | tr '\\0' ' '").stdout,
             what="orphaned session ended")


def test_init_kill9_restarts_the_tenant_and_keeps_finished_files(fh, tmp_path):
    data = tmp_path / "upload.bin"
    data.write_bytes(os.urandom(8 << 20))
    with open(data, "rb") as f:
        r = subprocess.run(fh.ssh_args("alice") + ["cat > upload.bin"], stdin=f, capture_output=True,
                           timeout=60)
    assert r.returncode == 0, r.stderr
    bob_pid = fh.status("bob")["pid"]
    bob_sess = long_session(fh, "bob")
    alice_sess = long_session(fh, "alice", seconds=20)
    time.sleep(0.5)
    old = fh.status("alice")["pid"]
    os.kill(old, signal.SIGKILL)
    alice_sess.communicate(timeout=30)
    assert alice_sess.returncode != 0          # its tenant went away under it
    out, _ = bob_sess.communicate(timeout=30)
    assert bob_sess.returncode == 0 and out == "finished\n"
    assert fh.status("bob")["pid"] == bob_pid
    wait_for(lambda: (s := fh.status("alice")) and s["state"] == "running" and s["pid"] != old,
             what="alice restarted")
    assert sha(fh.homes / "alice" / "upload.bin") == sha(data)
    r = fh.ssh("alice", "sha256sum upload.bin")
    assert r.stdout.split()[0] == sha(data)
