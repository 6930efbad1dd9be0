/* fdpass: one SOCK_SEQPACKET message with up to FDPASS_MAX file
 * descriptors attached (SCM_RIGHTS), and checks of what arrived. */
#ifndef FIEF_FDPASS_H
#define FIEF_FDPASS_H

#include <stddef.h>
#include <sys/types.h>

#define FDPASS_MAX 3             /* what the agent protocol passes at most */
#define FDPASS_MAX_ANY 16        /* what one message may carry (the queues of a tun) */

/* Send len bytes with nfds (at most FDPASS_MAX_ANY) fds in one packet, never blocking and never
 * raising SIGPIPE. Returns 0 or -errno (-EAGAIN: the socket is full). */
int fdpass_send(int sock, const void *buf, size_t len, const int *fds, size_t nfds);

/* Receive one packet into buf without blocking. The fds that came with it
 * (O_CLOEXEC) go to fds[0..*nfds). Returns the packet size, 0 when the
 * peer has closed, or -errno:
 *   -EAGAIN    nothing to read
 *   -EMSGSIZE  the packet did not fit in cap (it is consumed)
 *   -EBADMSG   more than max_fds fds, truncated or foreign control data
 * On every error no fd is left open. */
ssize_t fdpass_recv(int sock, void *buf, size_t cap, int *fds, size_t max_fds, size_t *nfds);

/* Close fds[0..n) and set them to -1. */
void fdpass_close_all(int *fds, size_t n);

enum fdpass_kind {
	FDPASS_PTY_MASTER,    /* a /dev/ptmx open: TIOCGPTN answers */
	FDPASS_PIPE_READ,     /* a fifo opened for reading only */
	FDPASS_PIPE_WRITE,    /* a fifo opened for writing only */
	FDPASS_TCP,           /* an AF_INET/AF_INET6 SOCK_STREAM TCP socket */
};

/* Is fd what the peer said it is? 0 or -EPROTOTYPE (or -errno). */
int fdpass_check(int fd, enum fdpass_kind kind);

#endif
