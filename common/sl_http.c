#include "sl_http.h"
#include "sl_addr.h"
#include "sl_err.h"
#include "sl_list.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The limits are small on purpose: this serves scrapes and probes, never
 * user traffic, and it must not become a way to exhaust the process. */
#define HTTP_MAX_HEAD 8192           /* request line + headers */
#define HTTP_MAX_CLIENTS 64          /* more are closed on accept */
#define HTTP_MAX_BODY (64u << 20)    /* a /metrics page is far smaller */
#define HTTP_CLIENT_TIMEOUT_MS 10000 /* slow or silent clients are cut */
#define HTTP_SWEEP_MS 1000
#define HTTP_MAX_EXTRA 1024          /* sl_http_set_html_headers */

enum client_state {
  CL_READING,   /* collecting the request head */
  CL_WRITING,   /* response queued */
  CL_DRAINING,  /* response sent and FIN sent; discard input until EOF so
                 * that unread request bytes do not turn close into RST */
};

struct client {
  uv_tcp_t tcp;              /* first: the handle's address is the client */
  struct sl_http *srv;
  struct sl_list link;       /* in sl_http.clients */
  enum client_state state;
  uint64_t started;          /* uv_now at accept */
  size_t len;
  uv_write_t wr;
  uv_shutdown_t sd;
  struct sl_buf resp;
  char head[HTTP_MAX_HEAD];
};

struct sl_http {
  uv_loop_t *loop;
  uv_tcp_t listener;
  uv_timer_t sweep;
  sl_http_handler handler;
  void *arg;
  char *html_headers;        /* sl_http_set_html_headers; owned */
  int port;
  int stopping;
  int handles_open;          /* listener + sweep + clients not yet freed */
  int nclients;
  struct sl_list clients;     /* struct client, newest first */
};

static void
maybe_free_server(struct sl_http *s)
{
  if (s->stopping && s->handles_open == 0) {
    free(s->html_headers);
    free(s);
  }
}

static void
on_server_handle_closed(uv_handle_t *h)
{
  struct sl_http *s = h->data;

  s->handles_open--;
  maybe_free_server(s);
}

static void
on_client_closed(uv_handle_t *h)
{
  struct client *c = (struct client *)h;
  struct sl_http *s = c->srv;

  sl_list_remove(&c->link);
  s->nclients--;
  s->handles_open--;
  sl_buf_free(&c->resp);
  free(c);
  maybe_free_server(s);
}

static void
client_close(struct client *c)
{
  if (!uv_is_closing((uv_handle_t *)&c->tcp))
    uv_close((uv_handle_t *)&c->tcp, on_client_closed);
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
  struct client *c = (struct client *)h;

  (void)hint;
  /* While draining, the head buffer is scratch space. */
  if (c->state == CL_DRAINING) {
    buf->base = c->head;
    buf->len = sizeof(c->head);
    return;
  }
  buf->base = c->head + c->len;
  buf->len = sizeof(c->head) - c->len;
}

static void
on_drain_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
  (void)buf;
  if (nread < 0)
    client_close((struct client *)st);
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
  struct client *c = req->data;

  if (status < 0 || uv_read_start((uv_stream_t *)&c->tcp, on_alloc,
                                  on_drain_read) != 0)
    client_close(c);
}

static void
on_written(uv_write_t *req, int status)
{
  struct client *c = req->data;

  if (status < 0 || uv_is_closing((uv_handle_t *)&c->tcp)) {
    client_close(c);
    return;
  }
  c->state = CL_DRAINING;
  c->sd.data = c;
  if (uv_shutdown(&c->sd, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
    client_close(c);
}

static const char *
reason(int status)
{
  switch (status) {
  case 200: return "OK";
  case 204: return "No Content";
  case 400: return "Bad Request";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 503: return "Service Unavailable";
  default: return "Status";
  }
}

/* Queue the whole response and stop reading the request. */
static void
respond(struct client *c, int status, const char *ctype, const char *body,
        size_t blen, int head_only)
{
  const char *extra = c->srv->html_headers;
  char hdr[2048];
  uv_buf_t b;
  int n;

  uv_read_stop((uv_stream_t *)&c->tcp);
  if (status < 100 || status > 999)
    status = 500;
  if (extra == NULL || ctype == NULL || strncmp(ctype, "text/html", 9) != 0)
    extra = "";
  /* Every answer is a snapshot of now: no cache may keep one. */
  n = snprintf(hdr, sizeof(hdr),
               "HTTP/1.1 %d %s\r\n"
               "Content-Type: %s\r\n"
               "Content-Length: %zu\r\n"
               "Cache-Control: no-store\r\n"
               "X-Content-Type-Options: nosniff\r\n"
               "Connection: close\r\n"
               "%s%s"
               "\r\n",
               status, reason(status),
               ctype ? ctype : "text/plain; charset=utf-8", blen,
               status == 405 ? "Allow: GET, HEAD\r\n" : "", extra);
  sl_buf_reset(&c->resp);
  if (n < 0 || (size_t)n >= sizeof(hdr) ||
      sl_buf_append(&c->resp, hdr, (size_t)n) != 0 ||
      (!head_only && blen && sl_buf_append(&c->resp, body, blen) != 0)) {
    client_close(c);
    return;
  }
  c->state = CL_WRITING;
  c->wr.data = c;
  b = uv_buf_init(c->resp.p, (unsigned)c->resp.len);
  if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
    client_close(c);
}

static void
respond_text(struct client *c, int status, const char *text)
{
  respond(c, status, NULL, text, strlen(text), 0);
}

int
sl_http_parse_request(const char *p, size_t end, char *path, size_t pathsz,
                      int *head_only)
{
  const char *sp1, *sp2, *eol, *q;
  size_t plen;

  *head_only = 0;
  if (pathsz)
    path[0] = '\0';
  eol = memchr(p, '\n', end);
  sp1 = eol ? memchr(p, ' ', (size_t)(eol - p)) : NULL;
  sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
  if (sp2 == NULL || (size_t)(eol - sp2 - 1) < 8 ||
      strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || sp1[1] != '/')
    return 400;
  *head_only = (size_t)(sp1 - p) == 4 && memcmp(p, "HEAD", 4) == 0;
  if (!*head_only && !((size_t)(sp1 - p) == 3 && memcmp(p, "GET", 3) == 0))
    return 405;
  /* The handler sees the path without its query string. */
  q = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1));
  plen = (size_t)((q ? q : sp2) - (sp1 + 1));
  if (plen >= pathsz)
    return 404;
  memcpy(path, sp1 + 1, plen);
  path[plen] = '\0';
  return 0;
}

/* The head is complete in c->head[0..end). */
static void
handle_request(struct client *c, size_t end)
{
  struct sl_http *s = c->srv;
  const char *ctype = NULL;
  struct sl_buf body;
  int status = 200, head_only;
  char path[1024];

  switch (sl_http_parse_request(c->head, end, path, sizeof(path),
                                &head_only)) {
  case 0:
    break;
  case 405:
    respond_text(c, 405, "method not allowed\n");
    return;
  case 404:
    respond_text(c, 404, "not found\n");
    return;
  default:
    respond_text(c, 400, "bad request\n");
    return;
  }
  sl_buf_init(&body, HTTP_MAX_BODY);
  s->handler(s->arg, path, &status, &ctype, &body);
  respond(c, status, ctype, body.p, body.len, head_only);
  sl_buf_free(&body);
}

size_t
sl_http_head_end(const char *p, size_t len)
{
  size_t i;

  for (i = 0; i < len; i++) {
    if (p[i] != '\n')
      continue;
    if ((i >= 1 && p[i - 1] == '\n') ||
        (i >= 3 && p[i - 1] == '\r' && p[i - 2] == '\n' && p[i - 3] == '\r'))
      return i + 1;
  }
  return 0;
}

static void
on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
  struct client *c = (struct client *)st;
  size_t from, end;

  (void)buf;
  if (nread < 0) {
    client_close(c);
    return;
  }
  if (nread == 0)
    return;
  /* Search only the new bytes (and the 3 before them) for the end of the
   * head; a blank line ends it ("\r\n\r\n", or bare "\n\n"). */
  from = c->len >= 3 ? c->len - 3 : 0;
  c->len += (size_t)nread;
  end = sl_http_head_end(c->head + from, c->len - from);
  if (end) {
    handle_request(c, from + end);
    return;
  }
  if (c->len == sizeof(c->head))
    respond_text(c, 431, "request head too large\n");
}

static void
on_connection(uv_stream_t *ls, int status)
{
  struct sl_http *s = ls->data;
  struct client *c;

  if (status < 0 || s->stopping)
    return;
  c = calloc(1, sizeof(*c));
  if (c == NULL)
    return;
  if (uv_tcp_init(s->loop, &c->tcp) != 0) {
    free(c);
    return;
  }
  c->srv = s;
  c->started = uv_now(s->loop);
  sl_buf_init(&c->resp, HTTP_MAX_BODY + 1024);
  sl_list_insert_head(&s->clients, &c->link);
  s->nclients++;
  s->handles_open++;
  if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
    client_close(c);
    return;
  }
  /* Over the limit: accept (so the backlog drains) and close at once. */
  if (s->nclients > HTTP_MAX_CLIENTS ||
      uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
    client_close(c);
}

static void
on_sweep(uv_timer_t *t)
{
  struct sl_http *s = t->data;
  uint64_t now = uv_now(s->loop);
  struct sl_list *it, *tmp;

  sl_list_foreach(it, tmp, &s->clients) {
    struct client *c = sl_container_of(it, struct client, link);
    if (now - c->started >= HTTP_CLIENT_TIMEOUT_MS)
      client_close(c);
  }
}

int
sl_http_start(uv_loop_t *loop, const char *addr, sl_http_handler h,
              void *arg, struct sl_http **out)
{
  struct sockaddr_storage ss, bound;
  struct sl_http *s;
  int rc, len;

  *out = NULL;
  memset(&ss, 0, sizeof(ss));
  if (addr == NULL || h == NULL || sl_addr_parse_listen(addr, &ss) != 0)
    return SL_EINVAL;
  s = calloc(1, sizeof(*s));
  if (s == NULL)
    return SL_ENOMEM;
  s->loop = loop;
  sl_list_init(&s->clients);
  s->handler = h;
  s->arg = arg;
  rc = uv_tcp_init(loop, &s->listener);
  if (rc != 0) {
    free(s);
    return rc;
  }
  s->listener.data = s;
  s->handles_open = 1;
  rc = uv_timer_init(loop, &s->sweep);
  if (rc != 0)
    goto fail;
  s->sweep.data = s;
  s->handles_open = 2;
  rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
  if (rc != 0)
    goto fail;
  len = sizeof(bound);
  rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len);
  if (rc != 0)
    goto fail;
  s->port = ntohs(bound.ss_family == AF_INET6
                    ? ((struct sockaddr_in6 *)&bound)->sin6_port
                    : ((struct sockaddr_in *)&bound)->sin_port);
  rc = uv_timer_start(&s->sweep, on_sweep, HTTP_SWEEP_MS, HTTP_SWEEP_MS);
  if (rc != 0)
    goto fail;
  /* The sweep alone must not keep a loop alive. */
  uv_unref((uv_handle_t *)&s->sweep);
  *out = s;
  return 0;
fail:
  /* Handles are released on the loop, like sl_http_stop. */
  sl_http_stop(s);
  return rc;
}

int
sl_http_set_html_headers(struct sl_http *s, const char *lines)
{
  char *copy = NULL;

  if (lines && strlen(lines) > HTTP_MAX_EXTRA)
    return SL_EINVAL;
  if (lines && (copy = strdup(lines)) == NULL)
    return SL_ENOMEM;
  free(s->html_headers);
  s->html_headers = copy;
  return 0;
}

int
sl_http_port(const struct sl_http *s)
{
  return s ? s->port : -1;
}

void
sl_http_stop(struct sl_http *s)
{
  struct sl_list *it, *tmp;

  if (s == NULL || s->stopping)
    return;
  s->stopping = 1;
  sl_list_foreach(it, tmp, &s->clients)
    client_close(sl_container_of(it, struct client, link));
  uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
  /* sweep.data is set only once the timer was initialised. */
  if (s->sweep.data == s)
    uv_close((uv_handle_t *)&s->sweep, on_server_handle_closed);
}
