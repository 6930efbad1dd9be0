"""fiefctl check and schema: the operator's view of the config model."""
import subprocess

from conftest import REPO, binary


def ctl(*args, input=None):
    return subprocess.run([binary("fiefctl"), *args], capture_output=True, text=True, input=input)


def test_examples_pass_check():
    files = [str(REPO / "conf/fief.yaml")] + sorted(str(p) for p in (REPO / "conf/tenants.d").glob("*.yaml"))
    r = ctl("check", *files)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(": ok") == len(files)


def test_bad_value_reports_file_line_col(tmp_path):
    bad = tmp_path / "carol.yaml"
    bad.write_text("uid: 20003\nlimits:\n  memory: 12Q\n")
    r = ctl("check", str(REPO / "conf/fief.yaml"), str(bad))
    assert r.returncode == 1
    assert f"{bad}:3:11: limits.memory: '12Q' is not a size" in r.stderr


def test_tenant_checked_against_the_host_subnet(tmp_path):
    t = tmp_path / "dave.yaml"
    t.write_text("uid: 20004\nnetwork: { address: 192.0.2.7 }\n")
    r = ctl("check", str(REPO / "conf/fief.yaml"), str(t))
    assert r.returncode == 1
    assert f"{t}:2:21: network.address: 192.0.2.7 is outside the router subnet 10.200.0.0/16" in r.stderr
    # the same file alone has no subnet to be checked against
    assert ctl("check", str(t)).returncode == 0


def test_host_flag_and_unreadable_files(tmp_path):
    h = tmp_path / "host.yaml"
    h.write_text("gateway: { workers: 0 }\n")
    r = ctl("check", "--host", str(h))
    assert r.returncode == 1 and "gateway.workers: 0 is out of range (1 to 256)" in r.stderr
    r = ctl("check", str(tmp_path / "missing.yaml"))
    assert r.returncode == 1 and "cannot read" in r.stderr
    assert ctl("check").returncode == 2
    assert ctl("nonsense").returncode == 2


def test_reference_in_docs_matches_the_schema():
    doc = (REPO / "docs/config-reference.md").read_text()
    schema = ctl("schema").stdout
    assert schema and schema in doc, "docs/config-reference.md is stale: regenerate it with fiefctl schema"


def test_every_command_has_help():
    for cmd in ("check", "list", "status", "stop", "start", "reload", "enter", "schema", "new", "logs"):
        r = ctl(cmd, "--help")
        assert r.returncode == 0 and "usage: fiefctl" in r.stdout, cmd


def test_new_writes_a_tenant_that_boots(host, tmp_path):
    key = tmp_path / "k.pub"
    key.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDploGI5KtlqhiQFP3Lqq5Xr4PtwMJHZXduHdGaZGhDs me@laptop\n")
    r = host.ctl("new", "zed", "--key", str(key), "--uid", "20077", "--distro", "mini",
                 "--shell", "/bin/sh", "--memory", "96M")
    path = host.tenants / "zed.yaml"
    assert r.stdout.strip() == str(path)
    assert ctl("-c", str(host.host_file), "check", str(path)).returncode == 0
    s = host.wait_state("zed", "running")
    assert s["memory_limit"] == 96 << 20 and s["uid"] == 20077
    assert "me@laptop" in path.read_text()
    # an existing file is kept; a bad option writes nothing
    assert host.ctl("new", "zed", "--key", str(key), check=False).returncode == 1
    r = host.ctl("new", "yan", "--key", str(key), "--cpu", "lots", check=False)
    assert r.returncode == 1 and "limits.cpu" in r.stderr
    assert not (host.tenants / "yan.yaml").exists()


def test_logs_prints_and_follows(host):
    d = host.logs / "alice"
    d.mkdir(parents=True)
    (d / "web.log").write_text("".join(f"line {i}\n" for i in range(50)))
    (d / "cron.log").write_text("job ran\n")
    r = host.ctl("logs", "alice", "web", "-n", "3")
    assert r.stdout == "line 47\nline 48\nline 49\n"
    r = host.ctl("logs", "alice")
    assert "==> cron <==" in r.stdout and "job ran" in r.stdout and "line 49" in r.stdout
    p = subprocess.Popen([binary("fiefctl"), "-c", str(host.host_file), "logs", "alice", "web", "-n", "0", "-f"],
                         stdout=subprocess.PIPE, text=True)
    try:
        import time
        time.sleep(0.5)
        with open(d / "web.log", "a") as f:
            f.write("fresh\n")
        (d / "web.log").rename(d / "web.log.1")          # rotation
        (d / "web.log").write_text("after rotation\n")
        assert p.stdout.readline() == "fresh\n"
        assert p.stdout.readline() == "after rotation\n"
    finally:
        p.kill()
        p.wait()
    assert host.ctl("logs", "alice", "nope", check=False).returncode == 1
