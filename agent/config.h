/* config.h - the agent's whole configuration schema (one table, DESIGN.md
 * "Config tables") and the typed view the agent runs with.
 *
 * sl_agent_schema is what sl_conf_load validates and normalises against and
 * what --help prints. sl_agent_conf_read() turns the normalised tree into a
 * struct of plain values and checks the rules a schema row cannot express
 * (an output type needs its hosts/path, ranges). String pointers in struct
 * sl_agent_conf are borrowed from the sl_conf tree and live as long as it.
 */
#ifndef SL_AGENT_CONFIG_H
#define SL_AGENT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sl_conf.h"

extern const struct sl_conf_key sl_agent_schema[];

enum sl_out_type {
  SL_OUT_LUMBERJACK,
  SL_OUT_TCP,
  SL_OUT_FILE,
  SL_OUT_STDOUT,
  SL_OUT_KAFKA,       /* out_kafka.c; reads its keys from `output` */
};

/* Wire format of a batch, chosen by the output type. */
enum sl_batch_fmt {
  SL_FMT_LUMBERJACK,  /* W frame + one C frame (or plain J frames) */
  SL_FMT_NDJSON,      /* one event JSON per line */
};

#define SL_AGENT_MAX_WORKERS 64
#define SL_AGENT_MAX_HOSTS 16

struct sl_agent_conf {
  const char *name;           /* agent.name/host.name override, or NULL */
  const char *data_dir;
  int workers;
  const char *log_level;
  const char *http_listen;    /* "" disables the HTTP endpoint */
  uint64_t registry_flush_ms;
  uint64_t shutdown_timeout_ms;
  uint64_t queue_max_bytes;
  uint64_t harvester_limit;       /* 0: from RLIMIT_NOFILE */
  uint32_t batch_max_events;  /* already capped by output.window */
  uint64_t batch_max_bytes;   /* uncompressed event bytes per batch */
  uint64_t flush_interval_ms;
  uint64_t max_line_bytes;    /* largest of the inputs' max_line_bytes */
  json_t *inputs;             /* normalised inputs[] (borrowed) */

  json_t *output;             /* normalised output object (borrowed) */
  enum sl_out_type out_type;
  enum sl_batch_fmt fmt;
  const char *hosts[SL_AGENT_MAX_HOSTS];
  int nhosts;
  int compression_level;      /* 0: plain J frames */
  uint64_t timeout_ms;
  int max_inflight;
  uint64_t backoff_base_ms, backoff_max_ms;
  const char *path;           /* output type file */
  int ssl_enabled, ssl_verify;
  const char *ssl_ca, *ssl_cert, *ssl_key;
};

/* The name of inputs[i] in metrics (label input="<id>"): its `id`, else
 * its `dataset` when no other input has that dataset or id, else
 * "input-<i>". sl_agent_conf_read checked the ids (unique, letters,
 * digits, '.', '_', '-', shorter than SL_INPUT_ID_MAX, "input-<n>" only
 * for inputs[n]), so the names of one config are unique. */
#define SL_INPUT_ID_MAX 64
void sl_agent_input_id(const json_t *inputs, size_t i,
                       char out[SL_INPUT_ID_MAX]);

/* Fill *ac from a loaded config. Returns 0 or SL_ECONFIG with a
 * "file:line: key: reason" line in err. */
int sl_agent_conf_read(const struct sl_conf *c, struct sl_agent_conf *ac,
                       char *err, size_t errlen);

/* Split "host:port" (or "[v6]:port"); port 0 if absent. host gets a
 * NUL-terminated copy. Returns 0 or SL_EINVAL. */
int sl_agent_split_hostport(const char *s, char *host, size_t hostlen,
                            int *port);

#endif
