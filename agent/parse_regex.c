/* parse_regex.c - the `regex` parser: one PCRE2 pattern (JIT) per input,
 * named groups become fields.
 *
 *   parser: regex
 *   regex:
 *     pattern: '^(?<ts>\S+ \S+) - (?<lvl>\w+)\s+\[(?<thread>[^\]]*)\] - (?<msg>.*)'
 *     fields: {ts: "@timestamp", lvl: log.level, msg: message}
 *     types: {status: long, dur: double}
 *
 * Rules:
 *  - The pattern must match the line (anywhere: anchor it with ^ for
 *    speed); no match is a raw event tagged sluice_regex_parse_failure.
 *    A group that did not take part in the match is absent.
 *  - Group names cannot hold dots, so `fields:` maps a group to an ECS
 *    path. Unmapped groups named message/msg, level/lvl/severity,
 *    timestamp/ts/time, or a correlation key (correlate.h: trace_id,
 *    request_id, ...) mean those fields; other unmapped groups go to
 *    app.<group>.
 *  - Paths with a meaning: @timestamp (parsed by timestamp.c with the
 *    input's timestamp.layouts and timezone; unparsable: the read time,
 *    the text in app.<group> and tag sluice_timestamp_parse_failure),
 *    message, log.level (level.h), trace.id, span.id, transaction.id,
 *    http.request.id (correlate.h, one source owns trace and span). Other
 *    paths are written as top-level dotted keys ("process.pid": 12), which
 *    ES reads as the nested field. Paths the agent writes itself
 *    (event.*, host.name, log.file.path, ...), two groups on one path, or
 *    one path above another are config errors: the event can never hold
 *    a key twice.
 *  - `types:` long (an integer of up to 18 digits), double (a JSON
 *    number), boolean (true/false); anything else or a value that does
 *    not fit is written as a string, so ES never refuses the document for
 *    a type (numbers in ECS long fields like http.response.status_code
 *    need `long`).
 *  - Without a message group the whole line is the message; without a
 *    level group a level word at its start counts (level.h). The input's
 *    correlation rules run over the line.
 */
#include "parse_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "correlate.h"
#include "level.h"
#include "re.h"
#include "sl_err.h"
#include "sl_json.h"

enum gtype { T_STR, T_LONG, T_DOUBLE, T_BOOL };

enum gfield {
  G_APP, G_PATH, G_TS, G_MSG, G_LEVEL, G_CORR,
};

struct group {
  uint32_t num;
  char *name;              /* group name (owned) */
  char *path;              /* G_PATH: the dotted ECS path (owned) */
  enum gfield field;
  enum gtype type;
  struct sl_corr_key ck;   /* G_CORR */
};

struct regex_conf {
  pcre2_code *re;
  struct group *g;
  size_t n;
};

/* The paths event_writer.c writes for every event, and those with their
 * own meaning above. */
static const char *const agent_paths[] = {
  "log.file.path", "log.offset", "log.flags", "event.id", "event.original",
  "event.dataset", "data_stream", "host.name", "agent", "ecs.version",
  "service.name", "labels", "tags", "error.message", "app",
  /* Exactly these have a meaning (classify); above or below they clash. */
  "@timestamp", "message", "log.level", "trace.id", "span.id",
  "transaction.id", "http.request.id",
};

/* On, above or below: one of them would be an object and a value. */
static int
path_clash(const char *a, const char *b)
{
  size_t an = strlen(a), bn = strlen(b), m = an < bn ? an : bn;

  return memcmp(a, b, m) == 0 &&
         (an == bn || (an > bn ? a[bn] == '.' : b[an] == '.'));
}

static int
rerr(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
  if (err && errlen)
    snprintf(err, errlen, fmt, a, b);
  return SL_ECONFIG;
}

/* What a path or an unmapped group name means. */
static int
classify(struct group *g, const char *p, int mapped)
{
  static const char *const ts[] = { "@timestamp", "timestamp", "ts", "time" };
  static const char *const msg[] = { "message", "msg" };
  static const char *const lvl[] = { "log.level", "level", "lvl",
                                     "severity" };
  size_t i, lim;

  lim = mapped ? 1 : 4;
  for (i = 0; i < lim; i++)
    if (strcmp(p, ts[i]) == 0)
      return G_TS;
  for (i = 0; i < (mapped ? 1u : 2u); i++)
    if (strcmp(p, msg[i]) == 0)
      return G_MSG;
  for (i = 0; i < lim; i++)
    if (strcmp(p, lvl[i]) == 0)
      return G_LEVEL;
  if ((!mapped || strchr(p, '.')) && sl_corr_key(p, strlen(p), &g->ck))
    return G_CORR;
  return mapped ? G_PATH : G_APP;
}

static void
regex_destroy(void *priv)
{
  struct regex_conf *rc = priv;
  size_t i;

  if (rc == NULL)
    return;
  for (i = 0; i < rc->n; i++) {
    free(rc->g[i].name);
    free(rc->g[i].path);
  }
  free(rc->g);
  pcre2_code_free(rc->re);
  free(rc);
}

static int
regex_init(const json_t *input, void **priv, char *err, size_t errlen)
{
  const json_t *cfg = json_object_get(input, "regex"), *pat, *fields, *types;
  const json_t *v;
  struct regex_conf *rc;
  PCRE2_SPTR table, e;
  uint32_t count = 0, esz = 0, i, j;
  const char *key, *t;
  int ret = SL_ENOMEM;

  *priv = NULL;
  pat = json_object_get(cfg, "pattern");
  if (!json_is_object(cfg) || !json_is_string(pat))
    return rerr(err, errlen, "%s%s: a pattern is required with parser "
                "regex", "regex", ".pattern");
  fields = json_object_get(cfg, "fields");
  types = json_object_get(cfg, "types");
  rc = calloc(1, sizeof(*rc));
  if (rc == NULL)
    return SL_ENOMEM;
  rc->re = sl_re_compile(json_string_value(pat), "regex.pattern", err,
                         errlen);
  if (rc->re == NULL) {
    ret = SL_ECONFIG;
    goto fail;
  }
  pcre2_pattern_info(rc->re, PCRE2_INFO_NAMECOUNT, &count);
  pcre2_pattern_info(rc->re, PCRE2_INFO_NAMEENTRYSIZE, &esz);
  pcre2_pattern_info(rc->re, PCRE2_INFO_NAMETABLE, &table);
  if (count == 0) {
    ret = rerr(err, errlen, "%s: no named group ((?<name>...))%s",
               "regex.pattern", "");
    goto fail;
  }
  rc->g = calloc(count, sizeof(*rc->g));
  if (rc->g == NULL)
    goto fail;
  for (i = 0; i < count; i++) {
    struct group *g = &rc->g[i];

    e = table + (size_t)i * esz;
    g->num = (uint32_t)e[0] << 8 | e[1];
    rc->n = i + 1;
    if ((g->name = strdup((const char *)e + 2)) == NULL)
      goto fail;
    v = json_object_get(fields, g->name);
    if (v && !json_is_string(v)) {
      ret = rerr(err, errlen, "regex.fields.%s: must be a string%s",
                 g->name, "");
      goto fail;
    }
    if (v) {
      g->field = classify(g, json_string_value(v), 1);
      if (g->field == G_PATH) {
        t = json_string_value(v);
        if (t[0] == '\0' || t[0] == '.' || t[strlen(t) - 1] == '.' ||
            strstr(t, "..")) {
          ret = rerr(err, errlen, "regex.fields.%s: '%s' is not a field "
                     "path", g->name, t);
          goto fail;
        }
        for (j = 0; j < sizeof(agent_paths) / sizeof(agent_paths[0]); j++)
          if (path_clash(t, agent_paths[j])) {
            ret = rerr(err, errlen, "regex.fields.%s: '%s' is a field the "
                       "agent writes itself", g->name, t);
            goto fail;
          }
        if ((g->path = strdup(t)) == NULL)
          goto fail;
      }
    } else {
      g->field = classify(g, g->name, 0);
    }
    v = json_object_get(types, g->name);
    if (v) {
      t = json_is_string(v) ? json_string_value(v) : "";
      if (strcmp(t, "long") == 0 || strcmp(t, "integer") == 0)
        g->type = T_LONG;
      else if (strcmp(t, "double") == 0 || strcmp(t, "float") == 0)
        g->type = T_DOUBLE;
      else if (strcmp(t, "boolean") == 0)
        g->type = T_BOOL;
      else if (strcmp(t, "keyword") == 0 || strcmp(t, "string") == 0)
        g->type = T_STR;
      else {
        ret = rerr(err, errlen, "regex.types.%s: '%s' is not one of long, "
                   "double, boolean, keyword", g->name, t);
        goto fail;
      }
    }
  }
  /* Keys in `fields`/`types` that name no group are typos. */
  json_object_foreach((json_t *)fields, key, v) {
    if (pcre2_substring_number_from_name(rc->re, (PCRE2_SPTR)key) < 0) {
      ret = rerr(err, errlen, "regex.fields.%s: no group of that name%s",
                 key, "");
      goto fail;
    }
  }
  json_object_foreach((json_t *)types, key, v) {
    if (pcre2_substring_number_from_name(rc->re, (PCRE2_SPTR)key) < 0) {
      ret = rerr(err, errlen, "regex.types.%s: no group of that name%s",
                 key, "");
      goto fail;
    }
  }
  /* Every path once, none above another. Special fields once too. */
  for (i = 0; i < rc->n; i++) {
    for (j = i + 1; j < rc->n; j++) {
      const struct group *a = &rc->g[i], *b = &rc->g[j];

      if ((a->field == G_PATH && b->field == G_PATH &&
           path_clash(a->path, b->path)) ||
          (a->field == b->field && a->field != G_PATH &&
           a->field != G_APP && a->field != G_CORR)) {
        ret = rerr(err, errlen, "regex.fields: groups '%s' and '%s' "
                   "write the same field", a->name, b->name);
        goto fail;
      }
    }
  }
  *priv = rc;
  return SL_OK;

fail:
  regex_destroy(rc);
  return ret;
}

/* RFC 8259 number grammar, finite as a double, short enough to read. */
static int
json_number(const char *s, size_t n)
{
  char buf[64];
  size_t i = 0, digits;
  double x;

  if (n == 0 || n >= sizeof(buf))
    return 0;
  if (s[i] == '-')
    i++;
  digits = i;
  if (i < n && s[i] == '0')
    i++;
  else if (i < n && s[i] >= '1' && s[i] <= '9')
    while (i < n && s[i] >= '0' && s[i] <= '9')
      i++;
  else
    return 0;
  /* A bare integer is read as one by JSON parsers (jansson, ES's long
   * detection): past 18 digits it overflows them, so it stays a string. */
  if (i == n && i - digits > 18)
    return 0;
  if (i < n && s[i] == '.') {
    if (++i >= n || s[i] < '0' || s[i] > '9')
      return 0;
    while (i < n && s[i] >= '0' && s[i] <= '9')
      i++;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    if (++i < n && (s[i] == '+' || s[i] == '-'))
      i++;
    if (i >= n || s[i] < '0' || s[i] > '9')
      return 0;
    while (i < n && s[i] >= '0' && s[i] <= '9')
      i++;
  }
  if (i != n)
    return 0;
  memcpy(buf, s, n);
  buf[n] = '\0';
  x = strtod(buf, NULL);
  return x - x == 0; /* finite: jansson refuses overflowing reals */
}

/* A value by its type hint; strings otherwise. */
static void
put_typed(struct sl_ew *w, enum gtype t, const char *s, size_t n)
{
  size_t i = 0, d = 0;

  switch (t) {
  case T_LONG:
    if (n && s[0] == '-')
      i = 1;
    for (d = i; d < n && s[d] >= '0' && s[d] <= '9'; d++)
      ;
    if (d == n && d > i && d - i <= 18 && (s[i] != '0' || d - i == 1)) {
      sl_ew_put(w, s, n);
      return;
    }
    break;
  case T_DOUBLE:
    if (json_number(s, n)) {
      sl_ew_put(w, s, n);
      return;
    }
    break;
  case T_BOOL:
    if ((n == 4 && memcmp(s, "true", 4) == 0) ||
        (n == 5 && memcmp(s, "false", 5) == 0)) {
      sl_ew_put(w, s, n);
      return;
    }
    break;
  case T_STR:
    break;
  }
  sl_ew_byte(w, '"');
  sl_ew_escape(w, s, n);
  sl_ew_byte(w, '"');
}

static void
regex_event(struct sl_ew *w, const struct sl_parse_ctx *ctx,
            const struct sl_src *src, const char *line, size_t len,
            uint64_t offset, unsigned flags, int64_t read_time_ns)
{
  const struct regex_conf *rc = ctx->priv;
  pcre2_match_data *md = sl_re_md();
  struct sl_corr_ids ids;
  struct sl_ew_ev ev;
  PCRE2_SIZE *ov;
  const char *v, *lvl;
  char lbuf[33];
  size_t i, k, vn, slot;
  unsigned prec;
  int64_t ns;
  int app_open = 0, pass, ts_bad_group = -1;

  if (md == NULL || sl_re_match(rc->re, line, len, md) <= 0) {
    sl_ew_raw_event(w, &ctx->ev, src, line, len, offset, flags,
                    read_time_ns, md ? "regex did not match the line"
                    : "out of memory for the regex match",
                    "sluice_regex_parse_failure");
    return;
  }
  ov = pcre2_get_ovector_pointer(md);
  sl_ew_ev_clear(&ev, read_time_ns);
  sl_corr_ids_clear(&ids);
  slot = sl_ew_ev_begin(w);
  /* Pass 0: fields with a meaning (the timestamp decides whether its
   * group also goes to app). Pass 1: app.*; pass 2: dotted paths. */
  for (pass = 0; pass < 3; pass++) {
    for (i = 0; i < rc->n; i++) {
      const struct group *g = &rc->g[i];

      if (ov[2 * g->num] == PCRE2_UNSET)
        continue;
      v = line + ov[2 * g->num];
      vn = ov[2 * g->num + 1] - ov[2 * g->num];
      if (pass == 0) {
        switch (g->field) {
        case G_TS:
          if (sl_ts_parse_field(ctx->ts, v, vn, read_time_ns, &ns,
                                &prec) == 0) {
            ev.ts_ns = ns;
            ev.ts_us = prec == SL_TS_US;
          } else {
            ts_bad_group = (int)i;
            ev.tag = "sluice_timestamp_parse_failure";
          }
          break;
        case G_MSG:
          ev.msg.p = v;
          ev.msg.n = vn;
          ev.msg.json = 0;
          ev.msg.fix = 0;
          break;
        case G_LEVEL:
          if (vn == 0 || vn > 32)
            break;
          lvl = sl_level_norm(v, vn);
          if (lvl == NULL) {
            for (k = 0; k < vn; k++)
              lbuf[k] = (char)(v[k] >= 'A' && v[k] <= 'Z' ? v[k] | 0x20
                               : v[k]);
            lvl = lbuf;
            ev.level.n = vn;
          } else {
            ev.level.n = strlen(lvl);
          }
          ev.level.p = lvl;
          ev.level.json = 0;
          ev.level.fix = 0;
          break;
        case G_CORR:
          sl_corr_offer(&ids, &g->ck, v, vn);
          break;
        default:
          break;
        }
        continue;
      }
      if (pass == 1 && (g->field == G_APP || (int)i == ts_bad_group)) {
        if (app_open)
          SL_EW_LIT(w, ",\"");
        else
          SL_EW_LIT(w, ",\"app\":{\"");
        app_open = 1;
        sl_ew_escape(w, g->name, strlen(g->name));
        SL_EW_LIT(w, "\":");
        put_typed(w, g->type, v, vn);
      } else if (pass == 2 && g->field == G_PATH) {
        SL_EW_LIT(w, ",\"");
        sl_ew_escape(w, g->path, strlen(g->path));
        SL_EW_LIT(w, "\":");
        put_typed(w, g->type, v, vn);
      }
    }
    if (pass == 1 && app_open) {
      sl_ew_byte(w, '}');
      app_open = 0;
    }
  }
  if (ev.msg.p == NULL) {
    ev.msg.p = line;
    ev.msg.n = len;
    ev.msg.json = 0;
    ev.msg.fix = 0;
  }
  if (ev.level.p == NULL && (lvl = sl_level_scan(line, len)) != NULL) {
    ev.level.p = lvl;
    ev.level.n = strlen(lvl);
    ev.level.json = 0;
    ev.level.fix = 0;
  }
  memcpy(ev.trace_id, ids.trace, sizeof(ids.trace));
  memcpy(ev.span_id, ids.span, sizeof(ids.span));
  memcpy(ev.txn_id, ids.txn, sizeof(ids.txn));
  if (ids.req) {
    ev.req_id.p = ids.req;
    ev.req_id.n = ids.req_n;
    ev.req_id.json = 0;
    ev.req_id.fix = 0;
  }
  /* The rules see the whole line; they may reuse the match data. */
  sl_parse_corr_rules(ctx, line, len, &ev);
  sl_ew_ev_end(w, &ctx->ev, src, offset, flags, &ev, slot);
}

const struct sl_parser_ops sl_parser_regex = {
  .name = "regex",
  .init = regex_init,
  .destroy = regex_destroy,
  .event = regex_event,
};
