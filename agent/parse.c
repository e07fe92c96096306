/* parse.c - parse contexts, the ECS event writer shared by all parsers,
 * the raw parser (and the fallback for lines a parser cannot read),
 * event ids, and dispatch by the input's `parser`. */
#include "parse.h"
#include "parse_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "sl_config.h"
#include "sl_err.h"
#include "sl_json.h"
#include "sl_time.h"

/* The ECS version whose field names sluice writes (ecs.version). */
#define SL_ECS_VERSION "8.11.0"

/* Data stream naming rules (ES): logs-<dataset>-<namespace> must be a
 * valid index name, and neither part may contain '-' so that the name
 * splits back unambiguously. 100 bytes is ECS's documented limit. */
#define SL_DS_MAX 100

/* ---- writer helpers ---------------------------------------------------- */

/* Where a writer points after a failed first reserve: writes of 0 bytes
 * stay harmless, longer ones take the slow path and see `err`. */
static char w_dummy[1];

void
sl__w_init(struct sl__w *w, struct sl_buf *b)
{
  int rc;

  w->b = b;
  w->err = 0;
  /* A buffer that never held anything has no memory yet. */
  if (b->p == NULL && (rc = sl_buf_reserve(b, 256)) != 0) {
    w->err = rc;
    w->cur = w->lim = w_dummy;
    return;
  }
  w->cur = b->p + b->len;
  w->lim = b->p + b->cap - 1;
}

int
sl__w_grow(struct sl__w *w, size_t n)
{
  struct sl_buf *b = w->b;
  int rc;

  if (w->err)
    return 0;
  b->len = sl__w_len(w);
  rc = sl_buf_reserve(b, n);
  if (rc) {
    w->err = rc;
    return 0;
  }
  w->cur = b->p + b->len;
  w->lim = b->p + b->cap - 1;
  return 1;
}

/* The same output as sl_json_escape (short escapes, \u00xx, U+FFFD for
 * invalid UTF-8) except NUL, written through the inline writer: the raw
 * parser escapes every whole line, and a call per run of plain bytes was
 * the largest cost of a raw event. */
void
sl__w_escape(struct sl__w *w, const char *s, size_t n)
{
  static const char hex[] = "0123456789abcdef";
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0, run, k;
  char esc[6];

  while (i < n) {
    run = i;
    while (run < n && !sl_json_stop[u[run]])
      run++;
    sl__w_put(w, s + i, run - i);
    i = run;
    if (i == n)
      break;
    switch (u[i]) {
    case '"':  SL__W_LIT(w, "\\\""); break;
    case '\\': SL__W_LIT(w, "\\\\"); break;
    case '\n': SL__W_LIT(w, "\\n"); break;
    case '\r': SL__W_LIT(w, "\\r"); break;
    case '\t': SL__W_LIT(w, "\\t"); break;
    case '\b': SL__W_LIT(w, "\\b"); break;
    case '\f': SL__W_LIT(w, "\\f"); break;
    case 0:
      /* NUL: the collector's jansson refuses \u0000 (see the header). */
      SL__W_LIT(w, "\xEF\xBF\xBD");
      break;
    default:
      if (u[i] < 0x20) {
        memcpy(esc, "\\u00", 4);
        esc[4] = hex[u[i] >> 4];
        esc[5] = hex[u[i] & 15];
        sl__w_put(w, esc, 6);
        break;
      }
      k = sl_utf8_seq(u + i, n - i);
      if (k == 0) {
        SL__W_LIT(w, "\xEF\xBF\xBD");
      } else {
        sl__w_put(w, s + i, k);
        i += k - 1;
      }
      break;
    }
    i++;
  }
}

void
sl__w_repair(struct sl__w *w, const char *s, size_t n)
{
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0, run, k;

  while (i < n) {
    run = i;
    while (run < n && u[run] < 0x80 && u[run] != '\\')
      run++;
    sl__w_put(w, s + i, run - i);
    i = run;
    if (i == n)
      break;
    if (u[i] == '\\') {
      /* Valid input: an escape is 2 bytes, or 6 for \uXXXX. */
      if (u[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0) {
        SL__W_LIT(w, "\\ufffd");
        i += 6;
      } else {
        sl__w_put(w, s + i, 2);
        i += 2;
      }
      continue;
    }
    k = sl_utf8_seq(u + i, n - i);
    if (k == 0) {
      SL__W_LIT(w, "\xEF\xBF\xBD");
      i++;
    } else {
      sl__w_put(w, s + i, k);
      i += k;
    }
  }
}

void
sl__w_u64(struct sl__w *w, uint64_t v)
{
  char tmp[20];
  size_t i = sizeof(tmp);

  do {
    tmp[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  sl__w_put(w, tmp + i, sizeof(tmp) - i);
}

/* "text" for either kind of sl__text. */
static void
w_text(struct sl__w *w, const struct sl__text *t)
{
  sl__w_byte(w, '"');
  if (!t->json)
    sl__w_escape(w, t->p, t->n);
  else if (t->fix)
    sl__w_repair(w, t->p, t->n);
  else
    sl__w_put(w, t->p, t->n);
  sl__w_byte(w, '"');
}

/* ---- event ids --------------------------------------------------------- */

static void
put_le64(unsigned char *p, uint64_t v)
{
  int i;

  for (i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static void
hex64(char *out, uint64_t v)
{
  static const char hex[] = "0123456789abcdef";
  int i;

  for (i = 15; i >= 0; i--) {
    out[i] = hex[v & 15];
    v >>= 4;
  }
}

/* The hashed bytes: agent id, one NUL (so "ab"+dev cannot collide with
 * "a"+...), then dev, ino, fp and offset as little-endian u64. The layout
 * is part of the delivery guarantee: changing it re-ids every event. */
static void
event_id(const char *aid, size_t n, const struct sl_src *src,
         uint64_t offset, char out[33])
{
  enum { TAIL = 1 + 4 * 8, SMALL = 256 };
  unsigned char buf[SMALL + TAIL], *t;
  XXH128_hash_t h;

  t = n <= SMALL ? buf + n : buf;
  t[0] = 0;
  put_le64(t + 1, src ? src->dev : 0);
  put_le64(t + 9, src ? src->ino : 0);
  put_le64(t + 17, src ? src->fp : 0);
  put_le64(t + 25, offset);
  if (n <= SMALL) {
    memcpy(buf, aid, n);
    h = XXH3_128bits(buf, n + TAIL);
  } else {
    /* Agent ids are short; this path exists so that none is too long. */
    XXH3_state_t st;

    XXH3_128bits_reset(&st);
    XXH3_128bits_update(&st, aid, n);
    XXH3_128bits_update(&st, buf, TAIL);
    h = XXH3_128bits_digest(&st);
  }
  hex64(out, h.high64);
  hex64(out + 16, h.low64);
  out[32] = '\0';
}

void
sl_event_id(const char *agent_id, const struct sl_src *src, uint64_t offset,
            char out[33])
{
  if (agent_id == NULL)
    agent_id = "";
  event_id(agent_id, strlen(agent_id), src, offset, out);
}

/* ---- the event writer -------------------------------------------------- */

void
sl__ev_clear(struct sl__ev *ev, int64_t ts_ns)
{
  /* Field by field: sl__ev_end reads only these, and a memset of the
   * whole struct per line showed up in profiles (rep stos). */
  ev->ts_ns = ts_ns;
  ev->msg.p = NULL;
  ev->level.p = NULL;
  ev->trace_id[0] = '\0';
  ev->span_id[0] = '\0';
  ev->txn_id[0] = '\0';
  ev->req_id.p = NULL;
  ev->original.p = NULL;
  ev->error = NULL;
  ev->tag = NULL;
}

size_t
sl__ev_begin(struct sl__w *w)
{
  size_t slot;

  SL__W_LIT(w, "{\"@timestamp\":\"");
  slot = w->err ? 0 : sl__w_len(w);
  /* Filled in by sl__ev_end; every sl_time value formats to 24 bytes. */
  SL__W_LIT(w, "1970-01-01T00:00:00.000Z\"");
  return slot;
}

void
sl__ev_end(struct sl__w *w, const struct sl_parse_ctx *ctx,
           const struct sl_src *src, uint64_t offset, unsigned flags,
           const struct sl__ev *ev, size_t slot)
{
  char ts[SL_TIME_RFC3339_MS_LEN + 8];
  char id[33];
  size_t n;

  if (ev->msg.p) {
    SL__W_LIT(w, ",\"message\":");
    w_text(w, &ev->msg);
  }
  SL__W_LIT(w, ",\"log\":{");
  if (ev->level.p) {
    SL__W_LIT(w, "\"level\":");
    w_text(w, &ev->level);
    sl__w_byte(w, ',');
  }
  if (src && src->path) {
    SL__W_LIT(w, "\"file\":{\"path\":\"");
    sl__w_escape(w, src->path, strlen(src->path));
    SL__W_LIT(w, "\"},");
  }
  SL__W_LIT(w, "\"offset\":");
  sl__w_u64(w, offset);
  if (flags & SL_LINE_TRUNCATED)
    SL__W_LIT(w, ",\"flags\":[\"truncated\"]");
  sl__w_byte(w, '}');
  if (ev->trace_id[0]) {
    SL__W_LIT(w, ",\"trace\":{\"id\":\"");
    sl__w_put(w, ev->trace_id, 32);
    SL__W_LIT(w, "\"}");
  }
  if (ev->span_id[0]) {
    SL__W_LIT(w, ",\"span\":{\"id\":\"");
    sl__w_put(w, ev->span_id, 16);
    SL__W_LIT(w, "\"}");
  }
  if (ev->txn_id[0]) {
    SL__W_LIT(w, ",\"transaction\":{\"id\":\"");
    sl__w_put(w, ev->txn_id, 16);
    SL__W_LIT(w, "\"}");
  }
  if (ev->req_id.p) {
    SL__W_LIT(w, ",\"http\":{\"request\":{\"id\":");
    w_text(w, &ev->req_id);
    SL__W_LIT(w, "}}");
  }
  if (ev->error) {
    SL__W_LIT(w, ",\"error\":{\"message\":\"");
    sl__w_escape(w, ev->error, strlen(ev->error));
    SL__W_LIT(w, "\"}");
  }
  if (ev->tag) {
    SL__W_LIT(w, ",\"tags\":[\"");
    sl__w_escape(w, ev->tag, strlen(ev->tag));
    SL__W_LIT(w, "\"]");
  }
  SL__W_LIT(w, ",\"event\":{\"id\":\"");
  event_id(ctx->agent_id, ctx->agent_id_len, src, offset, id);
  sl__w_put(w, id, 32);
  sl__w_byte(w, '"');
  if (ev->original.p) {
    SL__W_LIT(w, ",\"original\":");
    w_text(w, &ev->original);
  }
  sl__w_put(w, ctx->suffix, ctx->suffix_len);
  if (w->err)
    return;
  n = sl_time_format_ms(ev->ts_ns, ts);
  /* int64 ns spans the years 1677..2262, so this always holds; the check
   * guards the fixed-width slot against a formatter change. */
  if (n == SL_TIME_RFC3339_MS_LEN)
    memcpy(w->b->p + slot, ts, n);
}

void
sl__raw_event(struct sl__w *w, const struct sl_parse_ctx *ctx,
              const struct sl_src *src, const char *line, size_t len,
              uint64_t offset, unsigned flags, int64_t read_time_ns,
              const char *why, size_t pos)
{
  struct sl__ev ev;
  char emsg[96];
  size_t slot;

  sl__ev_clear(&ev, read_time_ns);
  slot = sl__ev_begin(w);
  ev.msg.p = line ? line : "";
  ev.msg.n = line ? len : 0;
  ev.msg.json = 0;
  ev.msg.fix = 0;
  if (why) {
    snprintf(emsg, sizeof(emsg), "json parse failure at byte %zu: %s", pos,
             why);
    ev.error = emsg;
    ev.tag = "sluice_json_parse_failure";
  }
  sl__ev_end(w, ctx, src, offset, flags, &ev, slot);
}

/* ---- entry point ------------------------------------------------------- */

int
sl_parse_event(const struct sl_parse_ctx *ctx, const struct sl_src *src,
               const char *line, size_t len, uint64_t offset,
               unsigned flags, int64_t read_time_ns, struct sl_buf *out)
{
  struct sl__w w;
  size_t start = out->len;

  sl__w_init(&w, out);
  /* CRLF files: the tailer splits on '\n'; the '\r' is not content. */
  if (len > 0 && line[len - 1] == '\r')
    len--;
  if (ctx->parser == SL__PARSER_JSON)
    sl__json_event(&w, ctx, src, line, len, offset, flags, read_time_ns);
  else
    sl__raw_event(&w, ctx, src, line, len, offset, flags, read_time_ns,
                  NULL, 0);
  if (w.err) {
    out->len = start;
    if (out->p)
      out->p[start] = '\0';
    return w.err;
  }
  sl__w_sync(&w);
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

int
sl_parse_ctx_new(const json_t *input, const struct sl_agent_info *info,
                 struct sl_parse_ctx **out, char *err, size_t errlen)
{
  const char *parser, *dataset, *ns, *service, *why;
  struct sl_parse_ctx *ctx = NULL;
  struct sl_buf b;
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
  dataset = dataset ? dataset : "generic";
  ns = ns ? ns : "default";
  if (service && service[0] == '\0')
    service = NULL;
  ctx = calloc(1, sizeof(*ctx));
  if (ctx == NULL) {
    rc = SL_ENOMEM;
    goto fail;
  }
  if (strcmp(parser, "json") == 0) {
    ctx->parser = SL__PARSER_JSON;
  } else if (strcmp(parser, "raw") == 0) {
    ctx->parser = SL__PARSER_RAW;
  } else {
    rc = cfg_err(err, errlen,
                 "parser: '%s' is not supported (supported: json, raw)",
                 parser);
    goto fail;
  }
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
  /* A random seed, so that lines cannot be crafted to collide in the
   * duplicate-key table (hash flooding). */
  if (getrandom(&ctx->hash_seed, sizeof(ctx->hash_seed), GRND_NONBLOCK) !=
      (ssize_t)sizeof(ctx->hash_seed))
    ctx->hash_seed = (uint64_t)sl_time_now_ns() ^ (uint64_t)(uintptr_t)ctx;
  ctx->agent_id_len = strlen(info->agent_id);
  ctx->agent_id = strdup(info->agent_id);
  if (ctx->agent_id == NULL) {
    rc = SL_ENOMEM;
    goto fail;
  }
  rc = render_suffix(&b, input, info, dataset, ns, service, err, errlen);
  if (rc) {
    if (rc != SL_ECONFIG)
      cfg_err(err, errlen, "input: %s", sl_strerror(rc));
    goto fail;
  }
  ctx->suffix = sl_buf_take(&b, &ctx->suffix_len);
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
  free(ctx->agent_id);
  free(ctx->suffix);
  free(ctx);
}
