/* pty-floor: the pty output of bench/gateway-vs-sshd with no ssh at all,
 * as the ceiling over any server. COMMAND runs on a new pty, as on the
 * server side of `ssh -tt`, and everything the pty's master hands out is
 * copied to stdout, read the way a server reads it (poll, then read until
 * EAGAIN). No encryption, no protocol, no socket.
 *
 *   pty-floor COMMAND      run COMMAND with sh -c; exit with its status */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static char buf[256 * 1024];
	int master, slave, status;
	pid_t pid;

	if (argc != 2) {
		fprintf(stderr, "usage: pty-floor COMMAND\n");
		return 2;
	}
	if (openpty(&master, &slave, NULL, NULL, NULL) < 0) {
		perror("openpty");
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		setsid();
		ioctl(slave, TIOCSCTTY, 0);
		dup2(slave, 0);
		dup2(slave, 1);
		dup2(slave, 2);
		close(master);
		if (slave > 2)
			close(slave);
		execl("/bin/sh", "sh", "-c", argv[1], (char *)NULL);
		_exit(127);
	}
	close(slave);
	fcntl(master, F_SETFL, O_NONBLOCK);
	for (;;) {
		struct pollfd p = { .fd = master, .events = POLLIN };
		ssize_t n = 0;

		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			break;
		while ((n = read(master, buf, sizeof buf)) > 0)
			if (write_all(1, buf, (size_t)n) < 0)
				return 1;
		/* EIO: every slave is closed */
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			break;
	}
	if (waitpid(pid, &status, 0) < 0)
		return 1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
