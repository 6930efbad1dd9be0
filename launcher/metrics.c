/* metrics: Prometheus text exposition on metrics.listen (loopback by
 * default). The launcher answers for its tenants; counters of the router
 * and the gateway are added by metrics_extra(), read from their control
 * sockets at scrape time. One request per connection, then close. */
#include <arpa/inet.h>
#include <dirent.h>
#include <poll.h>
#include <sys/un.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cgroup.h"
#include "launcher.h"
#include "log.h"
#include "metrics.h"
#include "records.h"
#include "recserver.h"

#define METRICS_MAX_REQ 4096
#define METRICS_MAX_CONN 32
#define METRICS_TIMEOUT 5.0
#define METRICS_PEER_MAX (4u << 20)   /* bytes of text one peer may add */

static struct rec_server metrics_srv;

/* One family: HELP and TYPE, then a sample per tenant. */
static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void tenant_samples(FILE *f, struct launcher *L)
{
	static const char *const states[] = { "stopped", "starting", "running", "stopping", "backoff", "failed" };
	struct cg_usage *u = calloc(L->n_tenants + 1, sizeof *u);
	size_t i = 0;

	if (!u)
		return;
	for (struct tenant *t = L->tenants; t && i < L->n_tenants; t = t->next_t, i++)
		if (t->pid)
			cg_usage(t->name, &u[i]);
#define EACH(stmt) do { i = 0; for (struct tenant *t = L->tenants; t && i < L->n_tenants; t = t->next_t, i++) { stmt; } } while (0)
	family(f, "fief_tenant_up", "gauge", "1 when the tenant's init is running.");
	EACH(fprintf(f, "fief_tenant_up{tenant=\"%s\"} %d\n", t->name, t->state == TS_RUNNING));
	family(f, "fief_tenant_state", "gauge", "The tenant's state, one series per state.");
	EACH(for (size_t s = 0; s < 6; s++)
		fprintf(f, "fief_tenant_state{tenant=\"%s\",state=\"%s\"} %d\n", t->name, states[s], t->state == s));
	family(f, "fief_tenant_memory_bytes", "gauge", "Memory charged to the tenant's cgroup.");
	EACH(fprintf(f, "fief_tenant_memory_bytes{tenant=\"%s\"} %llu\n", t->name, (unsigned long long)u[i].memory));
	family(f, "fief_tenant_memory_limit_bytes", "gauge", "The tenant's memory limit.");
	EACH(fprintf(f, "fief_tenant_memory_limit_bytes{tenant=\"%s\"} %llu\n", t->name,
		     (unsigned long long)(t->cfg ? t->cfg->limits.memory : 0)));
	family(f, "fief_tenant_cpu_seconds_total", "counter", "CPU time used by the tenant's processes.");
	EACH(fprintf(f, "fief_tenant_cpu_seconds_total{tenant=\"%s\"} %.6f\n", t->name, (double)u[i].cpu_usec / 1e6));
	family(f, "fief_tenant_pids", "gauge", "Processes and threads in the tenant.");
	EACH(fprintf(f, "fief_tenant_pids{tenant=\"%s\"} %llu\n", t->name, (unsigned long long)u[i].pids));
	family(f, "fief_tenant_pids_limit", "gauge", "The tenant's pids limit.");
	EACH(fprintf(f, "fief_tenant_pids_limit{tenant=\"%s\"} %lld\n", t->name,
		     (long long)(t->cfg ? t->cfg->limits.pids : 0)));
	family(f, "fief_tenant_oom_kills_total", "counter", "Processes of the tenant killed for memory.");
	EACH(fprintf(f, "fief_tenant_oom_kills_total{tenant=\"%s\"} %llu\n", t->name, (unsigned long long)u[i].oom_kills));
	family(f, "fief_tenant_restarts_total", "counter", "Starts of the tenant's init after the first.");
	EACH(fprintf(f, "fief_tenant_restarts_total{tenant=\"%s\"} %u\n", t->name, t->restarts));
#undef EACH
	free(u);
}

static char *metrics_render(struct launcher *L, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);

	if (!f)
		return NULL;
	family(f, "fief_tenants", "gauge", "Tenants the launcher knows.");
	fprintf(f, "fief_tenants %zu\n", L->n_tenants);
	family(f, "fief_launcher_inits_total", "counter",
	       "Tenant inits started, by the process that cloned them (the zygote, or the launcher when the zygote failed).");
	fprintf(f, "fief_launcher_inits_total{by=\"zygote\"} %lu\n", L->inits_by_zygote);
	fprintf(f, "fief_launcher_inits_total{by=\"launcher\"} %lu\n", L->inits_by_launcher);
	family(f, "fief_launcher_zygote_starts_total", "counter", "Zygote processes started (one at the launcher's start).");
	fprintf(f, "fief_launcher_zygote_starts_total %lu\n", L->zygote_starts);
	tenant_samples(f, L);
	metrics_extra(f, L);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

static void mc_reply(struct rec_reply *r, const char *status, const char *type, const char *body, size_t blen)
{
	rec_add(r, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
		status, type, blen);
	rec_write(r, body, blen);
}

/* Only "GET /metrics": anything else is a 404 or a 405, never parsed further. */
static void mc_handle(struct rec_reply *r, const char *req, void *data)
{
	size_t len;
	char *body;

	if (strncmp(req, "GET ", 4)) {
		mc_reply(r, "405 Method Not Allowed", "text/plain", "GET only\n", 9);
	} else if (strncmp(req + 4, "/metrics ", 9) && strncmp(req + 4, "/metrics?", 9)) {
		mc_reply(r, "404 Not Found", "text/plain", "try /metrics\n", 13);
	} else if ((body = metrics_render(data, &len))) {
		mc_reply(r, "200 OK", "text/plain; version=0.0.4; charset=utf-8", body, len);
		free(body);
	} else {
		mc_reply(r, "500 Internal Server Error", "text/plain", "\n", 1);
	}
}

/* The request's head has ended (a blank line), in what came since the
 * last look and the three bytes before it. */
static bool mc_whole(const char *req, size_t len, size_t seen)
{
	size_t from = seen > 3 ? seen - 3 : 0;

	return memmem(req + from, len - from, "\r\n\r\n", 4) || memmem(req + from, len - from, "\n\n", 2);
}

int metrics_start(struct launcher *L)
{
	const struct endpoint *e = &L->host->metrics.listen;
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd, one = 1;

	if (!L->host->metrics.enabled)
		return 0;
	if (e->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(e->port);
		memcpy(&s6->sin6_addr, e->addr, 16);
		len = sizeof *s6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(e->port);
		memcpy(&s4->sin_addr, e->addr, 4);
		len = sizeof *s4;
	}
	fd = socket(e->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 64) < 0) {
		/* Metrics are not worth refusing to run tenants over. */
		log_error_r(errno, "metrics on %s: not served", e->text);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	metrics_srv = (struct rec_server){ .loop = L->loop, .handle = mc_handle, .data = L,
					   .max_conns = METRICS_MAX_CONN, .timeout = METRICS_TIMEOUT,
					   .max_req = METRICS_MAX_REQ, .whole = mc_whole };
	rec_server_start(&metrics_srv, fd);
	log_info("metrics on http://%s/metrics", e->text);
	return 0;
}

static long metrics_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* Copy one peer's text into out, bounded in size and in total time: a
 * peer that trickles bytes costs the scrape no more than one that is
 * stuck. A peer cut short leaves a partial text: it is dropped whole. */
static void metrics_peer(FILE *out, const char *path, long timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	long deadline = metrics_now_ms() + timeout_ms;
	size_t total = 0, cap = 65536;
	char *buf = NULL;
	bool complete = false;
	int fd;

	if (snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path) >= (int)sizeof sa.sun_path)
		return;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return;
	if ((connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) || !(buf = malloc(cap))) {
		close(fd);
		free(buf);
		return;
	}
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		long left = deadline - metrics_now_ms();
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		if (total == cap) {
			char *nb = cap < METRICS_PEER_MAX ? realloc(buf, cap * 2) : NULL;
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + total, cap - total);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			complete = n == 0;
			break;
		}
		total += (size_t)n;
	}
	close(fd);
	if (complete && total)
		fwrite(buf, 1, total, out);
	else if (!complete)
		log_warn("metrics: %s did not send its text within %ld ms; left out", path, timeout_ms);
	free(buf);
}

/* Read the router's "stats" reply (key=value records) into a buffer,
 * within the peers' deadline; a reply cut short loses its last line. */
static char *router_stats(struct launcher *L)
{
	char path[108], *buf, *nl;

	if (launcher_path(L, path, sizeof path, "router-control.sock") < 0 ||
	    rec_request(path, "stats\n", METRICS_PEER_MAX, METRICS_PEER_TIMEOUT_MS, &buf) < 0)
		return NULL;
	nl = strrchr(buf, '\n');
	if (nl)
		nl[1] = 0;
	else
		buf[0] = 0;
	return buf;
}

/* Network counters per tenant, from fief-router's control socket. */
static void metrics_router(FILE *out, struct launcher *L)
{
	char *stats = router_stats(L), *save = NULL;
	struct record r;

	if (!stats)
		return;
	family(out, "fief_tenant_network_bytes_total", "counter", "Bytes through fief-router, per direction.");
	family(out, "fief_tenant_network_packets_total", "counter", "Packets through fief-router, per direction.");
	family(out, "fief_tenant_network_drops_total", "counter", "Packets fief-router dropped, per reason.");
	for (char *l = strtok_r(stats, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		const char *name;

		rec_parse(l, &r);
		name = rec_get(&r, "name");
		if (strcmp(rec_get(&r, "kind"), "tenant") || !value_is_tenant_name(name))
			continue;
		fprintf(out, "fief_tenant_network_bytes_total{tenant=\"%s\",direction=\"out\"} %llu\n", name,
			strtoull(rec_get(&r, "out_bytes"), NULL, 10));
		fprintf(out, "fief_tenant_network_bytes_total{tenant=\"%s\",direction=\"in\"} %llu\n", name,
			strtoull(rec_get(&r, "in_bytes"), NULL, 10));
		fprintf(out, "fief_tenant_network_packets_total{tenant=\"%s\",direction=\"out\"} %llu\n", name,
			strtoull(rec_get(&r, "out_packets"), NULL, 10));
		fprintf(out, "fief_tenant_network_packets_total{tenant=\"%s\",direction=\"in\"} %llu\n", name,
			strtoull(rec_get(&r, "in_packets"), NULL, 10));
		/* every drop_REASON=N field, whatever reasons the router has; a
		 * reason is a label value, so only [a-z0-9_] */
		for (int i = 0; i < r.n; i++) {
			const char *reason = r.key[i] + 5;
			if (strncmp(r.key[i], "drop_", 5) || !*reason || strlen(reason) > 24 ||
			    reason[strspn(reason, "abcdefghijklmnopqrstuvwxyz0123456789_")])
				continue;
			fprintf(out, "fief_tenant_network_drops_total{tenant=\"%s\",reason=\"%s\"} %llu\n",
				name, reason, strtoull(r.val[i], NULL, 10));
		}
	}
	free(stats);
}

void metrics_extra(FILE *out, struct launcher *L)
{
	char dir[3800], path[4096];
	struct dirent *de;
	DIR *d;

	if (L->host->router.enabled)
		metrics_router(out, L);
	if (launcher_path(L, dir, sizeof dir, "metrics") < 0 || !(d = opendir(dir)))
		return;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n < 6 || strcmp(de->d_name + n - 5, ".sock"))
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		metrics_peer(out, path, METRICS_PEER_TIMEOUT_MS);
	}
	closedir(d);
}
