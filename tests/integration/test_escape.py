"""The escape battery: from inside tenant alice, as alice, with tenant bob
running next to it, every attempt against bob and the host must be refused
in the precise way written here. Each attempt is one test; the tally is
written for scripts/run-check to print at the end of `make check`."""
import json
import os
from pathlib import Path

import pytest

from conftest import BUILD, tenant_yaml, wait_for

TALLY = BUILD / "escape-tally.json"


@pytest.fixture(scope="module")
def pair(testroot, tmp_path_factory):
    import tempfile
    from conftest import Host
    h = Host(tempfile.mkdtemp(prefix="fief-esc-"), testroot)
    h.start_launcher()
    h.write_tenant("alice", tenant_yaml(20001))
    h.write_tenant("bob", tenant_yaml(20002))
    h.wait_state("alice", "running")
    h.wait_state("bob", "running")
    (h.homes / "bob" / "secret").write_text("bob's secret\n")
    os.chown(h.homes / "bob" / "secret", 20002, 20002)
    # something of bob's to look for: a process, a listening socket, IPC
    h.enter("bob", "/bin/sh", "-c", "sleep 600 >/dev/null 2>&1 &")
    h.enter("bob", "/usr/bin/fief-probe", "ipc", "make")
    h.bob_pid = h.status("bob")["pid"]
    yield h
    h.stop_launcher()
    import shutil
    for p in h.cgroup_dirs():
        for d in sorted(p.rglob("*"), reverse=True):
            if d.is_dir():
                d.rmdir()
        p.rmdir()
    shutil.rmtree(h.base, ignore_errors=True)


def tried(pair, action, arg=None):
    args = ["try", action] + ([str(arg)] if arg is not None else [])
    r = pair.enter("alice", "/usr/bin/fief-probe", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def sh(pair, script):
    return pair.enter("alice", "/bin/sh", "-c", script)


# Each row: (id, what it tries, how it is tried, the expected refusal).
# kind "try": probe action, arg, set of acceptable errno names.
# kind "sh": shell script, predicate on (returncode, stdout, stderr).
ATTEMPTS = [
    # other tenants: processes, files, sockets, IPC, network, agents
    ("ps-other", "see bob's processes", "sh", "cat /proc/*/cmdline 2>/dev/null | tr '\\0' ' '",
     lambda rc, out, err: "sleep 600" not in out),
    ("pid-count", "see any pid but its own", "sh", "ls /proc | grep -c '^[0-9]'",
     lambda rc, out, err: int(out) <= 4),
    ("kill-bob-init", "signal bob's init by its host pid", "try", "kill", "BOBPID", {"ESRCH"}),
    ("home-other", "list /home for other homes", "sh", "ls -A /home",
     lambda rc, out, err: out.split() == ["alice"]),
    ("home-path", "read bob's file by host path", "try", "read", "HOMES/bob/secret", {"ENOENT"}),
    ("run-other", "reach bob's run dir", "try", "read", "STATE/tenants/bob/run", {"ENOENT"}),
    ("ipc-other", "see bob's SysV IPC", "sh", "cat /proc/sysvipc/msg /proc/sysvipc/shm | grep -vc key",
     lambda rc, out, err: out.strip() == "0"),
    ("net-loopback", "connect to a port of the host loopback", "sh",
     "/usr/bin/fief-probe connect tcp 22", lambda rc, out, err: '"ECONNREFUSED"' in out),
    ("net-abstract", "connect to a host abstract socket", "sh",
     "/usr/bin/fief-probe connect abstract /org/freedesktop/systemd1/notify",
     lambda rc, out, err: '"ECONNREFUSED"' in out),
    ("agent-own", "reach its own agent socket", "try", "read", "STATE/agents/alice.sock", {"ENOENT"}),
    ("agent-other", "reach bob's agent socket", "try", "read", "STATE/agents/bob.sock", {"ENOENT"}),
    ("launcher-sock", "reach the launcher's control socket", "try", "read", "STATE/launcher.sock", {"ENOENT"}),
    # the host's config, keys and homes
    ("host-config", "read the host file", "try", "read", "HOSTFILE", {"ENOENT"}),
    ("host-tenants", "read the tenant files", "try", "read", "TENANTS/bob.yaml", {"ENOENT"}),
    ("host-keys", "read the gateway's host keys", "try", "read", "/etc/fief/hostkeys/ssh_host_ed25519_key",
     {"ENOENT"}),
    ("shadow", "read the distro's /etc/shadow", "try", "read", "/etc/shadow", {"EACCES", "ENOENT"}),
    ("passwd-write", "rewrite /etc/passwd", "try", "write", "/etc/passwd", {"EROFS"}),
    ("distro-write", "write into the distro", "try", "write", "/usr/bin/evil", {"EROFS"}),
    # /proc and /sys
    ("kallsyms", "read kernel addresses", "sh", "head -3 /proc/kallsyms | cut -d' ' -f1 | sort -u",
     lambda rc, out, err: out.strip() in ("0000000000000000", "")),
    ("init-environ", "read the init's environment", "try", "read", "/proc/1/environ", {"EACCES"}),
    ("init-root", "walk into the init's root link", "try", "read", "/proc/1/root/etc/hostname", {"EACCES"}),
    ("sysrq", "write /proc/sysrq-trigger", "try", "write", "/proc/sysrq-trigger", {"EACCES", "EROFS", "ENOENT"}),
    ("proc-sys", "change a kernel setting", "try", "write", "/proc/sys/kernel/hostname", {"EACCES", "EROFS"}),
    ("sys", "read /sys", "try", "read", "/sys/kernel/notes", {"ENOENT"}),
    ("cgroup-fs", "read the cgroup files of others", "try", "read", "/sys/fs/cgroup/memory/memory.stat", {"ENOENT"}),
    # devices
    ("mknod", "make a device node", "try", "mknod", "/tmp/mem", {"EPERM"}),
    ("dev-disk", "open a disk", "try", "read", "/dev/sda", {"ENOENT"}),
    ("dev-mem", "open /dev/mem", "try", "read", "/dev/mem", {"ENOENT"}),
    # the init and the kernel's walls
    ("ptrace-init", "ptrace pid 1", "try", "ptrace", "1", {"EPERM"}),
    ("kill-init", "kill pid 1", "try", "kill", "1", {"EPERM"}),
    ("mount", "mount a tmpfs", "try", "mount", None, {"EPERM"}),
    ("bind", "bind-mount /", "try", "bind", "/", {"EPERM"}),
    ("umount", "unmount /proc", "try", "umount", "/proc", {"EPERM"}),
    ("pivot", "pivot_root", "try", "pivot_root", None, {"EPERM"}),
    ("chroot", "chroot", "try", "chroot", "/tmp", {"EPERM"}),
    ("unshare-user", "make a user namespace", "try", "unshare-user", None, {"EPERM"}),
    ("unshare-mnt", "make a mount namespace", "try", "unshare-mnt", None, {"EPERM"}),
    ("setns", "join the init's mount namespace", "try", "setns", "/proc/1/ns/mnt", {"EACCES", "EPERM"}),
    ("keyring", "use the kernel keyring", "try", "add-key", None, {"EPERM"}),
    ("raw-socket", "open a raw socket", "try", "raw-socket", None, {"EPERM"}),
    ("packet-socket", "open a packet socket", "try", "packet-socket", None, {"EPERM"}),
    ("perf", "open a perf event", "try", "perf", None, {"EPERM", "EACCES"}),
    ("bpf", "load BPF", "try", "bpf", None, {"EPERM"}),
    ("userfaultfd", "make a userfaultfd", "try", "userfaultfd", None, {"EPERM"}),
    ("io-uring", "set up an io_uring", "try", "io-uring", None, {"EPERM"}),
    ("iopl", "raise the I/O privilege level", "try", "iopl", None, {"EPERM"}),
    ("reboot", "reboot", "try", "reboot", None, {"EPERM"}),
    ("hostname", "change the hostname", "try", "sethostname", None, {"EPERM"}),
    ("setuid0", "become root", "try", "setuid0", None, {"EPERM"}),
    ("suid-binary", "gain root through a setuid-root program", "sh", "/usr/bin/fief-probe-suid",
     lambda rc, out, err: json.loads(out)["euid"] == 20001),
    # chmod, chown and links
    ("chown-root", "give a file to root", "sh",
     "touch mine && /usr/bin/fief-probe try chown-root mine", lambda rc, out, err: '"EPERM"' in out),
    ("suid-own", "run an own setuid copy with privilege", "sh",
     "cp /usr/bin/fief-probe ./p && chmod 4755 ./p && ./p", lambda rc, out, err: json.loads(out)["euid"] == 20001),
    ("hardlink-distro", "hardlink a distro binary into the home", "try", "hardlink", "/bin/busybox", {"EXDEV"}),
    ("symlink-init", "read the init's environment through a symlink in the home", "sh",
     "ln -sf /proc/1/environ s && cat s", lambda rc, out, err: rc != 0 and "Permission denied" in err),
    # terminals
    ("tiocsti", "inject input into a terminal", "try", "tiocsti", "/dev/tty", {"EPERM", "ENXIO"}),
]


def expand(pair, arg):
    if arg is None:
        return None
    return (str(arg).replace("BOBPID", str(pair.bob_pid)).replace("HOMES", str(pair.homes))
            .replace("STATE", str(pair.state)).replace("HOSTFILE", str(pair.host_file))
            .replace("TENANTS", str(pair.tenants)))


def record(aid, refused):
    tally = json.loads(TALLY.read_text()) if TALLY.exists() else {}
    tally[aid] = refused
    TALLY.write_text(json.dumps(tally))


def test_battery_is_large_enough():
    assert len(ATTEMPTS) >= 40
    assert len({a[0] for a in ATTEMPTS}) == len(ATTEMPTS)


@pytest.mark.parametrize("attempt", ATTEMPTS, ids=[a[0] for a in ATTEMPTS])
def test_escape_attempt_is_refused(pair, attempt):
    aid, _what, kind, how = attempt[:4]
    refused = False
    try:
        if kind == "try":
            r = tried(pair, how, expand(pair, attempt[4]))
            assert r["ok"] is False and r["error"] in attempt[5], r
        else:
            r = sh(pair, expand(pair, how))
            assert attempt[4](r.returncode, r.stdout, r.stderr), (r.returncode, r.stdout, r.stderr)
        refused = True
    finally:
        record(aid, refused)
    # and bob never noticed
    assert pair.status("bob")["pid"] == pair.bob_pid
