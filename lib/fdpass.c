/* fdpass: file descriptors over SOCK_SEQPACKET with SCM_RIGHTS.
 *
 * The receiving side treats the peer as hostile: whatever arrives with a
 * packet (too many fds, truncated control data, other control messages)
 * is closed before an error is returned, so a bad peer cannot make us
 * leak descriptors. */
#include "fdpass.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Enough room for FDPASS_MAX_ANY fds, aligned as cmsg(3) requires. */
union fdpass_cbuf {
	char buf[CMSG_SPACE(sizeof(int) * FDPASS_MAX_ANY)];
	struct cmsghdr align;
};

int fdpass_send(int sock, const void *buf, size_t len, const int *fds, size_t nfds)
{
	union fdpass_cbuf cbuf;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (nfds > FDPASS_MAX_ANY)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *c;

		memset(&cbuf, 0, sizeof cbuf);
		msg.msg_control = cbuf.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	/* SEQPACKET sends whole packets or nothing; anything else is a bug. */
	return (size_t)n == len ? 0 : -EIO;
}

void fdpass_close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
}

/* Take every fd out of the control data, closing any that do not fit.
 * Returns 0, or -EBADMSG when something other than fds came along. */
static int fdpass_collect(struct msghdr *msg, int *fds, size_t max_fds, size_t *nfds)
{
	int ret = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			ret = -EBADMSG;
			continue;
		}
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
			if (*nfds < max_fds) {
				fds[(*nfds)++] = fd;
			} else {
				close(fd);
				ret = -EBADMSG;
			}
		}
	}
	return ret;
}

ssize_t fdpass_recv(int sock, void *buf, size_t cap, int *fds, size_t max_fds, size_t *nfds)
{
	union fdpass_cbuf cbuf;
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf.buf, .msg_controllen = sizeof cbuf.buf,
	};
	ssize_t n;
	int ret;

	*nfds = 0;
	do
		n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	ret = fdpass_collect(&msg, fds, max_fds, nfds);
	if (ret == 0 && (msg.msg_flags & MSG_CTRUNC))
		ret = -EBADMSG;
	if (ret == 0 && (msg.msg_flags & MSG_TRUNC))
		ret = -EMSGSIZE;
	if (ret < 0) {
		fdpass_close_all(fds, *nfds);
		*nfds = 0;
		return ret;
	}
	return n;
}

static int fdpass_check_pipe(int fd, int accmode)
{
	struct stat st;
	int fl;

	if (fstat(fd, &st) < 0)
		return -errno;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	return S_ISFIFO(st.st_mode) && (fl & O_ACCMODE) == accmode ? 0 : -EPROTOTYPE;
}

static int fdpass_check_tcp(int fd)
{
	int domain, type, proto;
	socklen_t l1 = sizeof domain, l2 = sizeof type, l3 = sizeof proto;

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l1) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l2) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l3) < 0)
		return errno == ENOTSOCK ? -EPROTOTYPE : -errno;
	if ((domain != AF_INET && domain != AF_INET6) || type != SOCK_STREAM || proto != IPPROTO_TCP)
		return -EPROTOTYPE;
	return 0;
}

/* TIOCGPTN answers only on a pty master; the number it returns belongs
 * to the tenant's devpts and means nothing here, so it is not kept. */
static int fdpass_check_ptm(int fd)
{
	struct stat st;
	unsigned int ptn;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISCHR(st.st_mode) || ioctl(fd, TIOCGPTN, &ptn) < 0)
		return -EPROTOTYPE;
	return 0;
}

int fdpass_check(int fd, enum fdpass_kind kind)
{
	switch (kind) {
	case FDPASS_PTY_MASTER: return fdpass_check_ptm(fd);
	case FDPASS_PIPE_READ: return fdpass_check_pipe(fd, O_RDONLY);
	case FDPASS_PIPE_WRITE: return fdpass_check_pipe(fd, O_WRONLY);
	case FDPASS_TCP: return fdpass_check_tcp(fd);
	}
	return -EINVAL;
}
