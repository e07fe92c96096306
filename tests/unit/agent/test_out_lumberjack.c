/* test_out_lumberjack.c - the Lumberjack output against an in-process
 * receiver on a real loop.
 *
 * Regression: the ack of a window can be read before libuv ran the
 * window's write callback (on loopback a write that completed inside
 * uv_write() is called back only on the next loop iteration, and the read
 * loop may see the ack first). The output used to hand the batch to
 * `acked` at once; the agent freed it, and libuv walked the freed
 * uv_write_t (segfault in uv__count_bufs under bench/run.sh). Made
 * deterministic here with a receiver that acks on the W frame while the
 * rest of a 32 MiB window cannot be written yet: the ack must wait for
 * the write callback. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "out.h"
#include "sl_lj.h"
#include "sl_log.h"

/* Far more than loopback socket buffers hold, so the write stays queued. */
#define BIG (32u << 20)

struct fix {
  uv_loop_t loop;
  uv_tcp_t srv, peer;
  uv_timer_t resume;
  uv_write_t ackreq;
  char ackbuf[SL_LJ_HDR_LEN];
  char rbuf[65536];
  uint64_t got;          /* bytes the receiver read */
  int acked_sent, resumed, acked, sent, closed;
  int acked_after_resume;
  struct sl_out *out;
  struct sl_batch *b;
};

static struct fix F;

static void
on_acked(void *arg, struct sl_batch *b)
{
  assert_ptr_equal(b, F.b);
  F.acked++;
  F.acked_after_resume = F.resumed;
  sl_batch_free(b);
  F.b = NULL;
}

static void
on_requeue(void *arg, struct sl_batch *b)
{
  fail_msg("window requeued");
}

static void
out_closed(void *arg)
{
  F.closed = 1;
}

static void
on_writable(void *arg)
{
  if (F.sent || F.out == NULL)
    return;
  if (F.out->ops->send(F.out, F.b) == SL_SENT)
    F.sent = 1;
}

static void
peer_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
  buf->base = F.rbuf;
  buf->len = sizeof(F.rbuf);
}

static void resume_cb(uv_timer_t *t);

static void
peer_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
  uv_buf_t ab;

  if (n <= 0)
    return;
  F.got += (uint64_t)n;
  if (!F.acked_sent && F.got >= SL_LJ_HDR_LEN) {
    /* Ack on the W frame alone, then stop reading for a while. */
    sl_lj_put_hdr(F.ackbuf, SL_LJ_ACK, 1);
    ab = uv_buf_init(F.ackbuf, sizeof(F.ackbuf));
    assert_int_equal(uv_write(&F.ackreq, s, &ab, 1, NULL), 0);
    F.acked_sent = 1;
    uv_read_stop(s);
    uv_timer_start(&F.resume, resume_cb, 300, 0);
  }
  if (F.got == BIG + SL_LJ_HDR_LEN && F.acked) {
    F.out->ops->close(F.out, out_closed, NULL);
    F.out = NULL;
    uv_close((uv_handle_t *)&F.peer, NULL);
    uv_close((uv_handle_t *)&F.srv, NULL);
    uv_close((uv_handle_t *)&F.resume, NULL);
  }
}

static void
resume_cb(uv_timer_t *t)
{
  F.resumed = 1;
  assert_int_equal(F.acked, 0);
  uv_read_start((uv_stream_t *)&F.peer, peer_alloc, peer_read);
}

static void
on_conn(uv_stream_t *s, int status)
{
  assert_int_equal(status, 0);
  uv_tcp_init(&F.loop, &F.peer);
  assert_int_equal(uv_accept(s, (uv_stream_t *)&F.peer), 0);
  uv_read_start((uv_stream_t *)&F.peer, peer_alloc, peer_read);
}

static void
test_ack_before_write_done(void **state)
{
  struct sl_agent_conf ac;
  struct sl_out_cbs cbs = { NULL, on_acked, on_requeue, on_writable };
  struct sockaddr_in sa;
  struct sockaddr_storage name;
  int namelen = sizeof(name), port;
  char host[64], err[256];

  memset(&F, 0, sizeof(F));
  sl_log_set_level(SL_LOG_ERROR);
  assert_int_equal(uv_loop_init(&F.loop), 0);
  uv_tcp_init(&F.loop, &F.srv);
  uv_timer_init(&F.loop, &F.resume);
  uv_ip4_addr("127.0.0.1", 0, &sa);
  assert_int_equal(uv_tcp_bind(&F.srv, (struct sockaddr *)&sa, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&F.srv, 4, on_conn), 0);
  uv_tcp_getsockname(&F.srv, (struct sockaddr *)&name, &namelen);
  port = ntohs(((struct sockaddr_in *)&name)->sin_port);
  snprintf(host, sizeof(host), "127.0.0.1:%d", port);

  /* One window: a W frame for one event, then bytes the receiver never
   * parses (it acks on the W frame). */
  F.b = calloc(1, sizeof(*F.b));
  F.b->data = malloc(BIG + SL_LJ_HDR_LEN);
  assert_non_null(F.b->data);
  sl_lj_put_hdr(F.b->data, SL_LJ_WINDOW, 1);
  memset(F.b->data + SL_LJ_HDR_LEN, 'x', BIG);
  F.b->len = BIG + SL_LJ_HDR_LEN;
  F.b->cap = F.b->len;
  F.b->events = 1;

  memset(&ac, 0, sizeof(ac));
  ac.hosts[0] = host;
  ac.nhosts = 1;
  ac.timeout_ms = 30000;
  ac.max_inflight = 4;
  ac.backoff_base_ms = 10;
  ac.backoff_max_ms = 100;
  ac.queue_max_bytes = 8 << 20;
  assert_int_equal(sl_out_lumberjack_ops.init(&F.loop, &ac, &cbs, &F.out,
                                               err, sizeof(err)), 0);
  assert_int_equal(uv_run(&F.loop, UV_RUN_DEFAULT), 0);
  assert_true(F.sent);
  assert_true(F.acked_sent);
  assert_int_equal(F.acked, 1);
  /* The write could only finish once the receiver read again. */
  assert_true(F.acked_after_resume);
  assert_true(F.closed);
  assert_int_equal(uv_loop_close(&F.loop), 0);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_ack_before_write_done),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
