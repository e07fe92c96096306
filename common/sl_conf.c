#include "sl_conf.h"
#include "sl_buf.h"
#include "sl_err.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

/* A config larger than this is a mistake (or an attack on the parser). */
#define CONF_MAX_FILE (16u << 20)
/* YAML aliases can expand a small file into a huge tree ("billion laughs")
 * and an alias inside its own anchor recurses forever; cap both. */
#define CONF_MAX_NODES 200000
#define CONF_MAX_DEPTH 64
/* One expanded scalar may not exceed this. */
#define CONF_MAX_SCALAR (1u << 20)

/* Side table: where each node of the tree came from. Keyed by the json_t
 * pointer; nodes replaced during normalisation are kept alive in `grave`
 * until sl_conf_free so that no address is reused while the table lives.
 * jansson's true/false/null are shared singletons and are never entered. */
struct node_info {
  const json_t *node;
  int line;      /* 1-based line of the value, 0 = default */
  int keyline;   /* line of the mapping key naming it (= line otherwise) */
  int plain;     /* 1 for an unquoted YAML scalar (may be typed) */
};

/* Every error found in a config, so that --check reports them all. Kept
 * behind a pointer: checks that run on a loaded (const) config add to it,
 * and the list is not part of the config's value. */
struct conf_err {
  int line;               /* for the file-order sort; 0: none (last) */
  size_t seq;             /* order of discovery, ties keep it */
  char *text;             /* "file:line: key.path: reason" */
};

struct conf_errs {
  struct conf_err *v;     /* at most SL_CONF_MAX_ERRORS */
  size_t n, more;         /* kept, and found beyond the cap */
  json_t *failed;         /* key paths whose value the loader removed */
};

struct sl_conf {
  char *file;
  json_t *root;
  struct node_info *tab;  /* open addressing, cap is a power of two */
  size_t tab_cap, tab_len;
  json_t *grave;          /* array of replaced nodes */
  struct conf_errs *errs;
};

struct ctx {
  struct sl_conf *c;
  char *err;              /* gets the first error */
  size_t errlen;
  size_t nerr;            /* errors found by this load */
  int fatal;              /* the node caps were hit: stop converting */
  yaml_document_t *doc;
  size_t nodes;
  int defaults;           /* building a default value: lines are 0 */
  struct sl_buf path;     /* key path of the node being worked on */
};

/* ---- side table ---- */

static size_t
ptr_hash(const void *p)
{
  uint64_t x = (uint64_t)(uintptr_t)p;

  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return (size_t)x;
}

static int
is_singleton(const json_t *j)
{
  return json_is_true(j) || json_is_false(j) || json_is_null(j);
}

static struct node_info *
info_find(const struct sl_conf *c, const json_t *j)
{
  size_t i, mask;

  if (c->tab_cap == 0 || j == NULL)
    return NULL;
  mask = c->tab_cap - 1;
  for (i = ptr_hash(j) & mask; c->tab[i].node != NULL; i = (i + 1) & mask)
    if (c->tab[i].node == j)
      return &c->tab[i];
  return NULL;
}

static int
info_set(struct sl_conf *c, const json_t *j, int line, int keyline, int plain)
{
  struct node_info *slot, *old;
  size_t i, mask, ocap;

  if (is_singleton(j))
    return 0;
  slot = info_find(c, j);
  if (slot == NULL) {
    if ((c->tab_len + 1) * 2 > c->tab_cap) {
      old = c->tab;
      ocap = c->tab_cap;
      c->tab_cap = ocap ? ocap * 2 : 256;
      c->tab = calloc(c->tab_cap, sizeof(*c->tab));
      if (c->tab == NULL) {
        c->tab = old;
        c->tab_cap = ocap;
        return SL_ENOMEM;
      }
      c->tab_len = 0;
      for (i = 0; i < ocap; i++)
        if (old[i].node)
          info_set(c, old[i].node, old[i].line, old[i].keyline,
                   old[i].plain);
      free(old);
    }
    mask = c->tab_cap - 1;
    for (i = ptr_hash(j) & mask; c->tab[i].node != NULL; i = (i + 1) & mask)
      ;
    slot = &c->tab[i];
    slot->node = j;
    c->tab_len++;
  }
  slot->line = line;
  slot->keyline = keyline;
  slot->plain = plain;
  return 0;
}

static int
line_of(const struct sl_conf *c, const json_t *j)
{
  const struct node_info *ni = info_find(c, j);
  return ni ? ni->line : 0;
}

static int
keyline_of(const struct sl_conf *c, const json_t *j)
{
  const struct node_info *ni = info_find(c, j);
  return ni ? ni->keyline : 0;
}

static int
is_plain(const struct sl_conf *c, const json_t *j)
{
  const struct node_info *ni = info_find(c, j);
  return ni ? ni->plain : 0;
}

/* ---- errors ---- */

static void
verrf(const char *file, int line, const char *path, char *err,
      size_t errlen, const char *fmt, va_list ap)
{
  int n;

  if (err == NULL || errlen == 0)
    return;
  if (line > 0)
    n = snprintf(err, errlen, "%s:%d: %s: ", file, line,
                 path && *path ? path : "(root)");
  else
    n = snprintf(err, errlen, "%s: %s: ", file,
                 path && *path ? path : "(root)");
  if (n >= 0 && (size_t)n < errlen)
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
  /* One line, always: a reason quoting a value must not break it. */
  for (char *p = err; *p; p++)
    if (*p == '\n' || *p == '\r')
      *p = ' ';
}

static int
cerr(struct ctx *x, int line, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 3, 4)))
#endif
  ;

/* Add one formatted error to c's list (identical lines once). Memory
 * failures lose the line, never the fact that the config is bad: the
 * caller's return code says that. */
static void
errs_add(const struct sl_conf *c, int line, const char *text)
{
  struct conf_errs *e = c ? c->errs : NULL;
  struct conf_err *nv;
  size_t i;

  if (e == NULL)
    return;
  for (i = 0; i < e->n; i++)
    if (strcmp(e->v[i].text, text) == 0)
      return;
  if (e->n == SL_CONF_MAX_ERRORS) {
    e->more++;
    return;
  }
  if (e->v == NULL) {
    nv = calloc(SL_CONF_MAX_ERRORS, sizeof(*nv));
    if (nv == NULL)
      return;
    e->v = nv;
  }
  e->v[e->n].text = strdup(text);
  if (e->v[e->n].text == NULL)
    return;
  e->v[e->n].line = line;
  e->v[e->n].seq = e->n;
  e->n++;
}

static void
errs_free(struct conf_errs *e)
{
  size_t i;

  if (e == NULL)
    return;
  for (i = 0; i < e->n; i++)
    free(e->v[i].text);
  free(e->v);
  json_decref(e->failed);
  free(e);
}

/* The loader's errors: all go to the list, the first also to x->err (the
 * one-line contract of sl_conf_load). */
static int
cerr(struct ctx *x, int line, const char *fmt, ...)
{
  char buf[1024];
  va_list ap;

  va_start(ap, fmt);
  verrf(x->c->file, line, x->path.p, buf, sizeof(buf), fmt, ap);
  va_end(ap);
  errs_add(x->c, line, buf);
  if (x->nerr++ == 0 && x->err && x->errlen)
    snprintf(x->err, x->errlen, "%s", buf);
  return SL_ECONFIG;
}

/* The value at the current path was refused and removed: checks that run
 * later must not report its absence again (sl_conf_failed). */
static void
mark_failed(struct ctx *x)
{
  struct conf_errs *e = x->c->errs;

  if (e->failed == NULL)
    e->failed = json_object();
  if (e->failed && x->path.p)
    json_object_set_new(e->failed, x->path.p, json_true());
}

static int
path_failed(const struct sl_conf *c, const char *path)
{
  const struct conf_errs *e = c ? c->errs : NULL;
  const char *k;
  json_t *v;
  size_t n;

  if (e == NULL || e->failed == NULL || path == NULL)
    return 0;
  /* The path itself or anything below it ("inputs" covers
   * "inputs[0].paths" and "inputs.max_line_bytes"). */
  json_object_foreach(e->failed, k, v) {
    n = strlen(k);
    if (strncmp(path, k, n) == 0 &&
        (path[n] == '\0' || path[n] == '.' || path[n] == '['))
      return 1;
  }
  return 0;
}

void
sl_conf_errorf(const struct sl_conf *c, const json_t *node,
               const char *keypath, char *err, size_t errlen,
               const char *fmt, ...)
{
  va_list ap;

  va_start(ap, fmt);
  verrf(c ? c->file : "(config)", c ? line_of(c, node) : 0, keypath, err,
        errlen, fmt, ap);
  va_end(ap);
}

/* ---- key paths ---- */

static size_t
path_push_key(struct ctx *x, const char *key)
{
  size_t mark = x->path.len;

  if (x->path.len > 0 && sl_buf_append_byte(&x->path, '.') != 0)
    return mark;
  if (sl_buf_append_str(&x->path, key) != 0)
    x->path.len = mark;
  return mark;
}

static size_t
path_push_index(struct ctx *x, size_t i)
{
  size_t mark = x->path.len;

  if (sl_buf_printf(&x->path, "[%zu]", i) != 0)
    x->path.len = mark;
  return mark;
}

static void
path_pop(struct ctx *x, size_t mark)
{
  sl_buf_truncate(&x->path, mark);
}

/* ---- ${VAR} expansion ---- */

static int
var_start(char c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int
var_char(char c)
{
  return var_start(c) || (c >= '0' && c <= '9');
}

/* Expand s[0..n) into out. */
static int
expand_env(struct ctx *x, int line, const char *s, size_t n,
           struct sl_buf *out)
{
  size_t i = 0, j, name_end;
  const char *val, *def;
  char name[256];
  int rc = 0;

  while (i < n && rc == 0) {
    if (s[i] == '$' && i + 2 < n && s[i + 1] == '$' && s[i + 2] == '{') {
      rc = sl_buf_append(out, "${", 2);   /* "$${" is a literal "${" */
      i += 3;
      continue;
    }
    if (!(s[i] == '$' && i + 1 < n && s[i + 1] == '{')) {
      rc = sl_buf_append_byte(out, s[i++]);
      continue;
    }
    j = i + 2;
    if (j >= n || !var_start(s[j]))
      return cerr(x, line, "bad variable reference (want ${NAME} or "
                  "${NAME:-default})");
    while (j < n && var_char(s[j]))
      j++;
    name_end = j;
    if (name_end - (i + 2) >= sizeof(name))
      return cerr(x, line, "variable name too long");
    memcpy(name, s + i + 2, name_end - (i + 2));
    name[name_end - (i + 2)] = '\0';
    def = NULL;
    if (j + 1 < n && s[j] == ':' && s[j + 1] == '-') {
      def = s + j + 2;
      j += 2;
      while (j < n && s[j] != '}')
        j++;
    }
    if (j >= n || s[j] != '}')
      return cerr(x, line, "unterminated ${%s", name);
    val = getenv(name);
    /* Shell semantics: ":-" also replaces a set but empty variable. */
    if (def != NULL && (val == NULL || *val == '\0'))
      rc = sl_buf_append(out, def, (size_t)(s + j - def));
    else if (val == NULL)
      return cerr(x, line, "environment variable %s is not set", name);
    else
      rc = sl_buf_append_str(out, val);
    i = j + 1;
  }
  if (rc == SL_E2BIG)
    return cerr(x, line, "value longer than %u bytes after expansion",
                CONF_MAX_SCALAR);
  return rc;
}

/* ---- YAML document -> raw tree (all scalars strings) ---- */

static int convert(struct ctx *x, yaml_node_t *node, int keyline, int depth,
                   json_t **out);

static int
node_line(struct ctx *x, yaml_node_t *node)
{
  return x->defaults ? 0 : (int)node->start_mark.line + 1;
}

static int
convert_scalar(struct ctx *x, yaml_node_t *node, int keyline, json_t **out)
{
  struct sl_buf b;
  int line = node_line(x, node), plain, rc;
  json_t *j;

  sl_buf_init(&b, CONF_MAX_SCALAR);
  rc = expand_env(x, line, (const char *)node->data.scalar.value,
                  node->data.scalar.length, &b);
  if (rc != 0)
    goto out;
  j = json_stringn(b.p ? b.p : "", b.len);
  if (j == NULL) {
    /* jansson refuses invalid UTF-8; libyaml already validated the text,
     * so only an expanded variable can carry it. */
    rc = cerr(x, line, "value is not valid UTF-8");
    goto out;
  }
  /* The document API gives every untagged scalar the default !!str tag,
   * so only the style tells quoted from plain (explicit tags are not
   * honoured). */
  plain = node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
  rc = info_set(x->c, j, line, keyline, plain);
  if (rc != 0) {
    json_decref(j);
    goto out;
  }
  *out = j;
out:
  sl_buf_free(&b);
  return rc;
}

static int
convert_seq(struct ctx *x, yaml_node_t *node, int keyline, int depth,
            json_t **out)
{
  json_t *arr = json_array(), *item;
  yaml_node_item_t *it;
  size_t idx = 0, mark;
  int rc = 0;

  if (arr == NULL)
    return SL_ENOMEM;
  for (it = node->data.sequence.items.start;
       it < node->data.sequence.items.top; it++, idx++) {
    yaml_node_t *child = yaml_document_get_node(x->doc, *it);
    mark = path_push_index(x, idx);
    rc = convert(x, child, node_line(x, child), depth + 1, &item);
    if (rc == 0 && json_array_append_new(arr, item) != 0)
      rc = SL_ENOMEM;
    if (rc == SL_ECONFIG && !x->fatal) {
      /* Reported; the list goes on without the item, and the load fails
       * at the end with every error found. */
      mark_failed(x);
      rc = 0;
    }
    if (rc != 0)
      break;
    path_pop(x, mark);
  }
  if (rc == 0)
    rc = info_set(x->c, arr, node_line(x, node), keyline, 0);
  if (rc != 0) {
    json_decref(arr);
    return rc;
  }
  *out = arr;
  return 0;
}

static int
convert_map(struct ctx *x, yaml_node_t *node, int keyline, int depth,
            json_t **out)
{
  json_t *obj = json_object(), *val;
  yaml_node_pair_t *pr;
  size_t mark;
  char *key;
  int rc = 0, dup;

  if (obj == NULL)
    return SL_ENOMEM;
  for (pr = node->data.mapping.pairs.start;
       pr < node->data.mapping.pairs.top; pr++) {
    yaml_node_t *k = yaml_document_get_node(x->doc, pr->key);
    yaml_node_t *v = yaml_document_get_node(x->doc, pr->value);
    if (k->type != YAML_SCALAR_NODE) {
      cerr(x, node_line(x, k), "mapping keys must be plain strings");
      continue;
    }
    key = strndup((const char *)k->data.scalar.value, k->data.scalar.length);
    if (key == NULL) {
      rc = SL_ENOMEM;
      break;
    }
    mark = path_push_key(x, key);
    dup = json_object_get(obj, key) != NULL;
    if (strlen(key) != k->data.scalar.length) {
      rc = cerr(x, node_line(x, k), "key contains a NUL byte");
    } else if (dup) {
      rc = cerr(x, node_line(x, k), "duplicate key");
    } else {
      rc = convert(x, v, node_line(x, k), depth + 1, &val);
      if (rc == 0 && json_object_set_new(obj, key, val) != 0)
        rc = cerr(x, node_line(x, k), "key is not valid UTF-8");
    }
    free(key);
    if (rc == SL_ECONFIG && !x->fatal) {
      /* As in convert_seq: skip the pair, keep looking. A duplicate
       * leaves the first value in place, which later checks may judge. */
      if (!dup)
        mark_failed(x);
      rc = 0;
    }
    if (rc != 0)
      break;
    path_pop(x, mark);
  }
  if (rc == 0)
    rc = info_set(x->c, obj, node_line(x, node), keyline, 0);
  if (rc != 0) {
    json_decref(obj);
    return rc;
  }
  *out = obj;
  return 0;
}

static int
convert(struct ctx *x, yaml_node_t *node, int keyline, int depth,
        json_t **out)
{
  if (node == NULL)
    return cerr(x, 0, "internal: missing YAML node");
  /* Past the caps nothing else is looked at: an alias bomb would
   * otherwise report its millions of copies. */
  if (depth > CONF_MAX_DEPTH) {
    x->fatal = 1;
    return cerr(x, node_line(x, node), "nesting deeper than %d levels "
                "(recursive alias?)", CONF_MAX_DEPTH);
  }
  if (++x->nodes > CONF_MAX_NODES) {
    x->fatal = 1;
    return cerr(x, node_line(x, node), "more than %d nodes (alias "
                "expansion?)", CONF_MAX_NODES);
  }
  switch (node->type) {
  case YAML_SCALAR_NODE:
    return convert_scalar(x, node, keyline, out);
  case YAML_SEQUENCE_NODE:
    return convert_seq(x, node, keyline, depth, out);
  case YAML_MAPPING_NODE:
    return convert_map(x, node, keyline, depth, out);
  default:
    return cerr(x, node_line(x, node), "unsupported YAML node");
  }
}

/* Syntax errors have no key path; "yaml" stands in its place:
 *   agent.yml:4: yaml: did not find expected key (block mapping at line 1) */
static int
yaml_error(struct ctx *x, yaml_parser_t *p)
{
  const char *prob = p->problem ? p->problem : "syntax error";
  size_t mark = x->path.len;
  int rc;

  path_pop(x, 0);
  if (sl_buf_append_str(&x->path, "yaml") != 0)
    return SL_ECONFIG;
  /* Reader errors (bad UTF-8) have no line, only a byte offset. */
  if (p->error == YAML_READER_ERROR)
    rc = cerr(x, 0, "%s at byte %zu", prob, p->problem_offset);
  else if (p->context)
    rc = cerr(x, (int)p->problem_mark.line + 1, "%s (%s at line %d)", prob,
              p->context + (strncmp(p->context, "while ", 6) ? 0 : 6),
              (int)p->context_mark.line + 1);
  else
    rc = cerr(x, (int)p->problem_mark.line + 1, "%s", prob);
  path_pop(x, mark);
  return rc;
}

/* Parse text into a raw tree. An empty document gives an empty mapping. */
static int
parse_yaml(struct ctx *x, const char *text, size_t len, json_t **out)
{
  yaml_parser_t parser;
  yaml_document_t doc, extra;
  yaml_node_t *root;
  int rc;

  if (!yaml_parser_initialize(&parser))
    return SL_ENOMEM;
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  if (!yaml_parser_load(&parser, &doc)) {
    rc = yaml_error(x, &parser);
    yaml_parser_delete(&parser);
    return rc;
  }
  x->doc = &doc;
  root = yaml_document_get_root_node(&doc);
  if (root == NULL) {
    *out = json_object();
    rc = *out ? info_set(x->c, *out, 0, 0, 0) : SL_ENOMEM;
  } else {
    rc = convert(x, root, node_line(x, root), 0, out);
  }
  yaml_document_delete(&doc);
  x->doc = NULL;
  if (rc == 0) {
    /* A second document would be silently ignored; refuse it. */
    if (!yaml_parser_load(&parser, &extra)) {
      rc = yaml_error(x, &parser);
    } else {
      root = yaml_document_get_root_node(&extra);
      if (root != NULL)
        rc = cerr(x, (int)root->start_mark.line + 1,
                  "more than one YAML document");
      yaml_document_delete(&extra);
    }
    if (rc != 0) {
      json_decref(*out);
      *out = NULL;
    }
  }
  yaml_parser_delete(&parser);
  return rc;
}

/* ---- scalar typing ---- */

/* "12", "1.5", ".5": plain decimal only (strtod would also take hex,
 * exponents, "inf" and leading blanks). Returns the end or NULL. */
static const char *
parse_decimal(const char *p, double *v)
{
  double r = 0, scale = 0.1;
  int nd = 0;

  while (*p >= '0' && *p <= '9') {
    r = r * 10 + (*p++ - '0');
    nd++;
  }
  if (*p == '.') {
    p++;
    while (*p >= '0' && *p <= '9') {
      r += (*p++ - '0') * scale;
      scale /= 10;
      nd++;
    }
  }
  if (nd == 0)
    return NULL;
  *v = r;
  return p;
}

int
sl_conf_parse_duration_ms(const char *s, int64_t *ms)
{
  static const struct {
    const char *u;
    double ms;
  } units[] = {
    { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
    { "d", 86400000 }, { "", 1000 },
  };
  double total = 0, v = 0;
  size_t i, ul;
  const char *p = s;
  int parts = 0;

  if (s == NULL)
    return SL_EPARSE;
  /* One or more "<number><unit>" parts, as in "1h30m" or "250ms". */
  while (*p) {
    p = parse_decimal(p, &v);
    if (p == NULL)
      return SL_EPARSE;
    for (ul = 0; p[ul] >= 'a' && p[ul] <= 'z'; ul++)
      ;
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
      if (strlen(units[i].u) == ul && strncmp(p, units[i].u, ul) == 0)
        break;
    if (i == sizeof(units) / sizeof(units[0]))
      return SL_EPARSE;
    /* A bare number is seconds, and only on its own. */
    if (ul == 0 && (parts > 0 || p[0] != '\0'))
      return SL_EPARSE;
    total += v * units[i].ms;
    p += ul;
    parts++;
  }
  if (parts == 0 || total >= 9.2e18)
    return SL_EPARSE;
  *ms = (int64_t)llround(total);
  return 0;
}

int
sl_conf_parse_size(const char *s, int64_t *bytes)
{
  static const struct {
    const char *u;
    double mul;
  } units[] = {
    { "", 1 }, { "B", 1 }, { "b", 1 },
    { "k", 1024.0 }, { "K", 1024.0 }, { "KiB", 1024.0 }, { "kiB", 1024.0 },
    { "m", 1048576.0 }, { "M", 1048576.0 }, { "MiB", 1048576.0 },
    { "g", 1073741824.0 }, { "G", 1073741824.0 }, { "GiB", 1073741824.0 },
    { "t", 1099511627776.0 }, { "T", 1099511627776.0 },
    { "TiB", 1099511627776.0 },
    { "KB", 1e3 }, { "kB", 1e3 }, { "kb", 1e3 }, { "MB", 1e6 },
    { "mb", 1e6 }, { "GB", 1e9 }, { "gb", 1e9 }, { "TB", 1e12 },
    { "tb", 1e12 },
  };
  const char *p, *end;
  double v = 0;
  size_t i;

  if (s == NULL || (end = parse_decimal(s, &v)) == NULL)
    return SL_EPARSE;
  p = end;
  if (*p == ' ')
    p++;
  for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
    if (strcmp(p, units[i].u) == 0)
      break;
  if (i == sizeof(units) / sizeof(units[0]) || (p != end && *p == '\0'))
    return SL_EPARSE;
  v *= units[i].mul;
  if (v >= 9.2e18)
    return SL_EPARSE;
  *bytes = (int64_t)v;
  return 0;
}

static int
parse_int(const char *s, int64_t *v)
{
  char *end;
  long long r;

  if (*s == '\0' || *s == ' ' || *s == '\t')
    return SL_EPARSE;
  errno = 0;
  r = strtoll(s, &end, 10);
  if (*end != '\0' || errno != 0)
    return SL_EPARSE;
  *v = r;
  return 0;
}

static int
parse_float(const char *s, double *v)
{
  char *end;
  double r;

  if (*s == '\0' || *s == ' ' || *s == '\t')
    return SL_EPARSE;
  errno = 0;
  r = strtod(s, &end);
  if (*end != '\0' || errno != 0 || !isfinite(r) || strpbrk(s, "xX"))
    return SL_EPARSE;
  *v = r;
  return 0;
}

static int
parse_bool(const char *s, int *v)
{
  static const char *const t[] = { "true", "yes", "on" };
  static const char *const f[] = { "false", "no", "off" };
  size_t i;

  for (i = 0; i < 3; i++) {
    if (strcasecmp(s, t[i]) == 0) {
      *v = 1;
      return 0;
    }
    if (strcasecmp(s, f[i]) == 0) {
      *v = 0;
      return 0;
    }
  }
  return SL_EPARSE;
}

static int
is_null_scalar(const struct sl_conf *c, const json_t *j)
{
  const char *s;

  if (json_is_null(j))
    return 1;
  if (!json_is_string(j) || !is_plain(c, j))
    return 0;
  s = json_string_value(j);
  return *s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
         strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

/* YAML 1.2 core schema typing of a plain scalar (for ANY and MAP). */
static json_t *
core_type(const struct sl_conf *c, json_t *j)
{
  const char *s = json_string_value(j);
  int64_t i;
  double d;
  int b;

  if (is_null_scalar(c, j))
    return json_null();
  if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 ||
      strcmp(s, "TRUE") == 0 || strcmp(s, "false") == 0 ||
      strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0) {
    parse_bool(s, &b);
    return json_boolean(b);
  }
  if ((s[0] >= '0' && s[0] <= '9') ||
      ((s[0] == '-' || s[0] == '+') && s[1] >= '0' && s[1] <= '9')) {
    if (parse_int(s, &i) == 0)
      return json_integer(i);
    if (parse_float(s, &d) == 0 && strpbrk(s, "xXpP") == NULL)
      return json_real(d);
  }
  return NULL;  /* stays a string */
}

static const char *
type_name(enum sl_conf_type t)
{
  switch (t) {
  case SL_CT_STR: return "string";
  case SL_CT_INT: return "integer";
  case SL_CT_FLOAT: return "number";
  case SL_CT_BOOL: return "bool";
  case SL_CT_DURATION: return "duration";
  case SL_CT_SIZE: return "size";
  case SL_CT_ENUM: return "enum";
  case SL_CT_STR_LIST: return "list of strings";
  case SL_CT_OBJ: return "mapping";
  case SL_CT_OBJ_LIST: return "list of mappings";
  case SL_CT_MAP: return "mapping of scalars";
  case SL_CT_ANY: return "any";
  }
  return "?";
}

static const char *
kind_of(const json_t *j)
{
  if (json_is_object(j))
    return "a mapping";
  if (json_is_array(j))
    return "a list";
  return "a scalar";
}

/* Swap `old` for `nw` under obj[key] (or arr[idx]), carrying its lines and
 * keeping `old` alive (see struct sl_conf). Steals nw. */
static int
replace_node(struct ctx *x, json_t *parent, const char *key, size_t idx,
             json_t *old, json_t *nw)
{
  struct node_info *ni = info_find(x->c, old);
  int line = ni ? ni->line : 0, kl = ni ? ni->keyline : 0;

  if (nw == NULL)
    return SL_ENOMEM;
  if (json_array_append(x->c->grave, old) != 0 ||
      info_set(x->c, nw, line, kl, 0) != 0) {
    json_decref(nw);
    return SL_ENOMEM;
  }
  if (key ? json_object_set_new(parent, key, nw)
          : json_array_set_new(parent, idx, nw))
    return SL_ENOMEM;
  return 0;
}

static int validate_obj(struct ctx *x, json_t *obj,
                        const struct sl_conf_key *schema);

/* Type the plain/quoted strings of an ANY subtree in place. */
static int
type_any(struct ctx *x, json_t *parent, const char *key, size_t idx,
         json_t *v)
{
  const char *k;
  json_t *child, *t;
  size_t i;
  int rc = 0;

  if (json_is_object(v)) {
    json_object_foreach(v, k, child) {
      rc = type_any(x, v, k, 0, child);
      if (rc)
        return rc;
    }
  } else if (json_is_array(v)) {
    json_array_foreach(v, i, child) {
      rc = type_any(x, v, NULL, i, child);
      if (rc)
        return rc;
    }
  } else if (json_is_string(v) && is_plain(x->c, v)) {
    t = core_type(x->c, v);
    if (t != NULL)
      rc = replace_node(x, parent, key, idx, v, t);
  }
  return rc;
}

static int
enum_ok(const char *choices, const char *s)
{
  size_t n = strlen(s);
  const char *p = choices, *bar;

  while (p && *p) {
    bar = strchr(p, '|');
    if ((size_t)((bar ? bar : p + strlen(p)) - p) == n &&
        strncmp(p, s, n) == 0)
      return 1;
    p = bar ? bar + 1 : NULL;
  }
  return 0;
}

/* Validate and normalise v (held as parent[key] or parent[idx]).
 * SL_ECONFIG: v itself is wrong (reported; the caller removes it). Errors
 * inside a mapping are reported and leave the mapping in place, so 0
 * does not mean the load succeeded: ctx.nerr tells. */
static int
normalise(struct ctx *x, const struct sl_conf_key *k, json_t *parent,
          const char *key, size_t idx, json_t *v)
{
  int line = line_of(x->c, v), b = 0, rc = 0;
  const char *s = json_is_string(v) ? json_string_value(v) : NULL;
  json_t *item, *nw;
  int64_t i64;
  double d;
  size_t i, mark;

  switch (k->type) {
  case SL_CT_STR:
    if (s == NULL)
      return cerr(x, line, "expected a string, got %s", kind_of(v));
    return 0;
  case SL_CT_INT:
    if (s == NULL || parse_int(s, &i64) != 0)
      return s ? cerr(x, line, "expected an integer, got \"%s\"", s)
               : cerr(x, line, "expected an integer, got %s", kind_of(v));
    return replace_node(x, parent, key, idx, v, json_integer(i64));
  case SL_CT_FLOAT:
    if (s == NULL || parse_float(s, &d) != 0)
      return s ? cerr(x, line, "expected a number, got \"%s\"", s)
               : cerr(x, line, "expected a number, got %s", kind_of(v));
    return replace_node(x, parent, key, idx, v, json_real(d));
  case SL_CT_BOOL:
    if (s == NULL || parse_bool(s, &b) != 0)
      return s ? cerr(x, line, "expected true or false, got \"%s\"", s)
               : cerr(x, line, "expected true or false, got %s", kind_of(v));
    return replace_node(x, parent, key, idx, v, json_boolean(b));
  case SL_CT_DURATION:
    if (s == NULL || sl_conf_parse_duration_ms(s, &i64) != 0)
      return s ? cerr(x, line, "expected a duration like 250ms, 10s, 5m, "
                      "2h, 7d, got \"%s\"", s)
               : cerr(x, line, "expected a duration, got %s", kind_of(v));
    return replace_node(x, parent, key, idx, v, json_integer(i64));
  case SL_CT_SIZE:
    if (s == NULL || sl_conf_parse_size(s, &i64) != 0)
      return s ? cerr(x, line, "expected a size like 4096, 64KiB, 10MB, "
                      "1GiB, got \"%s\"", s)
               : cerr(x, line, "expected a size, got %s", kind_of(v));
    return replace_node(x, parent, key, idx, v, json_integer(i64));
  case SL_CT_ENUM:
    if (s == NULL)
      return cerr(x, line, "expected one of %s, got %s",
                  k->choices ? k->choices : "", kind_of(v));
    if (!enum_ok(k->choices, s))
      return cerr(x, line, "\"%s\" is not one of %s", s,
                  k->choices ? k->choices : "");
    return 0;
  case SL_CT_STR_LIST:
    if (s != NULL) {
      nw = json_array();
      if (nw == NULL || json_array_append(nw, v) != 0) {
        json_decref(nw);
        return SL_ENOMEM;
      }
      return replace_node(x, parent, key, idx, v, nw);
    }
    if (!json_is_array(v))
      return cerr(x, line, "expected a string or a list of strings, got %s",
                  kind_of(v));
    json_array_foreach(v, i, item) {
      if (!json_is_string(item)) {
        mark = path_push_index(x, i);
        rc = cerr(x, line_of(x->c, item), "expected a string, got %s",
                  kind_of(item));
        path_pop(x, mark);
        return rc;
      }
    }
    return 0;
  case SL_CT_OBJ:
    if (!json_is_object(v))
      return cerr(x, line, "expected a mapping, got %s", kind_of(v));
    return validate_obj(x, v, k->sub);
  case SL_CT_OBJ_LIST:
    if (!json_is_array(v))
      return cerr(x, line, "expected a list of mappings, got %s",
                  kind_of(v));
    /* Every item is looked at; one that is not a mapping makes the whole
     * list go (item indexes in later messages stay those of the file). */
    json_array_foreach(v, i, item) {
      mark = path_push_index(x, i);
      if (!json_is_object(item))
        b = cerr(x, line_of(x->c, item), "expected a mapping, got %s",
                 kind_of(item));
      else
        rc = validate_obj(x, item, k->sub);
      path_pop(x, mark);
      if (rc)
        return rc;
    }
    return b == SL_ECONFIG ? SL_ECONFIG : 0;
  case SL_CT_MAP:
    if (!json_is_object(v))
      return cerr(x, line, "expected a mapping, got %s", kind_of(v));
    {
      const char *mk;
      json_object_foreach(v, mk, item) {
        if (json_is_object(item) || json_is_array(item)) {
          mark = path_push_key(x, mk);
          rc = cerr(x, line_of(x->c, item), "expected a scalar, got %s",
                    kind_of(item));
          path_pop(x, mark);
          return rc;
        }
      }
    }
    return type_any(x, parent, key, idx, v);
  case SL_CT_ANY:
    return type_any(x, parent, key, idx, v);
  }
  return cerr(x, line, "internal: unknown schema type %d", (int)k->type);
}

/* The default of k as a raw node (line 0), or NULL when k has none. */
static int
default_node(struct ctx *x, const struct sl_conf_key *k, json_t **out)
{
  int rc;

  *out = NULL;
  if (k->def == NULL)
    return 0;
  /* Flow collections ("[]", "{a: 1}") are parsed as YAML; a plain scalar
   * is taken literally (no ${VAR} in defaults). */
  if (k->def[0] == '[' || k->def[0] == '{') {
    x->defaults = 1;
    rc = parse_yaml(x, k->def, strlen(k->def), out);
    x->defaults = 0;
    return rc;
  }
  *out = json_string(k->def);
  if (*out == NULL)
    return cerr(x, 0, "internal: default is not valid UTF-8");
  return info_set(x->c, *out, 0, 0, 1);
}

static int
has_required(const struct sl_conf_key *schema)
{
  const struct sl_conf_key *k;

  for (k = schema; k && k->key; k++)
    if ((k->flags & SL_CK_REQUIRED) && k->def == NULL)
      return 1;
  return 0;
}

static const struct sl_conf_key *
find_key(const struct sl_conf_key *schema, const char *key)
{
  const struct sl_conf_key *k;

  for (k = schema; k && k->key; k++)
    if (strcmp(k->key, key) == 0)
      return k;
  return NULL;
}

/* Errors are reported and the walk goes on (every error of the file,
 * not only the first); only SL_ENOMEM and the like end it. A value of the
 * wrong type is removed and its default, if any, put in its place, so
 * checks that run on the tree afterwards see only valid values. */
static int
validate_obj(struct ctx *x, json_t *obj, const struct sl_conf_key *schema)
{
  const struct sl_conf_key *k;
  const char *key;
  json_t *v, *d;
  size_t mark;
  void *tmp;
  int rc = 0;

  /* Keys that are present, in file order, so the first error reported is
   * the first one in the file. */
  json_object_foreach_safe(obj, tmp, key, v) {
    mark = path_push_key(x, key);
    k = find_key(schema, key);
    if (k == NULL) {
      cerr(x, keyline_of(x->c, v), "unknown key");
    } else if (k->type != SL_CT_ANY && is_null_scalar(x->c, v)) {
      /* "key:" with nothing (or ~/null) counts as not given. */
      if (json_array_append(x->c->grave, v) != 0)
        rc = SL_ENOMEM;
      else
        json_object_del(obj, key);
    } else {
      rc = normalise(x, k, obj, key, 0, v);
      if (rc == SL_ECONFIG) {
        mark_failed(x);
        rc = json_array_append(x->c->grave, v) != 0 ? SL_ENOMEM : 0;
        if (rc == 0)
          json_object_del(obj, key);
      }
    }
    if (rc)
      return rc;
    path_pop(x, mark);
  }
  /* Then what is missing: defaults, required keys, implied sections. */
  for (k = schema; k && k->key; k++) {
    if (json_object_get(obj, k->key) != NULL)
      continue;
    mark = path_push_key(x, k->key);
    rc = default_node(x, k, &d);
    if (rc == 0 && d == NULL) {
      if (k->flags & SL_CK_REQUIRED) {
        /* Written but refused above: not also "missing". Either way
         * the checks that run later need not say it again. */
        if (!path_failed(x->c, x->path.p)) {
          cerr(x, line_of(x->c, obj), "required key is missing");
          mark_failed(x);
        }
      } else if (k->type == SL_CT_OBJ && !has_required(k->sub)) {
        /* Absent sections still get their defaults, so a module can
         * read "spool.max_bytes" without checking for "spool". */
        d = json_object();
        rc = d ? info_set(x->c, d, 0, 0, 0) : SL_ENOMEM;
      }
    }
    if (rc == 0 && d != NULL) {
      if (json_object_set_new(obj, k->key, d) != 0)
        rc = SL_ENOMEM;
      else
        rc = normalise(x, k, obj, k->key, 0, d);
    }
    if (rc)
      return rc;
    path_pop(x, mark);
  }
  return 0;
}

/* ---- public ---- */

void
sl_conf_free(struct sl_conf *c)
{
  if (c == NULL)
    return;
  json_decref(c->root);
  json_decref(c->grave);
  errs_free(c->errs);
  free(c->tab);
  free(c->file);
  free(c);
}

/* keep: a config that parsed but has errors is still handed out (see
 * sl_conf_load_all). */
static int
load_str(const char *name, const char *text, size_t len,
         const struct sl_conf_key *schema, int keep, struct sl_conf **out,
         char *err, size_t errlen)
{
  struct ctx x;
  json_t *root = NULL;
  int rc;

  *out = NULL;
  if (err && errlen)
    err[0] = '\0';
  memset(&x, 0, sizeof(x));
  x.err = err;
  x.errlen = errlen;
  sl_buf_init(&x.path, 4096);
  x.c = calloc(1, sizeof(*x.c));
  if (x.c == NULL)
    return SL_ENOMEM;
  x.c->file = strdup(name ? name : "(config)");
  x.c->grave = json_array();
  x.c->errs = calloc(1, sizeof(*x.c->errs));
  if (x.c->file == NULL || x.c->grave == NULL || x.c->errs == NULL ||
      sl_buf_append(&x.path, "", 0) != 0) {
    rc = SL_ENOMEM;
    goto fail;
  }
  rc = parse_yaml(&x, text, len, &root);
  if (rc)
    goto fail;
  x.c->root = root;
  if (!json_is_object(root)) {
    rc = cerr(&x, line_of(x.c, root), "the top level must be a mapping, "
              "got %s", kind_of(root));
    goto fail;
  }
  rc = validate_obj(&x, root, schema);
  if (rc)
    goto fail;
  sl_buf_free(&x.path);
  rc = x.nerr > 0 ? SL_ECONFIG : 0;
  if (rc && !keep) {
    sl_conf_free(x.c);
    return rc;
  }
  *out = x.c;
  return rc;
fail:
  if (rc == SL_ENOMEM && err && errlen && err[0] == '\0')
    snprintf(err, errlen, "%s: out of memory", x.c->file ? x.c->file : "");
  else if (rc != SL_ENOMEM)
    rc = SL_ECONFIG;
  sl_buf_free(&x.path);
  sl_conf_free(x.c);
  return rc;
}

int
sl_conf_load_str(const char *name, const char *text, size_t len,
                 const struct sl_conf_key *schema, struct sl_conf **out,
                 char *err, size_t errlen)
{
  return load_str(name, text, len, schema, 0, out, err, errlen);
}

int
sl_conf_load_str_all(const char *name, const char *text, size_t len,
                     const struct sl_conf_key *schema, struct sl_conf **out,
                     char *err, size_t errlen)
{
  return load_str(name, text, len, schema, 1, out, err, errlen);
}

static int
load_file(const char *path, const struct sl_conf_key *schema, int keep,
          struct sl_conf **out, char *err, size_t errlen)
{
  struct stat st;
  char *text = NULL;
  size_t got = 0;
  ssize_t r;
  int fd, rc;

  *out = NULL;
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    rc = errno == ENOENT ? SL_ENOENT : SL_EIO;
    snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return rc;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "%s: not a regular file", path);
    rc = SL_EIO;
    goto out;
  }
  if ((uint64_t)st.st_size > CONF_MAX_FILE) {
    snprintf(err, errlen, "%s: larger than %u bytes", path, CONF_MAX_FILE);
    rc = SL_ECONFIG;
    goto out;
  }
  text = malloc((size_t)st.st_size + 1);
  if (text == NULL) {
    rc = SL_ENOMEM;
    goto out;
  }
  while (got < (size_t)st.st_size) {
    r = read(fd, text + got, (size_t)st.st_size - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  if (got < (size_t)st.st_size) {
    snprintf(err, errlen, "%s: read failed", path);
    rc = SL_EIO;
    goto out;
  }
  text[got] = '\0';
  rc = load_str(path, text, got, schema, keep, out, err, errlen);
out:
  free(text);
  close(fd);
  return rc;
}

int
sl_conf_load(const char *path, const struct sl_conf_key *schema,
             struct sl_conf **out, char *err, size_t errlen)
{
  return load_file(path, schema, 0, out, err, errlen);
}

int
sl_conf_load_all(const char *path, const struct sl_conf_key *schema,
                 struct sl_conf **out, char *err, size_t errlen)
{
  return load_file(path, schema, 1, out, err, errlen);
}

/* ---- the error list ---- */

static int
err_cmp(const void *a, const void *b)
{
  const struct conf_err *x = a, *y = b;
  /* File order; errors without a line after those with one. */
  unsigned lx = x->line > 0 ? (unsigned)x->line : UINT_MAX;
  unsigned ly = y->line > 0 ? (unsigned)y->line : UINT_MAX;

  if (lx != ly)
    return lx < ly ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int
verror(const struct sl_conf *c, const json_t *node, const char *keypath,
       char *err, size_t errlen, const char *fmt, va_list ap)
{
  char buf[1024];
  int line = c ? line_of(c, node) : 0;

  /* A follow-up of a value the loader already refused: said once. */
  if (path_failed(c, keypath))
    return SL_ECONFIG;
  verrf(c ? c->file : "(config)", line, keypath, buf, sizeof(buf), fmt,
        ap);
  errs_add(c, line, buf);
  if (err && errlen && err[0] == '\0')
    snprintf(err, errlen, "%s", buf);
  return SL_ECONFIG;
}

int
sl_conf_error(const struct sl_conf *c, const json_t *node,
              const char *keypath, char *err, size_t errlen,
              const char *fmt, ...)
{
  va_list ap;
  int rc;

  va_start(ap, fmt);
  rc = verror(c, node, keypath, err, errlen, fmt, ap);
  va_end(ap);
  return rc;
}

int
sl_conf_error_text(const struct sl_conf *c, const char *text, char *err,
                   size_t errlen)
{
  const char *f = c ? c->file : NULL, *p, *sep;
  size_t n = f ? strlen(f) : 0;
  char path[256];
  int line = 0;

  if (text == NULL || text[0] == '\0')
    text = "invalid configuration";
  /* "file:line: key.path: ..." from sl_conf_errorf: keep its place in
   * file order, and say nothing new about a value the loader refused. */
  if (f && strncmp(text, f, n) == 0 && text[n] == ':') {
    p = text + n + 1;
    while (*p >= '0' && *p <= '9' && line < 100000000)
      line = line * 10 + (*p++ - '0');
    if (*p != ':')
      line = 0;
    else if (p[1] == ' ' && (sep = strstr(p + 2, ": ")) != NULL &&
             (size_t)(sep - p - 2) < sizeof(path)) {
      snprintf(path, sizeof(path), "%.*s", (int)(sep - p - 2), p + 2);
      if (path_failed(c, path))
        return SL_ECONFIG;
    }
  }
  errs_add(c, line, text);
  if (err && errlen && err[0] == '\0' && text != err)
    snprintf(err, errlen, "%s", text);
  return SL_ECONFIG;
}

size_t
sl_conf_nerrors(const struct sl_conf *c)
{
  return c && c->errs ? c->errs->n + c->errs->more : 0;
}

int
sl_conf_failed(const struct sl_conf *c, const char *keypath)
{
  return path_failed(c, keypath);
}

void
sl_conf_report(FILE *fp, const char *path, const struct sl_conf *c,
               const char *err)
{
  struct conf_errs *e = c ? c->errs : NULL;
  size_t i;

  if (e == NULL || e->n == 0) {
    fprintf(fp, "%s\n", err && err[0] ? err : "invalid configuration");
    /* libyaml cannot resume after a syntax error, so nothing past it
     * was looked at. */
    if (err && strstr(err, ": yaml: ") != NULL)
      fprintf(fp, "%s: a YAML syntax error ends the check: fix it to see "
              "any other errors\n", path ? path : "(config)");
    return;
  }
  qsort(e->v, e->n, sizeof(*e->v), err_cmp);
  for (i = 0; i < e->n; i++)
    fprintf(fp, "%s\n", e->v[i].text);
  if (e->more > 0)
    fprintf(fp, "%s: %zu more errors not shown\n", c->file, e->more);
}

json_t *
sl_conf_root(const struct sl_conf *c)
{
  return c ? c->root : NULL;
}

const char *
sl_conf_file(const struct sl_conf *c)
{
  return c ? c->file : NULL;
}

int
sl_conf_line(const struct sl_conf *c, const json_t *node)
{
  return c ? line_of(c, node) : 0;
}

json_t *
sl_conf_get(const json_t *obj, const char *key)
{
  const char *p = key, *dot;
  char part[256];
  size_t n;
  json_t *cur = (json_t *)obj;

  if (obj == NULL || key == NULL)
    return NULL;
  while (cur != NULL) {
    dot = strchr(p, '.');
    if (dot == NULL)
      return json_object_get(cur, p);
    n = (size_t)(dot - p);
    if (n >= sizeof(part))
      return NULL;
    memcpy(part, p, n);
    part[n] = '\0';
    cur = json_object_get(cur, part);
    p = dot + 1;
  }
  return NULL;
}

const char *
sl_conf_str(const json_t *obj, const char *key)
{
  return json_string_value(sl_conf_get(obj, key));
}

int64_t
sl_conf_int(const json_t *obj, const char *key, int64_t def)
{
  json_t *v = sl_conf_get(obj, key);

  if (json_is_integer(v))
    return json_integer_value(v);
  if (json_is_real(v))
    return (int64_t)json_real_value(v);
  return def;
}

double
sl_conf_float(const json_t *obj, const char *key, double def)
{
  json_t *v = sl_conf_get(obj, key);

  return json_is_number(v) ? json_number_value(v) : def;
}

int
sl_conf_bool(const json_t *obj, const char *key, int def)
{
  json_t *v = sl_conf_get(obj, key);

  return json_is_boolean(v) ? json_is_true(v) : def;
}

static void
print_keys(FILE *fp, const struct sl_conf_key *schema, int indent)
{
  const struct sl_conf_key *k;

  for (k = schema; k && k->key; k++) {
    fprintf(fp, "%*s%s%s (", indent, "", k->key,
            k->type == SL_CT_OBJ_LIST ? "[]" : "");
    if (k->type == SL_CT_ENUM)
      fprintf(fp, "one of %s", k->choices ? k->choices : "");
    else
      fprintf(fp, "%s", type_name(k->type));
    if (k->def)
      fprintf(fp, ", default %s", k->def);
    else if (k->flags & SL_CK_REQUIRED)
      fprintf(fp, ", required");
    fprintf(fp, "): %s\n", k->help ? k->help : "");
    if (k->sub && (k->type == SL_CT_OBJ || k->type == SL_CT_OBJ_LIST))
      print_keys(fp, k->sub, indent + 2);
  }
}

void
sl_conf_print_help(FILE *fp, const struct sl_conf_key *schema)
{
  print_keys(fp, schema, 2);
}
