/* status.c - `sluice-agent -c FILE status` (tools.h): ask the running
 * agent for /debug/state and print it for a terminal. */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "config.h"
#include "sl_buf.h"
#include "sl_err.h"
#include "tools.h"

/* /debug/state is bounded by the agent (1000 files); this only stops a
 * wrong peer from feeding us forever. */
#define STATUS_MAX_BODY (16u * 1024 * 1024)
#define STATUS_TIMEOUT_MS 5000L

#define EXIT_READY 0
#define EXIT_NOT_READY 1
#define EXIT_UNREACHABLE 2

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
  struct sl_buf *b = arg;

  if (sl_buf_append(b, p, size * n))
    return 0;  /* over STATUS_MAX_BODY: curl fails the transfer */
  return size * n;
}

/* http.listen as a URL a client can use: a wildcard address means "this
 * host", which is reached on loopback. */
static int
state_url(const char *listen, char *url, size_t len)
{
  char host[256];
  int port, n;

  if (sl_agent_split_hostport(listen, host, sizeof(host), &port) ||
      port == 0)
    return SL_EINVAL;
  if (strcmp(host, "0.0.0.0") == 0 || host[0] == '\0')
    snprintf(host, sizeof(host), "127.0.0.1");
  else if (strcmp(host, "::") == 0)
    snprintf(host, sizeof(host), "::1");
  n = snprintf(url, len, strchr(host, ':') ? "http://[%s]:%d/debug/state"
                                           : "http://%s:%d/debug/state",
               host, port);
  return n < 0 || (size_t)n >= len ? SL_E2BIG : SL_OK;
}

static const char *
str_or(const json_t *o, const char *key, const char *dflt)
{
  const char *s = json_string_value(json_object_get(o, key));

  return s ? s : dflt;
}

static long long
int_of(const json_t *o, const char *key)
{
  return (long long)json_integer_value(json_object_get(o, key));
}

static void
print_output(const json_t *out)
{
  const json_t *targets = json_object_get(out, "targets");
  const json_t *conns = json_object_get(out, "connections");
  const json_t *v;
  size_t i;

  printf("output   %s ->", str_or(out, "type", "?"));
  json_array_foreach(targets, i, v)
    printf(" %s", json_string_value(v) ? json_string_value(v) : "?");
  if (json_is_string(json_object_get(out, "topic")))
    printf(" (topic %s)", str_or(out, "topic", ""));
  printf("\n         ready %s, connected %lld, in flight %lld batches, "
         "queued %lld\n",
         json_is_true(json_object_get(out, "ready")) ? "yes" : "NO",
         int_of(out, "connected"), int_of(out, "inflight_batches"),
         int_of(out, "queued_batches"));
  json_array_foreach(conns, i, v)
    printf("         %-24s %-10s in flight %lld\n", str_or(v, "host", "?"),
           str_or(v, "state", "?"), int_of(v, "inflight"));
  printf("         last ack %s\n", str_or(out, "last_ack", "never"));
  if (json_is_string(json_object_get(out, "last_error")))
    printf("         last error %s (%s)\n", str_or(out, "last_error", ""),
           str_or(out, "last_error_at", "?"));
}

static void
print_files(const json_t *files)
{
  const json_t *list = json_object_get(files, "files"), *f;
  size_t i;

  printf("\nfiles: %lld", int_of(files, "files_total"));
  if (int_of(files, "truncated") > 0)
    printf(" (%lld not listed)", int_of(files, "truncated"));
  printf("\n");
  if (json_array_size(list) == 0)
    return;
  printf("%-8s %14s %14s %12s %-24s %-12s %-16s %s\n", "STATE", "SIZE",
         "ACKED", "LAG", "LAST READ", "INPUT", "DATASET", "PATH");
  json_array_foreach(list, i, f) {
    printf("%-8s %14lld %14lld %12lld %-24s %-12s %-16s %s\n",
           str_or(f, "state", "?"), int_of(f, "size"),
           int_of(f, "acked_offset"), int_of(f, "lag_bytes"),
           str_or(f, "last_read", "-"), str_or(f, "input_id", "-"),
           str_or(f, "dataset", "-"), str_or(f, "path", "?"));
  }
}

/* The table, or with `json` the body as it came; the exit code either
 * way. */
static int
print_state(const char *url, const char *body, size_t len, int json)
{
  const json_t *out, *q;
  json_error_t jerr;
  json_t *st;
  int ready;

  st = json_loadb(body, len, 0, &jerr);
  out = json_object_get(st, "output");
  if (!json_is_object(out)) {
    fprintf(stderr, "sluice-agent: %s: not an agent state (%s)\n", url,
            st ? "no output object" : jerr.text);
    json_decref(st);
    return EXIT_UNREACHABLE;
  }
  ready = json_is_true(json_object_get(out, "ready")) &&
          strcmp(str_or(st, "state", ""), "running") == 0;
  if (json) {
    fwrite(body, 1, len, stdout);
    if (len == 0 || body[len - 1] != '\n')
      putchar('\n');
    json_decref(st);
    return ready ? EXIT_READY : EXIT_NOT_READY;
  }
  q = json_object_get(st, "queue");
  printf("agent    %s on %s, version %s, %s\n", str_or(st, "agent_id", "?"),
         str_or(st, "host", "?"), str_or(st, "version", "?"),
         str_or(st, "state", "?"));
  print_output(out);
  printf("queue    %lld of %lld bytes, %lld bytes read and not yet "
         "acknowledged\n", int_of(q, "bytes"), int_of(q, "max_bytes"),
         int_of(q, "input_bytes"));
  print_files(json_object_get(st, "files"));
  json_decref(st);
  return ready ? EXIT_READY : EXIT_NOT_READY;
}

int
sl_agent_status_main(const struct sl_conf *conf, int argc, char **argv)
{
  struct sl_agent_conf ac;
  char err[512], url[300], cerr[CURL_ERROR_SIZE];
  struct sl_buf body;
  CURL *h = NULL;
  CURLcode cc;
  long code = 0;
  int rc = EXIT_UNREACHABLE, json = 0, i;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) {
      json = 1;
    } else {
      fprintf(stderr, "sluice-agent: status takes only --json (got '%s')\n"
              "usage: sluice-agent -c FILE status [--json]\n", argv[i]);
      return 2;
    }
  }
  if (sl_agent_conf_read(conf, &ac, err, sizeof(err))) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  if (ac.http_listen == NULL || ac.http_listen[0] == '\0') {
    fprintf(stderr, "sluice-agent: http.listen is off in %s: status reads "
            "the agent's /debug/state there\n", sl_conf_file(conf));
    return EXIT_UNREACHABLE;
  }
  if (state_url(ac.http_listen, url, sizeof(url))) {
    fprintf(stderr, "sluice-agent: http.listen '%s' names no fixed port: "
            "status needs host:port\n", ac.http_listen);
    return EXIT_UNREACHABLE;
  }
  sl_buf_init(&body, STATUS_MAX_BODY);
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
      (h = curl_easy_init()) == NULL) {
    fprintf(stderr, "sluice-agent: cannot start libcurl\n");
    goto out;
  }
  cerr[0] = '\0';
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, STATUS_TIMEOUT_MS);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  cc = curl_easy_perform(h);
  if (cc != CURLE_OK) {
    fprintf(stderr, "sluice-agent: no agent answers at %s: %s\n", url,
            cerr[0] ? cerr : curl_easy_strerror(cc));
    goto out;
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  if (code != 200) {
    fprintf(stderr, "sluice-agent: %s answered HTTP %ld (not a "
            "sluice-agent?)\n", url, code);
    goto out;
  }
  rc = print_state(url, body.p ? body.p : "", body.len, json);
out:
  if (h)
    curl_easy_cleanup(h);
  curl_global_cleanup();
  sl_buf_free(&body);
  return rc;
}
