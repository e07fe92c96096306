/* input_tls.h - TLS for the Lumberjack listener (input.c), as a thin layer
 * between a connection's socket and its frame decoder.
 *
 * OpenSSL runs over two memory BIOs: input.c hands every ciphertext read
 * to sl_input_tls_feed(), which runs the handshake, decrypts and passes
 * the plaintext to a callback (the frame decoder); acks go through
 * sl_input_tls_write(). Ciphertext that OpenSSL produces (handshake
 * records, alerts, encrypted acks) is written to the stream with uv_write
 * from its own heap block, freed by the write callback.
 *
 * Configuration (the input's `ssl:` object): enabled, cert, key, ca,
 * client_auth (required | optional | none; default required: a TLS port
 * without client certificates must be asked for), allowed_names (globs
 * matched against the client certificate's subject CN and SAN DNS names).
 *
 * What the peer is told and what the log says: a handshake failure is an
 * error string for the caller's "closing connection" line, naming TLS,
 * the X509 verify error ("certificate has expired", "unable to get local
 * issuer certificate") and the offending certificate's CN. A plaintext
 * Lumberjack sender on a TLS port (first byte '2' instead of a handshake
 * record, 0x16) is named as such.
 *
 * Certificates are read when the listener starts. A SIGHUP restarts the
 * listener from the new config, so changed files on disk are picked up;
 * sl_collector_conf_check() loads them first, so a bad new cert refuses
 * the reload and the running listener keeps its context.
 *
 * Ownership: struct sl_input_tls belongs to the input (free after every
 * connection is freed: connections hold a reference on its SSL_CTX, but
 * use its read buffer). struct sl_input_tls_conn belongs to its
 * connection; free it once the stream is closed (pending writes own their
 * own memory).
 */
#ifndef SL_INPUT_TLS_H
#define SL_INPUT_TLS_H

#include <stddef.h>

#include <jansson.h>
#include <uv.h>

struct sl_input_tls;
struct sl_input_tls_conn;

/* ssl: the input's `ssl` object or NULL. *out is NULL (and 0 returned)
 * when TLS is not enabled. SL_ECONFIG with "<what>.<key>: reason" in err;
 * `what` names the object in errors ("inputs[0].ssl"). */
int sl_input_tls_new(const json_t *ssl, const char *what,
                     struct sl_input_tls **out, char *err, size_t errlen);
void sl_input_tls_free(struct sl_input_tls *t);

/* A session for the accepted stream s; `peer` is copied for log lines. */
int sl_input_tls_accept(struct sl_input_tls *t, uv_stream_t *s,
                        const char *peer, struct sl_input_tls_conn **out);
void sl_input_tls_conn_free(struct sl_input_tls_conn *tc);

/* Plaintext for the decoder: non-zero stops the feed and is returned. */
typedef int (*sl_input_tls_plain_cb)(void *arg, const char *p, size_t n);

/* Feed n bytes read from the socket. 0: fine (maybe more to come);
 * SL_EOF: the peer closed the TLS session; any other error: close the
 * connection, err says why (it names TLS). */
int sl_input_tls_feed(struct sl_input_tls_conn *tc, const char *p, size_t n,
                      sl_input_tls_plain_cb cb, void *arg, char *err,
                      size_t errlen);

/* Encrypt n bytes and write them to the stream. */
int sl_input_tls_write(struct sl_input_tls_conn *tc, const void *p,
                       size_t n);

#endif
