/* parse.h - turn one log line into one ECS event, written as JSON text
 * straight into the batch buffer (no DOM on the hot path, DESIGN.md
 * "Hot path budget").
 *
 * Owner split: the pipeline (tail/batch) owns lines and buffers; this module
 * owns per-input parse contexts (immutable after creation, so parse workers
 * share them read-only across threads without locks).
 */
#ifndef SL_PARSE_H
#define SL_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sl_buf.h"

/* Who is shipping: fixed for the agent's lifetime. */
struct sl_agent_info {
  const char *host_name;   /* host.name */
  const char *agent_id;    /* agent.id: stable, persisted in data_dir */
  const char *agent_name;  /* agent.name (default: host name) */
  const char *version;     /* agent.version */
};

/* One source file as seen by the tailer. */
struct sl_src {
  const char *path;        /* log.file.path */
  uint64_t dev, ino;       /* the inode being read (not part of event.id) */
  /* The stream identity hashed into event.id (tail_registry.h): fp is the
   * stream id taken from the file's first bytes; id_dev/id_ino are 0,
   * except for a stream carried over from a version-1 registry, which
   * keeps its inode there so its events keep their ids. */
  uint64_t fp;
  uint64_t id_dev, id_ino;
};

/* Flags about a line, from the tailer. */
#define SL_LINE_TRUNCATED 0x1u  /* longer than max_line_bytes: cut */
#define SL_LINE_MULTILINE 0x2u  /* several lines joined (multiline.h):
                                   log.flags "multiline", as Filebeat */
#define SL_LINE_REDACTED  0x4u  /* a redact rule changed it (redact.h):
                                   tags "redacted" */

struct sl_parse_ctx;

/* Build a context from one normalised `inputs[]` entry of the agent config
 * (keys: parser, dataset, service, namespace, fields, ...). Pre-renders the
 * static parts of every event. Returns SL_ECONFIG with a message.
 *   parser     "json" | "raw" | "logfmt" | "nginx" | ... (default raw, as
 *              the config schema), looked up in parse.c's table of parsers
 *              (parse_internal.h); any other name is
 *              SL_ECONFIG "parser: 'x' is not supported (supported: ...)".
 *   dataset    default the parser's own (nginx.access, ...) or "generic";
 *              namespace default "default": lower case, none of
 *              - \ / * ? " < > | , # : space, <= 100 bytes (they make the
 *              data stream name logs-<dataset>-<namespace>).
 *   service    optional -> service.name.
 *   fields     mapping of scalars -> labels.<key> as strings (dots in keys
 *              become '_'; null values are skipped).
 * Other keys are ignored (they belong to the tailer). `err` gets a message
 * without file:line (the caller adds it, e.g. with sl_conf's helpers). */
int sl_parse_ctx_new(const json_t *input, const struct sl_agent_info *info,
                     struct sl_parse_ctx **out, char *err, size_t errlen);
void sl_parse_ctx_free(struct sl_parse_ctx *ctx);
/* The input's event.dataset (its own or the parser's default); lives as
 * long as ctx. */
const char *sl_parse_ctx_dataset(const struct sl_parse_ctx *ctx);

/* Append exactly one event JSON object (no trailing newline) for the line
 * [line, line+len) that starts at byte `offset` of `src`. Never fails on
 * bad input (a malformed line becomes a raw event with an error tag); only
 * buffer errors (SL_E2BIG, SL_ENOMEM) are returned, and then `out` is
 * restored to its previous length. read_time_ns is used for @timestamp when
 * the line has none. Thread-safe for distinct `out` buffers.
 * The line is taken as given: the pipeline's line splitter (worker.c) has
 * already removed the '\n' and one trailing '\r'; any '\r' left is
 * content. Empty lines are not skipped here (the pipeline skips them):
 * with parser json they become raw events tagged "empty line". The field
 * rules are documented in parse_json.c, the event layout in
 * event_writer.h.
 * The event always: has no raw newline (NDJSON-safe); loads in jansson with
 * default flags plus JSON_REJECT_DUPLICATES (no \u0000, no duplicate keys
 * at any level, numbers within int64/double, depth <= 2048), which is how
 * the collector reads it. An event takes at most 6 bytes per input byte
 * plus the static part (~0.6 KiB + labels): size `out->max` for that. */
int sl_parse_event(const struct sl_parse_ctx *ctx, const struct sl_src *src,
                   const char *line, size_t len, uint64_t offset,
                   unsigned flags, int64_t read_time_ns, struct sl_buf *out);

/* event.id: xxh3-128 over (agent id, id_dev, id_ino, fp, offset) in
 * lower-case hex, 32 chars + NUL. Exposed for tests and the registry. The
 * hashed bytes are: the agent id's bytes, one NUL, then id_dev, id_ino, fp
 * and offset as
 * 8-byte little-endian integers; the hex is the high 64 bits then the low
 * (XXH128 canonical order, as sl_hash128_hex). Changing this layout re-ids
 * every event, which breaks exactly-once across an upgrade. */
void sl_event_id(const char *agent_id, const struct sl_src *src,
                 uint64_t offset, char out[33]);

#endif
