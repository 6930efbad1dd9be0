"""The session agent and `fiefctl enter`, against a real launcher.

Raw protocol tests speak the wire format of docs/protocol.md directly."""
import fcntl
import hashlib
import os
import pty
import select
import socket
import struct
import subprocess
import termios
import threading
import time

import pytest

from conftest import binary, tenant_yaml, wait_for

MAGIC, PTY, PIPES, CONNECT, SIGNAL = 0xF1EF, 1, 2, 3, 4
OK, ERROR, EXIT = 0x81, 0x82, 0x83


def s(v):
    v = v.encode() if isinstance(v, str) else v
    return struct.pack(">I", len(v)) + v + b"\0"


def env(entries):
    return struct.pack(">H", len(entries)) + b"".join(s(e) for e in entries)


def msg(kind, body, ver=1, magic=MAGIC, length=None):
    return struct.pack(">HBBI", magic, ver, kind, 8 + len(body) if length is None else length) + body


def pipes(cmd="", e=()):
    return msg(PIPES, s(cmd) + env(list(e)))


def ptyreq(term="xterm", rows=24, cols=80, cmd="", e=()):
    return msg(PTY, struct.pack(">HHHH", rows, cols, 0, 0) + s(term) + s(cmd) + env(list(e)))


def connect(host, port):
    return msg(CONNECT, struct.pack(">H", port) + s(host))


def sigmsg(n):
    return msg(SIGNAL, struct.pack(">I", n))


def dial(path):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    c.connect(str(path))
    return c


def recv(c, timeout=15):
    c.settimeout(timeout)
    data, fds, _, _ = socket.recv_fds(c, 1 << 17, 4)
    if not data:
        return None, fds
    magic, ver, kind, length = struct.unpack(">HBBI", data[:8])
    assert (magic, ver, length) == (MAGIC, 1, len(data))
    body = data[8:]
    if kind == ERROR:
        return ("ERROR", struct.unpack(">H", body[:2])[0]), fds
    if kind == EXIT:
        return ("EXIT", body[0], body[1]), fds
    return ("OK" if kind == OK else kind,), fds


@pytest.fixture
def alice(host):
    host.write_tenant("alice", tenant_yaml(20001))
    host.wait_state("alice", "running")
    host.sock = host.state / "agents" / "alice.sock"
    wait_for(lambda: host.sock.exists(), what="agent socket")
    return host


def test_exit_codes_and_signals_come_back(alice):
    assert alice.enter("alice", "/bin/sh", "-c", "exit 7").returncode == 7
    assert alice.enter("alice", "/bin/sh", "-c", "kill -TERM $$").returncode == 128 + 15
    assert alice.enter("alice", "/bin/sh", "-c", "kill -KILL $$").returncode == 128 + 9
    r = alice.enter("alice", "/bin/sh", "-c", "echo out; echo err >&2")
    assert (r.stdout, r.stderr) == ("out\n", "err\n")


def test_arguments_are_quoted_exactly(alice):
    args = ["a b", "it's", "$HOME", "", 'x"y', "\\n"]
    r = alice.enter("alice", "/usr/bin/printf", "[%s]\\n", *args)
    assert r.stdout == "".join(f"[{a}]\n" for a in args)


def test_stdin_eof_reaches_the_child(alice):
    r = alice.enter("alice", "/bin/sh", "-c", "cat; echo EOF-seen", input="hello\n")
    assert r.stdout == "hello\nEOF-seen\n"


def test_one_gib_round_trip_keeps_its_sha256(alice):
    block = os.urandom(1 << 20)
    p = subprocess.Popen([binary("fiefctl"), "-c", str(alice.host_file), "enter", "alice", "--",
                          "/bin/cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    sent, got = hashlib.sha256(), hashlib.sha256()
    count = [0]

    def writer():
        for i in range(1024):
            chunk = block[i:] + block[:i]
            sent.update(chunk)
            p.stdin.write(chunk)
        p.stdin.close()

    t = threading.Thread(target=writer)
    t.start()
    while True:
        b = p.stdout.read(1 << 20)
        if not b:
            break
        count[0] += len(b)
        got.update(b)
    t.join()
    assert p.wait(120) == 0
    assert count[0] == 1 << 30 and got.hexdigest() == sent.hexdigest()


def test_pty_size_and_resize(alice):
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(binary("fiefctl"), [binary("fiefctl"), "-c", str(alice.host_file), "enter", "alice",
                                     "--", "/bin/sh", "-c",
                                     "tty; stty size; read x; stty size; exit 3"])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    out = b""

    def read_until(token, timeout=10):
        nonlocal out
        end = time.monotonic() + timeout
        while token not in out and time.monotonic() < end:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    out += os.read(fd, 4096)
                except OSError:
                    break
        return token in out

    # the first size is the one the session was asked for
    assert read_until(b"30 100"), out
    assert b"/dev/pts/0" in out
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    os.kill(pid, 28)      # SIGWINCH, as a terminal emulator sends it
    time.sleep(0.3)
    os.write(fd, b"go\n")
    assert read_until(b"40 120"), out
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 3
    os.close(fd)


def test_hundred_concurrent_sessions(alice):
    # two processes per session: room for all of them at once
    alice.write_tenant("alice", tenant_yaml(20001, pids=512))
    wait_for(lambda: (s := alice.status("alice")) and s["state"] == "running" and s["pids_limit"] == 512)
    procs = [subprocess.Popen([binary("fiefctl"), "-c", str(alice.host_file), "enter", "alice", "--",
                               "/bin/sh", "-c", f"sleep 0.5; echo {i}; exit {i % 7}"],
                              stdout=subprocess.PIPE, text=True) for i in range(100)]
    for i, p in enumerate(procs):
        out, _ = p.communicate(timeout=60)
        assert out == f"{i}\n" and p.returncode == i % 7


MALFORMED = [
    ("short header", b"\xf1\xef\x01", 1),
    ("bad magic", msg(PIPES, s("") + env([]), magic=0x1234), 2),
    ("version 2", msg(PIPES, s("") + env([]), ver=2), 3),
    ("unknown type", msg(0x7F, b""), 4),
    ("reply as request", msg(OK, b"\x01\0\0\0\0"), 4),
    ("length mismatch", msg(PIPES, s("") + env([]), length=1000), 5),
    ("oversized", msg(PIPES, s("x" * 200000) + env([])), 6),
    ("truncated string", msg(PIPES, struct.pack(">I", 10) + b"abc"), 7),
    ("trailing bytes", msg(PIPES, s("") + env([]) + b"\0"), 8),
    ("NUL inside string", msg(PIPES, struct.pack(">I", 3) + b"a\0c\0" + env([])), 9),
    ("term with slash", ptyreq(term="../../x"), 10),
    ("rows too big", ptyreq(rows=5000), 11),
    ("command too long", pipes("x" * 65537), 12),
    ("257 env entries", pipes("", ["A=1"] * 257), 13),
    ("env bad name", pipes("", ["1A=x"]), 14),
    ("env HOME", pipes("", ["HOME=/"]), 15),
    ("env LD_PRELOAD", pipes("", ["LD_PRELOAD=/x.so"]), 15),
    ("host with slash", connect("/etc/passwd", 1), 16),
    ("port 0", connect("127.0.0.1", 0), 17),
    ("signal before a session", sigmsg(15), 34),
]


def test_malformed_requests_are_refused_while_a_good_session_runs(alice):
    good = dial(alice.sock)
    good.send(pipes("cat"))
    reply, (fin, fout, ferr) = recv(good)
    assert reply == ("OK",)
    payload = os.urandom(1 << 20)
    digest = hashlib.sha256()

    def writer():
        for _ in range(32):
            view = memoryview(payload)
            while view:
                view = view[os.write(fin, view):]
        os.close(fin)

    t = threading.Thread(target=writer)
    t.start()
    for name, data, code in MALFORMED:
        c = dial(alice.sock)
        c.send(data)
        reply, fds = recv(c)
        assert reply == ("ERROR", code), name
        assert not fds
        c.close()
    total = 0
    while True:
        b = os.read(fout, 1 << 16)
        if not b:
            break
        total += len(b)
        digest.update(b)
    t.join()
    assert total == 32 << 20
    assert digest.hexdigest() == hashlib.sha256(payload * 32).hexdigest()
    reply, _ = recv(good)
    assert reply == ("EXIT", 0, 0)


def test_signal_message_reaches_the_session(alice):
    c = dial(alice.sock)
    c.send(pipes("trap 'exit 5' USR1; echo ready; while :; do sleep 0.1; done"))
    reply, (fin, fout, ferr) = recv(c)
    assert reply == ("OK",)
    assert os.read(fout, 100) == b"ready\n"
    c.send(sigmsg(10))
    reply, _ = recv(c)
    assert reply[:3] == ("EXIT", 0, 5)


def test_connect_reaches_the_tenants_own_loopback(alice):
    srv = subprocess.Popen([binary("fiefctl"), "-c", str(alice.host_file), "enter", "alice", "--",
                            "/usr/bin/fief-probe", "listen", "tcp", "7272", "10"],
                           stdout=subprocess.PIPE, text=True)
    try:
        assert srv.stdout.readline().strip() == "listening"
        c = dial(alice.sock)
        c.send(connect("127.0.0.1", 7272))
        reply, fds = recv(c)
        assert reply == ("OK",) and len(fds) == 1
        tcp = socket.socket(fileno=fds[0])
        assert tcp.recv(10) == b"hi\n"
        tcp.close()
        # the host's own loopback is another machine: nothing listens there
        c = dial(alice.sock)
        c.send(connect("127.0.0.1", 7273))
        assert recv(c)[0][0] == "ERROR"
    finally:
        srv.kill()
        srv.wait()


def test_tenants_cannot_reach_agent_sockets(alice):
    alice.write_tenant("bob", tenant_yaml(20002))
    alice.wait_state("bob", "running")
    bob_sock = alice.state / "agents" / "bob.sock"
    # inside a tenant the agents folder does not exist at all
    r = alice.enter("alice", "/bin/ls", str(alice.state / "agents"))
    assert r.returncode != 0 and "No such file" in r.stderr
    # on the host, the tenant's uid is refused by the socket's permissions
    for path in (alice.sock, bob_sock):
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setgid(20001)
                os.setuid(20001)
                dial(path)
                os._exit(0)
            except PermissionError:
                os._exit(13)
            except BaseException:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 13, path
