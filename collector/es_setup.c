/* es_setup.c - template bodies sluice installs in Elasticsearch (pure). */
#include "es_setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "retention.h"
#include "sl_err.h"
#include "sl_hash.h"

/* ECS gives identifiers ignore_above 1024: longer values stay in _source
 * but are not indexed, which keeps clear of Lucene's 32766-byte term
 * limit ("immense term"). */
static json_t *
kw(void)
{
  return json_pack("{s:s, s:i}", "type", "keyword", "ignore_above", 1024);
}

static json_t *
typ(const char *t)
{
  return json_pack("{s:s}", "type", t);
}

static json_t *
props(json_t *p)
{
  return json_pack("{s:o}", "properties", p);
}

static json_t *
strings_as(const char *name, const char *path)
{
  json_t *m = json_pack("{s:s, s:o}", "match_mapping_type", "string",
                        "mapping", kw());

  if (m && path)
    json_object_set_new(m, "path_match", json_string(path));
  return json_pack("{s:o}", name, m);
}

static json_t *
mappings_body(void)
{
  json_t *p = json_object();

  json_object_set_new(p, "@timestamp", typ("date"));
  json_object_set_new(p, "message", typ("match_only_text"));
  json_object_set_new(p, "tags", kw());
  json_object_set_new(p, "ecs", props(json_pack("{s:o}", "version", kw())));
  json_object_set_new(p, "log", props(json_pack(
    "{s:o, s:o, s:o, s:o, s:o}",
    "level", kw(), "logger", kw(), "offset", typ("long"), "flags", kw(),
    "file", props(json_pack("{s:o}", "path", kw())))));
  json_object_set_new(p, "host", props(json_pack(
    "{s:o, s:o}", "name", kw(), "hostname", kw())));
  json_object_set_new(p, "service", props(json_pack(
    "{s:o, s:o, s:o}", "name", kw(), "version", kw(), "environment",
    kw())));
  json_object_set_new(p, "agent", props(json_pack(
    "{s:o, s:o, s:o, s:o, s:o}", "name", kw(), "id", kw(), "version", kw(),
    "type", kw(), "ephemeral_id", kw())));
  /* event.original is kept only in _source: it can be large and is never
   * searched, so neither an index nor doc values are worth their cost. */
  json_object_set_new(p, "event", props(json_pack(
    "{s:o, s:o, s:o, s:o, s:{s:s, s:b, s:b}}",
    "dataset", kw(), "id", kw(), "ingested", typ("date"),
    "created", typ("date"),
    "original", "type", "keyword", "index", 0, "doc_values", 0)));
  json_object_set_new(p, "trace", props(json_pack("{s:o}", "id", kw())));
  json_object_set_new(p, "span", props(json_pack("{s:o}", "id", kw())));
  json_object_set_new(p, "transaction",
                      props(json_pack("{s:o}", "id", kw())));
  json_object_set_new(p, "http", props(json_pack(
    "{s:o, s:o, s:o}", "version", kw(),
    "request", props(json_pack("{s:o, s:o, s:o}", "id", kw(), "method", kw(),
                               "referrer", kw())),
    "response", props(json_pack("{s:o, s:o}", "status_code", typ("long"),
                                "body", props(json_pack("{s:o}", "bytes",
                                                        typ("long"))))))));
  /* The access and error log parsers' fields (agent/parse_access.c,
   * parse_errlog.c): source.ip must be `ip` for CIDR queries; the rest
   * would map the same dynamically, listed so that the types are ECS's
   * even when the first document of a stream lacks them. */
  json_object_set_new(p, "source", props(json_pack(
    "{s:o, s:o, s:o}", "address", kw(), "ip", typ("ip"), "port",
    typ("long"))));
  json_object_set_new(p, "user", props(json_pack("{s:o}", "name", kw())));
  json_object_set_new(p, "url", props(json_pack(
    "{s:o, s:o, s:o}", "original", kw(), "path", kw(), "query", kw())));
  json_object_set_new(p, "user_agent",
                      props(json_pack("{s:o}", "original", kw())));
  json_object_set_new(p, "process", props(json_pack(
    "{s:o, s:o}", "pid", typ("long"),
    "thread", props(json_pack("{s:o}", "id", typ("long"))))));
  json_object_set_new(p, "error", props(json_pack(
    "{s:o, s:o, s:o}", "message", typ("match_only_text"), "type", kw(),
    "code", kw())));
  json_object_set_new(p, "data_stream", props(json_pack(
    "{s:o, s:o, s:o}", "type", typ("constant_keyword"),
    "dataset", typ("constant_keyword"),
    "namespace", typ("constant_keyword"))));
  json_object_set_new(p, "labels", json_pack("{s:s, s:b}", "type", "object",
                                             "dynamic", 1));
  json_object_set_new(p, "app", json_pack("{s:s, s:b}", "type", "object",
                                          "dynamic", 1));
  /* date_detection is a root-level switch: off, so that a string in app.*
   * that happens to look like a date does not fix that field as `date`
   * forever (the built-in logs template does the same). Strings become
   * keyword instead of text + .keyword (half the cost, no odd names). */
  return json_pack("{s:{s:{s:b, s:[o, o, o], s:o}}, s:{s:s}}",
                   "template", "mappings", "date_detection", 0,
                   "dynamic_templates",
                   strings_as("labels_as_keyword", "labels.*"),
                   strings_as("app_strings_as_keyword", "app.*"),
                   strings_as("strings_as_keyword", NULL),
                   "properties", p, "_meta", "managed_by", "sluice");
}

/* Known to be older than 8.11: no data stream lifecycle in templates. */
static int
old_es(const struct sl_es_setup_conf *c)
{
  return c->es_major && (c->es_major < 8 ||
                         (c->es_major == 8 && c->es_minor < 11));
}

static json_t *
settings_body(const struct sl_es_setup_conf *c)
{
  /* ignore_malformed as in logs@settings: a bad value in one field no
   * longer refuses the whole event (it lands in _ignored instead). */
  json_t *idx = json_pack("{s:s, s:{s:b, s:{s:i}}}", "codec",
                          "best_compression", "mapping",
                          "ignore_malformed", 1, "total_fields", "limit",
                          2000);

  const char *ilm = c->ilm_policy && c->ilm_policy[0] ? c->ilm_policy
                    : old_es(c) ? "logs" : NULL;

  if (idx && ilm)
    json_object_set_new(idx, "lifecycle", json_pack("{s:s}", "name", ilm));
  return json_pack("{s:{s:{s:o}}, s:{s:s}}", "template", "settings",
                   "index", idx, "_meta", "managed_by", "sluice");
}

/* ignore_missing_component_templates exists since ES 8.7; older
 * versions refuse the field and a missing component, so they get sluice's
 * own components only. Unknown version: assume a current one. */
static int
hooks_ok(const struct sl_es_setup_conf *c)
{
  return !(c->es_major && (c->es_major < 8 ||
                           (c->es_major == 8 && c->es_minor < 7)));
}

/* Ours first, then the site's hooks: later components win (reference §3),
 * so logs@custom (the hook ES's own logs template composes, for every
 * logs-*-* stream) and sluice@custom (for what sluice writes only) can
 * change any mapping or setting of ours. The template's own block
 * (lifecycle, retention, daily mappings) still comes after them. Neither
 * hook needs to exist: both are listed as optional. `logs`: 0 for the
 * daily template, whose plain indices are no logs data streams. */
static int
add_composition(const struct sl_es_setup_conf *c, json_t *t, int logs)
{
  json_t *comp = json_pack("[s, s]", "sluice-ecs-mappings",
                           "sluice-settings");
  json_t *opt = json_array();

  if (!t || !comp || !opt)
    goto nomem;
  if (hooks_ok(c)) {
    if (logs && (json_array_append_new(comp, json_string(SL_ES_HOOK_LOGS)) ||
                 json_array_append_new(opt, json_string(SL_ES_HOOK_LOGS))))
      goto nomem;
    if (json_array_append_new(comp, json_string(SL_ES_HOOK_SLUICE)) ||
        json_array_append_new(opt, json_string(SL_ES_HOOK_SLUICE)) ||
        json_object_set(t, "ignore_missing_component_templates", opt))
      goto nomem;
  }
  json_decref(opt);
  return json_object_set_new(t, "composed_of", comp) ? SL_ENOMEM : 0;
nomem:
  json_decref(comp);
  json_decref(opt);
  return SL_ENOMEM;
}

/* Retention in templates: data_retention (lifecycle, ES >= 8.11) or an
 * ILM policy (ilm); NULL when the templates carry none. `keep` and
 * `policy` are the rule's (or the default's). */
static json_t *
retention_block(const struct sl_es_setup_conf *c, const char *keep,
                const char *policy)
{
  const struct sl_retention_conf *rc = c->retention;

  if (rc && rc->mode == SL_RET_LIFECYCLE && !old_es(c))
    return json_pack("{s:{s:s}}", "lifecycle", "data_retention", keep);
  if (rc && rc->mode == SL_RET_ILM) {
    char name[96];

    /* prefer_ilm: on ES >= 8.11 a stream may also have a lifecycle;
     * this says the policy wins. */
    snprintf(name, sizeof name, "sluice-%s", policy);
    return json_pack("{s:{s:{s:{s:s, s:b}}}}", "settings", "index",
                     "lifecycle", "name", name, "prefer_ilm", 1);
  }
  return NULL;
}

static size_t
rule_templates(const struct sl_es_setup_conf *c)
{
  const struct sl_retention_conf *rc = c->retention;
  size_t i, n = 0;

  if (!rc || !(rc->mode == SL_RET_ILM ||
               (rc->mode == SL_RET_LIFECYCLE && !old_es(c))))
    return 0;
  for (i = 0; i < rc->nrules; i++)
    n += rc->rules[i].pattern != NULL;
  return n;
}

static json_t *
logs_template(const struct sl_es_setup_conf *c)
{
  json_t *pat = json_is_array(c->patterns) && json_array_size(c->patterns)
                  ? json_deep_copy(c->patterns)
                  : json_pack("[s]", "logs-*-*");

  json_t *t = json_pack("{s:o, s:i, s:{}, s:{s:s}}", "index_patterns",
                         pat, "priority", c->priority > 0 ? c->priority : 150,
                         "data_stream", "_meta", "managed_by", "sluice");

  json_t *ret = c->retention
                  ? retention_block(c, c->retention->default_keep, "default")
                  : NULL;

  if (add_composition(c, t, 1) != 0) {
    json_decref(ret);
    json_decref(t);
    return NULL;
  }
  if (t && ret)
    json_object_set_new(t, "template", ret);
  else if (t && !(c->ilm_policy && c->ilm_policy[0]) && !old_es(c))
    json_object_set_new(t, "template", json_pack("{s:{}}", "lifecycle"));
  return t;
}

/* The rule's own data stream template: the logs template with a narrower
 * pattern, a higher priority and the rule's retention. */
static json_t *
rule_template(const struct sl_es_setup_conf *c,
              const struct sl_retention_rule *ru, int priority)
{
  json_t *t = json_pack("{s:[s], s:i, s:{}, s:o, s:{s:s, s:s}}",
                         "index_patterns", ru->pattern, "priority", priority,
                         "data_stream", "template",
                         retention_block(c, ru->keep, ru->name), "_meta",
                         "managed_by", "sluice", "retention_rule", ru->match);

  if (add_composition(c, t, 1) != 0) {
    json_decref(t);
    return NULL;
  }
  return t;
}

static json_t *
daily_template(const struct sl_es_setup_conf *c)
{
  char pat[300];
  const char *prefix = c->prefix && c->prefix[0] ? c->prefix : "sluice";

  snprintf(pat, sizeof pat, "%s-*", prefix);
  /* A daily index mixes namespaces of one dataset, so data_stream.* must
   * be plain keyword here, not constant_keyword. Priority above the data
   * stream template so that a "logs" prefix still gives plain indices. */
  json_t *t = json_pack(
    "{s:[s], s:i, s:{s:{s:{s:{s:{s:o, s:o, s:o}}}}}, s:{s:s}}",
    "index_patterns", pat, "priority",
    (c->priority > 0 ? c->priority : 150) + 10 + (int)rule_templates(c),
    "template", "mappings", "properties", "data_stream", "properties",
    "type", kw(), "dataset", kw(), "namespace", kw(), "_meta", "managed_by",
    "sluice");

  if (add_composition(c, t, 0) != 0) {
    json_decref(t);
    return NULL;
  }
  return t;
}

static int
finish(json_t *body, const char *path, struct sl_es_object *o)
{
  char *text = NULL;
  uint64_t h;

  if (!body)
    return SL_ENOMEM;
  text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
  if (!text)
    goto nomem;
  h = sl_hash64(text, strlen(text));
  free(text);
  /* ES stores `version` as an int; keep it positive and non-zero. */
  o->version = (int64_t)(h & 0x7fffffff) | 1;
  json_object_set_new(body, "version", json_integer(o->version));
  o->body = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
  o->path = strdup(path);
  json_decref(body);
  if (!o->body || !o->path) {
    free(o->body);
    free(o->path);
    o->body = o->path = NULL;
    return SL_ENOMEM;
  }
  return 0;
nomem:
  json_decref(body);
  return SL_ENOMEM;
}

int
sl_es_setup_build(const struct sl_es_setup_conf *c, struct sl_es_object *out,
                  size_t *n)
{
  /* The data stream template is installed in daily mode too: the dead
   * letter target is a data stream either way. */
  json_t *bodies[4] = {
    mappings_body(), settings_body(c), logs_template(c),
    c->mode == SL_INDEX_DAILY ? daily_template(c) : NULL,
  };
  static const char *const paths[4] = {
    "_component_template/sluice-ecs-mappings",
    "_component_template/sluice-settings",
    "_index_template/sluice-logs",
    "_index_template/sluice-daily",
  };
  size_t i, count = c->mode == SL_INDEX_DAILY ? 4 : 3;
  const struct sl_retention_conf *ret = c->retention;
  int rc = 0, base = c->priority > 0 ? c->priority : 150;

  *n = 0;
  memset(out, 0, SL_ES_SETUP_MAX * sizeof *out);
  for (i = 0; i < count; i++) {
    /* finish() consumes the body; later ones are released below. */
    rc = finish(bodies[i], paths[i], &out[i]);
    bodies[i] = NULL;
    if (rc)
      break;
    *n = i + 1;
  }
  for (i = 0; i < 4; i++)
    json_decref(bodies[i]);
  for (i = 0; !rc && rule_templates(c) && i < ret->nrules &&
              *n < SL_ES_SETUP_MAX; i++) {
    const struct sl_retention_rule *ru = &ret->rules[i];
    char path[128];

    if (!ru->pattern)
      continue;
    snprintf(path, sizeof path, "_index_template/sluice-retention-%s",
             ru->name);
    rc = finish(rule_template(c, ru, base + (int)(ret->nrules - i)), path,
                &out[*n]);
    if (!rc)
      (*n)++;
  }
  if (rc) {
    sl_es_setup_free(out, *n);
    *n = 0;
  }
  return rc;
}

void
sl_es_setup_free(struct sl_es_object *objs, size_t n)
{
  size_t i;

  for (i = 0; i < n; i++) {
    free(objs[i].path);
    free(objs[i].body);
    objs[i].path = objs[i].body = NULL;
  }
}

int64_t
sl_es_stored_version(const char *body, size_t len)
{
  json_t *root = json_loadb(body, len, 0, NULL), *arr, *el, *v, *inner;
  const char *key;
  int64_t ver = -1;

  if (!json_is_object(root))
    goto out;
  /* {"index_templates":[{"name":..,"index_template":{..,"version":N}}]}
   * and the same with component_template(s). */
  json_object_foreach(root, key, arr) {
    if (!json_is_array(arr) || json_array_size(arr) == 0)
      continue;
    el = json_array_get(arr, 0);
    if (!json_is_object(el))
      continue;
    json_object_foreach(el, key, inner) {
      if (!json_is_object(inner))
        continue;
      v = json_object_get(inner, "version");
      if (json_is_integer(v)) {
        ver = (int64_t)json_integer_value(v);
        goto out;
      }
    }
  }
out:
  json_decref(root);
  return ver;
}

int
sl_es_parse_root(const char *body, size_t len, char *num, size_t numlen,
                 int *major, int *minor, int *opensearch)
{
  json_t *root = json_loadb(body, len, 0, NULL), *ver, *n, *dist;
  int rc = SL_EPARSE;

  const char *dot;

  *major = *minor = 0;
  *opensearch = 0;
  if (numlen)
    num[0] = '\0';
  ver = json_object_get(root, "version");
  n = json_object_get(ver, "number");
  if (!json_is_string(n))
    goto out;
  snprintf(num, numlen, "%s", json_string_value(n));
  *major = atoi(json_string_value(n));
  dot = strchr(json_string_value(n), '.');
  *minor = dot ? atoi(dot + 1) : 0;
  dist = json_object_get(ver, "distribution");
  *opensearch = json_is_string(dist) &&
                strcmp(json_string_value(dist), "opensearch") == 0;
  rc = 0;
out:
  json_decref(root);
  return rc;
}
