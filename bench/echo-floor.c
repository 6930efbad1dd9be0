/* echo-floor: the keystroke round trip of bench/gateway-vs-sshd with no
 * ssh at all, as the floor under any server. The shape is the same: the
 * keystroke goes into a local pty, a client process reads it and sends it
 * over TCP on loopback, a server process writes it into a pty with cat
 * behind it (raw, no echo), and cat's echo comes back the same way. No
 * encryption, no protocol, one poll(2) loop per side.
 *
 *   echo-floor server PORT   accept one connection, relay it to the pty
 *   echo-floor client PORT   relay stdin and stdout to the connection
 *
 * The server prints READY through the pty once cat is behind it. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

/* Copy a_in -> b_out and b_in -> a_out until either side ends. */
static void relay(int a_in, int a_out, int b_in, int b_out)
{
	struct pollfd p[2] = { { .fd = a_in, .events = POLLIN }, { .fd = b_in, .events = POLLIN } };
	char buf[4096];

	for (;;) {
		if (poll(p, 2, -1) < 0)
			return;
		for (int i = 0; i < 2; i++) {
			ssize_t n;

			if (!p[i].revents)
				continue;
			n = read(p[i].fd, buf, sizeof buf);
			if (n <= 0 || write(i == 0 ? b_out : a_out, buf, (size_t)n) != n)
				return;
		}
	}
}

static void make_raw(int fd)
{
	struct termios t;

	if (tcgetattr(fd, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(fd, TCSANOW, &t);
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1, s, c, m;
	pid_t pid;

	if (argc != 3 || (strcmp(argv[1], "server") && strcmp(argv[1], "client"))) {
		fprintf(stderr, "usage: echo-floor server|client PORT\n");
		return 2;
	}
	sa.sin_port = htons((uint16_t)atoi(argv[2]));
	if ((s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return perror("socket"), 1;
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (!strcmp(argv[1], "client")) {
		make_raw(0);
		/* the server may not listen yet: 5 s at most */
		for (int i = 0; connect(s, (struct sockaddr *)&sa, sizeof sa) < 0; i++) {
			if (i == 200)
				return perror("connect"), 1;
			usleep(25000);
		}
		relay(0, 1, s, s);
		return 0;
	}
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(s, 1) < 0)
		return perror("bind"), 1;
	if ((c = accept4(s, NULL, NULL, SOCK_CLOEXEC)) < 0)
		return perror("accept"), 1;
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	pid = forkpty(&m, NULL, NULL, NULL);
	if (pid < 0)
		return perror("forkpty"), 1;
	if (pid == 0) {
		make_raw(0);
		if (write(1, "READY\n", 6) != 6)
			_exit(1);
		execl("/bin/cat", "cat", (char *)NULL);
		_exit(127);
	}
	relay(c, c, m, m);
	return 0;
}
