/* value: parsers for the scalar values of fief's files (sizes, durations,
 * addresses, firewall rules, cron lines, names). Each takes a NUL-terminated
 * string, returns 0 or -1, and on -1 writes a short reason into `why`. */
#ifndef FIEF_VALUE_H
#define FIEF_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WHY_LEN 160

/* An IPv4 address with a prefix length; host byte order. */
struct cidr {
	uint32_t addr;
	int prefix;                      /* 0..32 */
};

/* An IPv6 address with a prefix length; network byte order. */
struct cidr6 {
	uint8_t addr[16];
	int prefix;                      /* 0..128 */
};

/* A listening address: IPv4 or IPv6 literal and a port. */
struct endpoint {
	int family;                      /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	uint16_t port;
	char text[64];                   /* as written, normalised */
};

enum fw_action { FW_ALLOW = 1, FW_DENY = 2 };

/* "allow|deny [SRC [DST]]": an absent SRC or DST matches everything of
 * the family of the address that is given; a rule with no address at all
 * ("deny") matches IPv4 and IPv6. SRC and DST are of one family. */
enum fw_family { FW_ANY = 0, FW_IPV4 = 4, FW_IPV6 = 6 };
struct fw_rule {
	enum fw_action action;
	struct cidr src, dst;            /* FW_IPV4 (and FW_ANY: both 0.0.0.0/0) */
	enum fw_family family;
	struct cidr6 src6, dst6;         /* FW_IPV6 */
};

/* A cron schedule: bit i set = value i matches. Day-of-month and
 * day-of-week follow crontab(5): when both are restricted, either may match. */
struct cron_entry {
	uint64_t minute;                 /* bits 0..59 */
	uint32_t hour;                   /* bits 0..23 */
	uint32_t mday;                   /* bits 1..31 */
	uint16_t month;                  /* bits 1..12 */
	uint8_t wday;                    /* bits 0..6, Sunday = 0 */
	bool mday_any, wday_any;
	char *command;                   /* owned */
};

int value_size(const char *s, uint64_t *out, char *why);          /* 512M, 1G, 4096 */
int value_duration_ms(const char *s, int64_t *out, char *why);    /* 30s, 5m, 1h, 250ms */
int value_cpu_millis(const char *s, int64_t *out, char *why);     /* 0.5 -> 500 */
int value_int(const char *s, int64_t *out, char *why);
int value_bool(const char *s, bool *out, char *why);
int value_ipv4(const char *s, uint32_t *out, char *why);
int value_cidr(const char *s, struct cidr *out, char *why);       /* a.b.c.d[/n] */
int value_ipv6(const char *s, uint8_t out[16], char *why);
int value_cidr6(const char *s, struct cidr6 *out, char *why);     /* x:y::z[/n] */
int value_endpoint(const char *s, struct endpoint *out, char *why); /* 0.0.0.0:22, [::]:22 */
int value_fw_rule(const char *s, struct fw_rule *out, char *why);
/* Parses the five time fields and the command; out->command is malloc'd. */
int value_cron(const char *s, struct cron_entry *out, char *why);

bool value_is_tenant_name(const char *s);   /* [a-z][a-z0-9-]{0,31} */
bool value_is_item_name(const char *s);     /* app and daemon names */
bool value_is_hostname(const char *s);      /* RFC 1123 */
bool value_is_domain(const char *s);        /* host name, or "*." + host name */
bool value_is_abs_path(const char *s);      /* absolute, no "..", no control chars */

bool cidr_contains(const struct cidr *net, uint32_t addr);
uint32_t cidr_mask(int prefix);
void cidr_format(const struct cidr *c, char *buf, size_t len);
void ipv4_format(uint32_t addr, char *buf, size_t len);
bool cidr6_contains(const struct cidr6 *net, const uint8_t addr[16]);
void cidr6_format(const struct cidr6 *c, char *buf, size_t len);   /* 44 bytes suffice */
void ipv6_format(const uint8_t addr[16], char *buf, size_t len);    /* 40 bytes suffice */
void fw_rule_format(const struct fw_rule *r, char *buf, size_t len);

/* Does the schedule fire at this broken-down local time? */
bool cron_matches(const struct cron_entry *c, int min, int hour, int mday, int mon, int wday);

#endif
