/* test_out_file.c - the file output (agent/out_file.c) on a real uv loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "batch.h"
#include "config.h"
#include "out.h"

struct ctx {
  struct sl_out *out;
  int acked, requeued, closed;
};

static void
closed_cb(void *arg)
{
  ((struct ctx *)arg)->closed++;
}

/* The agent closes its output when the last ack drains it: here, inside
 * the output's own fsync callback. */
static void
on_acked(void *arg, struct sl_batch *b)
{
  struct ctx *c = arg;

  c->acked++;
  sl_batch_free(b);
  if (c->acked == 1)
    c->out->ops->close(c->out, closed_cb, c);
}

static void
on_requeue(void *arg, struct sl_batch *b)
{
  ((struct ctx *)arg)->requeued++;
  sl_batch_free(b);
}

static void
on_writable(void *arg)
{
  (void)arg;
}

/* Regression: closing from the ack made fs_cb close the retry timer a
 * second time (uv_close assertion at every shutdown that drained on the
 * last fsync). */
static void
test_close_from_ack(void **state)
{
  char dir[] = "/tmp/sl-outfile-XXXXXX", path[64], err[256];
  struct sl_agent_conf ac;
  struct sl_out_cbs cbs;
  struct sl_batch *b;
  struct ctx c = { 0 };
  uv_loop_t loop;
  FILE *f;
  char got[16] = "";

  (void)state;
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/out.ndjson", dir);
  memset(&ac, 0, sizeof(ac));
  ac.out_type = SL_OUT_FILE;
  ac.path = path;
  ac.max_inflight = 4;
  ac.backoff_base_ms = 10;
  ac.backoff_max_ms = 100;
  cbs.arg = &c;
  cbs.acked = on_acked;
  cbs.requeue = on_requeue;
  cbs.writable = on_writable;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(sl_out_file_ops.init(&loop, &ac, &cbs, &c.out, err,
                                        sizeof(err)), 0);
  b = calloc(1, sizeof(*b));
  assert_non_null(b);
  b->data = strdup("{\"a\":1}\n");
  b->len = b->cap = strlen(b->data);
  b->events = 1;
  assert_int_equal(c.out->ops->send(c.out, b), SL_SENT);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(c.acked, 1);
  assert_int_equal(c.requeued, 0);
  assert_int_equal(c.closed, 1);
  assert_int_equal(uv_loop_close(&loop), 0);
  f = fopen(path, "r");
  assert_non_null(f);
  assert_non_null(fgets(got, sizeof(got), f));
  fclose(f);
  assert_string_equal(got, "{\"a\":1}\n");
  unlink(path);
  rmdir(dir);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_close_from_ack),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
