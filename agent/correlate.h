/* correlate.h - correlation ids: trace.id, span.id, transaction.id and
 * http.request.id, from keys (json/logfmt parsers) and from per-input
 * rules over the message.
 *
 * Keys are recognised case-insensitively (sl_corr_key), each in a family:
 *   w3c   traceparent: "vv-<32hex trace>-<16hex parent>-<2hex flags>" ->
 *         trace.id and span.id (= parent-id)
 *   b3    X-B3-TraceId (16 or 32 hex; 64-bit ids left-padded with zeros to
 *         32) / X-B3-SpanId; the single header b3:
 *         "<traceid>-<spanid>[-<sampled>[-<parent>]]"
 *   xray  X-Amzn-Trace-Id "Root=1-<8hex>-<24hex>;Parent=<16hex>;..." ->
 *         trace.id = the 32 hex digits, span.id = Parent
 *   otel  trace_id traceId TraceId / span_id spanId SpanId (any case)
 *   ecs   trace.id / span.id (dotted or nested, json only)
 *   dd    dd.trace_id / dd.span_id (decimal uint64, json only)
 *   txn   transaction_id transactionId transaction.id -> transaction.id
 *   req   request_id RequestId request-id X-Request-ID X-Correlation-ID
 *         correlation_id (and the _ - and camel-case spellings) ->
 *         http.request.id
 * The first family that gives a trace or span id owns trace.id and
 * span.id: a span.id is only taken from the same source as the trace.id
 * (ids of other families stay where the parser puts unknown keys).
 *
 * Rules (`correlation:` on an input) are PCRE2 patterns with a group
 * named "id", each filling one field if it is still empty, in order.
 * Ownership: a struct sl_corr is built at config time and shared
 * read-only by all parse workers (match data is per thread, re.h).
 */
#ifndef SL_AGENT_CORRELATE_H
#define SL_AGENT_CORRELATE_H

#include <stddef.h>

#include <jansson.h>

enum sl_corr_fam {
  SL_CF_NONE, SL_CF_W3C, SL_CF_B3, SL_CF_B3S, SL_CF_XRAY, SL_CF_OTEL,
  SL_CF_ECS, SL_CF_DD, SL_CF_TXN, SL_CF_REQ,
  SL_CF_RULE                /* the input's correlation rules */
};

enum sl_corr_kind { SL_CK_TRACE, SL_CK_SPAN, SL_CK_BOTH, SL_CK_ID };

struct sl_corr_key {
  unsigned char fam;       /* enum sl_corr_fam */
  unsigned char kind;      /* enum sl_corr_kind */
};

/* Classify key [k, k+n) (case-insensitive); 0 if it is no correlation
 * key. */
int sl_corr_key(const char *k, size_t n, struct sl_corr_key *out);

/* The ids of one event. Clear with sl_corr_ids_clear. */
struct sl_corr_ids {
  char trace[33];          /* "" = none */
  char span[17];
  char txn[17];
  const char *req;         /* http.request.id, borrowed; NULL = none */
  size_t req_n;
  unsigned char fam;       /* family owning trace/span, SL_CF_NONE */
};

void sl_corr_ids_clear(struct sl_corr_ids *ids);

/* Offer value [v, v+n) (plain bytes) of key `k`; 1 if it was used (the
 * parser then drops the key), 0 if it stays an ordinary key. */
int sl_corr_offer(struct sl_corr_ids *ids, const struct sl_corr_key *k,
                  const char *v, size_t n);

/* Lower hex of 16 or 32 hex digits (16 padded to 32 when want == 32 and
 * pad), not all zero. 1 on success. */
int sl_corr_hex(const char *s, size_t n, size_t want, int pad, char *out);

/* Per-input rules. */
struct sl_corr;

/* From the input's `correlation:` list; *out stays NULL without rules. */
int sl_corr_new(const json_t *input, struct sl_corr **out, char *err,
                size_t errlen);
void sl_corr_free(struct sl_corr *c);

/* Run the rules over [s, s+n); fills what is still empty. The request id
 * points into s. Thread-safe. */
void sl_corr_apply(const struct sl_corr *c, const char *s, size_t n,
                   struct sl_corr_ids *ids);

#endif
