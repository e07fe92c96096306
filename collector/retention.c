/* retention.c - retention rules (config, matching, plans) and the job that
 * applies them (see retention.h). */
#include "retention.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es_client.h"
#include "sl_err.h"
#include "sl_hash.h"
#include "sl_log.h"
#include "sl_metrics.h"
#include "sl_time.h"

#define COMP "retention"
#define DAY_MS 86400000LL
/* Rules become index templates at priority + 1 .. + n; more than this
 * many is a config smell and would crowd Fleet's 200. */
#define MAX_RULES 64
/* Data stream names remembered for the indexer's new-target hook; past
 * this the periodic run still finds new streams. */
#define MAX_SEEN 4096
/* A new stream is synced this long after the indexer first routes to it
 * (its first bulk creates it), and looked for again this often. */
#define NEW_TARGET_DELAY_MS 2000
#define NEW_TARGET_TRIES 5
/* A failed run is retried after this (or `interval`, if shorter). */
#define RETRY_MS 30000
/* Deletions shown in /debug/state. */
#define RECENT_DELS 16

/* ---- durations ---------------------------------------------------------- */

int
sl_retention_parse_duration(const char *s, int64_t *ms)
{
  int64_t n = 0, mult;
  const char *p = s;

  if (!s || *p < '0' || *p > '9')
    return SL_EPARSE;
  for (; *p >= '0' && *p <= '9'; p++) {
    if (n > (INT64_MAX - 9) / 10)
      return SL_EPARSE;
    n = n * 10 + (*p - '0');
  }
  switch (*p) {
  case 'd': mult = DAY_MS; break;
  case 'h': mult = 3600000; break;
  case 'm': mult = 60000; break;
  case 's': mult = 1000; break;
  default: return SL_EPARSE;
  }
  if (p[1] != '\0' || n <= 0 || n > INT64_MAX / mult)
    return SL_EPARSE;
  *ms = n * mult;
  return 0;
}

void
sl_retention_format_duration(int64_t ms, char *out, size_t len)
{
  static const struct { int64_t ms; const char *u; } units[] = {
    { DAY_MS, "d" }, { 3600000, "h" }, { 60000, "m" }, { 1000, "s" },
  };
  size_t i;

  for (i = 0; i < sizeof units / sizeof units[0]; i++)
    if (ms > 0 && ms % units[i].ms == 0) {
      snprintf(out, len, "%lld%s", (long long)(ms / units[i].ms), units[i].u);
      return;
    }
  snprintf(out, len, "%lldms", (long long)ms);
}

/* ---- globs -------------------------------------------------------------- */

static int
covers(const char *a, const char *b, int depth)
{
  if (depth > 200)
    return 0;
  if (*a == '*')
    return covers(a + 1, b, depth + 1) ||
           (*b && covers(a, b + 1, depth + 1));
  if (*b == '\0')
    return *a == '\0';
  if (*a == '\0')
    return 0;
  if (*a == '?')
    return *b != '*' && covers(a + 1, b + 1, depth + 1);
  return *a == *b && *b != '*' && *b != '?' &&
         covers(a + 1, b + 1, depth + 1);
}

int
sl_retention_glob_covers(const char *a, const char *b)
{
  /* Brackets and escapes are not reasoned about: only an equal glob is
   * known to cover. */
  if (strpbrk(a, "[\\") || strpbrk(b, "[\\"))
    return strcmp(a, b) == 0;
  return covers(a, b, 0);
}

static int
ds_char(int ch)
{
  return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
         ch == '_';
}

/* A literal character a sanitised dataset never has (outside brackets). */
static int
glob_impossible(const char *g)
{
  int in_br = 0;

  for (; *g; g++) {
    if (in_br) {
      in_br = *g != ']';
      continue;
    }
    if (*g == '[')
      in_br = 1;
    else if (*g == '\\' && g[1])
      return !ds_char((unsigned char)*++g);
    else if (*g != '*' && *g != '?' && !ds_char((unsigned char)*g))
      return 1;
  }
  return 0;
}

const struct sl_retention_rule *
sl_retention_match(const struct sl_retention_conf *rc, const char *dataset)
{
  size_t i;

  for (i = 0; i < rc->nrules; i++)
    if (fnmatch(rc->rules[i].match, dataset, 0) == 0)
      return &rc->rules[i];
  return NULL;
}

/* ---- names -------------------------------------------------------------- */

int
sl_retention_daily_date(const char *index, const char *prefix,
                        int64_t *day_ms, char *ds, size_t dslen)
{
  size_t pl = strlen(prefix), n = strlen(index), dl, i;
  const char *d;
  unsigned y, m, dd;
  static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
                                    30, 31 };

  /* <prefix>-<ds>-YYYY.MM.DD: at least one dataset byte. */
  if (n < pl + 1 + 1 + 11 || strncmp(index, prefix, pl) != 0 ||
      index[pl] != '-')
    return SL_EPARSE;
  d = index + n - 11;
  if (d[0] != '-' || d[5] != '.' || d[8] != '.')
    return SL_EPARSE;
  for (i = 1; i <= 10; i++)
    if (i != 5 && i != 8 && (d[i] < '0' || d[i] > '9'))
      return SL_EPARSE;
  y = (unsigned)atoi(d + 1);
  m = (unsigned)atoi(d + 6);
  dd = (unsigned)atoi(d + 9);
  if (m < 1 || m > 12 || dd < 1 || dd > mdays[m - 1] ||
      (m == 2 && dd == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))))
    return SL_EPARSE;
  dl = (size_t)(d - (index + pl + 1));
  for (i = 0; i < dl; i++)
    if (!ds_char((unsigned char)index[pl + 1 + i]))
      return SL_EPARSE;
  *day_ms = sl_time_days_from_civil(y, m, dd) * DAY_MS;
  if (dslen)
    snprintf(ds, dslen, "%.*s", (int)dl, index + pl + 1);
  return 0;
}

int
sl_retention_stream_dataset(const char *stream, char *ds, size_t dslen)
{
  const char *p, *dash;
  size_t i;

  if (strncmp(stream, "logs-", 5) != 0)
    return SL_EPARSE;
  p = stream + 5;
  dash = strchr(p, '-');
  if (!dash || dash == p || dash[1] == '\0' || strchr(dash + 1, '-'))
    return SL_EPARSE;
  for (i = 0; p + i < dash; i++)
    if (!ds_char((unsigned char)p[i]))
      return SL_EPARSE;
  if (dslen)
    snprintf(ds, dslen, "%.*s", (int)(dash - p), p);
  return 0;
}

/* ---- config ------------------------------------------------------------- */

static void
warnf(const struct sl_conf *c, const json_t *node, const char *key,
      char *warn, size_t warnlen, const char *fmt, const char *a,
      const char *b)
{
  char line[512];
  size_t used;

  if (!warn || !warnlen)
    return;
  sl_conf_errorf(c, node, key, line, sizeof line, fmt, a, b);
  used = strlen(warn);
  snprintf(warn + used, warnlen - used, "%s\n", line);
}

static int
keep_of(const struct sl_conf *c, const json_t *obj, const char *key,
        const char *path, int64_t *ms, char *keep, size_t klen, char *err,
        size_t errlen)
{
  const json_t *n = sl_conf_get(obj, key);
  const char *s = json_string_value(n);

  if (!s || sl_retention_parse_duration(s, ms) != 0) {
    sl_conf_errorf(c, n, path, err, errlen, "bad duration \"%s\": want a "
                   "whole number > 0 with d, h, m or s (14d)", s ? s : "");
    return SL_ECONFIG;
  }
  sl_retention_format_duration(*ms, keep, klen);
  return 0;
}

static int
name_ok(const char *s)
{
  size_t n = strlen(s), i;

  if (n == 0 || n > 64 || strcmp(s, "default") == 0)
    return 0;
  for (i = 0; i < n; i++)
    if (!ds_char((unsigned char)s[i]) && s[i] != '-')
      return 0;
  return 1;
}

/* logs-<glob>-* when the glob is an index pattern as it stands: only
 * dataset characters and '*' (ES patterns know no '?' or brackets). */
static char *
pattern_of(const char *glob)
{
  size_t n = strlen(glob), i;
  char *p;

  for (i = 0; i < n; i++)
    if (!ds_char((unsigned char)glob[i]) && glob[i] != '*')
      return NULL;
  p = malloc(n + 8);
  if (p)
    snprintf(p, n + 8, "logs-%s-*", glob);
  return p;
}

int
sl_retention_conf_fill(const struct sl_conf *c, struct sl_retention_conf *out,
                       char *err, size_t errlen, char *warn, size_t warnlen)
{
  const json_t *root = sl_conf_root(c), *r = sl_conf_get(root, "retention");
  const json_t *rules, *es = sl_conf_get(root, "elasticsearch");
  const char *mode, *ilm, *imode;
  char key[64], okey[64];
  size_t i, j;
  int rc;

  memset(out, 0, sizeof *out);
  if (warn && warnlen)
    warn[0] = '\0';
  if (!r)
    return 0;
  if (!es) {
    /* An archive-only collector: its files have their own `keep`. */
    sl_conf_errorf(c, r, "retention", err, errlen, "needs elasticsearch: "
                   "(the archive's retention is archive.keep)");
    return SL_ECONFIG;
  }
  mode = sl_conf_str(r, "mode");
  out->mode = !mode ? SL_RET_NONE
              : strcmp(mode, "ilm") == 0 ? SL_RET_ILM
              : strcmp(mode, "managed") == 0 ? SL_RET_MANAGED
              : SL_RET_LIFECYCLE;
  rc = keep_of(c, r, "default", "retention.default", &out->default_ms,
               out->default_keep, sizeof out->default_keep, err, errlen);
  if (!rc) {
    char iv[24];

    rc = keep_of(c, r, "interval", "retention.interval", &out->interval_ms,
                 iv, sizeof iv, err, errlen);
  }
  if (rc)
    goto fail;
  ilm = sl_conf_str(es, "ilm_policy");
  if (out->mode != SL_RET_MANAGED && ilm && ilm[0]) {
    /* index.lifecycle.name with prefer_ilm wins over the data stream
     * lifecycle, and would fight the per-rule policies. */
    sl_conf_errorf(c, sl_conf_get(r, "mode"), "retention.mode", err, errlen,
                   "%s cannot be used with elasticsearch.ilm_policy (remove "
                   "one of them)", mode);
    rc = SL_ECONFIG;
    goto fail;
  }
  imode = sl_conf_str(es, "index_mode");
  if (out->mode != SL_RET_MANAGED && imode && strcmp(imode, "daily") == 0)
    warnf(c, sl_conf_get(r, "mode"), "retention.mode", warn, warnlen,
          "%s applies to data streams only; daily indices (index_mode: "
          "daily) are kept forever unless mode is managed%s", mode, "");
  rules = sl_conf_get(r, "rules");
  out->nrules = json_array_size(rules);
  if (out->nrules > MAX_RULES) {
    sl_conf_errorf(c, rules, "retention.rules", err, errlen,
                   "%zu rules; at most %d", out->nrules, MAX_RULES);
    out->nrules = 0;
    rc = SL_ECONFIG;
    goto fail;
  }
  out->rules = calloc(out->nrules ? out->nrules : 1, sizeof *out->rules);
  if (!out->rules) {
    out->nrules = 0;
    rc = SL_ENOMEM;
    goto fail;
  }
  for (i = 0; i < out->nrules; i++) {
    const json_t *o = json_array_get(rules, i);
    struct sl_retention_rule *ru = &out->rules[i];
    const char *m = sl_conf_str(o, "match"), *name = sl_conf_str(o, "name");
    char def[32];

    snprintf(key, sizeof key, "retention.rules[%zu].keep", i);
    rc = keep_of(c, o, "keep", key, &ru->keep_ms, ru->keep, sizeof ru->keep,
                 err, errlen);
    if (rc)
      goto fail;
    if (!m || !m[0]) {
      snprintf(key, sizeof key, "retention.rules[%zu].match", i);
      sl_conf_errorf(c, sl_conf_get(o, "match"), key, err, errlen,
                     "empty glob");
      rc = SL_ECONFIG;
      goto fail;
    }
    snprintf(def, sizeof def, "rule-%zu", i);
    if (name && name[0] && !name_ok(name)) {
      snprintf(key, sizeof key, "retention.rules[%zu].name", i);
      sl_conf_errorf(c, sl_conf_get(o, "name"), key, err, errlen,
                     "want 1-64 of a-z 0-9 . _ - and not \"default\"");
      rc = SL_ECONFIG;
      goto fail;
    }
    ru->match = strdup(m);
    ru->name = strdup(name && name[0] ? name : def);
    ru->pattern = pattern_of(m);
    if (!ru->match || !ru->name) {
      rc = SL_ENOMEM;
      goto fail;
    }
    for (j = 0; j < i; j++)
      if (strcmp(out->rules[j].name, ru->name) == 0) {
        snprintf(key, sizeof key, "retention.rules[%zu].name", i);
        sl_conf_errorf(c, sl_conf_get(o, "name"), key, err, errlen,
                       "\"%s\" is also the name of rules[%zu]", ru->name, j);
        rc = SL_ECONFIG;
        goto fail;
      }
  }
  /* Warnings: rules that can never match. */
  for (i = 0; i < out->nrules; i++) {
    const json_t *mn = sl_conf_get(json_array_get(rules, i), "match");

    snprintf(key, sizeof key, "retention.rules[%zu].match", i);
    if (glob_impossible(out->rules[i].match)) {
      warnf(c, mn, key, warn, warnlen, "\"%s\" can never match: datasets "
            "are lower case a-z 0-9 . _ only%s", out->rules[i].match, "");
      continue;
    }
    for (j = 0; j < i; j++)
      if (sl_retention_glob_covers(out->rules[j].match,
                                   out->rules[i].match)) {
        snprintf(okey, sizeof okey, "rules[%zu]", j);
        warnf(c, mn, key, warn, warnlen, "can never match: %s (\"%s\") "
              "comes first and matches every dataset this one does", okey,
              out->rules[j].match);
        break;
      }
  }
  if (out->mode == SL_RET_LIFECYCLE || out->mode == SL_RET_ILM) {
    int64_t prio = sl_conf_int(es, "template.priority", 150);

    if (prio + (int64_t)out->nrules >= 200)
      warnf(c, rules, "retention.rules", warn, warnlen, "rule templates "
            "reach priority 200 (template.priority + rules), where Fleet "
            "integration templates live; overlapping ones are refused%s%s",
            "", "");
  }
  return 0;
fail:
  sl_retention_conf_free(out);
  return rc;
}

void
sl_retention_conf_free(struct sl_retention_conf *rc)
{
  size_t i;

  for (i = 0; i < rc->nrules; i++) {
    free(rc->rules[i].match);
    free(rc->rules[i].name);
    free(rc->rules[i].pattern);
  }
  free(rc->rules);
  memset(rc, 0, sizeof *rc);
}

int
sl_retention_conf_copy(const struct sl_retention_conf *src,
                       struct sl_retention_conf *dst)
{
  size_t i;

  *dst = *src;
  dst->rules = calloc(src->nrules ? src->nrules : 1, sizeof *dst->rules);
  if (!dst->rules) {
    dst->nrules = 0;
    return SL_ENOMEM;
  }
  for (i = 0; i < src->nrules; i++) {
    struct sl_retention_rule *d = &dst->rules[i];
    const struct sl_retention_rule *s = &src->rules[i];

    *d = *s;
    d->match = strdup(s->match);
    d->name = strdup(s->name);
    d->pattern = s->pattern ? strdup(s->pattern) : NULL;
    if (!d->match || !d->name || (s->pattern && !d->pattern)) {
      sl_retention_conf_free(dst);
      return SL_ENOMEM;
    }
  }
  return 0;
}

/* ---- plans -------------------------------------------------------------- */

static const char *
rule_label(const struct sl_retention_rule *ru)
{
  return ru ? ru->match : "default";
}

static int64_t
keep_ms_of(const struct sl_retention_conf *rc,
           const struct sl_retention_rule *ru)
{
  return ru ? ru->keep_ms : rc->default_ms;
}

static int
is_sluice_stream(const json_t *s)
{
  const char *t = json_string_value(json_object_get(s, "template"));

  return t && strncmp(t, "sluice-", 7) == 0;
}

/* The _cat/indices row values: strings; "-1" or absent when unknown. */
static int64_t
cat_num(const json_t *row, const char *key)
{
  const json_t *v = json_object_get(row, key);

  if (json_is_string(v) && json_string_value(v)[0] >= '0' &&
      json_string_value(v)[0] <= '9')
    return strtoll(json_string_value(v), NULL, 10);
  if (json_is_integer(v))
    return (int64_t)json_integer_value(v);
  return -1;
}

static int
add_del(struct sl_retention_plan *p, const char *index, const char *rule,
        const char *ds, int64_t age_ms, int64_t bytes)
{
  struct sl_retention_del *v, *d;

  v = realloc(p->del, (p->ndel + 1) * sizeof *v);
  if (!v)
    return SL_ENOMEM;
  p->del = v;
  d = &v[p->ndel];
  d->index = strdup(index);
  d->rule = strdup(rule);
  d->dataset = strdup(ds);
  d->age_ms = age_ms;
  d->bytes = bytes;
  d->outcome = 0;
  if (!d->index || !d->rule || !d->dataset) {
    free(d->index);
    free(d->rule);
    free(d->dataset);
    return SL_ENOMEM;
  }
  p->ndel++;
  return 0;
}

static int
cmp_del(const void *a, const void *b)
{
  return strcmp(((const struct sl_retention_del *)a)->index,
                ((const struct sl_retention_del *)b)->index);
}

static int
cmp_str(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* rules: one row per dataset seen, sorted by dataset. */
static int
rules_rows(const struct sl_retention_conf *rc, json_t *seen, json_t **out)
{
  size_t n = json_object_size(seen), i = 0;
  const char **keys = calloc(n ? n : 1, sizeof *keys), *k;
  json_t *v, *arr = json_array();
  int rc_ = 0;

  if (!keys || !arr) {
    free(keys);
    json_decref(arr);
    return SL_ENOMEM;
  }
  json_object_foreach(seen, k, v)
    keys[i++] = k;
  qsort(keys, n, sizeof *keys, cmp_str);
  for (i = 0; i < n && !rc_; i++) {
    const struct sl_retention_rule *ru = sl_retention_match(rc, keys[i]);

    rc_ = json_array_append_new(arr, json_pack(
      "{s:s, s:s, s:s}", "dataset", keys[i], "rule", rule_label(ru),
      "keep", ru ? ru->keep : rc->default_keep)) ? SL_ENOMEM : 0;
  }
  free(keys);
  if (rc_) {
    json_decref(arr);
    return rc_;
  }
  *out = arr;
  return 0;
}

int
sl_retention_plan_build(const struct sl_retention_conf *rc,
                        const char *prefix, const json_t *streams,
                        const json_t *cat, int64_t now_ms,
                        struct sl_retention_plan *out)
{
  json_t *rows = json_object(), *writes = json_object(), *seen = json_object();
  const json_t *arr = json_object_get(streams, "data_streams"), *s, *row;
  char ds[128];
  size_t i, k;
  int rc_ = SL_ENOMEM;

  memset(out, 0, sizeof *out);
  if (!rows || !writes || !seen)
    goto done;
  json_array_foreach(cat, i, row) {
    const char *name = json_string_value(json_object_get(row, "index"));

    if (name)
      json_object_set(rows, name, (json_t *)row);
  }
  /* Every stream's write index is off limits, sluice's or not. */
  json_array_foreach(arr, i, s) {
    const json_t *idx = json_object_get(s, "indices");
    const char *w = json_string_value(json_object_get(
        json_array_get(idx, json_array_size(idx) - 1), "index_name"));

    if (w)
      json_object_set_new(writes, w, json_true());
  }
  rc_ = 0;
  json_array_foreach(arr, i, s) {
    const char *name = json_string_value(json_object_get(s, "name"));
    const json_t *idx = json_object_get(s, "indices");
    const struct sl_retention_rule *ru;
    size_t n = json_array_size(idx);

    if (!name || !is_sluice_stream(s) ||
        sl_retention_stream_dataset(name, ds, sizeof ds) != 0)
      continue;
    json_object_set_new(seen, ds, json_true());
    if (rc->mode != SL_RET_MANAGED)
      continue;
    ru = sl_retention_match(rc, ds);
    /* A backing index stopped taking writes when the next one was made. */
    for (k = 0; k + 1 < n && !rc_; k++) {
      const char *bi = json_string_value(json_object_get(
          json_array_get(idx, k), "index_name"));
      const char *nx = json_string_value(json_object_get(
          json_array_get(idx, k + 1), "index_name"));
      const json_t *brow = bi ? json_object_get(rows, bi) : NULL;
      int64_t ref = nx ? cat_num(json_object_get(rows, nx), "creation.date")
                       : -1;

      if (!brow || json_object_get(writes, bi))
        continue;
      if (ref < 0)
        ref = cat_num(brow, "creation.date");
      if (ref < 0 || now_ms - ref < keep_ms_of(rc, ru))
        continue;
      rc_ = add_del(out, bi, rule_label(ru), ds, now_ms - ref,
                    cat_num(brow, "store.size"));
    }
  }
  json_array_foreach(cat, i, row) {
    const char *name = json_string_value(json_object_get(row, "index"));
    const struct sl_retention_rule *ru;
    int64_t day, age;

    if (rc_ || !name || json_object_get(writes, name) ||
        sl_retention_daily_date(name, prefix, &day, ds, sizeof ds) != 0)
      continue;
    json_object_set_new(seen, ds, json_true());
    if (rc->mode != SL_RET_MANAGED)
      continue;
    ru = sl_retention_match(rc, ds);
    /* The newest event a daily index can hold is from the end of its day. */
    age = now_ms - (day + DAY_MS);
    if (age >= keep_ms_of(rc, ru))
      rc_ = add_del(out, name, rule_label(ru), ds, age,
                    cat_num(row, "store.size"));
  }
  if (!rc_)
    rc_ = rules_rows(rc, seen, &out->rules);
  if (out->ndel)
    qsort(out->del, out->ndel, sizeof *out->del, cmp_del);
done:
  json_decref(rows);
  json_decref(writes);
  json_decref(seen);
  if (rc_)
    sl_retention_plan_free(out);
  return rc_;
}

void
sl_retention_plan_free(struct sl_retention_plan *p)
{
  size_t i;

  for (i = 0; i < p->ndel; i++) {
    free(p->del[i].index);
    free(p->del[i].rule);
    free(p->del[i].dataset);
  }
  free(p->del);
  json_decref(p->rules);
  memset(p, 0, sizeof *p);
}

/* ---- ILM policy bodies -------------------------------------------------- */

/* Compact JSON text of o, which this consumes. NULL on ENOMEM. */
static char *
dump_new(json_t *o)
{
  char *text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

  json_decref(o);
  return text;
}

/* PUT _ilm/policy/<name>: rollover as the built-in logs policy does, then
 * delete once the index is `keep` old (min_age counts from rollover).
 * _meta.sluice_version is a hash of the rest: the job PUTs only when it
 * differs from what is stored, so every run does not bump the policy. */
static char *
policy_body(const char *keep, int64_t *version)
{
  json_t *pol = json_pack(
    "{s:{s:{s:{s:{s:s, s:s}}}, s:{s:s, s:{s:{}}}}, s:{s:s}}", "phases",
    "hot", "actions", "rollover", "max_age", "30d",
    "max_primary_shard_size", "50gb", "delete", "min_age", keep, "actions",
    "delete", "_meta", "managed_by", "sluice");
  char *text, *out = NULL;

  if (!pol)
    return NULL;
  text = json_dumps(pol, JSON_COMPACT | JSON_SORT_KEYS);
  if (text) {
    *version = (int64_t)(sl_hash64(text, strlen(text)) & 0x7fffffff) | 1;
    free(text);
    json_object_set_new(json_object_get(pol, "_meta"), "sluice_version",
                        json_integer(*version));
    out = dump_new(json_pack("{s:o}", "policy", pol));
    return out;
  }
  json_decref(pol);
  return NULL;
}

/* ---- the job ------------------------------------------------------------ */

enum step {
  ST_IDLE,
  ST_POLICIES,   /* GET _ilm/policy (ilm) */
  ST_STREAMS,    /* GET _data_stream/logs-* */
  ST_CAT,        /* GET _cat/indices/... */
  ST_WRITES,     /* the ops below, one at a time */
};

enum op_kind { OP_POLICY, OP_LIFECYCLE, OP_SETTINGS, OP_DELETE };

struct op {
  enum op_kind kind;
  char *path;
  char *body;          /* NULL: none */
  size_t del;          /* OP_DELETE: index into plan.del */
  char *what;          /* stream or policy name, for the log */
};

struct recent {
  char index[256];
  char rule[128];
  int64_t age_days;
  int64_t at_ms;
};

struct sl_retention {
  uv_loop_t *loop;
  struct sl_es_client *es;
  struct sl_retention_conf rc;
  char *prefix;
  uv_timer_t timer;            /* next run */
  int open_parts;
  int closing;
  void (*close_cb)(void *arg);
  void *close_arg;

  /* the run in progress */
  enum step step;
  int apply;                   /* 0: plan only (CLI `plan`) */
  int rerun;                   /* a run was asked for while one ran */
  json_t *policies, *streams, *cat;
  struct sl_retention_plan plan;
  struct op *ops;
  size_t nops, next_op;
  int run_failed;
  char detail[512];
  sl_retention_once_cb once_cb;
  void *once_arg;

  /* the indexer's new-target hook */
  json_t *seen;                /* stream name -> true */
  json_t *waiting;             /* stream name -> tries left */

  /* metrics and /debug/state */
  uint64_t runs, failed_runs, deleted, deleted_bytes, updates, errors;
  int64_t last_run_ms, last_ok_ms;
  char last_error[512];
  struct recent recent[RECENT_DELS];
  size_t nrecent;
};

static const char *const mode_names[] = { "none", "lifecycle", "ilm",
                                          "managed" };

static int64_t
wall_ms(void)
{
  return sl_time_now_ns() / 1000000;
}

static void run_start(struct sl_retention *r);
static void step_send(struct sl_retention *r);

static void
ops_free(struct sl_retention *r)
{
  size_t i;

  for (i = 0; i < r->nops; i++) {
    free(r->ops[i].path);
    free(r->ops[i].body);
    free(r->ops[i].what);
  }
  free(r->ops);
  r->ops = NULL;
  r->nops = r->next_op = 0;
}

static void
run_reset(struct sl_retention *r)
{
  json_decref(r->policies);
  json_decref(r->streams);
  json_decref(r->cat);
  r->policies = r->streams = r->cat = NULL;
  sl_retention_plan_free(&r->plan);
  ops_free(r);
  r->run_failed = 0;
  r->detail[0] = '\0';
}

static void
fail_note(struct sl_retention *r, const char *what, const char *detail)
{
  r->run_failed = 1;
  r->errors++;
  snprintf(r->last_error, sizeof r->last_error, "%s: %s", what, detail);
  if (!r->detail[0])
    snprintf(r->detail, sizeof r->detail, "%s: %s", what, detail);
  sl_log(SL_LOG_ERROR, COMP, "retention request failed", SL_LF_STR, "what",
         what, SL_LF_STR, "detail", detail, SL_LF_END);
}

static void on_timer(uv_timer_t *t);

/* New streams the last run did not find yet: one try less each; 1 when
 * some are still to be looked for. */
static int
waiting_left(struct sl_retention *r)
{
  const char *k;
  json_t *v;
  void *tmp;
  int left = 0;

  json_object_foreach_safe(r->waiting, tmp, k, v) {
    json_int_t n = json_integer_value(v) - 1;

    if (n <= 0) {
      json_object_del(r->waiting, k);
    } else {
      json_integer_set(v, n);
      left = 1;
    }
  }
  return left;
}

static void
run_end(struct sl_retention *r)
{
  sl_retention_once_cb cb = r->once_cb;
  uint64_t next = (uint64_t)r->rc.interval_ms;

  r->step = ST_IDLE;
  r->runs++;
  r->last_run_ms = wall_ms();
  if (r->run_failed) {
    r->failed_runs++;
    if (next > RETRY_MS)
      next = RETRY_MS;
  } else {
    r->last_ok_ms = r->last_run_ms;
  }
  if (cb) {
    r->once_cb = NULL;
    cb(r->once_arg, r->run_failed ? SL_EHTTP : 0, r->detail, &r->plan);
    run_reset(r);
    return;
  }
  run_reset(r);
  if (r->closing)
    return;
  if (r->rerun || waiting_left(r)) {
    r->rerun = 0;
    next = NEW_TARGET_DELAY_MS < next ? NEW_TARGET_DELAY_MS : next;
  }
  uv_timer_start(&r->timer, on_timer, next, 0);
}

/* ---- building the writes ------------------------------------------------ */

static int
op_add(struct sl_retention *r, enum op_kind kind, char *path, char *body,
       const char *what, size_t del)
{
  struct op *v = realloc(r->ops, (r->nops + 1) * sizeof *v);
  char *w = strdup(what);

  if (!v || !w || !path) {
    if (v)
      r->ops = v;
    free(w);
    free(path);
    free(body);
    return SL_ENOMEM;
  }
  r->ops = v;
  v[r->nops].kind = kind;
  v[r->nops].path = path;
  v[r->nops].body = body;
  v[r->nops].what = w;
  v[r->nops].del = del;
  r->nops++;
  return 0;
}

static char *
fmt_path(const char *a, const char *b, const char *c)
{
  size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
  char *p = malloc(n);

  if (p)
    snprintf(p, n, "%s%s%s", a, b, c);
  return p;
}

static int
policy_ops(struct sl_retention *r)
{
  size_t i;
  int rc = 0;

  for (i = 0; i <= r->rc.nrules && !rc; i++) {
    const char *name = i < r->rc.nrules ? r->rc.rules[i].name : "default";
    const char *keep = i < r->rc.nrules ? r->rc.rules[i].keep
                                        : r->rc.default_keep;
    char pname[96];
    int64_t ver = 0;
    char *body = policy_body(keep, &ver);
    const json_t *stored;

    if (!body)
      return SL_ENOMEM;
    snprintf(pname, sizeof pname, "sluice-%s", name);
    stored = json_object_get(json_object_get(json_object_get(
        json_object_get(r->policies, pname), "policy"), "_meta"),
        "sluice_version");
    if (json_is_integer(stored) && json_integer_value(stored) == ver) {
      free(body);
      continue;
    }
    rc = op_add(r, OP_POLICY, fmt_path("_ilm/policy/", pname, ""), body,
                pname, 0);
  }
  return rc;
}

/* Lifecycle and ILM: point every sluice stream at its rule when it is not
 * already. */
static int
stream_ops(struct sl_retention *r)
{
  const json_t *arr = json_object_get(r->streams, "data_streams"), *s;
  char ds[128], pname[96];
  size_t i;
  int rc = 0;

  json_array_foreach(arr, i, s) {
    const char *name = json_string_value(json_object_get(s, "name"));
    const struct sl_retention_rule *ru;
    const json_t *idx = json_object_get(s, "indices");
    char *body = NULL;

    if (rc)
      break;
    if (!name)
      continue;
    /* It exists: no longer waited for, whoever made it. */
    json_object_del(r->waiting, name);
    if (!is_sluice_stream(s) ||
        sl_retention_stream_dataset(name, ds, sizeof ds) != 0)
      continue;
    ru = sl_retention_match(&r->rc, ds);
    if (r->rc.mode == SL_RET_LIFECYCLE) {
      const char *want = ru ? ru->keep : r->rc.default_keep;
      const json_t *lc = json_object_get(s, "lifecycle");
      const char *cur = json_string_value(json_object_get(lc,
                                                          "data_retention"));
      int64_t cur_ms = -1;

      if (cur && sl_retention_parse_duration(cur, &cur_ms) == 0 &&
          cur_ms == keep_ms_of(&r->rc, ru) &&
          !json_is_false(json_object_get(lc, "enabled")))
        continue;
      body = dump_new(json_pack("{s:s}", "data_retention", want));
      rc = body ? op_add(r, OP_LIFECYCLE, fmt_path("_data_stream/", name,
                                                   "/_lifecycle"),
                         body, name, 0)
                : SL_ENOMEM;
    } else if (r->rc.mode == SL_RET_ILM) {
      const char *cur = json_string_value(json_object_get(
          json_array_get(idx, json_array_size(idx) - 1), "ilm_policy"));

      snprintf(pname, sizeof pname, "sluice-%s", ru ? ru->name : "default");
      if (cur && strcmp(cur, pname) == 0)
        continue;
      body = dump_new(json_pack("{s:{s:{s:s, s:b}}}", "index", "lifecycle",
                                "name", pname, "prefer_ilm", 1));
      rc = body ? op_add(r, OP_SETTINGS, fmt_path(name, "/_settings", ""),
                         body, name, 0)
                : SL_ENOMEM;
    }
  }
  return rc;
}

static int
build_writes(struct sl_retention *r)
{
  size_t i;
  int rc;

  rc = sl_retention_plan_build(&r->rc, r->prefix, r->streams, r->cat,
                               wall_ms(), &r->plan);
  if (rc || !r->apply)
    return rc;
  if (r->rc.mode == SL_RET_ILM)
    rc = policy_ops(r);
  if (!rc && r->rc.mode != SL_RET_MANAGED)
    rc = stream_ops(r);
  for (i = 0; !rc && i < r->plan.ndel; i++)
    rc = op_add(r, OP_DELETE, strdup(r->plan.del[i].index), NULL,
                r->plan.del[i].index, i);
  return rc;
}

/* ---- requests ----------------------------------------------------------- */

static void
note_deleted(struct sl_retention *r, const struct sl_retention_del *d)
{
  struct recent *e = &r->recent[r->nrecent++ % RECENT_DELS];

  snprintf(e->index, sizeof e->index, "%s", d->index);
  snprintf(e->rule, sizeof e->rule, "%s", d->rule);
  e->age_days = d->age_ms / DAY_MS;
  e->at_ms = wall_ms();
  r->deleted++;
  if (d->bytes > 0)
    r->deleted_bytes += (uint64_t)d->bytes;
  sl_log(SL_LOG_INFO, COMP, "deleted index", SL_LF_STR, "index", d->index,
         SL_LF_STR, "rule", d->rule, SL_LF_STR, "dataset", d->dataset,
         SL_LF_INT, "age_days", (int64_t)(d->age_ms / DAY_MS), SL_LF_INT,
         "age_ms", d->age_ms, SL_LF_INT, "bytes", d->bytes, SL_LF_END);
}

static void
on_write_done(struct sl_retention *r, const struct sl_es_result *res,
              const char *detail)
{
  const struct op *o = &r->ops[r->next_op];
  long st = res->answered ? res->status : 0;

  if (o->kind == OP_DELETE) {
    const struct sl_retention_del *d = &r->plan.del[o->del];

    r->plan.del[o->del].outcome = st / 100 == 2 || st == 404 ? 1 : -1;
    if (st / 100 == 2)
      note_deleted(r, d);
    else if (st == 404)
      sl_log(SL_LOG_INFO, COMP, "index already gone", SL_LF_STR, "index",
             d->index, SL_LF_END);
    else
      fail_note(r, o->what, detail);
  } else if (st / 100 == 2) {
    r->updates++;
    r->plan.updated++;
    sl_log(SL_LOG_INFO, COMP, o->kind == OP_POLICY ? "ilm policy installed"
           : o->kind == OP_LIFECYCLE ? "data stream lifecycle set"
           : "data stream ilm policy set", SL_LF_STR, "name", o->what,
           SL_LF_STR, "body", o->body, SL_LF_END);
  } else if (o->kind == OP_LIFECYCLE && st == 404) {
    /* Deleted since we listed it. */
  } else {
    fail_note(r, o->what, detail);
  }
  r->next_op++;
}

static void
on_done(void *arg, const struct sl_es_result *res)
{
  struct sl_retention *r = arg;
  char detail[400];
  json_t *j = NULL;

  if (!res->answered)
    snprintf(detail, sizeof detail, "%.200s: %.180s", res->url, res->error);
  else
    snprintf(detail, sizeof detail, "HTTP %ld from %.200s: %.150s",
             res->status, res->url, res->body);
  if (r->step == ST_WRITES) {
    on_write_done(r, res, detail);
    step_send(r);
    return;
  }
  if (res->answered && res->status == 200)
    j = json_loadb(res->body, res->len, 0, NULL);
  /* No sluice stream yet: ES answers 404 to a pattern that matches no
   * data stream in some versions. */
  if (!j && r->step == ST_STREAMS && res->answered && res->status == 404)
    j = json_pack("{s:[]}", "data_streams");
  if (!j && r->step == ST_POLICIES && res->answered && res->status == 404)
    j = json_object();
  if (!j) {
    fail_note(r, r->step == ST_POLICIES ? "GET _ilm/policy"
              : r->step == ST_STREAMS ? "GET _data_stream"
              : "GET _cat/indices", detail);
    run_end(r);
    return;
  }
  switch (r->step) {
  case ST_POLICIES:
    r->policies = j;
    r->step = ST_STREAMS;
    break;
  case ST_STREAMS:
    r->streams = j;
    r->step = ST_CAT;
    break;
  default:
    r->cat = j;
    if (build_writes(r) != 0) {
      fail_note(r, "plan", sl_strerror(SL_ENOMEM));
      run_end(r);
      return;
    }
    r->step = ST_WRITES;
    break;
  }
  step_send(r);
}

static void
step_send(struct sl_retention *r)
{
  const char *method = "GET";
  char path[600];
  struct sl_buf body;
  int rc;

  sl_buf_init(&body, 0);
  switch (r->step) {
  case ST_POLICIES:
    snprintf(path, sizeof path, "_ilm/policy");
    break;
  case ST_STREAMS:
    snprintf(path, sizeof path, "_data_stream/logs-*");
    break;
  case ST_CAT:
    /* Hidden .ds- indices are included: _cat/indices expands to all. */
    snprintf(path, sizeof path, "_cat/indices/%s-*,.ds-logs-*?format=json"
             "&h=index,creation.date,store.size&bytes=b&s=index", r->prefix);
    break;
  case ST_WRITES:
    if (r->next_op >= r->nops) {
      run_end(r);
      return;
    }
    method = r->ops[r->next_op].kind == OP_DELETE ? "DELETE" : "PUT";
    snprintf(path, sizeof path, "%s", r->ops[r->next_op].path);
    if (r->ops[r->next_op].body &&
        sl_buf_append_str(&body, r->ops[r->next_op].body) != 0) {
      fail_note(r, path, sl_strerror(SL_ENOMEM));
      run_end(r);
      return;
    }
    break;
  default:
    return;
  }
  rc = sl_es_request(r->es, method, path, "Content-Type: application/json",
                     0, &body, on_done, r);
  sl_buf_free(&body);
  if (rc) {
    fail_note(r, path, sl_strerror(rc));
    run_end(r);
  }
}

static void
run_start(struct sl_retention *r)
{
  if (r->step != ST_IDLE) {
    r->rerun = 1;
    return;
  }
  run_reset(r);
  r->step = r->rc.mode == SL_RET_ILM && r->apply ? ST_POLICIES : ST_STREAMS;
  step_send(r);
}

static void
on_timer(uv_timer_t *t)
{
  struct sl_retention *r = t->data;

  if (!r->closing)
    run_start(r);
}

/* ---- public ------------------------------------------------------------- */

int
sl_retention_new(uv_loop_t *loop, const struct sl_es_conf *es,
                 const struct sl_retention_conf *rc,
                 struct sl_retention **out, char *err, size_t errlen)
{
  struct sl_retention *r = calloc(1, sizeof *r);
  int ret = SL_ENOMEM;

  *out = NULL;
  if (!r)
    return SL_ENOMEM;
  r->loop = loop;
  r->apply = 1;
  r->prefix = strdup(es->index_prefix ? es->index_prefix : "sluice");
  r->seen = json_object();
  r->waiting = json_object();
  if (!r->prefix || !r->seen || !r->waiting ||
      sl_retention_conf_copy(rc, &r->rc) != 0)
    goto fail;
  ret = sl_es_client_new(loop, es, &r->es, err, errlen);
  if (ret)
    goto fail;
  uv_timer_init(loop, &r->timer);
  r->timer.data = r;
  r->open_parts = 2;
  *out = r;
  return 0;
fail:
  sl_retention_conf_free(&r->rc);
  json_decref(r->seen);
  json_decref(r->waiting);
  free(r->prefix);
  free(r);
  return ret;
}

void
sl_retention_start(struct sl_retention *r)
{
  sl_log(SL_LOG_INFO, COMP, "retention job started", SL_LF_STR, "mode",
         mode_names[r->rc.mode], SL_LF_STR, "default", r->rc.default_keep,
         SL_LF_INT, "rules", (int64_t)r->rc.nrules, SL_LF_INT, "interval_ms",
         r->rc.interval_ms, SL_LF_END);
  uv_timer_start(&r->timer, on_timer, 0, 0);
}

int
sl_retention_once(struct sl_retention *r, int apply, sl_retention_once_cb cb,
                  void *arg)
{
  if (r->step != ST_IDLE || r->closing)
    return SL_EAGAIN;
  r->apply = apply;
  r->once_cb = cb;
  r->once_arg = arg;
  run_start(r);
  return 0;
}

void
sl_retention_saw_target(struct sl_retention *r, const char *name, size_t len)
{
  char n[256];

  if (r->closing || r->rc.mode == SL_RET_MANAGED || len >= sizeof n ||
      len < 6 || memcmp(name, "logs-", 5) != 0)
    return;
  memcpy(n, name, len);
  n[len] = '\0';
  if (json_object_get(r->seen, n) || json_object_size(r->seen) >= MAX_SEEN)
    return;
  json_object_set_new(r->seen, n, json_true());
  json_object_set_new(r->waiting, n, json_integer(NEW_TARGET_TRIES));
  /* Its first bulk creates it; sync shortly after (one run covers all
   * the new names of that moment). */
  if (r->step != ST_IDLE)
    r->rerun = 1;
  else if (uv_timer_get_due_in(&r->timer) > NEW_TARGET_DELAY_MS ||
           !uv_is_active((uv_handle_t *)&r->timer))
    uv_timer_start(&r->timer, on_timer, NEW_TARGET_DELAY_MS, 0);
}

int
sl_retention_metrics(const struct sl_retention *r, struct sl_buf *b)
{
  int rc = 0;

#define C(name, help, v) \
  if (rc == 0) rc = sl_prom_counter(b, name, help, NULL, (uint64_t)(v))
#define G(name, help, v) \
  if (rc == 0) rc = sl_prom_gauge(b, name, help, NULL, (double)(v))
  C("sluice_collector_retention_runs_total", "Retention job runs.", r->runs);
  C("sluice_collector_retention_failed_runs_total",
    "Retention runs with a failed request.", r->failed_runs);
  C("sluice_collector_retention_failed_requests_total",
    "Failed retention requests.", r->errors);
  C("sluice_collector_retention_deleted_indices_total",
    "Indices deleted by managed retention.", r->deleted);
  C("sluice_collector_retention_deleted_bytes_total",
    "Store bytes of the indices deleted.", r->deleted_bytes);
  C("sluice_collector_retention_updates_total",
    "Lifecycles, ILM policies and stream settings written.", r->updates);
  G("sluice_collector_retention_last_run_timestamp_seconds",
    "Wall time the last run ended (0: none yet).",
    (double)r->last_run_ms / 1000.0);
  G("sluice_collector_retention_last_success_timestamp_seconds",
    "Wall time the last run without failure ended.",
    (double)r->last_ok_ms / 1000.0);
#undef C
#undef G
  return rc;
}

json_t *
sl_retention_state(const struct sl_retention *r)
{
  json_t *o, *rules = json_array(), *dels = json_array();
  size_t i, n = r->nrecent < RECENT_DELS ? r->nrecent : RECENT_DELS;

  for (i = 0; rules && i < r->rc.nrules; i++)
    json_array_append_new(rules, json_pack(
      "{s:s, s:s, s:s, s:s?}", "match", r->rc.rules[i].match, "keep",
      r->rc.rules[i].keep, "name", r->rc.rules[i].name, "index_pattern",
      r->rc.rules[i].pattern));
  for (i = 0; dels && i < n; i++) {
    /* newest first */
    const struct recent *e = &r->recent[(r->nrecent - 1 - i) % RECENT_DELS];

    json_array_append_new(dels, json_pack(
      "{s:s, s:s, s:I, s:I}", "index", e->index, "rule", e->rule,
      "age_days", (json_int_t)e->age_days, "at_ms", (json_int_t)e->at_ms));
  }
  o = json_pack("{s:s, s:s, s:I, s:o, s:I, s:I, s:I, s:I, s:I, s:s, s:o, "
                "s:b}", "mode", mode_names[r->rc.mode], "default",
                r->rc.default_keep, "interval_ms",
                (json_int_t)r->rc.interval_ms, "rules", rules, "runs",
                (json_int_t)r->runs, "failed_runs", (json_int_t)r->failed_runs,
                "deleted_indices", (json_int_t)r->deleted, "last_run_ms",
                (json_int_t)r->last_run_ms, "last_success_ms",
                (json_int_t)r->last_ok_ms, "last_error", r->last_error,
                "recent_deletions", dels, "running", r->step != ST_IDLE);
  return o;
}

static void
part_closed(struct sl_retention *r)
{
  if (--r->open_parts > 0)
    return;
  run_reset(r);
  sl_retention_conf_free(&r->rc);
  json_decref(r->seen);
  json_decref(r->waiting);
  free(r->prefix);
  if (r->close_cb)
    r->close_cb(r->close_arg);
  free(r);
}

static void
on_timer_closed(uv_handle_t *h)
{
  part_closed(h->data);
}

static void
on_client_closed(void *arg)
{
  part_closed(arg);
}

void
sl_retention_close(struct sl_retention *r, void (*cb)(void *arg), void *arg)
{
  if (r->closing)
    return;
  r->closing = 1;
  r->close_cb = cb;
  r->close_arg = arg;
  uv_close((uv_handle_t *)&r->timer, on_timer_closed);
  /* Requests in flight are abandoned: their callbacks do not run. */
  sl_es_client_close(r->es, on_client_closed, r);
}

/* ---- the CLI ------------------------------------------------------------ */

struct cli {
  uv_loop_t *loop;
  int json, apply, exit_code, mode;
  const char *default_keep, *prefix;
};

static void
print_json(const struct cli *k, const struct sl_retention_plan *p)
{
  json_t *dels = json_array(), *o;
  char *text;
  size_t i;

  for (i = 0; dels && i < p->ndel; i++) {
    const struct sl_retention_del *d = &p->del[i];

    if (k->apply && d->outcome != 1)
      continue;
    json_array_append_new(dels, json_pack(
      "{s:s, s:s, s:I, s:I}", "index", d->index, "rule", d->rule,
      "age_days", (json_int_t)(d->age_ms / DAY_MS), "bytes",
      (json_int_t)d->bytes));
  }
  o = json_pack("{s:o, s:o}", "rules",
                p->rules ? json_incref(p->rules) : json_array(), "delete",
                dels);
  text = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
  if (text)
    printf("%s\n", text);
  free(text);
  json_decref(o);
}

static void
print_text(const struct cli *k, const struct sl_retention_plan *p)
{
  const json_t *row;
  size_t i, n = 0;

  printf("retention mode %s, default %s\n", mode_names[k->mode],
         k->default_keep);
  printf("%-32s %-20s %s\n", "DATASET", "RULE", "KEEP");
  json_array_foreach(p->rules, i, row)
    printf("%-32s %-20s %s\n",
           json_string_value(json_object_get(row, "dataset")),
           json_string_value(json_object_get(row, "rule")),
           json_string_value(json_object_get(row, "keep")));
  if (json_array_size(p->rules) == 0)
    printf("(no sluice data streams or %s-* daily indices yet)\n",
           k->prefix);
  if (k->mode != SL_RET_MANAGED) {
    printf("Elasticsearch deletes old data in mode %s; nothing for sluice "
           "to delete\n", mode_names[k->mode]);
    if (k->apply)
      printf("updated %zu lifecycle%s, policies or stream settings\n",
             p->updated, p->updated == 1 ? "" : "s");
    return;
  }
  for (i = 0; i < p->ndel; i++)
    n += !k->apply || p->del[i].outcome == 1;
  printf("%s %zu ind%s%s\n", k->apply ? "deleted" : "would delete", n,
         n == 1 ? "ex" : "ices", n ? ":" : "");
  for (i = 0; i < p->ndel; i++) {
    const struct sl_retention_del *d = &p->del[i];

    if (k->apply && d->outcome != 1)
      continue;
    printf("  %-48s rule %-16s age %lldd  %lld bytes\n", d->index, d->rule,
           (long long)(d->age_ms / DAY_MS), (long long)d->bytes);
  }
}

static void
on_cli_done(void *arg, int rc, const char *detail,
            const struct sl_retention_plan *plan)
{
  struct cli *k = arg;
  size_t i;

  /* The client's keep-alive sockets keep the loop alive: stop it here,
   * close outside the callback. */
  uv_stop(k->loop);
  if (rc && !plan->rules) {
    /* Nothing could be listed: no plan to show. */
    fprintf(stderr, "sluice-collector retention: %s\n", detail);
    k->exit_code = 1;
    return;
  }
  if (k->json)
    print_json(k, plan);
  else
    print_text(k, plan);
  for (i = 0; i < plan->ndel; i++)
    if (plan->del[i].outcome == -1)
      fprintf(stderr, "sluice-collector retention: could not delete %s\n",
              plan->del[i].index);
  if (rc) {
    fprintf(stderr, "sluice-collector retention: %s\n", detail);
    k->exit_code = 1;
  }
}

static int
usage(void)
{
  fprintf(stderr, "usage: sluice-collector -c FILE retention plan|apply "
          "[--json]\n");
  return 2;
}

int
sl_retention_cli(const struct sl_conf *conf, int argc, char **argv)
{
  const json_t *root = sl_conf_root(conf);
  struct sl_es_conf es;
  struct sl_retention_conf rc;
  struct sl_retention *r = NULL;
  struct cli k;
  uv_loop_t loop;
  char err[1024] = "";
  int i, ret;

  memset(&k, 0, sizeof k);
  if (argc < 2)
    return usage();
  if (strcmp(argv[1], "apply") == 0)
    k.apply = 1;
  else if (strcmp(argv[1], "plan") != 0)
    return usage();
  for (i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0)
      k.json = 1;
    else
      return usage();
  }
  if (sl_retention_conf_fill(conf, &rc, err, sizeof err, NULL, 0) != 0) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  if (rc.mode == SL_RET_NONE) {
    fprintf(stderr, "%s: no retention: section\n", sl_conf_file(conf));
    return 2;
  }
  /* The daemon's connection settings (hosts, auth, TLS), through the same
   * client, on a loop of our own. */
  ret = sl_es_conf_fill(sl_conf_get(root, "elasticsearch"),
                        sl_conf_str(root, "data_dir"), &es, err, sizeof err);
  if (ret) {
    fprintf(stderr, "%s: %s\n", sl_conf_file(conf), err);
    sl_retention_conf_free(&rc);
    return 2;
  }
  k.mode = rc.mode;
  k.default_keep = rc.default_keep;
  k.prefix = es.index_prefix;
  k.exit_code = 0;
  k.loop = &loop;
  uv_loop_init(&loop);
  ret = sl_retention_new(&loop, &es, &rc, &r, err, sizeof err);
  if (ret == 0)
    ret = sl_retention_once(r, k.apply, on_cli_done, &k);
  if (ret) {
    fprintf(stderr, "sluice-collector retention: %s\n",
            err[0] ? err : sl_strerror(ret));
    k.exit_code = 1;
  } else {
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  if (r)
    sl_retention_close(r, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  sl_es_conf_free(&es);
  sl_retention_conf_free(&rc);
  return k.exit_code;
}
