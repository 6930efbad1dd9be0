"""make demo's own smoke test: start, ssh in, curl the app, stop, nothing left."""
import socket
import subprocess

from conftest import BUILD, REPO, require_root


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fief_processes(tag):
    out = subprocess.run(["pgrep", "-af", tag], capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if "pgrep" not in l]


def test_demo_smoke(tmp_path):
    require_root()
    state = f"/run/fief-demo-test-{tmp_path.name[-8:]}"
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "FIEF_DEMO_SSH_PORT": str(free_port()),
           "FIEF_DEMO_HTTP_PORT": str(free_port()), "FIEF_DEMO_STATE": state}
    r = subprocess.run([str(REPO / "scripts" / "demo"), str(BUILD), "--smoke"], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "demo: ssh ok as demo on demo" in r.stdout
    assert "demo: app says: hello from tenant demo (uid 20100)" in r.stdout
    assert not fief_processes("/var/lib/fief-demo/"), "the demo left processes behind"
    assert not fief_processes(state)
