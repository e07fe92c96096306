/* bulk.h - pure builders for Elasticsearch _bulk bodies (no I/O), so tests
 * check the exact bytes without a running ES (fluent-bit test_formatter).
 *
 * Spool record payload format (the contract between input and indexer):
 * NDJSON pairs, each event as two lines:
 *   {"create":{"_index":"<target>","_id":"<event.id>"}}\n
 *   <event JSON, one line>\n
 * The input builds them with sl_bulk_action(); the indexer cuts the payload
 * into items at newlines without parsing the documents.
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
 * data_stream.dataset (sanitised: lower case, no '-', '\\', '/', '*', '?',
 * '"', '<', '>', '|', ' ', ',', '#'), namespace from data_stream.namespace
 * or the route default, date from @timestamp (UTC; now if absent/bad). */
int sl_bulk_target(const struct sl_route *r, const json_t *event,
                   struct sl_buf *out) SL_WUR;

/* Append the action line plus newline for (index, id). */
int sl_bulk_action(struct sl_buf *out, const char *index, size_t index_len,
                   const char *id, size_t id_len) SL_WUR;

#endif
