/* parse_internal.h - the interface between parse.c and the parsers behind
 * parse.h (parse_json.c, ...). Not for use outside agent/parse*.c.
 *
 * A parser is a `struct sl_parser_ops` found by the `parser:` name of an
 * input; it writes events with event_writer.h. Adding one: a new
 * parse_<name>.c defining `const struct sl_parser_ops sl_parser_<name>`, a
 * declaration below, a row in parse.c's table and a line in meson.build.
 */
#ifndef SL_PARSE_INTERNAL_H
#define SL_PARSE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "event_writer.h"
#include "parse.h"
#include "correlate.h"
#include "timestamp.h"

struct sl_parser_ops {
  const char *name;        /* the input's `parser:` value */
  const char *dataset;     /* event.dataset unless the input sets one
                            * (NULL: "generic") */
  /* Optional (NULL: nothing to set up). Read the parser's own settings from
   * the normalised input object and build what event() needs; *priv ends up
   * in ctx->priv. SL_ECONFIG with a message in `err` for bad settings. */
  int (*init)(const json_t *input, void **priv, char *err, size_t errlen);
  /* Optional: free what init() built. */
  void (*destroy)(void *priv);
  /* Write exactly one event for the line (no '\n'; see sl_parse_event).
   * Never fails on bad input: a line the parser cannot read becomes
   * sl_ew_raw_event() with an error and tag. Buffer errors stay sticky in
   * w. Runs on parse workers concurrently: ctx is read-only. */
  void (*event)(struct sl_ew *w, const struct sl_parse_ctx *ctx,
                const struct sl_src *src, const char *line, size_t len,
                uint64_t offset, unsigned flags, int64_t read_time_ns);
};

/* Immutable after sl_parse_ctx_new. */
struct sl_parse_ctx {
  const struct sl_parser_ops *ops;
  void *priv;              /* ops->init's state, or NULL */
  struct sl_ew_static ev;  /* agent id and pre-rendered suffix */
  struct sl_ts_conf *ts;   /* timezone and timestamp layouts */
  struct sl_corr *corr;    /* correlation rules, NULL: none */
  /* The input's `then:` (parse.c): a second parser on the message, with
   * its own context (same dataset, zone and labels), or NULL. */
  struct sl_parse_ctx *then;
  char *dataset;           /* event.dataset (owned), for /debug/state */
};

/* Run the input's correlation rules over [s, s+n) into the event's empty
 * id fields (ids found in the line's keys come first). */
void sl_parse_corr_rules(const struct sl_parse_ctx *ctx, const char *s,
                         size_t n, struct sl_ew_ev *ev);

/* For parsers that take `then:` (cri, docker): write the event of
 * ctx->then's parser for [msg, msg+n) (plain bytes), with `ts_ns` as the
 * @timestamp unless that parser finds one, then append the outer parser's
 * own top-level members `extra` (",\"k\":v...", n_extra bytes, may be 0)
 * to it. A failure of the second parser is its raw event with its tag
 * (sluice_<parser>_parse_failure) and the message as text. */
void sl_parse_then(struct sl_ew *w, const struct sl_parse_ctx *ctx,
                   const struct sl_src *src, const char *msg, size_t n,
                   uint64_t offset, unsigned flags, int64_t ts_ns,
                   const char *extra, size_t n_extra);

extern const struct sl_parser_ops sl_parser_json;
extern const struct sl_parser_ops sl_parser_logfmt;
extern const struct sl_parser_ops sl_parser_nginx;
extern const struct sl_parser_ops sl_parser_nginx_error;
extern const struct sl_parser_ops sl_parser_apache;
extern const struct sl_parser_ops sl_parser_apache_error;
extern const struct sl_parser_ops sl_parser_syslog;
extern const struct sl_parser_ops sl_parser_cri;
extern const struct sl_parser_ops sl_parser_docker;
extern const struct sl_parser_ops sl_parser_regex;

#endif
