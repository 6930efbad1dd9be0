/* yamltree: a YAML document as a small tree of nodes with positions.
 *
 * libyaml reports events; this module turns them into scalars, sequences
 * and mappings that remember their 1-based line and column, with bounds on
 * depth, size and alias expansion so no file can exhaust memory. */
#ifndef FIEF_YAMLTREE_H
#define FIEF_YAMLTREE_H

#include <stdbool.h>
#include <stddef.h>

#define YT_MAX_DEPTH 32
#define YT_MAX_WEIGHT 100000     /* nodes, counting each alias expansion */

enum yt_kind { YT_SCALAR, YT_SEQ, YT_MAP };

struct yt_node {
	enum yt_kind kind;
	int line, col;               /* 1-based */
	char *str;                   /* scalar text, NUL-terminated */
	size_t len;                  /* scalar length (may differ from strlen on "\0") */
	bool plain;                  /* scalar written without quotes */
	struct yt_node **items;      /* seq: items; map: key, value, key, value... */
	size_t n, cap;
	size_t weight;               /* nodes below and including this one */
	struct yt_node *next_alloc;  /* every node of a document, for freeing */
};

struct yt_doc {
	struct yt_node *root;        /* NULL for an empty document */
	struct yt_node *all;
};

/* Parse; on error returns -1 and fills line/col (1-based) and msg. */
int yt_parse(const char *buf, size_t len, struct yt_doc *doc, int *line, int *col, char *msg,
	     size_t msglen);
void yt_free(struct yt_doc *doc);

/* A plain empty scalar, "~" or "null": YAML's null. */
bool yt_is_null(const struct yt_node *n);

#endif
