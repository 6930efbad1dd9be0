"""make install: files, modes, and systemd units that systemd accepts."""
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import REPO


def test_install_into_destdir_and_verify_units(tmp_path):
    dest = tmp_path / "root"
    subprocess.run(["make", "-s", "install", f"DESTDIR={dest}", "PREFIX=/usr"], cwd=REPO,
                   check=True, capture_output=True)
    for b in ("sbin/fief-launcher", "sbin/fief-gateway", "sbin/fief-router", "bin/fiefctl"):
        st = os.stat(dest / "usr" / b)
        assert stat.S_IMODE(st.st_mode) == 0o755
    assert stat.S_IMODE(os.stat(dest / "etc/fief/hostkeys").st_mode) == 0o700
    assert (dest / "etc/fief/fief.yaml").read_text() == (REPO / "conf/fief.yaml").read_text()
    units = sorted((dest / "etc/systemd/system").glob("fief-*.service"))
    assert [u.name for u in units] == ["fief-gateway.service", "fief-launcher.service",
                                       "fief-router.service"]
    if not shutil.which("systemd-analyze"):
        pytest.skip("no systemd-analyze")
    # Point ExecStart at the staged binaries so verify can check them.
    for u in units:
        u.write_text(u.read_text().replace("/usr/sbin/", f"{dest}/usr/sbin/"))
    r = subprocess.run(["systemd-analyze", "verify", *map(str, units)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr


def test_install_keeps_an_existing_host_file(tmp_path):
    dest = tmp_path / "root"
    (dest / "etc/fief").mkdir(parents=True)
    (dest / "etc/fief/fief.yaml").write_text("state_dir: /run/mine\n")
    subprocess.run(["make", "-s", "install", f"DESTDIR={dest}"], cwd=REPO, check=True,
                   capture_output=True)
    assert (dest / "etc/fief/fief.yaml").read_text() == "state_dir: /run/mine\n"
