"""Tenant workloads: WSGI, PSGI and Rack apps under uWSGI, command apps,
daemons, cron, logs, and domains through a real nginx from Debian.

Every test gets its own fief host (conftest.Host) on the real Debian
distro, and the tests that speak HTTP get their own nginx, started on a
free loopback port with the server block of conf/nginx/fief.conf and
stopped by its pid."""
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import REPO, Host
from conftest import wait_for as _wait_for

try:
    from zoneinfo import ZoneInfo
except ImportError:  # pragma: no cover
    ZoneInfo = None

WSGI_APP = '''\
import os
def application(env, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("wsgi %s %s %s\\n" % (os.environ["USER"], env["HTTP_HOST"], os.getpid())).encode()]
'''

PSGI_APP = '''\
my $app = sub {
    my $env = shift;
    return [200, ["Content-Type" => "text/plain"], ["psgi $ENV{USER} $env->{HTTP_HOST}\\n"]];
};
'''

RACK_APP = '''\
run lambda { |env| [200, {"Content-Type" => "text/plain"}, ["rack #{ENV["USER"]} #{env["HTTP_HOST"]}\\n"]] }
'''

# A command app: any server that listens on $FIEF_SOCKET and speaks HTTP.
HTTP_APP = '''\
import http.server, os, socketserver, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = ("command %s %s\\n" % (os.environ["USER"], self.headers["Host"])).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def address_string(self):
        return "nginx"
s = socketserver.UnixStreamServer(os.environ["FIEF_SOCKET"], H)
os.chmod(os.environ["FIEF_SOCKET"], 0o666)
print("serving on", os.environ["FIEF_SOCKET"], flush=True)
s.serve_forever()
'''

def wait_for(pred, timeout=30.0, interval=0.02, what="condition"):
    """conftest's, with room for a busy machine (the deadline is a bound)."""
    return _wait_for(pred, timeout, interval, what)


LIMITS = "limits: { memory: 512M, cpu: 1, pids: 256, tmp: 16M }\n"


def app_tenant(uid, body):
    return f"uid: {uid}\ndistro: bookworm\n{LIMITS}ssh: {{ shell: /bin/sh }}\n" + body


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """A private nginx: its own prefix, config, pid file and port."""

    def __init__(self, base, map_path):
        self.dir = Path(base) / "nginx"
        self.dir.mkdir()
        self.port = free_port()
        self.conf = self.dir / "nginx.conf"
        self.pid_file = self.dir / "nginx.pid"
        self.error_log = self.dir / "error.log"
        shutil.copy("/etc/nginx/uwsgi_params", self.dir / "uwsgi_params")
        server = (REPO / "conf" / "nginx" / "fief.conf").read_text()
        server = server.replace("/run/fief/nginx-domains.map", str(map_path))
        server = re.sub(r"^\s*listen .*$", "", server, flags=re.M)
        server = server.replace("server_name _;", f"listen 127.0.0.1:{self.port} default_server;\n    server_name _;")
        (self.dir / "fief.conf").write_text(server)
        tmp = self.dir / "tmp"
        tmp.mkdir()
        self.conf.write_text(
            f"pid {self.pid_file};\n"
            f"error_log {self.error_log};\n"
            "worker_processes 2;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            "    access_log off;\n"
            f"    client_body_temp_path {tmp}/body;\n"
            f"    proxy_temp_path {tmp}/proxy;\n"
            f"    fastcgi_temp_path {tmp}/fastcgi;\n"
            f"    uwsgi_temp_path {tmp}/uwsgi;\n"
            f"    scgi_temp_path {tmp}/scgi;\n"
            f"    include {self.dir}/fief.conf;\n"
            "}\n")
        self.args = ["nginx", "-p", str(self.dir), "-c", str(self.conf), "-e", str(self.error_log)]
        self.reload_command = " ".join(self.args + ["-s", "reload"])

    def start(self):
        subprocess.run(self.args, check=True, timeout=10)
        wait_for(lambda: self.pid_file.exists() and self.pid_file.read_text().strip(), what="nginx pid")

    def stop(self):
        try:
            pid = int(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not Path(f"/proc/{pid}").exists(), timeout=10, what="nginx gone")

    def get(self, host, path="/"):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            c.request("GET", path, headers={"Host": host})
            r = c.getresponse()
            return r.status, r.read().decode(errors="replace")
        finally:
            c.close()

    def wait_body(self, host, needle, timeout=60):
        def ok():
            try:
                st, body = self.get(host)
            except OSError:
                return None
            return (st, body) if st == 200 and needle in body else None
        return wait_for(ok, timeout, interval=0.1, what=f"{host} answering {needle!r}")


def start_host(distros, env=None, nginx=False, extra_host=""):
    """A Host with an nginx map inside its folder; optionally with nginx."""
    base = tempfile.mkdtemp(prefix="fief-apps-")
    # nginx's workers run as nobody: they must reach state/tenants/NAME/run.
    os.chmod(base, 0o755)
    h = Host(base, distros, extra_host=extra_host)
    h.map = h.base / "nginx" / "domains.map"
    h.nginx = Nginx(base, h.map) if nginx else None
    reload = h.nginx.reload_command if nginx else "true"
    text = re.sub(r"^http:.*$", f"http: {{nginx_map: '{h.map}', reload_command: '{reload}'}}",
                  h.host_file.read_text(), flags=re.M)
    h.host_file.write_text(text)
    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        h.start_launcher()
    finally:
        os.environ.clear()
        os.environ.update(old)
    if nginx:
        wait_for(lambda: h.map.exists(), what="first nginx map")
        h.nginx.start()
    return h


def stop_host(h):
    if h.nginx:
        h.nginx.stop()
    rc = h.stop_launcher()
    for p in h.cgroup_dirs():
        for d in sorted(p.rglob("*"), reverse=True):
            if d.is_dir():
                d.rmdir()
        p.rmdir()
    shutil.rmtree(h.base, ignore_errors=True)
    assert rc == 0, "launcher exited with %s" % rc


@pytest.fixture
def web(debian):
    h = start_host(debian, nginx=True)
    yield h
    stop_host(h)


@pytest.fixture
def plain(debian):
    h = start_host(debian)
    yield h
    stop_host(h)


def home(h, name, uid, files):
    """The tenant's home with its app files and ~/logs, made the way an
    operator's deploy would, before the tenant first starts."""
    d = h.homes / name
    (d / "logs").mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    for p in [d, *d.rglob("*")]:
        os.chown(p, uid, uid)
    os.chmod(d, 0o750)
    return d


def log_of(h, name, unit):
    try:
        return (h.logs / name / f"{unit}.log").read_text(errors="replace")
    except FileNotFoundError:
        return ""


def starts(h, name, unit):
    """Pids (inside the tenant) of each start of a unit, from its log."""
    return [int(p) for p in re.findall(r"\] started \w+ \(pid (\d+)\)", log_of(h, name, unit))]


def wait_starts(h, name, unit, n, timeout=60):
    return wait_for(lambda: (s := starts(h, name, unit)) and len(s) >= n and s, timeout,
                    what=f"{name}/{unit} started {n} time(s)")


def running(h, name, timeout=60):
    s = h.wait_state(name, "running", timeout)
    return s["pid"]


# ---------------------------------------------------------------- apps and domains

def test_wsgi_psgi_rack_and_command_apps_answer_by_host(web):
    home(web, "alice", 20001, {"app/hello.py": WSGI_APP, "shop/config.ru": RACK_APP})
    home(web, "bob", 20002, {"blog/app.psgi": PSGI_APP, "api.py": HTTP_APP})
    web.write_tenant("alice", app_tenant(20001, """\
apps:
  - name: web
    type: wsgi
    module: "hello:application"
    chdir: /home/alice/app
    domains: [alice.example.com, www.alice.example.com]
    workers: 2
  - name: shop
    type: rack
    script: /home/alice/shop/config.ru
    chdir: /home/alice/shop
    domains: [shop.alice.example.com]
"""))
    web.write_tenant("bob", app_tenant(20002, """\
apps:
  - name: blog
    type: psgi
    script: /home/bob/blog/app.psgi
    domains: ["*.bob.example.org", bob.example.org]
  - name: api
    type: command
    command: python3 /home/bob/api.py
    domains: [api.bob.example.org]
"""))
    running(web, "alice")
    running(web, "bob")
    n = web.nginx
    assert "wsgi alice alice.example.com" in n.wait_body("alice.example.com", "wsgi")[1]
    # two domains, one app
    assert "wsgi alice www.alice.example.com" in n.wait_body("www.alice.example.com", "wsgi")[1]
    assert "rack alice shop.alice.example.com" in n.wait_body("shop.alice.example.com", "rack")[1]
    assert "psgi bob bob.example.org" in n.wait_body("bob.example.org", "psgi")[1]
    # the wildcard, and an exact name that beats it
    assert "psgi bob x.bob.example.org" in n.wait_body("x.bob.example.org", "psgi")[1]
    assert "psgi bob a.b.bob.example.org" in n.wait_body("a.b.bob.example.org", "psgi")[1]
    assert "command bob api.bob.example.org" in n.wait_body("api.bob.example.org", "command")[1]
    # unknown hosts, and a port in the Host header
    assert n.get("nobody.example.com")[0] == 404
    assert n.get("example.org")[0] == 404
    assert n.get("alice.example.com:80")[0] == 200
    # the sockets are where nginx looks, and the map says so
    sock = web.state / "tenants" / "alice" / "run" / "web.sock"
    assert sock.is_socket()
    text = web.map.read_text()
    assert f'alice.example.com "unix:{sock}"; # alice/web' in text
    assert f'api.bob.example.org "unix:{web.state}/tenants/bob/run/api.sock:"; # bob/api' in text
    # lazy apps by default: two workers, two interpreters, two pids
    pids = set()
    for _ in range(40):
        pids.add(n.get("alice.example.com")[1].split()[-1])
    assert len(pids) == 2, pids


def test_unknown_host_is_404_with_no_tenant(web):
    assert web.nginx.get("alice.example.com")[0] == 404
    assert "map $host $fief_uwsgi" in web.map.read_text()


def test_killed_app_is_restarted(web):
    home(web, "alice", 20001, {"app/hello.py": WSGI_APP})
    web.write_tenant("alice", app_tenant(20001, """\
apps:
  - { name: web, type: wsgi, module: "hello:application", chdir: /home/alice/app,
      domains: [alice.example.com], lazy_apps: false }
"""))
    init = running(web, "alice")
    web.nginx.wait_body("alice.example.com", "wsgi")
    first = wait_starts(web, "alice", "web", 1)[0]
    r = web.enter("alice", "/bin/kill", "-9", str(first))
    assert r.returncode == 0, r.stderr
    again = wait_starts(web, "alice", "web", 2)
    assert again[1] != first
    web.nginx.wait_body("alice.example.com", "wsgi")
    log = log_of(web, "alice", "web")
    assert "was killed by signal 9" in log and "restarting in 0.1 s" in log
    s = web.status("alice")
    assert s["pid"] == init and s["restarts"] == 0


def test_request_log_is_off_unless_the_tenant_asks(web):
    home(web, "alice", 20001, {"app/hello.py": WSGI_APP})
    home(web, "bob", 20002, {"app/hello.py": WSGI_APP})
    app = """\
apps:
  - { name: web, type: wsgi, module: "hello:application", chdir: /home/%s/app,
      domains: [%s.example.com] }
"""
    web.write_tenant("alice", app_tenant(20001, app % ("alice", "alice")))
    web.write_tenant("bob", app_tenant(20002, 'env: { UWSGI_DISABLE_LOGGING: "false" }\n' +
                                       app % ("bob", "bob")))
    running(web, "alice")
    running(web, "bob")
    web.nginx.wait_body("alice.example.com", "wsgi alice")
    web.nginx.wait_body("bob.example.com", "wsgi bob")
    wait_for(lambda: "GET / " in log_of(web, "bob", "web"), what="bob's request log")
    assert "GET / " not in log_of(web, "alice", "web")


# ---------------------------------------------------------------- daemons

def test_daemon_restarted_after_kill_9(plain):
    plain.write_tenant("alice", app_tenant(20001, """\
daemons:
  - name: redis
    command: redis-server --port 6379 --bind 127.0.0.1 --save "" --appendonly no
"""))
    running(plain, "alice")
    wait_for(lambda: plain.enter("alice", "redis-cli", "ping").stdout.strip() == "PONG",
             what="redis answering")
    assert plain.enter("alice", "redis-cli", "set", "k", "v").stdout.strip() == "OK"
    first = wait_starts(plain, "alice", "redis", 1)[0]
    # the shell that runs the command is the leader: kill what listens
    pids = plain.enter("alice", "sh", "-c", "pgrep -x redis-server").stdout.split()
    assert pids, plain.enter("alice", "ps", "-ef").stdout
    r = plain.enter("alice", "/bin/kill", "-9", *pids)
    assert r.returncode == 0, r.stderr
    wait_starts(plain, "alice", "redis", 2)
    wait_for(lambda: plain.enter("alice", "redis-cli", "ping").stdout.strip() == "PONG",
             what="redis back")
    # a fresh redis: nothing saved, nothing kept
    assert plain.enter("alice", "redis-cli", "get", "k").stdout.strip() == ""
    assert "Ready to accept connections" in log_of(plain, "alice", "redis")
    assert first != starts(plain, "alice", "redis")[1]


def test_simple_daemon_command_is_the_leader(plain):
    plain.write_tenant("alice", app_tenant(20001, """\
daemons:
  - { name: sleeper, command: sleep 1000 }
"""))
    running(plain, "alice")
    pid = wait_starts(plain, "alice", "sleeper", 1)[0]
    r = plain.enter("alice", "cat", f"/proc/{pid}/comm")
    assert r.stdout.strip() == "sleep", "a command without shell syntax is exec'd"


def test_crash_loop_is_detected_and_retried_slowly(plain):
    plain.write_tenant("alice", app_tenant(20001, """\
daemons:
  - { name: broken, command: "echo trying; exit 3" }
"""))
    running(plain, "alice")
    wait_for(lambda: "crash loop" in log_of(plain, "alice", "broken"), timeout=15,
             what="crash loop detected")
    log = log_of(plain, "alice", "broken")
    assert "crash loop: 5 exits within 60 s, the last exited with status 3; retrying every 60 s" in log
    assert log.count("\ntrying\n") == 5
    assert "alice: daemon broken: crash loop" in plain.log_text()
    n = len(starts(plain, "alice", "broken"))
    time.sleep(3)
    assert len(starts(plain, "alice", "broken")) == n == 5, "no fast retries in a crash loop"
    # the backoff before it: 0.1, 0.2, 0.4, 0.8 s
    delays = re.findall(r"restarting in ([0-9.]+) s", log)
    assert delays == ["0.1", "0.2", "0.4", "0.8"], delays
    # fixing the file starts it at once
    plain.write_tenant("alice", app_tenant(20001, """\
daemons:
  - { name: broken, command: "echo fixed; exec sleep 1000" }
"""))
    wait_for(lambda: "fixed" in log_of(plain, "alice", "broken"), what="fixed daemon")


def test_bad_wsgi_module_is_a_crash_loop(plain):
    home(plain, "alice", 20001, {})
    plain.write_tenant("alice", app_tenant(20001, """\
apps:
  - { name: web, type: wsgi, module: "nosuchmodule:application" }
"""))
    running(plain, "alice")
    wait_for(lambda: "crash loop" in log_of(plain, "alice", "web"), timeout=20, what="crash loop")
    assert "no app loaded" in log_of(plain, "alice", "web").lower() or \
        "ModuleNotFoundError" in log_of(plain, "alice", "web")


# ---------------------------------------------------------------- logs

def test_logs_rotate_and_the_tenant_reads_them_read_only(debian):
    h = start_host(debian, env={"FIEF_LOG_ROTATE_BYTES": "65536"})
    try:
        # a fresh home: the launcher makes ~/logs itself
        h.write_tenant("alice", app_tenant(20001, """\
apps:
  - name: chatty
    type: command
    command: >-
      python3 -c "import sys, time;
      [print('line %06d' % i + ' x' * 40, flush=True) for i in range(6000)];
      print('to stderr', file=sys.stderr, flush=True); time.sleep(1000)"
"""))
        running(h, "alice")
        d = h.logs / "alice"
        wait_for(lambda: "to stderr" in log_of(h, "alice", "chatty"), what="output logged")
        st = os.stat(d / "chatty.log")
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, 20001, 0o640)
        st = os.stat(d)
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, 20001, 0o750)
        # 6000 lines of 94 bytes: rotated, three old files kept, none too large
        files = sorted(p.name for p in d.iterdir())
        assert files == ["chatty.log", "chatty.log.1", "chatty.log.2", "chatty.log.3"], files
        for p in d.iterdir():
            assert p.stat().st_size <= 65536
        assert "line 005999" in log_of(h, "alice", "chatty")
        assert "line 000000" not in "".join(p.read_text() for p in d.iterdir()), "oldest dropped"
        # the tenant reads its logs at ~/logs, and cannot change them
        assert (h.homes / "alice" / "logs").is_dir()
        r = h.enter("alice", "tail", "-n", "1", "/home/alice/logs/chatty.log")
        assert r.returncode == 0 and "to stderr" in r.stdout, r.stderr
        r = h.enter("alice", "sh", "-c", "echo forged >> /home/alice/logs/chatty.log")
        assert r.returncode != 0
        r = h.enter("alice", "rm", "-f", "/home/alice/logs/chatty.log.1")
        assert r.returncode != 0 and (d / "chatty.log.1").exists()
    finally:
        stop_host(h)


# ---------------------------------------------------------------- cron

def rome_offset(when="2030-01-15 08:59:00"):
    """Seconds to add to the real clock so that it reads `when` in Rome now."""
    if ZoneInfo is None:
        pytest.skip("no zoneinfo module")
    t = datetime.strptime(when, "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("Europe/Rome"))
    return t.timestamp() - time.time()


def cron_log(h, name):
    return log_of(h, name, "cron")


def test_cron_in_the_tenants_zone_with_a_fast_clock(debian):
    # 08:59 in Rome, and a minute every two seconds from then on
    env = {"FIEF_CRON_CLOCK_OFFSET": str(rome_offset()), "FIEF_CRON_CLOCK_SCALE": "30"}
    h = start_host(debian, env=env)
    try:
        h.write_tenant("alice", app_tenant(20001, """\
env: { TZ: Europe/Rome }
cron:
  - "0 9 * * * echo nine-in-rome; date +zone%z"
  - "0 8 * * * echo eight-would-be-utc"
  - "0 9 -1 -1 -1 echo uwsgi-form"
  - "* * * * * echo every-minute $(id -un)"
  - "1 9 * * * exit 7"
"""))
        running(h, "alice")
        wait_for(lambda: cron_log(h, "alice").count("every-minute alice") >= 3, timeout=20,
                 what="three one-minute runs")
        wait_for(lambda: "exited with status 7" in cron_log(h, "alice"), what="09:01 job")
        log = cron_log(h, "alice")
        assert log.count("\nnine-in-rome\n") == 1
        # the job's environment has the zone too (its clock is the real one)
        assert "\nzone%s\n" % datetime.now(ZoneInfo("Europe/Rome")).strftime("%z") in log
        assert "eight-would-be-utc\n" not in log.replace("`echo eight-would-be-utc`", "")
        assert "started for 2030-01-15 09:00" in log
        assert log.count("uwsgi-form\n") == 1
        assert re.search(r"cron\[5\] `exit 7`: exited with status 7", log)
        assert re.search(r"cron\[4\] `echo every-minute \$\(id -un\)`: exited with status 0", log)
    finally:
        stop_host(h)


def test_cron_skips_a_run_while_the_last_one_goes_on(debian):
    h = start_host(debian, env={"FIEF_CRON_CLOCK_SCALE": "30"})
    try:
        h.write_tenant("alice", app_tenant(20001, """\
cron:
  - "* * * * * echo begin; sleep 5; echo end"
"""))
        running(h, "alice")
        wait_for(lambda: cron_log(h, "alice").count("end\n") >= 2, timeout=30, what="two runs")
        log = cron_log(h, "alice")
        assert re.search(r"skipped at .*: the previous run \(pid \d+\) is still running", log)
        # runs never overlap: begin, end, begin, end...
        seq = re.findall(r"^(begin|end)$", log, flags=re.M)
        assert seq[:4] == ["begin", "end", "begin", "end"], seq
    finally:
        stop_host(h)


def test_cron_on_the_real_clock(plain):
    """One real minute at most: a `* * * * *` line fires at the next minute."""
    plain.write_tenant("alice", app_tenant(20001, """\
cron:
  - "* * * * * echo real-tick"
"""))
    running(plain, "alice")
    wait_for(lambda: "real-tick\n" in cron_log(plain, "alice"), timeout=63, interval=0.5,
             what="a cron run on the real clock")
    stamp = re.search(r"started for (\d{4}-\d\d-\d\d \d\d:\d\d)", cron_log(plain, "alice")).group(1)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")
    assert stamp <= now


# ---------------------------------------------------------------- conflicts

def test_domain_conflict_reported_and_first_owner_keeps_it(web):
    home(web, "alice", 20001, {"app/hello.py": WSGI_APP})
    home(web, "bob", 20002, {"app/hello.py": WSGI_APP})
    web.write_tenant("alice", app_tenant(20001, """\
apps:
  - { name: web, type: wsgi, module: "hello:application", chdir: /home/alice/app,
      domains: [shared.example.com] }
"""))
    running(web, "alice")
    web.nginx.wait_body("shared.example.com", "wsgi alice")
    bob = app_tenant(20002, """\
apps:
  - name: web
    type: wsgi
    module: "hello:application"
    chdir: /home/bob/app
    domains: [bob.example.com, shared.example.com]
""")
    web.write_tenant("bob", bob)
    line = bob.splitlines().index("    domains: [bob.example.com, shared.example.com]") + 1
    want = (f"{web.tenants}/bob.yaml:{line}:14: apps[0] (web): domain 'shared.example.com' is "
            "already routed to tenant alice (app web); app web is not routed")
    wait_for(lambda: want in web.log_text(), what="conflict reported")
    running(web, "bob")
    wait_starts(web, "bob", "web", 1)
    time.sleep(0.5)
    assert "wsgi alice shared.example.com" in web.nginx.get("shared.example.com")[1]
    assert web.nginx.get("bob.example.com")[0] == 404, "a conflicting app is not routed at all"
    assert web.log_text().count(want) == 1, "reported once"
    # a restarted launcher keeps the first owner, whatever the scan order
    web.stop_launcher(signal.SIGQUIT)
    web.start_launcher()
    time.sleep(1)
    assert "wsgi alice shared.example.com" in web.nginx.get("shared.example.com")[1]
    # once alice lets it go, bob gets it, and his other domain too
    web.write_tenant("alice", app_tenant(20001, """\
apps:
  - { name: web, type: wsgi, module: "hello:application", chdir: /home/alice/app,
      domains: [alice.example.com] }
"""))
    web.nginx.wait_body("shared.example.com", "wsgi bob")
    web.nginx.wait_body("bob.example.com", "wsgi bob")


def test_a_name_under_another_tenants_wildcard_is_a_conflict(web):
    home(web, "alice", 20001, {"app/hello.py": WSGI_APP})
    home(web, "bob", 20002, {"app/hello.py": WSGI_APP})
    web.write_tenant("alice", app_tenant(20001, """\
apps:
  - { name: web, type: wsgi, module: "hello:application", chdir: /home/alice/app,
      domains: ["*.alice.example.com"] }
"""))
    running(web, "alice")
    web.nginx.wait_body("shop.alice.example.com", "wsgi alice")
    # bob may not take a subdomain of alice's wildcard, exact or wildcard
    web.write_tenant("bob", app_tenant(20002, """\
apps:
  - { name: web, type: wsgi, module: "hello:application", chdir: /home/bob/app,
      domains: [shop.alice.example.com] }
  - { name: two, type: wsgi, module: "hello:application", chdir: /home/bob/app,
      domains: ["*.eu.alice.example.com"] }
  - { name: own, type: wsgi, module: "hello:application", chdir: /home/bob/app,
      domains: [alice.example.com] }
"""))
    wait_for(lambda: "domain 'shop.alice.example.com' falls under '*.alice.example.com' of tenant "
             "alice (app web); app web is not routed" in web.log_text(), what="conflict")
    wait_for(lambda: "domain '*.eu.alice.example.com' falls under '*.alice.example.com'" in web.log_text(),
             what="wildcard conflict")
    running(web, "bob")
    # the bare name is not under the wildcard: bob may have it
    web.nginx.wait_body("alice.example.com", "wsgi bob")
    assert "wsgi alice" in web.nginx.get("shop.alice.example.com")[1]
    assert "wsgi alice" in web.nginx.get("x.eu.alice.example.com")[1]


# ---------------------------------------------------------------- live reload

def test_editing_a_daemon_restarts_only_that_daemon(web):
    home(web, "alice", 20001, {"app/hello.py": WSGI_APP})
    base = """\
apps:
  - { name: web, type: wsgi, module: "hello:application", chdir: /home/alice/app,
      domains: [alice.example.com] }
daemons:
  - { name: one, command: sleep 1001 }
  - { name: two, command: sleep %d }
cron:
  - "0 0 1 1 * echo never"
"""
    web.write_tenant("alice", app_tenant(20001, base % 2002))
    init = running(web, "alice")
    web.nginx.wait_body("alice.example.com", "wsgi")
    app = wait_starts(web, "alice", "web", 1)
    one = wait_starts(web, "alice", "one", 1)
    two = wait_starts(web, "alice", "two", 1)
    web.write_tenant("alice", app_tenant(20001, base % 3003))
    wait_for(lambda: "alice: reloaded live" in web.log_text(), what="live reload")
    two2 = wait_starts(web, "alice", "two", 2)
    assert two2[0] == two[0] and two2[1] != two[0]
    r = web.enter("alice", "cat", f"/proc/{two2[1]}/cmdline")
    assert r.stdout.split("\0")[:2] == ["sleep", "3003"]
    time.sleep(0.5)
    assert starts(web, "alice", "web") == app, "the app kept running"
    assert starts(web, "alice", "one") == one, "the other daemon kept running"
    s = web.status("alice")
    assert s["pid"] == init and s["restarts"] == 0, "the tenant was not restarted"
    # only a domain changes: the map follows, nothing restarts
    web.write_tenant("alice", app_tenant(20001, (base % 3003).replace(
        "domains: [alice.example.com]", "domains: [alice.example.com, new.example.com]")))
    web.nginx.wait_body("new.example.com", "wsgi alice")
    assert starts(web, "alice", "web") == app
    # removing a daemon stops it; the rest stays
    web.write_tenant("alice", app_tenant(20001, (base % 3003).replace(
        "  - { name: one, command: sleep 1001 }\n", "")))
    wait_for(lambda: "removed from the tenant file" in log_of(web, "alice", "one"), what="one removed")
    assert "sleep 1001" not in web.enter("alice", "ps", "-eo", "args").stdout.splitlines()
    assert starts(web, "alice", "web") == app
    assert web.status("alice")["pid"] == init


def test_changing_env_restarts_every_unit_and_limits_apply_live(plain):
    base = """\
env: { GREETING: %s }
daemons:
  - { name: greeter, command: "echo hello $GREETING; exec sleep 1000" }
"""
    plain.write_tenant("alice", app_tenant(20001, base % "one"))
    init = running(plain, "alice")
    wait_for(lambda: "hello one" in log_of(plain, "alice", "greeter"), what="first greeting")
    plain.write_tenant("alice", app_tenant(20001, base % "two"))
    wait_for(lambda: "hello two" in log_of(plain, "alice", "greeter"), what="new environment")
    # the shell sessions see it too
    assert plain.enter("alice", "sh", "-c", "echo $GREETING").stdout.strip() == "two"
    # limits: the cgroup changes, the tenant keeps running
    plain.write_tenant("alice", (app_tenant(20001, base % "two")).replace("memory: 512M", "memory: 300M"))
    wait_for(lambda: plain.log_text().count("alice: reloaded live") >= 2, what="limits reload")
    dirs = [p for p in plain.cgroup_dirs("alice") if (p / "memory.max").exists() or
            (p / "memory.limit_in_bytes").exists()]
    assert dirs
    f = dirs[0] / "memory.max" if (dirs[0] / "memory.max").exists() else dirs[0] / "memory.limit_in_bytes"
    assert int(f.read_text()) == 300 * 1024 * 1024
    assert plain.status("alice")["pid"] == init
    # the hostname cannot change live: a restart
    plain.write_tenant("alice", app_tenant(20001, base % "two") + "hostname: other\n")
    wait_for(lambda: (s := plain.status("alice")) and s["pid"] != init and s["state"] == "running",
             what="restart for a new hostname")


def uwsgi_get(path, host="switch.example.com", timeout=5.0):
    """One uwsgi-protocol request on the app's socket, as nginx makes it.
    Returns the response bytes; raises OSError when the socket refuses."""
    vars_ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "REQUEST_URI": "/", "QUERY_STRING": "",
             "SERVER_NAME": host, "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
             "HTTP_HOST": host}
    body = b"".join(len(k).to_bytes(2, "little") + k.encode() + len(v).to_bytes(2, "little") +
                    v.encode() for k, v in vars_.items())
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(b"\0" + len(body).to_bytes(2, "little") + b"\0" + body)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def uwsgi_body(path):
    """The body the app answers with, or None (not answering yet)."""
    try:
        out = uwsgi_get(path)
    except OSError:
        return None
    head, _, body = out.partition(b"\r\n\r\n")
    return body.decode() if b" 200 " in head.split(b"\r\n")[0] else None


SWITCH_APP = '''\
import os
def application(env, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("one %s\\n" % os.getpid()).encode()]
def application2(env, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("two %s\\n" % os.getpid()).encode()]
'''


def test_editing_an_app_switches_without_a_gap(plain):
    """The new instance starts beside the old one and takes the socket once
    its app is loaded: a client polling the socket all through the edit
    gets an answer every time, first the old app's, then the new one's,
    never a refusal. The other app of the tenant is not touched."""
    home(plain, "alice", 20001, {"app/hello.py": SWITCH_APP})
    base = """\
apps:
  - { name: web, type: wsgi, module: "hello:%s", chdir: /home/alice/app }
  - { name: other, type: wsgi, module: "hello:application", chdir: /home/alice/app }
"""
    plain.write_tenant("alice", app_tenant(20001, base % "application"))
    init = running(plain, "alice")
    run = plain.state / "tenants" / "alice" / "run"
    wait_for(lambda: uwsgi_body(run / "web.sock"), what="the app answering")
    first = wait_starts(plain, "alice", "web", 1)
    other = wait_starts(plain, "alice", "other", 1)
    answers, failures = [], []
    plain.write_tenant("alice", app_tenant(20001, base % "application2"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            out = uwsgi_get(run / "web.sock")
        except OSError as e:
            failures.append(repr(e))
            continue
        if not out.startswith(b"HTTP/1.1 200") and not out.startswith(b"HTTP/1.0 200"):
            failures.append(out[:80])
            continue
        answers.append(out.split(b"\r\n\r\n", 1)[1].split()[0].decode())
        if answers[-1] == "two" and answers.count("two") >= 50:
            break
        time.sleep(0.002)
    assert not failures, failures[:5]
    assert answers and answers[0] == "one" and answers[-1] == "two", answers[:3]
    # one switch: old answers, then only new ones
    k = answers.index("two")
    assert set(answers[:k]) == {"one"} and set(answers[k:]) == {"two"}
    # the old instance goes (after draining) and its exit leaves the socket alone
    wait_for(lambda: "took over the socket" in log_of(plain, "alice", "web"), what="switch noted")
    ps = lambda: plain.enter("alice", "ps", "-eo", "pid=").stdout.split()
    wait_for(lambda: str(first[0]) not in ps(), what="the old instance gone")
    time.sleep(1.5)
    assert uwsgi_body(run / "web.sock").startswith("two")
    assert not [p for p in run.iterdir() if p.name.startswith(".web.")], list(run.iterdir())
    assert starts(plain, "alice", "other") == other, "the other app kept running"
    assert plain.status("alice")["pid"] == init


def test_one_worker_is_one_process_and_the_master_comes_on_request(plain):
    """One worker: uWSGI runs as a single process (the init supervises it),
    which still reports itself up and is restarted when killed. Two workers,
    or UWSGI_MASTER in env, get uWSGI's master and its workers; so does
    UWSGI_PROCESSES in env, which without a master would be processes that
    nobody respawns (the file's `workers` still sets their number)."""
    for name, uid in (("alice", 20001), ("bob", 20002), ("carol", 20003), ("dave", 20004)):
        home(plain, name, uid, {"app/hello.py": WSGI_APP})
    app = 'apps:\n  - { name: web, type: wsgi, module: "hello:application", chdir: /home/%s/app%s }\n'
    plain.write_tenant("alice", app_tenant(20001, app % ("alice", "")))
    plain.write_tenant("bob", app_tenant(20002, app % ("bob", ", workers: 2")))
    plain.write_tenant("carol", app_tenant(20003, 'env: { UWSGI_MASTER: "1" }\n' + app % ("carol", "")))
    plain.write_tenant("dave", app_tenant(20004, 'env: { UWSGI_PROCESSES: "2" }\n' + app % ("dave", "")))

    def uwsgis(name):
        out = plain.enter(name, "ps", "-eo", "pid=,ppid=,args=").stdout
        return {int(f[0]): int(f[1]) for f in (l.split(None, 2) for l in out.splitlines())
                if len(f) == 3 and f[2].startswith("/usr/bin/uwsgi")}

    for name, n in (("alice", 1), ("bob", 3), ("carol", 2), ("dave", 2)):
        running(plain, name)
        sock = plain.state / "tenants" / name / "run" / "web.sock"
        wait_for(lambda: uwsgi_body(sock), what=f"{name}'s app answering")
        wait_for(lambda: "answering, " in log_of(plain, name, "web"), what=f"{name}'s app noted up")
        first = wait_starts(plain, name, "web", 1)[0]
        procs = wait_for(lambda: (u := uwsgis(name)) and len(u) == n and u, what=f"{n} uwsgi in {name}")
        assert first in procs, (first, procs)
        # the leader is the one the init started; the others are its workers
        assert all(pp == first for p, pp in procs.items() if p != first), procs
        # by the argv the init gave it, not by what uWSGI made of the env
        cmdline = plain.enter(name, "cat", f"/proc/{first}/cmdline").stdout.split("\0")
        assert ("--master" in cmdline) == (n > 1), (name, cmdline)
    # the single process, killed, comes back and answers again
    first = starts(plain, "alice", "web")[0]
    assert plain.enter("alice", "/bin/kill", "-9", str(first)).returncode == 0
    again = wait_starts(plain, "alice", "web", 2)[1]
    sock = plain.state / "tenants" / "alice" / "run" / "web.sock"
    wait_for(lambda: (b := uwsgi_body(sock)) and str(again) in b, what="the new instance answering")
    wait_for(lambda: log_of(plain, "alice", "web").count("answering, ") == 2, what="second start noted up")


def test_an_edit_that_breaks_the_app_keeps_the_old_one_serving(plain):
    home(plain, "alice", 20001, {"app/hello.py": SWITCH_APP})
    base = """\
apps:
  - { name: web, type: wsgi, module: "%s", chdir: /home/alice/app }
"""
    plain.write_tenant("alice", app_tenant(20001, base % "hello:application"))
    running(plain, "alice")
    sock = plain.state / "tenants" / "alice" / "run" / "web.sock"
    wait_for(lambda: uwsgi_body(sock), what="the app answering")
    plain.write_tenant("alice", app_tenant(20001, base % "nosuchmodule:application"))
    wait_for(lambda: "restarting in" in log_of(plain, "alice", "web"), what="the new instance failing")
    # the old instance still answers, with the old code
    for _ in range(20):
        assert (uwsgi_body(sock) or "").startswith("one")
        time.sleep(0.05)
    # a fixed file switches
    plain.write_tenant("alice", app_tenant(20001, base % "hello:application2"))
    wait_for(lambda: (uwsgi_body(sock) or "").startswith("two"), what="the fix")


SLOW_APP = '''\
import time
time.sleep(%s)          # a slow import: the app is up this long after uWSGI starts
def application(env, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"slow\\n"]
'''


def test_tenants_start_a_few_at_a_time(debian):
    """launcher.start_concurrency: 1. Three tenants written at once, each
    with an app that takes 1.5 s to load: a start holds the one slot until
    its app answers, so the next init is cloned only then and the three
    apps come up one after the other; the tenants waiting show as
    starting, with no init yet. Each app's log says when it answered."""
    h = start_host(debian, extra_host="launcher: {start_concurrency: 1}\n")
    names = ("ann", "ben", "cid")
    try:
        for i, n in enumerate(names):
            home(h, n, 20011 + i, {"app/hello.py": SLOW_APP % 1.5})
        for i, n in enumerate(names):
            h.write_tenant(n, app_tenant(20011 + i, f"""\
apps:
  - {{ name: web, type: wsgi, module: "hello:application", chdir: /home/{n}/app }}
"""))
        socks = {n: h.state / "tenants" / n / "run" / "web.sock" for n in names}
        answered, queued_seen = {}, False
        deadline = time.monotonic() + 90
        while len(answered) < len(names) and time.monotonic() < deadline:
            listed = {t["name"]: t for t in h.tenants_json()}
            with_init = [n for n in names if int(listed.get(n, {}).get("pid", 0) or 0)]
            waiting = [n for n in names if n in listed and not int(listed[n].get("pid", 0) or 0)
                       and listed[n]["state"] == "starting"]
            # never two starts at once: an init without an answering app is alone
            loading = [n for n in with_init if n not in answered]
            assert len(loading) <= 1, (loading, answered, listed)
            if loading and waiting:
                queued_seen = True
            for n in names:
                if n not in answered and uwsgi_body(socks[n]) == "slow\n":
                    answered[n] = time.monotonic()
            time.sleep(0.05)
        assert len(answered) == len(names), (answered, h.log_text()[-3000:])
        assert queued_seen, "no tenant was seen waiting for the start slot"
        times = sorted(answered.values())
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert all(g >= 1.2 for g in gaps), gaps     # each waited for the app before it
        for n in names:
            assert re.search(r"answering, \d+ ms after its start", log_of(h, n, "web")), log_of(h, n, "web")
            assert not [p for p in socks[n].parent.iterdir() if p.name.startswith(".")]
    finally:
        stop_host(h)


def test_a_start_that_never_ends_gives_its_slot_up(debian):
    """An app that never comes up does not hold the start slot for ever:
    after 10 s the next tenant starts, and the launcher says why."""
    h = start_host(debian, extra_host="launcher: {start_concurrency: 1}\n")
    try:
        home(h, "hang", 20021, {"app/hello.py": SLOW_APP % 120})
        h.write_tenant("hang", app_tenant(20021, """\
apps:
  - { name: web, type: wsgi, module: "hello:application", chdir: /home/hang/app }
"""))
        wait_for(lambda: int(h.status("hang")["pid"]), what="hang's init")
        t0 = time.monotonic()
        h.write_tenant("next", app_tenant(20022, ""))
        time.sleep(3)
        s = h.status("next")
        assert s["state"] == "starting" and not int(s["pid"]), s
        # stopped while it waits: it leaves the queue; started again: back in it
        h.ctl("stop", "next")
        assert h.status("next")["state"] == "stopped"
        time.sleep(0.5)
        assert h.status("next")["state"] == "stopped"
        h.ctl("start", "next")
        s = h.status("next")
        assert s["state"] == "starting" and not int(s["pid"]), s
        h.wait_state("next", "running", 30)
        took = time.monotonic() - t0
        assert 8.5 <= took < 25, took
        assert "hang: apps not up 10 s after the start; the next tenant may start" in h.log_text()
    finally:
        stop_host(h)


def test_removing_a_tenant_with_an_app_ends_it_at_once(plain):
    """uWSGI's master idles a second after SIGTERM; a removed tenant does
    not wait for it: every process is gone well within that second, and
    its cgroups follow."""
    home(plain, "alice", 20001, {"app/hello.py": SWITCH_APP})
    plain.write_tenant("alice", app_tenant(20001, """\
apps:
  - { name: web, type: wsgi, module: "hello:application", chdir: /home/alice/app, workers: 2 }
"""))
    running(plain, "alice")
    sock = plain.state / "tenants" / "alice" / "run" / "web.sock"
    wait_for(lambda: uwsgi_body(sock), what="the app answering")
    cg = plain.cgroup_dirs("alice")
    pids = set()
    for d in cg:
        if (d / "cgroup.procs").exists():
            pids.update(int(x) for x in (d / "cgroup.procs").read_text().split())
    assert len(pids) >= 4, pids           # the init, the uWSGI master, two workers

    def alive(p):
        try:
            with open(f"/proc/{p}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False
    t0 = time.monotonic()
    plain.remove_tenant("alice")
    wait_for(lambda: not any(alive(p) for p in pids), 10, interval=0.005, what="every process gone")
    took = time.monotonic() - t0
    assert took < 0.8, f"{took:.3f} s"
    wait_for(lambda: not any(p.exists() for p in cg), what="cgroups removed")
