/* nat: nftables masquerade and IP forwarding for the tenant subnet.
 *
 * The rules live in a table of their own, so adding and removing them
 * never touches anyone else's ruleset, and the script first creates then
 * deletes that table before filling it: one atomic transaction that also
 * replaces whatever a crashed router left behind. */
#include "nat.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

#define NAT_FORWARD "/proc/sys/net/ipv4/ip_forward"
#define NAT_FORWARD6 "/proc/sys/net/ipv6/conf/all/forwarding"

/* Feed script to `nft -f -`; 0 when nft exited 0. */
static int nat_nft(const char *script)
{
	static const char *const paths[] = { "/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft" };
	int p[2], status;
	size_t len = strlen(script), off = 0;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		int e = -errno;
		close(p[0]);
		close(p[1]);
		return e;
	}
	if (pid == 0) {
		char *argv[] = { "nft", "-f", "-", NULL };
		char *envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
		dup2(p[0], STDIN_FILENO);
		signal(SIGPIPE, SIG_DFL);
		for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
			execve(paths[i], argv, envp);
		_exit(127);
	}
	close(p[0]);
	while (off < len) {
		ssize_t n = write(p[1], script + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(p[1]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EPROTO;
}

static int nat_forward_get(const char *path)
{
	char c = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (read(fd, &c, 1) != 1)
		c = 0;
	close(fd);
	return c == '1';
}

static int nat_forward_set(const char *path, int on)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, on ? "1\n" : "0\n", 2) != 2)
		r = -errno;
	close(fd);
	return r;
}

/* IPv6: the tenants' addresses are of a private subnet too (ULA in the
 * examples), so the way out is the same masquerade, in table ip6 fief. */
static int nat_setup6(const struct config_host *h, struct nat_state *st)
{
	struct cidr6 net = h->router.address6;
	char subnet[48], script[1024];
	int r;

	for (int i = 0, p = net.prefix; i < 16; i++, p -= 8)
		net.addr[i] &= p >= 8 ? 0xff : p <= 0 ? 0 : (uint8_t)(0xff << (8 - p));
	cidr6_format(&net, subnet, sizeof subnet);
	snprintf(script, sizeof script,
		 "table ip6 %s\n"
		 "delete table ip6 %s\n"
		 "table ip6 %s {\n"
		 "\tchain postrouting {\n"
		 "\t\ttype nat hook postrouting priority 100; policy accept;\n"
		 "\t\tip6 saddr %s oifname \"%s\" masquerade\n"
		 "\t}\n"
		 "}\n",
		 NAT_TABLE, NAT_TABLE, NAT_TABLE, subnet, h->router.nat.out_interface);
	if ((r = nat_nft(script)) < 0) {
		log_error_r(r, "nft: cannot add the IPv6 masquerade table");
		return -1;                       /* the caller cleans up */
	}
	st->table6_added = true;
	r = nat_forward_get(NAT_FORWARD6);
	if (r == 0) {
		if ((r = nat_forward_set(NAT_FORWARD6, 1)) < 0) {
			log_error_r(r, "cannot enable %s", NAT_FORWARD6);
			return -1;
		}
		st->forward6_enabled = true;
	} else if (r < 0) {
		log_error_r(r, "cannot read %s", NAT_FORWARD6);
		return -1;
	}
	log_info("NAT: masquerading %s on %s", subnet, h->router.nat.out_interface);
	return 0;
}

int nat_setup(const struct config_host *h, struct nat_state *st)
{
	const struct cidr *a = &h->router.address;
	struct cidr net = { a->addr & cidr_mask(a->prefix), a->prefix };
	char subnet[24], script[1024];
	int r;

	memset(st, 0, sizeof *st);
	if (!h->router.nat.enabled)
		return 0;
	cidr_format(&net, subnet, sizeof subnet);
	/* out_interface passed the loader's interface-name check: it cannot
	 * close the quotes. */
	snprintf(script, sizeof script,
		 "table ip %s\n"
		 "delete table ip %s\n"
		 "table ip %s {\n"
		 "\tchain postrouting {\n"
		 "\t\ttype nat hook postrouting priority 100; policy accept;\n"
		 "\t\tip saddr %s oifname \"%s\" masquerade\n"
		 "\t}\n"
		 "}\n",
		 NAT_TABLE, NAT_TABLE, NAT_TABLE, subnet, h->router.nat.out_interface);
	if ((r = nat_nft(script)) < 0) {
		log_error_r(r, "nft: cannot add the masquerade table");
		return -1;
	}
	st->table_added = true;
	r = nat_forward_get(NAT_FORWARD);
	if (r == 0) {
		if ((r = nat_forward_set(NAT_FORWARD, 1)) < 0) {
			log_error_r(r, "cannot enable %s", NAT_FORWARD);
			nat_cleanup(st);
			return -1;
		}
		st->forward_enabled = true;
	} else if (r < 0) {
		log_error_r(r, "cannot read %s", NAT_FORWARD);
		nat_cleanup(st);
		return -1;
	}
	log_info("NAT: masquerading %s on %s", subnet, h->router.nat.out_interface);
	return h->router.has_address6 ? nat_setup6(h, st) : 0;
}

void nat_cleanup(const struct nat_state *st)
{
	int r;

	if (st->table_added && (r = nat_nft("delete table ip " NAT_TABLE "\n")) < 0)
		log_warn_r(r, "nft: cannot delete table ip %s", NAT_TABLE);
	if (st->forward_enabled && (r = nat_forward_set(NAT_FORWARD, 0)) < 0)
		log_warn_r(r, "cannot restore %s", NAT_FORWARD);
	if (st->table6_added && (r = nat_nft("delete table ip6 " NAT_TABLE "\n")) < 0)
		log_warn_r(r, "nft: cannot delete table ip6 %s", NAT_TABLE);
	if (st->forward6_enabled && (r = nat_forward_set(NAT_FORWARD6, 0)) < 0)
		log_warn_r(r, "cannot restore %s", NAT_FORWARD6);
}
