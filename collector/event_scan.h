/* event_scan.h - one pass over a received event, without a DOM.
 *
 * The collector needs only a handful of fields of each event to route it
 * (event.id, @timestamp, event.dataset, data_stream.*) and otherwise
 * forwards the bytes as they came. Loading every event into jansson cost
 * more than half of the collector's CPU (perf, bench/RESULTS.md), so the
 * input first tries this scanner: it validates the text as one JSON object
 * and records where the wanted fields are. Whenever it is unsure (a wanted
 * string with escapes, a wanted key twice, numbers it does not bound, deep
 * nesting) it refuses, and the input takes the jansson path instead; so a
 * refusal costs speed, never correctness. Accepting is only allowed for
 * text jansson accepts too (tests/unit/collector/test_event_scan.c checks
 * that differentially).
 */
#ifndef SL_EVENT_SCAN_H
#define SL_EVENT_SCAN_H

#include <stddef.h>

#include <jansson.h>

#include "sl_buf.h"

/* ES refuses a longer _id; a longer (or empty) event.id is not used: the
 * intake replaces it by the hash of the event's bytes. */
#define SL_EVENT_ID_MAX 512

struct sl_event_fields {
  /* String contents (between the quotes, no escapes inside); p == NULL
   * when absent. */
  struct sl_span id;            /* event.id, or top-level "event.id" */
  struct sl_span timestamp;     /* @timestamp (string only) */
  struct sl_span ev_dataset;    /* event.dataset */
  struct sl_span ds_dataset;    /* data_stream.dataset */
  struct sl_span ds_namespace;  /* data_stream.namespace */
  int has_timestamp;            /* @timestamp present (any type) */
  int has_newline;              /* CR or LF as whitespace: not one line */
  long event_open;              /* offset of the '{' of the top-level
                                   "event" object, -1 if absent */
  int event_empty;              /* that object has no members */
  size_t close;                 /* offset of the final '}' */
  int empty;                    /* the event has no members */
  size_t nkeys;                 /* object members at every level */
  int depth;                    /* deepest object/array nesting (1: flat) */
};

/* 0 when p[0..n) is one JSON object the scanner is sure of, with f filled;
 * SL_EPARSE otherwise (take the slow path). */
int sl_event_scan(const char *p, size_t n, struct sl_event_fields *f);

/* The same event.id lookup on a jansson object, for the slow paths of the
 * intake and of routing (so both agree on which id is usable): event.id
 * nested, else the dotted key, as a string of 1..SL_EVENT_ID_MAX bytes.
 * The span borrows from `ev`; p == NULL when there is no usable id. */
struct sl_span sl_event_json_id(const json_t *ev);

/* The same counts as sl_event_fields.nkeys/depth, on a jansson value. */
void sl_event_json_shape(const json_t *v, size_t *nkeys, int *depth);

#endif
