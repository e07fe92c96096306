/* The Kafka input against librdkafka's in-process mock cluster (real
 * Kafka protocol over 127.0.0.1): every message becomes exactly one
 * spooled event, ids of messages without event.id come from
 * topic/partition/offset, malformed messages become dead letters with
 * their place, offsets are committed only for spooled records, a full
 * spool pauses the partitions and nothing is lost when it resumes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <uv.h>

#include "bulk.h"
#include "input.h"
#include "input_kafka.h"
#include "sl_err.h"
#include "sl_hash.h"
#include "sl_log.h"
#include "sl_test.h"
#include "spool.h"

#define TOPIC "logs"

struct fx {
  uv_loop_t loop;
  char dir[64];
  struct sl_spool *spool;
  rd_kafka_t *host;              /* owns the mock cluster */
  rd_kafka_mock_cluster_t *mc;
  char boot[256];
  rd_kafka_t *prod;
  struct sl_input_kafka *k;
  int closed;
  /* Events read back from the spool, one JSON object each. */
  json_t *events;
  int release;                   /* release records as they are read */
};

static void
fx_open(struct fx *f, uint64_t spool_max, int partitions)
{
  struct sl_spool_opts so;
  rd_kafka_conf_t *conf;
  char err[512];

  memset(f, 0, sizeof(*f));
  assert_int_equal(uv_loop_init(&f->loop), 0);
  sl_test_tmpdir(f->dir, sizeof(f->dir), "kafka");
  memset(&so, 0, sizeof(so));
  so.data_dir = f->dir;
  so.max_bytes = spool_max;
  so.commit_interval_ms = 2;
  assert_int_equal(sl_spool_open(&f->loop, &so, &f->spool, err,
                                 sizeof(err)), 0);
  f->events = json_array();

  conf = rd_kafka_conf_new();
  f->host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  assert_non_null(f->host);
  f->mc = rd_kafka_mock_cluster_new(f->host, 1);
  assert_non_null(f->mc);
  snprintf(f->boot, sizeof(f->boot), "%s",
           rd_kafka_mock_cluster_bootstraps(f->mc));
  assert_int_equal(rd_kafka_mock_topic_create(f->mc, TOPIC, partitions, 1),
                   0);
  conf = rd_kafka_conf_new();
  assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", f->boot,
                                     err, sizeof(err)), RD_KAFKA_CONF_OK);
  f->prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  assert_non_null(f->prod);
}

static void
produce(struct fx *f, int32_t partition, const char *v, size_t len)
{
  assert_int_equal(rd_kafka_producev(
      f->prod, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(partition),
      RD_KAFKA_V_VALUE((void *)v, len), RD_KAFKA_V_MSGFLAGS(
          RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END), 0);
}

static void
produced(struct fx *f)
{
  assert_int_equal(rd_kafka_flush(f->prod, 20000), 0);
}

static json_t *
input_conf(struct fx *f, const char *group, const char *strategy)
{
  /* Short group timings: the mock coordinator waits for them. */
  return json_pack("{s:s, s:[s], s:[s], s:s, s:i, s:i, s:i, s:{s:s, s:s, "
                   "s:s}}",
                   "type", "kafka", "brokers", f->boot, "topics", TOPIC,
                   "group_id", group, "commit_interval", 100,
                   "max_message_bytes", 2048, "flush_bytes", 4096,
                   "properties", "session.timeout.ms", "6000",
                   "heartbeat.interval.ms", "200",
                   "partition.assignment.strategy", strategy);
}

static void
start_input_with(struct fx *f, const char *group, const char *strategy)
{
  json_t *in = input_conf(f, group, strategy);
  char err[512] = "";
  int rc;

  rc = sl_input_kafka_new(&f->loop, in, 0, "logs-sluice.deadletter-default",
                          f->spool, &f->k, err, sizeof(err));
  if (rc != 0)
    fail_msg("sl_input_kafka_new: %s", err);
  json_decref(in);
}

static void
start_input(struct fx *f, const char *group)
{
  start_input_with(f, group, "range,roundrobin");
}

/* Take what the spool has read, keep its events, release it when asked. */
static void
read_spool(struct fx *f)
{
  struct sl_spool_rec r;
  struct sl_span ev[4096];
  size_t n, i;

  while (sl_spool_next(f->spool, &r) == 0) {
    assert_int_equal(r.version, 2);
    n = sl_bulk_event_split(r.data, r.len, ev, 4096);
    assert_int_equal(n, r.nevents);
    for (i = 0; i < n; i++) {
      json_error_t e;
      json_t *o = json_loadb(ev[i].p, ev[i].len, 0, &e);

      if (o == NULL)
        fail_msg("spooled event is not JSON: %.*s", (int)ev[i].len,
                 ev[i].p);
      json_array_append_new(f->events, o);
    }
    if (f->release)
      sl_spool_release(f->spool, r.id);
    sl_spool_recycle(f->spool, r.data, r.cap);
  }
}

struct want {
  struct fx *f;
  size_t n;
};

static int
have_events(void *arg)
{
  struct want *w = arg;

  read_spool(w->f);
  return json_array_size(w->f->events) >= w->n;
}

static int
is_closed(void *arg)
{
  return ((struct fx *)arg)->closed;
}

static void
on_closed(void *arg)
{
  ((struct fx *)arg)->closed++;
}

static void
on_resume(void *arg)
{
  sl_input_kafka_resume(((struct fx *)arg)->k);
}

static void
close_input(struct fx *f)
{
  f->closed = 0;
  sl_input_kafka_close(f->k, 10000, on_closed, f);
  assert_true(sl_test_run_until(&f->loop, is_closed, f, 20000));
  f->k = NULL;
}

static void
fx_close(struct fx *f)
{
  if (f->k)
    close_input(f);
  f->closed = 0;
  sl_spool_close(f->spool, on_closed, f);
  assert_true(sl_test_run_until(&f->loop, is_closed, f, 10000));
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  rd_kafka_destroy(f->prod);
  rd_kafka_mock_cluster_destroy(f->mc);
  rd_kafka_destroy(f->host);
  json_decref(f->events);
  sl_test_rm_rf(f->dir);
}

/* Committed offset of TOPIC/partition for group, asked as a new member. */
static int64_t
committed(struct fx *f, const char *group, int32_t partition)
{
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_topic_partition_list_t *l;
  rd_kafka_t *c;
  char err[512];
  int64_t off;

  rd_kafka_conf_set(conf, "bootstrap.servers", f->boot, err, sizeof(err));
  rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err));
  c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
  assert_non_null(c);
  l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, TOPIC, partition);
  assert_int_equal(rd_kafka_committed(c, l, 10000), 0);
  off = l->elems[0].offset;
  rd_kafka_topic_partition_list_destroy(l);
  rd_kafka_destroy_flags(c, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  return off;
}

static const char *
sget(json_t *o, const char *a, const char *b)
{
  return json_string_value(json_object_get(json_object_get(o, a), b));
}

static void
test_messages_become_events_exactly_once(void **state)
{
  struct fx f;
  struct want w = { &f, 100 };
  char msg[4200], id[33], key[64];
  struct sl_input_kafka_stats st;
  int i, n, seen[100], dls = 0;
  size_t j;

  (void)state;
  fx_open(&f, 0, 1);
  for (i = 0; i < 100; i++) {
    if (i < 90 && i % 2 == 0)
      n = snprintf(msg, sizeof(msg), "{\"message\":\"m %d\",\"event\":"
                   "{\"id\":\"given-%d\"}}", i, i);
    else if (i < 90)
      n = snprintf(msg, sizeof(msg), "{\"message\":\"m %d\"}", i);
    else if (i < 95)
      n = snprintf(msg, sizeof(msg), "not json %d", i);
    else if (i == 95)
      n = snprintf(msg, sizeof(msg), "{\"message\":\"m %d\",\"pad\":\"%4000d"
                   "\"}", i, 0);
    else
      n = snprintf(msg, sizeof(msg), "[%d]", i);
    produce(&f, 0, msg, (size_t)n);
  }
  produced(&f);
  start_input(&f, "g1");
  assert_true(sl_test_run_until(&f.loop, have_events, &w, 30000));
  /* Let a straggler (a duplicate) show up if there were one. */
  w.n = 101;
  sl_test_run_until(&f.loop, have_events, &w, 300);
  assert_int_equal(json_array_size(f.events), 100);

  memset(seen, 0, sizeof(seen));
  for (j = 0; j < json_array_size(f.events); j++) {
    json_t *e = json_array_get(f.events, j);
    const char *m = json_string_value(json_object_get(e, "message"));
    const char *eid = sget(e, "event", "id");

    assert_non_null(eid);
    assert_non_null(json_object_get(e, "@timestamp"));
    if (strcmp(m, "malformed Kafka message") == 0) {
      const char *off = sget(e, "labels", "kafka_offset");

      i = atoi(off);
      assert_true(i >= 90);
      assert_string_equal(sget(e, "labels", "kafka_topic"), TOPIC);
      assert_string_equal(sget(e, "labels", "kafka_partition"), "0");
      assert_string_equal(sget(e, "data_stream", "dataset"),
                          "sluice.deadletter");
      assert_non_null(sget(e, "error", "message"));
      dls++;
    } else {
      assert_int_equal(sscanf(m, "m %d", &i), 1);
      assert_true(i < 90);
    }
    seen[i]++;
    if (i < 90 && i % 2 == 0) {
      snprintf(key, sizeof(key), "given-%d", i);
      assert_string_equal(eid, key);
    } else {
      n = snprintf(key, sizeof(key), TOPIC "/0/%d", i);
      sl_hash128_hex(sl_hash128(key, (size_t)n), id);
      assert_string_equal(eid, id);
    }
  }
  for (i = 0; i < 100; i++)
    assert_int_equal(seen[i], 1);
  assert_int_equal(dls, 10);
  sl_input_kafka_stats(f.k, &st);
  assert_int_equal(st.messages, 100);
  assert_int_equal(st.deadletters, 10);
  assert_int_equal(st.paused, 0);

  /* Leaving the group commits every offset of what is in the spool. */
  close_input(&f);
  assert_int_equal(committed(&f, "g1", 0), 100);
  fx_close(&f);
}

/* The spool fills up: the partitions pause (nothing lost, nothing held
 * beyond the prefetch), and everything arrives once it drains. */
static void
test_full_spool_pauses_and_resumes(void **state)
{
  struct fx f;
  struct want w = { &f, 3000 };
  struct sl_input_kafka_stats st;
  char msg[256];
  int i, n, p, *seen, paused_seen = 0;
  size_t j;

  (void)state;
  fx_open(&f, 32 << 10, 3);
  sl_spool_set_resume_cb(f.spool, on_resume, &f);
  for (i = 0; i < 3000; i++) {
    n = snprintf(msg, sizeof(msg), "{\"message\":\"m %d\",\"n\":%d,"
                 "\"pad\":\"%080d\"}", i, i, 0);
    produce(&f, i % 3, msg, (size_t)n);
  }
  produced(&f);
  start_input(&f, "g2");
  /* Nobody reads: the spool fills and the input pauses. */
  for (i = 0; i < 400 && !paused_seen; i++) {
    uv_run(&f.loop, UV_RUN_ONCE);
    sl_input_kafka_stats(f.k, &st);
    paused_seen = (int)st.paused;
  }
  assert_true(paused_seen);
  /* Now drain (release as we read): resume, and every event comes. */
  f.release = 1;
  assert_true(sl_test_run_until(&f.loop, have_events, &w, 60000));
  w.n = 3001;
  sl_test_run_until(&f.loop, have_events, &w, 300);
  seen = calloc(3000, sizeof(int));
  for (j = 0; j < json_array_size(f.events); j++) {
    json_t *e = json_array_get(f.events, j);

    seen[json_integer_value(json_object_get(e, "n"))]++;
  }
  for (i = 0; i < 3000; i++)
    assert_int_equal(seen[i], 1);
  free(seen);
  sl_input_kafka_stats(f.k, &st);
  assert_int_equal(st.paused, 0);
  assert_int_equal(st.messages, 3000);
  close_input(&f);
  for (p = 0; p < 3; p++)
    assert_int_equal(committed(&f, "g2", p), 1000);
  fx_close(&f);
}

/* The Kafka input's event conversion: its id and time for events that
 * have none, the event's own otherwise, and non-objects or events over a
 * limit refused (they become dead letters) instead of wrapped. */
static int
norm(const char *ev, const struct sl_input_limits *lim, int64_t ts_ns,
     struct sl_buf *b, char *why, size_t whylen)
{
  sl_buf_reset(b);
  return sl_input_event_normalize_ex(ev, strlen(ev), lim, "abc", ts_ns, b,
                                     why, whylen);
}

static void
test_normalize_ex(void **state)
{
  static const char own[] = "{\"event\":{\"id\":\"own\"},\"@timestamp\":"
                            "\"2026-12-01T10:00:00.000Z\"}";
  struct sl_input_limits lim;
  struct sl_buf b;
  char why[256];
  json_t *o;

  (void)state;
  sl_input_limits_default(&lim);
  sl_buf_init(&b, 0);
  assert_int_equal(norm("{\"message\":\"x\"}", &lim, 1000000000LL, &b, why,
                        sizeof(why)), 0);
  o = json_loadb(b.p, b.len, 0, NULL);
  assert_string_equal(sget(o, "event", "id"), "abc");
  assert_string_equal(json_string_value(json_object_get(o, "@timestamp")),
                      "1970-01-01T00:00:01.000Z");
  json_decref(o);
  /* Pretty-printed (the jansson path) gets the same treatment. */
  assert_int_equal(norm("{\n\"event\": {}\n}", &lim, 1000000000LL, &b, why,
                        sizeof(why)), 0);
  o = json_loadb(b.p, b.len, 0, NULL);
  assert_string_equal(sget(o, "event", "id"), "abc");
  json_decref(o);
  /* An event with both goes through byte for byte. */
  assert_int_equal(norm(own, &lim, 5, &b, why, sizeof(why)), 0);
  assert_int_equal(b.len, strlen(own) + 1);
  assert_memory_equal(b.p, own, strlen(own));
  /* Not an object, not JSON, over a limit: refused, nothing written. */
  assert_int_equal(norm("[1]", &lim, 0, &b, why, sizeof(why)), SL_EPARSE);
  assert_int_equal(b.len, 0);
  assert_int_equal(norm("nope", &lim, 0, &b, why, sizeof(why)), SL_EPARSE);
  assert_int_equal(b.len, 0);
  assert_true(why[0] != '\0');
  lim.max_depth = 2;
  assert_int_equal(norm("{\"a\":{\"b\":{\"c\":1}}}", &lim, 0, &b, why,
                        sizeof(why)), SL_EPARSE);
  assert_int_equal(b.len, 0);
  assert_non_null(strstr(why, "max_depth"));
  sl_buf_free(&b);
}

/* The cooperative protocol takes the incremental assign/unassign path of
 * the rebalance handler, and the close still commits. */
static void
test_cooperative_assignment(void **state)
{
  struct fx f;
  struct want w = { &f, 400 };
  char msg[64];
  int i, n;

  (void)state;
  fx_open(&f, 0, 2);
  for (i = 0; i < 400; i++) {
    n = snprintf(msg, sizeof(msg), "{\"message\":\"c %d\"}", i);
    produce(&f, i % 2, msg, (size_t)n);
  }
  produced(&f);
  start_input_with(&f, "g3", "cooperative-sticky");
  assert_true(sl_test_run_until(&f.loop, have_events, &w, 30000));
  assert_int_equal(json_array_size(f.events), 400);
  close_input(&f);
  assert_int_equal(committed(&f, "g3", 0), 200);
  assert_int_equal(committed(&f, "g3", 1), 200);
  fx_close(&f);
}

SL_TEST_MAIN(NULL, NULL,
             cmocka_unit_test(test_normalize_ex),
             cmocka_unit_test(test_cooperative_assignment),
             cmocka_unit_test(test_messages_become_events_exactly_once),
             cmocka_unit_test(test_full_spool_pauses_and_resumes))
