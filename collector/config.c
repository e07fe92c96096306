#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "input_tls.h"
#include "retention.h"
#include "sl_config.h"
#include "sl_err.h"
#include "sl_addr.h"
#include "sl_lj.h"
#ifdef HAVE_RDKAFKA
#include "input_kafka.h"
#endif

static const struct sl_conf_key http_keys[] = {
  { "listen", SL_CT_STR, "127.0.0.1:5041", "address of the status page, "
    "/metrics, /health, /ready, /debug/state (empty string: off)", NULL,
    NULL, 0 },
  SL_CONF_END
};

static const struct sl_conf_key input_ssl_keys[] = {
  { "enabled", SL_CT_BOOL, "false", "accept senders over TLS 1.2/1.3 only", NULL, NULL, 0 },
  { "cert", SL_CT_STR, NULL, "server certificate chain (PEM)", NULL, NULL, 0 },
  { "key", SL_CT_STR, NULL, "private key of cert (PEM)", NULL, NULL, 0 },
  { "ca", SL_CT_STR, NULL, "CA bundle (PEM) that issued the senders' client certificates", NULL, NULL, 0 },
  { "client_auth", SL_CT_ENUM, "required", "client certificates: required, optional (a bad one is still refused) or none", NULL, "required|optional|none", 0 },
  { "allowed_names", SL_CT_STR_LIST, NULL, "globs a client certificate's subject CN or a SAN DNS name must match (default: any name the CA signed)", NULL, NULL, 0 },
  SL_CONF_END
};

static const struct sl_conf_key input_keys[] = {
  { "type", SL_CT_ENUM, "lumberjack", "input type: lumberjack (Beats/sluice-agent senders) or kafka (consumer group)", NULL, "lumberjack|kafka", 0 },
  { "listen", SL_CT_STR, "0.0.0.0:5044", "host:port to accept Beats/Lumberjack v2 senders on", NULL, NULL, 0 },
  { "max_connections", SL_CT_INT, NULL, "connections accepted at once; more are closed on accept (default: what fits in the descriptor limit, ulimit -n, after spool, Elasticsearch and HTTP sockets)", NULL, NULL, 0 },
  { "idle_timeout", SL_CT_DURATION, "60s", "close a connection that sends nothing for this long (also one stalled inside a frame)", NULL, NULL, 0 },
  { "frame_timeout", SL_CT_DURATION, "60s", "close a connection that has not completed its current frame after this long, even if it trickles bytes (slow loris)", NULL, NULL, 0 },
  { "max_window", SL_CT_INT, "65536", "largest window (W frame) a sender may announce, and most events between two W frames", NULL, NULL, 0 },
  { "max_window_bytes", SL_CT_SIZE, "64MiB", "most event bytes (decompressed) in one window", NULL, NULL, 0 },
  { "max_frame", SL_CT_SIZE, "64MiB", "largest single frame (event or compressed block)", NULL, NULL, 0 },
  { "max_event_bytes", SL_CT_SIZE, "10MiB", "largest single event (J or D frame payload)", NULL, NULL, 0 },
  { "max_inflate", SL_CT_SIZE, "128MiB", "largest decompressed size of one C frame (zip-bomb guard)", NULL, NULL, 0 },
  { "max_inflate_ratio", SL_CT_INT, "100", "largest decompressed/compressed ratio of a C frame once it inflated past " SL_LJ_RATIO_GRACE_TEXT " (zip-bomb guard)", NULL, NULL, 0 },
  { "max_fields", SL_CT_INT, "10000", "most keys in one event (all levels); a bigger event is kept as an invalid event", NULL, NULL, 0 },
  { "max_depth", SL_CT_INT, "64", "deepest object/array nesting of one event; a deeper event is kept as an invalid event", NULL, NULL, 0 },
  { "timestamp_max_future", SL_CT_DURATION, "1d", "an @timestamp further ahead of the receive time makes the event invalid (0: no check)", NULL, NULL, 0 },
  { "timestamp_max_past", SL_CT_DURATION, "36500d", "an @timestamp further behind the receive time makes the event invalid (0: no check)", NULL, NULL, 0 },
  { "keepalive", SL_CT_DURATION, "5s", "send a keep-alive ack while a window waits this long for the spool", NULL, NULL, 0 },
  { "flush_bytes", SL_CT_SIZE, "4MiB", "spool (and partially ack) a window once this many bytes of it arrived; kafka: bytes of events per spool record", NULL, NULL, 0 },
  { "ssl", SL_CT_OBJ, NULL, "TLS for this listener (certificates are read again on SIGHUP)", input_ssl_keys, NULL, 0 },
  { "brokers", SL_CT_STR_LIST, NULL, "kafka: bootstrap brokers, host:port", NULL, NULL, 0 },
  { "topics", SL_CT_STR_LIST, NULL, "kafka: topic names, or ^regexes matching topic names", NULL, NULL, 0 },
  { "group_id", SL_CT_STR, "sluice", "kafka: consumer group; collectors with the same group share the partitions", NULL, NULL, 0 },
  { "commit_interval", SL_CT_DURATION, "1s", "kafka: commit stored offsets (those of spooled, fsync'ed messages) this often", NULL, NULL, 0 },
  { "max_message_bytes", SL_CT_SIZE, "1MiB", "kafka: a larger message becomes a dead-letter event", NULL, NULL, 0 },
  { "properties", SL_CT_MAP, NULL, "kafka: librdkafka properties (security.protocol, sasl.*, ssl.*, fetch.*...), checked at --check", NULL, NULL, 0 },
  SL_CONF_END
};

/* Keys that mean something for one input type only; written on another
 * type they are refused rather than silently ignored. The per-event
 * limits (max_fields, max_depth, timestamp_max_*) and flush_bytes apply
 * to both. */
static const char *const lumberjack_only[] = {
  "listen", "max_connections", "idle_timeout", "frame_timeout",
  "max_window", "max_window_bytes", "max_frame", "max_event_bytes",
  "max_inflate", "max_inflate_ratio", "keepalive", "ssl", NULL,
};
static const char *const kafka_only[] = {
  "brokers", "topics", "group_id", "commit_interval", "max_message_bytes",
  "properties", NULL,
};

static const struct sl_conf_key spool_keys[] = {
  { "segment_bytes", SL_CT_SIZE, "64MiB", "rotate spool segment files at this size", NULL, NULL, 0 },
  { "max_bytes", SL_CT_SIZE, "1GiB", "stop intake (backpressure) when this much is spooled and not yet indexed", NULL, NULL, 0 },
  { "commit_interval", SL_CT_DURATION, "5ms", "group commit window: one fsync for all batches that arrive within it", NULL, NULL, 0 },
  SL_CONF_END
};

static const struct sl_conf_key es_ssl_keys[] = {
  { "ca", SL_CT_STR, NULL, "CA file (PEM) to verify Elasticsearch", NULL, NULL, 0 },
  { "cert", SL_CT_STR, NULL, "client certificate (PEM) for Elasticsearch's TLS client authentication", NULL, NULL, 0 },
  { "key", SL_CT_STR, NULL, "private key (PEM) of cert", NULL, NULL, 0 },
  { "verify", SL_CT_BOOL, "true", "verify the server certificate and host name", NULL, NULL, 0 },
  SL_CONF_END
};

static const struct sl_conf_key es_retry_keys[] = {
  { "backoff_base", SL_CT_DURATION, "500ms", "first retry ceiling (full jitter)", NULL, NULL, 0 },
  { "backoff_max", SL_CT_DURATION, "60s", "largest retry ceiling", NULL, NULL, 0 },
  SL_CONF_END
};

static const struct sl_conf_key es_template_keys[] = {
  { "patterns", SL_CT_STR_LIST, "[\"logs-*-*\"]", "index patterns of sluice's index template", NULL, NULL, 0 },
  { "priority", SL_CT_INT, "150", "template priority: above the built-in logs (100), below Fleet integrations (200)", NULL, NULL, 0 },
  SL_CONF_END
};

static const struct sl_conf_key es_keys[] = {
  { "hosts", SL_CT_STR_LIST, NULL, "Elasticsearch URLs (round robin, failover)", NULL, NULL, SL_CK_REQUIRED },
  { "username", SL_CT_STR, NULL, "basic auth user", NULL, NULL, 0 },
  { "password", SL_CT_STR, NULL, "basic auth password (use ${ES_PASSWORD})", NULL, NULL, 0 },
  { "api_key", SL_CT_STR, NULL, "API key (base64 id:key), sent as Authorization: ApiKey", NULL, NULL, 0 },
  { "ssl", SL_CT_OBJ, NULL, "TLS towards Elasticsearch", es_ssl_keys, NULL, 0 },
  { "compression", SL_CT_BOOL, "true", "gzip request bodies", NULL, NULL, 0 },
  { "compression_level", SL_CT_INT, "1", "gzip level 0-9 (0: stored, 1: most of the gain for little CPU)", NULL, NULL, 0 },
  { "bulk_max_bytes", SL_CT_SIZE, "5MiB", "largest uncompressed _bulk body", NULL, NULL, 0 },
  { "bulk_max_events", SL_CT_INT, "5000", "most items per _bulk request", NULL, NULL, 0 },
  { "flush_interval", SL_CT_DURATION, "1s", "send a partial bulk after this long", NULL, NULL, 0 },
  { "max_inflight", SL_CT_INT, "4", "_bulk requests in flight at once", NULL, NULL, 0 },
  { "max_pending_events", SL_CT_INT, "50000", "events held by the indexer before it pushes back on the spool reader", NULL, NULL, 0 },
  { "timeout", SL_CT_DURATION, "60s", "per-request timeout (then retried)", NULL, NULL, 0 },
  { "retry", SL_CT_OBJ, NULL, "retry backoff", es_retry_keys, NULL, 0 },
  { "index_mode", SL_CT_ENUM, "data_stream", "data_stream: logs-<dataset>-<namespace>; daily: <index_prefix>-<dataset>-YYYY.MM.DD", NULL, "data_stream|daily", 0 },
  { "index_prefix", SL_CT_STR, "sluice", "prefix of daily indices", NULL, NULL, 0 },
  { "namespace", SL_CT_STR, "default", "data_stream.namespace when the event has none", NULL, NULL, 0 },
  { "deadletter_index", SL_CT_STR, "logs-sluice.deadletter-default", "where rejected documents go", NULL, NULL, 0 },
  { "template", SL_CT_OBJ, NULL, "index template sluice installs", es_template_keys, NULL, 0 },
  { "ilm_policy", SL_CT_STR, NULL, "ILM policy name set in the template (default: data stream lifecycle on ES >= 8.11, else the built-in logs policy)", NULL, NULL, 0 },
  { "pipeline", SL_CT_STR, NULL, "ingest pipeline every event goes through (_bulk?pipeline=; replaces the index's default_pipeline, final_pipeline still runs; _none: no default pipeline)", NULL, NULL, 0 },
  SL_CONF_END
};

/* Durations here are strings checked by retention.c (d/h/m/s only: they
 * become ES time values). `mode` is required so that an absent
 * `retention:` stays absent (sluice then leaves retention to ES). */
static const struct sl_conf_key retention_rule_keys[] = {
  { "match", SL_CT_STR, NULL, "dataset glob (fnmatch); the first matching rule wins", NULL, NULL, SL_CK_REQUIRED },
  { "keep", SL_CT_STR, NULL, "how long to keep it: whole number with d, h, m or s (365d)", NULL, NULL, SL_CK_REQUIRED },
  { "name", SL_CT_STR, NULL, "names its ILM policy sluice-<name> and template sluice-retention-<name> (default rule-<index>)", NULL, NULL, 0 },
  SL_CONF_END
};

static const struct sl_conf_key retention_keys[] = {
  { "mode", SL_CT_ENUM, NULL, "lifecycle: data stream lifecycle (ES >= 8.11); ilm: an ILM policy per rule; managed: the collector deletes old indices", NULL, "lifecycle|ilm|managed", SL_CK_REQUIRED },
  { "default", SL_CT_STR, "14d", "retention of datasets no rule matches", NULL, NULL, 0 },
  { "interval", SL_CT_STR, "1h", "how often the retention job runs (managed: deletes; others: re-sync)", NULL, NULL, 0 },
  { "rules", SL_CT_OBJ_LIST, NULL, "per-dataset retention, first match wins", retention_rule_keys, NULL, 0 },
  SL_CONF_END
};

static const struct sl_conf_key archive_keys[] = {
  { "path", SL_CT_STR, NULL, "archive root: <dataset>/YYYY/MM/DD/HH-<seq>.ndjson.gz", NULL, NULL, SL_CK_REQUIRED },
  { "keep", SL_CT_DURATION, "30d", "delete archive files whose hour ended longer ago (0: never)", NULL, NULL, 0 },
  { "max_total_bytes", SL_CT_SIZE, "50GiB", "delete the oldest archive files above this total (0: no limit)", NULL, NULL, 0 },
  { "max_file_bytes", SL_CT_SIZE, "256MiB", "start the next file of an hour at this size", NULL, NULL, 0 },
  SL_CONF_END
};

const struct sl_conf_key sl_collector_schema[] = {
  { "data_dir", SL_CT_STR, NULL, "state directory (spool, corrupt/, deadletter/)", NULL, NULL, SL_CK_REQUIRED },
  { "log_level", SL_CT_ENUM, "info", "self-log level", NULL, "debug|info|warn|warning|error", 0 },
  { "log_format", SL_CT_ENUM, "json", "self-log lines on stderr: json (journald keeps them) or text (--log-format overrides)", NULL, "json|text", 0 },
  { "shutdown_timeout", SL_CT_DURATION, "30s", "on SIGTERM, wait this long for in-flight work", NULL, NULL, 0 },
  { "http", SL_CT_OBJ, NULL, "metrics and health endpoint", http_keys, NULL, 0 },
  { "inputs", SL_CT_OBJ_LIST, NULL, "listeners", input_keys, NULL, SL_CK_REQUIRED },
  { "spool", SL_CT_OBJ, NULL, "durable queue between inputs and outputs", spool_keys, NULL, 0 },
  { "elasticsearch", SL_CT_OBJ, NULL, "Elasticsearch output (elasticsearch, archive or both)", es_keys, NULL, 0 },
  { "archive", SL_CT_OBJ, NULL, "local gzip NDJSON archive of every event (archive.h)", archive_keys, NULL, 0 },
  { "retention", SL_CT_OBJ, NULL, "how long datasets are kept in Elasticsearch (README: Retention)", retention_keys, NULL, 0 },
  SL_CONF_END
};

/* Load every listener's certificates and keys as the listener will: a
 * file that is missing, unreadable or does not match fails --check, and a
 * SIGHUP with a bad new certificate is refused before the running
 * listener (and its context) is touched. */
static int
check_input_tls(const struct sl_conf *c, char *err, size_t errlen)
{
  const json_t *inputs = sl_conf_get(sl_conf_root(c), "inputs");
  struct sl_input_tls *t;
  char what[48], msg[512];
  size_t i;
  int rc, ret = 0;

  for (i = 0; i < json_array_size(inputs); i++) {
    const json_t *ssl = sl_conf_get(json_array_get(inputs, i), "ssl");
    const char *sub, *sep;
    const json_t *node = ssl;

    snprintf(what, sizeof(what), "inputs[%zu].ssl", i);
    msg[0] = '\0';
    rc = sl_input_tls_new(ssl, what, &t, msg, sizeof(msg));
    sl_input_tls_free(t);
    if (rc == 0)
      continue;
    /* msg is "inputs[i].ssl[.key]: reason": point at that key's line. */
    sep = strstr(msg, ": ");
    sub = msg + strlen(what);
    if (sep && *sub == '.') {
      char key[32];
      snprintf(key, sizeof(key), "%.*s", (int)(sep - sub - 1), sub + 1);
      if (sl_conf_get(ssl, key))
        node = sl_conf_get(ssl, key);
    }
    if (sep) {
      char path[64];
      snprintf(path, sizeof(path), "%.*s", (int)(sep - msg), msg);
      sl_conf_error(c, node, path, err, errlen, "%s", sep + 2);
    } else
      sl_conf_error(c, node, what, err, errlen, "%s", msg);
    ret = ret ? ret : rc;
  }
  return ret;
}

/* Numeric ranges the schema table cannot express. Bounds are what the
 * code can honour (a u32 on the wire, a port) or past which a value is
 * surely a typo that would misbehave silently (max_connections: 0 refused
 * every sender, -5 meant unlimited). */
struct range {
  const char *key;
  int64_t min, max;
  const char *why;
};

#define KiB 1024LL
#define MiB (1024LL * KiB)
#define GiB (1024LL * MiB)
#define DAY_MS (86400LL * 1000)

static const struct range input_ranges[] = {
  { "max_connections", 1, 1000000, "must be 1..1000000" },
  { "idle_timeout", 0, 7 * DAY_MS, "must be 0 (off) .. 7d" },
  { "frame_timeout", 0, 7 * DAY_MS, "must be 0 (off) .. 7d" },
  { "max_window", 1, 1 << 24, "must be 1..16777216 events" },
  { "max_window_bytes", 1 * KiB, 4 * GiB, "must be 1KiB..4GiB" },
  /* A frame length is a u32 on the wire; 1 GiB is already absurd. */
  { "max_frame", 64, 1 * GiB, "must be 64B..1GiB" },
  { "max_event_bytes", 64, 1 * GiB, "must be 64B..1GiB" },
  { "max_inflate", 1 * KiB, 16 * GiB, "must be 1KiB..16GiB" },
  /* zlib cannot exceed ~1032:1. */
  { "max_inflate_ratio", 2, 1100, "must be 2..1100" },
  { "max_fields", 1, 10000000, "must be 1..10000000" },
  { "max_depth", 1, 10000, "must be 1..10000" },
  { "timestamp_max_future", 0, 365000 * DAY_MS, "must be 0 (off) .. 365000d" },
  { "timestamp_max_past", 0, 365000 * DAY_MS, "must be 0 (off) .. 365000d" },
  { "keepalive", 1, DAY_MS, "must be 1ms..1d" },
  { "flush_bytes", 1 * KiB, 1 * GiB, "must be 1KiB..1GiB" },
  { NULL, 0, 0, NULL }
};

static const struct range top_ranges[] = {
  { "shutdown_timeout", 0, DAY_MS, "must be 0..1d" },
  { "spool.segment_bytes", 64 * KiB, 64 * GiB, "must be 64KiB..64GiB" },
  { "spool.max_bytes", 1 * MiB, 1LL << 50, "must be 1MiB..1PiB" },
  { "spool.commit_interval", 0, 60000, "must be 0..60s" },
  { "elasticsearch.compression_level", 0, 9, "must be 0..9 (0: stored)" },
  { "elasticsearch.bulk_max_bytes", 1 * KiB, 2 * GiB, "must be 1KiB..2GiB" },
  { "elasticsearch.bulk_max_events", 1, 1000000, "must be 1..1000000" },
  { "elasticsearch.max_inflight", 1, 64, "must be 1..64" },
  { "elasticsearch.max_pending_events", 1, 100000000,
    "must be 1..100000000" },
  { "elasticsearch.timeout", 1, DAY_MS, "must be 1ms..1d" },
  { "elasticsearch.retry.backoff_base", 1, DAY_MS, "must be 1ms..1d" },
  { "elasticsearch.retry.backoff_max", 1, 7 * DAY_MS, "must be 1ms..7d" },
  { "elasticsearch.flush_interval", 1, DAY_MS, "must be 1ms..1d" },
  { NULL, 0, 0, NULL }
};

static int
check_ranges(const struct sl_conf *c, const json_t *obj, const char *prefix,
             const struct range *r, char *err, size_t errlen)
{
  char path[128];
  json_t *v;
  int rc = 0;

  for (; r->key; r++) {
    v = sl_conf_get(obj, r->key);
    if (!json_is_integer(v))
      continue;
    if (json_integer_value(v) >= r->min && json_integer_value(v) <= r->max)
      continue;
    snprintf(path, sizeof(path), "%s%s", prefix, r->key);
    rc = sl_conf_error(c, v, path, err, errlen, "%s (got %lld)", r->why,
                       (long long)json_integer_value(v));
  }
  return rc;
}

int
sl_es_pipeline_valid(const char *s)
{
  size_t i, n = s ? strlen(s) : 0;

  if (n == 0 || n > SL_ES_PIPELINE_MAX)
    return 0;
  for (i = 0; i < n; i++) {
    char ch = s[i];

    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' ||
          ch == '@'))
      return 0;
  }
  return 1;
}

/* The pipeline goes into the _bulk URL as it is: only characters that
 * need no percent-encoding there (and that ES ids use). */
static int
check_pipeline(const struct sl_conf *c, const json_t *es, char *err,
               size_t errlen)
{
  const json_t *v = sl_conf_get(es, "pipeline");
  const char *s = json_string_value(v);

  if (v == NULL || sl_es_pipeline_valid(s))
    return 0;
  if (s == NULL || s[0] == '\0')
    return sl_conf_error(c, v, "elasticsearch.pipeline", err, errlen,
                         "must not be empty (leave the key out for no "
                         "pipeline)");
  return sl_conf_error(c, v, "elasticsearch.pipeline", err, errlen,
                       "'%s' is not a pipeline id: use up to %d letters, "
                       "digits and - _ . @", s, SL_ES_PIPELINE_MAX);
}

static int
check_listen(const struct sl_conf *c, const json_t *obj, const char *key,
             const char *path, char *err, size_t errlen)
{
  const char *s = sl_conf_str(obj, key);

  if (s == NULL || !s[0] || sl_addr_listen_valid(s))
    return 0;
  return sl_conf_error(c, sl_conf_get(obj, key), path, err, errlen,
                       "want host:port with a port 0..65535 (got '%s')",
                       s);
}

static int
check_hosts(const struct sl_conf *c, const json_t *es, char *err,
            size_t errlen)
{
  json_t *h = sl_conf_get(es, "hosts"), *v;
  size_t i;

  if (json_is_array(h) && json_array_size(h) == 0)
    goto bad;
  if (json_is_string(h) && json_string_value(h)[0] == '\0')
    goto bad;
  json_array_foreach(h, i, v)
    if (!json_is_string(v) || json_string_value(v)[0] == '\0')
      goto bad;
  return 0;
bad:
  return sl_conf_error(c, h, "elasticsearch.hosts", err, errlen,
                       "need one or more non-empty URLs");
}

/* One inputs[] entry: keys of the other type, then the type's own checks. */
static int
check_input_type(const struct sl_conf *c, const json_t *in, size_t idx,
                 char *err, size_t errlen)
{
  const char *type = sl_conf_str(in, "type");
  int kafka = type && strcmp(type, "kafka") == 0;
  const char *const *other = kafka ? lumberjack_only : kafka_only;
  const json_t *v;
  char kp[96];
  size_t i;
  int rc = 0;

  /* A refused type was replaced by the default: judging the keys by it
   * would only report consequences. */
  snprintf(kp, sizeof(kp), "inputs[%zu].type", idx);
  if (sl_conf_failed(c, kp))
    return 0;
  for (i = 0; other[i]; i++) {
    v = sl_conf_get(in, other[i]);
    /* Line 0: filled in from the schema default, not written. */
    if (v && sl_conf_line(c, v) > 0) {
      snprintf(kp, sizeof(kp), "inputs[%zu].%s", idx, other[i]);
      rc = sl_conf_error(c, v, kp, err, errlen,
                         "not a key of type %s inputs",
                         kafka ? "kafka" : "lumberjack");
    }
  }
  if (!kafka)
    return rc;
#ifdef HAVE_RDKAFKA
  {
    char kerr[512] = "";

    /* Its first problem only: librdkafka's checks stop there. */
    if (sl_input_kafka_check(c, in, idx, kerr, sizeof(kerr)) != 0)
      rc = sl_conf_error_text(c, kerr, err, errlen);
  }
  return rc;
#else
  return sl_conf_error(c, sl_conf_get(in, "type"), kp, err, errlen,
                       "this sluice-collector was built without librdkafka");
#endif
}

/* Keep the first failure's code, run on. */
#define KEEP(rc, expr)                                                       \
  do {                                                                       \
    int r_ = (expr);                                                         \
    if ((rc) == 0)                                                           \
      (rc) = r_;                                                             \
  } while (0)

int
sl_collector_conf_check(const struct sl_conf *c, char *err, size_t errlen)
{
  const json_t *root = sl_conf_root(c);
  const json_t *es = sl_conf_get(root, "elasticsearch");
  const json_t *inputs = sl_conf_get(root, "inputs"), *in;
  char prefix[64], path[96], rerr[1024] = "";
  size_t i;
  int rc = 0;

  /* Every check runs and reports all it finds (sl_conf_error adds to the
   * config's list, err keeps the first): --check lists every error. */
  if (err && errlen)
    err[0] = '\0';
  json_array_foreach(inputs, i, in)
    KEEP(rc, check_input_type(c, in, i, err, errlen));
  if (es == NULL && sl_conf_get(root, "archive") == NULL)
    KEEP(rc, sl_conf_error(c, NULL, "elasticsearch", err, errlen,
                           "required key is missing (or configure "
                           "archive:)"));
  KEEP(rc, check_ranges(c, root, "", top_ranges, err, errlen));
  if (es != NULL) {
    KEEP(rc, check_hosts(c, es, err, errlen));
    KEEP(rc, check_pipeline(c, es, err, errlen));
    /* sl_es_conf_fill refuses this at start; say it at --check. */
    if (!sl_conf_get(es, "ssl.cert") != !sl_conf_get(es, "ssl.key"))
      KEEP(rc, sl_conf_error(c, sl_conf_get(es, "ssl"), "elasticsearch.ssl",
                             err, errlen, "cert and key go together"));
  }
  KEEP(rc, check_listen(c, root, "http.listen", "http.listen", err, errlen));
  json_array_foreach(inputs, i, in) {
    snprintf(prefix, sizeof(prefix), "inputs[%zu].", i);
    snprintf(path, sizeof(path), "%slisten", prefix);
    KEEP(rc, check_listen(c, in, "listen", path, err, errlen));
    KEEP(rc, check_ranges(c, in, prefix, input_ranges, err, errlen));
  }
  KEEP(rc, check_input_tls(c, err, errlen));
  /* Retention stops at its first problem (its rules build on each
   * other). */
  if (sl_collector_conf_check_retention(c, rerr, sizeof(rerr)) != 0)
    KEEP(rc, sl_conf_error_text(c, rerr, err, errlen));
  return rc;
}

int
sl_collector_conf_check_retention(const struct sl_conf *c, char *err,
                                  size_t errlen)
{
  struct sl_retention_conf rc;
  int rv = sl_retention_conf_fill(c, &rc, err, errlen, NULL, 0);

  if (rv == 0)
    sl_retention_conf_free(&rc);
  return rv;
}

/* ---- the typed `elasticsearch:` view ------------------------------------ */

/* An empty string means "not set", as a key written with no value does. */
static const char *
str_or(const json_t *o, const char *key, const char *def)
{
  const char *s = sl_conf_str(o, key);

  return s && s[0] ? s : def;
}

/* "host:9200" or "https://h/" -> "http://host:9200", "https://h". */
static int
add_host(struct sl_es_conf *c, const char *h)
{
  size_t n = strlen(h);
  int has_scheme = strstr(h, "://") != NULL;
  char *s;

  while (n && h[n - 1] == '/')
    n--;
  if (n == 0)
    return SL_ECONFIG;
  s = malloc(n + 8);
  if (!s)
    return SL_ENOMEM;
  snprintf(s, n + 8, "%s%.*s", has_scheme ? "" : "http://", (int)n, h);
  c->hosts[c->nhosts++] = s;
  return 0;
}

static int
fill_hosts(struct sl_es_conf *c, const json_t *hosts)
{
  size_t i, n = json_is_array(hosts) ? json_array_size(hosts) : 1;
  int rc = 0;

  c->hosts = calloc(n ? n : 1, sizeof *c->hosts);
  if (!c->hosts)
    return SL_ENOMEM;
  if (json_is_string(hosts)) {
    rc = add_host(c, json_string_value(hosts));
  } else if (json_is_array(hosts)) {
    for (i = 0; i < n && !rc; i++) {
      const json_t *h = json_array_get(hosts, i);

      rc = json_is_string(h) ? add_host(c, json_string_value(h))
                             : SL_ECONFIG;
    }
  }
  if (!rc && c->nhosts == 0)
    rc = SL_ECONFIG;
  return rc;
}

int
sl_es_conf_fill(const json_t *es, const char *data_dir,
                struct sl_es_conf *c, char *err, size_t errlen)
{
  const char *key = NULL, *mode;
  int rc;

  memset(c, 0, sizeof *c);
  rc = fill_hosts(c, sl_conf_get(es, "hosts"));
  if (rc) {
    snprintf(err, errlen, "elasticsearch.hosts: need one or more URLs");
    goto fail;
  }
  c->username = str_or(es, "username", NULL);
  c->password = str_or(es, "password", NULL);
  c->api_key = str_or(es, "api_key", NULL);
  c->ca = str_or(es, "ssl.ca", NULL);
  c->cert = str_or(es, "ssl.cert", NULL);
  c->key = str_or(es, "ssl.key", NULL);
  c->verify = sl_conf_bool(es, "ssl.verify", 1);
  c->timeout_ms = (uint64_t)sl_conf_int(es, "timeout", 60000);
  c->compression = sl_conf_bool(es, "compression", 1);
  c->compression_level = (int)sl_conf_int(es, "compression_level", 1);
  c->bulk_max_bytes = (size_t)sl_conf_int(es, "bulk_max_bytes", 5 << 20);
  c->bulk_max_events = (size_t)sl_conf_int(es, "bulk_max_events", 5000);
  c->flush_ms = (uint64_t)sl_conf_int(es, "flush_interval", 1000);
  c->max_inflight = (size_t)sl_conf_int(es, "max_inflight", 4);
  c->max_pending = (uint64_t)sl_conf_int(es, "max_pending_events", 50000);
  c->backoff_base_ms = (uint64_t)sl_conf_int(es, "retry.backoff_base", 500);
  c->backoff_max_ms = (uint64_t)sl_conf_int(es, "retry.backoff_max", 60000);
  if (!c->cert != !c->key) {
    snprintf(err, errlen, "elasticsearch.ssl: cert and key go together");
    rc = SL_ECONFIG;
    goto fail;
  }
  if (c->bulk_max_bytes < 1024 || (int64_t)c->bulk_max_bytes < 0)
    key = "bulk_max_bytes";
  else if (c->bulk_max_events < 1 || c->bulk_max_events > 1000000)
    key = "bulk_max_events";
  else if (c->compression_level < 0 || c->compression_level > 9)
    key = "compression_level";
  else if (c->max_inflight < 1 || c->max_inflight > 64)
    key = "max_inflight";
  else if (c->max_pending < 1)
    key = "max_pending_events";
  else if (c->timeout_ms < 1)
    key = "timeout";
  if (key) {
    snprintf(err, errlen, "elasticsearch.%s: out of range", key);
    rc = SL_ECONFIG;
    goto fail;
  }
  mode = sl_conf_str(es, "index_mode");
  c->index_mode = mode && strcmp(mode, "daily") == 0 ? SL_INDEX_DAILY
                                                     : SL_INDEX_DATA_STREAM;
  c->index_prefix = str_or(es, "index_prefix", "sluice");
  c->namespace_ = str_or(es, "namespace", "default");
  c->deadletter_index = str_or(es, "deadletter_index",
                               "logs-sluice.deadletter-default");
  c->data_dir = data_dir ? data_dir : ".";
  c->template_patterns = sl_conf_get(es, "template.patterns");
  if (c->template_patterns && !json_is_array(c->template_patterns)) {
    snprintf(err, errlen, "elasticsearch.template.patterns: want a list");
    rc = SL_ECONFIG;
    goto fail;
  }
  c->template_priority = (int)sl_conf_int(es, "template.priority", 150);
  c->ilm_policy = str_or(es, "ilm_policy", NULL);
  c->pipeline = sl_conf_str(es, "pipeline");
  if (c->pipeline && !sl_es_pipeline_valid(c->pipeline)) {
    snprintf(err, errlen, "elasticsearch.pipeline: not a pipeline id");
    rc = SL_ECONFIG;
    goto fail;
  }
  return 0;
fail:
  sl_es_conf_free(c);
  return rc;
}

void
sl_es_conf_free(struct sl_es_conf *c)
{
  size_t i;

  for (i = 0; i < c->nhosts; i++)
    free(c->hosts[i]);
  free(c->hosts);
  c->hosts = NULL;
  c->nhosts = 0;
}
