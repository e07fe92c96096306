/* indexer.h - sends spool records to Elasticsearch with _bulk: batching,
 * retries, dead letters and record accounting. The HTTP requests go
 * through es_client.h (libcurl multi on the libuv loop), dead letters
 * through deadletter.h.
 *
 * Per item: 200/201 done; 409 done (duplicate, counted); 429/5xx retried
 * with capped full-jitter backoff (only those items); other 4xx -> dead
 * letter into logs-sluice.deadletter-default, and into
 * data_dir/deadletter/ (NDJSON) if ES refuses that too. Whole request: 413
 * splits; 401/403, connection errors and timeouts retry forever with
 * backoff, reporting not-ready. A record's done callback runs once every
 * one of its events reached a final outcome.
 *
 * Config keys (the `elasticsearch:` object, handed over as the typed
 * struct sl_es_conf that config.c fills; durations are ms, sizes bytes):
 *
 *   key                 type      default                          help
 *   hosts               str_list  (required)   URLs, round robin; a failed
 *                                              request goes to the next one
 *   username            str       -            basic auth user
 *   password            str       -            basic auth password
 *   api_key             str       -            "id:key" or its base64 form;
 *                                              Authorization: ApiKey
 *   ssl.ca              str       -            CA file (PEM)
 *   ssl.verify          bool      true         verify certificate and host
 *   compression         bool      true         gzip request bodies
 *   compression_level   int       1            zlib level 0..9 (0: stored)
 *   bulk_max_bytes      size      5MiB         largest uncompressed body
 *   bulk_max_events     int       5000         most items per request
 *   flush_interval      duration  1s           send a partial bulk after
 *   max_inflight        int       4            _bulk requests at once
 *   max_pending_events  int       50000        events held before submit
 *                                              says SL_EAGAIN
 *   timeout             duration  60s          per request, then retried
 *   retry.backoff_base  duration  500ms        first retry ceiling
 *   retry.backoff_max   duration  60s          largest retry ceiling
 *   index_mode          enum      data_stream  data_stream|daily
 *   index_prefix        str       sluice       prefix of daily indices
 *   namespace           str       default      data_stream.namespace default
 *   deadletter_index    str       logs-sluice.deadletter-default
 *   template.patterns   str_list  logs-*-*     data stream template patterns
 *   template.priority   int       150          (see es_setup.h for why)
 *   ilm_policy          str       -            index.lifecycle.name to set;
 *                                              unset: data stream lifecycle
 *                                              (ES >= 8.11) or policy `logs`
 *
 * Ownership: submit takes the payload only when it returns 0; on any error
 * (SL_EAGAIN included) the caller still owns it. A taken payload lives
 * until its record's done callback has returned (or until close), then
 * goes to the payload-free callback (sl_spool_recycle in the collector),
 * or to free() when none is set. The indexer's own per-record memory (item
 * array, action lines) is recycled: at most 8 spare records, each with
 * <= 16384 items and <= 2 MiB of action lines, are kept for later submits.
 */
#ifndef SL_INDEXER_H
#define SL_INDEXER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "config.h"
#include "sl_buf.h"
#include "spool.h"

struct sl_indexer;

typedef void (*sl_indexer_done_cb)(void *arg, uint64_t rec_id);
/* Takes a payload the indexer is done with: `cap` is the capacity the
 * record was submitted with. */
typedef void (*sl_indexer_payload_free_cb)(void *arg, char *payload,
                                           size_t cap);

/* conf: see config.h; everything kept is copied, so conf may be freed
 * once this returns. */
int sl_indexer_new(uv_loop_t *loop, const struct sl_es_conf *conf,
                   struct sl_indexer **out, char *err, size_t errlen);
/* Begin ES setup (GET /, templates, lifecycle) and sending. */
int sl_indexer_start(struct sl_indexer *ix);

/* Where taken payloads go when their record is finished (default free()).
 * Set it before the first submit. */
void sl_indexer_set_payload_free(struct sl_indexer *ix,
                                 sl_indexer_payload_free_cb cb, void *arg);

/* Take ownership of a spool record's payload (rec->data, rec->cap; the
 * struct itself is not kept): format 2, NDJSON events, or format 1,
 * _bulk pairs, whose source lines are the events. The payload is read,
 * never rewritten. The
 * action lines are made here, routed by index_mode, index_prefix and
 * namespace as configured now; rec->append_ns (the record's append time)
 * dates events without a usable @timestamp, the same at every
 * re-delivery. A format-1 record that ends in an action
 * line without its event (damaged) gets an item for that line, which goes
 * straight to the dead-letter file (error type missing_source_line).
 * SL_EAGAIN when the indexer holds as many events as it is allowed
 * (backpressure: try again after a done callback). SL_ENOMEM: try again
 * later. SL_ECLOSED once closing. On errors the caller keeps the payload,
 * unchanged, and may submit it again. */
int sl_indexer_submit(struct sl_indexer *ix, const struct sl_spool_rec *rec,
                      sl_indexer_done_cb cb, void *arg);
/* Told the target (index or data stream name, not NUL-terminated) of the
 * events submit routes, whenever it differs from the previous event's:
 * the retention job learns new data streams this way. Runs inside
 * submit; must not call back into the indexer. */
typedef void (*sl_indexer_target_cb)(void *arg, const char *target,
                                     size_t len);
void sl_indexer_set_target_cb(struct sl_indexer *ix, sl_indexer_target_cb cb,
                              void *arg);

/* Test hook: recycled records kept now (<= 8). */
size_t sl_indexer__spare_recs(const struct sl_indexer *ix);

/* 1 when ES answered and setup succeeded and no auth failure is current. */
int sl_indexer_ready(const struct sl_indexer *ix);
/* Events accepted by submit and not yet done. */
uint64_t sl_indexer_pending(const struct sl_indexer *ix);
/* Item outcomes so far (for `replay`'s summary): created, duplicates
 * (409: the _id was there), and events that ended as dead letters. */
struct sl_indexer_counts {
  uint64_t created, duplicates, dead_lettered;
};
void sl_indexer_counts(const struct sl_indexer *ix,
                       struct sl_indexer_counts *out);
/* For /debug/state (a new reference; NULL without memory): ready,
 * reachable (the last request, _bulk, setup or the idle probe, got an
 * HTTP answer), not_ready_reason, version, last_check / last_answer /
 * last_error_at (RFC 3339 or null), last_error, probes, cluster (status
 * from _cluster/health every 30 s, nodes, checked; or a note when the user
 * lacks the monitor privilege), items by status (as
 * sluice_collector_es_items_total), requests by HTTP status, retries, splits,
 * deadletters (total, es, file, file_errors, last_status, last_reason,
 * last_at), inflight_requests, pending_events. */
json_t *sl_indexer_state(const struct sl_indexer *ix);
/* Append Prometheus metrics (sluice_es_*). */
int sl_indexer_metrics(const struct sl_indexer *ix, struct sl_buf *out);

/* Stop after in-flight requests finish or `timeout_ms` passes; callbacks of
 * unfinished records are not called (their records stay in the spool). */
void sl_indexer_close(struct sl_indexer *ix, uint64_t timeout_ms,
                      void (*cb)(void *arg), void *arg);

#endif
