/* out_kafka.c - Kafka output (librdkafka producer), one message per event.
 *
 * A batch (NDJSON, one event per line) becomes one Kafka message per line,
 * value = the event's ECS JSON (the same text Lumberjack carries), key
 * from the `key` setting, headers `event.id` and `sluice.agent.version`.
 * The payload is not copied: librdkafka points into the batch, which lives
 * until every one of its messages has its delivery report.
 *
 * Acknowledgement: a batch is acked to the agent when every message of it
 * was delivered (acks=all by default, idempotent producer) or went to the
 * dead-letter file, and only after every older batch was acked: acks reach
 * agent.c in batch order, so the registry advances in file order.
 *
 *   delivered            broker acknowledged (acks setting)
 *   permanent error      (authorization, message too large, invalid
 *                        record, unknown topic) the event line goes to the
 *                        dead-letter file with the reason, is counted, and
 *                        then counts as delivered: never silent, never a
 *                        stuck partition of the pipeline
 *   transient error      (only with a finite message.timeout.ms) produced
 *                        again
 *   purged at shutdown   not delivered: the batch goes back to the agent
 *                        and its events are read again on the next start
 *
 * Broker down: message.timeout.ms defaults to 0 (no timeout), so messages
 * wait in librdkafka's queue; its bounds (queue.buffering.max.kbytes,
 * .messages) come from queue.max_bytes. When rd_kafka_produce reports the
 * queue full, the rest of the batch waits (o->stalled) and send() refuses
 * new batches, the agent's queue fills and reading pauses.
 *
 * Loop integration: librdkafka writes a byte to a pipe when its main queue
 * (delivery reports, errors) gets work; a uv_poll_t on the pipe runs
 * rd_kafka_poll(rk, 0), so the loop never blocks and an idle agent does
 * not wake up. A slow timer runs while messages are outstanding, only as
 * a safety net.
 *
 * Shutdown: the agent's drain (shutdown_timeout) is the flush. close()
 * then flushes for at most CLOSE_FLUSH_MS, purges the rest and hands
 * every unacked batch back.
 *
 * Fatal producer error (the idempotent producer lost its sequence state):
 * the producer is replaced and every unacked batch is sent again
 * (restart_producer); what had reached Kafka arrives twice and is deduped
 * downstream by event.id.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "kafka_event.h"
#include "out.h"
#include "sl_buf.h"
#include "sl_config.h"
#include "sl_fs.h"
#include "sl_json.h"
#include "sl_list.h"
#include "sl_log.h"
#include "sl_metrics.h"
#include "sl_time.h"

/* Safety-net poll while messages are outstanding; the pipe does the real
 * work, so this only bounds the delay if a wakeup were ever missed. */
#define POLL_MS 100
/* After a full librdkafka queue, try the stalled batch again this soon
 * even if no delivery report freed room (reports normally do). */
#define STALL_RETRY_MS 50
/* close(): how long to wait for in-flight deliveries before purging.
 * The real flush is the agent's drain; this blocks the loop, keep short. */
#define CLOSE_FLUSH_MS 2000
/* rd_kafka_poll rounds per wakeup (each serves a queue's worth of
 * reports): bounded work per callback; the rest waits for the timer. */
#define POLL_ROUNDS 16
/* Retry a producer restart that failed (it can only fail on memory). */
#define RESTART_MS 1000

/* Per-batch state, in b->out_priv. */
struct kbatch {
  struct sl_batch *b;
  size_t off;            /* next byte of b->data to produce */
  uint32_t outstanding;  /* produced, no delivery report yet */
  uint32_t undelivered;  /* purged: the batch must be sent again */
};

/* A message whose delivery failed transiently, to produce again. */
struct kretry {
  struct sl_list link;
  struct kbatch *kb;
  const char *p;         /* into kb->b->data */
  size_t n;
};

struct kafka_out {
  struct sl_out base;
  uv_loop_t *loop;
  struct sl_out_cbs cbs;
  const struct sl_agent_conf *ac;
  rd_kafka_t *rk;
  rd_kafka_topic_t *rkt;         /* static topic, else NULL */
  struct sl_ktopic *topic;
  enum sl_kkey key;
  const char *key_path;
  char *dlq_path;
  int dlq_fd;
  int dlq_dirty;                 /* written since the last fdatasync */

  struct sl_batchq sent;         /* batches taken, oldest first */
  struct kbatch *stalled;        /* last of sent, partly produced */
  struct sl_list retries;        /* struct kretry, oldest first */
  int all_down;                  /* librdkafka: all brokers down */
  int fatal;                     /* fatal producer error: not ready */

  int pipefd[2];
  uv_poll_t poll;
  uv_timer_t timer;
  int handles;                   /* open uv handles */
  int closing;
  void (*close_cb)(void *arg);
  void *close_arg;

  struct sl_out_stats st;
  uint64_t produced, delivered, dead, retried, queue_full, errors;
  uint64_t dlq_failed, restarts;
};

/* ---- configuration ---------------------------------------------------- */

/* Scalars of the properties map as librdkafka strings. */
static int
prop_value(json_t *v, char *buf, size_t len)
{
  if (json_is_string(v))
    snprintf(buf, len, "%s", json_string_value(v));
  else if (json_is_integer(v))
    snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
  else if (json_is_real(v))
    snprintf(buf, len, "%.17g", json_real_value(v));
  else if (json_is_boolean(v))
    snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
  else
    return -1;
  return 0;
}

/* Settings sluice owns; a property may not override them silently. */
static const char *const owned_props[] = {
  "bootstrap.servers", "metadata.broker.list", "dr_cb", "dr_msg_cb",
  "opaque", "error_cb", "log_cb", "background_event_cb",
  "enable.idempotence", "acks", "request.required.acks",
  "compression.codec", "compression.type", NULL,
};

#define CONF_SET(key_, val_, node_, path_)                                   \
  do {                                                                       \
    if (rd_kafka_conf_set(conf, (key_), (val_), rerr, sizeof(rerr)) !=       \
        RD_KAFKA_CONF_OK) {                                                  \
      sl_conf_errorf(c, (node_), (path_), err, errlen, "%s", rerr);          \
      goto fail;                                                             \
    }                                                                        \
  } while (0)

/* Build the producer configuration from output.* . Used by --check (then
 * destroyed) and by init, so both refuse exactly the same things. */
static int
build_conf(const struct sl_conf *c, const struct sl_agent_conf *ac,
           rd_kafka_conf_t **out, char *err, size_t errlen)
{
  json_t *o = ac->output, *brokers, *props, *v;
  rd_kafka_conf_t *conf;
  struct sl_buf bl;
  char rerr[512], val[1024], path_buf[64];
  const char *s, *k, *acks, *mech;
  size_t i;
  int64_t kb;

  sl_buf_init(&bl, 64 * 1024);
  conf = rd_kafka_conf_new();
  brokers = sl_conf_get(o, "brokers");
  if (!json_is_array(brokers) || json_array_size(brokers) == 0) {
    sl_conf_errorf(c, o, "output.brokers", err, errlen,
                   "required for output type kafka");
    goto fail;
  }
  json_array_foreach(brokers, i, v) {
    char h[256];
    int port;
    s = json_string_value(v);
    if (s == NULL || sl_agent_split_hostport(s, h, sizeof(h), &port) ||
        port == 0) {
      sl_conf_errorf(c, v, "output.brokers", err, errlen,
                     "'%s' is not host:port", s ? s : "?");
      goto fail;
    }
    if ((i && sl_buf_append_byte(&bl, ',')) || sl_buf_append_str(&bl, s)) {
      sl_conf_errorf(c, v, "output.brokers", err, errlen, "too long");
      goto fail;
    }
  }
  CONF_SET("bootstrap.servers", bl.p, brokers, "output.brokers");
  s = sl_conf_str(o, "compression");
  CONF_SET("compression.codec", s ? s : "lz4", sl_conf_get(o, "compression"),
           "output.compression");
  acks = sl_conf_str(o, "acks");
  if (acks == NULL)
    acks = "all";
  CONF_SET("acks", strcmp(acks, "all") == 0 ? "-1" : acks,
           sl_conf_get(o, "acks"), "output.acks");
  /* Idempotence needs acks=all; with it a resend after a lost ack does
   * not duplicate nor reorder within a partition. */
  CONF_SET("enable.idempotence", strcmp(acks, "all") == 0 ? "true" : "false",
           sl_conf_get(o, "acks"), "output.acks");
  /* Nothing is dropped on a timer: while brokers are down, messages wait
   * and the agent's queue applies backpressure. */
  CONF_SET("message.timeout.ms", "0", o, "output");
  /* librdkafka's own queue stays within the agent's memory bound. */
  kb = (int64_t)(ac->queue_max_bytes / 1024);
  snprintf(val, sizeof(val), "%" PRId64, kb < 1 ? 1 : kb);
  CONF_SET("queue.buffering.max.kbytes", val, o, "queue.max_bytes");
  kb = (int64_t)(ac->queue_max_bytes / 64);
  snprintf(val, sizeof(val), "%" PRId64,
           kb < 1000 ? 1000 : kb > 10000000 ? 10000000 : kb);
  CONF_SET("queue.buffering.max.messages", val, o, "queue.max_bytes");
  CONF_SET("linger.ms", "5", o, "output");
  CONF_SET("client.id", "sluice-agent", o, "output");

  /* TLS and SASL map onto librdkafka's security settings. */
  mech = sl_conf_str(o, "sasl.mechanism");
  if (ac->ssl_enabled || mech) {
    CONF_SET("security.protocol",
             ac->ssl_enabled ? (mech ? "sasl_ssl" : "ssl") : "sasl_plaintext",
             sl_conf_get(o, ac->ssl_enabled ? "ssl.enabled" : "sasl"),
             ac->ssl_enabled ? "output.ssl.enabled" : "output.sasl");
  }
  if (ac->ssl_enabled) {
    /* librdkafka reads the files only when it connects; say it now. */
    static const char *const files[] = { "ca", "cert", "key" };
    for (i = 0; i < 3; i++) {
      char key[16];
      snprintf(key, sizeof(key), "ssl.%s", files[i]);
      s = sl_conf_str(o, key);
      if (s && access(s, R_OK) != 0) {
        snprintf(path_buf, sizeof(path_buf), "output.%s", key);
        sl_conf_errorf(c, sl_conf_get(o, key), path_buf, err, errlen,
                       "%s: %s", s, strerror(errno));
        goto fail;
      }
    }
    if (ac->ssl_ca)
      CONF_SET("ssl.ca.location", ac->ssl_ca, sl_conf_get(o, "ssl.ca"),
               "output.ssl.ca");
    if (ac->ssl_cert)
      CONF_SET("ssl.certificate.location", ac->ssl_cert,
               sl_conf_get(o, "ssl.cert"), "output.ssl.cert");
    if (ac->ssl_key)
      CONF_SET("ssl.key.location", ac->ssl_key, sl_conf_get(o, "ssl.key"),
               "output.ssl.key");
    CONF_SET("enable.ssl.certificate.verification",
             ac->ssl_verify ? "true" : "false", sl_conf_get(o, "ssl.verify"),
             "output.ssl.verify");
    CONF_SET("ssl.endpoint.identification.algorithm",
             ac->ssl_verify ? "https" : "none", sl_conf_get(o, "ssl.verify"),
             "output.ssl.verify");
  }
  if (mech) {
    const char *user = sl_conf_str(o, "sasl.username");
    const char *pass = sl_conf_str(o, "sasl.password");
    if (user == NULL || pass == NULL) {
      sl_conf_errorf(c, sl_conf_get(o, "sasl"), "output.sasl", err, errlen,
                     "mechanism %s needs username and password", mech);
      goto fail;
    }
    CONF_SET("sasl.mechanisms", mech, sl_conf_get(o, "sasl.mechanism"),
             "output.sasl.mechanism");
    CONF_SET("sasl.username", user, sl_conf_get(o, "sasl.username"),
             "output.sasl.username");
    CONF_SET("sasl.password", pass, sl_conf_get(o, "sasl.password"),
             "output.sasl.password");
  }

  /* Free-form properties last, so they may tune what sluice set above
   * (linger.ms, message.timeout.ms, queue bounds), except what it owns. */
  props = sl_conf_get(o, "properties");
  if (props) {
    json_object_foreach(props, k, v) {
      char path[512];
      snprintf(path, sizeof(path), "output.properties.%s", k);
      for (i = 0; owned_props[i]; i++)
        if (strcmp(k, owned_props[i]) == 0)
          break;
      if (owned_props[i]) {
        sl_conf_errorf(c, v, path, err, errlen,
                       "set by sluice (use brokers, acks, compression)");
        goto fail;
      }
      if (prop_value(v, val, sizeof(val))) {
        sl_conf_errorf(c, v, path, err, errlen, "must be a scalar");
        goto fail;
      }
      CONF_SET(k, val, v, path);
    }
  }
  sl_buf_free(&bl);
  *out = conf;
  return SL_OK;
fail:
  sl_buf_free(&bl);
  rd_kafka_conf_destroy(conf);
  return SL_ECONFIG;
}

int
sl_out_kafka_check(const struct sl_conf *c, const struct sl_agent_conf *ac,
                   char *err, size_t errlen)
{
  rd_kafka_conf_t *conf = NULL;
  struct sl_ktopic *t = NULL;
  enum sl_kkey key;
  const char *s;
  char terr[256];
  int rc;

  s = sl_conf_str(ac->output, "topic");
  if (s == NULL) {
    sl_conf_errorf(c, ac->output, "output.topic", err, errlen,
                   "required for output type kafka");
    return SL_ECONFIG;
  }
  rc = sl_ktopic_compile(s, &t, terr, sizeof(terr));
  if (rc) {
    sl_conf_errorf(c, sl_conf_get(ac->output, "topic"), "output.topic", err,
                   errlen, "%s", rc == SL_EINVAL ? terr : sl_strerror(rc));
    return SL_ECONFIG;
  }
  sl_ktopic_free(t);
  s = sl_conf_str(ac->output, "key");
  if (s && sl_kkey_parse(s, &key)) {
    sl_conf_errorf(c, sl_conf_get(ac->output, "key"), "output.key", err,
                   errlen, "must be event.id, host.name, trace.id or none");
    return SL_ECONFIG;
  }
  rc = build_conf(c, ac, &conf, err, errlen);
  if (rc == SL_OK)
    rd_kafka_conf_destroy(conf);
  return rc;
}

/* ---- dead letters ----------------------------------------------------- */

/* One NDJSON line per refused event: when, why, where it was going and
 * the event itself (already valid JSON). The file is fdatasync'ed once
 * per round in complete(), before any batch is acked: the registry moves
 * past an event only once its dead letter is on disk, and a refused batch
 * of 2048 events costs one sync, not 2048. */
static int
dead_letter(struct kafka_out *o, const char *ev, size_t n, const char *topic,
            rd_kafka_resp_err_t kerr)
{
  struct sl_buf b;
  char ts[SL_TIME_RFC3339_MS_LEN + 1];
  const char *reason = rd_kafka_err2str(kerr);
  int rc;

  if (o->dlq_fd < 0) {
    o->dlq_fd = open(o->dlq_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                     0640);
    if (o->dlq_fd < 0) {
      rc = -errno;
      goto fail_open;
    }
  }
  sl_time_format_ms(sl_time_now_ns(), ts);
  sl_buf_init(&b, 0);
  rc = sl_buf_append_str(&b, "{\"@timestamp\":\"");
  rc |= sl_buf_append_str(&b, ts);
  rc |= sl_buf_append_str(&b, "\",\"error\":{\"code\":\"");
  rc |= sl_json_escape(&b, rd_kafka_err2name(kerr),
                       strlen(rd_kafka_err2name(kerr)));
  rc |= sl_buf_append_str(&b, "\",\"message\":\"");
  rc |= sl_json_escape(&b, reason, strlen(reason));
  rc |= sl_buf_append_str(&b, "\"},\"kafka\":{\"topic\":\"");
  rc |= sl_json_escape(&b, topic, strlen(topic));
  rc |= sl_buf_append_str(&b, "\"},\"event\":");
  rc |= sl_buf_append(&b, ev, n);
  rc |= sl_buf_append_str(&b, "}\n");
  if (rc == 0)
    rc = sl_fs_write_all(o->dlq_fd, b.p, b.len);
  sl_buf_free(&b);
  if (rc)
    goto fail_open;
  o->dead++;
  o->dlq_dirty = 1;
  sl_log(SL_LOG_WARN, "out.kafka", "event refused by Kafka: written to the "
         "dead-letter file", SL_LF_STR, "reason", reason,
         SL_LF_STR, "topic", topic, SL_LF_STR, "path", o->dlq_path,
         SL_LF_END);
  return SL_OK;
fail_open:
  o->dlq_failed++;
  sl_log(SL_LOG_ERROR, "out.kafka", "cannot write the dead-letter file; "
         "the event is kept (not acknowledged)", SL_LF_STR, "path",
         o->dlq_path, SL_LF_ERR, rc, SL_LF_END);
  return rc ? rc : SL_EIO;
}

/* Errors that no retry can fix: the event goes to the dead-letter file. */
static int
permanent(rd_kafka_resp_err_t e)
{
  switch (e) {
  case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
  case RD_KAFKA_RESP_ERR_INVALID_MSG:
  case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
  case RD_KAFKA_RESP_ERR_INVALID_RECORD:
  case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
  case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
  case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
  case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
  case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
  case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
  case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
  case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
  case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
  case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
  case RD_KAFKA_RESP_ERR__INVALID_ARG:
  case RD_KAFKA_RESP_ERR__BAD_MSG:
    return 1;
  default:
    return 0;
  }
}

/* ---- producing -------------------------------------------------------- */

static void arm_timer(struct kafka_out *o);
static void serve(struct kafka_out *o);

static void
timer_cb(uv_timer_t *t)
{
  serve(t->data);
}

/* Produce one event line. Returns 0 (queued, or dead-lettered and counted
 * done), SL_EAGAIN (librdkafka's queue is full: try again later) or
 * another error (dead-letter write failed: the batch stays unacked). */
static int
produce_one(struct kafka_out *o, struct kbatch *kb, const char *p, size_t n)
{
  char topic[SL_KTOPIC_MAX + 1];
  struct sl_kspan id = { NULL, 0 }, key = { NULL, 0 };
  rd_kafka_headers_t *hdrs;
  rd_kafka_resp_err_t e;

  if (o->rkt == NULL)
    sl_ktopic_render(o->topic, p, n, topic, sizeof(topic));
  sl_kjson_find(p, n, "event.id", &id);
  if (o->key == SL_KKEY_EVENT_ID)
    key = id;
  else if (o->key_path)
    sl_kjson_find(p, n, o->key_path, &key);
  hdrs = rd_kafka_headers_new(2);
  if (id.p)
    rd_kafka_header_add(hdrs, "event.id", -1, id.p, (ssize_t)id.n);
  rd_kafka_header_add(hdrs, "sluice.agent.version", -1, SL_VERSION, -1);
  if (o->rkt)
    e = rd_kafka_producev(o->rk, RD_KAFKA_V_RKT(o->rkt),
                          RD_KAFKA_V_VALUE((void *)p, n),
                          RD_KAFKA_V_KEY(key.p, key.n),
                          RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(kb),
                          RD_KAFKA_V_END);
  else
    e = rd_kafka_producev(o->rk, RD_KAFKA_V_TOPIC(topic),
                          RD_KAFKA_V_VALUE((void *)p, n),
                          RD_KAFKA_V_KEY(key.p, key.n),
                          RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(kb),
                          RD_KAFKA_V_END);
  if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
    kb->outstanding++;
    o->produced++;
    o->st.bytes_sent += n;
    return SL_OK;
  }
  rd_kafka_headers_destroy(hdrs);
  if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
    o->queue_full++;
    return SL_EAGAIN;
  }
  if (e == RD_KAFKA_RESP_ERR__FATAL) {
    o->fatal = 1;
    return SL_EAGAIN;
  }
  o->errors++;
  return dead_letter(o, p, n, o->rkt ? rd_kafka_topic_name(o->rkt) : topic,
                     e);
}

/* Produce transient failures first (they are older), then the rest of the
 * stalled batch. Returns 0 when nothing is left waiting. */
static int
produce_waiting(struct kafka_out *o)
{
  struct sl_list *e;
  struct kbatch *kb;
  int rc;

  while ((e = sl_list_first(&o->retries)) != NULL) {
    struct kretry *r = sl_container_of(e, struct kretry, link);
    rc = produce_one(o, r->kb, r->p, r->n);
    if (rc == SL_EAGAIN)
      return rc;
    sl_list_remove(e);
    if (rc)
      r->kb->undelivered++;
    r->kb->outstanding--;  /* the entry's hold (dr_cb) */
    free(r);
  }
  kb = o->stalled;
  while (kb && kb->off < kb->b->len) {
    const char *p = kb->b->data + kb->off;
    size_t left = kb->b->len - kb->off;
    const char *nl = memchr(p, '\n', left);
    size_t n = nl ? (size_t)(nl - p) : left;

    if (n > 0) {
      rc = produce_one(o, kb, p, n);
      if (rc == SL_EAGAIN)
        return rc;
      if (rc)
        kb->undelivered++;
    }
    kb->off += n + (nl != NULL);
  }
  o->stalled = NULL;
  return SL_OK;
}

/* Ack, oldest first, every batch whose messages are all accounted for. */
static void
complete(struct kafka_out *o)
{
  struct sl_batch *b;
  int progress = 0;

  if (o->dlq_dirty) {
    if (fdatasync(o->dlq_fd) != 0) {
      /* Nothing is acked until the dead letters are on disk; the next
       * round tries again. */
      int rc = -errno;
      o->dlq_failed++;
      sl_log(SL_LOG_ERROR, "out.kafka", "cannot sync the dead-letter file",
             SL_LF_STR, "path", o->dlq_path, SL_LF_ERR, rc, SL_LF_END);
      return;
    }
    o->dlq_dirty = 0;
  }
  while ((b = sl_batchq_first(&o->sent)) != NULL) {
    struct kbatch *kb = b->out_priv;
    if (kb == o->stalled || kb->outstanding || kb->undelivered)
      break;
    /* A retry entry holds an outstanding count (dr_cb), so a batch is
     * never acked before its re-produced messages are delivered. */
    sl_batchq_pop(&o->sent);
    b->out_priv = NULL;
    free(kb);
    o->st.inflight--;
    progress = 1;
    o->cbs.acked(o->cbs.arg, b);
  }
  if (progress && !o->closing)
    o->cbs.writable(o->cbs.arg);
}

static void
dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
  struct kafka_out *o = opaque;
  struct kbatch *kb = m->_private;
  rd_kafka_resp_err_t e = m->err;

  kb->outstanding--;
  if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
    o->delivered++;
    o->all_down = 0;
    return;
  }
  if (e == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
      e == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT || o->closing || o->fatal) {
    kb->undelivered++;
    return;
  }
  o->errors++;
  if (permanent(e)) {
    if (dead_letter(o, m->payload, m->len,
                    m->rkt ? rd_kafka_topic_name(m->rkt) : "?", e))
      kb->undelivered++;
    return;
  }
  {
    /* Transient (a finite message.timeout.ms expired, ...): again. */
    struct kretry *r = calloc(1, sizeof(*r));
    if (r == NULL) {
      kb->undelivered++;
      return;
    }
    r->kb = kb;
    r->p = m->payload;
    r->n = m->len;
    kb->outstanding++;   /* held by the retry entry until produced */
    sl_list_insert_tail(&o->retries, &r->link);
    o->retried++;
  }
}

static void
error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
  struct kafka_out *o = opaque;
  char buf[512];

  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
    o->all_down = 1;
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    o->fatal = 1;
    rd_kafka_fatal_error(rk, buf, sizeof(buf));
    sl_log(SL_LOG_ERROR, "out.kafka", "fatal producer error",
           SL_LF_STR, "reason", buf, SL_LF_END);
    return;
  }
  sl_log(SL_LOG_WARN, "out.kafka", "kafka error",
         SL_LF_STR, "error.code", rd_kafka_err2name((rd_kafka_resp_err_t)err),
         SL_LF_STR, "reason", reason, SL_LF_END);
}

static void
log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
  sl_log(level <= 3 ? SL_LOG_ERROR : level <= 4 ? SL_LOG_WARN :
         level <= 6 ? SL_LOG_INFO : SL_LOG_DEBUG, "out.kafka", buf,
         SL_LF_STR, "facility", fac, SL_LF_END);
}

static void destroy_rk(struct kafka_out *o);
static int start_producer(struct kafka_out *o, char *err, size_t errlen);

/* Purge librdkafka, destroy it, then hand every unacked batch back to the
 * agent, newest first so its queue keeps the order. The handle goes
 * before the batches: no report can reach a freed kbatch. */
static void
give_back(struct kafka_out *o)
{
  struct sl_batch *b;
  struct sl_list *e;

  if (o->rk) {
    rd_kafka_purge(o->rk, RD_KAFKA_PURGE_F_QUEUE |
                   RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(o->rk, 0);
  }
  complete(o);
  destroy_rk(o);
  while ((e = sl_list_pop(&o->retries)) != NULL)
    free(sl_container_of(e, struct kretry, link));
  while ((b = sl_batchq_pop_last(&o->sent)) != NULL) {
    free(b->out_priv);
    b->out_priv = NULL;
    o->st.inflight--;
    o->st.resent++;
    o->cbs.requeue(o->cbs.arg, b);
  }
  o->stalled = NULL;
}

/* A fatal error (idempotence state lost, e.g. an out-of-order sequence
 * the broker refuses) leaves the producer unusable: start a new one and
 * send every unacked batch again. Events that did reach Kafka arrive
 * twice; the collector dedupes them by event.id. */
static void
restart_producer(struct kafka_out *o)
{
  char err[512];

  sl_log(SL_LOG_WARN, "out.kafka", "restarting the producer after a fatal "
         "error; unacknowledged batches are sent again", SL_LF_INT,
         "batches", (int64_t)o->sent.n, SL_LF_END);
  give_back(o);
  o->restarts++;
  if (start_producer(o, err, sizeof(err)) != SL_OK) {
    sl_log(SL_LOG_ERROR, "out.kafka", "cannot restart the producer",
           SL_LF_STR, "reason", err, SL_LF_END);
    o->fatal = 1;
    uv_timer_start(&o->timer, timer_cb, RESTART_MS, 0);
    return;
  }
  o->cbs.writable(o->cbs.arg);
}

/* Serve delivery reports, then produce what waits, then ack. */
static void
serve(struct kafka_out *o)
{
  int i;

  if (o->closing)
    return;
  if (o->rk == NULL || o->fatal) {
    restart_producer(o);
    return;
  }
  /* Each rd_kafka_poll serves a bounded number of reports; bound the
   * rounds too so one wakeup cannot starve the loop. */
  for (i = 0; i < POLL_ROUNDS && rd_kafka_poll(o->rk, 0) > 0; i++)
    ;
  if (o->fatal) {
    restart_producer(o);
    return;
  }
  produce_waiting(o);
  complete(o);
  arm_timer(o);
}


static void
arm_timer(struct kafka_out *o)
{
  struct sl_batch *b = sl_batchq_first(&o->sent);
  struct kbatch *kb = b ? b->out_priv : NULL;
  uint64_t ms;

  if (o->closing)
    return;
  if (o->fatal)
    ms = 0;
  else if (kb && kb != o->stalled && kb->outstanding == 0 &&
           kb->undelivered == 0 && !o->dlq_dirty)
    ms = 0;
  else if (o->stalled || !sl_list_empty(&o->retries))
    ms = STALL_RETRY_MS;
  else if (o->st.inflight)
    ms = POLL_MS;
  else
    return;
  uv_timer_start(&o->timer, timer_cb, ms, 0);
}

static void
poll_cb(uv_poll_t *h, int status, int events)
{
  struct kafka_out *o = h->data;
  char buf[256];

  while (read(o->pipefd[0], buf, sizeof(buf)) > 0)
    ;
  serve(o);
}

/* ---- ops -------------------------------------------------------------- */

static void
handle_closed(uv_handle_t *h)
{
  struct kafka_out *o = h->data;

  if (--o->handles > 0)
    return;
  if (o->pipefd[0] >= 0)
    close(o->pipefd[0]);
  if (o->pipefd[1] >= 0)
    close(o->pipefd[1]);
  if (o->dlq_fd >= 0)
    close(o->dlq_fd);
  free(o->dlq_path);
  sl_ktopic_free(o->topic);
  if (o->close_cb)
    o->close_cb(o->close_arg);
  free(o);
}

static void
destroy_rk(struct kafka_out *o)
{
  if (o->rkt)
    rd_kafka_topic_destroy(o->rkt);
  o->rkt = NULL;
  if (o->rk)
    rd_kafka_destroy(o->rk);
  o->rk = NULL;
}

/* A producer on o->pipefd. Also after a fatal error (restart_producer). */
static int
start_producer(struct kafka_out *o, char *err, size_t errlen)
{
  rd_kafka_conf_t *conf = NULL;
  rd_kafka_queue_t *q;
  const char *s;
  char terr[512];
  int rc;

  /* The conf was validated with the same function (sl_out_kafka_check);
   * err names the key if it fails anyway. */
  rc = build_conf(NULL, o->ac, &conf, err, errlen);
  if (rc)
    return rc;
  rd_kafka_conf_set_opaque(conf, o);
  rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
  rd_kafka_conf_set_error_cb(conf, error_cb);
  rd_kafka_conf_set_log_cb(conf, log_cb);
  o->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, terr, sizeof(terr));
  if (o->rk == NULL) {
    rd_kafka_conf_destroy(conf);
    snprintf(err, errlen, "kafka producer: %s", terr);
    return SL_ECONFIG;
  }
  s = sl_ktopic_static(o->topic);
  if (s) {
    o->rkt = rd_kafka_topic_new(o->rk, s, NULL);
    if (o->rkt == NULL) {
      snprintf(err, errlen, "output.topic %s: %s", s,
               rd_kafka_err2str(rd_kafka_last_error()));
      destroy_rk(o);
      return SL_ECONFIG;
    }
  }
  q = rd_kafka_queue_get_main(o->rk);
  rd_kafka_queue_io_event_enable(q, o->pipefd[1], "k", 1);
  rd_kafka_queue_destroy(q);
  o->fatal = 0;
  o->all_down = 0;
  return SL_OK;
}

static int
kafka_init(uv_loop_t *loop, const struct sl_agent_conf *ac,
           const struct sl_out_cbs *cbs, struct sl_out **out, char *err,
           size_t errlen)
{
  struct kafka_out *o;
  const char *s;
  char terr[512];
  int rc;

  o = calloc(1, sizeof(*o));
  if (o == NULL)
    return SL_ENOMEM;
  o->base.ops = &sl_out_kafka_ops;
  o->loop = loop;
  o->cbs = *cbs;
  o->ac = ac;
  o->dlq_fd = -1;
  o->pipefd[0] = o->pipefd[1] = -1;
  sl_batchq_init(&o->sent);
  sl_list_init(&o->retries);
  s = sl_conf_str(ac->output, "key");
  if (s == NULL || sl_kkey_parse(s, &o->key))
    o->key = SL_KKEY_EVENT_ID;
  o->key_path = sl_kkey_path(o->key);
  rc = sl_ktopic_compile(sl_conf_str(ac->output, "topic"), &o->topic, terr,
                         sizeof(terr));
  if (rc) {
    snprintf(err, errlen, "output.topic: %s", terr);
    goto fail;
  }
  s = sl_conf_str(ac->output, "dead_letter_path");
  if (s && *s) {
    o->dlq_path = strdup(s);
  } else {
    size_t n = strlen(ac->data_dir) + 32;
    o->dlq_path = malloc(n);
    if (o->dlq_path)
      snprintf(o->dlq_path, n, "%s/kafka-dead-letter.ndjson", ac->data_dir);
  }
  if (o->dlq_path == NULL) {
    rc = SL_ENOMEM;
    goto fail;
  }
  if (pipe2(o->pipefd, O_NONBLOCK | O_CLOEXEC) != 0) {
    rc = -errno;
    snprintf(err, errlen, "pipe: %s", strerror(errno));
    goto fail;
  }
  rc = start_producer(o, err, errlen);
  if (rc)
    goto fail;
  uv_poll_init(loop, &o->poll, o->pipefd[0]);
  uv_timer_init(loop, &o->timer);
  o->poll.data = o->timer.data = o;
  o->handles = 2;
  uv_poll_start(&o->poll, UV_READABLE, poll_cb);
  sl_log(SL_LOG_INFO, "out.kafka", "producer started",
         SL_LF_STR, "topic", sl_conf_str(ac->output, "topic"),
         SL_LF_STR, "dead_letter_path", o->dlq_path, SL_LF_END);
  *out = &o->base;
  return SL_OK;
fail:
  destroy_rk(o);
  if (o->pipefd[0] >= 0)
    close(o->pipefd[0]);
  if (o->pipefd[1] >= 0)
    close(o->pipefd[1]);
  free(o->dlq_path);
  sl_ktopic_free(o->topic);
  free(o);
  return rc ? rc : SL_EINTERNAL;
}

static enum sl_out_result
kafka_send(struct sl_out *base, struct sl_batch *b)
{
  struct kafka_out *o = (struct kafka_out *)base;
  struct kbatch *kb;

  if (o->closing || o->fatal || o->stalled || !sl_list_empty(&o->retries))
    return SL_RETRY;
  kb = calloc(1, sizeof(*kb));
  if (kb == NULL)
    return SL_RETRY;
  kb->b = b;
  b->out_priv = kb;
  sl_batchq_push(&o->sent, b);
  o->st.inflight++;
  o->stalled = kb;
  produce_waiting(o);
  /* No complete() here: acking from inside send() would free the batch
   * under the agent's pump loop. A batch done already (every event
   * dead-lettered) is acked from the timer, at once. */
  arm_timer(o);
  return SL_SENT;
}

static int
kafka_ready(const struct sl_out *base)
{
  const struct kafka_out *o = (const struct kafka_out *)base;

  return !o->fatal && !o->all_down && !o->closing;
}

static void
kafka_stats(const struct sl_out *base, struct sl_out_stats *st)
{
  const struct kafka_out *o = (const struct kafka_out *)base;

  *st = o->st;
  st->connected = !o->all_down && !o->fatal;
}

static int
kafka_metrics(const struct sl_out *base, struct sl_buf *b)
{
  const struct kafka_out *o = (const struct kafka_out *)base;
  int rc = 0;

#define C(name, help, v) \
  rc |= sl_prom_counter(b, "sluice_agent_kafka_" name, help, NULL, (v))
  C("messages_produced_total", "messages handed to librdkafka (with "
    "re-produced ones)", o->produced);
  C("messages_delivered_total", "messages the brokers acknowledged",
    o->delivered);
  C("dead_letters_total", "events refused by Kafka and written to the "
    "dead-letter file", o->dead);
  C("dead_letter_failures_total", "dead-letter writes that failed (event "
    "kept, not acknowledged)", o->dlq_failed);
  C("errors_total", "failed deliveries and produce calls", o->errors);
  C("messages_retried_total", "messages produced again after a transient "
    "failure", o->retried);
  C("queue_full_total", "produce calls refused by a full librdkafka queue",
    o->queue_full);
#undef C
  rc |= sl_prom_gauge(b, "sluice_agent_kafka_queue_messages",
                      "messages in librdkafka's queue or in flight", NULL,
                      o->rk ? (double)rd_kafka_outq_len(o->rk) : 0.0);
  rc |= sl_prom_counter(b, "sluice_agent_kafka_producer_restarts_total",
                        "producers replaced after a fatal error", NULL,
                        o->restarts);
  return rc;
}

static void
kafka_close(struct sl_out *base, void (*cb)(void *arg), void *arg)
{
  struct kafka_out *o = (struct kafka_out *)base;

  o->close_cb = cb;
  o->close_arg = arg;
  /* What was produced may still be delivered: give it a short bound
   * (this blocks the loop; the agent's drain was the real flush). */
  if (o->rk && !o->closing && !o->fatal && rd_kafka_outq_len(o->rk) > 0)
    rd_kafka_flush(o->rk, CLOSE_FLUSH_MS);
  o->closing = 1;
  give_back(o);
  uv_timer_stop(&o->timer);
  uv_poll_stop(&o->poll);
  uv_close((uv_handle_t *)&o->timer, handle_closed);
  uv_close((uv_handle_t *)&o->poll, handle_closed);
}

const struct sl_out_ops sl_out_kafka_ops = {
  "kafka", kafka_init, kafka_send, kafka_ready, kafka_stats, kafka_close,
  kafka_metrics,
};
