/* config.c - the agent's configuration schema and its typed view. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "out.h"
#include "sl_config.h"
#include "sl_err.h"
#include "sl_addr.h"

static const struct sl_conf_key timestamp_keys[] = {
  { "field", SL_CT_STR, NULL, "key (json) or group (regex) holding the time",
    NULL, NULL, 0 },
  { "layouts", SL_CT_STR_LIST, NULL,
    "strptime-like layouts tried in order before the built-in formats",
    NULL, NULL, 0 },
  { "timezone", SL_CT_STR, NULL, "zone for this field (default: the "
    "input's)", NULL, NULL, 0 },
  SL_CONF_END
};

static const struct sl_conf_key correlation_keys[] = {
  { "pattern", SL_CT_STR, NULL, "PCRE2 pattern with a group named id",
    NULL, NULL, SL_CK_REQUIRED },
  { "field", SL_CT_ENUM, "http.request.id", "the field the id fills", NULL,
    "trace.id|span.id|transaction.id|http.request.id", 0 },
  SL_CONF_END
};

static const struct sl_conf_key regex_keys[] = {
  { "pattern", SL_CT_STR, NULL, "PCRE2 pattern; named groups become fields",
    NULL, NULL, SL_CK_REQUIRED },
  { "fields", SL_CT_MAP, NULL, "group name -> ECS path", NULL, NULL, 0 },
  { "types", SL_CT_MAP, NULL, "group name -> long|double|boolean|keyword",
    NULL, NULL, 0 },
  SL_CONF_END
};

static const struct sl_conf_key then_keys[] = {
  { "parser", SL_CT_ENUM, NULL, "the second parser", NULL,
    "json|raw|logfmt|nginx|nginx_error|apache|apache_error|syslog|regex",
    SL_CK_REQUIRED },
  { "field", SL_CT_ENUM, "message", "the field it reads", NULL, "message",
    0 },
  { "regex", SL_CT_OBJ, NULL, "{pattern, fields, types} of parser regex",
    regex_keys, NULL, 0 },
  SL_CONF_END
};

/* One entry of inputs[]. Keys are read by tail (paths .. partial_timeout)
 * and by the parse context (parser .. fields). */
static const struct sl_conf_key fingerprint_keys[] = {
  { "offset", SL_CT_SIZE, "0",
    "where the bytes that identify a file start (skip a constant header)",
    NULL, NULL, 0 },
  { "length", SL_CT_SIZE, "1024",
    "how many bytes identify a file (64B..64KiB); shorter files are known "
    "by device+inode until they reach it", NULL, NULL, 0 },
  SL_CONF_END
};

static const struct sl_conf_key input_keys[] = {
  { "type", SL_CT_ENUM, "file", "input type", NULL, "file", 0 },
  { "id", SL_CT_STR, NULL,
    "name of the input in metrics (label input=\"<id>\"): letters, "
    "digits, '.', '_', '-', unique (default: its dataset when no other "
    "input has it, else input-<n>, n counting from 0)", NULL, NULL, 0 },
  { "paths", SL_CT_STR_LIST, NULL,
    "glob patterns of files to tail", NULL, NULL, SL_CK_REQUIRED },
  { "exclude", SL_CT_STR_LIST, NULL,
    "glob patterns of files to skip", NULL, NULL, 0 },
  { "start_at", SL_CT_ENUM, "beginning",
    "where to start in a file the registry does not know", NULL,
    "beginning|end", 0 },
  { "scan_interval", SL_CT_DURATION, "10s",
    "how often the globs are re-expanded (besides inotify)", NULL, NULL, 0 },
  { "close_inactive", SL_CT_DURATION, "5m",
    "close a file after it had no new data for this long", NULL, NULL, 0 },
  { "partial_timeout", SL_CT_DURATION, "5s",
    "ship a last line without newline after it stayed unchanged this long",
    NULL, NULL, 0 },
  { "max_line_bytes", SL_CT_SIZE, "1MiB",
    "longer lines are truncated and tagged log.flags: truncated", NULL, NULL,
    0 },
  { "mode", SL_CT_ENUM, "inotify",
    "how growth is noticed: inotify on directories (polling only where a "
    "watch fails) or poll (fstat every 250ms, e.g. NFS)", NULL,
    "inotify|poll", 0 },
  { "harvester_limit", SL_CT_INT, "0",
    "most files of this input open at once (0: only the global limit)",
    NULL, NULL, 0 },
  { "close_removed", SL_CT_BOOL, "true",
    "close a deleted file once it was read to its end and has not grown "
    "for 1 s (or close_inactive if shorter)", NULL, NULL, 0 },
  { "clean_removed", SL_CT_BOOL, "true",
    "drop registry entries of files no longer on disk", NULL, NULL, 0 },
  { "clean_inactive", SL_CT_DURATION, "0s",
    "drop registry entries of files not read for this long (0s: off; "
    "must be > scan_interval)", NULL, NULL, 0 },
  { "fingerprint", SL_CT_OBJ, NULL,
    "file identity: a hash of the first bytes (as Filebeat's "
    "file_identity.fingerprint)", fingerprint_keys, NULL, 0 },
  { "read_gz", SL_CT_BOOL, "false",
    "read rotated *.gz files matched by paths, once each (backfills)", NULL,
    NULL, 0 },
  { "parser", SL_CT_ENUM, "raw",
    "how a line becomes an event: json (keys to ECS/app.*), raw, logfmt, "
    "nginx / apache (access logs), nginx_error, apache_error, syslog (RFC "
    "3164/5424), cri / docker (container runtime files), regex (PCRE2 "
    "named groups)", NULL,
    "json|raw|logfmt|nginx|nginx_error|apache|apache_error|syslog|cri|"
    "docker|regex", 0 },
  { "dataset", SL_CT_STR, NULL, "event.dataset and data_stream.dataset "
    "(default: nginx.access, nginx.error, apache.access, apache.error for "
    "those parsers, else generic)", NULL, NULL, 0 },
  { "namespace", SL_CT_STR, "default", "data_stream.namespace", NULL, NULL,
    0 },
  { "service", SL_CT_STR, NULL, "service.name", NULL, NULL, 0 },
  { "fields", SL_CT_MAP, NULL, "extra labels.* added to every event", NULL,
    NULL, 0 },
  { "include_lines", SL_CT_STR_LIST, NULL,
    "PCRE2 patterns: ship only lines matching one (before parsing)", NULL,
    NULL, 0 },
  { "exclude_lines", SL_CT_STR_LIST, NULL,
    "PCRE2 patterns: drop lines matching one (counted, registry moves on)",
    NULL, NULL, 0 },
  { "drop_fields", SL_CT_STR_LIST, NULL,
    "dotted event paths to remove", NULL, NULL, 0 },
  { "rename", SL_CT_MAP, NULL, "move event fields {from: to}", NULL, NULL,
    0 },
  { "add_fields", SL_CT_MAP, NULL,
    "set event fields {path: value}, e.g. service.name: checkout", NULL,
    NULL, 0 },
  { "redact", SL_CT_ANY, NULL,
    "credit_card|secrets|email presets and {pattern, replacement} rules, "
    "applied to the line before it leaves the host", NULL, NULL, 0 },
  { "multiline", SL_CT_ANY, NULL,
    "join lines into one event: java|python|go|ruby, or {pattern, negate, "
    "match: after|before, max_lines: 500, max_bytes: 10MiB, timeout: 5s}",
    NULL, NULL, 0 },
  { "timezone", SL_CT_STR, NULL,
    "zone of timestamps without an offset: IANA name or +hh:mm (default: "
    "the host's)", NULL, NULL, 0 },
  { "timestamp", SL_CT_OBJ, NULL,
    "{field, layouts, timezone}: the field holding @timestamp and its "
    "strptime-like layouts", timestamp_keys, NULL, 0 },
  { "regex", SL_CT_OBJ, NULL,
    "parser regex: {pattern, fields: {group: ecs.path}, types: {group: "
    "long|double|boolean|keyword}}", regex_keys, NULL, 0 },
  { "correlation", SL_CT_OBJ_LIST, NULL,
    "[{pattern, field}]: ids picked out of the message by PCRE2 rules",
    correlation_keys, NULL, 0 },
  { "then", SL_CT_OBJ, NULL,
    "{parser, field: message, regex}: a second parser on the message "
    "(parser cri or docker)", then_keys, NULL, 0 },
  SL_CONF_END
};

static const struct sl_conf_key http_keys[] = {
  { "listen", SL_CT_STR, "127.0.0.1:5076",
    "address of /metrics, /health, /ready, /debug/state (read by status; "
    "empty string: off)", NULL, NULL, 0 },
  SL_CONF_END
};

static const struct sl_conf_key queue_keys[] = {
  { "max_bytes", SL_CT_SIZE, "8MiB",
    "cap on unacknowledged input bytes and on queued batch bytes "
    "(backpressure stops reading files)", NULL, NULL, 0 },
  SL_CONF_END
};

static const struct sl_conf_key backoff_keys[] = {
  { "base", SL_CT_DURATION, "500ms", "first reconnect delay ceiling", NULL,
    NULL, 0 },
  { "max", SL_CT_DURATION, "30s", "largest reconnect delay", NULL, NULL, 0 },
  SL_CONF_END
};

static const struct sl_conf_key ssl_keys[] = {
  { "enabled", SL_CT_BOOL, "false", "lumberjack: TLS (OpenSSL)", NULL, NULL,
    0 },
  { "ca", SL_CT_STR, NULL,
    "PEM CA bundle to verify the receiver (default: system store)", NULL,
    NULL, 0 },
  { "cert", SL_CT_STR, NULL, "PEM client certificate chain (mutual TLS)",
    NULL, NULL, 0 },
  { "key", SL_CT_STR, NULL, "PEM private key of cert", NULL, NULL, 0 },
  { "verify", SL_CT_BOOL, "true",
    "verify the receiver's certificate and host name", NULL, NULL, 0 },
  SL_CONF_END
};

static const struct sl_conf_key sasl_keys[] = {
  { "mechanism", SL_CT_ENUM, NULL, "kafka: SASL mechanism", NULL,
    "PLAIN|SCRAM-SHA-256|SCRAM-SHA-512", 0 },
  { "username", SL_CT_STR, NULL, "kafka: SASL user", NULL, NULL, 0 },
  { "password", SL_CT_STR, NULL, "kafka: SASL password", NULL, NULL, 0 },
  SL_CONF_END
};

static const struct sl_conf_key output_keys[] = {
  { "type", SL_CT_ENUM, "lumberjack", "where events go", NULL,
    "lumberjack|tcp|file|stdout|kafka", 0 },
  { "hosts", SL_CT_STR_LIST, NULL,
    "lumberjack/tcp: host:port list (load balanced, failover)", NULL, NULL,
    0 },
  { "window", SL_CT_INT, "2048",
    "lumberjack: events per window (caps batch_max_events)", NULL, NULL, 0 },
  { "compression_level", SL_CT_INT, "3",
    "lumberjack: zlib level 1-9 for the C frame, 0 sends plain J frames",
    NULL, NULL, 0 },
  { "timeout", SL_CT_DURATION, "30s",
    "lumberjack: no ack progress for this long -> reconnect and resend",
    NULL, NULL, 0 },
  { "max_inflight", SL_CT_INT, "4",
    "batches sent but not acknowledged, per connection", NULL, NULL, 0 },
  { "backoff", SL_CT_OBJ, NULL, "reconnect backoff (full jitter)",
    backoff_keys, NULL, 0 },
  { "format", SL_CT_ENUM, "json_lines", "tcp: wire format", NULL,
    "json_lines", 0 },
  { "path", SL_CT_STR, NULL, "file: output file (JSON lines, appended)",
    NULL, NULL, 0 },
  { "ssl", SL_CT_OBJ, NULL, "lumberjack/kafka: TLS", ssl_keys, NULL, 0 },
  { "brokers", SL_CT_STR_LIST, NULL, "kafka: bootstrap host:port list",
    NULL, NULL, 0 },
  { "topic", SL_CT_STR, NULL,
    "kafka: topic; %{field} or %{field:default} take a value of the event "
    "(missing field: the default, else 'unknown')", NULL, NULL, 0 },
  { "key", SL_CT_ENUM, "event.id", "kafka: message key", NULL,
    "event.id|host.name|trace.id|none", 0 },
  { "compression", SL_CT_ENUM, "lz4", "kafka: compression codec", NULL,
    "none|gzip|snappy|lz4|zstd", 0 },
  { "acks", SL_CT_ENUM, "all",
    "kafka: all (idempotent producer) | 1 | 0", NULL, "all|1|0", 0 },
  { "properties", SL_CT_MAP, NULL,
    "kafka: librdkafka properties (checked at --check)", NULL, NULL, 0 },
  { "sasl", SL_CT_OBJ, NULL, "kafka: SASL authentication", sasl_keys, NULL,
    0 },
  { "dead_letter_path", SL_CT_STR, NULL,
    "kafka: NDJSON file for events Kafka refuses for good "
    "(default <data_dir>/kafka-dead-letter.ndjson)", NULL, NULL, 0 },
  SL_CONF_END
};

const struct sl_conf_key sl_agent_schema[] = {
  { "name", SL_CT_STR, NULL, "agent.name and host.name (default: hostname)",
    NULL, NULL, 0 },
  { "data_dir", SL_CT_STR, NULL,
    "state directory: registry.json and agent-id", NULL, NULL,
    SL_CK_REQUIRED },
  { "workers", SL_CT_INT, "2", "parse/compress threads", NULL, NULL, 0 },
  { "log_level", SL_CT_ENUM, "info", "self-log level", NULL,
    "debug|info|warn|warning|error", 0 },
  { "log_format", SL_CT_ENUM, "json",
    "self-log lines on stderr: json (journald keeps them) or text "
    "(--log-format overrides)", NULL, "json|text", 0 },
  { "http", SL_CT_OBJ, NULL, "metrics and health endpoint", http_keys, NULL,
    0 },
  { "harvester_limit", SL_CT_INT, "0",
    "most source files open at once (0: open files limit - 64, after "
    "raising the soft limit to the hard one)", NULL, NULL, 0 },
  { "registry_flush", SL_CT_DURATION, "1s",
    "how often acknowledged offsets are written to the registry", NULL,
    NULL, 0 },
  { "shutdown_timeout", SL_CT_DURATION, "30s",
    "on SIGTERM, how long to wait for outstanding acks", NULL, NULL, 0 },
  { "queue", SL_CT_OBJ, NULL, "memory bounds", queue_keys, NULL, 0 },
  { "batch_max_events", SL_CT_INT, "2048", "events per batch", NULL, NULL,
    0 },
  { "batch_max_bytes", SL_CT_SIZE, "4MiB",
    "uncompressed event bytes per batch", NULL, NULL, 0 },
  { "flush_interval", SL_CT_DURATION, "1s",
    "a partial batch is shipped at most this long after its first event",
    NULL, NULL, 0 },
  { "inputs", SL_CT_OBJ_LIST, NULL, "log sources", input_keys, NULL,
    SL_CK_REQUIRED },
  { "output", SL_CT_OBJ, NULL, "where events go", output_keys, NULL,
    SL_CK_REQUIRED },
  SL_CONF_END
};

int
sl_agent_split_hostport(const char *s, char *host, size_t hostlen, int *port)
{
  const char *colon, *h = s, *he;
  long p = 0;
  char *end;

  if (s == NULL || *s == '\0')
    return SL_EINVAL;
  if (*s == '[') {
    h = s + 1;
    he = strchr(h, ']');
    if (he == NULL)
      return SL_EINVAL;
    colon = he[1] == ':' ? he + 1 : NULL;
    if (he[1] != '\0' && colon == NULL)
      return SL_EINVAL;
  } else {
    colon = strrchr(s, ':');
    he = colon ? colon : s + strlen(s);
  }
  if (he == h || (size_t)(he - h) >= hostlen)
    return SL_EINVAL;
  memcpy(host, h, (size_t)(he - h));
  host[he - h] = '\0';
  if (colon) {
    p = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || p < 1 || p > 65535)
      return SL_EINVAL;
  }
  *port = (int)p;
  return SL_OK;
}

static const struct {
  const char *name;
  enum sl_out_type type;
} out_types[] = {
  { "lumberjack", SL_OUT_LUMBERJACK },
  { "tcp", SL_OUT_TCP },
  { "file", SL_OUT_FILE },
  { "stdout", SL_OUT_STDOUT },
  { "kafka", SL_OUT_KAFKA },
};

/* An id usable as a label value and a name on a command line. */
static int
id_ok(const char *s)
{
  size_t n;

  for (n = 0; s[n]; n++)
    if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
          (s[n] >= '0' && s[n] <= '9') || s[n] == '.' || s[n] == '_' ||
          s[n] == '-'))
      return 0;
  return n > 0 && n < SL_INPUT_ID_MAX;
}

/* n when s is "input-<n>" (the generated form), else -1. */
static long
generated_index(const char *s)
{
  char *end;
  long n;

  if (strncmp(s, "input-", 6) != 0 || s[6] < '0' || s[6] > '9')
    return -1;
  n = strtol(s + 6, &end, 10);
  return *end == '\0' && n >= 0 ? n : -1;
}

static int
str_eq(const char *a, const char *b)
{
  return a && b && strcmp(a, b) == 0;
}

void
sl_agent_input_id(const json_t *inputs, size_t i, char out[SL_INPUT_ID_MAX])
{
  const json_t *in = json_array_get(inputs, i), *o;
  const char *id = sl_conf_str(in, "id"), *ds = sl_conf_str(in, "dataset");
  size_t j;

  if (id && *id) {
    snprintf(out, SL_INPUT_ID_MAX, "%s", id);
    return;
  }
  /* The dataset, when it names this input alone: not shared with another
   * input and not taken as another one's id. */
  if (ds && id_ok(ds) && generated_index(ds) < 0) {
    for (j = 0; j < json_array_size(inputs); j++) {
      o = json_array_get(inputs, j);
      if (j != i && (str_eq(sl_conf_str(o, "dataset"), ds) ||
                     str_eq(sl_conf_str(o, "id"), ds)))
        break;
    }
    if (j == json_array_size(inputs)) {
      snprintf(out, SL_INPUT_ID_MAX, "%s", ds);
      return;
    }
  }
  snprintf(out, SL_INPUT_ID_MAX, "input-%zu", i);
}

/* Every problem is reported (sl_conf_error adds it to the config's list,
 * err keeps the first) and the checks go on, so that --check lists them
 * all; what a check needs from an earlier, failed one is skipped. */
#define BAD(node, key, ...)                                                  \
  (rc = sl_conf_error(c, (node), (key), err, errlen, __VA_ARGS__))

int
sl_agent_conf_read(const struct sl_conf *c, struct sl_agent_conf *ac,
                   char *err, size_t errlen)
{
  json_t *root = sl_conf_root(c), *o, *hosts, *v, *in;
  const char *t;
  int64_t window;
  size_t i;
  int rc = SL_OK, typed;

  memset(ac, 0, sizeof(*ac));
  if (err && errlen)
    err[0] = '\0';
  ac->name = sl_conf_str(root, "name");
  ac->data_dir = sl_conf_str(root, "data_dir");
  if (ac->data_dir == NULL || *ac->data_dir == '\0')
    BAD(sl_conf_get(root, "data_dir"), "data_dir", "must not be empty");
  ac->workers = (int)sl_conf_int(root, "workers", 2);
  if (ac->workers < 1 || ac->workers > SL_AGENT_MAX_WORKERS)
    BAD(sl_conf_get(root, "workers"), "workers", "must be 1..%d",
        SL_AGENT_MAX_WORKERS);
  ac->log_level = sl_conf_str(root, "log_level");
  ac->http_listen = sl_conf_str(root, "http.listen");
  if (ac->http_listen == NULL)
    ac->http_listen = "127.0.0.1:5076";
  else if (ac->http_listen[0] && !sl_addr_listen_valid(ac->http_listen))
    BAD(sl_conf_get(root, "http.listen"), "http.listen",
        "want an IP address and port like 127.0.0.1:5076 (got '%s')",
        ac->http_listen);
  ac->registry_flush_ms = (uint64_t)sl_conf_int(root, "registry_flush", 1000);
  ac->shutdown_timeout_ms =
    (uint64_t)sl_conf_int(root, "shutdown_timeout", 30000);
  ac->queue_max_bytes =
    (uint64_t)sl_conf_int(root, "queue.max_bytes", 32 << 20);
  if (ac->queue_max_bytes < (1u << 20))
    BAD(sl_conf_get(root, "queue.max_bytes"), "queue.max_bytes",
        "must be at least 1MiB");
  v = sl_conf_get(root, "batch_max_events");
  ac->batch_max_events = (uint32_t)sl_conf_int(root, "batch_max_events",
                                                2048);
  if (sl_conf_int(root, "batch_max_events", 2048) < 1 ||
      sl_conf_int(root, "batch_max_events", 2048) > 65536)
    BAD(v, "batch_max_events", "must be 1..65536");
  ac->batch_max_bytes =
    (uint64_t)sl_conf_int(root, "batch_max_bytes", 4 << 20);
  if (ac->batch_max_bytes < 1024 || ac->batch_max_bytes > (256u << 20))
    BAD(sl_conf_get(root, "batch_max_bytes"), "batch_max_bytes",
        "must be 1KiB..256MiB");
  ac->flush_interval_ms = (uint64_t)sl_conf_int(root, "flush_interval", 1000);
  if (ac->flush_interval_ms < 1)
    BAD(sl_conf_get(root, "flush_interval"), "flush_interval",
        "must be at least 1ms");

  ac->inputs = sl_conf_get(root, "inputs");
  if (!json_is_array(ac->inputs) || json_array_size(ac->inputs) == 0)
    BAD(ac->inputs, "inputs", "at least one input is required");
  ac->max_line_bytes = 0;
  json_array_foreach(ac->inputs, i, in) {
    int64_t m = sl_conf_int(in, "max_line_bytes", 1 << 20);
    const char *id = sl_conf_str(in, "id");
    size_t j;

    /* Ids label metrics: unique, and "input-<n>" only for inputs[n] so
     * that no generated default can collide with one. */
    if (id && !id_ok(id))
      BAD(sl_conf_get(in, "id"), "inputs.id", "'%s': use 1..%d letters, "
          "digits, '.', '_' or '-'", id, SL_INPUT_ID_MAX - 1);
    if (id && generated_index(id) >= 0 && (size_t)generated_index(id) != i)
      BAD(sl_conf_get(in, "id"), "inputs.id", "'%s' is the default id of "
          "inputs[%ld]; choose another", id, generated_index(id));
    for (j = 0; id && j < i; j++)
      if (str_eq(sl_conf_str(json_array_get(ac->inputs, j), "id"), id))
        BAD(sl_conf_get(in, "id"), "inputs.id", "'%s' is also the id of "
            "inputs[%zu]", id, j);
    if (m < 16 || m > (64 << 20))
      BAD(sl_conf_get(in, "max_line_bytes"), "inputs.max_line_bytes",
          "must be 16B..64MiB");
    if ((uint64_t)m > ac->max_line_bytes)
      ac->max_line_bytes = (uint64_t)m;
    if (sl_conf_int(in, "harvester_limit", 0) < 0)
      BAD(sl_conf_get(in, "harvester_limit"), "inputs.harvester_limit",
          "must be >= 0");
    /* An entry cleaned before the next scan saw its file would make that
     * file start over (Filebeat: > ignore_older + scan_frequency). */
    m = sl_conf_int(in, "clean_inactive", 0);
    if (m > 0 && m <= sl_conf_int(in, "scan_interval", 10000))
      BAD(sl_conf_get(in, "clean_inactive"), "inputs.clean_inactive",
          "must be greater than scan_interval (%lldms)",
          (long long)sl_conf_int(in, "scan_interval", 10000));
    m = sl_conf_int(in, "fingerprint.length", 1024);
    if (m < 64 || m > (64 << 10))
      BAD(sl_conf_get(in, "fingerprint.length"),
          "inputs.fingerprint.length", "must be 64B..64KiB");
    m = sl_conf_int(in, "fingerprint.offset", 0);
    if (m < 0 || m > (1 << 20))
      BAD(sl_conf_get(in, "fingerprint.offset"),
          "inputs.fingerprint.offset", "must be 0..1MiB");
  }
  if (sl_conf_int(root, "harvester_limit", 0) < 0)
    BAD(sl_conf_get(root, "harvester_limit"), "harvester_limit",
        "must be >= 0");
  ac->harvester_limit = (uint64_t)sl_conf_int(root, "harvester_limit", 0);

  o = ac->output = sl_conf_get(root, "output");
  if (!json_is_object(o))
    return BAD(o, "output", "an output is required");
  /* A refused type was replaced by the default: checking the keys of
   * that type would only report the consequences. */
  typed = !sl_conf_failed(c, "output.type");
  t = sl_conf_str(o, "type");
  if (t == NULL)
    t = "lumberjack";
  for (i = 0; i < sizeof(out_types) / sizeof(out_types[0]); i++)
    if (strcmp(t, out_types[i].name) == 0)
      break;
  if (i == sizeof(out_types) / sizeof(out_types[0]))
    return BAD(sl_conf_get(o, "type"), "output.type",
               "unknown output type '%s'", t);
  ac->out_type = out_types[i].type;
  ac->fmt = ac->out_type == SL_OUT_LUMBERJACK ? SL_FMT_LUMBERJACK
                                              : SL_FMT_NDJSON;

  hosts = sl_conf_get(o, "hosts");
  if (typed &&
      (ac->out_type == SL_OUT_LUMBERJACK || ac->out_type == SL_OUT_TCP)) {
    if (!json_is_array(hosts) || json_array_size(hosts) == 0)
      BAD(o, "output.hosts", "required for output type %s", t);
    else if (json_array_size(hosts) > SL_AGENT_MAX_HOSTS)
      BAD(hosts, "output.hosts", "at most %d hosts", SL_AGENT_MAX_HOSTS);
    else json_array_foreach(hosts, i, v) {
      char h[256];
      int port;
      const char *s = json_string_value(v);
      if (s == NULL || sl_agent_split_hostport(s, h, sizeof(h), &port) ||
          (port == 0 && ac->out_type == SL_OUT_TCP))
        BAD(v, "output.hosts", "'%s' is not host:port", s ? s : "?");
      else
        ac->hosts[ac->nhosts++] = s;
    }
  }
  window = sl_conf_int(o, "window", 2048);
  if (window < 1 || window > 65536)
    BAD(sl_conf_get(o, "window"), "output.window", "must be 1..65536");
  if (ac->out_type == SL_OUT_LUMBERJACK &&
      (uint64_t)window < ac->batch_max_events)
    ac->batch_max_events = (uint32_t)window;
  ac->compression_level = (int)sl_conf_int(o, "compression_level", 3);
  if (ac->compression_level < 0 || ac->compression_level > 9)
    BAD(sl_conf_get(o, "compression_level"), "output.compression_level",
        "must be 0..9");
  ac->timeout_ms = (uint64_t)sl_conf_int(o, "timeout", 30000);
  if (ac->timeout_ms < 10)
    BAD(sl_conf_get(o, "timeout"), "output.timeout", "must be at least 10ms");
  ac->max_inflight = (int)sl_conf_int(o, "max_inflight", 4);
  if (ac->max_inflight < 1 || ac->max_inflight > 64)
    BAD(sl_conf_get(o, "max_inflight"), "output.max_inflight",
        "must be 1..64");
  ac->backoff_base_ms = (uint64_t)sl_conf_int(o, "backoff.base", 500);
  ac->backoff_max_ms = (uint64_t)sl_conf_int(o, "backoff.max", 30000);
  if (ac->backoff_base_ms < 1 || ac->backoff_max_ms < ac->backoff_base_ms)
    BAD(sl_conf_get(o, "backoff"), "output.backoff",
        "need 1ms <= base <= max");
  ac->ssl_enabled = sl_conf_bool(o, "ssl.enabled", 0);
  ac->ssl_ca = sl_conf_str(o, "ssl.ca");
  ac->ssl_cert = sl_conf_str(o, "ssl.cert");
  ac->ssl_key = sl_conf_str(o, "ssl.key");
  ac->ssl_verify = sl_conf_bool(o, "ssl.verify", 1);
  if (ac->ssl_enabled) {
#ifndef HAVE_OPENSSL
    BAD(sl_conf_get(o, "ssl.enabled"), "output.ssl.enabled",
        "this build has no TLS (OpenSSL)");
#endif
    if (typed && ac->out_type != SL_OUT_LUMBERJACK &&
        ac->out_type != SL_OUT_KAFKA)
      BAD(sl_conf_get(o, "ssl.enabled"), "output.ssl.enabled",
          "TLS is only available for output types lumberjack and kafka");
    if (!ac->ssl_cert != !ac->ssl_key)
      BAD(sl_conf_get(o, "ssl"), "output.ssl",
          "cert and key go together");
  }
  ac->path = sl_conf_str(o, "path");
  if (typed && ac->out_type == SL_OUT_FILE &&
      (ac->path == NULL || *ac->path == '\0'))
    BAD(o, "output.path", "required for output type file");
  if (typed && ac->out_type == SL_OUT_KAFKA) {
#ifdef HAVE_RDKAFKA
    char kerr[512] = "";

    /* Its first problem only: librdkafka's checks stop there. */
    if (sl_out_kafka_check(c, ac, kerr, sizeof(kerr)) != SL_OK)
      rc = sl_conf_error_text(c, kerr, err, errlen);
#else
    BAD(sl_conf_get(o, "type"), "output.type",
        "this build has no Kafka (librdkafka)");
#endif
  }
  return rc;
}
