#include "input_tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_conf.h"
#include "sl_config.h"
#include "sl_err.h"
#include "sl_list.h"
#include "sl_log.h"
#include "sl_tls.h"

#ifdef HAVE_OPENSSL
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* A TLS record carries at most 16 KiB of plaintext. */
#define PLAIN_MAX 16384

struct sl_input_tls {
  SSL_CTX *ctx;
  char **names;            /* allowed_names globs, or NULL */
  size_t nnames;
  /* Decrypted bytes of one SSL_read; every connection uses it in turn
   * (the decoder copies what it keeps before the next read starts). */
  char plain[PLAIN_MAX];
};

struct sl_input_tls_conn {
  struct sl_input_tls *t;
  uv_stream_t *s;
  SSL *ssl;                /* owns rbio and wbio */
  BIO *rbio, *wbio;        /* ciphertext in / out */
  int seen;                /* the first byte was checked */
  int up;                  /* handshake done and peer allowed */
  char peer[64];
  char bad_cert[160];      /* subject of the first certificate that failed
                              verification, for the log */
};

/* The shape of one ciphertext write; the bytes follow it. */
struct wreq {
  uv_write_t req;
  /* char data[] */
};

static int
conf_auth(const char *s, enum sl_tls_client_auth *out)
{
  if (s == NULL || strcmp(s, "required") == 0)
    *out = SL_TLS_AUTH_REQUIRED;
  else if (strcmp(s, "optional") == 0)
    *out = SL_TLS_AUTH_OPTIONAL;
  else if (strcmp(s, "none") == 0)
    *out = SL_TLS_AUTH_NONE;
  else
    return SL_ECONFIG;
  return 0;
}

static const char *
str_or_null(const json_t *o, const char *key)
{
  const char *s = sl_conf_str(o, key);

  return s && s[0] ? s : NULL;
}

void
sl_input_tls_free(struct sl_input_tls *t)
{
  size_t i;

  if (t == NULL)
    return;
  SSL_CTX_free(t->ctx);
  for (i = 0; i < t->nnames; i++)
    free(t->names[i]);
  free(t->names);
  free(t);
}

int
sl_input_tls_new(const json_t *ssl, const char *what,
                 struct sl_input_tls **out, char *err, size_t errlen)
{
  struct sl_tls_files f;
  enum sl_tls_client_auth auth;
  struct sl_input_tls *t;
  const json_t *names = sl_conf_get(ssl, "allowed_names");
  size_t i;
  int rc;

  *out = NULL;
  if (ssl == NULL || !sl_conf_bool(ssl, "enabled", 0))
    return 0;
  if (conf_auth(str_or_null(ssl, "client_auth"), &auth)) {
    snprintf(err, errlen, "%s.client_auth: want required, optional or "
             "none", what);
    return SL_ECONFIG;
  }
  if (json_array_size(names) && auth == SL_TLS_AUTH_NONE) {
    snprintf(err, errlen, "%s.allowed_names: needs client certificates "
             "(client_auth: required or optional)", what);
    return SL_ECONFIG;
  }
  t = calloc(1, sizeof(*t));
  if (t == NULL)
    return SL_ENOMEM;
  f.what = what;
  f.ca = str_or_null(ssl, "ca");
  f.cert = str_or_null(ssl, "cert");
  f.key = str_or_null(ssl, "key");
  rc = sl_tls_server_ctx(&f, auth, &t->ctx, err, errlen);
  if (rc)
    goto fail;
  rc = SL_ENOMEM;
  if (json_array_size(names)) {
    t->names = calloc(json_array_size(names), sizeof(*t->names));
    if (t->names == NULL)
      goto fail;
    for (i = 0; i < json_array_size(names); i++) {
      const char *s = json_string_value(json_array_get(names, i));
      if (s == NULL)
        continue;
      t->names[t->nnames] = strdup(s);
      if (t->names[t->nnames] == NULL)
        goto fail;
      t->nnames++;
    }
  }
  *out = t;
  return 0;
fail:
  sl_input_tls_free(t);
  return rc;
}

/* Remember the first certificate that failed, so the log can name it
 * (OpenSSL keeps only the error code). */
static int
verify_cb(int ok, X509_STORE_CTX *xs)
{
  SSL *ssl = X509_STORE_CTX_get_ex_data(
      xs, SSL_get_ex_data_X509_STORE_CTX_idx());
  struct sl_input_tls_conn *tc = ssl ? SSL_get_app_data(ssl) : NULL;
  X509 *x = X509_STORE_CTX_get_current_cert(xs);
  char cn[128];

  if (!ok && tc && x && tc->bad_cert[0] == '\0') {
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(x),
                                  NID_commonName, cn, sizeof(cn)) > 0)
      snprintf(tc->bad_cert, sizeof(tc->bad_cert), "CN=%s", cn);
    else
      snprintf(tc->bad_cert, sizeof(tc->bad_cert), "no CN");
  }
  return ok;
}

int
sl_input_tls_accept(struct sl_input_tls *t, uv_stream_t *s,
                    const char *peer, struct sl_input_tls_conn **out)
{
  struct sl_input_tls_conn *tc = calloc(1, sizeof(*tc));

  *out = NULL;
  if (tc == NULL)
    return SL_ENOMEM;
  tc->t = t;
  tc->s = s;
  snprintf(tc->peer, sizeof(tc->peer), "%s", peer);
  tc->ssl = SSL_new(t->ctx);
  tc->rbio = BIO_new(BIO_s_mem());
  tc->wbio = BIO_new(BIO_s_mem());
  if (tc->ssl == NULL || tc->rbio == NULL || tc->wbio == NULL) {
    BIO_free(tc->rbio);
    BIO_free(tc->wbio);
    SSL_free(tc->ssl);
    free(tc);
    ERR_clear_error();
    return SL_ENOMEM;
  }
  SSL_set_bio(tc->ssl, tc->rbio, tc->wbio);   /* ssl owns them now */
  SSL_set_app_data(tc->ssl, tc);
  SSL_set_verify(tc->ssl, SSL_get_verify_mode(tc->ssl), verify_cb);
  SSL_set_accept_state(tc->ssl);
  *out = tc;
  return 0;
}

void
sl_input_tls_conn_free(struct sl_input_tls_conn *tc)
{
  if (tc == NULL)
    return;
  SSL_free(tc->ssl);
  free(tc);
}

static void
on_written(uv_write_t *req, int status)
{
  (void)status;  /* a failed write shows up as a read error too */
  free(sl_container_of(req, struct wreq, req));
}

/* Move what OpenSSL wrote to the socket. */
static int
flush(struct sl_input_tls_conn *tc)
{
  size_t n;

  while ((n = BIO_ctrl_pending(tc->wbio)) > 0) {
    struct wreq *w = malloc(sizeof(*w) + n);
    uv_buf_t b;
    int got;

    if (w == NULL)
      return SL_ENOMEM;
    got = BIO_read(tc->wbio, (char *)(w + 1), (int)n);
    if (got <= 0) {
      free(w);
      return SL_EINTERNAL;
    }
    b = uv_buf_init((char *)(w + 1), (unsigned)got);
    if (uv_write(&w->req, tc->s, &b, 1, on_written) != 0) {
      free(w);
      return SL_EPIPE;
    }
  }
  return 0;
}

static const char *
verify_hint(long vr)
{
  switch (vr) {
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
  case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
  case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    return "; not issued by the CA in ssl.ca";
  case X509_V_ERR_CERT_HAS_EXPIRED:
    return "; renew the client certificate";
  default:
    return "";
  }
}

static void
handshake_error(struct sl_input_tls_conn *tc, char *err, size_t errlen)
{
  long vr = SSL_get_verify_result(tc->ssl);
  char why[160];

  sl_tls_errstr(why, sizeof(why), "peer closed during the handshake");
  if (vr != X509_V_OK)
    snprintf(err, errlen, "TLS handshake failed: client certificate %s: "
             "%s%s", tc->bad_cert[0] ? tc->bad_cert : "",
             X509_verify_cert_error_string(vr), verify_hint(vr));
  else if (strstr(why, "alert") && (strstr(why, "certificate") ||
                                     strstr(why, "unknown ca")))
    /* The sender's verdict on us, not ours on it. */
    snprintf(err, errlen, "TLS handshake failed: %s; the sender refused "
             "the collector's certificate (its CA, or a name that is not "
             "the host the sender dials)", why);
  else
    snprintf(err, errlen, "TLS handshake failed: %s", why);
}

/* The handshake is done: check the name and log who came in. */
static int
handshake_done(struct sl_input_tls_conn *tc, char *err, size_t errlen)
{
  char got[200], cn[160];

  if (!sl_tls_peer_allowed(tc->ssl, (const char *const *)tc->t->names,
                           tc->t->nnames, got, sizeof(got))) {
    snprintf(err, errlen, "TLS client certificate name not allowed: %s "
             "(ssl.allowed_names)", got);
    return SL_EAUTH;
  }
  tc->up = 1;
  sl_tls_peer_cn(tc->ssl, cn, sizeof(cn));
  sl_log(SL_LOG_DEBUG, "input", "TLS connection", SL_LF_STR, "peer",
         tc->peer, SL_LF_STR, "tls", SSL_get_version(tc->ssl), SL_LF_STR,
         "client", cn[0] ? cn : "no certificate", SL_LF_END);
  return 0;
}

int
sl_input_tls_feed(struct sl_input_tls_conn *tc, const char *p, size_t n,
                  sl_input_tls_plain_cb cb, void *arg, char *err,
                  size_t errlen)
{
  int r, rc;

  if (n == 0)
    return 0;
  if (!tc->seen) {
    tc->seen = 1;
    /* 0x16: a TLS handshake record. A Lumberjack frame starts with its
     * version, '1' or '2'. */
    if (p[0] == '2' || p[0] == '1') {
      snprintf(err, errlen, "plaintext Lumberjack on a TLS port; enable "
               "ssl on the sender or disable it on the input");
      return SL_EPROTO;
    }
    if (p[0] != 0x16) {
      snprintf(err, errlen, "not a TLS handshake on a TLS port (first "
               "byte 0x%02x)", (unsigned char)p[0]);
      return SL_EPROTO;
    }
  }
  if (BIO_write(tc->rbio, p, (int)n) != (int)n) {
    snprintf(err, errlen, "TLS: out of memory");
    return SL_ENOMEM;
  }
  if (!tc->up) {
    r = SSL_do_handshake(tc->ssl);
    /* Handshake records, or the alert that says why it failed. */
    rc = flush(tc);
    if (r != 1) {
      if (SSL_get_error(tc->ssl, r) == SSL_ERROR_WANT_READ && rc == 0)
        return 0;
      handshake_error(tc, err, errlen);
      return SL_EPROTO;
    }
    if (rc == 0)
      rc = handshake_done(tc, err, errlen);
    if (rc)
      return rc;
  }
  for (;;) {
    r = SSL_read(tc->ssl, tc->t->plain, sizeof(tc->t->plain));
    if (r <= 0)
      break;
    rc = cb(arg, tc->t->plain, (size_t)r);
    if (rc)
      return rc;
  }
  switch (SSL_get_error(tc->ssl, r)) {
  case SSL_ERROR_WANT_READ:
    return flush(tc);
  case SSL_ERROR_ZERO_RETURN:
    ERR_clear_error();
    return SL_EOF;
  default:
    {
      char why[160];
      long vr = SSL_get_verify_result(tc->ssl);

      /* TLS 1.3 verifies a client certificate after the server's
       * Finished, so a bad one can surface here. */
      if (vr != X509_V_OK) {
        handshake_error(tc, err, errlen);
        return SL_EPROTO;
      }
      sl_tls_errstr(why, sizeof(why), "TLS read failed");
      snprintf(err, errlen, "TLS error: %s", why);
      return SL_EPROTO;
    }
  }
}

int
sl_input_tls_write(struct sl_input_tls_conn *tc, const void *p, size_t n)
{
  /* Memory BIO: SSL_write takes everything at once. */
  if (!tc->up || SSL_write(tc->ssl, p, (int)n) != (int)n) {
    ERR_clear_error();
    return SL_EPROTO;
  }
  return flush(tc);
}

#else /* !HAVE_OPENSSL */

int
sl_input_tls_new(const json_t *ssl, const char *what,
                 struct sl_input_tls **out, char *err, size_t errlen)
{
  *out = NULL;
  if (ssl == NULL || !sl_conf_bool(ssl, "enabled", 0))
    return 0;
  snprintf(err, errlen, "%s.enabled: this sluice-collector was built "
           "without TLS (meson option tls)", what);
  return SL_ECONFIG;
}

/* Nothing below is reachable: sl_input_tls_new never makes a context. */
void
sl_input_tls_free(struct sl_input_tls *t)
{
  (void)t;
}

int
sl_input_tls_accept(struct sl_input_tls *t, uv_stream_t *s,
                    const char *peer, struct sl_input_tls_conn **out)
{
  *out = NULL;
  return SL_EINTERNAL;
}

void
sl_input_tls_conn_free(struct sl_input_tls_conn *tc)
{
  (void)tc;
}

int
sl_input_tls_feed(struct sl_input_tls_conn *tc, const char *p, size_t n,
                  sl_input_tls_plain_cb cb, void *arg, char *err,
                  size_t errlen)
{
  return SL_EINTERNAL;
}

int
sl_input_tls_write(struct sl_input_tls_conn *tc, const void *p, size_t n)
{
  return SL_EINTERNAL;
}

#endif
