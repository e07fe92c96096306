/* config.h - the collector's whole configuration schema, defined once as a
 * table (validation, defaults and --help all come from it), and the typed
 * views that modules are handed instead of reading the tree themselves. */
#ifndef SL_COLLECTOR_CONFIG_H
#define SL_COLLECTOR_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "bulk.h"
#include "sl_conf.h"

struct sl_retention_conf;

extern const struct sl_conf_key sl_collector_schema[];

/* Checks the schema table cannot express (value ranges), on a config
 * sl_conf_load accepted: SL_ECONFIG and "file:line: key: reason" in err.
 * Run wherever a config is loaded (start, --check, SIGHUP). */
int sl_collector_conf_check(const struct sl_conf *c, char *err,
                            size_t errlen);

/* 1 when s can be elasticsearch.pipeline: 1..SL_ES_PIPELINE_MAX of
 * [A-Za-z0-9._@-] (safe in a URL query as is). */
#define SL_ES_PIPELINE_MAX 255
int sl_es_pipeline_valid(const char *s);

/* The `retention:` part of that check (retention.h), on its own. */
int sl_collector_conf_check_retention(const struct sl_conf *c, char *err,
                                      size_t errlen);

#define SL_COLLECTOR_DEFAULT_CONFIG "/etc/sluice/collector.yml"

/* The `elasticsearch:` object, typed (keys and defaults: es_keys in
 * config.c; meanings: indexer.h). Durations are ms, sizes bytes.
 *
 * Ownership: `hosts` (the array and its strings) belongs to the struct and
 * dies in sl_es_conf_free(). A host may carry "user:pass@": never print
 * one; es_client.c splits it off (sl_es_url_split) before any use. Every
 * other pointer is borrowed from the config tree (and `data_dir` from the
 * caller) and lives as long as they do; the modules that keep a value
 * past their constructor copy it. */
struct sl_es_conf {
  /* HTTP client (es_client.c) */
  char **hosts;                 /* base URLs: scheme added, no trailing '/' */
  size_t nhosts;
  const char *username, *password;  /* basic auth, or NULL */
  const char *api_key;          /* "id:key" or its base64 form, or NULL */
  const char *ca;               /* CA file (PEM) or NULL */
  const char *cert, *key;       /* client certificate and key, or NULL */
  int verify;                   /* verify certificate and host name */
  uint64_t timeout_ms;          /* per request */
  /* Request bodies and scheduling (indexer.c) */
  int compression;              /* gzip request bodies */
  int compression_level;        /* 0..9, 0: stored */
  size_t bulk_max_bytes;        /* uncompressed body limit, >= 1024 */
  size_t bulk_max_events;       /* 1..1000000 */
  uint64_t flush_ms;            /* send a partial bulk after this long */
  size_t max_inflight;          /* 1..64 */
  uint64_t max_pending;         /* events held before submit pushes back */
  uint64_t backoff_base_ms, backoff_max_ms;
  /* Where events and dead letters go */
  enum sl_index_mode index_mode;
  const char *index_prefix;     /* daily prefix */
  const char *namespace_;       /* data_stream.namespace default */
  const char *deadletter_index;
  const char *data_dir;         /* dead letters go to <data_dir>/deadletter */
  /* Templates (es_setup.h) */
  const json_t *template_patterns;  /* array of strings, or NULL */
  int template_priority;
  const char *ilm_policy;       /* or NULL */
  /* Ingest pipeline, or NULL. Sent as _bulk?pipeline= (not as the
   * template's index.default_pipeline: a template setting reaches a data
   * stream only at its next rollover, the URL at once, in both index
   * modes). It replaces the index's default_pipeline (the built-in
   * logs@default-pipeline too), final_pipeline still runs. Dead letters
   * say "pipeline":"_none": the pipeline may be why they were refused. */
  const char *pipeline;
  /* Retention rules (retention.h) the templates carry; NULL: none. Set
   * by the collector, borrowed like the rest. */
  const struct sl_retention_conf *retention;
};

/* Fill *c from a normalised `elasticsearch:` object (a missing key takes
 * its schema default, so a hand-built object works too) and check the
 * ranges the schema cannot express. SL_ECONFIG with "elasticsearch.<key>:
 * <reason>" in err; *c needs sl_es_conf_free() after success only. */
int sl_es_conf_fill(const json_t *es, const char *data_dir,
                    struct sl_es_conf *c, char *err, size_t errlen);
void sl_es_conf_free(struct sl_es_conf *c);

#endif
