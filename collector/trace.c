/* trace.c - `sluice-collector trace ID`: one request's events across
 * services, from Elasticsearch or the archive (tools.h). */
#include "tools.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "archive.h"
#include "config.h"
#include "es_client.h"
#include "sl_err.h"
#include "sl_time.h"

/* ES refuses from + size above index.max_result_window (10000 by
 * default); one request of that size is the whole answer for a trace. */
#define ES_MAX_HITS 10000
#define MAX_DEPTH 32

static const char *const id_fields[][3] = {
  { "trace", "id", "trace.id" },
  { "transaction", "id", "transaction.id" },
  { "http", "request", "http.request.id" },
};

struct hit {
  json_t *ev;                 /* owned */
  int64_t ts;
  size_t order;               /* arrival, for a stable sort */
  int depth;
};

struct trace {
  const char *id;
  struct hit *v;
  size_t n, cap;
  int failed;
};

/* A field given nested or dotted (ECS allows both, ES treats them the
 * same); `path` like "http.request.id". */
static const json_t *
field(const json_t *ev, const char *path)
{
  const json_t *v = json_object_get(ev, path);
  const char *dot;
  char head[64];

  if (v || (dot = strchr(path, '.')) == NULL)
    return v;
  if ((size_t)(dot - path) >= sizeof head)
    return NULL;
  memcpy(head, path, (size_t)(dot - path));
  head[dot - path] = '\0';
  v = json_object_get(ev, head);
  return json_is_object(v) ? field(v, dot + 1) : NULL;
}

static const char *
str_field(const json_t *ev, const char *path)
{
  const json_t *v = field(ev, path);

  return json_is_string(v) ? json_string_value(v) : NULL;
}

static int
matches(const json_t *ev, const char *id)
{
  size_t i;

  for (i = 0; i < sizeof id_fields / sizeof id_fields[0]; i++) {
    const char *s = str_field(ev, id_fields[i][2]);

    if (s && strcmp(s, id) == 0)
      return 1;
  }
  return 0;
}

static int
add(struct trace *t, json_t *ev)
{
  const json_t *ts = json_object_get(ev, "@timestamp");
  struct hit *h;

  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 64;
    void *v = realloc(t->v, cap * sizeof *t->v);

    if (v == NULL)
      return SL_ENOMEM;
    t->v = v;
    t->cap = cap;
  }
  h = &t->v[t->n];
  h->ev = json_incref(ev);
  h->order = t->n++;
  h->ts = 0;
  h->depth = 0;
  if (json_is_string(ts))
    (void)sl_time_parse_any(json_string_value(ts), json_string_length(ts),
                            &h->ts);
  else if (json_is_integer(ts))
    h->ts = (int64_t)json_integer_value(ts) * 1000000;
  return 0;
}

/* ---- from the archive ---------------------------------------------------- */

static int
on_line(void *arg, const char *line, size_t len)
{
  struct trace *t = arg;
  size_t idlen = strlen(t->id);
  json_t *ev;
  int rc = 0;

  /* Most lines do not mention the id at all: skip them without a parse. */
  if (len < idlen || memmem(line, len, t->id, idlen) == NULL)
    return 0;
  ev = json_loadb(line, len, 0, NULL);
  if (json_is_object(ev) && matches(ev, t->id))
    rc = add(t, ev);
  json_decref(ev);
  return rc;
}

static int
from_archive(struct trace *t, const char *dir)
{
  struct sl_archive_file *f;
  size_t n, i;
  int rc = sl_archive_list(dir, NULL, &f, &n);

  if (rc) {
    fprintf(stderr, "trace: %s: %s\n", dir, sl_strerror(rc));
    return rc;
  }
  for (i = 0; i < n && rc == 0; i++) {
    rc = sl_archive_read(f[i].path, on_line, t);
    if (rc && rc != SL_ENOMEM) {
      fprintf(stderr, "trace: %s: %s\n", f[i].path, sl_strerror(rc));
      t->failed = 1;
      rc = 0;
    }
  }
  sl_archive_files_free(f, n);
  return rc;
}

/* ---- from Elasticsearch -------------------------------------------------- */

struct es_req {
  struct trace *t;
  int done, rc;
};

static void
on_search(void *arg, const struct sl_es_result *res)
{
  struct es_req *q = arg;
  json_t *root, *hits;
  size_t i;

  q->done = 1;
  if (!res->answered) {
    fprintf(stderr, "trace: %s: %s\n", res->url, res->error);
    q->rc = SL_ECONNREFUSED;
    return;
  }
  if (res->status == 404) {
    q->rc = 0; /* no logs-* index at all: nothing found */
    return;
  }
  if (res->status != 200) {
    fprintf(stderr, "trace: %s: HTTP %ld: %.300s\n", res->url, res->status,
            res->body);
    q->rc = SL_EHTTP;
    return;
  }
  root = json_loadb(res->body, res->len, 0, NULL);
  hits = json_object_get(json_object_get(root, "hits"), "hits");
  if (!json_is_array(hits)) {
    fprintf(stderr, "trace: unexpected answer from %s\n", res->url);
    q->rc = SL_EPARSE;
  }
  {
    json_int_t total = json_integer_value(json_object_get(
        json_object_get(json_object_get(root, "hits"), "total"), "value"));

    if (total > (json_int_t)json_array_size(hits))
      fprintf(stderr, "trace: showing the first %zu of %lld events\n",
              json_array_size(hits), (long long)total);
  }
  for (i = 0; q->rc == 0 && i < json_array_size(hits); i++) {
    json_t *src = json_object_get(json_array_get(hits, i), "_source");

    if (json_is_object(src))
      q->rc = add(q->t, src);
  }
  json_decref(root);
}

static void
on_client_closed(void *arg)
{
  (void)arg;
}

static int
from_es(struct trace *t, const json_t *esobj, const char *data_dir)
{
  struct sl_es_conf es;
  struct sl_es_client *c = NULL;
  struct es_req q = { t, 0, 0 };
  struct sl_buf body, path;
  uv_loop_t loop;
  json_t *should, *query;
  const char *mode;
  char err[512] = "", *js = NULL;
  size_t i;
  int rc;

  rc = sl_es_conf_fill(esobj, data_dir, &es, err, sizeof err);
  if (rc) {
    fprintf(stderr, "trace: %s\n", err);
    return rc;
  }
  should = json_array();
  for (i = 0; i < sizeof id_fields / sizeof id_fields[0]; i++)
    json_array_append_new(
        should, json_pack("{s:{s:s}}", "term", id_fields[i][2], t->id));
  query = json_pack("{s:i,s:{s:{s:o,s:i}},s:[{s:{s:s,s:s}}]}", "size",
                    ES_MAX_HITS, "query", "bool", "should", should,
                    "minimum_should_match", 1, "sort", "@timestamp",
                    "order", "asc", "unmapped_type", "date");
  if (query)
    js = json_dumps(query, JSON_COMPACT);
  json_decref(query);
  sl_buf_init(&body, 0);
  sl_buf_init(&path, 0);
  mode = sl_conf_str(esobj, "index_mode");
  /* Daily indices are <prefix>-<dataset>-<date>; data streams logs-*. */
  if (mode && strcmp(mode, "daily") == 0)
    rc = sl_buf_printf(&path, "%s-*/_search", es.index_prefix);
  else
    rc = sl_buf_append_str(&path, "logs-*/_search");
  if (!rc)
    rc = sl_buf_append_str(&path, "?ignore_unavailable=true&"
                           "allow_no_indices=true");
  if (!rc)
    rc = js ? sl_buf_append_str(&body, js) : SL_ENOMEM;
  free(js);
  uv_loop_init(&loop);
  if (!rc)
    rc = sl_es_client_new(&loop, &es, &c, err, sizeof err);
  if (!rc)
    rc = sl_es_request(c, "POST", path.p, "Content-Type: application/json",
                       0, &body, on_search, &q);
  if (!rc) {
    while (!q.done && uv_run(&loop, UV_RUN_ONCE))
      ;
    rc = q.done ? q.rc : SL_EINTERNAL;
  } else {
    fprintf(stderr, "trace: %s\n", err[0] ? err : sl_strerror(rc));
  }
  if (c)
    sl_es_client_close(c, on_client_closed, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  sl_buf_free(&body);
  sl_buf_free(&path);
  sl_es_conf_free(&es);
  return rc;
}

/* ---- output -------------------------------------------------------------- */

static int
hit_cmp(const void *a, const void *b)
{
  const struct hit *x = a, *y = b;

  if (x->ts != y->ts)
    return x->ts < y->ts ? -1 : 1;
  return x->order < y->order ? -1 : x->order > y->order;
}

/* Depth of the span `span`: 0 when its parent is not among the events. */
static int
span_depth(const struct trace *t, const char *span, int guard)
{
  size_t i;

  if (span == NULL || guard >= MAX_DEPTH)
    return 0;
  for (i = 0; i < t->n; i++) {
    const json_t *ev = t->v[i].ev;
    const char *s = str_field(ev, "span.id");
    const char *p = str_field(ev, "parent.id");

    if (s && p && strcmp(s, span) == 0 && strcmp(p, span) != 0) {
      size_t j;

      for (j = 0; j < t->n; j++) {
        const char *ps = str_field(t->v[j].ev, "span.id");

        if (ps && strcmp(ps, p) == 0)
          return 1 + span_depth(t, p, guard + 1);
      }
    }
  }
  return 0;
}

static const char *
or_dash(const char *s)
{
  return s && s[0] ? s : "-";
}

static void
print_text(struct trace *t)
{
  int hw = 4, sw = 7, lw = 5;
  size_t i;

  for (i = 0; i < t->n; i++) {
    const json_t *ev = t->v[i].ev;
    int a = (int)strlen(or_dash(str_field(ev, "host.name")));
    int b = (int)strlen(or_dash(str_field(ev, "service.name")));
    int c = (int)strlen(or_dash(str_field(ev, "log.level")));

    hw = a > hw ? a : hw;
    sw = b > sw ? b : sw;
    lw = c > lw ? c : lw;
    t->v[i].depth = span_depth(t, str_field(ev, "span.id"), 0);
  }
  printf("%-24s  %-*s  %-*s  %-*s  %s\n", "TIME", hw, "HOST", sw, "SERVICE",
         lw, "LEVEL", "MESSAGE");
  for (i = 0; i < t->n; i++) {
    const json_t *ev = t->v[i].ev;
    char ts[SL_TIME_RFC3339_MS_LEN + 1];
    const char *msg = str_field(ev, "message");

    sl_time_format_ms(t->v[i].ts, ts);
    printf("%-24s  %-*s  %-*s  %-*s  %*s%s\n", ts, hw,
           or_dash(str_field(ev, "host.name")), sw,
           or_dash(str_field(ev, "service.name")), lw,
           or_dash(str_field(ev, "log.level")), t->v[i].depth * 2, "",
           or_dash(msg));
  }
  if (t->n) {
    char a[SL_TIME_RFC3339_MS_LEN + 1];

    sl_time_format_ms(t->v[0].ts, a);
    printf("%zu event%s, %.3fs from %s\n", t->n, t->n == 1 ? "" : "s",
           (double)(t->v[t->n - 1].ts - t->v[0].ts) / 1e9, a);
  }
}

static int
usage(const char *why)
{
  fprintf(stderr, "sluice-collector trace: %s\nusage: sluice-collector -c "
          "FILE trace ID [--json] [--archive DIR]\n", why);
  return 2;
}

int
sl_trace_main(const struct sl_conf *conf, int argc, char **argv)
{
  const json_t *root = sl_conf_root(conf);
  const char *dir = NULL;
  struct trace t;
  int i, json = 0, rc;

  memset(&t, 0, sizeof t);
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0)
      json = 1;
    else if (strcmp(argv[i], "--archive") == 0 && i + 1 < argc)
      dir = argv[++i];
    else if (argv[i][0] == '-' || t.id != NULL)
      return usage("unknown argument");
    else
      t.id = argv[i];
  }
  if (t.id == NULL || t.id[0] == '\0')
    return usage("ID is required");
  if (dir == NULL && sl_conf_get(root, "elasticsearch") != NULL) {
    rc = from_es(&t, sl_conf_get(root, "elasticsearch"),
                 sl_conf_str(root, "data_dir"));
  } else {
    if (dir == NULL)
      dir = sl_conf_str(root, "archive.path");
    if (dir == NULL)
      return usage("no elasticsearch: and no archive to read");
    rc = from_archive(&t, dir);
  }
  if (t.n)
    qsort(t.v, t.n, sizeof *t.v, hit_cmp);
  if (rc == 0) {
    if (json) {
      for (i = 0; i < (int)t.n; i++) {
        char *s = json_dumps(t.v[i].ev, JSON_COMPACT | JSON_PRESERVE_ORDER);

        if (s)
          printf("%s\n", s);
        free(s);
      }
    } else if (t.n) {
      print_text(&t);
    }
    if (t.n == 0)
      fprintf(stderr, "trace: no event has trace.id, transaction.id or "
              "http.request.id %s\n", t.id);
  }
  for (i = 0; i < (int)t.n; i++)
    json_decref(t.v[i].ev);
  free(t.v);
  return rc || t.failed || t.n == 0 ? 1 : 0;
}
