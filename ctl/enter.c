/* fiefctl enter: a shell or a command inside a running tenant.
 *
 * Asks the tenant's session agent for a pty session (stdin is a terminal)
 * or a pipes session (it is not), gets the pty master or the three pipes
 * back over the socket, and moves bytes between them and our own stdio
 * until the agent reports the exit status, which becomes ours. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "fdpass.h"
#include "proto.h"
#include "value.h"

#define ENTER_EXIT_ERROR 255       /* our own failure, as ssh does */
#define ENTER_REPLY_TIMEOUT_MS 30000
#define ENTER_PTY_QUIET_MS 100     /* after the exit: output still on its way */
#define ENTER_PTY_LINGER_MS 2000   /* after the exit: give up on a chatty pty */
#define ENTER_BUF (64 * 1024)

static const char enter_usage[] =
	"usage: fiefctl enter [-T] NAME [-- COMMAND [ARG...]]\n"
	"\n"
	"Run a login shell, or COMMAND, inside the running tenant NAME, as the\n"
	"tenant, in its home. With a terminal on stdin the session gets a pty\n"
	"(raw mode, window size followed); otherwise, or with -T, stdin, stdout\n"
	"and stderr are relayed through pipes and stdin's EOF reaches the\n"
	"command. The arguments are quoted and run by the tenant's shell.\n"
	"\n"
	"Exit status: the command's, 128+N when signal N ended it, 255 when\n"
	"fiefctl itself failed, 2 for a bad command line (and for --json:\n"
	"a session has no JSON form). Needs root.\n";

/* One direction of the relay: bytes read from `from` wait in buf until
 * `to` takes them. The child-facing fds are non-blocking, so a child that
 * stops reading can never wedge the other direction. */
struct enter_relay {
	int from, to;
	bool eof;            /* nothing more will be read */
	bool close_to;       /* at EOF, close `to`: the child's stdin sees EOF */
	bool close_from;     /* `to` broke: close `from` so the child sees EPIPE */
	bool done;           /* EOF reached and everything written */
	size_t off, len;
	char buf[ENTER_BUF];
};

struct enter {
	const char *name;
	char *command;
	bool pty;
	int sock, sfd;
	struct termios saved;
	bool raw;
	bool exited, agent_gone;
	struct proto_exit status;
	struct timespec exited_at, last_output;
	struct enter_relay in, out, err;   /* err: pipes only */
};

static struct enter E;

/* ---- command line ---- */

/* A word the shell reads literally, so it needs no quotes. */
static bool enter_word_plain(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./=:,+@%-",
			    *s))
			return false;
	return true;
}

/* Join argv into one shell command: each argument quoted in '...', with
 * every ' written as '\'' so the shell gives back the exact bytes. */
static char *enter_join(char **argv, int argc)
{
	size_t cap = 1, len = 0;
	char *cmd;

	for (int i = 0; i < argc; i++)
		cap += strlen(argv[i]) * 4 + 3;
	cmd = malloc(cap);
	if (!cmd)
		return NULL;
	for (int i = 0; i < argc; i++) {
		const char *s = argv[i];
		if (i)
			cmd[len++] = ' ';
		if (enter_word_plain(s)) {
			len += (size_t)sprintf(cmd + len, "%s", s);
			continue;
		}
		cmd[len++] = '\'';
		for (; *s; s++)
			if (*s == '\'')
				len += (size_t)sprintf(cmd + len, "'\\''");
			else
				cmd[len++] = *s;
		cmd[len++] = '\'';
	}
	cmd[len] = 0;
	return cmd;
}

/* ---- talking to the agent ---- */

static int enter_agent_path(struct ctl *ctl, char *path, size_t len)
{
	struct config_errors errs;
	struct config_host *h = config_host_load(ctl->host_path, &errs);
	int n;

	if (!h) {
		config_errors_print(&errs, stderr);
		return -1;
	}
	n = snprintf(path, len, "%s/agents/%s.sock", h->state_dir, E.name);
	config_host_free(h);
	if (n < 0 || (size_t)n >= len) {
		fprintf(stderr, "fiefctl: the agent socket path is too long\n");
		return -1;
	}
	return 0;
}

static int enter_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		perror("fiefctl: socket");
		return -1;
	}
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
		return fd;
	if (errno == ENOENT || errno == ECONNREFUSED)
		fprintf(stderr, "fiefctl: tenant %s is not running (no agent socket)\n", E.name);
	else if (errno == EACCES || errno == EPERM)
		fprintf(stderr, "fiefctl: %s: permission denied (run fiefctl enter as root)\n", path);
	else
		fprintf(stderr, "fiefctl: %s: %s\n", path, strerror(errno));
	close(fd);
	return -1;
}

static int enter_send(const struct proto_msg *m)
{
	static uint8_t buf[PROTO_MAX_MSG];
	ssize_t n = proto_encode(m, buf, sizeof buf);
	int r;

	if (n < 0) {
		fprintf(stderr, "fiefctl: cannot build the request: %s\n", proto_strerror((int)n));
		return -1;
	}
	r = fdpass_send(E.sock, buf, (size_t)n, NULL, 0);
	if (r < 0 && r != -EPIPE && r != -ECONNRESET) {
		fprintf(stderr, "fiefctl: cannot talk to the agent: %s\n", strerror(-r));
		return -1;
	}
	return 0;
}

/* Forward LANG and LC_*, as ssh does by default; the agent adds the rest. */
static void enter_env(struct proto_env *env)
{
	extern char **environ;

	env->n = 0;
	for (char **e = environ; *e && env->n < PROTO_MAX_ENV; e++)
		if ((!strncmp(*e, "LANG=", 5) || !strncmp(*e, "LC_", 3)) && proto_env_check(*e) == 0)
			env->v[env->n++] = *e;
}

static int enter_request(void)
{
	struct proto_msg m = { .type = E.pty ? PROTO_PTY : PROTO_PIPES };
	struct proto_env *env = E.pty ? &m.u.pty.env : &m.u.pipes.env;

	enter_env(env);
	if (E.pty) {
		struct winsize ws = { 0 };
		const char *term = getenv("TERM");

		ioctl(STDIN_FILENO, TIOCGWINSZ, &ws);
		m.u.pty = (struct proto_pty){
			.term = term && proto_term_ok(term) ? term : "dumb",
			.rows = ws.ws_row <= PROTO_MAX_ROWS ? ws.ws_row : PROTO_MAX_ROWS,
			.cols = ws.ws_col <= PROTO_MAX_COLS ? ws.ws_col : PROTO_MAX_COLS,
			.xpixel = ws.ws_xpixel <= PROTO_MAX_PIXELS ? ws.ws_xpixel : 0,
			.ypixel = ws.ws_ypixel <= PROTO_MAX_PIXELS ? ws.ws_ypixel : 0,
			.command = E.command, .env = *env,
		};
	} else {
		m.u.pipes.command = E.command;
	}
	return enter_send(&m);
}

/* The agent is trusted no more than it must be: exactly the fds that the
 * request calls for, each of the right kind. */
static int enter_check_fds(const struct proto_msg *m, int *fds, size_t nfds)
{
	static const enum fdpass_kind pipes[] = { FDPASS_PIPE_WRITE, FDPASS_PIPE_READ,
						  FDPASS_PIPE_READ };
	size_t want = E.pty ? 1 : 3;

	if (m->u.ok.nfds != want || nfds != want)
		return -1;
	for (size_t i = 0; i < nfds; i++)
		if (fdpass_check(fds[i], E.pty ? FDPASS_PTY_MASTER : pipes[i]) < 0)
			return -1;
	return 0;
}

static int enter_await_ok(int *fds)
{
	static uint8_t buf[PROTO_MAX_MSG + 1];
	struct pollfd p = { .fd = E.sock, .events = POLLIN };
	struct proto_msg m;
	size_t nfds;
	ssize_t n;

	if (poll(&p, 1, ENTER_REPLY_TIMEOUT_MS) == 0) {
		fprintf(stderr, "fiefctl: tenant %s: the agent did not answer\n", E.name);
		return -1;
	}
	n = fdpass_recv(E.sock, buf, sizeof buf, fds, FDPASS_MAX, &nfds);
	if (n <= 0) {
		fprintf(stderr, "fiefctl: tenant %s: no answer from the agent%s%s\n", E.name,
			n < 0 ? ": " : "", n < 0 ? strerror((int)-n) : "");
		return -1;
	}
	if (proto_decode_reply(buf, (size_t)n, &m) < 0 ||
	    (m.type == PROTO_OK && enter_check_fds(&m, fds, nfds) < 0)) {
		fprintf(stderr, "fiefctl: tenant %s: malformed answer from the agent\n", E.name);
		fdpass_close_all(fds, nfds);
		return -1;
	}
	if (m.type == PROTO_ERROR) {
		fprintf(stderr, "fiefctl: tenant %s: %s\n", E.name, m.u.error.msg);
		fdpass_close_all(fds, nfds);
		return -1;
	}
	if (m.type != PROTO_OK) {
		fprintf(stderr, "fiefctl: tenant %s: unexpected %s from the agent\n", E.name,
			proto_type_name(m.type));
		fdpass_close_all(fds, nfds);
		return -1;
	}
	return 0;
}

/* A packet while the session runs: EXIT, or the agent going away. */
static void enter_agent_readable(void)
{
	uint8_t buf[512];
	struct proto_msg m;
	int none[1];
	size_t nfds;
	ssize_t n = fdpass_recv(E.sock, buf, sizeof buf, none, 0, &nfds);

	if (n == -EAGAIN)
		return;
	if (n > 0 && proto_decode_reply(buf, (size_t)n, &m) == 0 && m.type == PROTO_EXIT) {
		E.exited = true;
		E.status = m.u.exit;
		clock_gettime(CLOCK_MONOTONIC, &E.exited_at);
		return;
	}
	if (n > 0)
		fprintf(stderr, "fiefctl: tenant %s: unexpected message from the agent\n", E.name);
	E.agent_gone = true;
}

static void enter_signal_child(int sig)
{
	struct proto_msg m = { .type = PROTO_SIGNAL, .u.signo = sig };

	if (!E.exited && !E.agent_gone)
		enter_send(&m);
}

/* ---- the terminal ---- */

static void enter_raw(void)
{
	struct termios raw = E.saved;

	cfmakeraw(&raw);
	if (tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) == 0)
		E.raw = true;
}

static void enter_restore(void)
{
	if (E.raw)
		tcsetattr(STDIN_FILENO, TCSADRAIN, &E.saved);
	E.raw = false;
}

static void enter_winch(void)
{
	struct winsize ws;

	if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
		ioctl(E.out.from, TIOCSWINSZ, &ws);
}

/* Signals arrive on a signalfd, so none interrupts the relay half-way.
 * Returns a signal that should end fiefctl, or 0. */
static int enter_signal_readable(void)
{
	struct signalfd_siginfo si;
	int end = 0;

	while (read(E.sfd, &si, sizeof si) == (ssize_t)sizeof si) {
		int s = (int)si.ssi_signo;

		switch (s) {
		case SIGWINCH:
			if (E.pty)
				enter_winch();
			break;
		case SIGCONT:
			/* Back from a stop: the shell may have reset the terminal. */
			if (E.raw)
				enter_raw();
			break;
		case SIGHUP:
			end = s;
			break;
		default:
			/* With a pty the keyboard's signals travel as bytes, and a
			 * signal sent to fiefctl ends it (the agent then hangs up
			 * on the session); with pipes it is passed on. */
			if (E.pty)
				end = s;
			else
				enter_signal_child(s);
		}
	}
	return end;
}

static int enter_signals(void)
{
	static const int sigs[] = { SIGINT,  SIGTERM, SIGHUP,   SIGQUIT,
				    SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT };
	sigset_t set;

	sigemptyset(&set);
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaddset(&set, sigs[i]);
	signal(SIGPIPE, SIG_IGN);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	E.sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	return E.sfd < 0 ? -1 : 0;
}

/* ---- relaying ---- */

static void enter_relay_init(struct enter_relay *r, int from, int to, bool close_to,
			     bool close_from)
{
	r->from = from;
	r->to = to;
	r->close_to = close_to;
	r->close_from = close_from;
}

static void enter_relay_finish(struct enter_relay *r)
{
	if (!r->eof || r->len || r->done)
		return;
	r->done = true;
	if (r->close_to && r->to >= 0) {
		close(r->to);
		r->to = -1;
	}
}

static void enter_relay_read(struct enter_relay *r)
{
	ssize_t n = read(r->from, r->buf, sizeof r->buf);

	if (n > 0) {
		r->off = 0;
		r->len = (size_t)n;
		clock_gettime(CLOCK_MONOTONIC, &E.last_output);
	} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		/* EIO is how a pty master says every slave is closed. */
		r->eof = true;
	}
	enter_relay_finish(r);
}

static void enter_relay_write(struct enter_relay *r)
{
	ssize_t n = write(r->to, r->buf + r->off, r->len - r->off);

	if (n >= 0) {
		r->off += (size_t)n;
		if (r->off == r->len)
			r->off = r->len = 0;
	} else if (errno != EAGAIN && errno != EINTR) {
		/* Nobody takes these bytes any more: drop them, and let the
		 * writer at the far end find out as it would in a pipeline. */
		r->off = r->len = 0;
		if (r->close_from && !r->eof) {
			close(r->from);
			r->from = -1;
			r->eof = true;
		}
	}
	enter_relay_finish(r);
}

/* Add the fd this relay waits on, if any. */
static void enter_relay_poll(struct enter_relay *r, struct pollfd *p, struct enter_relay **who,
			     size_t *n, bool reading)
{
	if (r->done)
		return;
	if (r->len && r->to >= 0)
		p[*n] = (struct pollfd){ .fd = r->to, .events = POLLOUT };
	else if (!r->eof && reading && r->from >= 0)
		p[*n] = (struct pollfd){ .fd = r->from, .events = POLLIN };
	else
		return;
	who[(*n)++] = r;
}

static long enter_ms_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

/* Done when the child has exited (or the agent is gone) and its output
 * has been written out: up to EOF for pipes; for a pty, up to EIO or a
 * quiet moment, since a background job may keep the slave open. */
static bool enter_finished(int *timeout)
{
	bool ended = E.exited || E.agent_gone;

	*timeout = -1;
	if (!ended)
		return false;
	if (!E.pty)
		return E.out.done && E.err.done;
	if (E.out.done || enter_ms_since(&E.exited_at) >= ENTER_PTY_LINGER_MS)
		return true;
	if (E.out.len == 0 && enter_ms_since(&E.last_output) >= ENTER_PTY_QUIET_MS &&
	    enter_ms_since(&E.exited_at) >= ENTER_PTY_QUIET_MS)
		return true;
	*timeout = ENTER_PTY_QUIET_MS;
	return false;
}

static int enter_relay_loop(void)
{
	struct enter_relay *relays[] = { &E.in, &E.out, &E.err }, *who[8];
	struct pollfd p[8];
	int timeout;

	while (!enter_finished(&timeout)) {
		bool ended = E.exited || E.agent_gone;
		size_t n = 0, nr;

		for (size_t i = 0; i < (E.pty ? 2u : 3u); i++)
			/* Once the child is gone, stdin has no one to go to. */
			enter_relay_poll(relays[i], p, who, &n, !(ended && relays[i] == &E.in));
		nr = n;
		p[n++] = (struct pollfd){ .fd = E.sfd, .events = POLLIN };
		if (!ended)
			p[n++] = (struct pollfd){ .fd = E.sock, .events = POLLIN };
		if (poll(p, n, timeout) < 0 && errno != EINTR)
			return -1;
		for (size_t i = 0; i < nr; i++)
			if (p[i].revents)
				(p[i].events == POLLOUT ? enter_relay_write
							: enter_relay_read)(who[i]);
		if (p[nr].revents) {
			int sig = enter_signal_readable();
			if (sig)
				return 128 + sig;
		}
		if (!ended && p[nr + 1].revents)
			enter_agent_readable();
	}
	return 0;
}

static int enter_session(void)
{
	int fds[FDPASS_MAX] = { -1, -1, -1 }, r;

	if (enter_request() < 0 || enter_await_ok(fds) < 0)
		return ENTER_EXIT_ERROR;
	for (int i = 0; i < (E.pty ? 1 : 3); i++)
		fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
	if (E.pty) {
		enter_relay_init(&E.in, STDIN_FILENO, fds[0], false, false);
		enter_relay_init(&E.out, fds[0], STDOUT_FILENO, false, false);
		if (tcgetattr(STDIN_FILENO, &E.saved) == 0)
			enter_raw();
	} else {
		enter_relay_init(&E.in, STDIN_FILENO, fds[0], true, false);
		enter_relay_init(&E.out, fds[1], STDOUT_FILENO, false, true);
		enter_relay_init(&E.err, fds[2], STDERR_FILENO, false, true);
	}
	clock_gettime(CLOCK_MONOTONIC, &E.last_output);
	r = enter_relay_loop();
	enter_restore();
	if (r != 0)
		return r < 0 ? ENTER_EXIT_ERROR : r;
	if (!E.exited) {
		fprintf(stderr, "fiefctl: tenant %s: the session ended without an exit status\n",
			E.name);
		return ENTER_EXIT_ERROR;
	}
	return proto_exit_code(&E.status);
}

static int enter_parse(int argc, char **argv, bool *no_pty)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "+Th", opts, NULL)) != -1) {
		switch (c) {
		case 'T': *no_pty = true; break;
		case 'h': fputs(enter_usage, stdout); exit(0);
		default: return -1;
		}
	}
	if (optind == argc)
		return -1;
	E.name = argv[optind++];
	if (optind < argc && !strcmp(argv[optind], "--"))
		optind++;
	E.command = enter_join(argv + optind, argc - optind);
	return E.command ? 0 : -1;
}

int ctl_enter(struct ctl *ctl, int argc, char **argv)
{
	char path[sizeof ((struct sockaddr_un *)0)->sun_path];
	bool no_pty = false;
	int ret;

	if (enter_parse(argc, argv, &no_pty) < 0) {
		fputs(enter_usage, stderr);
		return CTL_EXIT_USAGE;
	}
	/* The session's bytes are the command's own: nothing to put in JSON. */
	if (ctl->json)
		return ctl_fail(ctl, CTL_EXIT_USAGE, "enter is interactive and has no --json output "
				"(it relays the command's own stdout and stderr)");
	if (!value_is_tenant_name(E.name)) {
		fprintf(stderr, "fiefctl: '%s' is not a tenant name\n", E.name);
		return CTL_EXIT_USAGE;
	}
	if (strlen(E.command) > PROTO_MAX_COMMAND) {
		fprintf(stderr, "fiefctl: the command is longer than %d bytes\n", PROTO_MAX_COMMAND);
		return CTL_EXIT_USAGE;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "fiefctl: enter must be run as root\n");
		return ENTER_EXIT_ERROR;
	}
	E.pty = !no_pty && isatty(STDIN_FILENO);
	E.sock = E.sfd = -1;
	if (enter_agent_path(ctl, path, sizeof path) < 0 || enter_signals() < 0)
		return ENTER_EXIT_ERROR;
	E.sock = enter_connect(path);
	if (E.sock < 0)
		return ENTER_EXIT_ERROR;
	ret = enter_session();
	close(E.sock);
	free(E.command);
	return ret;
}
