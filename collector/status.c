/* status.c - `sluice-collector -c FILE status [--json]` (tools.h): what
 * the status page shows, in a terminal. It asks the running collector,
 * at the config's http.listen, for /debug/state (collector.c) and prints
 * it as a few summary lines and an agents table; it reads nothing from
 * data_dir, so it works as any user who can reach the port. */
#include "tools.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "sl_buf.h"
#include "sl_err.h"
#include "sl_time.h"

/* A collector that does not answer within this is as good as down. */
#define STATUS_TIMEOUT_MS 5000
/* /debug/state grows with the connections; a few MiB is thousands. */
#define STATE_MAX (16u << 20)

/* http.listen -> the URL of /debug/state: a wildcard address means "this
 * host" (127.0.0.1, or ::1 for [::]). */
static int
state_url(const char *listen, char *url, size_t len)
{
  const char *colon = listen ? strrchr(listen, ':') : NULL;
  const char *host;
  int hl, port;

  if (colon == NULL || (port = atoi(colon + 1)) <= 0 || port > 65535)
    return SL_EINVAL;
  hl = (int)(colon - listen);
  host = listen;
  if (hl == 0 || (hl == 7 && strncmp(listen, "0.0.0.0", 7) == 0)) {
    host = "127.0.0.1";
    hl = 9;
  } else if (hl == 4 && strncmp(listen, "[::]", 4) == 0) {
    host = "[::1]";
    hl = 5;
  }
  if (snprintf(url, len, "http://%.*s:%d/debug/state", hl, host, port) >=
      (int)len)
    return SL_EINVAL;
  return 0;
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
  return sl_buf_append(arg, p, size * n) == 0 ? size * n : 0;
}

/* 0 with the body in `out`, else the reason in why. */
static int
fetch(const char *url, struct sl_buf *out, char *why, size_t whylen)
{
  char errbuf[CURL_ERROR_SIZE] = "";
  long status = 0;
  CURLcode cr;
  CURL *e;

  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
      (e = curl_easy_init()) == NULL) {
    snprintf(why, whylen, "cannot initialise libcurl");
    return SL_EINTERNAL;
  }
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)STATUS_TIMEOUT_MS);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
  cr = curl_easy_perform(e);
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(e);
  curl_global_cleanup();
  if (cr != CURLE_OK) {
    snprintf(why, whylen, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cr));
    return SL_ECONNREFUSED;
  }
  if (status != 200) {
    snprintf(why, whylen, "HTTP %ld", status);
    return SL_EPROTO;
  }
  return 0;
}

/* ---- formatting --------------------------------------------------------- */

static json_int_t
geti(const json_t *o, const char *k)
{
  const json_t *v = json_object_get(o, k);

  return json_is_integer(v) ? json_integer_value(v)
         : json_is_real(v) ? (json_int_t)json_real_value(v) : 0;
}

static double
getf(const json_t *o, const char *k)
{
  return json_number_value(json_object_get(o, k));
}

static const char *
gets(const json_t *o, const char *k)
{
  const char *s = json_string_value(json_object_get(o, k));

  return s ? s : "";
}

static const char *
fmt_bytes(double n, char *buf, size_t len)
{
  static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
  size_t i = 0;

  while (n >= 1024 && i < 4) {
    n /= 1024;
    i++;
  }
  if (i == 0)
    snprintf(buf, len, "%.0f B", n);
  else
    snprintf(buf, len, "%.1f %s", n, unit[i]);
  return buf;
}

static const char *
fmt_dur(double s, char *buf, size_t len)
{
  if (s < 0)
    s = 0;
  if (s < 1)
    snprintf(buf, len, "%.0f ms", s * 1000);
  else if (s < 120)
    snprintf(buf, len, "%.1f s", s);
  else if (s < 7200)
    snprintf(buf, len, "%.0f min", s / 60);
  else if (s < 172800)
    snprintf(buf, len, "%.1f h", s / 3600);
  else
    snprintf(buf, len, "%.1f d", s / 86400);
  return buf;
}

/* "3.2 s ago" for an RFC 3339 time relative to the state's own time. */
static const char *
fmt_ago(const char *iso, int64_t now_ns, char *buf, size_t len)
{
  int64_t ns;
  char d[32];

  if (iso == NULL || !iso[0] ||
      sl_time_parse_rfc3339(iso, strlen(iso), &ns) != 0)
    return "never";
  snprintf(buf, len, "%s ago", fmt_dur((double)(now_ns - ns) / 1e9, d,
                                       sizeof d));
  return buf;
}

static const char *
fmt_ago_ms(json_int_t ms, int64_t now_ns, char *buf, size_t len)
{
  char d[32];

  if (ms <= 0)
    return "never";
  snprintf(buf, len, "%s ago",
           fmt_dur((double)(now_ns / 1000000 - ms) / 1000.0, d, sizeof d));
  return buf;
}

static void
print_intake(const json_t *st)
{
  const json_t *in, *a;
  json_int_t conns = 0, events = 0, bytes = 0;
  double rate = 0;
  int paused = 0, nkafka = 0;
  size_t i, j;
  char b1[32], b2[32], b3[32];

  json_array_foreach(json_object_get(st, "inputs"), i, in) {
    if (strcmp(gets(in, "type"), "lumberjack") != 0) {
      nkafka++;
      paused |= json_is_true(json_object_get(in, "paused"));
      continue;
    }
    conns += geti(in, "connections");
    events += geti(in, "events");
    bytes += geti(in, "bytes");
    paused |= json_is_true(json_object_get(in, "paused"));
    json_array_foreach(json_object_get(in, "agents"), j, a)
      rate += getf(a, "events_per_second");
  }
  printf("%-14s %lld agent%s connected, %lld events (%.1f/s), %s "
         "received%s\n", "Intake", (long long)conns, conns == 1 ? "" : "s",
         (long long)events, rate,
         fmt_bytes((double)bytes, b1, sizeof b1),
         paused ? "; PAUSED (spool full)" : "");
  if (conns == 0 && nkafka == 0)
    return;
  printf("\n  %-22s %-20s %10s %10s %8s %9s %9s %7s\n", "AGENT",
         "CONNECTED SINCE", "EVENTS", "BYTES", "EV/S", "LAG", "IDLE",
         "UNACKED");
  json_array_foreach(json_object_get(st, "inputs"), i, in) {
    json_array_foreach(json_object_get(in, "agents"), j, a) {
      const json_t *lag = json_object_get(a, "lag_seconds");
      char since[32];

      snprintf(since, sizeof since, "%.19s", gets(a, "connected_since"));
      if (since[10] == 'T')
        since[10] = ' ';
      printf("  %-22s %-20s %10lld %10s %8.1f %9s %9s %7lld\n",
             gets(a, "peer"), since, (long long)geti(a, "events"),
             fmt_bytes((double)geti(a, "bytes"), b1, sizeof b1),
             getf(a, "events_per_second"),
             json_is_number(lag) ? fmt_dur(json_number_value(lag), b2,
                                           sizeof b2) : "-",
             fmt_dur(getf(a, "idle_seconds"), b3, sizeof b3),
             (long long)geti(a, "unacked_parts"));
    }
    if (strcmp(gets(in, "type"), "kafka") == 0) {
      const json_t *s = json_object_get(in, "stats");

      printf("  kafka group %-14s %lld messages, lag %lld, %lld dead "
             "letters, %lld errors%s\n", gets(in, "group_id"),
             (long long)geti(s, "messages"), (long long)geti(s, "lag"),
             (long long)geti(s, "deadletters"), (long long)geti(s, "errors"),
             json_is_true(json_object_get(in, "paused")) ? ", paused" : "");
    }
  }
  printf("\n");
}

static void
print_es(const json_t *es, int64_t now)
{
  const json_t *items = json_object_get(es, "items");
  const json_t *dl = json_object_get(es, "deadletters");
  const json_t *rt = json_object_get(es, "retries");
  const json_t *cl = json_object_get(es, "cluster");
  static const char *const order[] = { "201", "409", "429", "4xx", "5xx",
                                       "none" };
  char b1[48], b2[48];
  size_t i;

  printf("%-14s %s, %s%s%s, version %s, last check %s\n", "Elasticsearch",
         json_is_true(json_object_get(es, "reachable")) ? "reachable"
                                                        : "UNREACHABLE",
         json_is_true(json_object_get(es, "ready")) ? "ready" : "NOT READY (",
         json_is_true(json_object_get(es, "ready"))
             ? "" : gets(es, "not_ready_reason"),
         json_is_true(json_object_get(es, "ready")) ? "" : ")",
         gets(es, "version")[0] ? gets(es, "version") : "-",
         fmt_ago(gets(es, "last_check"), now, b1, sizeof b1));
  if (gets(cl, "status")[0])
    printf("%-14s cluster %s, %lld node%s\n", "", gets(cl, "status"),
           (long long)geti(cl, "nodes"), geti(cl, "nodes") == 1 ? "" : "s");
  else
    printf("%-14s cluster status %s\n", "",
           gets(cl, "note")[0] ? gets(cl, "note") : "unknown");
  if (gets(es, "last_error")[0])
    printf("%-14s last error %s: %s\n", "",
           fmt_ago(gets(es, "last_error_at"), now, b2, sizeof b2),
           gets(es, "last_error"));
  printf("%-14s", "Items");
  for (i = 0; i < sizeof order / sizeof order[0]; i++)
    printf(" %s: %lld%s", order[i], (long long)geti(items, order[i]),
           i + 1 < sizeof order / sizeof order[0] ? "," : "\n");
  printf("%-14s items %lld, requests %lld, splits %lld; %lld requests in "
         "flight, %lld events pending\n", "Retries",
         (long long)geti(rt, "item"), (long long)geti(rt, "request"),
         (long long)geti(es, "splits"),
         (long long)geti(es, "inflight_requests"),
         (long long)geti(es, "pending_events"));
  printf("%-14s %lld (in Elasticsearch %lld, in the file %lld)", "Dead letters",
         (long long)geti(dl, "total"), (long long)geti(dl, "es"),
         (long long)geti(dl, "file"));
  if (gets(dl, "last_at")[0])
    printf("; last %s, HTTP %lld: %s", fmt_ago(gets(dl, "last_at"), now, b1,
                                              sizeof b1),
           (long long)geti(dl, "last_status"), gets(dl, "last_reason"));
  printf("\n");
}

static void
print_state(const char *url, const json_t *st)
{
  const json_t *sp = json_object_get(st, "spool");
  const json_t *o;
  int64_t now = 0;
  char b1[48], b2[48], b3[48];
  int ready = json_is_true(json_object_get(st, "ready"));

  if (sl_time_parse_rfc3339(gets(st, "time"), strlen(gets(st, "time")),
                            &now) != 0)
    now = sl_time_now_ns();
  printf("sluice-collector at %.*s: %s, up %s\n\n",
         (int)(strlen(url) - strlen("/debug/state")), url,
         json_is_true(json_object_get(st, "draining")) ? "DRAINING"
         : ready ? "ready" : "NOT READY",
         fmt_dur(getf(st, "uptime_seconds"), b1, sizeof b1));
  print_intake(st);
  printf("%-14s %s of %s (%.1f %%), %lld records, oldest unindexed %s%s\n",
         "Spool", fmt_bytes((double)geti(sp, "bytes"), b1, sizeof b1),
         fmt_bytes((double)geti(sp, "max_bytes"), b2, sizeof b2),
         getf(sp, "fill_percent"), (long long)geti(sp, "records"),
         geti(sp, "records") ? fmt_dur(getf(sp, "oldest_age_seconds"), b3,
                                       sizeof b3) : "-",
         json_is_true(json_object_get(sp, "disk_full")) ? "; DISK FULL"
         : json_is_true(json_object_get(sp, "full")) ? "; FULL" : "");
  if ((o = json_object_get(st, "elasticsearch")) != NULL)
    print_es(o, now);
  if ((o = json_object_get(st, "retention")) != NULL) {
    printf("%-14s %s%s, last run %s, last success %s, runs %lld (failed "
           "%lld), %lld indices deleted\n", "Retention", gets(o, "mode"),
           json_is_true(json_object_get(o, "running")) ? " (running)" : "",
           fmt_ago_ms(geti(o, "last_run_ms"), now, b1, sizeof b1),
           fmt_ago_ms(geti(o, "last_success_ms"), now, b2, sizeof b2),
           (long long)geti(o, "runs"), (long long)geti(o, "failed_runs"),
           (long long)geti(o, "deleted_indices"));
    if (gets(o, "last_error")[0])
      printf("%-14s last error: %s\n", "", gets(o, "last_error"));
  }
  if ((o = json_object_get(st, "archive")) != NULL) {
    printf("%-14s %s, %lld files (%s), %lld events, last write %s\n",
           "Archive", json_is_true(json_object_get(o, "failing"))
                          ? "FAILING" : "writing",
           (long long)geti(o, "files"),
           fmt_bytes((double)geti(o, "bytes"), b1, sizeof b1),
           (long long)geti(o, "events_written"),
           fmt_ago(gets(o, "last_write"), now, b2, sizeof b2));
    if (gets(o, "last_error")[0])
      printf("%-14s last error %s: %s\n", "",
             fmt_ago(gets(o, "last_error_at"), now, b3, sizeof b3),
             gets(o, "last_error"));
  }
}

int
sl_status_main(const struct sl_conf *conf, int argc, char **argv)
{
  const char *listen = sl_conf_str(sl_conf_root(conf), "http.listen");
  struct sl_buf body;
  json_error_t jerr;
  json_t *st = NULL;
  char url[600], why[CURL_ERROR_SIZE + 64];
  int json_out = 0, rc, i;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) {
      json_out = 1;
    } else {
      fprintf(stderr, "usage: sluice-collector -c FILE status [--json]\n");
      return 2;
    }
  }
  if (listen == NULL || listen[0] == '\0') {
    fprintf(stderr, "status: http.listen is off in %s: status reads the "
            "collector's /debug/state there\n", sl_conf_file(conf));
    return 2;
  }
  if (state_url(listen, url, sizeof url) != 0) {
    fprintf(stderr, "status: http.listen '%s' gives no port to ask (set "
            "http.listen to a fixed port)\n", listen ? listen : "");
    return 2;
  }
  sl_buf_init(&body, STATE_MAX);
  rc = fetch(url, &body, why, sizeof why);
  if (rc == 0 && (st = json_loadb(body.p ? body.p : "", body.len, 0,
                                  &jerr)) == NULL) {
    snprintf(why, sizeof why, "not JSON: %s", jerr.text);
    rc = SL_EPARSE;
  }
  if (rc != 0) {
    printf("sluice-collector at %.*s: UNREACHABLE (%s)\n",
           (int)(strlen(url) - strlen("/debug/state")), url, why);
    sl_buf_free(&body);
    return 2;
  }
  if (json_out)
    fwrite(body.p, 1, body.len, stdout);
  else
    print_state(url, st);
  rc = json_is_true(json_object_get(st, "ready")) ? 0 : 1;
  json_decref(st);
  sl_buf_free(&body);
  return rc;
}
