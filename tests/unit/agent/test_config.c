/* test_config.c - the agent schema table and its typed view. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "config.h"
#include "sl_conf.h"
#include "sl_err.h"

static int
load(const char *yaml, struct sl_conf **c, struct sl_agent_conf *ac,
     char *err, size_t errlen)
{
  int rc;

  err[0] = '\0';
  rc = sl_conf_load_str("t.yml", yaml, strlen(yaml), sl_agent_schema, c,
                        err, errlen);
  if (rc)
    return rc;
  return sl_agent_conf_read(*c, ac, err, errlen);
}

static void
test_defaults(void **state)
{
  struct sl_conf *c = NULL;
  struct sl_agent_conf ac;
  char err[256];

  assert_int_equal(load("data_dir: /tmp/d\n"
                        "inputs:\n"
                        "  - paths: /var/log/*.log\n"
                        "output:\n"
                        "  hosts: [10.0.0.1:5044, 'lj.example:5045']\n",
                        &c, &ac, err, sizeof(err)), 0);
  assert_string_equal(ac.data_dir, "/tmp/d");
  assert_int_equal(ac.workers, 2);
  assert_string_equal(ac.http_listen, "127.0.0.1:5076");
  assert_int_equal(ac.queue_max_bytes, 8u << 20);
  assert_int_equal(ac.batch_max_events, 2048);
  assert_int_equal(ac.flush_interval_ms, 1000);
  assert_int_equal(ac.registry_flush_ms, 1000);
  assert_int_equal(ac.shutdown_timeout_ms, 30000);
  assert_int_equal(ac.out_type, SL_OUT_LUMBERJACK);
  assert_int_equal(ac.fmt, SL_FMT_LUMBERJACK);
  assert_int_equal(ac.nhosts, 2);
  assert_int_equal(ac.compression_level, 3);
  assert_int_equal(ac.max_inflight, 4);
  assert_int_equal(ac.timeout_ms, 30000);
  assert_int_equal(ac.max_line_bytes, 1u << 20);
  /* Input defaults are filled in for tail and parse. */
  assert_string_equal(sl_conf_str(json_array_get(ac.inputs, 0), "parser"),
                      "raw");
  assert_int_equal(sl_conf_int(json_array_get(ac.inputs, 0),
                               "scan_interval", 0), 10000);
  sl_conf_free(c);
}

static void
test_window_caps_batch(void **state)
{
  struct sl_conf *c = NULL;
  struct sl_agent_conf ac;
  char err[256];

  assert_int_equal(load("data_dir: /tmp/d\n"
                        "batch_max_events: 5000\n"
                        "inputs: [{paths: [/a]}]\n"
                        "output: {hosts: [127.0.0.1:1], window: 100}\n",
                        &c, &ac, err, sizeof(err)), 0);
  assert_int_equal(ac.batch_max_events, 100);
  sl_conf_free(c);
  assert_int_equal(load("data_dir: /tmp/d\n"
                        "batch_max_events: 5000\n"
                        "inputs: [{paths: [/a]}]\n"
                        "output: {type: file, path: /tmp/o, window: 100}\n",
                        &c, &ac, err, sizeof(err)), 0);
  assert_int_equal(ac.batch_max_events, 5000);  /* window is lumberjack's */
  assert_int_equal(ac.fmt, SL_FMT_NDJSON);
  sl_conf_free(c);
}

static void
test_semantic_errors(void **state)
{
  struct sl_conf *c = NULL;
  struct sl_agent_conf ac;
  char err[256];

  assert_int_equal(load("data_dir: /tmp/d\n"
                        "inputs: [{paths: [/a]}]\n"
                        "output:\n"
                        "  type: tcp\n",
                        &c, &ac, err, sizeof(err)), SL_ECONFIG);
  assert_non_null(strstr(err, "output.hosts"));
  assert_non_null(strstr(err, "t.yml:"));
  sl_conf_free(c);
  c = NULL;
  assert_int_equal(load("data_dir: /tmp/d\n"
                        "inputs: [{paths: [/a]}]\n"
                        "output:\n"
                        "  type: file\n",
                        &c, &ac, err, sizeof(err)), SL_ECONFIG);
  assert_non_null(strstr(err, "output.path"));
  sl_conf_free(c);
  c = NULL;
  assert_int_equal(load("data_dir: /tmp/d\n"
                        "workers: 0\n"
                        "inputs: [{paths: [/a]}]\n"
                        "output: {type: stdout}\n",
                        &c, &ac, err, sizeof(err)), SL_ECONFIG);
  assert_non_null(strstr(err, "t.yml:2:"));
  assert_non_null(strstr(err, "workers"));
  sl_conf_free(c);
  c = NULL;
  assert_int_equal(load("data_dir: /tmp/d\n"
                        "inputs: [{paths: [/a]}]\n"
                        "output: {hosts: ['nope:99999']}\n",
                        &c, &ac, err, sizeof(err)), SL_ECONFIG);
  sl_conf_free(c);
  c = NULL;
  assert_int_equal(load("data_dir: /tmp/d\n"
                        "inputs: [{paths: [/a], fingerprint: {length: 10}}]\n"
                        "output: {type: stdout}\n",
                        &c, &ac, err, sizeof(err)), SL_ECONFIG);
  assert_non_null(strstr(err, "inputs.fingerprint.length"));
  sl_conf_free(c);
  c = NULL;
  assert_int_equal(load("data_dir: /tmp/d\n"
                        "inputs: [{paths: [/a], read_gz: true,\n"
                        "          fingerprint: {offset: 512, length: 4KiB}}]\n"
                        "output: {type: stdout}\n",
                        &c, &ac, err, sizeof(err)), 0);
  sl_conf_free(c);
  c = NULL;
  /* Schema-level: enum and unknown keys. */
  assert_int_not_equal(load("data_dir: /tmp/d\n"
                            "inputs: [{paths: [/a], parser: xml}]\n"
                            "output: {type: stdout}\n",
                            &c, &ac, err, sizeof(err)), 0);
  sl_conf_free(c);
}

static void
test_split_hostport(void **state)
{
  char h[64];
  int port;

  assert_int_equal(sl_agent_split_hostport("127.0.0.1:5044", h, sizeof(h),
                                           &port), 0);
  assert_string_equal(h, "127.0.0.1");
  assert_int_equal(port, 5044);
  assert_int_equal(sl_agent_split_hostport("logs.example", h, sizeof(h),
                                           &port), 0);
  assert_string_equal(h, "logs.example");
  assert_int_equal(port, 0);
  assert_int_equal(sl_agent_split_hostport("[::1]:6000", h, sizeof(h),
                                           &port), 0);
  assert_string_equal(h, "::1");
  assert_int_equal(port, 6000);
  assert_int_equal(sl_agent_split_hostport("h:0", h, sizeof(h), &port),
                   SL_EINVAL);
  assert_int_equal(sl_agent_split_hostport("h:x", h, sizeof(h), &port),
                   SL_EINVAL);
  assert_int_equal(sl_agent_split_hostport(":80", h, sizeof(h), &port),
                   SL_EINVAL);
  assert_int_equal(sl_agent_split_hostport("[::1", h, sizeof(h), &port),
                   SL_EINVAL);
  assert_int_equal(sl_agent_split_hostport("", h, sizeof(h), &port),
                   SL_EINVAL);
}

/* Input ids: explicit, else a dataset no other input shares (as dataset
 * or id), else input-<n>; ids that could collide are refused. */
static void
test_input_ids(void **state)
{
  static const char *const want[] = {
    "web", "payments", "input-2", "input-3", "input-4", "input-5",
    "input-6",
  };
  struct sl_conf *c = NULL;
  struct sl_agent_conf ac;
  char err[256], id[SL_INPUT_ID_MAX];
  size_t i;

  (void)state;
  assert_int_equal(load("data_dir: /tmp/d\n"
                        "inputs:\n"
                        "  - {paths: /a, id: web, dataset: x}\n"
                        "  - {paths: /b, dataset: payments}\n"
                        "  - {paths: /c, dataset: dup}\n"
                        "  - {paths: /d, dataset: dup}\n"
                        "  - {paths: /e, dataset: mine}\n"
                        "  - {paths: /f, id: mine}\n"
                        "  - {paths: /g, dataset: input-1}\n"
                        "output: {hosts: [h:1]}\n",
                        &c, &ac, err, sizeof(err)), 0);
  for (i = 0; i < 5; i++) {
    sl_agent_input_id(ac.inputs, i, id);
    assert_string_equal(id, want[i]);
  }
  sl_agent_input_id(ac.inputs, 5, id);
  assert_string_equal(id, "mine");
  sl_agent_input_id(ac.inputs, 6, id);
  assert_string_equal(id, want[6]);
  sl_conf_free(c);

  c = NULL;
  assert_int_equal(load("data_dir: /tmp/d\n"
                        "inputs: [{paths: /a, id: w}, {paths: /b, id: w}]\n"
                        "output: {hosts: [h:1]}\n",
                        &c, &ac, err, sizeof(err)), SL_ECONFIG);
  assert_non_null(strstr(err, "also the id of inputs[0]"));
  sl_conf_free(c);
  c = NULL;
  assert_int_equal(load("data_dir: /tmp/d\n"
                        "inputs: [{paths: /a}, {paths: /b, id: input-0}]\n"
                        "output: {hosts: [h:1]}\n",
                        &c, &ac, err, sizeof(err)), SL_ECONFIG);
  assert_non_null(strstr(err, "default id of inputs[0]"));
  sl_conf_free(c);
  c = NULL;
  assert_int_equal(load("data_dir: /tmp/d\n"
                        "inputs: [{paths: /a, id: 'a\"b'}]\n"
                        "output: {hosts: [h:1]}\n",
                        &c, &ac, err, sizeof(err)), SL_ECONFIG);
  assert_non_null(strstr(err, "inputs.id"));
  sl_conf_free(c);
}

/* Issue 14: sl_agent_conf_read reports every problem and goes on; what
 * depends on a failed value is skipped, not reported as a consequence. */
static void
test_all_errors(void **state)
{
  struct sl_conf *c = NULL;
  struct sl_agent_conf ac;
  char err[256], hosts[2048];
  const char *yaml;
  size_t i, n = 0;
  int rc;

  (void)state;
  /* Three problems, three errors; err says the first. */
  yaml = "data_dir: /tmp/d\n"
         "workers: 0\n"
         "inputs:\n"
         "  - paths: /x\n"
         "    max_line_bytes: 8\n"
         "output:\n"
         "  hosts: [10.0.0.1:5044, nohost:99999]\n"
         "  window: 0\n";
  assert_int_equal(sl_conf_load_str_all("t.yml", yaml, strlen(yaml),
                                        sl_agent_schema, &c, err,
                                        sizeof(err)), 0);
  assert_int_equal(sl_agent_conf_read(c, &ac, err, sizeof(err)),
                   SL_ECONFIG);
  assert_string_equal(err, "t.yml:2: workers: must be 1..64");
  assert_int_equal(sl_conf_nerrors(c), 4);
  assert_int_equal(ac.nhosts, 1);
  sl_conf_free(c);

  /* More hosts than fit: one error, nothing written past hosts[]. */
  n = (size_t)snprintf(hosts, sizeof hosts, "data_dir: /d\ninputs:\n"
                       "  - paths: /x\noutput:\n  hosts: [");
  for (i = 0; i < SL_AGENT_MAX_HOSTS + 4; i++)
    n += (size_t)snprintf(hosts + n, sizeof hosts - n, "%sh%zu:1",
                          i ? ", " : "", i);
  snprintf(hosts + n, sizeof hosts - n, "]\n");
  assert_int_equal(sl_conf_load_str_all("t.yml", hosts, strlen(hosts),
                                        sl_agent_schema, &c, err,
                                        sizeof(err)), 0);
  assert_int_equal(sl_agent_conf_read(c, &ac, err, sizeof(err)),
                   SL_ECONFIG);
  assert_non_null(strstr(err, "at most 16 hosts"));
  assert_int_equal(sl_conf_nerrors(c), 1);
  assert_int_equal(ac.nhosts, 0);
  sl_conf_free(c);

  /* A refused output type: not also "output.path: required for output
   * type lumberjack"-style follow-ups of the default that replaced it. */
  yaml = "data_dir: /d\ninputs:\n  - paths: /x\n"
         "output:\n  type: fil\n  path: /tmp/out\n";
  rc = sl_conf_load_str_all("t.yml", yaml, strlen(yaml), sl_agent_schema,
                            &c, err, sizeof(err));
  assert_int_equal(rc, SL_ECONFIG);
  assert_non_null(c);
  sl_agent_conf_read(c, &ac, err, sizeof(err));
  assert_int_equal(sl_conf_nerrors(c), 1);
  assert_true(sl_conf_failed(c, "output.type"));
  sl_conf_free(c);

  /* A missing required section is said once (by the loader). */
  yaml = "data_dir: /d\ninputs:\n  - paths: /x\n";
  rc = sl_conf_load_str_all("t.yml", yaml, strlen(yaml), sl_agent_schema,
                            &c, err, sizeof(err));
  assert_int_equal(rc, SL_ECONFIG);
  sl_agent_conf_read(c, &ac, err, sizeof(err));
  assert_int_equal(sl_conf_nerrors(c), 1);
  sl_conf_free(c);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_defaults),
    cmocka_unit_test(test_window_caps_batch),
    cmocka_unit_test(test_semantic_errors),
    cmocka_unit_test(test_split_hostport),
    cmocka_unit_test(test_input_ids),
    cmocka_unit_test(test_all_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
