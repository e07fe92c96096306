/* multiline.c - line aggregation: multiline patterns and presets, cri and
 * docker partial lines (see multiline.h for what comes out). */
#include "multiline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "re.h"
#include "sl_buf.h"
#include "sl_conf.h"
#include "sl_err.h"
#include "sl_json.h"

/* Filebeat's defaults: 500 lines, 10 MiB, 5 s. */
#define ML_MAX_LINES 500
#define ML_MAX_BYTES (10u << 20)
#define ML_TIMEOUT_MS 5000

enum ml_kind { ML_NONE, ML_PATTERN, ML_JAVA, ML_PYTHON, ML_GO, ML_RUBY };
enum ml_partial { PART_NONE, PART_CRI, PART_DOCKER };

struct sl_ml_conf {
  enum ml_kind kind;
  enum ml_partial partial;
  struct sl_rx rx;             /* ML_PATTERN */
  pcre2_match_data *md;        /* the feeding thread's (loop) */
  int negate, before;
  uint32_t max_lines;
  uint64_t max_bytes;
  uint64_t timeout_ms;
};

/* What a preset says about a line relative to the pending group. */
enum { NEW = 0, CONT = 1, BLANK = 2 };

struct grp {
  struct sl_buf b;             /* text so far */
  struct sl_buf sfx;           /* docker: the first record after "log" */
  uint64_t off;                /* first line's file offset */
  uint32_t nlines;
  unsigned flags;
  int on;
};

struct sl_ml {
  const struct sl_ml_conf *c;
  sl_ml_emit_cb emit;
  void *arg;
  struct grp g;                /* multiline group */
  struct grp part[2];          /* partial line per stream: stdout, stderr */
  int st;                      /* preset state (python, go) */
  uint32_t blanks;             /* blank lines held inside a group */
};

/* ---- configuration ----------------------------------------------------- */

static const struct {
  const char *name;
  enum ml_kind kind;
} presets[] = {
  { "java", ML_JAVA }, { "python", ML_PYTHON }, { "go", ML_GO },
  { "ruby", ML_RUBY },
};

#define NPRESETS (sizeof(presets) / sizeof(presets[0]))

static int
cerr(char *err, size_t errlen, const char *fmt, const char *a)
{
  if (err && errlen)
    snprintf(err, errlen, fmt, a);
  return SL_ECONFIG;
}

static int
preset_find(const char *s, enum ml_kind *k)
{
  size_t i;

  for (i = 0; i < NPRESETS; i++)
    if (strcmp(s, presets[i].name) == 0) {
      *k = presets[i].kind;
      return 1;
    }
  return 0;
}

/* Integer, or a size/duration string (SL_CT_ANY is not normalised). */
static int
get_num(const json_t *o, const char *key, int dur, int64_t *v, char *err,
        size_t errlen)
{
  json_t *j = json_object_get(o, key);
  int64_t x;

  if (j == NULL || json_is_null(j))
    return 0;
  if (json_is_integer(j)) {
    x = json_integer_value(j);
    if (dur)
      x *= 1000;  /* bare numbers are seconds, as in the schema */
  } else if (!json_is_string(j) ||
             (dur ? sl_conf_parse_duration_ms(json_string_value(j), &x)
                  : sl_conf_parse_size(json_string_value(j), &x))) {
    return cerr(err, errlen, dur ? "multiline.%s: not a duration"
                                 : "multiline.%s: not a size", key);
  }
  if (x <= 0)
    return cerr(err, errlen, "multiline.%s: must be positive", key);
  *v = x;
  return 0;
}

static int
read_multiline(struct sl_ml_conf *c, const json_t *ml, char *err,
               size_t errlen)
{
  static const char *const known[] = {
    "type", "preset", "pattern", "negate", "match", "max_lines",
    "max_bytes", "timeout",
  };
  const char *key, *s;
  json_t *v;
  int64_t n;
  size_t i;
  int rc;

  if (json_is_string(ml)) {
    if (!preset_find(json_string_value(ml), &c->kind))
      return cerr(err, errlen, "multiline: unknown preset '%s' (presets: "
                  "java, python, go, ruby; or a mapping with pattern)",
                  json_string_value(ml));
    return 0;
  }
  if (!json_is_object(ml))
    return cerr(err, errlen, "%s: must be a preset name or a mapping",
                "multiline");
  json_object_foreach((json_t *)ml, key, v) {
    for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
      if (strcmp(key, known[i]) == 0)
        break;
    if (i == sizeof(known) / sizeof(known[0]))
      return cerr(err, errlen, "multiline.%s: unknown key", key);
  }
  s = json_string_value(json_object_get(ml, "type"));
  if (s && strcmp(s, "pattern") != 0)
    return cerr(err, errlen, "multiline.type: '%s' is not supported "
                "(pattern)", s);
  s = json_string_value(json_object_get(ml, "preset"));
  v = json_object_get(ml, "pattern");
  if (s && v)
    return cerr(err, errlen, "multiline: %s", "preset and pattern exclude "
                "each other");
  if (s) {
    if (!preset_find(s, &c->kind))
      return cerr(err, errlen, "multiline.preset: unknown preset '%s'", s);
  } else {
    if (!json_is_string(v) || json_string_length(v) == 0)
      return cerr(err, errlen, "multiline.%s: required (a PCRE2 pattern) "
                  "unless a preset is given", "pattern");
    rc = sl_rx_compile(&c->rx, json_string_value(v), err, errlen);
    if (rc) {
      char m[200];
      snprintf(m, sizeof(m), "%s", err ? err : "");
      return cerr(err, errlen, "multiline.%s", m);
    }
    c->md = sl_rx_md_new();
    if (c->md == NULL)
      return SL_ENOMEM;
    c->kind = ML_PATTERN;
  }
  v = json_object_get(ml, "negate");
  if (v && !json_is_boolean(v) && !json_is_null(v))
    return cerr(err, errlen, "multiline.%s: must be true or false",
                "negate");
  c->negate = json_is_true(v);
  s = json_string_value(json_object_get(ml, "match"));
  if (json_object_get(ml, "match") && !s)
    return cerr(err, errlen, "multiline.%s: after or before", "match");
  if (s && strcmp(s, "after") != 0 && strcmp(s, "before") != 0)
    return cerr(err, errlen, "multiline.match: '%s': after or before", s);
  c->before = s && strcmp(s, "before") == 0;
  if (c->kind != ML_PATTERN && (c->before || c->negate))
    return cerr(err, errlen, "multiline: %s", "negate/match only go with "
                "pattern");
  n = c->max_lines;
  if ((rc = get_num(ml, "max_lines", 0, &n, err, errlen)))
    return rc;
  c->max_lines = n > 1000000 ? 1000000 : (uint32_t)n;
  n = (int64_t)c->max_bytes;
  if ((rc = get_num(ml, "max_bytes", 0, &n, err, errlen)))
    return rc;
  c->max_bytes = (uint64_t)n;
  n = (int64_t)c->timeout_ms;
  if ((rc = get_num(ml, "timeout", 1, &n, err, errlen)))
    return rc;
  c->timeout_ms = (uint64_t)n;
  return 0;
}

int
sl_ml_conf_new(const json_t *input, struct sl_ml_conf **out, char *err,
               size_t errlen)
{
  struct sl_ml_conf *c;
  json_t *ml = json_object_get(input, "multiline");
  const char *parser = json_string_value(json_object_get(input, "parser"));
  int rc;

  *out = NULL;
  if (ml && json_is_null(ml))
    ml = NULL;
  c = calloc(1, sizeof(*c));
  if (c == NULL)
    return SL_ENOMEM;
  c->max_lines = ML_MAX_LINES;
  c->max_bytes = ML_MAX_BYTES;
  c->timeout_ms = ML_TIMEOUT_MS;
  if (parser && strcmp(parser, "cri") == 0)
    c->partial = PART_CRI;
  else if (parser && strcmp(parser, "docker") == 0)
    c->partial = PART_DOCKER;
  if (ml) {
    rc = read_multiline(c, ml, err, errlen);
    if (rc) {
      sl_ml_conf_free(c);
      return rc;
    }
  }
  if (c->kind == ML_NONE && c->partial == PART_NONE) {
    sl_ml_conf_free(c);
    return SL_OK;
  }
  *out = c;
  return SL_OK;
}

void
sl_ml_conf_free(struct sl_ml_conf *c)
{
  if (c == NULL)
    return;
  sl_rx_free(&c->rx);
  if (c->md)
    pcre2_match_data_free(c->md);
  free(c);
}

uint64_t
sl_ml_conf_timeout_ms(const struct sl_ml_conf *c)
{
  return c->timeout_ms;
}

/* ---- presets ----------------------------------------------------------- */

static int
starts(const char *p, size_t n, const char *lit)
{
  size_t k = strlen(lit);

  return n >= k && memcmp(p, lit, k) == 0;
}

static int
is_blank(const char *p, size_t n)
{
  size_t i;

  for (i = 0; i < n; i++)
    if (p[i] != ' ' && p[i] != '\t')
      return 0;
  return 1;
}

static size_t
skip_ws(const char *p, size_t n)
{
  size_t i = 0;

  while (i < n && (p[i] == ' ' || p[i] == '\t'))
    i++;
  return i;
}

static int
is_ident(unsigned char ch)
{
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
         (ch >= '0' && ch <= '9') || ch == '_' || ch == '$';
}

/* A Java exception header: a qualified class name ending in Exception,
 * Error or Throwable, alone or followed by ": message". Such a line only
 * appears as the head of a stack trace (logger.error("msg", e) prints it
 * right after the message line). */
static int
java_header(const char *p, size_t n)
{
  size_t i = 0, seg = 0, dots = 0, e;

  while (i < n && (is_ident((unsigned char)p[i]) || p[i] == '.')) {
    if (p[i] == '.') {
      if (i == seg)
        return 0;
      dots++;
      seg = i + 1;
    }
    i++;
  }
  if (dots == 0 || i == seg)
    return 0;
  e = i;
  if (!((e - seg >= 9 && memcmp(p + e - 9, "Exception", 9) == 0) ||
        (e - seg >= 5 && memcmp(p + e - 5, "Error", 5) == 0) ||
        (e - seg >= 9 && memcmp(p + e - 9, "Throwable", 9) == 0)))
    return 0;
  return i == n || (i + 1 < n && p[i] == ':' && p[i + 1] == ' ') ||
         (i + 1 == n && p[i] == ':');
}

/* Java: frames ("\tat ..."), "\t... 12 more", and every other indented
 * line (a driver's "  Detail: ..." continuation, suppressed traces),
 * "Caused by:" and the exception header itself. */
static int
java_cont(const char *p, size_t n)
{
  size_t w = skip_ws(p, n);

  if (w > 0 && w < n)
    return CONT;
  if (starts(p, n, "Caused by:") || starts(p, n, "Suppressed:"))
    return CONT;
  return java_header(p, n) ? CONT : NEW;
}

/* Python: "Traceback (most recent call last):" continues the line before
 * it (logger.exception prints the message first), indented lines are the
 * frames, the first line back at column 0 is the exception ("KeyError:
 * 'x'") and ends the block -- unless a chained traceback follows after a
 * blank line and "During handling of the above exception..." / "The
 * above exception was the direct cause...". */
enum { PY_OUT, PY_FRAMES, PY_END };

static int
python_cont(struct sl_ml *m, const char *p, size_t n)
{
  if (starts(p, n, "Traceback (most recent call last):")) {
    m->st = PY_FRAMES;
    return CONT;
  }
  switch (m->st) {
  case PY_FRAMES:
    if (n > 0 && (p[0] == ' ' || p[0] == '\t'))
      return CONT;
    if (is_blank(p, n))
      return BLANK;
    m->st = PY_END;
    return CONT;
  case PY_END:
    if (is_blank(p, n))
      return BLANK;
    if (starts(p, n, "During handling of the above exception") ||
        starts(p, n, "The above exception was the direct cause"))
      return CONT;
    break;
  }
  m->st = PY_OUT;
  return NEW;
}

/* A Go stack frame's function line: "main.(*S).run(0xc0, 0x1)",
 * "runtime.gopark(...)", "main.main()": an identifier with a package
 * dot, no space before the '(' and a ')' at the end. */
static int
go_frame(const char *p, size_t n)
{
  const char *paren = memchr(p, '(', n);
  size_t i;
  int dot = 0;

  if (paren == NULL || n < 3 || p[n - 1] != ')' || !is_ident(
        (unsigned char)p[0]))
    return 0;
  for (i = 0; p + i < paren; i++) {
    if (p[i] == ' ' || p[i] == '\t')
      return 0;
    dot |= p[i] == '.';
  }
  return dot;
}

/* Go panics and goroutine dumps: "panic:" / "fatal error:" start one,
 * "goroutine N [...]:" continues (also after a log line that dumps the
 * stacks), then tab-indented file lines, function lines, "created by",
 * "[signal ...", blank lines between goroutines, and "exit status N". */
enum { GO_OUT, GO_DUMP };

static int
go_cont(struct sl_ml *m, const char *p, size_t n)
{
  if (starts(p, n, "panic: ") || starts(p, n, "fatal error: ")) {
    m->st = GO_DUMP;
    return NEW;
  }
  if (starts(p, n, "goroutine ") && n > 10 && p[10] >= '0' &&
      p[10] <= '9') {
    m->st = GO_DUMP;
    return CONT;
  }
  if (n > 0 && p[0] == '\t')
    return CONT;
  if (m->st == GO_DUMP) {
    if (is_blank(p, n))
      return BLANK;
    if (starts(p, n, "created by ") || starts(p, n, "[signal ") ||
        starts(p, n, "...additional frames elided...") ||
        starts(p, n, "exit status ") || starts(p, n, "[recovered]") ||
        go_frame(p, n))
      return CONT;
  }
  m->st = GO_OUT;
  return NEW;
}

/* Ruby: "\tfrom file:line:in `m'" lines of an uncaught exception,
 * indented "file:line:in" backtraces (Rails), and bare "file:line:in
 * `m'" lines (a backtrace joined with "\n" by a logger). A bare line with
 * more after the method is the head of an uncaught exception. */
static int
ruby_loc(const char *p, size_t n, int bare)
{
  const char *in = NULL, *q = p, *e = p + n;
  size_t i;

  /* "<file>:<line>:in `m'" -- the file may hold spaces ("actionpack
   * (7.1.2) lib/x.rb"), so look for ":<digits>:in " and check back. */
  while ((q = memmem(q, (size_t)(e - q), ":in ", 4)) != NULL) {
    i = (size_t)(q - p);
    while (i > 0 && p[i - 1] >= '0' && p[i - 1] <= '9')
      i--;
    if (i >= 2 && i < (size_t)(q - p) && p[i - 1] == ':') {
      in = q + 4;
      break;
    }
    q += 4;
  }
  if (in == NULL || in >= e || (*in != '`' && *in != '\''))
    return 0;
  if (!bare)
    return 1;
  /* The method name is quoted `m' or 'm' and nothing follows. */
  return e - in >= 3 && e[-1] == '\'' &&
         memchr(in + 1, '\'', (size_t)(e - in - 2)) == NULL;
}

static int
ruby_cont(const char *p, size_t n)
{
  size_t w = skip_ws(p, n);

  if (w > 0 && starts(p + w, n - w, "from "))
    return CONT;
  if (w > 0 && ruby_loc(p + w, n - w, 0))
    return CONT;
  return ruby_loc(p, n, 1) ? CONT : NEW;
}

/* ---- groups ------------------------------------------------------------ */

static void
grp_reset(struct grp *g)
{
  sl_buf_reset(&g->b);
  sl_buf_reset(&g->sfx);
  g->on = 0;
  g->nlines = 0;
  g->flags = 0;
}

/* Append with the group's byte limit: a cut keeps whole UTF-8
 * characters and marks the event truncated. */
static int
grp_put(struct sl_ml *m, struct grp *g, const char *p, size_t n)
{
  size_t room;

  if (g->b.len >= m->c->max_bytes) {
    if (n)
      g->flags |= SL_LINE_TRUNCATED;
    return 0;
  }
  room = (size_t)(m->c->max_bytes - g->b.len);
  if (n > room) {
    n = sl_utf8_valid_prefix(p, room);
    g->flags |= SL_LINE_TRUNCATED;
  }
  return sl_buf_append(&g->b, p, n);
}

static int
grp_start(struct sl_ml *m, struct grp *g, const char *p, size_t n,
          uint64_t off, unsigned flags)
{
  grp_reset(g);
  g->on = 1;
  g->off = off;
  g->nlines = 1;
  g->flags = flags & SL_LINE_TRUNCATED;
  return grp_put(m, g, p, n);
}

static int
grp_add_line(struct sl_ml *m, struct grp *g, const char *p, size_t n,
             unsigned flags)
{
  int rc;

  if (g->nlines >= m->c->max_lines) {
    g->flags |= SL_LINE_TRUNCATED;
    return 0;
  }
  g->nlines++;
  g->flags |= flags & SL_LINE_TRUNCATED;
  rc = grp_put(m, g, "\n", 1);
  if (rc == 0)
    rc = grp_put(m, g, p, n);
  return rc;
}

static int
grp_emit(struct sl_ml *m, struct grp *g)
{
  unsigned fl = g->flags;
  int rc;

  if (!g->on)
    return 0;
  if (g->nlines > 1)
    fl |= SL_LINE_MULTILINE;
  rc = m->emit(m->arg, g->b.p ? g->b.p : "", g->b.len, g->off, fl);
  grp_reset(g);
  m->blanks = 0;
  return rc;
}

/* ---- multiline --------------------------------------------------------- */

static int
ml_feed(struct sl_ml *m, const char *p, size_t n, uint64_t off,
        unsigned flags)
{
  const struct sl_ml_conf *c = m->c;
  struct grp *g = &m->g;
  int r, rc;

  switch (c->kind) {
  case ML_NONE:
    return m->emit(m->arg, p, n, off, flags);
  case ML_PATTERN:
    r = sl_rx_test(&c->rx, p, n, c->md) != c->negate;
    if (c->before) {
      /* Matching lines go with the next one that does not match. */
      rc = g->on ? grp_add_line(m, g, p, n, flags)
                 : grp_start(m, g, p, n, off, flags);
      if (rc == 0 && !r)
        rc = grp_emit(m, g);
      return rc;
    }
    if (r && g->on)
      return grp_add_line(m, g, p, n, flags);
    rc = grp_emit(m, g);
    return rc ? rc : grp_start(m, g, p, n, off, flags);
  case ML_JAVA:
    r = java_cont(p, n);
    break;
  case ML_PYTHON:
    r = python_cont(m, p, n);
    break;
  case ML_GO:
    r = go_cont(m, p, n);
    break;
  default:
    r = ruby_cont(p, n);
    break;
  }
  if (r == BLANK && g->on) {
    m->blanks++;
    return 0;
  }
  if (r == CONT && g->on) {
    for (; m->blanks > 0; m->blanks--)
      if ((rc = grp_add_line(m, g, "", 0, 0)) != 0)
        return rc;
    return grp_add_line(m, g, p, n, flags);
  }
  rc = grp_emit(m, g);
  if (rc)
    return rc;
  if (is_blank(p, n))
    return m->emit(m->arg, p, n, off, flags);  /* the stage skips it */
  return grp_start(m, g, p, n, off, flags);
}

/* ---- partial lines ----------------------------------------------------- */

static int
stream_index(const char *s, size_t n)
{
  return n == 6 && memcmp(s, "stderr", 6) == 0;
}

/* cri: "<time> <stream> <tag> <msg>"; tag P = partial, F = full. */
static int
cri_line(struct sl_ml *m, const char *p, size_t n, uint64_t off,
         unsigned flags)
{
  const char *s1, *s2, *s3;
  struct grp *g;
  int partial, rc;

  s1 = memchr(p, ' ', n);
  s2 = s1 ? memchr(s1 + 1, ' ', (size_t)(p + n - s1 - 1)) : NULL;
  s3 = s2 ? memchr(s2 + 1, ' ', (size_t)(p + n - s2 - 1)) : NULL;
  if (s3 == NULL)
    s3 = p + n;  /* "<ts> <stream> F" with an empty message */
  if (s2 == NULL || s3 == s2 + 1)
    return ml_feed(m, p, n, off, flags);  /* not cri: the parser says so */
  /* The tag is "P" (or "P:..." on newer runtimes); a line of an old
   * runtime without tag may well start its message with a P. */
  partial = s2[1] == 'P' && (s3 == s2 + 2 || s2[2] == ':');
  g = &m->part[stream_index(s1 + 1, (size_t)(s2 - s1 - 1))];
  if (!g->on) {
    if (!partial)
      return ml_feed(m, p, n, off, flags);
    /* Keep the first part's prefix, written as a full line. */
    grp_reset(g);
    g->on = 1;
    g->off = off;
    g->nlines = 1;
    g->flags = flags & SL_LINE_TRUNCATED;
    rc = sl_buf_append(&g->b, p, (size_t)(s2 - p) + 1);
    if (rc == 0)
      rc = sl_buf_append_byte(&g->b, 'F');
    if (rc == 0 && s3 < p + n)
      rc = grp_put(m, g, s3, (size_t)(p + n - s3));
    return rc;
  }
  g->flags |= flags & SL_LINE_TRUNCATED;
  rc = s3 < p + n ? grp_put(m, g, s3 + 1, (size_t)(p + n - s3 - 1)) : 0;
  if (rc || partial)
    return rc;
  rc = ml_feed(m, g->b.p, g->b.len, g->off, g->flags);
  grp_reset(g);
  return rc;
}

/* docker json-file: {"log":"...","stream":"stdout","time":"..."}; a log
 * value that does not end in "\n" is continued by the next record of
 * the same stream. The JSON string contents are concatenated as written
 * (escapes are self-contained, so the result is valid JSON). */
static int
docker_line(struct sl_ml *m, const char *p, size_t n, uint64_t off,
            unsigned flags)
{
  static const char head[] = "{\"log\":";
  size_t cs = sizeof(head) - 1, i, q, k;
  const char *st;
  struct grp *g;
  int partial, rc;

  if (!starts(p, n, head))
    return ml_feed(m, p, n, off, flags);
  while (cs < n && p[cs] == ' ')
    cs++;
  if (cs >= n || p[cs] != '"')
    return ml_feed(m, p, n, off, flags);
  cs++;  /* the first byte of the log value's contents */
  i = cs;
  while (i < n && p[i] != '"')
    i += p[i] == '\\' ? 2 : 1;
  if (i >= n)
    return ml_feed(m, p, n, off, flags);
  q = i;
  /* Ends in an escaped "\n": an odd run of backslashes before the n. */
  partial = 1;
  if (q >= cs + 2 && p[q - 1] == 'n') {
    for (k = q - 1; k > cs && p[k - 1] == '\\'; k--)
      ;
    partial = ((q - 1 - k) & 1) == 0;
  }
  st = memmem(p + q, n - q, "\"stderr\"", 8);
  g = &m->part[st != NULL];
  if (!g->on) {
    if (!partial)
      return ml_feed(m, p, n, off, flags);
    grp_reset(g);
    g->on = 1;
    g->off = off;
    g->nlines = 1;
    g->flags = flags & SL_LINE_TRUNCATED;
    rc = grp_put(m, g, p, q);
    if (rc == 0)
      rc = sl_buf_append(&g->sfx, p + q, n - q);
    return rc;
  }
  g->flags |= flags & SL_LINE_TRUNCATED;
  rc = grp_put(m, g, p + cs, q - cs);
  if (rc || partial)
    return rc;
  rc = sl_buf_append(&g->b, g->sfx.p, g->sfx.len);
  if (rc == 0)
    rc = ml_feed(m, g->b.p, g->b.len, g->off, g->flags);
  grp_reset(g);
  return rc;
}

/* ---- API --------------------------------------------------------------- */

int
sl_ml_new(const struct sl_ml_conf *c, sl_ml_emit_cb emit, void *arg,
          struct sl_ml **out)
{
  struct sl_ml *m = calloc(1, sizeof(*m));
  int i;

  if (m == NULL)
    return SL_ENOMEM;
  m->c = c;
  m->emit = emit;
  m->arg = arg;
  /* Limits are enforced by grp_put; the sl_buf max is a backstop for the
   * docker suffix and the prefix bytes (both bounded by a line). */
  sl_buf_init(&m->g.b, 0);
  sl_buf_init(&m->g.sfx, 0);
  for (i = 0; i < 2; i++) {
    sl_buf_init(&m->part[i].b, 0);
    sl_buf_init(&m->part[i].sfx, 0);
  }
  *out = m;
  return SL_OK;
}

void
sl_ml_free(struct sl_ml *m)
{
  int i;

  if (m == NULL)
    return;
  sl_buf_free(&m->g.b);
  sl_buf_free(&m->g.sfx);
  for (i = 0; i < 2; i++) {
    sl_buf_free(&m->part[i].b);
    sl_buf_free(&m->part[i].sfx);
  }
  free(m);
}

int
sl_ml_line(struct sl_ml *m, const char *p, size_t n, uint64_t off,
           unsigned flags)
{
  switch (m->c->partial) {
  case PART_CRI:
    return cri_line(m, p, n, off, flags);
  case PART_DOCKER:
    return docker_line(m, p, n, off, flags);
  default:
    return ml_feed(m, p, n, off, flags);
  }
}

int
sl_ml_flush(struct sl_ml *m)
{
  int i, rc = 0;

  /* Partial lines first (oldest offset first), through the multiline
   * stage like any completed line; then the multiline group. */
  for (i = 0; i < 2 && rc == 0; i++) {
    struct grp *g = &m->part[i];
    if (!g->on)
      continue;
    if (m->c->partial == PART_DOCKER)
      rc = sl_buf_append(&g->b, g->sfx.p, g->sfx.len);
    if (rc == 0)
      rc = ml_feed(m, g->b.p, g->b.len, g->off, g->flags);
    grp_reset(g);
  }
  if (rc == 0)
    rc = grp_emit(m, &m->g);
  m->st = 0;
  return rc;
}

void
sl_ml_discard(struct sl_ml *m)
{
  grp_reset(&m->g);
  grp_reset(&m->part[0]);
  grp_reset(&m->part[1]);
  m->blanks = 0;
  m->st = 0;
}

uint64_t
sl_ml_pending_offset(const struct sl_ml *m)
{
  uint64_t o = UINT64_MAX;
  int i;

  if (m->g.on)
    o = m->g.off;
  for (i = 0; i < 2; i++)
    if (m->part[i].on && m->part[i].off < o)
      o = m->part[i].off;
  return o;
}
