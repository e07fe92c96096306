/* es_setup.h - the Elasticsearch objects sluice installs on start (pure
 * builders; indexer.c sends them).
 *
 * Installed, in order:
 *   _component_template/sluice-ecs-mappings  ECS mappings for what sluice
 *                                            writes (see the references
 *                                            at the end of this comment)
 *   _component_template/sluice-settings      codec, ignore_malformed, ILM
 *   _index_template/sluice-logs              data streams logs-*-*
 *   _index_template/sluice-daily             <prefix>-* (index_mode daily)
 *   _index_template/sluice-retention-<name>  one per retention rule
 *
 * Site customisations: every index template is composed of sluice's two
 * components, then the optional hooks `logs@custom` (the one ES's built-in
 * logs template composes, so what a site put there keeps applying once
 * ours replaces it; not for daily indices) and `sluice@custom` (settings
 * and mappings for sluice's indices only), both in
 * ignore_missing_component_templates. Later components win, so the hooks
 * override ours and sluice@custom overrides logs@custom; the template's
 * own block (lifecycle, retention, daily mappings) comes last. ES < 8.7
 * (no ignore_missing_component_templates) gets no hooks.
 *
 * Why logs-*-* at priority 150 (template.priority): sluice writes whatever
 * datasets its agents send, so a narrower pattern would miss most of them;
 * 150 beats the built-in logs@template (100) so our ECS mappings apply, and
 * stays below Fleet integration templates (200), which are more specific
 * and own their datasets. Equal priorities with overlapping patterns are
 * refused by ES (400), so 200 would make setup fail on clusters that run
 * integrations. Both are configurable.
 *
 * Rollover: a data stream that never rolls over grows one backing index
 * forever. Replacing the built-in logs template also drops its lifecycle,
 * so ours brings one: `ilm_policy` when configured; otherwise on ES >=
 * 8.11 (or before the version is known) the data stream lifecycle with no
 * retention (`"lifecycle":{}`: ES's default rollover), and on older 8.x
 * the built-in ILM policy `logs` (rollover 30d/50gb, no delete). With
 * `retention:` in lifecycle or ilm mode the logs template carries the
 * default retention instead, and each rule adds a template (below).
 *
 * Idempotence: every body carries "version" = a 31-bit hash of the body
 * without it. sl_indexer_start() GETs each object and PUTs only when the
 * stored version differs, so restarts do not rewrite templates and any
 * change of the body (or of the options that shape it) is picked up.
 *
 * References (Elasticsearch 8.15, ECS; DESIGN.md says how sluice uses
 * them):
 *   https://www.elastic.co/guide/en/elasticsearch/reference/8.15/index-templates.html
 *   https://www.elastic.co/guide/en/elasticsearch/reference/8.15/data-streams.html
 *   https://www.elastic.co/guide/en/elasticsearch/reference/8.15/index-lifecycle-management.html
 *   https://www.elastic.co/guide/en/ecs/current/ecs-field-reference.html
 */
#ifndef SL_ES_SETUP_H
#define SL_ES_SETUP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sl_buf.h"
#include "bulk.h"

struct sl_es_setup_conf {
  enum sl_index_mode mode;
  const char *prefix;          /* daily prefix */
  const json_t *patterns;      /* array of strings or NULL (logs-*-*) */
  int priority;                /* data stream template priority */
  const char *ilm_policy;      /* index.lifecycle.name or NULL */
  int es_major, es_minor;      /* from GET /; 0.0 = not known yet */
  /* Retention (retention.h) or NULL. Modes lifecycle and ilm add one
   * index template per rule whose glob is an index pattern:
   * _index_template/sluice-retention-<name>, index_patterns
   * logs-<glob>-*, priority + (rules - index) (so the first rule wins, as
   * in the config), carrying data_retention or index.lifecycle.name
   * sluice-<name>; the logs template carries the default. */
  const struct sl_retention_conf *retention;
};

/* The optional component templates every index template composes. */
#define SL_ES_HOOK_LOGS "logs@custom"
#define SL_ES_HOOK_SLUICE "sluice@custom"

struct sl_es_object {
  char *path;        /* "_index_template/sluice-logs" (no leading '/') */
  char *body;        /* compact JSON including "version" */
  int64_t version;
};

/* 4 objects of our own plus one template per retention rule (<= 64). */
#define SL_ES_SETUP_MAX (4 + 64)

/* Build the objects to install; *n receives their count. Free with
 * sl_es_setup_free(). */
int sl_es_setup_build(const struct sl_es_setup_conf *c,
                      struct sl_es_object *out, size_t *n) SL_WUR;
void sl_es_setup_free(struct sl_es_object *objs, size_t n);

/* "version" of the object in a GET _index_template/<n> or
 * GET _component_template/<n> answer; -1 if there is none. */
int64_t sl_es_stored_version(const char *body, size_t len);

/* From the GET / answer: version.number into num (NUL-terminated, cut to
 * numlen-1), its major and minor in *major and *minor. SL_EPARSE if
 * absent. *opensearch is set
 * when version.distribution says "opensearch". */
int sl_es_parse_root(const char *body, size_t len, char *num, size_t numlen,
                     int *major, int *minor, int *opensearch) SL_WUR;

#endif
