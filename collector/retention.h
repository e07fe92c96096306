/* retention.h - how long each dataset's logs are kept (`retention:`), and
 * the job that makes Elasticsearch keep them that long.
 *
 *   retention:
 *     mode: lifecycle     # lifecycle | ilm | managed
 *     default: 14d        # datasets no rule matches
 *     interval: 1h        # how often the job runs
 *     rules:              # first match wins; match = dataset glob (fnmatch)
 *       - match: "audit*"
 *         keep: 365d
 *         name: audit     # optional: names its ILM policy and template
 *
 * Durations are whole numbers with d, h, m or s (ES time units), > 0.
 *
 * Modes (README "Retention" says when to use which):
 *   lifecycle  data stream lifecycle (ES >= 8.11): new streams get
 *              `data_retention` from the index templates es_setup.c builds
 *              (one per rule, index_patterns logs-<glob>-*, a higher
 *              priority for an earlier rule); existing sluice streams get
 *              PUT _data_stream/<n>/_lifecycle on every run.
 *   ilm        one ILM policy per rule, sluice-<name> (hot: rollover at
 *              30d or 50gb primary shard; delete after `keep`), attached
 *              by the same per-rule templates (index.lifecycle.name); the
 *              job PUTs the policies when their body changed and points
 *              existing streams at them (PUT <stream>/_settings).
 *   managed    the job deletes whole indices past their age: daily indices
 *              <index_prefix>-<dataset>-YYYY.MM.DD (age from the name:
 *              the end of that day) and backing indices of sluice's data
 *              streams (age from the next generation's creation date, i.e.
 *              when it stopped taking writes). Never a write index, never
 *              an index sluice did not name. One DELETE per index, logged.
 * "Sluice's" data streams are those whose index template is one of
 * sluice's (name starting "sluice-"); the job never touches another.
 *
 * The job runs on the collector's loop through the async ES client
 * (es_client.h): on start, then every `interval`. A SIGHUP restarts the
 * collector, so a changed config is applied at once. The CLI (`retention
 * plan|apply`) runs the same job once on a loop of its own.
 *
 * Ownership: struct sl_retention_conf owns its strings and rules
 * (sl_retention_conf_free). Plans own their entries (sl_retention_plan_free).
 */
#ifndef SL_RETENTION_H
#define SL_RETENTION_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "config.h"
#include "sl_buf.h"
#include "sl_conf.h"

enum sl_retention_mode {
  SL_RET_NONE = 0,   /* no `retention:`: sluice leaves retention to ES */
  SL_RET_LIFECYCLE,
  SL_RET_ILM,
  SL_RET_MANAGED,
};

struct sl_retention_rule {
  char *match;        /* fnmatch glob on the dataset */
  char *name;         /* the rule's name, or "rule-<index>" */
  int64_t keep_ms;
  char keep[24];      /* keep as an ES time value ("365d") */
  char *pattern;      /* index pattern "logs-<glob>-*", or NULL when the
                         glob has characters an index pattern lacks */
};

struct sl_retention_conf {
  enum sl_retention_mode mode;
  int64_t default_ms;
  char default_keep[24];
  int64_t interval_ms;
  struct sl_retention_rule *rules;
  size_t nrules;
};

/* "14d" -> ms. Units d, h, m, s; a whole number > 0. 0 or SL_EPARSE. */
int sl_retention_parse_duration(const char *s, int64_t *ms);
/* ms -> the largest unit that divides it ("365d", "90m"). */
void sl_retention_format_duration(int64_t ms, char *out, size_t len);

/* Read `retention:` of a loaded config (absent: mode SL_RET_NONE).
 * Errors: SL_ECONFIG with "file:line: retention.<key>: reason". Warnings
 * (rules that can never match; a rule list that reaches priority 200)
 * go to `warn` as lines "file:line: key: reason\n" (may be NULL). */
int sl_retention_conf_fill(const struct sl_conf *c,
                           struct sl_retention_conf *out, char *err,
                           size_t errlen, char *warn, size_t warnlen);
void sl_retention_conf_free(struct sl_retention_conf *rc);
/* Deep copy (for modules that outlive the config tree). */
int sl_retention_conf_copy(const struct sl_retention_conf *src,
                           struct sl_retention_conf *dst);

/* The rule for a dataset (first match), or NULL: the default applies. */
const struct sl_retention_rule *
sl_retention_match(const struct sl_retention_conf *rc, const char *dataset);

/* 1 when every name glob `b` matches is matched by `a` too (so a rule
 * `b` after a rule `a` never matches). Conservative: 0 when unsure. */
int sl_retention_glob_covers(const char *a, const char *b);

/* "<prefix>-<dataset>-YYYY.MM.DD" -> the UTC midnight of that day in ms
 * and the dataset (copied into ds, cut to dslen-1). 0, or SL_EPARSE when
 * the name is not one sluice makes with that prefix. */
int sl_retention_daily_date(const char *index, const char *prefix,
                            int64_t *day_ms, char *ds, size_t dslen);

/* "logs-<dataset>-<namespace>" -> dataset. 0 or SL_EPARSE. */
int sl_retention_stream_dataset(const char *stream, char *ds, size_t dslen);

/* ---- plans (pure) ------------------------------------------------------ */

struct sl_retention_del {
  char *index;
  char *rule;          /* the rule's glob, or "default" */
  char *dataset;
  int64_t age_ms;      /* since the index stopped taking writes */
  int64_t bytes;       /* store.size; -1 unknown */
  int outcome;         /* after an apply: 1 deleted (or already gone),
                          -1 failed, 0 not tried */
};

struct sl_retention_plan {
  json_t *rules;       /* [{"dataset","rule","keep"}] per dataset seen */
  struct sl_retention_del *del;
  size_t ndel;
  size_t updated;      /* after an apply: lifecycles, policies and stream
                          settings written */
};

/* What the job would do now: `streams` is the GET _data_stream answer,
 * `cat` the GET _cat/indices?format=json answer (h=index,creation.date,
 * store.size; bytes=b), either may be NULL. Deletions only in managed
 * mode. */
int sl_retention_plan_build(const struct sl_retention_conf *rc,
                            const char *prefix, const json_t *streams,
                            const json_t *cat, int64_t now_ms,
                            struct sl_retention_plan *out);
void sl_retention_plan_free(struct sl_retention_plan *p);

/* ---- the job ------------------------------------------------------------ */

struct sl_retention;

/* Copies what it keeps of es and rc. */
int sl_retention_new(uv_loop_t *loop, const struct sl_es_conf *es,
                     const struct sl_retention_conf *rc,
                     struct sl_retention **out, char *err, size_t errlen);
/* Run now, then every interval. */
void sl_retention_start(struct sl_retention *r);
/* One run for the CLI; `apply` 0 only plans (no write request at all).
 * cb gets 0 or an error code, and the plan (borrowed, valid during cb). */
typedef void (*sl_retention_once_cb)(void *arg, int rc, const char *detail,
                                     const struct sl_retention_plan *plan);
int sl_retention_once(struct sl_retention *r, int apply,
                      sl_retention_once_cb cb, void *arg);
/* A data stream sluice is writing to (the indexer's hook): one not seen
 * before gets its retention soon after it exists. */
void sl_retention_saw_target(struct sl_retention *r, const char *name,
                             size_t len);

int sl_retention_metrics(const struct sl_retention *r, struct sl_buf *out);
/* A JSON object for /debug/state (new reference). */
json_t *sl_retention_state(const struct sl_retention *r);
void sl_retention_close(struct sl_retention *r, void (*cb)(void *arg),
                        void *arg);

/* `sluice-collector -c FILE retention plan|apply [--json]`: exit code. */
int sl_retention_cli(const struct sl_conf *conf, int argc, char **argv);

#endif
