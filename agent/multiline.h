/* multiline.h - per-file line aggregation before parsing: Filebeat-style
 * `multiline` (pattern, negate, match after|before, presets java, python,
 * go, ruby) and the joining of container runtime partial lines (cri `P`
 * lines until `F`, docker json-file `log` values without a final "\n").
 *
 * The aggregator is a pure state machine: lines in (file order, one file),
 * whole events out through a callback. It knows nothing about chunks,
 * threads or acks; mlstage.h runs one per file on the loop thread and turns
 * its output into work for the parse workers.
 *
 * Output events:
 *   - multiline: the group's lines joined with "\n"; offset = first line's
 *     offset (so event.id, derived from it, is the same on a re-read);
 *     flags SL_LINE_MULTILINE when more than one line was joined,
 *     SL_LINE_TRUNCATED when max_lines dropped lines or max_bytes cut it.
 *   - partial lines: one line as the runtime would have written it whole:
 *     cri `<first ts> <stream> F <msg parts...>`, docker
 *     `{"log":"<parts...>",<rest of the first record>}`; offset = the first
 *     part's. Streams (stdout/stderr) are joined separately.
 * With both, partial lines are joined first and multiline runs on the
 * result (the whole runtime line, prefix included).
 *
 * Ownership: a struct sl_ml_conf is built once per input from the config
 * and is read-only afterwards, except the PCRE2 match data it keeps for
 * the one thread that feeds aggregators (the loop). The bytes passed to
 * the emit callback are valid only during the call.
 */
#ifndef SL_AGENT_MULTILINE_H
#define SL_AGENT_MULTILINE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "parse.h"  /* SL_LINE_* */

struct sl_ml_conf;

/* Build the settings of one normalised input object: keys `multiline`
 * (preset name or mapping) and `parser` (cri/docker turn on partial-line
 * joining). *out is NULL (and SL_OK returned) when the input needs no
 * aggregation. SL_ECONFIG with a message (key path, no file:line). */
int sl_ml_conf_new(const json_t *input, struct sl_ml_conf **out, char *err,
                   size_t errlen);
void sl_ml_conf_free(struct sl_ml_conf *c);
/* A pending group is flushed when no line came for this long (ms). */
uint64_t sl_ml_conf_timeout_ms(const struct sl_ml_conf *c);

/* An event: [p, p+len) (no final newline), the file offset of its first
 * line, SL_LINE_* flags. */
typedef int (*sl_ml_emit_cb)(void *arg, const char *p, size_t len,
                             uint64_t offset, unsigned flags);

struct sl_ml;

int sl_ml_new(const struct sl_ml_conf *c, sl_ml_emit_cb emit, void *arg,
              struct sl_ml **out);
void sl_ml_free(struct sl_ml *m);
/* Feed one line: no '\n', one trailing '\r' already removed; `offset` is
 * where it starts in the file, `flags` SL_LINE_TRUNCATED if the tailer cut
 * it. Blank lines are fed too (a pattern may join them). Returns the
 * emit callback's first error, or SL_ENOMEM. */
int sl_ml_line(struct sl_ml *m, const char *p, size_t len, uint64_t offset,
               unsigned flags);
/* Emit every pending group (timeout). */
int sl_ml_flush(struct sl_ml *m);
/* Drop pending groups without emitting them (shutdown: they are read
 * again on the next start). */
void sl_ml_discard(struct sl_ml *m);
/* Offset of the first line of the oldest pending group; UINT64_MAX when
 * nothing is pending. */
uint64_t sl_ml_pending_offset(const struct sl_ml *m);

#endif
