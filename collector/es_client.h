/* es_client.h - HTTP requests to Elasticsearch: libcurl multi driven by the
 * libuv loop (curl docs/examples/multi-uv.c, without its globals).
 *
 * What it does for every request: picks a host (round robin over the
 * configured URLs, skipping one that failed to answer until its dead_until
 * passes), sets keep-alive, timeouts, TLS (CA file, verification, client
 * certificate), auth (basic or `Authorization: ApiKey`), collects the answer, and checks the
 * X-Elastic-Product header. It knows nothing about _bulk, records or
 * retries: each finished request is reported through the completion
 * callback given when it started, and the caller decides.
 *
 * Threading: everything runs on the loop thread given to sl_es_client_new.
 * Callbacks run from uv callbacks (never from inside curl), so a callback
 * may start new requests.
 */
#ifndef SL_ES_CLIENT_H
#define SL_ES_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "sl_buf.h"

struct sl_es_client;

/* What a finished request got. Every pointer is borrowed and dies when the
 * callback returns. */
struct sl_es_result {
  int answered;         /* 1: an HTTP answer came (any status); 0: no
                           answer (connect error, timeout, reset) */
  long status;          /* HTTP status when answered */
  const char *body;     /* response body, NUL-terminated ("" if none) */
  size_t len;
  int is_es;            /* the answer said X-Elastic-Product: Elasticsearch */
  const char *url;      /* full URL of the request */
  const char *error;    /* why there was no answer (curl's message) */
  uint64_t elapsed_ns;  /* from start to completion */
};

typedef void (*sl_es_done_cb)(void *arg, const struct sl_es_result *res);

/* Split the userinfo off an Elasticsearch URL: *clean is the URL without
 * "user:pass@" (what every log line and error shows), *user and *pass the
 * percent-decoded credentials (NULL when the URL has none; pass "" for
 * "user@"). All three are malloc'ed and the caller's. Credentials in a URL
 * become basic auth for that host, in place of `username`/`password`. */
int sl_es_url_split(const char *url, char **clean, char **user,
                    char **pass);

/* Copies what it keeps from conf (hosts, credentials, CA path). */
int sl_es_client_new(uv_loop_t *loop, const struct sl_es_conf *conf,
                     struct sl_es_client **out, char *err, size_t errlen);

/* Start `method` ("GET", "PUT", "POST") on `path` (after the host, no
 * leading '/'). `ctype` is a whole header line ("Content-Type: ...") or
 * NULL; gzip says the body is gzip-compressed. The body's memory is taken
 * in every case (*body is left empty; it goes back to the pool when the
 * request ends); NULL sends none. `cb` runs exactly
 * once if this returns 0, never if it fails, and never after
 * sl_es_client_close(). */
int sl_es_request(struct sl_es_client *c, const char *method,
                  const char *path, const char *ctype, int gzip,
                  struct sl_buf *body, sl_es_done_cb cb, void *arg) SL_WUR;

/* A GET without a body whose whole request (connect included) gives up
 * after timeout_ms when that is shorter than the configured `timeout`:
 * the reachability probe, which must tell a blackholed host within
 * seconds. Otherwise like sl_es_request. */
int sl_es_probe(struct sl_es_client *c, const char *path, uint64_t timeout_ms,
                sl_es_done_cb cb, void *arg) SL_WUR;

/* Body buffers are recycled: sl_es_buf_get gives an empty buffer that
 * usually keeps the capacity of an earlier body (no fresh pages to fault
 * in, no realloc chain). Hand it back through sl_es_request, which returns
 * it to the pool when the request ends, or with sl_es_buf_put when it is
 * not sent. At most max_inflight + 1 buffers of at most twice
 * bulk_max_bytes are kept; *b is left empty either way. */
void sl_es_buf_get(struct sl_es_client *c, struct sl_buf *out);
void sl_es_buf_put(struct sl_es_client *c, struct sl_buf *b);

/* Requests started and not yet finished. */
size_t sl_es_inflight(const struct sl_es_client *c);
/* TCP connections opened so far (low when keep-alive works). */
uint64_t sl_es_connects(const struct sl_es_client *c);

/* Abandon the requests in flight (their callbacks do not run), close the
 * connections and handles, free the client, then call cb (may be NULL). */
void sl_es_client_close(struct sl_es_client *c, void (*cb)(void *arg),
                        void *arg);

#endif
