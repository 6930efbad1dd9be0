"""fief-launcher: lifecycle, isolation and limits, with a real launcher."""
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import deploy_many, hung_zygote, launcher_children, tenant_yaml, wait_for, zygotes


def alive(pid):
    """A process that exists and is not a zombie waiting for its reaper."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def running_pid(host, name):
    s = host.wait_state(name, "running")
    assert s["pid"] > 0
    return s["pid"]


def two_tenants(host):
    host.write_tenant("alice", tenant_yaml(20001))
    host.write_tenant("bob", tenant_yaml(20002))
    return running_pid(host, "alice"), running_pid(host, "bob")


# ---------------------------------------------------------------- lifecycle

def test_deploy_runs_init_as_pid1_in_new_namespaces(host):
    host.write_tenant("alice", tenant_yaml(20001))
    pid = running_pid(host, "alice")
    for ns in ("mnt", "pid", "ipc", "uts", "net"):
        assert os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}"), ns
    probe = host.probe("alice")
    assert probe["hostname"] == "alice"
    assert probe["uid"] == 20001 and probe["gid"] == 20001 and probe["euid"] == 20001
    assert probe["groups"] == [] or probe["groups"] == [20001]
    assert probe["no_new_privs"] == 1
    assert int(probe["cap_eff"], 16) == 0 and int(probe["cap_prm"], 16) == 0
    assert int(probe["cap_bnd"], 16) == 0 and int(probe["cap_amb"], 16) == 0
    assert probe["cwd"] == "/home/alice"
    env = dict(e.split("=", 1) for e in probe["env"])
    assert env["HOME"] == "/home/alice" and env["USER"] == "alice"


def test_every_mount_is_nosuid_and_root_is_readonly(host):
    host.write_tenant("alice", tenant_yaml(20001))
    running_pid(host, "alice")
    probe = host.probe("alice")
    for m in probe["mounts"]:
        assert "nosuid" in m["options"], m
    root = [m for m in probe["mounts"] if m["target"] == "/"]
    assert root and "ro" in root[0]["options"].split(",")
    w = host.probe("alice", "try", "write", "/etc/owned")
    assert (w["ok"], w["error"]) == (False, "EROFS")
    w = host.probe("alice", "try", "write", "/home/alice/mine")
    assert w["ok"] is True
    assert (host.homes / "alice" / "mine").exists()
    assert os.stat(host.homes / "alice" / "mine").st_uid == 20001


def test_edit_restarts_only_that_tenant(host):
    a, b = two_tenants(host)
    host.write_tenant("alice", tenant_yaml(20001, extra="hostname: alice2\n"))
    wait_for(lambda: (s := host.status("alice")) and s["state"] == "running" and s["pid"] != a,
             what="alice restarted")
    assert host.status("bob")["pid"] == b
    assert host.probe("alice")["hostname"] == "alice2"


def test_touch_or_rewrite_with_same_bytes_does_nothing(host):
    host.write_tenant("alice", tenant_yaml(20001))
    a = running_pid(host, "alice")
    path = host.tenants / "alice.yaml"
    os.utime(path)
    path.write_text(path.read_text())          # write in place, same bytes
    host.write_tenant("alice", path.read_text())  # write-then-rename, same bytes
    time.sleep(0.6)
    assert host.status("alice")["pid"] == a
    assert host.status("alice")["restarts"] == 0


def test_burst_of_partial_writes_gives_one_reload(host):
    host.write_tenant("alice", tenant_yaml(20001))
    a = running_pid(host, "alice")
    text = tenant_yaml(20001, extra="hostname: burst\n")
    with open(host.tenants / "alice.yaml", "w") as f:
        for i in range(0, len(text), 7):        # an editor writing in small pieces
            f.write(text[i:i + 7])
            f.flush()
    wait_for(lambda: (s := host.status("alice")) and s["pid"] != a and s["state"] == "running",
             what="reload")
    time.sleep(0.6)
    assert host.status("alice")["restarts"] == 1


def test_invalid_edit_keeps_tenant_running_and_logs_position(host):
    host.write_tenant("alice", tenant_yaml(20001))
    a = running_pid(host, "alice")
    host.write_tenant("alice", "uid: 20001\ndistro: mini\nlimits: { memory: lots }\n")
    wait_for(lambda: "alice.yaml:3:19: limits.memory: 'lots' is not a size" in host.log_text(),
             what="error in the log")
    time.sleep(0.3)
    s = host.status("alice")
    assert s["pid"] == a and s["state"] == "running"


def test_non_yaml_and_hidden_files_are_ignored(host):
    (host.tenants / "notes.txt").write_text("uid: 20009\n")
    (host.tenants / ".carol.yaml.swp").write_text("junk")
    (host.tenants / "carol.yaml~").write_text("uid: 20009\n")
    host.write_tenant("alice", tenant_yaml(20001))
    running_pid(host, "alice")
    assert [t["name"] for t in host.tenants_json()] == ["alice"]


def test_remove_leaves_nothing_behind(host):
    host.write_tenant("alice", tenant_yaml(20001))
    pid = running_pid(host, "alice")
    r = host.enter("alice", "/bin/sh", "-c", "sleep 100 >/dev/null 2>&1 & sleep 100 >/dev/null 2>&1 & echo started")
    assert r.stdout == "started\n"
    assert host.status("alice")["pids"] >= 3
    cg = host.cgroup_dirs("alice")
    assert cg, "tenant cgroup exists while running"
    host.remove_tenant("alice")
    host.wait_gone("alice")
    assert not Path(f"/proc/{pid}").exists()
    assert not any(p.exists() for p in cg)
    assert not (host.state / "tenants" / "alice").exists()
    assert not (host.state / "agents" / "alice.sock").exists()
    with open("/proc/self/mountinfo") as f:
        assert str(host.base) not in f.read()
    # the customer's data stays
    assert (host.homes / "alice").is_dir()


def test_stop_and_start_through_fiefctl(host):
    host.write_tenant("alice", tenant_yaml(20001))
    a = running_pid(host, "alice")
    host.ctl("stop", "alice")
    host.wait_state("alice", "stopped")
    assert not Path(f"/proc/{a}").exists()
    host.ctl("start", "alice")
    assert running_pid(host, "alice") != a
    r = host.ctl("status", "nobody", check=False)
    assert r.returncode == 1 and "no tenant named 'nobody'" in r.stderr


def test_crash_loop_backs_off_then_recovers(host):
    host.write_tenant("alice", tenant_yaml(20001, distro="missing"))
    wait_for(lambda: host.log_text().count("alice: restarting in") >= 3, timeout=10,
             what="three restarts")
    delays = [float(d) for d in re.findall(r"alice: restarting in ([0-9.]+) s", host.log_text())]
    assert delays[:3] == sorted(delays[:3]) and delays[1] == 2 * delays[0] and delays[2] == 2 * delays[1]
    s = host.status("alice")
    assert s["state"] in ("backoff", "starting") and "distro 'missing' not found" in s["last_error"]
    host.write_tenant("alice", tenant_yaml(20001))
    running_pid(host, "alice")


def test_killed_init_is_restarted(host):
    host.write_tenant("alice", tenant_yaml(20001))
    a = running_pid(host, "alice")
    os.kill(a, signal.SIGKILL)
    wait_for(lambda: (s := host.status("alice")) and s["state"] == "running" and s["pid"] != a,
             what="restart after kill -9")
    assert host.status("alice")["restarts"] == 1


def parent_of(pid):
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_inits_come_from_the_zygote_as_children_of_the_launcher(host):
    z = zygotes(host)
    assert len(z) == 1, launcher_children(host)
    host.write_tenant("alice", tenant_yaml(20001))
    a = running_pid(host, "alice")
    # CLONE_PARENT: the zygote forks it, the launcher supervises it
    assert parent_of(a) == host.launcher.pid
    assert f"alice: init (pid {a}) forked by the zygote" in host.log_text()
    assert zygotes(host) == z
    assert "forks this init itself" not in host.log_text()
    # the zygote holds nothing of the tenant's: only its socket and the log
    fds = os.listdir(f"/proc/{z[0]}/fd")
    assert len(fds) <= 4, [os.readlink(f"/proc/{z[0]}/fd/{f}") for f in fds]


def test_a_killed_zygote_is_replaced(host):
    host.write_tenant("alice", tenant_yaml(20001))
    a = running_pid(host, "alice")
    (z,) = zygotes(host)
    os.kill(z, signal.SIGKILL)
    wait_for(lambda: f"the zygote (pid {z}) ended" in host.log_text(), what="zygote death noticed")
    host.write_tenant("bob", tenant_yaml(20002))
    b = running_pid(host, "bob")
    assert parent_of(b) == host.launcher.pid
    assert f"bob: init (pid {b}) forked by the zygote" in host.log_text()
    z2 = zygotes(host)
    assert len(z2) == 1 and z2 != [z]
    assert host.status("alice")["pid"] == a and host.status("alice")["state"] == "running"


def zombie_or_gone(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_hung_zygote_is_replaced_by_the_launcher_forking(host):
    with hung_zygote(host) as z:
        host.write_tenant("alice", tenant_yaml(20001))
        a = running_pid(host, "alice")
        assert parent_of(a) == host.launcher.pid
        assert "zygote: no answer; the launcher forks this init itself" in host.log_text()
        assert f"alice: init (pid {a}) forked by the zygote" not in host.log_text()
        wait_for(lambda: zombie_or_gone(z), what="the hung zygote killed")
    host.write_tenant("bob", tenant_yaml(20002))
    running_pid(host, "bob")
    assert len(zygotes(host)) == 1


def test_starts_right_behind_a_hung_zygote(host):
    """The start after the one that gave up on a hung zygote forks a new
    zygote before the loop has reaped the old one. Both start, and the
    new zygote is watched like the first: its death is noticed."""
    with hung_zygote(host) as z:
        for i, name in enumerate(("alice", "bob", "carol")):
            host.write_tenant(name, tenant_yaml(20001 + i))
        pids = [running_pid(host, name) for name in ("alice", "bob", "carol")]
    assert all(parent_of(p) == host.launcher.pid for p in pids)
    wait_for(lambda: zombie_or_gone(z), what="the hung zygote killed")
    (z2,) = zygotes(host)
    assert z2 != z
    os.kill(z2, signal.SIGKILL)
    wait_for(lambda: f"the zygote (pid {z2}) ended" in host.log_text(), what="the new zygote's death noticed")
    host.write_tenant("dave", tenant_yaml(20004))
    d = running_pid(host, "dave")
    assert f"dave: init (pid {d}) forked by the zygote" in host.log_text()


def test_uid_clash_is_refused(host):
    host.write_tenant("alice", tenant_yaml(20001))
    running_pid(host, "alice")
    host.write_tenant("mallory", tenant_yaml(20001))
    wait_for(lambda: "uid 20001 is already used by tenant alice" in host.log_text(), what="refusal")
    assert host.status("mallory") is None


def test_auto_uid_is_stable_across_restarts(host):
    host.write_tenant("carol", tenant_yaml("auto"))
    s = host.wait_state("carol", "running")
    assert 200000 <= s["uid"] <= 299999
    host.write_tenant("carol", tenant_yaml("auto", extra="hostname: c2\n"))
    wait_for(lambda: (t := host.status("carol")) and t["pid"] != s["pid"] and t["state"] == "running")
    assert host.status("carol")["uid"] == s["uid"]


def test_many_tenants_at_once(host):
    n = 200
    deploy_many(host, [f"t{i:03d}" for i in range(n)], 30000, 120)
    for i in range(n):
        host.remove_tenant(f"t{i:03d}")
    wait_for(lambda: not host.tenants_json(), timeout=120, interval=0.5, what="all gone")
    assert not any(p.exists() for p in host.cgroup_dirs("t000"))


# ---------------------------------------------------------------- isolation

def test_processes_of_others_are_invisible(host):
    two_tenants(host)
    host.enter("bob", "/bin/sh", "-c", "sleep 30 >/dev/null 2>&1 & echo ok")
    pa = host.probe("alice")
    assert pa["pids"] == sorted(pa["pids"]) and 1 in pa["pids"]
    # only the init, the probe and its parent shell may exist
    assert len(pa["pids"]) <= 3, pa["pids"]
    r = host.enter("alice", "/bin/sh", "-c", "cat /proc/*/cmdline | tr '\\0' ' '")
    assert "sleep 30" not in r.stdout


def test_files_of_others_are_invisible(host):
    two_tenants(host)
    (host.homes / "bob" / "secret").write_text("bob's")
    r = host.enter("alice", "/bin/sh", "-c", "ls -a /home; ls /home/bob; cat " + str(host.homes / "bob" / "secret"))
    assert "bob" not in r.stdout.split()
    assert "bob's" not in r.stdout
    r = host.enter("alice", "/bin/ls", "/run")
    assert r.returncode == 0
    probe = host.probe("alice", "try", "read", str(host.host_file))
    assert probe["ok"] is False and probe["error"] == "ENOENT"


def test_sysv_ipc_is_private(host):
    two_tenants(host)
    made = json.loads(host.enter("alice", "/usr/bin/fief-probe", "ipc", "make").stdout)
    assert min(made.values()) >= 0
    assert host.probe("alice", "ipc", "count") == {"msg": 1, "sem": 1, "shm": 1}
    assert host.probe("bob", "ipc", "count") == {"msg": 0, "sem": 0, "shm": 0}


@pytest.mark.parametrize("kind,addr", [("tcp", "7171"), ("abstract", "fief-test-sock")])
def test_sockets_of_others_are_unreachable(host, kind, addr):
    two_tenants(host)
    srv = subprocess.Popen([str(Path(os.environ.get("FIEF_BUILD", "build")) / "fiefctl"), "-c",
                            str(host.host_file), "enter", "alice", "--", "/usr/bin/fief-probe",
                            "listen", kind, addr, "10"], stdout=subprocess.PIPE, text=True)
    try:
        assert srv.stdout.readline().strip() == "listening"
        assert host.probe("alice", "connect", kind, addr)["ok"] is True
        other = host.probe("bob", "connect", kind, addr)
        assert other["ok"] is False and other["error"] == "ECONNREFUSED"
    finally:
        srv.kill()
        srv.wait()


@pytest.mark.parametrize("action,arg,errors", [
    ("mount", None, ("EPERM",)),
    ("bind", "/", ("EPERM",)),
    ("umount", "/proc", ("EPERM",)),
    ("pivot_root", None, ("EPERM",)),
    ("chroot", "/tmp", ("EPERM",)),
    ("unshare-mnt", None, ("EPERM",)),
    ("unshare-net", None, ("EPERM",)),
    ("unshare-user", None, ("EPERM",)),
    ("setns", "/proc/1/ns/mnt", ("EACCES", "EPERM")),
    ("setuid0", None, ("EPERM",)),
    ("sethostname", None, ("EPERM",)),
    ("mknod", "/tmp/null2", ("EPERM",)),
    ("ptrace", "1", ("EPERM",)),
    ("kill", "1", ("EPERM",)),
    ("raw-socket", None, ("EPERM",)),
    ("packet-socket", None, ("EPERM",)),
    ("add-key", None, ("EPERM",)),
])
def test_privileged_operations_are_refused(host, action, arg, errors):
    host.write_tenant("alice", tenant_yaml(20001))
    running_pid(host, "alice")
    args = ["try", action] + ([arg] if arg else [])
    r = host.probe("alice", *args)
    assert r["ok"] is False and r["error"] in errors, r


def test_setuid_binary_gives_no_privilege(host, testroot):
    host.write_tenant("alice", tenant_yaml(20001))
    running_pid(host, "alice")
    suid = testroot / "mini" / "usr" / "bin" / "fief-probe-suid"
    st = os.stat(suid)
    assert st.st_uid == 0 and st.st_mode & 0o4000
    r = host.enter("alice", "/usr/bin/fief-probe-suid")
    d = json.loads(r.stdout)
    assert d["euid"] == 20001 and d["uid"] == 20001


# ---------------------------------------------------------------- limits

def test_memory_limit_kills_inside_the_tenant_only(host):
    two_tenants(host)
    a = host.status("alice")["pid"]
    r = host.enter("alice", "/usr/bin/fief-probe", "alloc", "400", timeout=60)
    assert r.returncode == 128 + signal.SIGKILL, (r.returncode, r.stderr[-300:])
    s = host.status("alice")
    assert s["pid"] == a and s["state"] == "running"
    assert s["oom_kills"] >= 1
    assert host.status("bob")["oom_kills"] == 0
    assert host.probe("bob", "alloc", "64")["allocated_mb"] == 64


def test_fork_bomb_stops_at_pids_limit(host):
    host.write_tenant("alice", tenant_yaml(20001))
    running_pid(host, "alice")
    d = json.loads(host.enter("alice", "/usr/bin/fief-probe", "forkbomb", "1000").stdout)
    assert d["error"] == "EAGAIN"
    assert 40 <= d["forked"] < 64, d      # pids: 64, less the init, shell and probe
    assert running_pid(host, "alice")


def test_cpu_share_is_enforced(host):
    host.write_tenant("alice", tenant_yaml(20001))   # cpu: 0.5
    running_pid(host, "alice")
    d = json.loads(host.enter("alice", "/usr/bin/fief-probe", "spin", "2").stdout)
    ratio = d["cpu_seconds"] / d["wall_seconds"]
    assert 0.35 <= ratio <= 0.6, d
    assert host.status("alice")["cpu_usec"] >= 0.7e6


# ---------------------------------------------------------------- restarts

@pytest.mark.parametrize("how", [signal.SIGQUIT, signal.SIGKILL])
def test_launcher_restart_adopts_running_tenants(host, how):
    a, b = two_tenants(host)
    host.write_tenant("carol", tenant_yaml(20003))
    running_pid(host, "carol")
    (host.homes / "alice" / "kept").write_text("data")
    old = host.launcher
    old.send_signal(how)
    old.wait(10)
    assert Path(f"/proc/{a}").exists() and Path(f"/proc/{b}").exists()
    # while no launcher runs: bob's file changes, carol's goes away
    host.write_tenant("bob", tenant_yaml(20002, extra="hostname: bob2\n"))
    host.remove_tenant("carol")
    host.start_launcher()
    s = host.wait_state("alice", "running")
    assert s["pid"] == a, "unchanged tenant must be adopted, not restarted"
    wait_for(lambda: (t := host.status("bob")) and t["state"] == "running" and t["pid"] != b,
             what="bob reloaded")
    host.wait_gone("carol")
    assert host.probe("alice")["hostname"] == "alice"
    assert host.probe("bob")["hostname"] == "bob2"
    assert (host.homes / "alice" / "kept").read_text() == "data"
    # the adopted tenant still stops cleanly
    host.remove_tenant("alice")
    host.wait_gone("alice")
    assert not alive(a)
    assert not host.cgroup_dirs("alice")


def test_stale_state_with_a_recycled_pid_is_not_adopted(host):
    host.write_tenant("alice", tenant_yaml(20001))
    a = running_pid(host, "alice")
    host.launcher.send_signal(signal.SIGQUIT)
    host.launcher.wait(10)
    # pretend the init died and its pid went to an unrelated process
    os.kill(a, signal.SIGKILL)
    wait_for(lambda: not alive(a), what="old init gone")
    state = host.state / "tenants" / "alice" / "init.state"
    text = state.read_text()
    state.write_text(re.sub(r"pid=\d+", f"pid={os.getpid()}", text))
    host.start_launcher()
    s = host.wait_state("alice", "running")
    assert s["pid"] not in (a, os.getpid())


def test_tenant_on_real_debian_distro(host, debian):
    host.write_tenant("alice", tenant_yaml(20001, distro="bookworm").replace("/bin/sh", "/bin/bash"))
    running_pid(host, "alice")
    r = host.enter("alice", "python3", "-c", "import os; print(os.getuid(), os.uname().nodename)")
    assert r.returncode == 0 and r.stdout.split() == ["20001", "alice"], r.stderr
    r = host.enter("alice", "cat", "/etc/os-release")
    assert 'VERSION_CODENAME=bookworm' in r.stdout
    # a tenant can switch distro by editing its file
    host.write_tenant("alice", tenant_yaml(20001, distro="mini"))
    wait_for(lambda: host.enter("alice", "cat", "/etc/os-release").returncode != 0, what="switched to mini")


def test_tenant_user_has_a_name_inside(host):
    host.write_tenant("alice", tenant_yaml(20001))
    running_pid(host, "alice")
    r = host.enter("alice", "/bin/sh", "-c", "id -un; id -gn; echo ~alice; grep -c '^alice:' /etc/passwd")
    assert r.stdout.split() == ["alice", "alice", "/home/alice", "1"], r.stdout + r.stderr
    w = host.probe("alice", "try", "write", "/etc/passwd")
    assert w["ok"] is False and w["error"] == "EROFS"
