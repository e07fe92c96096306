/* es_client.c - libcurl multi on the libuv loop.
 *
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION -> one
 * uv_poll_t each) and when to time out (CURLMOPT_TIMERFUNCTION -> one
 * uv_timer_t); uv tells curl what happened with curl_multi_socket_action().
 * Finished transfers are collected by check_multi() and reported to the
 * request's owner.
 */
#include "es_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "sl_err.h"
#include "sl_list.h"
#include "sl_log.h"

/* Responses are small thanks to filter_path (~60 bytes per item); the cap
 * only stops a broken peer from filling memory. */
#define RESP_MAX (64u << 20)
/* A spare request keeps its response buffer up to this size (a 5000-item
 * answer is ~300 KiB); a bigger one was an exception and is freed. */
#define RESP_KEEP (4u << 20)

struct req {
  struct sl_list link;        /* c->reqs, or c->spare when idle */
  struct sl_es_client *c;
  CURL *easy;
  struct curl_slist *hdrs;
  char *url;
  struct sl_buf body;         /* bytes on the wire */
  struct sl_buf resp;
  int is_es;                  /* saw X-Elastic-Product: Elasticsearch */
  uint64_t start_ns;
  size_t host;                /* index into c->hosts */
  sl_es_done_cb cb;
  void *arg;
  char errbuf[CURL_ERROR_SIZE];
};

/* One configured URL. A host that failed to answer is skipped until
 * dead_until, so requests fail over to the others instead of alternating
 * between a live and a dead node. */
struct host {
  char *url;                  /* without userinfo: safe to log */
  char *user, *pass;          /* from the URL's userinfo, or NULL */
  uint64_t dead_until;        /* loop ms */
  uint32_t fails;             /* consecutive connection failures */
};

struct sock {
  struct sl_list link;        /* c->socks */
  uv_poll_t poll;
  curl_socket_t fd;
  struct sl_es_client *c;
};

struct sl_es_client {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;           /* curl's own timeouts */
  int open_handles;           /* timer + polls not yet closed */
  int closed;
  struct host *hosts;
  size_t nhosts, host_next;
  uint64_t dead_base_ms, dead_max_ms;
  char *username, *password, *auth_hdr, *ca, *cert, *key;
  int verify;
  uint64_t timeout_ms;
  struct sl_list reqs;
  size_t inflight;
  struct sl_list socks;
  uint64_t connects;
  /* Recycling (bounded by max_inflight + 1): finished requests keep their
   * easy handle and response buffer in `spare`, bodies go to `pool`. So a
   * steady stream of requests touches the same memory again instead of
   * growing fresh buffers (page faults, big malloc/free) every time. */
  struct sl_list spare;
  size_t nspare;
  struct sl_buf *pool;
  size_t npool, pool_max;
  size_t body_keep;           /* larger bodies are freed, not pooled */
  void (*close_cb)(void *arg);
  void *close_arg;
};

/* ---- helpers ------------------------------------------------------------ */

static char *
base64(const char *s)
{
  static const char tab[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t n = strlen(s), i, o = 0;
  char *out = malloc(4 * ((n + 2) / 3) + 1);

  if (!out)
    return NULL;
  for (i = 0; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)(unsigned char)s[i] << 16 |
                 (uint32_t)(unsigned char)s[i + 1] << 8 |
                 (unsigned char)s[i + 2];
    out[o++] = tab[v >> 18];
    out[o++] = tab[(v >> 12) & 63];
    out[o++] = tab[(v >> 6) & 63];
    out[o++] = tab[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)(unsigned char)s[i] << 16;

    if (i + 1 < n)
      v |= (uint32_t)(unsigned char)s[i + 1] << 8;
    out[o++] = tab[v >> 18];
    out[o++] = tab[(v >> 12) & 63];
    out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
    out[o++] = '=';
  }
  out[o] = '\0';
  return out;
}

/* Secrets do not linger in freed heap memory (a core dump, a later
 * uninitialised read). */
static void
wipe_free(char *s)
{
  if (s) {
    volatile char *v = s;
    while (*v)
      *v++ = '\0';
    free(s);
  }
}

static int
hexval(int ch)
{
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

/* Percent-decoded copy of p[0..n). */
static char *
pct_decode(const char *p, size_t n)
{
  char *out = malloc(n + 1);
  size_t i, o = 0;

  if (!out)
    return NULL;
  for (i = 0; i < n; i++) {
    if (p[i] == '%' && i + 2 < n && hexval(p[i + 1]) >= 0 &&
        hexval(p[i + 2]) >= 0) {
      out[o++] = (char)(hexval(p[i + 1]) << 4 | hexval(p[i + 2]));
      i += 2;
    } else {
      out[o++] = p[i];
    }
  }
  out[o] = '\0';
  return out;
}

int
sl_es_url_split(const char *url, char **clean, char **user, char **pass)
{
  const char *auth = strstr(url, "://"), *end, *at = NULL, *colon, *q;
  size_t n;

  *clean = *user = *pass = NULL;
  auth = auth ? auth + 3 : url;
  end = auth + strcspn(auth, "/?#");
  for (q = auth; q < end; q++)
    if (*q == '@')
      at = q;
  if (at == NULL) {
    *clean = strdup(url);
    return *clean ? 0 : SL_ENOMEM;
  }
  n = strlen(url) - (size_t)(at + 1 - auth);
  *clean = malloc(n + 1);
  if (*clean == NULL)
    return SL_ENOMEM;
  snprintf(*clean, n + 1, "%.*s%s", (int)(auth - url), url, at + 1);
  colon = memchr(auth, ':', (size_t)(at - auth));
  *user = pct_decode(auth, (size_t)((colon ? colon : at) - auth));
  *pass = colon ? pct_decode(colon + 1, (size_t)(at - colon - 1))
                : strdup("");
  if (*user == NULL || *pass == NULL) {
    free(*clean);
    wipe_free(*user);
    wipe_free(*pass);
    *clean = *user = *pass = NULL;
    return SL_ENOMEM;
  }
  return 0;
}

static void
req_free(struct req *r)
{
  if (r->easy)
    curl_easy_cleanup(r->easy);
  curl_slist_free_all(r->hdrs);
  free(r->url);
  sl_buf_free(&r->body);
  sl_buf_free(&r->resp);
  free(r);
}

void
sl_es_buf_get(struct sl_es_client *c, struct sl_buf *out)
{
  if (c->npool) {
    *out = c->pool[--c->npool];
    sl_buf_reset(out);
    return;
  }
  sl_buf_init(out, 0);
}

void
sl_es_buf_put(struct sl_es_client *c, struct sl_buf *b)
{
  if (b->p && b->cap <= c->body_keep && c->npool < c->pool_max) {
    sl_buf_reset(b);
    c->pool[c->npool++] = *b;
  } else {
    sl_buf_free(b);
  }
  sl_buf_init(b, 0);
}

/* A finished (or never started) request: its easy handle and response
 * buffer wait in `spare` for the next one, its body goes to the pool. */
static void
req_put(struct sl_es_client *c, struct req *r)
{
  curl_slist_free_all(r->hdrs);
  r->hdrs = NULL;
  free(r->url);
  r->url = NULL;
  sl_es_buf_put(c, &r->body);
  if (c->closed || !r->easy || r->resp.cap > RESP_KEEP ||
      c->nspare >= c->pool_max) {
    req_free(r);
    return;
  }
  sl_buf_reset(&r->resp);
  sl_list_insert_tail(&c->spare, &r->link);
  c->nspare++;
}

static struct req *
req_get(struct sl_es_client *c)
{
  struct sl_list *l = sl_list_pop(&c->spare);
  struct req *r;

  if (l) {
    c->nspare--;
    r = sl_container_of(l, struct req, link);
    /* Back to defaults; keeps the handle's caches, not its options. */
    curl_easy_reset(r->easy);
  } else {
    r = calloc(1, sizeof *r);
    if (!r)
      return NULL;
    sl_list_init(&r->link);
    sl_buf_init(&r->resp, RESP_MAX);
  }
  sl_buf_init(&r->body, 0);
  r->is_es = 0;
  r->errbuf[0] = '\0';
  return r;
}

static void
client_free(struct sl_es_client *c)
{
  struct sl_list *l;
  size_t i;

  while ((l = sl_list_pop(&c->spare)) != NULL)
    req_free(sl_container_of(l, struct req, link));
  for (i = 0; i < c->npool; i++)
    sl_buf_free(&c->pool[i]);
  free(c->pool);

  for (i = 0; i < c->nhosts; i++) {
    free(c->hosts[i].url);
    wipe_free(c->hosts[i].user);
    wipe_free(c->hosts[i].pass);
  }
  free(c->hosts);
  free(c->username);
  wipe_free(c->password);
  wipe_free(c->auth_hdr);
  free(c->ca);
  free(c->cert);
  free(c->key);
  if (c->multi)
    curl_multi_cleanup(c->multi);
  free(c);
  curl_global_cleanup();
}

/* ---- hosts -------------------------------------------------------------- */

/* Round robin over the hosts that are not marked dead; when all are, the
 * one that comes back first. */
static size_t
pick_host(struct sl_es_client *c)
{
  uint64_t now = uv_now(c->loop);
  size_t i, best = 0;

  for (i = 0; i < c->nhosts; i++) {
    size_t k = (c->host_next + i) % c->nhosts;

    if (c->hosts[k].dead_until <= now) {
      c->host_next = k + 1;
      return k;
    }
    if (c->hosts[k].dead_until < c->hosts[best].dead_until)
      best = k;
  }
  c->host_next = best + 1;
  return best;
}

/* Any HTTP answer proves the host alive; no answer marks it dead for a
 * capped exponential time (no jitter needed: only we read it). */
static void
host_result(struct sl_es_client *c, size_t k, int answered)
{
  struct host *h = &c->hosts[k];
  uint64_t d;

  if (answered) {
    h->fails = 0;
    h->dead_until = 0;
    return;
  }
  d = c->dead_base_ms << (h->fails < 16 ? h->fails : 16);
  if (d > c->dead_max_ms)
    d = c->dead_max_ms;
  h->fails++;
  h->dead_until = uv_now(c->loop) + d;
}

/* ---- curl glue ---------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h);

static void
sock_close(struct sock *s)
{
  sl_list_remove(&s->link);
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, on_handle_closed);
}

static void
check_multi(struct sl_es_client *c)
{
  CURLMsg *msg;
  int left;

  /* A callback may close the client: stop reading curl's messages then. */
  while (!c->closed &&
         (msg = curl_multi_info_read(c->multi, &left)) != NULL) {
    struct sl_es_result res;
    struct req *r = NULL;
    long status = 0, nc = 0;
    CURLcode cres;

    if (msg->msg != CURLMSG_DONE)
      continue;
    cres = msg->data.result;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(msg->easy_handle, CURLINFO_NUM_CONNECTS, &nc);
    c->connects += nc > 0 ? (uint64_t)nc : 0;
    curl_multi_remove_handle(c->multi, r->easy);
    sl_list_remove(&r->link);
    c->inflight--;
    host_result(c, r->host, cres == CURLE_OK);
    memset(&res, 0, sizeof res);
    res.answered = cres == CURLE_OK;
    res.status = status;
    res.body = r->resp.p ? r->resp.p : "";
    res.len = r->resp.len;
    res.is_es = r->is_es;
    res.url = r->url;
    res.error = r->errbuf[0] ? r->errbuf : curl_easy_strerror(cres);
    res.elapsed_ns = uv_hrtime() - r->start_ns;
    r->cb(r->arg, &res);
    req_put(c, r);
  }
}

static void
on_poll(uv_poll_t *h, int status, int events)
{
  struct sock *s = sl_container_of(h, struct sock, poll);
  struct sl_es_client *c = s->c;
  int flags = 0, running;

  if (status < 0)
    flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  /* `s` may be closed by the socket callback inside this call. */
  curl_multi_socket_action(c->multi, s->fd, flags, &running);
  check_multi(c);
}

static int
on_curl_socket(CURL *e, curl_socket_t fd, int what, void *userp,
               void *socketp)
{
  struct sl_es_client *c = userp;
  struct sock *s = socketp;
  int events = 0;

  (void)e;
  if (what == CURL_POLL_REMOVE) {
    if (s) {
      curl_multi_assign(c->multi, fd, NULL);
      sock_close(s);
    }
    return 0;
  }
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s)
      return -1;
    if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
      free(s);
      return -1;
    }
    c->open_handles++;
    s->fd = fd;
    s->c = c;
    s->poll.data = c;
    sl_list_insert_tail(&c->socks, &s->link);
    curl_multi_assign(c->multi, fd, s);
  }
  if (what & CURL_POLL_IN)
    events |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    events |= UV_WRITABLE;
  uv_poll_start(&s->poll, events, on_poll);
  return 0;
}

static void
on_curl_timeout(uv_timer_t *t)
{
  struct sl_es_client *c = sl_container_of(t, struct sl_es_client, timer);
  int running;

  curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_multi(c);
}

static int
on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
  struct sl_es_client *c = userp;

  (void)m;
  /* -1 deletes the timer; 0 means "as soon as possible", which a uv timer
   * of 0 gives on the next loop iteration (never call back into curl from
   * inside this callback). */
  if (timeout_ms < 0)
    uv_timer_stop(&c->timer);
  else
    uv_timer_start(&c->timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
  return 0;
}

static size_t
on_write(char *p, size_t size, size_t n, void *userp)
{
  struct req *r = userp;

  if (sl_buf_append(&r->resp, p, size * n) != 0)
    return 0; /* makes curl fail the transfer: treated as a conn error */
  return size * n;
}

static size_t
on_header(char *p, size_t size, size_t n, void *userp)
{
  static const char key[] = "x-elastic-product:";
  struct req *r = userp;
  size_t len = size * n, k = sizeof key - 1;

  /* A new status line (after a 100 Continue or a redirect) starts a new
   * header block. */
  if (len >= 5 && strncmp(p, "HTTP/", 5) == 0)
    r->is_es = 0;
  if (len > k && strncasecmp(p, key, k) == 0) {
    const char *v = p + k, *end = p + len;

    while (v < end && (*v == ' ' || *v == '\t'))
      v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' ||
                       end[-1] == ' '))
      end--;
    r->is_es = (size_t)(end - v) == 13 && strncmp(v, "Elasticsearch", 13)
                                              == 0;
  }
  return len;
}

/* ---- requests ----------------------------------------------------------- */

static int
hdr_add(struct req *r, const char *h)
{
  struct curl_slist *n = curl_slist_append(r->hdrs, h);

  if (!n)
    return SL_ENOMEM;
  r->hdrs = n;
  return 0;
}

static int
req_setup(struct sl_es_client *c, struct req *r, const char *method,
          const char *path, const char *ctype, int gz)
{
  const struct host *h = &c->hosts[r->host];
  const char *host = h->url;
  const char *user = h->user ? h->user : c->username;
  const char *pass = h->user ? h->pass : c->password;
  size_t n = strlen(host) + strlen(path) + 2;
  CURL *e;

  r->url = malloc(n);
  if (!r->url)
    return SL_ENOMEM;
  snprintf(r->url, n, "%s/%s", host, path);
  if (!r->easy)
    r->easy = curl_easy_init();
  e = r->easy;
  if (!e)
    return SL_ENOMEM;
  /* "Expect:" turns off curl's 100-continue wait on big bodies, which
   * costs a round trip (or a 1 s stall) per request. */
  if (hdr_add(r, "Expect:") || hdr_add(r, "Accept: application/json"))
    return SL_ENOMEM;
  if (ctype && hdr_add(r, ctype))
    return SL_ENOMEM;
  if (gz && hdr_add(r, "Content-Encoding: gzip"))
    return SL_ENOMEM;
  if (c->auth_hdr && hdr_add(r, c->auth_hdr))
    return SL_ENOMEM;
  curl_easy_setopt(e, CURLOPT_URL, r->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, r);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   (long)(c->timeout_ms < 10000 ? c->timeout_ms : 10000));
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  /* ES speaks HTTP/1.1 only; skip the h2 ALPN dance on https. */
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  if (user) {
    /* Never in the URL: curl gets them apart, so neither the URL we log
     * nor curl's error messages can carry them. */
    curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(e, CURLOPT_USERNAME, user);
    curl_easy_setopt(e, CURLOPT_PASSWORD, pass ? pass : "");
  }
  if (c->ca)
    curl_easy_setopt(e, CURLOPT_CAINFO, c->ca);
  if (c->cert) {
    curl_easy_setopt(e, CURLOPT_SSLCERT, c->cert);
    curl_easy_setopt(e, CURLOPT_SSLKEY, c->key);
  }
  if (!c->verify) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (strcmp(method, "GET") == 0) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else {
    /* POSTFIELDS does not copy: r->body lives as long as the request. */
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body.p ? r->body.p : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)r->body.len);
    if (strcmp(method, "POST") != 0)
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  }
  return 0;
}

static int
start(struct sl_es_client *c, const char *method, const char *path,
      const char *ctype, int gzip, struct sl_buf *body, uint64_t timeout_ms,
      sl_es_done_cb cb, void *arg)
{
  struct req *r = req_get(c);
  int rc = SL_ENOMEM;

  if (!r)
    goto fail;
  if (body) {
    r->body = *body;
    sl_buf_init(body, 0);
  }
  r->c = c;
  r->cb = cb;
  r->arg = arg;
  r->host = pick_host(c);
  rc = req_setup(c, r, method, path, ctype, gzip);
  if (rc)
    goto fail;
  if (timeout_ms && timeout_ms < c->timeout_ms) {
    curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
  }
  r->start_ns = uv_hrtime();
  if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
    rc = SL_EINTERNAL;
    goto fail;
  }
  sl_list_insert_tail(&c->reqs, &r->link);
  c->inflight++;
  return 0;
fail:
  if (r)
    req_put(c, r);
  else if (body)
    sl_es_buf_put(c, body);
  return rc;
}

int
sl_es_request(struct sl_es_client *c, const char *method, const char *path,
              const char *ctype, int gzip, struct sl_buf *body,
              sl_es_done_cb cb, void *arg)
{
  return start(c, method, path, ctype, gzip, body, 0, cb, arg);
}

int
sl_es_probe(struct sl_es_client *c, const char *path, uint64_t timeout_ms,
            sl_es_done_cb cb, void *arg)
{
  return start(c, "GET", path, NULL, 0, NULL, timeout_ms, cb, arg);
}

size_t
sl_es_inflight(const struct sl_es_client *c)
{
  return c->inflight;
}

uint64_t
sl_es_connects(const struct sl_es_client *c)
{
  return c->connects;
}

/* ---- life cycle --------------------------------------------------------- */

int
sl_es_client_new(uv_loop_t *loop, const struct sl_es_conf *conf,
                 struct sl_es_client **out, char *err, size_t errlen)
{
  struct sl_es_client *c;
  size_t i;
  int rc = SL_ENOMEM;

  *out = NULL;
  if (errlen)
    err[0] = '\0';
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    snprintf(err, errlen, "curl_global_init failed");
    return SL_EINTERNAL;
  }
  c = calloc(1, sizeof *c);
  if (!c) {
    curl_global_cleanup();
    return rc;
  }
  c->loop = loop;
  sl_list_init(&c->reqs);
  sl_list_init(&c->socks);
  sl_list_init(&c->spare);
  /* One body per request in flight plus the one being built. */
  c->pool_max = conf->max_inflight + 1;
  c->pool = calloc(c->pool_max, sizeof *c->pool);
  if (!c->pool)
    goto fail;
  /* sl_buf doubles its capacity, so a body near bulk_max_bytes may hold
   * twice that; anything bigger came from one oversized event. */
  c->body_keep = 2 * conf->bulk_max_bytes + (64u << 10);
  c->hosts = calloc(conf->nhosts ? conf->nhosts : 1, sizeof *c->hosts);
  if (!c->hosts)
    goto fail;
  for (i = 0; i < conf->nhosts; i++) {
    struct host *h = &c->hosts[i];

    rc = sl_es_url_split(conf->hosts[i], &h->url, &h->user, &h->pass);
    if (rc)
      goto fail;
    c->nhosts++;
  }
  rc = SL_ENOMEM;
  if (c->nhosts == 0) {
    rc = SL_ECONFIG;
    goto fail;
  }
  /* A dead host waits like a failed request does. */
  c->dead_base_ms = conf->backoff_base_ms;
  c->dead_max_ms = conf->backoff_max_ms;
  c->timeout_ms = conf->timeout_ms;
  c->verify = conf->verify;
  if (!c->verify)
    sl_log(SL_LOG_WARN, "es_client", "elasticsearch.ssl.verify is false: "
           "any server can pose as Elasticsearch and read the events and "
           "credentials", SL_LF_END);
  c->username = sl_strdup(conf->username);
  c->password = sl_strdup(conf->password);
  c->ca = sl_strdup(conf->ca);
  c->cert = sl_strdup(conf->cert);
  c->key = sl_strdup(conf->key);
  if ((conf->username && !c->username) || (conf->password && !c->password) ||
      (conf->ca && !c->ca) || (conf->cert && !c->cert) ||
      (conf->key && !c->key))
    goto fail;
  if (conf->api_key) {
    /* "id:key" is what Beats take; ES wants base64(id:key). */
    const char *s = conf->api_key;
    char *enc = strchr(s, ':') ? base64(s) : strdup(s);
    size_t len = enc ? strlen(enc) + 32 : 0;

    c->auth_hdr = enc ? malloc(len) : NULL;
    if (c->auth_hdr)
      snprintf(c->auth_hdr, len, "Authorization: ApiKey %s", enc);
    free(enc);
    if (!c->auth_hdr)
      goto fail;
  }
  c->multi = curl_multi_init();
  if (!c->multi)
    goto fail;
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  /* Keep one idle connection per possible request (keep-alive). */
  curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS,
                    (long)(conf->max_inflight + 2));
  /* The handle last: after this point cleanup goes through the loop. */
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  c->open_handles = 1;
  *out = c;
  return 0;
fail:
  if (errlen && !err[0])
    snprintf(err, errlen, "elasticsearch: %s", sl_strerror(rc));
  client_free(c);
  return rc;
}

static void
on_handle_closed(uv_handle_t *h)
{
  struct sl_es_client *c = h->data;
  void (*cb)(void *);
  void *arg;

  if (h->type == UV_POLL)
    free(sl_container_of((uv_poll_t *)h, struct sock, poll));
  if (--c->open_handles > 0 || !c->closed)
    return;
  cb = c->close_cb;
  arg = c->close_arg;
  client_free(c);
  if (cb)
    cb(arg);
}

void
sl_es_client_close(struct sl_es_client *c, void (*cb)(void *arg), void *arg)
{
  struct sl_list *l;

  if (c->closed)
    return;
  c->closed = 1;
  c->close_cb = cb;
  c->close_arg = arg;
  while ((l = sl_list_pop(&c->reqs)) != NULL) {
    struct req *r = sl_container_of(l, struct req, link);

    curl_multi_remove_handle(c->multi, r->easy);
    req_free(r);
  }
  c->inflight = 0;
  /* May call on_curl_socket(REMOVE) for cached connections. */
  curl_multi_cleanup(c->multi);
  c->multi = NULL;
  while ((l = sl_list_first(&c->socks)) != NULL)
    sock_close(sl_container_of(l, struct sock, link));
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}
