/* test_output.c - `sluice-collector -c FILE test output` (tools.h): check
 * where the collector's events go and come from, step by step as
 * `filebeat test output` does.
 *
 * Elasticsearch goes through the collector's own client (es_client.h:
 * the same URLs, auth, CA and client certificate, X-Elastic-Product
 * check), one host at a time so that each one is named. Kafka inputs use
 * the consumer's own librdkafka configuration (sl_input_kafka_conf).
 * Nothing is indexed, created or written.
 */
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "config.h"
#include "es_client.h"
#include "sl_buf.h"
#include "sl_config.h"
#include "sl_err.h"
#include "sl_probe.h"
#include "tools.h"

#ifdef HAVE_RDKAFKA
#include <librdkafka/rdkafka.h>

#include "input_kafka.h"
#endif

/* The oldest Elasticsearch the collector's templates and _bulk options
 * are written for (data streams with logs@custom, create_doc). */
#define ES_MIN_MAJOR 8
#define KAFKA_TIMEOUT_MS 10000

/* What the collector needs, for _has_privileges: its templates and ILM
 * policy (es_setup.c), and writing into data streams or daily indices. */
#define ES_PRIVILEGES                                                    \
  "{\"cluster\":[\"monitor\",\"manage_index_templates\",\"manage_ilm\"]," \
  "\"index\":[{\"names\":[\"logs-*\",\"%s-*\"],"                          \
  "\"privileges\":[\"create_doc\",\"auto_configure\"]}]}"

/* ---- Elasticsearch ------------------------------------------------------ */

/* One finished request, copied out of the callback. */
struct answer {
  int done;
  int answered;
  long status;
  int is_es;
  json_t *body;              /* parsed JSON body, or NULL */
  char error[256];
};

static void
on_answer(void *arg, const struct sl_es_result *res)
{
  struct answer *a = arg;

  a->done = 1;
  a->answered = res->answered;
  a->status = res->status;
  a->is_es = res->is_es;
  if (res->answered)
    a->body = json_loadb(res->body, res->len, 0, NULL);
  snprintf(a->error, sizeof(a->error), "%s",
           res->error ? res->error : "no answer");
}

static void
on_closed(void *arg)
{
  (void)arg;
}

/* Run one request to completion on the private loop. */
static int
es_call(uv_loop_t *loop, struct sl_es_client *c, const char *method,
        const char *path, const char *body, struct answer *a)
{
  struct sl_buf b;
  int rc;

  memset(a, 0, sizeof(*a));
  sl_buf_init(&b, 0);
  if (body && sl_buf_append_str(&b, body)) {
    sl_buf_free(&b);
    return SL_ENOMEM;
  }
  rc = sl_es_request(c, method, path,
                     body ? "Content-Type: application/json" : NULL, 0,
                     body ? &b : NULL, on_answer, a);
  sl_buf_free(&b);
  if (rc)
    return rc;
  while (!a->done && uv_run(loop, UV_RUN_ONCE))
    ;
  return a->done ? SL_OK : SL_EINTERNAL;
}

/* Missing privileges as "a, b, c" from a _has_privileges answer. */
static void
missing_privileges(const json_t *body, char *out, size_t len)
{
  const json_t *cl = json_object_get(body, "cluster");
  const json_t *ix = json_object_get(body, "index"), *privs, *v;
  const char *k, *pk;
  size_t off = 0;
  int n;

  out[0] = '\0';
  json_object_foreach((json_t *)cl, k, v)
    if (json_is_false(v)) {
      n = snprintf(out + off, len - off, "%s%s", off ? ", " : "", k);
      if (n < 0 || (size_t)n >= len - off)
        return;
      off += (size_t)n;
    }
  json_object_foreach((json_t *)ix, k, privs)
    json_object_foreach((json_t *)privs, pk, v)
      if (json_is_false(v)) {
        n = snprintf(out + off, len - off, "%s%s on %s", off ? ", " : "",
                     pk, k);
        if (n < 0 || (size_t)n >= len - off)
          return;
        off += (size_t)n;
      }
}

/* Steps after the connection: what answered, its version, who we are and
 * whether that user may do what the collector does. */
static void
es_checks(struct sl_probe *p, uv_loop_t *loop, struct sl_es_client *c,
          const struct sl_es_conf *es, const struct answer *root)
{
  const char *ver = json_string_value(json_object_get(
      json_object_get(root->body, "version"), "number"));
  struct answer a;
  char body[512], missing[512];

  if (!root->is_es) {
    sl_probe_fail(p, 1, "product", "the server did not say "
                  "X-Elastic-Product: Elasticsearch");
    return;
  }
  sl_probe_line(1, "product: Elasticsearch... OK");
  if (ver == NULL) {
    sl_probe_fail(p, 1, "version", "no version.number in the answer to GET /");
    return;
  }
  sl_probe_line(1, "version: %s (cluster \"%s\")", ver,
                json_string_value(json_object_get(root->body, "cluster_name"))
                ? json_string_value(json_object_get(root->body, "cluster_name"))
                : "?");
  if (atoi(ver) < ES_MIN_MAJOR) {
    sl_probe_fail(p, 1, "version >= 8", "%s is too old", ver);
    return;
  }
  sl_probe_line(1, "version >= %d... OK", ES_MIN_MAJOR);
  if (es_call(loop, c, "GET", "_security/_authenticate", NULL, &a) == 0 &&
      a.answered && a.status == 200 &&
      json_is_string(json_object_get(a.body, "username")))
    sl_probe_line(1, "user: %s", json_string_value(json_object_get(a.body,
                                                          "username")));
  json_decref(a.body);
  snprintf(body, sizeof(body), ES_PRIVILEGES,
           es->index_prefix ? es->index_prefix : "logs");
  if (es_call(loop, c, "POST", "_security/user/_has_privileges", body,
              &a) != 0 || !a.answered || a.status != 200) {
    if (a.answered)
      sl_probe_line(1, "privileges... SKIP (_has_privileges answered HTTP %ld)",
                    a.status);
    else
      sl_probe_line(1, "privileges... SKIP (_has_privileges: %s)", a.error);
  } else if (json_is_true(json_object_get(a.body, "has_all_requested"))) {
    sl_probe_line(1, "privileges... OK");
  } else {
    missing_privileges(a.body, missing, sizeof(missing));
    sl_probe_line(1, "privileges... WARN missing %s (templates, ILM or "
                  "writes may fail)", missing[0] ? missing : "some");
  }
  json_decref(a.body);
}

static void
test_es_host(struct sl_probe *p, const struct sl_es_conf *es, size_t i)
{
  struct sl_es_conf one = *es;
  struct sl_es_client *c = NULL;
  struct answer root;
  char *clean = NULL, *user = NULL, *pass = NULL, err[512];
  uv_loop_t loop;
  int rc;

  if (sl_es_url_split(es->hosts[i], &clean, &user, &pass) == 0)
    sl_probe_line(0, "elasticsearch: %s...", clean);
  else
    sl_probe_line(0, "elasticsearch: host %zu...", i + 1);
  free(clean);
  free(user);
  free(pass);
  one.hosts = &es->hosts[i];
  one.nhosts = 1;
  memset(&root, 0, sizeof(root));
  uv_loop_init(&loop);
  err[0] = '\0';
  rc = sl_es_client_new(&loop, &one, &c, err, sizeof(err));
  if (rc) {
    sl_probe_fail(p, 1, "client", "%s", err[0] ? err : sl_strerror(rc));
    goto out;
  }
  sl_probe_line(1, "TLS: %s", strncmp(es->hosts[i], "https:", 6) == 0
                ? (es->verify ? "on, certificate verified" : "on, NOT verified")
                : "off (http)");
  rc = es_call(&loop, c, "GET", "", NULL, &root);
  if (rc || !root.answered) {
    sl_probe_fail(p, 1, "talk to server", "%s",
                  rc ? sl_strerror(rc) : root.error);
    goto out;
  }
  sl_probe_line(1, "talk to server... OK");
  if (root.status == 401 || root.status == 403) {
    sl_probe_fail(p, 1, "authentication", "HTTP %ld (check username/password "
                  "or api_key)", root.status);
    goto out;
  }
  if (root.status != 200) {
    sl_probe_fail(p, 1, "GET /", "HTTP %ld", root.status);
    goto out;
  }
  sl_probe_line(1, "authentication... OK");
  es_checks(p, &loop, c, es, &root);
out:
  json_decref(root.body);
  if (c)
    sl_es_client_close(c, on_closed, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}

static void
test_es(struct sl_probe *p, const struct sl_conf *conf)
{
  const json_t *root = sl_conf_root(conf);
  struct sl_es_conf es;
  char err[512];
  size_t i;

  if (sl_es_conf_fill(sl_conf_get(root, "elasticsearch"),
                      sl_conf_str(root, "data_dir"), &es, err,
                      sizeof(err))) {
    sl_probe_fail(p, 0, "elasticsearch", "%s", err);
    return;
  }
  for (i = 0; i < es.nhosts; i++)
    test_es_host(p, &es, i);
  sl_es_conf_free(&es);
}

/* ---- directories -------------------------------------------------------- */

/* dir exists and is writable, or its nearest existing parent is (the
 * collector creates the rest at start). */
static void
test_dir(struct sl_probe *p, const char *what, const char *dir)
{
  char *copy = strdup(dir), *d = copy;
  struct stat st;

  sl_probe_line(0, "%s: %s...", what, dir);
  if (copy == NULL) {
    sl_probe_fail(p, 1, "directory", "out of memory");
    return;
  }
  while (stat(d, &st) != 0 && errno == ENOENT && strcmp(d, "/") != 0 &&
         strcmp(d, ".") != 0)
    d = dirname(d);
  if (stat(d, &st) != 0) {
    sl_probe_fail(p, 1, "directory", "%s: %s", d, strerror(errno));
  } else if (!S_ISDIR(st.st_mode)) {
    sl_probe_fail(p, 1, "directory", "%s: not a directory", d);
  } else if (access(d, W_OK | X_OK) != 0) {
    sl_probe_fail(p, 1, "writable", "%s: %s", d, strerror(errno));
  } else if (strcmp(d, dir) != 0) {
    sl_probe_line(1, "writable... OK (does not exist yet; %s is writable and "
                  "the collector creates it)", d);
  } else {
    sl_probe_line(1, "writable... OK");
  }
  free(copy);
}

/* ---- Kafka inputs ------------------------------------------------------- */

#ifdef HAVE_RDKAFKA
static void
test_kafka_input(struct sl_probe *p, const json_t *in, size_t idx)
{
  const json_t *topics = sl_conf_get(in, "topics"), *t;
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_resp_err_t e;
  rd_kafka_t *rk;
  void *kconf = NULL;
  char err[512];
  size_t i;
  int j, k;

  sl_probe_line(0, "kafka input %zu...", idx);
  if (sl_input_kafka_conf(in, &kconf, err, sizeof(err))) {
    sl_probe_fail(p, 1, "configuration", "inputs[%zu].%s", idx, err);
    return;
  }
  rk = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, err, sizeof(err));
  if (rk == NULL) {
    rd_kafka_conf_destroy(kconf);
    sl_probe_fail(p, 1, "client", "%s", err);
    return;
  }
  e = rd_kafka_metadata(rk, 1, NULL, &md, KAFKA_TIMEOUT_MS);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    sl_probe_fail(p, 1, "talk to brokers", "%s", rd_kafka_err2str(e));
    goto out;
  }
  sl_probe_line(1, "talk to brokers... OK");
  for (j = 0; j < md->broker_cnt; j++)
    sl_probe_line(2, "broker %d: %s:%d", (int)md->brokers[j].id,
                  md->brokers[j].host, md->brokers[j].port);
  json_array_foreach(topics, i, t) {
    const char *name = json_string_value(t);
    if (name == NULL)
      continue;
    if (name[0] == '^') {
      sl_probe_line(1, "topic %s: a pattern, matched by the consumer", name);
      continue;
    }
    for (k = 0; k < md->topic_cnt; k++)
      if (strcmp(md->topics[k].topic, name) == 0 && !md->topics[k].err)
        break;
    if (k == md->topic_cnt)
      sl_probe_fail(p, 1, "topic", "%s: not on the brokers", name);
    else
      sl_probe_line(1, "topic %s... OK (%d partitions)", name,
                    md->topics[k].partition_cnt);
  }
out:
  if (md)
    rd_kafka_metadata_destroy(md);
  rd_kafka_destroy(rk);
}
#endif

static void
test_kafka_inputs(struct sl_probe *p, const struct sl_conf *conf)
{
  const json_t *ins = sl_conf_get(sl_conf_root(conf), "inputs"), *in;
  size_t i;

  json_array_foreach(ins, i, in) {
    const char *type = sl_conf_str(in, "type");
    if (type == NULL || strcmp(type, "kafka") != 0)
      continue;
#ifdef HAVE_RDKAFKA
    test_kafka_input(p, in, i);
#else
    sl_probe_fail(p, 0, "kafka", "this sluice-collector was built without "
                  "librdkafka");
#endif
  }
}

int
sl_collector_test_main(const struct sl_conf *conf, int argc, char **argv)
{
  const json_t *root = sl_conf_root(conf), *ar;
  struct sl_probe p = { 0 };

  if (argc != 2 || strcmp(argv[1], "output") != 0) {
    fprintf(stderr, "sluice-collector: usage: test output\n");
    return 2;
  }
  if (sl_conf_get(root, "elasticsearch"))
    test_es(&p, conf);
  ar = sl_conf_get(root, "archive");
  if (ar && sl_conf_str(ar, "path"))
    test_dir(&p, "archive", sl_conf_str(ar, "path"));
  if (sl_conf_str(root, "data_dir"))
    test_dir(&p, "data_dir (spool)", sl_conf_str(root, "data_dir"));
  test_kafka_inputs(&p, conf);
  return p.failed ? 1 : 0;
}
