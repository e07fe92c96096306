#include "config.h"

static const struct sl_conf_key http_keys[] = {
  { "listen", SL_CT_STR, "127.0.0.1:9600", "address of /metrics, /health, /ready", NULL, NULL, 0 },
  SL_CONF_END
};

static const struct sl_conf_key input_keys[] = {
  { "type", SL_CT_ENUM, "lumberjack", "input type", NULL, "lumberjack", 0 },
  { "listen", SL_CT_STR, "0.0.0.0:5044", "host:port to accept Beats/Lumberjack v2 senders on", NULL, NULL, 0 },
  { "max_connections", SL_CT_INT, "1024", "connections accepted at once; more are closed on accept", NULL, NULL, 0 },
  { "idle_timeout", SL_CT_DURATION, "60s", "close a connection that sends nothing for this long", NULL, NULL, 0 },
  { "max_window", SL_CT_INT, "65536", "largest window (W frame) a sender may announce", NULL, NULL, 0 },
  { "max_frame", SL_CT_SIZE, "64MiB", "largest single frame (event or compressed block)", NULL, NULL, 0 },
  { "max_inflate", SL_CT_SIZE, "128MiB", "largest decompressed size of one C frame (zip-bomb guard)", NULL, NULL, 0 },
  { "keepalive", SL_CT_DURATION, "5s", "send a keep-alive ack while a window waits this long for the spool", NULL, NULL, 0 },
  { "flush_bytes", SL_CT_SIZE, "4MiB", "spool (and partially ack) a window once this many bytes of it arrived", NULL, NULL, 0 },
  SL_CONF_END
};

static const struct sl_conf_key spool_keys[] = {
  { "segment_bytes", SL_CT_SIZE, "64MiB", "rotate spool segment files at this size", NULL, NULL, 0 },
  { "max_bytes", SL_CT_SIZE, "1GiB", "stop intake (backpressure) when this much is spooled and not yet indexed", NULL, NULL, 0 },
  { "commit_interval", SL_CT_DURATION, "5ms", "group commit window: one fsync for all batches that arrive within it", NULL, NULL, 0 },
  SL_CONF_END
};

static const struct sl_conf_key es_ssl_keys[] = {
  { "ca", SL_CT_STR, NULL, "CA file (PEM) to verify Elasticsearch", NULL, NULL, 0 },
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
  { "compression_level", SL_CT_INT, "1", "gzip level 1-9 (1: most of the gain for little CPU)", NULL, NULL, 0 },
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
  SL_CONF_END
};

const struct sl_conf_key sl_collector_schema[] = {
  { "data_dir", SL_CT_STR, NULL, "state directory (spool, corrupt/, deadletter/)", NULL, NULL, SL_CK_REQUIRED },
  { "log_level", SL_CT_ENUM, "info", "self-log level", NULL, "debug|info|warn|warning|error", 0 },
  { "shutdown_timeout", SL_CT_DURATION, "30s", "on SIGTERM, wait this long for in-flight work", NULL, NULL, 0 },
  { "http", SL_CT_OBJ, NULL, "metrics and health endpoint", http_keys, NULL, 0 },
  { "inputs", SL_CT_OBJ_LIST, NULL, "listeners", input_keys, NULL, SL_CK_REQUIRED },
  { "spool", SL_CT_OBJ, NULL, "durable queue between inputs and outputs", spool_keys, NULL, 0 },
  { "elasticsearch", SL_CT_OBJ, NULL, "Elasticsearch output", es_keys, NULL, SL_CK_REQUIRED },
  SL_CONF_END
};
