"""fiefctl: check and schema (the operator's view of the config model),
and every command against a live launcher, in text and with --json."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

from conftest import REPO, Host, binary, tenant_yaml, wait_for
from test_router import http_get_size, start_tenants
from test_router import net, rhost, upstream  # noqa: F401 (fixtures)


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


def test_daemons_check_the_host_file_before_anything_else(tmp_path):
    """Each daemon's -t checks the host file and exits: 0 and silent when
    it is valid; 78 (EX_CONFIG) with file:line:col when it is not, and a
    real start refuses the same file the same way, before it binds,
    creates or changes anything."""
    bad = tmp_path / "fief.yaml"
    bad.write_text("gateway:\n  workers: lots\n")
    said = f"{bad}:2:12: gateway.workers: 'lots' is not an integer or auto"
    for daemon in ("fief-gateway", "fief-launcher", "fief-router"):
        r = subprocess.run([binary(daemon), "-t", "-c", str(REPO / "conf/fief.yaml")],
                           capture_output=True, text=True, timeout=30)
        assert (r.returncode, r.stdout, r.stderr) == (0, "", ""), (daemon, r)
        for args in (["-t", "-c", str(bad)], ["-c", str(bad)]):
            r = subprocess.run([binary(daemon), *args], capture_output=True, text=True, timeout=30)
            assert r.returncode == 78 and said in r.stderr, (daemon, args, r)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fief.yaml"]


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
    for cmd in ("check", "list", "status", "stop", "start", "reload", "enter", "schema", "new", "logs", "stats"):
        r = ctl(cmd, "--help")
        assert r.returncode == 0 and "usage: fiefctl" in r.stdout, cmd
    r = ctl("--help")
    assert r.returncode == 0 and "exit status" in r.stdout


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


# ------------------------------------------------------------------ --json

def jctl(*args, host=None, where="after", **kw):
    """fiefctl with --json before or after the command: (exit code, parsed stdout)."""
    pre = ["-c", str(host.host_file)] if host else []
    argv = pre + (["--json", *args] if where == "before" else [*args, "--json"])
    r = subprocess.run([binary("fiefctl"), *argv], capture_output=True, text=True, timeout=30, **kw)
    lines = r.stdout.splitlines()
    doc = json.loads(r.stdout) if len(lines) == 1 else [json.loads(l) for l in lines]
    return r.returncode, doc, r


def assert_error(code, doc, want):
    assert code == want and doc["ok"] is False and doc["code"] == want and doc["error"], doc


def test_check_json(tmp_path):
    files = [str(REPO / "conf/fief.yaml")] + sorted(str(p) for p in (REPO / "conf/tenants.d").glob("*.yaml"))
    for where in ("before", "after"):
        code, doc, _ = jctl("check", *files, where=where)
        assert code == 0 and doc["ok"] is True and doc["errors"] == []
        assert [f["file"] for f in doc["files"]] == files
        assert doc["files"][0]["kind"] == "host" and all(f["kind"] == "tenant" for f in doc["files"][1:])
        assert {f["tenant"] for f in doc["files"][1:]} == {os.path.basename(f)[:-5] for f in files[1:]}
    bad = tmp_path / "carol.yaml"
    bad.write_text("uid: 20003\nlimits:\n  memory: 12Q\n  cpu: x\n")
    code, doc, r = jctl("check", str(REPO / "conf/fief.yaml"), str(bad), str(tmp_path / "gone.yaml"))
    assert code == 1 and doc["ok"] is False
    assert doc["files"][1] == {"file": str(bad), "ok": False, "kind": "tenant", "tenant": "carol"}
    assert doc["files"][2]["ok"] is False
    errs = {(e["file"], e["line"], e["col"]): e["message"] for e in doc["errors"]}
    assert errs[(str(bad), 3, 11)].startswith("limits.memory: '12Q' is not a size")
    assert errs[(str(bad), 4, 8)].startswith("limits.cpu:")
    assert errs[(str(tmp_path / "gone.yaml"), None, None)].startswith("cannot read")
    assert "carol.yaml:3:11" in r.stderr           # humans still get the messages
    code, doc, r = jctl("check")                  # usage, as an error object
    assert_error(code, doc, 2)
    assert "usage: fiefctl" in r.stderr


def test_schema_json_matches_the_markdown():
    code, doc, _ = jctl("schema")
    assert code == 0
    md = ctl("schema").stdout
    host_md, tenant_md = md.split("### Tenant file")
    for part, rows in (("host", host_md), ("tenant", tenant_md)):
        keys = [l.split("`")[1] for l in rows.splitlines() if l.startswith("| `")]
        assert [k["key"] for k in doc[part]] == keys and keys
    uid = next(k for k in doc["tenant"] if k["key"] == "uid")
    assert uid["required"] is True and uid["default"] is None
    listen = next(k for k in doc["host"] if k["key"] == "gateway.listen")
    assert listen["default"] == "0.0.0.0:22" and listen["type"] == "list of address:port"


def test_usage_and_enter_json_errors():
    # after "--", words are the command's: --json goes before it
    assert_error(*jctl("enter", "alice", "--", "true", where="before")[:2], 2)
    r = subprocess.run([binary("fiefctl"), "enter", "alice", "--json", "--", "true"], capture_output=True, text=True)
    assert r.returncode == 2 and "interactive" in json.loads(r.stdout)["error"]
    assert_error(*jctl("nonsense")[:2], 2)
    assert_error(*jctl("status")[:2], 2)
    assert_error(*jctl("stats", "NOT_A_NAME")[:2], 2)
    r = subprocess.run([binary("fiefctl"), "--json"], capture_output=True, text=True)
    assert r.returncode == 2 and json.loads(r.stdout)["code"] == 2


def test_launcher_commands_json(host):
    host.write_tenant("alice", tenant_yaml(20001))
    host.write_tenant("bob", tenant_yaml(20002))
    host.wait_state("alice", "running")
    host.wait_state("bob", "running")
    for where in ("before", "after"):
        code, doc, _ = jctl("list", host=host, where=where)
        assert code == 0 and [t["name"] for t in doc] == ["alice", "bob"]
        assert all(t["state"] == "running" and t["pid"] > 1 and t["memory_limit"] == 128 << 20 for t in doc)
        code, doc, _ = jctl("status", "alice", host=host, where=where)
        assert code == 0 and doc["name"] == "alice" and doc["uid"] == 20001 and doc["pids_limit"] == 64
    # the table for humans has the same tenants
    table = host.ctl("list").stdout.splitlines()
    assert table[0].split()[:2] == ["NAME", "STATE"] and [l.split()[0] for l in table[1:]] == ["alice", "bob"]

    code, doc, _ = jctl("stop", "bob", host=host)
    assert code == 0 and doc["ok"] is True and doc["action"] == "stop" and doc["name"] == "bob"
    assert doc["tenant"]["name"] == "bob" and doc["tenant"]["held"] == 1
    host.wait_state("bob", "stopped")
    code, doc, _ = jctl("start", "bob", host=host, where="before")
    assert code == 0 and doc["action"] == "start" and doc["tenant"]["held"] == 0
    s = host.wait_state("bob", "running")
    old = s["pid"]
    host.write_tenant("bob", tenant_yaml(20002, pids=80))
    code, doc, _ = jctl("reload", "bob", host=host)
    assert code == 0 and doc["action"] == "reload" and doc["name"] == "bob"
    wait_for(lambda: (host.status("bob") or {}).get("pids_limit") == 80 and host.status("bob")["state"] == "running",
             15, what="bob reloaded")
    assert old

    # a tenant the launcher does not know: exit 1 and an error object
    for verb in ("status", "stop", "start", "reload"):
        code, doc, r = jctl(verb, "nobody", host=host)
        assert_error(code, doc, 1)
        assert "no tenant named 'nobody'" in doc["error"] and "no tenant named" in r.stderr


def test_new_json(host, tmp_path):
    key = tmp_path / "k.pub"
    key.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDploGI5KtlqhiQFP3Lqq5Xr4PtwMJHZXduHdGaZGhDs me@laptop\n")
    code, doc, _ = jctl("new", "yves", "--key", str(key), "--uid", "20078", "--distro", "mini",
                        "--memory", "96M", "--cpu", "0.5", "--shell", "/bin/sh", host=host)
    path = host.tenants / "yves.yaml"
    assert code == 0 and doc["ok"] is True and doc["written"] is True and doc["replaced"] is False
    assert doc["path"] == str(path) and doc["tenant"] == "yves" and doc["uid"] == 20078
    assert doc["memory"] == 96 << 20 and doc["cpu"] == 0.5 and doc["distro"] == "mini" and doc["keys"] == 1
    assert doc["text"] == path.read_text() and doc["address"] is None
    assert host.wait_state("yves", "running")["uid"] == 20078
    # --stdout writes nothing; an existing file is an error object
    code, doc, _ = jctl("new", "xena", "--key", str(key), "--stdout", host=host, where="before")
    assert code == 0 and doc["written"] is False and doc["uid"] == "auto" and "me@laptop" in doc["text"]
    assert not (host.tenants / "xena.yaml").exists()
    assert_error(*jctl("new", "yves", "--key", str(key), host=host)[:2], 1)
    code, doc, _ = jctl("new", "wim", "--key", str(key), "--memory", "lots", host=host)
    assert_error(code, doc, 1)
    assert "limits.memory" in doc["error"] and not (host.tenants / "wim.yaml").exists()
    (tmp_path / "bad.pub").write_text("notakey\n")
    code, doc, _ = jctl("new", "wim", "--key", str(tmp_path / "bad.pub"), host=host)
    assert_error(code, doc, 1)
    assert doc["error"] == f"not written: {tmp_path}/bad.pub: not an OpenSSH public key line"


def test_logs_json(host):
    d = host.logs / "alice"
    d.mkdir(parents=True)
    (d / "web.log").write_text("".join(f"line {i}\n" for i in range(30)) + 'quote " and \\ and \xe9t\xe9\n')
    (d / "cron.log").write_bytes(b"[fief 2026-01-02 03:04:05 +0100] job started\nbad \xff byte\nno newline")
    code, lines, r = jctl("logs", "alice", "web", "-n", "2", host=host)
    assert code == 0 and [l["text"] for l in lines] == ["line 29", 'quote " and \\ and \xe9t\xe9']
    assert all(l["tenant"] == "alice" and l["log"] == "web" and l["time"] is None for l in lines)
    r = host.ctl("--json", "logs", "alice", "cron")
    lines = [json.loads(l) for l in r.stdout.splitlines()]
    assert lines[0] == {"time": "2026-01-02T03:04:05+0100", "tenant": "alice", "log": "cron",
                        "text": "[fief 2026-01-02 03:04:05 +0100] job started"}
    assert lines[1]["text"] == "bad \ufffd byte" and lines[2]["text"] == "no newline"
    r = host.ctl("logs", "alice", "--json")             # every log: no "==>" headers in JSON
    assert {json.loads(l)["log"] for l in r.stdout.splitlines()} == {"web", "cron"}
    # -f: one object per line, whole lines only, through a rotation
    p = subprocess.Popen([binary("fiefctl"), "-c", str(host.host_file), "logs", "alice", "web", "-n", "0", "-f", "--json"],
                         stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        with open(d / "web.log", "a") as f:
            f.write("fresh ")
            f.flush()
            time.sleep(0.6)                          # a half line waits for its end
            f.write("and whole\n")
        (d / "web.log").rename(d / "web.log.1")
        (d / "web.log").write_text("after rotation\n")
        assert json.loads(p.stdout.readline())["text"] == "fresh and whole"
        assert json.loads(p.stdout.readline())["text"] == "after rotation"
    finally:
        p.kill()
        p.wait()
    code, doc, _ = jctl("logs", "alice", "nope", host=host)
    assert_error(code, doc, 1)


def fake_router(path, records):
    """A stand-in for fief-router's control socket: one reply per connection."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(4)
    got = []

    def serve():
        for _ in range(4):
            try:
                c, _ = srv.accept()
            except OSError:
                return
            got.append(c.recv(256).decode())
            c.sendall("".join(r + "\n" for r in records).encode())
            c.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv, got


def test_stats_json(host):
    # no router: exit 3, in both modes
    code, doc, r = jctl("stats", host=host)
    assert_error(code, doc, 3)
    assert "fief-router is not running" in doc["error"]
    assert subprocess.run([binary("fiefctl"), "-c", str(host.host_file), "stats"],
                          capture_output=True).returncode == 3
    srv, got = fake_router(host.state / "router-control.sock", [
        "ok=1",
        "kind=router name=fief0 out_bytes=10 in_bytes=20",
        "kind=tenant name=alice address=10.200.0.2 out_bytes=1234 out_packets=5 in_bytes=99 "
        "in_packets=2 drops=1 drop_spoof=1 last_error=a%20b",
    ])
    try:
        code, doc, _ = jctl("stats", host=host)
        assert code == 0 and got[-1] == "stats\n"
        assert doc["router"] == {"name": "fief0", "out_bytes": 10, "in_bytes": 20}
        assert doc["tenants"] == [{"name": "alice", "address": "10.200.0.2", "out_bytes": 1234, "out_packets": 5,
                                   "in_bytes": 99, "in_packets": 2, "drops": 1, "drop_spoof": 1,
                                   "last_error": "a b"}]
        code, doc, _ = jctl("stats", "alice", host=host, where="before")
        assert code == 0 and got[-1] == "stats alice\n" and doc["tenants"][0]["name"] == "alice"
    finally:
        srv.close()
        os.unlink(host.state / "router-control.sock")


def test_daemon_not_running_json(testroot):
    h = Host(tempfile.mkdtemp(prefix="fief-nl-"), testroot)      # no launcher started
    try:
        for args in (("list",), ("status", "alice"), ("stop", "alice"), ("start", "alice"), ("reload", "alice")):
            code, doc, r = jctl(*args, host=h)
            assert_error(code, doc, 3)
            assert "the launcher is not running" in doc["error"] and "not running" in r.stderr
            r = h.ctl(*args, check=False)
            assert r.returncode == 3 and r.stdout == "" and "the launcher is not running" in r.stderr
    finally:
        shutil.rmtree(h.base, ignore_errors=True)


def test_bash_completion(host):
    host.write_tenant("alice", tenant_yaml(20001))

    def complete(*words):
        script = (f"source {REPO}/conf/bash-completion/fiefctl\n"
                  f"COMP_WORDS=(fiefctl -c {host.host_file} {' '.join(repr(w) for w in words)})\n"
                  "COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _fiefctl; printf '%s\\n' \"${COMPREPLY[@]}\"")
        return subprocess.run(["bash", "-c", script], capture_output=True, text=True).stdout.split()

    assert "stats" in complete("") and "logs" in complete("")
    for cmd in ("check", "list", "status", "stats", "logs", "reload", "stop", "start", "new", "schema"):
        assert "--json" in complete(cmd, "--"), cmd
        assert "--help" in complete(cmd, "--"), cmd
    assert "--json" not in complete("enter", "--")
    assert complete("status", "al") == ["alice"]
    assert {"-n", "-f"} <= set(complete("logs", "-"))


def test_stats_json_against_the_router(rhost):
    start_tenants(rhost, ("alice", 20001, "10.200.0.2"))
    assert http_get_size(rhost, "alice", 100000)[0] == 100000     # traffic through the router
    want = rhost.stats()
    code, doc, _ = jctl("stats", host=rhost)
    assert code == 0 and "kind" not in doc["router"] and doc["router"]
    assert [t["name"] for t in doc["tenants"]] == sorted(want["tenants"])
    alice = doc["tenants"][0]
    assert alice["address"] == "10.200.0.2" and alice["out_packets"] >= want["tenants"]["alice"]["out_packets"] >= 1
    assert alice["in_bytes"] >= want["tenants"]["alice"]["in_bytes"] >= 100000
    code, doc, _ = jctl("stats", "alice", host=rhost, where="before")
    assert code == 0 and [t["name"] for t in doc["tenants"]] == ["alice"]
    r = rhost.ctl("stats")
    assert r.stdout.split("\n")[0].split()[:2] == ["NAME", "ADDRESS"] and "alice" in r.stdout
    assert_error(*jctl("stats", "nobody", host=rhost)[:2], 1)
