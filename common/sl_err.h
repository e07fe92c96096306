/* sl_err.h - the one error table of sluice.
 *
 * Every function that can fail returns 0 (SL_OK) or a negative SL_E* code.
 * SL_EAGAIN is not a failure: it means "full / nothing now, try later" and is
 * how backpressure travels between stages (curl CURLE_AGAIN, nginx NGX_AGAIN).
 * Codes that mirror an errno use its negative value so that libuv results
 * (UV_E*) and -errno can be passed through unchanged; SL_EOF is libuv's
 * UV_EOF for the same reason.
 */
#ifndef SL_ERR_H
#define SL_ERR_H

#include <errno.h>

#define SL_ERR_MAP(XX)                                                       \
  XX(OK,        0,            "success")                                     \
  XX(EAGAIN,    -EAGAIN,      "resource full or empty, try again later")     \
  XX(ENOMEM,    -ENOMEM,      "out of memory")                               \
  XX(EINVAL,    -EINVAL,      "invalid argument")                            \
  XX(ENOENT,    -ENOENT,      "no such file or directory")                   \
  XX(EIO,       -EIO,         "i/o error")                                   \
  XX(ENOSPC,    -ENOSPC,      "no space left on device")                     \
  XX(EEXIST,    -EEXIST,      "already exists")                              \
  XX(ETIMEDOUT, -ETIMEDOUT,   "timed out")                                   \
  XX(ECONNREFUSED, -ECONNREFUSED, "connection refused")                      \
  XX(ECONNRESET, -ECONNRESET, "connection reset by peer")                    \
  XX(EPIPE,     -EPIPE,       "broken pipe")                                 \
  XX(ECANCELED, -ECANCELED,   "operation canceled")                          \
  XX(E2BIG,     -E2BIG,       "value over its configured limit")             \
  XX(EPROTO,    -4000,        "protocol violation")                          \
  XX(ECORRUPT,  -4001,        "corrupt data (checksum or framing)")          \
  XX(ECONFIG,   -4002,        "invalid configuration")                       \
  XX(EPARSE,    -4003,        "parse error")                                 \
  XX(EHTTP,     -4004,        "unexpected http response")                    \
  XX(ENOTES,    -4005,        "peer is not elasticsearch")                   \
  XX(EAUTH,     -4006,        "authentication or authorization failed")      \
  XX(ECLOSED,   -4007,        "handle is closing or closed")                 \
  XX(EINTERNAL, -4008,        "internal error")                            \
  XX(EOF,       -4095,        "end of file (peer closed)")

enum sl_err {
#define XX(name, val, msg) SL_##name = (val),
  SL_ERR_MAP(XX)
#undef XX
};

/* Outcome of one output attempt (fluent-bit FLB_OK/RETRY/ERROR). */
enum sl_out_result { SL_SENT = 0, SL_RETRY = 1, SL_DROP = 2 };

/* libcurl results travel as SL codes too: SL_ECURL_BASE - CURLcode. */
#define SL_ECURL_BASE (-5000)
#define SL_ECURL_LAST (-5999)
/* The SL code for a CURLcode (CURLE_OK -> SL_OK). */
int sl_err_curl(int curlcode);

/* Human text for any code: the table's, errno's (-errno), libuv's (UV_E*,
 * including getaddrinfo's UV_EAI_*) or libcurl's (sl_err_curl). Never
 * NULL. */
const char *sl_strerror(int err);
/* Symbolic name: "SL_EAGAIN" for the table's codes, else the errno name
 * ("EACCES"), libuv's ("UV_EAI_NONAME") or libcurl's
 * ("CURLE_COULDNT_RESOLVE_HOST"); "SL_E?" for unknown codes. Never NULL. */
const char *sl_errname(int err);

#endif
