/* sl_http.h - a very small HTTP/1.1 responder on a libuv loop, for
 * /metrics, /health and /ready. GET only, one request per connection
 * (Connection: close), request head capped at 8 KiB, at most 64 clients.
 * Runs on the loop of its creator; the handler runs on that loop.
 */
#ifndef SL_HTTP_H
#define SL_HTTP_H

#include <uv.h>

#include "sl_buf.h"

/* Content type of the Prometheus text format; set *ctype to it for
 * /metrics. A NULL *ctype means "text/plain; charset=utf-8". */
#define SL_HTTP_CT_PROMETHEUS "text/plain; version=0.0.4; charset=utf-8"

/* Fill `body` and set *status (200, 404, 503...) and *ctype. */
typedef void (*sl_http_handler)(void *arg, const char *path, int *status,
                                const char **ctype, struct sl_buf *body);

struct sl_http;
/* addr: a listen address as sl_addr_parse_listen() takes it. */
int sl_http_start(uv_loop_t *loop, const char *addr, sl_http_handler h,
                  void *arg, struct sl_http **out);
/* Every response carries Cache-Control: no-store and
 * X-Content-Type-Options: nosniff. `lines` ("Name: value\r\n" each, at
 * most 1 KiB; copied) are added to responses whose content type is
 * text/html: a page's Content-Security-Policy. NULL removes them. */
int sl_http_set_html_headers(struct sl_http *s, const char *lines) SL_WUR;
/* Bound port (useful with port 0). */
int sl_http_port(const struct sl_http *s);
/* Closes the listener and all clients; frees on the loop's close callbacks,
 * so run the loop afterwards (e.g. uv_run(loop, UV_RUN_DEFAULT) at exit).
 * The handler gets the path without its query string; HEAD is answered
 * like GET without the body; a client gets 10 s for its request. If
 * sl_http_start fails after creating handles it releases them the same
 * way (on the loop). */
void sl_http_stop(struct sl_http *s);

/* The pure part of request handling, for tests and the fuzzer. */
/* Length of the request head in p[0..len) (through the blank line ending
 * it: "\r\n\r\n" or "\n\n"), or 0 when it has not ended yet. */
size_t sl_http_head_end(const char *p, size_t len);
/* Parse the request line of a complete head p[0..end): 0 with the path
 * (query string cut, NUL-terminated in path[0..pathsz)) and *head_only,
 * else the status to answer: 400 (malformed), 405 (not GET/HEAD), 404
 * (path too long). */
int sl_http_parse_request(const char *p, size_t end, char *path,
                          size_t pathsz, int *head_only);

#endif
