/* indexer.h - sends spool records to Elasticsearch with _bulk, using libcurl
 * multi driven by the libuv loop (curl docs/examples/multi-uv.c shape).
 *
 * Per item: 200/201 done; 409 done (duplicate, counted); 429/5xx retried
 * with capped full-jitter backoff (only those items); other 4xx -> dead
 * letter into logs-sluice.deadletter-default, and into
 * data_dir/deadletter/*.ndjson if ES refuses that too. Whole request: 413
 * splits; 401/403, connection errors and timeouts retry forever with
 * backoff, reporting not-ready. A record's done callback runs once every
 * one of its events reached a final outcome.
 */
#ifndef SL_INDEXER_H
#define SL_INDEXER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "sl_buf.h"

struct sl_indexer;

typedef void (*sl_indexer_done_cb)(void *arg, uint64_t rec_id);

/* es: the normalised `elasticsearch:` object of the collector config. */
int sl_indexer_new(uv_loop_t *loop, const json_t *es, const char *data_dir,
                   struct sl_indexer **out, char *err, size_t errlen);
/* Begin ES setup (GET /, templates, lifecycle) and sending. */
int sl_indexer_start(struct sl_indexer *ix);

/* Take ownership of a spool record payload (see bulk.h for the format).
 * SL_EAGAIN when the indexer holds as many events as it is allowed
 * (backpressure: try again after a done callback). */
int sl_indexer_submit(struct sl_indexer *ix, uint64_t rec_id, char *payload,
                      size_t len, uint32_t nevents, sl_indexer_done_cb cb,
                      void *arg);

/* 1 when ES answered and setup succeeded and no auth failure is current. */
int sl_indexer_ready(const struct sl_indexer *ix);
/* Events accepted by submit and not yet done. */
uint64_t sl_indexer_pending(const struct sl_indexer *ix);
/* Append Prometheus metrics (sluice_es_*). */
int sl_indexer_metrics(const struct sl_indexer *ix, struct sl_buf *out);

/* Stop after in-flight requests finish or `timeout_ms` passes; callbacks of
 * unfinished records are not called (their records stay in the spool). */
void sl_indexer_close(struct sl_indexer *ix, uint64_t timeout_ms,
                      void (*cb)(void *arg), void *arg);

#endif
