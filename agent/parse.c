/* parse.c - parse contexts, the table of parsers chosen by an input's
 * `parser`, the raw parser, event ids, and the entry point. Events are
 * written by event_writer.c; the JSON parser is parse_json.c. */
#include "parse.h"
#include "parse_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "level.h"
#include "sl_config.h"
#include "sl_err.h"
#include "sl_json.h"

/* The ECS version whose field names sluice writes (ecs.version). */
#define SL_ECS_VERSION "8.11.0"

/* Data stream naming rules (ES): logs-<dataset>-<namespace> must be a
 * valid index name, and neither part may contain '-' so that the name
 * splits back unambiguously. 100 bytes is ECS's documented limit. */
#define SL_DS_MAX 100

/* ---- parsers ----------------------------------------------------------- */

void
sl_parse_corr_rules(const struct sl_parse_ctx *ctx, const char *s, size_t n,
                    struct sl_ew_ev *ev)
{
  struct sl_corr_ids ids;

  if (ctx->corr == NULL)
    return;
  sl_corr_ids_clear(&ids);
  memcpy(ids.trace, ev->trace_id, sizeof(ids.trace));
  memcpy(ids.span, ev->span_id, sizeof(ids.span));
  memcpy(ids.txn, ev->txn_id, sizeof(ids.txn));
  /* Ids from keys own trace/span: a rule cannot pair with them. */
  ids.fam = ev->trace_id[0] || ev->span_id[0] ? SL_CF_OTEL : SL_CF_NONE;
  if (ev->req_id.p)
    ids.req = ev->req_id.p;
  sl_corr_apply(ctx->corr, s, n, &ids);
  memcpy(ev->trace_id, ids.trace, sizeof(ids.trace));
  memcpy(ev->span_id, ids.span, sizeof(ids.span));
  memcpy(ev->txn_id, ids.txn, sizeof(ids.txn));
  if (ev->req_id.p == NULL && ids.req) {
    ev->req_id.p = ids.req;
    ev->req_id.n = ids.req_n;
    ev->req_id.json = 0;
    ev->req_id.fix = 0;
  }
}

/* The whole line as the message; a level word at its start ("ERROR: x",
 * "[warn] x") becomes log.level (level.h); the input's correlation rules
 * run over it. */
static void
raw_event(struct sl_ew *w, const struct sl_parse_ctx *ctx,
          const struct sl_src *src, const char *line, size_t len,
          uint64_t offset, unsigned flags, int64_t read_time_ns)
{
  struct sl_ew_ev ev;
  const char *level = sl_level_scan(line, len);
  size_t slot;

  if (level == NULL && ctx->corr == NULL) {
    sl_ew_raw_event(w, &ctx->ev, src, line, len, offset, flags,
                    read_time_ns, NULL, NULL);
    return;
  }
  sl_ew_ev_clear(&ev, read_time_ns);
  slot = sl_ew_ev_begin(w);
  ev.msg.p = line;
  ev.msg.n = len;
  ev.msg.json = 0;
  ev.msg.fix = 0;
  if (level) {
    ev.level.p = level;
    ev.level.n = strlen(level);
    ev.level.json = 0;
    ev.level.fix = 0;
  }
  sl_parse_corr_rules(ctx, line, len, &ev);
  sl_ew_ev_end(w, &ctx->ev, src, offset, flags, &ev, slot);
}

static const struct sl_parser_ops parser_raw = {
  .name = "raw",
  .event = raw_event,
};

/* Looked up by name; the order is the one of the "supported:" list in the
 * error for an unknown name. */
static const struct sl_parser_ops *const parsers[] = {
  &sl_parser_json,
  &parser_raw,
  &sl_parser_logfmt,
  &sl_parser_nginx,
  &sl_parser_nginx_error,
  &sl_parser_apache,
  &sl_parser_apache_error,
  &sl_parser_syslog,
  &sl_parser_cri,
  &sl_parser_docker,
  &sl_parser_regex,
};

#define NPARSERS (sizeof(parsers) / sizeof(parsers[0]))

static const struct sl_parser_ops *
parser_find(const char *name)
{
  size_t i;

  for (i = 0; i < NPARSERS; i++)
    if (strcmp(parsers[i]->name, name) == 0)
      return parsers[i];
  return NULL;
}

/* ---- then: a second parser on the message ------------------------------ */

void
sl_parse_then(struct sl_ew *w, const struct sl_parse_ctx *ctx,
              const struct sl_src *src, const char *msg, size_t n,
              uint64_t offset, unsigned flags, int64_t ts_ns,
              const char *extra, size_t n_extra)
{
  const struct sl_parse_ctx *in = ctx->then;

  /* The inner parser takes ts_ns where it would take the read time: its
   * own @timestamp wins, else the outer one stays. */
  in->ops->event(w, in, src, msg, n, offset, flags, ts_ns);
  if (n_extra == 0 || w->err)
    return;
  /* Every event ends with its closing brace: reopen it. */
  w->cur--;
  sl_ew_put(w, extra, n_extra);
  sl_ew_byte(w, '}');
}

/* ---- entry point ------------------------------------------------------- */

void
sl_event_id(const char *agent_id, const struct sl_src *src, uint64_t offset,
            char out[33])
{
  if (agent_id == NULL)
    agent_id = "";
  sl_ew_event_id(agent_id, strlen(agent_id), src, offset, out);
}

int
sl_parse_event(const struct sl_parse_ctx *ctx, const struct sl_src *src,
               const char *line, size_t len, uint64_t offset,
               unsigned flags, int64_t read_time_ns, struct sl_buf *out)
{
  struct sl_ew w;
  size_t start = out->len;

  sl_ew_init(&w, out);
  ctx->ops->event(&w, ctx, src, line, len, offset, flags, read_time_ns);
  if (w.err) {
    out->len = start;
    if (out->p)
      out->p[start] = '\0';
    return w.err;
  }
  sl_ew_sync(&w);
  out->p[out->len] = '\0';
  return SL_OK;
}

/* ---- contexts ---------------------------------------------------------- */

static int
cfg_err(char *err, size_t errlen, const char *fmt, const char *a)
{
  if (err && errlen)
    snprintf(err, errlen, fmt, a);
  return SL_ECONFIG;
}

/* NULL if `name` is a usable data stream part, else why not. */
static const char *
ds_name_problem(const char *name)
{
  const char *p;

  if (name[0] == '\0')
    return "must not be empty";
  if (strlen(name) > SL_DS_MAX)
    return "longer than 100 bytes";
  for (p = name; *p; p++) {
    if (*p >= 'A' && *p <= 'Z')
      return "must be lower case";
    if (strchr("-\\/*?\"<>| ,#:", *p))
      return "must not contain any of - \\ / * ? \" < > | , # : or space";
    if ((unsigned char)*p < 0x20)
      return "must not contain control characters";
  }
  if (name[0] == '_' || name[0] == '+' || name[0] == '.')
    return "must not start with _ + or .";
  return NULL;
}

/* Labels are ECS keyword fields: values become strings. A key's dots are
 * replaced by '_' (as Beats do for labels) so that "a.b" stays one label
 * instead of becoming an object that conflicts with the labels mapping. */
static int
render_labels(struct sl_buf *b, const json_t *fields, char *err,
              size_t errlen)
{
  const char *key;
  json_t *v;
  char num[64];
  int first = 1, rc = 0;
  size_t i, at;

  json_object_foreach((json_t *)fields, key, v) {
    if (json_is_null(v))
      continue;
    if (key[0] == '\0')
      return cfg_err(err, errlen, "fields: %s", "empty label name");
    if (json_is_object(v) || json_is_array(v))
      return cfg_err(err, errlen, "fields.%s: must be a scalar", key);
    rc = sl_buf_append_str(b, first ? ",\"labels\":{\"" : ",\"");
    first = 0;
    at = b->len;
    if (rc == 0)
      rc = sl_json_escape(b, key, strlen(key));
    for (i = at; rc == 0 && i < b->len; i++)
      if (b->p[i] == '.')
        b->p[i] = '_';
    if (rc == 0)
      rc = sl_buf_append_str(b, "\":");
    if (rc)
      return rc;
    if (json_is_string(v)) {
      rc = sl_json_str(b, json_string_value(v), json_string_length(v));
    } else if (json_is_integer(v)) {
      snprintf(num, sizeof(num), "\"%" JSON_INTEGER_FORMAT "\"",
               json_integer_value(v));
      rc = sl_buf_append_str(b, num);
    } else if (json_is_real(v)) {
      /* Shortest form that reads back the same double. */
      snprintf(num, sizeof(num), "%.15g", json_real_value(v));
      if (strtod(num, NULL) != json_real_value(v))
        snprintf(num, sizeof(num), "%.17g", json_real_value(v));
      rc = sl_json_str(b, num, strlen(num));
    } else {
      rc = sl_buf_append_str(b, json_is_true(v) ? "\"true\"" : "\"false\"");
    }
    if (rc)
      return rc;
  }
  if (!first)
    rc = sl_buf_append_byte(b, '}');
  return rc;
}

/* Optional string member; NULL if absent or null. */
static int
get_str(const json_t *input, const char *key, const char **out, char *err,
        size_t errlen)
{
  json_t *v = json_object_get(input, key);

  *out = NULL;
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_string(v))
    return cfg_err(err, errlen, "%s: must be a string", key);
  *out = json_string_value(v);
  return 0;
}

static int
render_suffix(struct sl_buf *b, const json_t *input,
              const struct sl_agent_info *info, const char *dataset,
              const char *ns, const char *service, char *err, size_t errlen)
{
  const char *name = info->agent_name ? info->agent_name : info->host_name;
  const char *version = info->version ? info->version : SL_VERSION;
  const json_t *fields = json_object_get(input, "fields");
  int rc;

  /* Plain appends; the first error sticks through the chain. */
  rc = sl_buf_append_str(b, ",\"dataset\":");
  if (!rc) rc = sl_json_str(b, dataset, strlen(dataset));
  if (!rc) rc = sl_buf_append_str(b,
                 "},\"data_stream\":{\"type\":\"logs\",\"dataset\":");
  if (!rc) rc = sl_json_str(b, dataset, strlen(dataset));
  if (!rc) rc = sl_buf_append_str(b, ",\"namespace\":");
  if (!rc) rc = sl_json_str(b, ns, strlen(ns));
  if (!rc) rc = sl_buf_append_str(b, "},\"host\":{\"name\":");
  if (!rc) rc = sl_json_str(b, info->host_name, strlen(info->host_name));
  if (!rc) rc = sl_buf_append_str(b, "},\"agent\":{\"name\":");
  if (!rc) rc = sl_json_str(b, name, strlen(name));
  if (!rc) rc = sl_buf_append_str(b, ",\"id\":");
  if (!rc) rc = sl_json_str(b, info->agent_id, strlen(info->agent_id));
  if (!rc) rc = sl_buf_append_str(b, ",\"version\":");
  if (!rc) rc = sl_json_str(b, version, strlen(version));
  if (!rc) rc = sl_buf_append_str(b, ",\"type\":\"sluice\"},\"ecs\":"
                                  "{\"version\":\"" SL_ECS_VERSION "\"}");
  if (!rc && service) {
    rc = sl_buf_append_str(b, ",\"service\":{\"name\":");
    if (!rc) rc = sl_json_str(b, service, strlen(service));
    if (!rc) rc = sl_buf_append_byte(b, '}');
  }
  if (rc)
    return rc;
  if (fields && !json_is_null(fields)) {
    if (!json_is_object(fields))
      return cfg_err(err, errlen, "%s: must be a mapping", "fields");
    rc = render_labels(b, fields, err, errlen);
    if (rc)
      return rc;
  }
  return sl_buf_append_byte(b, '}');
}

/* Parsers whose message may go through `then:`. Their own top-level
 * fields (stream) are names no second parser writes at the top level. */
static int
takes_then(const struct sl_parser_ops *ops)
{
  return ops == &sl_parser_cri || ops == &sl_parser_docker;
}

/* The input's `then: {parser, field: message, <that parser's options>}`
 * becomes ctx->then: a context built from a copy of the input with the
 * second parser, its options, and the outer dataset (same suffix). */
static int
then_new(const json_t *input, const struct sl_agent_info *info,
         const char *dataset, struct sl_parse_ctx *ctx, char *err,
         size_t errlen)
{
  json_t *then = json_object_get(input, "then"), *in = NULL, *opts = NULL;
  const char *parser, *field, *key;
  json_t *v;
  char why[256];
  int rc;

  if (then == NULL || json_is_null(then))
    return SL_OK;
  if (!json_is_object(then))
    return cfg_err(err, errlen, "%s: must be a mapping", "then");
  if (!takes_then(ctx->ops))
    return cfg_err(err, errlen, "then: parser '%s' does not take a second "
                   "parser (cri and docker do)", ctx->ops->name);
  if ((rc = get_str(then, "parser", &parser, err, errlen)) != 0 ||
      (rc = get_str(then, "field", &field, err, errlen)) != 0)
    return rc;
  if (parser == NULL)
    return cfg_err(err, errlen, "then.%s: required", "parser");
  if (field && strcmp(field, "message") != 0)
    return cfg_err(err, errlen, "then.field: '%s' is not supported (only "
                   "message)", field);
  /* stream is the outer parser's: a regex group may not claim it. */
  json_object_foreach(json_object_get(json_object_get(then, "regex"),
                                      "fields"), key, v)
    if (json_is_string(v) && strcmp(json_string_value(v), "stream") == 0)
      return cfg_err(err, errlen, "then.regex.fields.%s: 'stream' is the "
                     "container's own field", key);
  in = json_deep_copy(input);
  opts = json_deep_copy(then);
  if (in == NULL || opts == NULL) {
    rc = SL_ENOMEM;
    goto done;
  }
  json_object_del(opts, "field");
  if (json_object_del(in, "then") != 0 ||
      json_object_update(in, opts) != 0 ||
      json_object_set_new(in, "dataset", json_string(dataset)) != 0) {
    rc = SL_ENOMEM;
    goto done;
  }
  why[0] = '\0';
  rc = sl_parse_ctx_new(in, info, &ctx->then, why, sizeof(why));
  if (rc == SL_ECONFIG)
    cfg_err(err, errlen, "then: %s", why);

done:
  json_decref(in);
  json_decref(opts);
  return rc;
}

int
sl_parse_ctx_new(const json_t *input, const struct sl_agent_info *info,
                 struct sl_parse_ctx **out, char *err, size_t errlen)
{
  const char *parser, *dataset, *ns, *service, *why;
  struct sl_parse_ctx *ctx = NULL;
  char names[256];
  struct sl_buf b;
  size_t i, at;
  int rc;

  *out = NULL;
  sl_buf_init(&b, 1 << 20);
  if (!json_is_object(input)) {
    rc = cfg_err(err, errlen, "%s: must be a mapping", "input");
    goto fail;
  }
  if (info == NULL || info->host_name == NULL || info->agent_id == NULL) {
    rc = cfg_err(err, errlen, "%s: host name and agent id are required",
                 "agent");
    goto fail;
  }
  if ((rc = get_str(input, "parser", &parser, err, errlen)) ||
      (rc = get_str(input, "dataset", &dataset, err, errlen)) ||
      (rc = get_str(input, "namespace", &ns, err, errlen)) ||
      (rc = get_str(input, "service", &service, err, errlen)))
    goto fail;
  /* The same defaults as the agent's config schema. */
  parser = parser ? parser : "raw";
  ns = ns ? ns : "default";
  if (service && service[0] == '\0')
    service = NULL;
  ctx = calloc(1, sizeof(*ctx));
  if (ctx == NULL) {
    rc = SL_ENOMEM;
    goto fail;
  }
  ctx->ops = parser_find(parser);
  if (ctx->ops == NULL) {
    names[0] = '\0';
    for (i = 0, at = 0; i < NPARSERS && at < sizeof(names); i++)
      at += (size_t)snprintf(names + at, sizeof(names) - at, "%s%s",
                             i ? ", " : "", parsers[i]->name);
    if (err && errlen)
      snprintf(err, errlen, "parser: '%s' is not supported (supported: %s)",
               parser, names);
    rc = SL_ECONFIG;
    goto fail;
  }
  if (dataset == NULL)
    dataset = ctx->ops->dataset ? ctx->ops->dataset : "generic";
  if ((why = ds_name_problem(dataset)) != NULL) {
    if (err && errlen)
      snprintf(err, errlen, "dataset: '%s' %s", dataset, why);
    rc = SL_ECONFIG;
    goto fail;
  }
  if ((why = ds_name_problem(ns)) != NULL) {
    if (err && errlen)
      snprintf(err, errlen, "namespace: '%s' %s", ns, why);
    rc = SL_ECONFIG;
    goto fail;
  }
  /* Before the parser's init: parsers read the zone from ctx->ts. */
  if ((rc = sl_ts_conf_new(input, &ctx->ts, err, errlen)) != 0 ||
      (rc = sl_corr_new(input, &ctx->corr, err, errlen)) != 0)
    goto fail;
  if (ctx->ops->init &&
      (rc = ctx->ops->init(input, &ctx->priv, err, errlen)) != 0)
    goto fail;
  if ((rc = then_new(input, info, dataset, ctx, err, errlen)) != 0)
    goto fail;
  ctx->dataset = strdup(dataset);
  if (ctx->dataset == NULL) {
    rc = SL_ENOMEM;
    goto fail;
  }
  ctx->ev.agent_id_len = strlen(info->agent_id);
  ctx->ev.agent_id = strdup(info->agent_id);
  if (ctx->ev.agent_id == NULL) {
    rc = SL_ENOMEM;
    goto fail;
  }
  rc = render_suffix(&b, input, info, dataset, ns, service, err, errlen);
  if (rc) {
    if (rc != SL_ECONFIG)
      cfg_err(err, errlen, "input: %s", sl_strerror(rc));
    goto fail;
  }
  ctx->ev.suffix = sl_buf_take(&b, &ctx->ev.suffix_len);
  *out = ctx;
  return SL_OK;

fail:
  sl_buf_free(&b);
  sl_parse_ctx_free(ctx);
  return rc;
}

void
sl_parse_ctx_free(struct sl_parse_ctx *ctx)
{
  if (ctx == NULL)
    return;
  if (ctx->priv && ctx->ops->destroy)
    ctx->ops->destroy(ctx->priv);
  sl_parse_ctx_free(ctx->then);
  sl_ts_conf_free(ctx->ts);
  sl_corr_free(ctx->corr);
  free(ctx->ev.agent_id);
  free(ctx->ev.suffix);
  free(ctx->dataset);
  free(ctx);
}

const char *
sl_parse_ctx_dataset(const struct sl_parse_ctx *ctx)
{
  return ctx->dataset;
}
