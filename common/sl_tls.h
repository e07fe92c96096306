/* sl_tls.h - the OpenSSL pieces both binaries share: building a client or
 * server SSL_CTX from PEM files with an error that names the file and the
 * reason, OpenSSL's error queue as text, and the peer-name allow-list.
 *
 * The socket side stays with the caller: both binaries run OpenSSL over a
 * pair of memory BIOs (SSL_set_bio) on top of libuv streams, because
 * libuv owns the sockets (agent/out_lumberjack.c, collector/input_tls.c).
 *
 * Ownership: an SSL_CTX made here belongs to the caller (SSL_CTX_free);
 * OpenSSL reference-counts it, so connections made from it keep it alive
 * after the caller lets go (that is how a reload swaps certificates
 * without touching open connections). Every `const char *` argument is
 * only read during the call.
 *
 * Built only with the `tls` meson feature (HAVE_OPENSSL).
 */
#ifndef SL_TLS_H
#define SL_TLS_H

#include <stddef.h>

#include "sl_config.h"

#ifdef HAVE_OPENSSL
#include <openssl/ssl.h>

/* What to do about a peer's certificate on the server side. */
enum sl_tls_client_auth {
  SL_TLS_AUTH_NONE = 0,      /* do not ask for one */
  SL_TLS_AUTH_OPTIONAL,      /* ask; none is fine, a bad one is refused */
  SL_TLS_AUTH_REQUIRED,      /* ask; none or a bad one is refused */
};

/* Paths of PEM files; NULL means "not set". `what` prefixes every error
 * (the config key of the object, "output.ssl", "inputs[0].ssl"). */
struct sl_tls_files {
  const char *what;
  const char *ca;            /* CA bundle to verify the peer */
  const char *cert;          /* own certificate chain */
  const char *key;           /* its private key */
};

/* TLS 1.2 or newer, to a server: verify (peer and, per connection, its
 * name) unless !verify, with f->ca or the system store; f->cert and f->key
 * (both or neither) present a client certificate. SL_ECONFIG with
 * "<what>.<key>: cannot load <path>: <openssl reason>" in err. */
int sl_tls_client_ctx(const struct sl_tls_files *f, int verify,
                      SSL_CTX **out, char *err, size_t errlen);

/* TLS 1.2 or newer, as a server: f->cert and f->key are required; f->ca
 * verifies client certificates (required unless auth is NONE). Errors as
 * above. */
int sl_tls_server_ctx(const struct sl_tls_files *f,
                      enum sl_tls_client_auth auth, SSL_CTX **out,
                      char *err, size_t errlen);

/* The oldest error in OpenSSL's thread-local queue as text (or `dflt`
 * when it is empty); the queue is cleared. */
void sl_tls_errstr(char *buf, size_t len, const char *dflt);

/* Is the peer certificate of `ssl` allowed by the shell-style globs
 * `names[0..n)` (fnmatch) against its subject CN and each SAN DNS name?
 * n == 0 allows any (verified) peer. When refused, `got` says which names
 * the certificate has ("CN=x, DNS=y" or "no certificate"). */
int sl_tls_peer_allowed(SSL *ssl, const char *const *names, size_t n,
                        char *got, size_t gotlen);

/* "CN=<subject CN>" of the peer certificate, or "" without one. */
void sl_tls_peer_cn(SSL *ssl, char *buf, size_t len);
#endif

#endif
