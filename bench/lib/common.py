"""Helpers shared by the benchmarks under bench/.

Clients for the two things a benchmark waits on (a uwsgi-protocol app on a
Unix socket, a fief session agent), a prober that waits for many of them at
once without a thread per target, and /proc helpers: process trees, PSS,
"no process left". Everything is bounded in time; nothing here starts a
process.
"""
import errno
import os
import selectors
import socket
import struct
import time

now = time.monotonic


class BenchError(Exception):
    """A benchmark could not measure something (as opposed to a goal missed)."""


# --------------------------------------------------------------- formatting

def fmt_s(sec):
    if sec is None:
        return "-"
    if sec < 1.0:
        return f"{sec * 1000:.1f} ms"
    return f"{sec:.2f} s"


def fmt_kib(kib):
    if kib is None:
        return "-"
    if kib >= 10240:
        return f"{kib / 1024:.1f} MiB"
    return f"{kib:.0f} KiB"


def median(xs):
    xs = sorted(xs)
    if not xs:
        return None
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


def percentile(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


# ------------------------------------------------------------------- files

def write_atomic(path, text, mode=0o644):
    """Write the way a careful tool does: a hidden temp file, then rename."""
    d, base = os.path.split(path)
    tmp = os.path.join(d, "." + base + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.rename(tmp, path)


def raise_nofile():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ------------------------------------------------------------ uwsgi client

UWSGI_VARS = (
    ("REQUEST_METHOD", "GET"),
    ("REQUEST_URI", "/"),
    ("PATH_INFO", "/"),
    ("QUERY_STRING", ""),
    ("SERVER_PROTOCOL", "HTTP/1.1"),
    ("SERVER_NAME", "bench.invalid"),
    ("SERVER_PORT", "80"),
    ("REMOTE_ADDR", "127.0.0.1"),
    ("HTTP_HOST", "bench.invalid"),
)


def uwsgi_request(pairs=UWSGI_VARS):
    """A uwsgi packet: modifier1 0, little-endian datasize, modifier2 0, then
    each key and value with a 2-byte little-endian length."""
    body = b""
    for k, v in pairs:
        k, v = k.encode(), v.encode()
        body += struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
    if len(body) > 0xFFFF:
        raise ValueError("uwsgi vars too large")
    return struct.pack("<BHB", 0, len(body), 0) + body


def http_body(resp):
    """(status code, body) of the HTTP response an app sent back, or None."""
    head, sep, body = resp.partition(b"\r\n\r\n")
    if not sep:
        return None
    first = head.split(b"\r\n", 1)[0].split()
    if len(first) < 2 or not first[1].isdigit():
        return None
    return int(first[1]), body


# ------------------------------------------------------ fief agent client
# docs/protocol.md: big-endian, header magic 0xF1EF, version 1, type, length.

AGENT_MAGIC, AGENT_PIPES = 0xF1EF, 0x02
AGENT_OK, AGENT_ERROR, AGENT_EXIT = 0x81, 0x82, 0x83


def _pstr(v):
    v = v.encode()
    return struct.pack(">I", len(v)) + v + b"\0"


def agent_pipes_request(command, env=()):
    body = _pstr(command) + struct.pack(">H", len(env)) + b"".join(_pstr(e) for e in env)
    return struct.pack(">HBBI", AGENT_MAGIC, 1, AGENT_PIPES, 8 + len(body)) + body


def agent_decode(data):
    """(type, body) of one agent packet; raises ValueError when malformed."""
    if len(data) < 8:
        raise ValueError("short agent packet")
    magic, ver, kind, length = struct.unpack(">HBBI", data[:8])
    if magic != AGENT_MAGIC or ver != 1 or length != len(data):
        raise ValueError("bad agent header")
    return kind, data[8:]


# ----------------------------------------------------------------- probes
# A probe is one target that "answers" or not yet. Each attempt is a fresh
# connection; a refused or missing socket is retried after `retry`, a reply
# that is not the expected one is retried at once (a reload in progress
# answers with the old config), an attempt that hangs is abandoned after
# `attempt_timeout`.

class UwsgiProbe:
    socktype = socket.SOCK_STREAM

    def __init__(self, path, expect):
        self.path = path
        self.expect = expect.encode() if isinstance(expect, str) else expect
        self.last = None

    def begin(self, sock):
        self.buf = b""
        sock.sendall(uwsgi_request())

    def readable(self, sock):
        """None: not finished; True: answered as expected; False: retry."""
        try:
            b = sock.recv(65536)
        except BlockingIOError:
            return None
        except OSError as e:
            self.last = ("recv", e.errno)
            return False
        if b:
            self.buf += b
            return None
        r = http_body(self.buf)
        self.last = r
        return bool(r and r[0] == 200 and r[1] == self.expect)

    def abort(self):
        pass


class AgentProbe:
    """A PIPES request for `command`; answered when EXIT says status 0 and
    (if expect is given) the command printed exactly expect."""
    socktype = socket.SOCK_SEQPACKET

    def __init__(self, path, command="true", expect=None):
        self.path = path
        self.command = command
        self.expect = expect.encode() if isinstance(expect, str) else expect
        self.last = None
        self.out_fd = None

    def begin(self, sock):
        self.got_ok = False
        self._close_out()
        sock.send(agent_pipes_request(self.command))

    def _close_out(self):
        if self.out_fd is not None:
            os.close(self.out_fd)
            self.out_fd = None

    def abort(self):
        self._close_out()

    def readable(self, sock):
        try:
            data, fds, _flags, _addr = socket.recv_fds(sock, 1 << 17, 4)
        except BlockingIOError:
            return None
        except OSError:
            return False
        if not data:
            for fd in fds:
                os.close(fd)
            self._close_out()
            return False
        try:
            kind, body = agent_decode(data)
        except ValueError:
            kind, body = None, b""
        if kind == AGENT_OK and not self.got_ok and len(fds) == 3:
            self.got_ok = True
            # stdin (closed: EOF for the child) and stderr are not needed
            os.close(fds[0])
            os.close(fds[2])
            self.out_fd = fds[1]
            os.set_blocking(self.out_fd, False)
            return None
        for fd in fds:
            os.close(fd)
        if kind == AGENT_EXIT and self.got_ok and len(body) >= 2:
            out = b""
            while self.out_fd is not None:
                try:
                    b = os.read(self.out_fd, 65536)
                except BlockingIOError:
                    break
                if not b:
                    break
                out += b
            self._close_out()
            self.last = ("EXIT", body[0], body[1], out)
            return body[0] == 0 and body[1] == 0 and (self.expect is None or out == self.expect)
        self.last = ("ERROR" if kind == AGENT_ERROR else kind, body[:2])
        self._close_out()
        return False


def wait_answering(probes, timeout, retry=0.001, attempt_timeout=10.0, started=None, partial=False):
    """Wait until every probe (dict name -> probe) has answered. Returns
    {name: seconds from `started` (default: now) to its answer}. At the
    deadline: raises BenchError naming what did not answer, or with
    partial=True returns what did."""
    t0 = now() if started is None else started
    deadline = now() + timeout
    sel = selectors.DefaultSelector()
    pending = set(probes)
    done = {}
    inflight = {}            # name -> (sock, attempt start)
    next_try = {n: 0.0 for n in probes}
    try:
        while pending:
            t = now()
            if t > deadline:
                if partial:
                    return done
                some = sorted(pending)[:5]
                last = {n: probes[n].last for n in some}
                raise BenchError(f"{len(pending)} of {len(probes)} not answering after {timeout:.0f} s "
                                 f"(e.g. {', '.join(some)}; last replies {last})")
            for name in pending:
                if name in inflight or next_try[name] > t:
                    continue
                p = probes[name]
                s = socket.socket(socket.AF_UNIX, p.socktype | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
                try:
                    s.connect(p.path)
                    p.begin(s)
                except OSError as e:
                    s.close()
                    # a missing or refused socket: not up yet
                    if e.errno not in (errno.ENOENT, errno.ECONNREFUSED, errno.EAGAIN,
                                       errno.ECONNRESET, errno.EPIPE, errno.ENOTDIR):
                        p.last = ("connect", e.errno)
                    next_try[name] = t + retry
                    continue
                inflight[name] = (s, t)
                sel.register(s, selectors.EVENT_READ, name)
            if not inflight:
                wake = min(next_try[n] for n in pending)
                time.sleep(max(0.0, min(wake - now(), 0.05)))
                continue
            for key, _ in sel.select(timeout=retry):
                name = key.data
                s, _t = inflight[name]
                r = probes[name].readable(s)
                if r is None:
                    continue
                sel.unregister(s)
                s.close()
                probes[name].abort()
                del inflight[name]
                if r:
                    done[name] = now() - t0
                    pending.discard(name)
                else:
                    next_try[name] = now() + retry
            t = now()
            for name, (s, started_at) in list(inflight.items()):
                if t - started_at > attempt_timeout:
                    sel.unregister(s)
                    s.close()
                    del inflight[name]
                    probes[name].abort()
                    probes[name].last = ("attempt timed out",)
                    next_try[name] = t
        return done
    finally:
        for name, (s, _t) in inflight.items():
            sel.unregister(s)
            s.close()
            probes[name].abort()
        sel.close()


# ----------------------------------------------------------- /proc helpers

def proc_stat(pid):
    """(ppid, state) of pid, or None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            s = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = s[s.rindex(b")") + 2:].split()
    return int(rest[1]), rest[0].decode()


def alive(pid):
    """True while pid exists and is not a zombie (a zombie has ended: only
    its exit status waits for its parent)."""
    st = proc_stat(pid)
    return st is not None and st[1] not in ("Z", "X")


def proc_children_map():
    """{ppid: [pid, ...]} of every process on the host."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = proc_stat(int(d))
        if st:
            kids.setdefault(st[0], []).append(int(d))
    return kids


def descendants(root, kids=None):
    """root and every process below it."""
    kids = proc_children_map() if kids is None else kids
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def pss_kib(pid):
    """Pss of one process from smaps_rollup (KiB); 0 if it is gone or a
    kernel thread."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def cpu_s(pid):
    """CPU seconds of pid and of the children it has reaped (utime, stime,
    cutime, cstime of /proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            s = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    rest = s[s.rindex(b")") + 2:].split()
    return sum(int(x) for x in rest[11:15]) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(root, kids=None):
    """CPU seconds a process tree has used so far, exited members included
    when they were reaped inside the tree."""
    return sum(cpu_s(p) for p in descendants(root, kids))


def host_busy_cpu_s():
    """CPU seconds the whole host has spent not idle since boot (all CPUs)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def host_cpu_busy(window=1.0):
    """Fraction of all CPUs busy (not idle or iowait) over `window` seconds."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    t1, i1 = sample()
    time.sleep(window)
    t2, i2 = sample()
    return 1.0 - (i2 - i1) / max(1, t2 - t1)


def tree_pss_kib(root, kids=None):
    pids = descendants(root, kids)
    return sum(pss_kib(p) for p in pids), len(pids)


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return []


def wait_gone(pids, timeout, interval=0.001, started=None, also=None):
    """Seconds from `started` until none of pids is alive (and `also()`,
    when given, is true). Raises BenchError at the deadline."""
    t0 = now() if started is None else started
    deadline = now() + timeout
    left = list(pids)
    while True:
        left = [p for p in left if alive(p)]
        if not left and (also is None or also()):
            return now() - t0
        if now() > deadline:
            raise BenchError(f"still alive after {timeout:.0f} s: pids {left[:10]}")
        time.sleep(interval)


def wait_for(pred, timeout, interval=0.01, what="condition"):
    deadline = now() + timeout
    while True:
        r = pred()
        if r:
            return r
        if now() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# ----------------------------------------------------------------- cgroups

def own_cgroup_dirs():
    """[(controller-or-'', directory of this process's cgroup)] for every
    mounted hierarchy, read from /proc/self/cgroup and /proc/self/mountinfo."""
    mounts = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype, _src, opts = (right.split() + ["", "", ""])[:3]
            mnt = left.split()[4]
            if fstype == "cgroup2":
                mounts.setdefault("", mnt)
            elif fstype == "cgroup":
                for o in opts.split(","):
                    if o in ("rw", "ro") or o.startswith("release_agent") or o in ("xattr", "noprefix", "clone_children", "cpuset_v2_mode"):
                        continue
                    mounts.setdefault(o, mnt)
    out = []
    with open("/proc/self/cgroup") as f:
        for line in f:
            _hid, ctrls, path = line.rstrip("\n").split(":", 2)
            for c in (ctrls.split(",") if ctrls else [""]):
                if c in mounts:
                    out.append((c, os.path.join(mounts[c], path.lstrip("/"))))
    return out


class TrackingCgroup:
    """A cgroup of our own, used only to find and end every process of
    something we started (v2 hierarchy if mounted, else v1 pids).

    cpu_group=True also puts it in a group of its own of a v1 cpu
    hierarchy: the scheduler then weighs everything below it as one
    entity, the way it weighs a launcher's tenants (all below the
    launcher's cgroup_parent), so that on a shared machine both sides of
    a benchmark get the same share of the CPU against other work."""

    def __init__(self, name, cpu_group=False):
        dirs = dict(own_cgroup_dirs())
        base = dirs.get("") or dirs.get("pids")
        if not base:
            raise BenchError("no cgroup2 or pids hierarchy mounted")
        self.path = os.path.join(base, name)
        os.mkdir(self.path)
        self.extra = []
        if cpu_group and dirs.get("cpu") and dirs["cpu"] != base:
            p = os.path.join(dirs["cpu"], name)
            os.mkdir(p)
            self.extra.append(p)

    def procs_file(self):
        return os.path.join(self.path, "cgroup.procs")

    def enter_fn(self):
        """A preexec_fn that moves the child into this cgroup before exec."""
        paths = [self.procs_file()] + [os.path.join(p, "cgroup.procs") for p in self.extra]

        def enter():
            for path in paths:
                with open(path, "w") as f:
                    f.write("0")
        return enter

    def pids(self):
        try:
            with open(self.procs_file()) as f:
                return [int(x) for x in f.read().split()]
        except FileNotFoundError:
            return []

    def kill_all(self, timeout=10.0):
        deadline = now() + timeout
        while now() < deadline:
            left = self.pids()
            if not left:
                return True
            for p in left:
                try:
                    os.kill(p, 9)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        return not self.pids()

    def remove(self):
        for p in [self.path] + self.extra:
            try:
                os.rmdir(p)
            except FileNotFoundError:
                pass
