/* filter.h - per-input line filters and event edits, all optional:
 *
 *   include_lines: [re, ...]  keep only lines (or joined multiline events)
 *                             that match one of them
 *   exclude_lines: [re, ...]  then drop those that match one of them
 *   drop_fields:   [path, ...]         remove event fields
 *   rename:        {from: to, ...}     move a field (overwrites `to`)
 *   add_fields:    {path: value, ...}  set a field (overwrites), e.g.
 *                                      service.name: checkout
 *
 * Lines are tested raw, before parsing (as Filebeat does); an excluded
 * line makes no event but its bytes are acknowledged like any other, so
 * the registry moves past it. Edits apply to the event JSON a parser
 * wrote, without a DOM: two linear passes over the event text (the first
 * finds the values that rename moves, the second copies everything else
 * and writes the moved and added members into their objects, creating
 * missing objects). Paths are dotted (a.b.c) and address nested objects;
 * keys holding dots cannot be addressed. Only inputs that configure edits
 * pay for them.
 *
 * Ownership: a struct sl_filter is built from the config and is read-only
 * afterwards; parse workers share it. Each thread brings its own PCRE2
 * match data (rx.h).
 */
#ifndef SL_AGENT_FILTER_H
#define SL_AGENT_FILTER_H

#include <stddef.h>

#include <jansson.h>

#include "re.h"
#include "sl_buf.h"

struct sl_filter;

/* From a normalised input object; *out NULL (SL_OK) when the input has
 * none of the keys. SL_ECONFIG with "key: reason" in err. */
int sl_filter_new(const json_t *input, struct sl_filter **out, char *err,
                  size_t errlen);
void sl_filter_free(struct sl_filter *f);
/* 1 if the line passes include_lines/exclude_lines. */
int sl_filter_keep(const struct sl_filter *f, const char *line, size_t len,
                   pcre2_match_data *md);
/* 1 if drop_fields/rename/add_fields are configured. */
int sl_filter_has_edits(const struct sl_filter *f);
/* Append the edited copy of one event object [ev, ev+len) to out.
 * SL_E2BIG/SL_ENOMEM from out (restored to its length on error);
 * SL_EPARSE if ev is not one JSON object. */
int sl_filter_edit(const struct sl_filter *f, const char *ev, size_t len,
                   struct sl_buf *out);

#endif
