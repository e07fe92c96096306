/* bulk.h - pure builders for Elasticsearch _bulk bodies (no I/O), so tests
 * check the exact bytes without a running ES (fluent-bit test_formatter).
 *
 * Spool record payloads (the contract between input and indexer, see the
 * format version in spool.h):
 *   format 2: NDJSON events, one event JSON per line, each with a usable
 *             event.id and an @timestamp (collector/input.c sees to it);
 *   format 1 (older sluice): _bulk pairs, each event as two lines
 *     {"create":{"_index":"<target>","_id":"<event.id>"}}\n
 *     <event JSON, one line>\n
 *             sl_bulk_v1_to_events() turns them into format 2 (the source
 *             lines always carried event.id), so the current route applies.
 * Routing and action lines are made only when a request is built:
 * sl_bulk_event_action() / sl_bulk_encode() below. A changed index_mode
 * therefore applies to data already spooled.
 */
#ifndef SL_BULK_H
#define SL_BULK_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sl_buf.h"

enum sl_index_mode {
  SL_INDEX_DATA_STREAM = 0, /* logs-<dataset>-<namespace> */
  SL_INDEX_DAILY,           /* <prefix>-<dataset>-YYYY.MM.DD by @timestamp */
};

struct sl_route {
  enum sl_index_mode mode;
  const char *namespace_;   /* data_stream.namespace default ("default") */
  const char *prefix;       /* daily prefix ("sluice") */
  const char *dataset;      /* fallback dataset ("generic") */
};

/* Compute the target index for an event: dataset from event.dataset or
 * data_stream.dataset, namespace from data_stream.namespace or the route
 * default (nested or dotted keys), date from @timestamp (UTC; RFC 3339,
 * epoch string, or epoch ms number; `fallback_ns` if absent/bad: the
 * caller passes the spool record's append time, the same at every
 * re-delivery, so a re-send meets its first copy in daily mode). Each part is
 * sanitised by keeping [a-z0-9._] (upper case lowered) and turning any
 * other character ('-', '\\', '/', '*', '?', '"', '<', '>', '|', ' ', ',',
 * '#', ':', non-ASCII) into '_', capped at 100 bytes; a part with no
 * letter or digit falls back to the route default. */
int sl_bulk_target(const struct sl_route *r, const json_t *event,
                   int64_t fallback_ns, struct sl_buf *out) SL_WUR;

/* The same from strings already picked out of the event (a span with
 * p == NULL is absent): ds = event.dataset, alt_ds = data_stream.dataset
 * (used when ds is not usable), ns = data_stream.namespace; time_ns is the
 * event's @timestamp (only daily mode reads it). */
int sl_bulk_target_parts(const struct sl_route *r, struct sl_span ds,
                         struct sl_span alt_ds, struct sl_span ns,
                         int64_t time_ns, struct sl_buf *out) SL_WUR;

/* Only the dataset part of that name (ds, else alt_ds, else the route's
 * default, sanitised the same way): the archive's directory name, so that
 * the archive and the index agree on what a dataset is called. */
int sl_bulk_dataset_part(const struct sl_route *r, struct sl_span ds,
                         struct sl_span alt_ds, struct sl_buf *out) SL_WUR;

/* Append the action line plus newline for (index, id); used for dead
 * letters and by tests (events go through sl_bulk_event_action). */
int sl_bulk_action(struct sl_buf *out, const char *index, size_t index_len,
                   const char *id, size_t id_len) SL_WUR;

/* ---- Encoding spooled events (format 2) -------------------------------- */

/* Append the action line plus newline for one event (one line of JSON,
 * no newline): _index from the route as sl_bulk_target() says, _id =
 * event.id (nested or dotted). One pass with the event scanner and no
 * allocation besides `out` for the usual event; jansson for the rest. An
 * event without a usable id gets the xxh3-128 hex of its bytes (what the
 * intake writes into event.id, so the same id either way); text that is not
 * a JSON object gets the default target. In daily mode an event whose
 * @timestamp is absent or unparseable is dated `fallback_ns` (the record's
 * append time, never the clock: a re-delivery after midnight must land in
 * the same index). All or nothing. */
int sl_bulk_event_action(const struct sl_route *r, const char *ev,
                         size_t len, int64_t fallback_ns,
                         struct sl_buf *out) SL_WUR;

/* Append the _bulk action + source pair of every event of an NDJSON
 * payload (empty lines skipped, a trailing '\r' dropped); fallback_ns as
 * for sl_bulk_event_action. All or nothing. */
int sl_bulk_encode(const struct sl_route *r, const char *events, size_t len,
                   int64_t fallback_ns, struct sl_buf *out) SL_WUR;

/* Count the events (non-empty lines) of an NDJSON payload. */
size_t sl_bulk_event_count(const char *p, size_t len);
/* Fill up to `max` spans (borrowed from p, without newline or trailing
 * '\r') with the events; returns how many were filled. */
size_t sl_bulk_event_split(const char *p, size_t len, struct sl_span *events,
                           size_t max);

/* Turn a format-1 payload (_bulk pairs) into format 2 in place: the
 * action lines are dropped, the source lines kept, each ending in '\n'.
 * Returns the new length; *nevents (if not NULL) gets the event count. A
 * last action line without a source (a damaged record) carries no event:
 * *orphan (if not NULL) points at it inside p, beyond the returned length
 * and still intact, so that the caller can dead-letter it; {NULL, 0}
 * when every action has its source. */
size_t sl_bulk_v1_to_events(char *p, size_t len, uint32_t *nevents,
                            struct sl_span *orphan);

/* ---- Items and action lines -------------------------------------------- */

/* Where one item's lines are (the indexer keeps the action lines beside
 * the record's events): offsets and lengths without the newline. */
struct sl_bulk_item {
  size_t act_off, act_len;    /* in the action-line buffer */
  size_t src_off, src_len;    /* in the events payload */
};

/* Read _index and _id from an action line such as
 * {"create":{"_index":"x","_id":"y"}}. Missing fields give empty strings.
 * SL_EPARSE if the line is not a one-key JSON object of objects. */
int sl_bulk_action_parse(const char *line, size_t len, struct sl_buf *index,
                         struct sl_buf *id) SL_WUR;

/* ---- Parsing a _bulk response ------------------------------------------ */

struct sl_bulk_result {
  int status;              /* item HTTP status; 0 when missing */
  const char *err_type;    /* error.type or NULL; borrowed from the resp */
  const char *err_reason;  /* error.reason or NULL; borrowed */
};

struct sl_bulk_resp {
  json_t *root;                   /* owns the strings above */
  int errors;                     /* the top-level "errors" flag */
  size_t n;                       /* number of items */
  struct sl_bulk_result *items;   /* n entries, in request order */
};

/* Parse a response to a request with `nitems` items. The items are matched
 * by position, so the request must have used a filter_path that keeps
 * items.*.status (see SL_BULK_FILTER_PATH). SL_EPARSE when the body is not
 * JSON, has no items array or a different number of items. */
int sl_bulk_resp_parse(const char *body, size_t len, size_t nitems,
                       struct sl_bulk_resp *out) SL_WUR;
void sl_bulk_resp_free(struct sl_bulk_resp *r);

/* Keeps positions (every item keeps status and _id), drops the rest. */
#define SL_BULK_FILTER_PATH                                               \
  "errors,items.*.status,items.*._id,items.*.error.type,"                 \
  "items.*.error.reason"

/* ---- Dead letters ------------------------------------------------------ */

/* Everything known about an item ES refused for good. */
struct sl_deadletter {
  const char *orig_index;   /* _index of the refused action ("" unknown) */
  const char *orig_id;      /* _id of the refused action ("" unknown) */
  const char *action;       /* the original action line */
  size_t action_len;
  const char *doc;          /* the original source line */
  size_t doc_len;
  int status;               /* item status ES gave */
  const char *err_type;     /* may be NULL */
  const char *err_reason;   /* may be NULL */
  int64_t now_ns;           /* @timestamp of the dead letter */
  int no_pipeline;          /* action says "pipeline":"_none" (the
                             * configured pipeline may be why the event
                             * was refused; final_pipeline still runs) */
};

/* _id of the dead letter: xxh3-128 hex of (original id + "dl"), or of the
 * original action and document when the original had no _id. Same input,
 * same id, so a re-sent dead letter answers 409 like any other event. */
void sl_bulk_deadletter_id(const struct sl_deadletter *dl, char out[33]);

/* Append the action line and the document of the dead-letter event for
 * index `dl_index` (a logs-<dataset>-<namespace> name gets matching
 * data_stream.* fields and event.dataset). */
int sl_bulk_deadletter(struct sl_buf *out, const char *dl_index,
                       const struct sl_deadletter *dl) SL_WUR;

/* Append one JSON line (with '\n') for data_dir/deadletter/<day>.ndjson:
 * the original action and document as strings plus the error(s).
 * dl_status (0: none) and its error describe the refusal of the dead-letter
 * event itself when ES refused that too. */
int sl_bulk_deadletter_line(struct sl_buf *out, const struct sl_deadletter *dl,
                            int dl_status, const char *dl_err_type,
                            const char *dl_err_reason) SL_WUR;

/* ---- Compression -------------------------------------------------------- */

/* gzip (zlib deflate with a gzip header, what Content-Encoding: gzip means)
 * of in[0..len) appended to out at `level` (1..9). */
int sl_bulk_gzip(const char *in, size_t len, int level,
                 struct sl_buf *out) SL_WUR;

#endif
