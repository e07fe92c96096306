/* filter.c - include/exclude_lines and streaming event edits (filter.h). */
#include "filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_err.h"
#include "sl_json.h"

/* Longest dotted path handled; deeper members are copied untouched. */
#define PATH_MAX_LEN 512
/* Nesting the edit walk follows (the parser caps events far below). */
#define EDIT_MAX_DEPTH 64
/* rename + add_fields entries per input. */
#define MAX_TARGETS 64

struct ren {
  char *from, *to;
  size_t fromlen;
};

struct add {
  char *path;
  char *json;                 /* the value, rendered once */
};

struct sl_filter {
  struct sl_rx *inc, *exc;
  size_t ninc, nexc;
  char **drop;
  size_t *droplen;
  size_t ndrop;
  struct ren *ren;
  size_t nren;
  struct add *add;
  size_t nadd;
};

/* One member to write during an edit. */
struct target {
  const char *path;
  size_t plen;
  const char *val;            /* raw JSON; NULL: nothing to write */
  size_t vlen;
  int done;
};

struct edit {
  const struct sl_filter *f;
  struct target t[MAX_TARGETS];
  size_t nt;
  struct sl_buf *out;
  int err;
};

/* ---- config ------------------------------------------------------------ */

static int
cfg_err(char *err, size_t errlen, const char *fmt, const char *a)
{
  if (err && errlen)
    snprintf(err, errlen, fmt, a);
  return SL_ECONFIG;
}

static int
path_ok(const char *p)
{
  size_t n = strlen(p);

  return n > 0 && n < PATH_MAX_LEN && p[0] != '.' && p[n - 1] != '.' &&
         strstr(p, "..") == NULL && strpbrk(p, "\"\\") == NULL;
}

static int
read_res(const json_t *in, const char *key, struct sl_rx **out, size_t *n,
         char *err, size_t errlen)
{
  json_t *l = json_object_get(in, key), *v;
  size_t i;
  char e[256];

  if (l == NULL || json_is_null(l))
    return 0;
  if (json_is_string(l)) {
    /* A single pattern, as SL_CT_STR_LIST would accept. */
    *out = calloc(1, sizeof(**out));
    if (*out == NULL)
      return SL_ENOMEM;
    *n = 1;
    if (sl_rx_compile(&(*out)[0], json_string_value(l), e, sizeof(e)))
      return cfg_err(err, errlen, "%s", e);
    return 0;
  }
  if (!json_is_array(l))
    return cfg_err(err, errlen, "%s: must be a list of patterns", key);
  *out = calloc(json_array_size(l) + 1, sizeof(**out));
  if (*out == NULL)
    return SL_ENOMEM;
  json_array_foreach(l, i, v) {
    if (!json_is_string(v))
      return cfg_err(err, errlen, "%s: must be a list of patterns", key);
    *n = i + 1;
    if (sl_rx_compile(&(*out)[i], json_string_value(v), e, sizeof(e))) {
      char m[300];
      snprintf(m, sizeof(m), "%s: %s", key, e);
      return cfg_err(err, errlen, "%s", m);
    }
  }
  return 0;
}

int
sl_filter_new(const json_t *in, struct sl_filter **out, char *err,
              size_t errlen)
{
  struct sl_filter *f;
  json_t *v, *x;
  const char *k;
  size_t i;
  int rc;

  *out = NULL;
  f = calloc(1, sizeof(*f));
  if (f == NULL)
    return SL_ENOMEM;
  if ((rc = read_res(in, "include_lines", &f->inc, &f->ninc, err,
                     errlen)) ||
      (rc = read_res(in, "exclude_lines", &f->exc, &f->nexc, err, errlen)))
    goto fail;
  v = json_object_get(in, "drop_fields");
  if (json_is_string(v) || json_is_array(v)) {
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    f->drop = calloc(n + 1, sizeof(*f->drop));
    f->droplen = calloc(n + 1, sizeof(*f->droplen));
    if (f->drop == NULL || f->droplen == NULL) {
      rc = SL_ENOMEM;
      goto fail;
    }
    for (i = 0; i < n; i++) {
      x = json_is_array(v) ? json_array_get(v, i) : v;
      if (!json_is_string(x) || !path_ok(json_string_value(x))) {
        rc = cfg_err(err, errlen, "%s: must be a list of dotted paths",
                     "drop_fields");
        goto fail;
      }
      f->droplen[f->ndrop] = strlen(json_string_value(x));
      f->drop[f->ndrop++] = strdup(json_string_value(x));
    }
  } else if (v && !json_is_null(v)) {
    rc = cfg_err(err, errlen, "%s: must be a list of dotted paths",
                 "drop_fields");
    goto fail;
  }
  v = json_object_get(in, "rename");
  if (v && !json_is_null(v)) {
    if (!json_is_object(v)) {
      rc = cfg_err(err, errlen, "%s: must be a mapping from: to", "rename");
      goto fail;
    }
    f->ren = calloc(json_object_size(v) + 1, sizeof(*f->ren));
    if (f->ren == NULL) {
      rc = SL_ENOMEM;
      goto fail;
    }
    json_object_foreach(v, k, x) {
      if (!json_is_string(x) || !path_ok(k) ||
          !path_ok(json_string_value(x))) {
        rc = cfg_err(err, errlen, "rename.%s: must map a dotted path to "
                     "a dotted path", k);
        goto fail;
      }
      f->ren[f->nren].fromlen = strlen(k);
      f->ren[f->nren].from = strdup(k);
      f->ren[f->nren++].to = strdup(json_string_value(x));
    }
  }
  v = json_object_get(in, "add_fields");
  if (v && !json_is_null(v)) {
    if (!json_is_object(v)) {
      rc = cfg_err(err, errlen, "%s: must be a mapping path: value",
                   "add_fields");
      goto fail;
    }
    f->add = calloc(json_object_size(v) + 1, sizeof(*f->add));
    if (f->add == NULL) {
      rc = SL_ENOMEM;
      goto fail;
    }
    json_object_foreach(v, k, x) {
      if (!path_ok(k) || json_is_null(x)) {
        rc = cfg_err(err, errlen, "add_fields.%s: needs a dotted path and "
                     "a value", k);
        goto fail;
      }
      f->add[f->nadd].path = strdup(k);
      f->add[f->nadd++].json = json_dumps(x, JSON_ENCODE_ANY |
                                          JSON_COMPACT);
    }
  }
  if (f->nren + f->nadd > MAX_TARGETS) {
    rc = cfg_err(err, errlen, "%s: at most 64 rename + add_fields entries",
                 "add_fields");
    goto fail;
  }
  if (f->ninc + f->nexc + f->ndrop + f->nren + f->nadd == 0) {
    sl_filter_free(f);
    return SL_OK;
  }
  *out = f;
  return SL_OK;
fail:
  sl_filter_free(f);
  return rc;
}

void
sl_filter_free(struct sl_filter *f)
{
  size_t i;

  if (f == NULL)
    return;
  for (i = 0; i < f->ninc; i++)
    sl_rx_free(&f->inc[i]);
  for (i = 0; i < f->nexc; i++)
    sl_rx_free(&f->exc[i]);
  for (i = 0; i < f->ndrop; i++)
    free(f->drop[i]);
  for (i = 0; i < f->nren; i++) {
    free(f->ren[i].from);
    free(f->ren[i].to);
  }
  for (i = 0; i < f->nadd; i++) {
    free(f->add[i].path);
    free(f->add[i].json);
  }
  free(f->inc);
  free(f->exc);
  free(f->drop);
  free(f->droplen);
  free(f->ren);
  free(f->add);
  free(f);
}

int
sl_filter_keep(const struct sl_filter *f, const char *line, size_t len,
               pcre2_match_data *md)
{
  size_t i;
  int in = f->ninc == 0;

  for (i = 0; i < f->ninc && !in; i++)
    in = sl_rx_test(&f->inc[i], line, len, md);
  if (!in)
    return 0;
  for (i = 0; i < f->nexc; i++)
    if (sl_rx_test(&f->exc[i], line, len, md))
      return 0;
  return 1;
}

int
sl_filter_has_edits(const struct sl_filter *f)
{
  return f->ndrop + f->nren + f->nadd > 0;
}

/* ---- a minimal JSON walker --------------------------------------------- */

static const char *
ws(const char *p, const char *e)
{
  while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
    p++;
  return p;
}

/* p at '"': the byte after the closing quote, or NULL. memchr for the
 * quote, then an odd run of backslashes before it means escaped: most of
 * an event's bytes are string contents, so this is where the edit's time
 * goes (a byte loop here cost more than the rest of the pipeline). */
static const char *
str_end(const char *p, const char *e)
{
  const char *q = p + 1, *b;

  while (q < e && (q = memchr(q, '"', (size_t)(e - q))) != NULL) {
    for (b = q; b > p + 1 && b[-1] == '\\'; b--)
      ;
    if (((q - b) & 1) == 0)
      return q + 1;
    q++;
  }
  return NULL;
}

static const char *
value_end(const char *p, const char *e)
{
  int depth = 0;

  p = ws(p, e);
  if (p >= e)
    return NULL;
  if (*p == '"')
    return str_end(p, e);
  if (*p != '{' && *p != '[') {
    while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ' ')
      p++;
    return p;
  }
  for (; p < e; p++) {
    if (*p == '"') {
      p = str_end(p, e);
      if (p == NULL)
        return NULL;
      p--;
    } else if (*p == '{' || *p == '[') {
      depth++;
    } else if (*p == '}' || *p == ']') {
      if (--depth == 0)
        return p + 1;
    }
  }
  return NULL;
}

/* Path relations of `full` (length n) to a configured path p of length
 * pn: lengths first, the bytes only when they can match (this runs for
 * every member of every event). */
static int
is_path(const char *full, size_t n, const char *p, size_t pn)
{
  return pn == n && memcmp(full, p, n) == 0;
}

static int
is_prefix(const char *full, size_t n, const char *p, size_t pn)
{
  return pn > n && p[n] == '.' && memcmp(full, p, n) == 0;
}

/* Does any configured path run through or end at `full`? */
static int
relevant(const struct edit *ed, const char *full, size_t n)
{
  const struct sl_filter *f = ed->f;
  size_t i;

  for (i = 0; i < f->ndrop; i++)
    if (is_prefix(full, n, f->drop[i], f->droplen[i]))
      return 1;
  for (i = 0; i < f->nren; i++)
    if (is_prefix(full, n, f->ren[i].from, f->ren[i].fromlen))
      return 1;
  for (i = 0; i < ed->nt; i++)
    if (ed->t[i].val && is_prefix(full, n, ed->t[i].path, ed->t[i].plen))
      return 1;
  return 0;
}

/* The member at p (`"key": value`): the key's text is [*k, *ke - 1) (*ke
 * is past its closing quote), the value [*v, *ve). 0, or SL_EPARSE. */
static int
member(const char *p, const char *e, const char **k, const char **ke,
       const char **v, const char **ve)
{
  const char *q;

  if (*p != '"' || (*ke = str_end(p, e)) == NULL)
    return SL_EPARSE;
  *k = p + 1;
  q = ws(*ke, e);
  if (q >= e || *q != ':')
    return SL_EPARSE;
  q = ws(q + 1, e);
  if ((*ve = value_end(q, e)) == NULL)
    return SL_EPARSE;
  *v = q;
  return 0;
}

/* Past the member that ends at ve and its comma. */
static const char *
next_member(const char *ve, const char *e)
{
  const char *p = ws(ve, e);

  return p < e && *p == ',' ? ws(p + 1, e) : p;
}

/* path[0, plen) "." key into path, when it fits; the child's length
 * (PATH_MAX_LEN or more: too long, path left as it was). */
static size_t
child_path(char *path, size_t plen, const char *k, const char *ke)
{
  size_t kl = (size_t)(ke - 1 - k), n = plen + (plen ? 1 : 0) + kl;

  if (n < PATH_MAX_LEN) {
    if (plen)
      path[plen] = '.';
    memcpy(path + plen + (plen ? 1 : 0), k, kl);
  }
  return n;
}

/* Pass 1: where the values that rename moves are. */
static int
find_sources(struct edit *ed, const char *p, const char *e, char *path,
             size_t plen, int depth)
{
  const struct sl_filter *f = ed->f;
  const char *k, *ke, *v, *ve;
  size_t i, n;

  if (depth > EDIT_MAX_DEPTH)
    return 0;
  p = ws(p, e);
  if (p >= e || *p != '{')
    return SL_EPARSE;
  p = ws(p + 1, e);
  while (p < e && *p != '}') {
    if (member(p, e, &k, &ke, &v, &ve))
      return SL_EPARSE;
    n = child_path(path, plen, k, ke);
    if (n < PATH_MAX_LEN) {
      for (i = 0; i < f->nren; i++)
        if (is_path(path, n, f->ren[i].from, f->ren[i].fromlen) &&
            ed->t[i].val == NULL) {
          ed->t[i].val = v;
          ed->t[i].vlen = (size_t)(ve - v);
        }
      if (*v == '{' && relevant(ed, path, n) &&
          find_sources(ed, v, ve, path, n, depth + 1))
        return SL_EPARSE;
    }
    p = next_member(ve, e);
  }
  return p < e ? 0 : SL_EPARSE;
}

static void
put(struct edit *ed, const void *p, size_t n)
{
  if (ed->err == 0)
    ed->err = sl_buf_append(ed->out, p, n);
}

/* Write the targets under `path` that were not written yet, creating the
 * objects on the way. */
static void
emit_new(struct edit *ed, const char *path, size_t plen, int *first)
{
  size_t i, j, restn, cn;
  const char *rest, *dot;
  char sub[PATH_MAX_LEN];

  for (i = 0; i < ed->nt; i++) {
    struct target *t = &ed->t[i];
    if (t->done || t->val == NULL)
      continue;
    if (plen && !is_prefix(path, plen, t->path, t->plen))
      continue;
    rest = t->path + plen + (plen ? 1 : 0);
    restn = t->plen - (size_t)(rest - t->path);
    put(ed, *first ? "\"" : ",\"", *first ? 1 : 2);
    *first = 0;
    dot = memchr(rest, '.', restn);
    if (dot == NULL) {
      put(ed, rest, restn);
      put(ed, "\":", 2);
      put(ed, t->val, t->vlen);
      t->done = 1;
      continue;
    }
    cn = (size_t)(dot - rest);
    put(ed, rest, cn);
    put(ed, "\":{", 3);
    j = (size_t)(dot - t->path);
    memcpy(sub, t->path, j);
    {
      int f2 = 1;
      emit_new(ed, sub, j, &f2);
    }
    put(ed, "}", 1);
  }
}

/* Pass 2: copy the object at p with the edits applied. Untouched members
 * are copied in runs (one append per run, not per member). */
static int
copy_object(struct edit *ed, const char *p, const char *e, char *path,
            size_t plen, int depth)
{
  const struct sl_filter *f = ed->f;
  const char *k, *ke, *v, *ve, *run = NULL, *runend = NULL;
  size_t i, n;
  int first = 1, skip;

  p = ws(p, e);
  if (p >= e || *p != '{')
    return SL_EPARSE;
  put(ed, "{", 1);
  p = ws(p + 1, e);
  while (p < e && *p != '}') {
    if (member(p, e, &k, &ke, &v, &ve))
      return SL_EPARSE;
    n = child_path(path, plen, k, ke);
    skip = 0;
    if (n < PATH_MAX_LEN && depth < EDIT_MAX_DEPTH) {
      for (i = 0; i < f->ndrop && !skip; i++)
        skip = is_path(path, n, f->drop[i], f->droplen[i]);
      for (i = 0; i < f->nren && !skip; i++)
        skip = is_path(path, n, f->ren[i].from, f->ren[i].fromlen);
      for (i = 0; i < ed->nt && !skip; i++)
        skip = ed->t[i].val &&
               (is_path(path, n, ed->t[i].path, ed->t[i].plen) ||
                (*v != '{' &&
                 is_prefix(path, n, ed->t[i].path, ed->t[i].plen)));
      if (!skip && *v == '{' && relevant(ed, path, n))
        skip = 2;
    }
    if (skip == 0) {
      /* Extend the run of members copied as they are. */
      if (run == NULL)
        run = p;
      runend = ve;
    } else {
      if (run) {
        put(ed, first ? "" : ",", first ? 0 : 1);
        put(ed, run, (size_t)(runend - run));
        first = 0;
        run = NULL;
      }
      if (skip == 2) {
        put(ed, first ? "\"" : ",\"", first ? 1 : 2);
        first = 0;
        put(ed, k, (size_t)(ke - k));
        put(ed, ":", 1);
        if (copy_object(ed, v, ve, path, n, depth + 1))
          return SL_EPARSE;
      }
    }
    p = next_member(ve, e);
  }
  if (p >= e)
    return SL_EPARSE;
  if (run) {
    put(ed, first ? "" : ",", first ? 0 : 1);
    put(ed, run, (size_t)(runend - run));
    first = 0;
  }
  emit_new(ed, path, plen, &first);
  put(ed, "}", 1);
  return 0;
}

int
sl_filter_edit(const struct sl_filter *f, const char *ev, size_t len,
               struct sl_buf *out)
{
  struct edit ed;
  char path[PATH_MAX_LEN];
  size_t i, len0 = out->len;
  int rc;

  memset(&ed, 0, sizeof(ed));
  ed.f = f;
  ed.out = out;
  /* Renames first (their order is the ren[] order pass 1 fills). */
  for (i = 0; i < f->nren; i++) {
    ed.t[ed.nt].path = f->ren[i].to;
    ed.t[ed.nt].plen = strlen(f->ren[i].to);
    ed.nt++;
  }
  rc = f->nren ? find_sources(&ed, ev, ev + len, path, 0, 0) : 0;
  for (i = 0; rc == 0 && i < f->nadd; i++) {
    ed.t[ed.nt].path = f->add[i].path;
    ed.t[ed.nt].plen = strlen(f->add[i].path);
    ed.t[ed.nt].val = f->add[i].json;
    ed.t[ed.nt].vlen = strlen(f->add[i].json);
    ed.nt++;
  }
  if (rc == 0)
    rc = copy_object(&ed, ev, ev + len, path, 0, 0);
  if (rc == 0)
    rc = ed.err;
  if (rc)
    sl_buf_truncate(out, len0);
  return rc;
}
