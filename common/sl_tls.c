#include "sl_tls.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "sl_err.h"

void
sl_tls_errstr(char *buf, size_t len, const char *dflt)
{
  unsigned long e = ERR_get_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;

  if (len == 0) {
    ERR_clear_error();
    return;
  }

  /* The reason alone ("certificate verify failed") reads better in a log
   * line than the whole "error:0A000086:SSL routines::..." form. */
  if (e == 0)
    snprintf(buf, len, "%s", dflt ? dflt : "");
  else if (r != NULL)
    snprintf(buf, len, "%s", r);
  else
    ERR_error_string_n(e, buf, len);
  ERR_clear_error();
}

/* "<what>.<key>: <verb> <path>: <openssl reason>" */
static int
fail(const struct sl_tls_files *f, const char *key, const char *verb,
     const char *path, char *err, size_t errlen)
{
  char why[200];

  sl_tls_errstr(why, sizeof(why), "unknown error");
  snprintf(err, errlen, "%s.%s: %s %s: %s", f->what, key, verb,
           path ? path : "", why);
  return SL_ECONFIG;
}

/* Both directions: TLS 1.2 and 1.3 only (Beats' default floor too). */
static SSL_CTX *
ctx_new(const SSL_METHOD *m)
{
  SSL_CTX *ctx = SSL_CTX_new(m);

  if (ctx == NULL)
    return NULL;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  /* Memory BIOs: a record may be written again from another buffer. */
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  return ctx;
}

static int
mismatch(const struct sl_tls_files *f, char *err, size_t errlen)
{
  ERR_clear_error();
  snprintf(err, errlen, "%s.key: %s is not the key of the certificate in "
           "%s", f->what, f->key, f->cert);
  return SL_ECONFIG;
}

static int
load_own(SSL_CTX *ctx, const struct sl_tls_files *f, char *err,
         size_t errlen)
{
  unsigned long e;

  if (SSL_CTX_use_certificate_chain_file(ctx, f->cert) != 1)
    return fail(f, "cert", "cannot load", f->cert, err, errlen);
  if (SSL_CTX_use_PrivateKey_file(ctx, f->key, SSL_FILETYPE_PEM) != 1) {
    e = ERR_peek_error();
    if (ERR_GET_LIB(e) == ERR_LIB_X509 &&
        ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
      return mismatch(f, err, errlen);
    return fail(f, "key", "cannot load", f->key, err, errlen);
  }
  /* A key of another type (EC for an RSA cert) loads into its own slot
   * and fails only here. */
  if (SSL_CTX_check_private_key(ctx) != 1)
    return mismatch(f, err, errlen);
  return 0;
}

int
sl_tls_client_ctx(const struct sl_tls_files *f, int verify, SSL_CTX **out,
                  char *err, size_t errlen)
{
  SSL_CTX *ctx = ctx_new(TLS_client_method());
  int rc = 0;

  *out = NULL;
  if (ctx == NULL)
    return SL_ENOMEM;
  SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
  if (f->ca) {
    if (SSL_CTX_load_verify_locations(ctx, f->ca, NULL) != 1)
      rc = fail(f, "ca", "cannot load", f->ca, err, errlen);
  } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
    rc = fail(f, "ca", "cannot load the system CA store", NULL, err, errlen);
  }
  if (rc == 0 && (f->cert || f->key)) {
    if (!f->cert || !f->key) {
      snprintf(err, errlen, "%s: cert and key go together", f->what);
      rc = SL_ECONFIG;
    } else {
      rc = load_own(ctx, f, err, errlen);
    }
  }
  if (rc) {
    SSL_CTX_free(ctx);
    return rc;
  }
  *out = ctx;
  return 0;
}

int
sl_tls_server_ctx(const struct sl_tls_files *f, enum sl_tls_client_auth auth,
                  SSL_CTX **out, char *err, size_t errlen)
{
  SSL_CTX *ctx;
  STACK_OF(X509_NAME) *names;
  int rc;

  *out = NULL;
  if (!f->cert || !f->key) {
    snprintf(err, errlen, "%s: cert and key are required", f->what);
    return SL_ECONFIG;
  }
  if (auth != SL_TLS_AUTH_NONE && !f->ca) {
    snprintf(err, errlen, "%s.ca: required to verify client certificates "
             "(or set client_auth: none)", f->what);
    return SL_ECONFIG;
  }
  ctx = ctx_new(TLS_server_method());
  if (ctx == NULL)
    return SL_ENOMEM;
  rc = load_own(ctx, f, err, errlen);
  if (rc == 0 && auth != SL_TLS_AUTH_NONE) {
    if (SSL_CTX_load_verify_locations(ctx, f->ca, NULL) != 1) {
      rc = fail(f, "ca", "cannot load", f->ca, err, errlen);
    } else {
      /* Tell clients which CAs we take, so one with several certs (or
       * Filebeat's ssl.certificate) can pick. */
      names = SSL_load_client_CA_file(f->ca);
      if (names)
        SSL_CTX_set_client_CA_list(ctx, names);
      ERR_clear_error();
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
                         (auth == SL_TLS_AUTH_REQUIRED
                              ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
    }
  }
  if (rc) {
    SSL_CTX_free(ctx);
    return rc;
  }
  /* No session resumption: every connection shows its certificate, and a
   * reloaded CA applies to it. */
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx, 0);
  *out = ctx;
  return 0;
}

void
sl_tls_peer_cn(SSL *ssl, char *buf, size_t len)
{
  X509 *x = SSL_get_peer_certificate(ssl);
  char cn[256];

  buf[0] = '\0';
  if (x == NULL)
    return;
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
                                cn, sizeof(cn)) > 0)
    snprintf(buf, len, "CN=%s", cn);
  X509_free(x);
}

static int
any_match(const char *const *names, size_t n, const char *s)
{
  size_t i;

  for (i = 0; i < n; i++)
    if (fnmatch(names[i], s, 0) == 0)
      return 1;
  return 0;
}

/* Append "sep<label>=<s>" to got, as far as it fits. */
static void
got_add(char *got, size_t gotlen, const char *label, const char *s)
{
  size_t used = strlen(got);

  if (used < gotlen)
    snprintf(got + used, gotlen - used, "%s%s=%s", used ? ", " : "",
             label, s);
}

int
sl_tls_peer_allowed(SSL *ssl, const char *const *names, size_t n, char *got,
                    size_t gotlen)
{
  X509 *x;
  GENERAL_NAMES *san;
  char cn[256];
  int ok = 0, i;

  if (gotlen)
    got[0] = '\0';
  if (n == 0)
    return 1;
  x = SSL_get_peer_certificate(ssl);
  if (x == NULL) {
    snprintf(got, gotlen, "no certificate");
    return 0;
  }
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
                                cn, sizeof(cn)) > 0) {
    ok = any_match(names, n, cn);
    got_add(got, gotlen, "CN", cn);
  }
  san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
  for (i = 0; san && i < sk_GENERAL_NAME_num(san); i++) {
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);
    const unsigned char *p;
    int len;

    if (g->type != GEN_DNS)
      continue;
    p = ASN1_STRING_get0_data(g->d.dNSName);
    len = ASN1_STRING_length(g->d.dNSName);
    /* A name with a NUL inside would match a shorter one: never. */
    if (len <= 0 || len >= (int)sizeof(cn) || memchr(p, 0, (size_t)len))
      continue;
    memcpy(cn, p, (size_t)len);
    cn[len] = '\0';
    ok = ok || any_match(names, n, cn);
    got_add(got, gotlen, "DNS", cn);
  }
  GENERAL_NAMES_free(san);
  X509_free(x);
  if (got[0] == '\0')
    snprintf(got, gotlen, "no CN or DNS name");
  return ok;
}
