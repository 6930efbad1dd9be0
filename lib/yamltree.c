/* yamltree: a YAML document as a small tree of nodes with positions. */
#include "yamltree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define YT_MAX_ANCHORS 256
#define YT_BYTES_PER_WEIGHT 64

struct yt_anchor {
	char *name;
	struct yt_node *node;
};

struct yt_builder {
	struct yt_doc *doc;
	struct yt_node *stack[YT_MAX_DEPTH + 1];
	int depth;
	struct yt_anchor anchors[YT_MAX_ANCHORS];
	size_t n_anchors;
	size_t total;
	char *msg;
	size_t msglen;
	int line, col;
};

static int yt_fail(struct yt_builder *b, const yaml_mark_t *m, const char *what)
{
	b->line = (int)m->line + 1;
	b->col = (int)m->column + 1;
	snprintf(b->msg, b->msglen, "%s", what);
	return -1;
}

static struct yt_node *yt_new(struct yt_builder *b, enum yt_kind kind, const yaml_mark_t *m)
{
	struct yt_node *n = calloc(1, sizeof *n);

	if (!n)
		return NULL;
	n->kind = kind;
	n->line = (int)m->line + 1;
	n->col = (int)m->column + 1;
	n->weight = 1;
	n->next_alloc = b->doc->all;
	b->doc->all = n;
	return n;
}

/* Attach a finished node to the open collection, or make it the root. */
static int yt_attach(struct yt_builder *b, struct yt_node *n, const yaml_mark_t *m)
{
	struct yt_node *parent;

	b->total += n->weight;
	if (b->total > YT_MAX_WEIGHT)
		return yt_fail(b, m, "document is too large (too many nodes or alias expansions)");
	if (b->depth == 0) {
		b->doc->root = n;
		return 0;
	}
	parent = b->stack[b->depth - 1];
	if (parent->n == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 8;
		struct yt_node **items = realloc(parent->items, cap * sizeof *items);
		if (!items)
			return yt_fail(b, m, "out of memory");
		parent->items = items;
		parent->cap = cap;
	}
	parent->items[parent->n++] = n;
	return 0;
}

static int yt_anchor_add(struct yt_builder *b, const yaml_char_t *name, struct yt_node *n,
			 const yaml_mark_t *m)
{
	if (!name)
		return 0;
	if (b->n_anchors == YT_MAX_ANCHORS)
		return yt_fail(b, m, "too many anchors");
	b->anchors[b->n_anchors].name = strdup((const char *)name);
	if (!b->anchors[b->n_anchors].name)
		return yt_fail(b, m, "out of memory");
	b->anchors[b->n_anchors++].node = n;
	return 0;
}

/* An alias shares the anchored node; its weight counts again, so a
 * "billion laughs" document hits YT_MAX_WEIGHT long before memory runs out. */
static int yt_alias(struct yt_builder *b, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;

	for (size_t i = b->n_anchors; i-- > 0;)
		if (!strcmp(b->anchors[i].name, name)) {
			struct yt_node *target = b->anchors[i].node;
			for (int d = 0; d < b->depth; d++)
				if (b->stack[d] == target)
					return yt_fail(b, &ev->start_mark, "recursive alias");
			return yt_attach(b, target, &ev->start_mark);
		}
	return yt_fail(b, &ev->start_mark, "unknown alias");
}

static int yt_scalar(struct yt_builder *b, const yaml_event_t *ev)
{
	struct yt_node *n = yt_new(b, YT_SCALAR, &ev->start_mark);

	if (!n)
		return yt_fail(b, &ev->start_mark, "out of memory");
	n->len = ev->data.scalar.length;
	n->str = malloc(n->len + 1);
	if (!n->str)
		return yt_fail(b, &ev->start_mark, "out of memory");
	memcpy(n->str, ev->data.scalar.value, n->len);
	n->str[n->len] = 0;
	/* Long scalars weigh more: the loader copies a scalar once per alias
	 * to it, so the cap must bound bytes as well as nodes. */
	n->weight += n->len / YT_BYTES_PER_WEIGHT;
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	if (yt_anchor_add(b, ev->data.scalar.anchor, n, &ev->start_mark) < 0)
		return -1;
	return yt_attach(b, n, &ev->start_mark);
}

static int yt_open(struct yt_builder *b, const yaml_event_t *ev, enum yt_kind kind,
		   const yaml_char_t *anchor)
{
	struct yt_node *n;

	if (b->depth == YT_MAX_DEPTH)
		return yt_fail(b, &ev->start_mark, "document is nested too deeply");
	n = yt_new(b, kind, &ev->start_mark);
	if (!n)
		return yt_fail(b, &ev->start_mark, "out of memory");
	if (yt_anchor_add(b, anchor, n, &ev->start_mark) < 0)
		return -1;
	b->stack[b->depth++] = n;
	return 0;
}

static int yt_close(struct yt_builder *b, const yaml_event_t *ev)
{
	struct yt_node *n = b->stack[--b->depth];

	for (size_t i = 0; i < n->n; i++)
		n->weight += n->items[i]->weight;
	b->total -= n->weight - 1;       /* children were counted on attach */
	return yt_attach(b, n, &ev->start_mark);
}

static int yt_event(struct yt_builder *b, const yaml_event_t *ev, int *docs)
{
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++*docs > 1)
			return yt_fail(b, &ev->start_mark, "only one YAML document is allowed");
		return 0;
	case YAML_SCALAR_EVENT:
		return yt_scalar(b, ev);
	case YAML_ALIAS_EVENT:
		return yt_alias(b, ev);
	case YAML_SEQUENCE_START_EVENT:
		return yt_open(b, ev, YT_SEQ, ev->data.sequence_start.anchor);
	case YAML_MAPPING_START_EVENT:
		return yt_open(b, ev, YT_MAP, ev->data.mapping_start.anchor);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return yt_close(b, ev);
	default:
		return 0;
	}
}

/* Reader errors (bad UTF-8, control characters) carry a byte offset and
 * no mark: turn the offset into a 1-based line and column (characters). */
static void yt_offset_pos(const char *buf, size_t len, size_t off, int *line, int *col)
{
	*line = *col = 1;
	for (size_t i = 0; i < off && i < len; i++) {
		if (buf[i] == '\n') {
			++*line;
			*col = 1;
		} else if (((unsigned char)buf[i] & 0xc0) != 0x80) {
			++*col;
		}
	}
}

int yt_parse(const char *buf, size_t len, struct yt_doc *doc, int *line, int *col, char *msg,
	     size_t msglen)
{
	struct yt_builder b = { .doc = doc, .msg = msg, .msglen = msglen };
	yaml_parser_t parser;
	yaml_event_t ev;
	int ret = 0, docs = 0, done = 0;

	memset(doc, 0, sizeof *doc);
	if (!yaml_parser_initialize(&parser)) {
		snprintf(msg, msglen, "out of memory");
		*line = *col = 0;
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	while (!done && ret == 0) {
		if (!yaml_parser_parse(&parser, &ev)) {
			b.line = (int)parser.problem_mark.line + 1;
			b.col = (int)parser.problem_mark.column + 1;
			if (parser.error == YAML_READER_ERROR)
				yt_offset_pos(buf, len, parser.problem_offset, &b.line, &b.col);
			snprintf(msg, msglen, "YAML syntax error: %s%s%s",
				 parser.problem ? parser.problem : "unknown problem",
				 parser.context ? " " : "", parser.context ? parser.context : "");
			ret = -1;
			break;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		ret = yt_event(&b, &ev, &docs);
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	for (size_t i = 0; i < b.n_anchors; i++)
		free(b.anchors[i].name);
	if (ret < 0) {
		*line = b.line;
		*col = b.col;
		yt_free(doc);
	}
	return ret;
}

void yt_free(struct yt_doc *doc)
{
	struct yt_node *n = doc->all, *next;

	for (; n; n = next) {
		next = n->next_alloc;
		free(n->str);
		free(n->items);
		free(n);
	}
	doc->all = doc->root = NULL;
}

bool yt_is_null(const struct yt_node *n)
{
	return n->kind == YT_SCALAR && n->plain &&
	       (n->len == 0 || !strcmp(n->str, "~") || !strcmp(n->str, "null") ||
		!strcmp(n->str, "Null") || !strcmp(n->str, "NULL"));
}
