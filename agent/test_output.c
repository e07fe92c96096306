/* test_output.c - `sluice-agent -c FILE test output` (tools.h): check the
 * configured output step by step, as `filebeat test output` does.
 *
 * Plain blocking-style code with poll(2) deadlines, not the libuv output:
 * each step must stop at a known point and say which one failed, and the
 * shipping path's reconnect/backoff machinery would hide exactly that.
 * What must be the same as shipping is shared: the host:port parsing
 * (config.h), the TLS context and certificate checks (sl_tls.h, with the
 * same host-name verification as out_lumberjack.c), and the librdkafka
 * configuration (sl_out_kafka_conf). No event and no frame is sent.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "config.h"
#include "out.h"
#include "sl_config.h"
#include "sl_err.h"
#include "sl_probe.h"
#include "sl_time.h"
#include "sl_tls.h"
#include "tools.h"

#ifdef HAVE_OPENSSL
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#endif
#ifdef HAVE_RDKAFKA
#include <librdkafka/rdkafka.h>
#endif

#define LJ_DEFAULT_PORT 5044
/* How long the receiver must keep a fresh connection open without
 * refusing it: a refused TLS 1.3 client certificate or a peer-name
 * allow-list closes within a round trip, well inside this. */
#define TALK_QUIET_MS 500
/* Upper bound of one connect or handshake step. */
#define STEP_MAX_MS 10000

/* ---- sockets ---------------------------------------------------------- */

static int
wait_fd(int fd, short ev, uint64_t deadline_ms)
{
  struct pollfd pfd = { fd, ev, 0 };
  uint64_t now;
  int r;

  for (;;) {
    now = sl_time_mono_ms();
    if (now >= deadline_ms)
      return 0;
    r = poll(&pfd, 1, (int)(deadline_ms - now));
    if (r >= 0 || errno != EINTR)
      return r;
  }
}

/* Non-blocking connect bounded by step_ms. Returns the socket or -1 with
 * errno set (ETIMEDOUT when the deadline passed). */
static int
dial(const struct addrinfo *ai, uint64_t step_ms)
{
  int fd, e = 0;
  socklen_t el = sizeof(e);

  fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
              ai->ai_protocol);
  if (fd < 0)
    return -1;
  if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
    return fd;
  if (errno != EINPROGRESS)
    goto fail;
  switch (wait_fd(fd, POLLOUT, sl_time_mono_ms() + step_ms)) {
  case 0:
    errno = ETIMEDOUT;
    goto fail;
  case -1:
    goto fail;
  }
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0)
    goto fail;
  if (e != 0) {
    errno = e;
    goto fail;
  }
  return fd;
fail:
  e = errno;
  close(fd);
  errno = e;
  return -1;
}

static void
addr_text(const struct addrinfo *ai, char *buf, size_t len)
{
  const void *a = ai->ai_family == AF_INET6
      ? (const void *)&((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
      : (const void *)&((const struct sockaddr_in *)ai->ai_addr)->sin_addr;

  if (inet_ntop(ai->ai_family, a, buf, (socklen_t)len) == NULL)
    snprintf(buf, len, "?");
}

/* "connection": parse host, dns lookup, dial up. Returns the socket, or
 * -1 after reporting the failing step. */
static int
connection(struct sl_probe *p, const char *hostport, int dflt_port, char *host,
           size_t hostlen)
{
  struct addrinfo hints, *res = NULL, *ai;
  char port[8], addrs[512], one[INET6_ADDRSTRLEN];
  size_t off = 0;
  int fd = -1, n, rc, err = 0, pnum;

  sl_probe_line(1, "connection...");
  if (sl_agent_split_hostport(hostport, host, hostlen, &pnum)) {
    sl_probe_fail(p, 2, "parse host", "'%s' is not host:port", hostport);
    return -1;
  }
  snprintf(port, sizeof(port), "%d", pnum ? pnum : dflt_port);
  sl_probe_ok(2, "parse host");
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  rc = getaddrinfo(host, port, &hints, &res);
  if (rc != 0) {
    sl_probe_fail(p, 2, "dns lookup", "%s: %s", host, gai_strerror(rc));
    return -1;
  }
  sl_probe_ok(2, "dns lookup");
  addrs[0] = '\0';
  for (ai = res; ai; ai = ai->ai_next) {
    addr_text(ai, one, sizeof(one));
    n = snprintf(addrs + off, sizeof(addrs) - off, "%s%s", off ? ", " : "",
                 one);
    if (n < 0 || (size_t)n >= sizeof(addrs) - off)
      break;
    off += (size_t)n;
  }
  sl_probe_line(2, "addresses: %s", addrs);
  for (ai = res; ai && fd < 0; ai = ai->ai_next) {
    fd = dial(ai, p->step_ms);
    if (fd < 0)
      err = errno;
  }
  freeaddrinfo(res);
  if (fd < 0) {
    sl_probe_fail(p, 2, "dial up", "%s:%s: %s", host, port, strerror(err));
    return -1;
  }
  sl_probe_ok(2, "dial up");
  return fd;
}

/* ---- talk to server --------------------------------------------------- */

/* What arrived is Lumberjack if it is whole or partial `2A` ack frames
 * (a receiver's keep-alive). */
static int
is_lumberjack(const unsigned char *d, size_t n)
{
  size_t i;

  for (i = 0; i < n; i += 6)
    if (d[i] != '2' || (i + 1 < n && d[i + 1] != 'A'))
      return 0;
  return 1;
}

static void
printable(const unsigned char *d, size_t n, char *out, size_t len)
{
  size_t i, o = 0;

  for (i = 0; i < n && o + 1 < len && i < 40; i++)
    out[o++] = d[i] >= ' ' && d[i] < 0x7f ? (char)d[i] : '.';
  out[o] = '\0';
}

struct conn {
  int fd;
#ifdef HAVE_OPENSSL
  SSL *ssl;
#endif
};

/* Read whatever comes within TALK_QUIET_MS. 1: something came (in buf,
 * *n bytes); 0: quiet; -1: the peer closed or failed (why in why). */
static int
listen_quiet(struct conn *c, unsigned char *buf, size_t cap, size_t *n,
             char *why, size_t whylen)
{
  uint64_t deadline = sl_time_mono_ms() + TALK_QUIET_MS;
  ssize_t r;

  *n = 0;
  for (;;) {
    int w = wait_fd(c->fd, POLLIN, deadline);
    if (w == 0)
      return 0;
    if (w < 0) {
      snprintf(why, whylen, "%s", strerror(errno));
      return -1;
    }
#ifdef HAVE_OPENSSL
    if (c->ssl) {
      int e;
      ERR_clear_error();
      r = SSL_read(c->ssl, buf, (int)cap);
      if (r > 0) {
        *n = (size_t)r;
        return 1;
      }
      e = SSL_get_error(c->ssl, (int)r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        continue;  /* session tickets and other records without data */
      if (e == SSL_ERROR_ZERO_RETURN) {
        snprintf(why, whylen, "the receiver closed the connection");
        return -1;
      }
      sl_tls_errstr(why, whylen, "the receiver closed the connection");
      return -1;
    }
#endif
    r = recv(c->fd, buf, cap, 0);
    if (r > 0) {
      *n = (size_t)r;
      return 1;
    }
    if (r == 0) {
      snprintf(why, whylen, "the receiver closed the connection");
      return -1;
    }
    if (errno == EAGAIN || errno == EINTR)
      continue;
    snprintf(why, whylen, "%s", strerror(errno));
    return -1;
  }
}

static void
talk(struct sl_probe *p, struct conn *c, int lumberjack)
{
  unsigned char buf[256];
  char why[300], txt[64];
  size_t n;
  int r;

  r = listen_quiet(c, buf, sizeof(buf), &n, why, sizeof(why));
  if (r < 0) {
    sl_probe_fail(p, 1, "talk to server", "%s", why);
    return;
  }
  if (r > 0 && lumberjack && !is_lumberjack(buf, n)) {
    printable(buf, n, txt, sizeof(txt));
    sl_probe_fail(p, 1, "talk to server", "not a Lumberjack receiver: it "
                  "answered \"%s\"", txt);
    return;
  }
  sl_probe_ok(1, "talk to server");
}

/* ---- TLS ---------------------------------------------------------------- */

#ifdef HAVE_OPENSSL
/* The handshake as out_lumberjack.c's tls_start sets it up (SNI for
 * names, host or IP verification), driven by poll. */
static int
tls_handshake(struct sl_probe *p, struct conn *c, SSL_CTX *ctx,
              const char *host, int verify)
{
  struct sockaddr_storage ss;
  uint64_t deadline = sl_time_mono_ms() + p->step_ms;
  char why[300], peer[256];
  int is_ip, r, e, w;

  sl_probe_line(1, "TLS...");
  sl_probe_line(2, "security: server's certificate chain verification is %s",
                verify ? "enabled" : "DISABLED (output.ssl.verify: false)");
  c->ssl = SSL_new(ctx);
  if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
    sl_probe_fail(p, 2, "handshake", "out of memory");
    return -1;
  }
  is_ip = inet_pton(AF_INET, host, &ss) == 1 ||
          inet_pton(AF_INET6, host, &ss) == 1;
  if (!is_ip)
    SSL_set_tlsext_host_name(c->ssl, host);
  if (verify) {
    X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
    if (is_ip)
      X509_VERIFY_PARAM_set1_ip_asc(vp, host);
    else
      X509_VERIFY_PARAM_set1_host(vp, host, 0);
  }
  for (;;) {
    ERR_clear_error();
    r = SSL_connect(c->ssl);
    if (r == 1)
      break;
    e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      w = wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
                  deadline);
      if (w > 0)
        continue;
      sl_probe_fail(p, 2, "handshake", "%s", w == 0 ? "timed out"
                                                : strerror(errno));
      return -1;
    }
    sl_tls_errstr(why, sizeof(why), "the receiver closed the connection");
    if (SSL_get_verify_result(c->ssl) != X509_V_OK)
      sl_probe_fail(p, 2, "handshake", "%s (%s)", why,
                    X509_verify_cert_error_string(
                    SSL_get_verify_result(c->ssl)));
    else
      sl_probe_fail(p, 2, "handshake", "%s", why);
    return -1;
  }
  sl_probe_ok(2, "handshake");
  sl_probe_line(2, "TLS version: %s", SSL_get_version(c->ssl));
  sl_probe_line(2, "cipher: %s", SSL_get_cipher_name(c->ssl));
  sl_tls_peer_cn(c->ssl, peer, sizeof(peer));
  sl_probe_line(2, "peer: %s", peer[0] ? peer : "(no subject CN)");
  return 0;
}
#endif

/* ---- lumberjack and tcp ----------------------------------------------- */

static void
test_host(struct sl_probe *p, const struct sl_agent_conf *ac, const char *hp,
          void *tls_ctx)
{
  int lj = ac->out_type == SL_OUT_LUMBERJACK;
  struct conn c;
  char host[256];

  memset(&c, 0, sizeof(c));
  sl_probe_line(0, "%s: %s...", lj ? "lumberjack" : "tcp", hp);
  c.fd = connection(p, hp, lj ? LJ_DEFAULT_PORT : 0, host, sizeof(host));
  if (c.fd < 0)
    return;
#ifdef HAVE_OPENSSL
  if (tls_ctx) {
    if (tls_handshake(p, &c, tls_ctx, host, ac->ssl_verify) == 0)
      talk(p, &c, lj);
    SSL_free(c.ssl);
    close(c.fd);
    return;
  }
#endif
  (void)tls_ctx;
  sl_probe_line(1, "TLS... WARN secure connection disabled");
  talk(p, &c, lj);
  close(c.fd);
}

static void
test_hosts(struct sl_probe *p, const struct sl_agent_conf *ac)
{
  void *ctx = NULL;
  int i;

#ifdef HAVE_OPENSSL
  if (ac->out_type == SL_OUT_LUMBERJACK && ac->ssl_enabled) {
    struct sl_tls_files f = {
      "output.ssl", ac->ssl_ca, ac->ssl_cert, ac->ssl_key,
    };
    SSL_CTX *sctx = NULL;
    char err[512];
    if (sl_tls_client_ctx(&f, ac->ssl_verify, &sctx, err, sizeof(err))) {
      sl_probe_fail(p, 0, "TLS configuration", "%s", err);
      return;
    }
    ctx = sctx;
  }
#endif
  for (i = 0; i < ac->nhosts; i++)
    test_host(p, ac, ac->hosts[i], ctx);
#ifdef HAVE_OPENSSL
  SSL_CTX_free(ctx);
#endif
}

/* ---- file --------------------------------------------------------------- */

static void
test_file(struct sl_probe *p, const char *path)
{
  char *copy = strdup(path), *dir;
  struct stat st;
  int fd;

  sl_probe_line(0, "file: %s...", path);
  if (copy == NULL) {
    sl_probe_fail(p, 1, "directory", "out of memory");
    return;
  }
  dir = dirname(copy);
  if (stat(dir, &st) != 0) {
    sl_probe_fail(p, 1, "directory", "%s: %s", dir, strerror(errno));
    goto out;
  }
  if (!S_ISDIR(st.st_mode)) {
    sl_probe_fail(p, 1, "directory", "%s: not a directory", dir);
    goto out;
  }
  sl_probe_ok(1, "directory");
  if (stat(path, &st) == 0) {
    /* Opened for append and closed again: nothing is written. */
    fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
      sl_probe_fail(p, 1, "file appendable", "%s", strerror(errno));
      goto out;
    }
    close(fd);
    sl_probe_ok(1, "file appendable");
    sl_probe_line(1, "size: %lld bytes", (long long)st.st_size);
  } else if (access(dir, W_OK | X_OK) != 0) {
    sl_probe_fail(p, 1, "directory writable", "%s: %s", dir, strerror(errno));
  } else {
    sl_probe_ok(1, "directory writable");
    sl_probe_line(1, "the file does not exist yet; the agent creates it");
  }
out:
  free(copy);
}

/* ---- kafka -------------------------------------------------------------- */

#ifdef HAVE_RDKAFKA
static void
test_kafka(struct sl_probe *p, const struct sl_conf *conf,
           const struct sl_agent_conf *ac)
{
  const char *topic = sl_conf_str(ac->output, "topic");
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_resp_err_t e;
  rd_kafka_t *rk = NULL;
  void *kconf = NULL;
  char err[512];
  int i, templ = topic == NULL || strstr(topic, "%{") != NULL;

  sl_probe_line(0, "kafka: %s...", topic ? topic : "?");
  if (sl_out_kafka_conf(conf, ac, &kconf, err, sizeof(err))) {
    sl_probe_fail(p, 1, "configuration", "%s", err);
    return;
  }
  sl_probe_ok(1, "configuration");
  rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, err, sizeof(err));
  if (rk == NULL) {
    rd_kafka_conf_destroy(kconf);
    sl_probe_fail(p, 1, "client", "%s", err);
    return;
  }
  /* All topics, then look for ours: a request naming the topic would let
   * a broker with auto.create.topics.enable create it. */
  e = rd_kafka_metadata(rk, 1, NULL, &md, (int)p->step_ms);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    sl_probe_fail(p, 1, "talk to brokers", "%s", rd_kafka_err2str(e));
    goto out;
  }
  sl_probe_ok(1, "talk to brokers");
  for (i = 0; i < md->broker_cnt; i++)
    sl_probe_line(2, "broker %d: %s:%d", (int)md->brokers[i].id,
                  md->brokers[i].host, md->brokers[i].port);
  if (templ) {
    sl_probe_line(1, "topic: a template (%s), chosen per event; not checked",
                  topic ? topic : "?");
    goto out;
  }
  for (i = 0; i < md->topic_cnt; i++)
    if (strcmp(md->topics[i].topic, topic) == 0)
      break;
  if (i == md->topic_cnt) {
    /* Shipping works if the brokers auto-create topics; if they do not,
     * the producer waits for it (message.timeout.ms 0). */
    sl_probe_line(1, "topic... WARN %s does not exist yet (created on the "
                  "first event only if the brokers auto-create topics)",
                  topic);
  } else if (md->topics[i].err) {
    sl_probe_fail(p, 1, "topic", "%s: %s", topic,
                  rd_kafka_err2str(md->topics[i].err));
  } else {
    sl_probe_ok(1, "topic");
    sl_probe_line(2, "partitions: %d", md->topics[i].partition_cnt);
  }
out:
  if (md)
    rd_kafka_metadata_destroy(md);
  rd_kafka_destroy(rk);
}
#endif

int
sl_agent_test_main(const struct sl_conf *conf, int argc, char **argv)
{
  struct sl_agent_conf ac;
  struct sl_probe p = { 0, STEP_MAX_MS };
  char err[512];

  if (argc != 2 || strcmp(argv[1], "output") != 0) {
    fprintf(stderr, "sluice-agent: usage: test output\n");
    return 2;
  }
  if (sl_agent_conf_read(conf, &ac, err, sizeof(err))) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  if (ac.timeout_ms > 0 && ac.timeout_ms < p.step_ms)
    p.step_ms = ac.timeout_ms;
  switch (ac.out_type) {
  case SL_OUT_LUMBERJACK:
  case SL_OUT_TCP:
    test_hosts(&p, &ac);
    break;
  case SL_OUT_FILE:
    test_file(&p, ac.path);
    break;
  case SL_OUT_STDOUT:
    sl_probe_line(0, "stdout... OK");
    break;
  case SL_OUT_KAFKA:
#ifdef HAVE_RDKAFKA
    test_kafka(&p, conf, &ac);
#else
    sl_probe_fail(&p, 0, "kafka", "this sluice-agent was built without "
                  "librdkafka");
#endif
    break;
  }
  return p.failed ? 1 : 0;
}
