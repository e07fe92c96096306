/* deadletter.h - what happens to an event Elasticsearch refused for good.
 *
 * First stop: the event is rewritten as a dead-letter event (the original
 * action and document as strings, the error, the original index and id)
 * for the `deadletter_index` data stream and sent like any other item.
 * Last stop, when ES refuses that too (or it cannot be built): one JSON
 * line in data_dir/deadletter/<YYYY-MM-DD>.ndjson (UTC day), appended and
 * fsync'ed before the caller counts the event as delivered.
 *
 * The documents themselves come from bulk.c's pure builders
 * (sl_bulk_deadletter, sl_bulk_deadletter_line); this module keeps the
 * refusal's details and does the file I/O. Nothing here keeps state
 * between calls.
 */
#ifndef SL_DEADLETTER_H
#define SL_DEADLETTER_H

#include <stddef.h>

#include "sl_buf.h"

/* An event rewritten as a dead letter; owns every string. */
struct sl_dl {
  char *orig_index, *orig_id;  /* of the refused action ("" unknown) */
  int status;                  /* item status ES gave the original */
  char *err_type, *err_reason; /* may be NULL */
  char *bytes;                 /* action and document lines, '\n' each */
  size_t len;
};

/* One refused event as the indexer holds it: the original lines (borrowed,
 * without newlines) and, when it was already rewritten, its dead letter. */
struct sl_dl_src {
  const char *action;
  size_t action_len;
  const char *doc;
  size_t doc_len;
  const struct sl_dl *dl;      /* NULL: not rewritten yet */
  int no_pipeline;             /* the dead letter skips the ingest
                                * pipeline (elasticsearch.pipeline) */
};

/* Rewrite src (which must have no dl yet) after ES answered `status` with
 * error type/reason (either may be NULL) into a dead letter for dl_index.
 * SL_ENOMEM or a builder error leaves *out NULL. */
int sl_dl_make(const char *dl_index, const struct sl_dl_src *src,
               int status, const char *err_type, const char *err_reason,
               struct sl_dl **out) SL_WUR;
void sl_dl_free(struct sl_dl *d);

/* One line of the dead-letter file: the event, and the refusal that sent
 * it there (of the original, or of its dead letter when src.dl is set). */
struct sl_dl_entry {
  struct sl_dl_src src;
  int status;                  /* 0: none (no answer, unsendable line) */
  const char *err_type, *err_reason;
};

/* Append one line per entry to <dir>/<UTC day>.ndjson (dir is created if
 * needed), fsync the file and the directory. 0 means every line is
 * durable; on error nothing may be counted as written (a partial append
 * is possible; the retry writes the lines again). */
int sl_dl_file_append(const char *dir, const struct sl_dl_entry *e,
                      size_t n) SL_WUR;

#endif
