/* re.c - PCRE2 compile with JIT and per-thread match data (re.h). */
#include "re.h"

#include <pthread.h>
#include <stdio.h>

#include "sl_err.h"

static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static int md_key_ok;

static void
md_free(void *p)
{
  pcre2_match_data_free(p);
}

static void
md_init(void)
{
  md_key_ok = pthread_key_create(&md_key, md_free) == 0;
}

static pcre2_code *
compile(const char *pattern, uint32_t opts, const char *what, char *err,
        size_t errlen)
{
  PCRE2_UCHAR msg[160];
  PCRE2_SIZE at;
  pcre2_code *re;
  uint32_t groups = 0;
  int code;

  re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts,
                     &code, &at, NULL);
  if (re == NULL) {
    pcre2_get_error_message(code, msg, sizeof(msg));
    if (err && errlen)
      snprintf(err, errlen, "%s: %s at offset %zu", what, (char *)msg,
               (size_t)at);
    return NULL;
  }
  pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &groups);
  if (groups > SL_RE_MAX_GROUPS) {
    if (err && errlen)
      snprintf(err, errlen, "%s: more than %d groups", what,
               SL_RE_MAX_GROUPS);
    pcre2_code_free(re);
    return NULL;
  }
  /* Without JIT support (some platforms) the interpreter runs instead. */
  (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
  return re;
}

pcre2_code *
sl_re_compile(const char *pattern, const char *what, char *err,
              size_t errlen)
{
  return compile(pattern, 0, what, err, errlen);
}

pcre2_match_data *
sl_re_md(void)
{
  pcre2_match_data *md;

  pthread_once(&md_once, md_init);
  if (!md_key_ok)
    return NULL;
  md = pthread_getspecific(md_key);
  if (md == NULL) {
    md = pcre2_match_data_create(SL_RE_MAX_GROUPS + 1, NULL);
    if (md && pthread_setspecific(md_key, md) != 0) {
      pcre2_match_data_free(md);
      md = NULL;
    }
  }
  return md;
}

int
sl_re_match(const pcre2_code *re, const char *s, size_t n,
            pcre2_match_data *md)
{
  return pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, md, NULL);
}

/* ---- the line stages' patterns (struct sl_rx) ---------------------- */

/* Enough pairs for the capture groups a rule can use ($0..$9 style);
 * more groups still match, their offsets are just not reported. */
#define RX_OVEC_PAIRS 16

int
sl_rx_compile(struct sl_rx *rx, const char *pattern, char *err,
              size_t errlen)
{
  char what[160];

  snprintf(what, sizeof(what), "pattern '%s'", pattern);
  rx->re = compile(pattern, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, what, err,
                   errlen);
  return rx->re ? SL_OK : SL_ECONFIG;
}

void
sl_rx_free(struct sl_rx *rx)
{
  if (rx->re)
    pcre2_code_free(rx->re);
  rx->re = NULL;
}

pcre2_match_data *
sl_rx_md_new(void)
{
  return pcre2_match_data_create(RX_OVEC_PAIRS, NULL);
}

int
sl_rx_find(const struct sl_rx *rx, const char *s, size_t n, size_t start,
           pcre2_match_data *md, size_t *mstart, size_t *mend)
{
  pcre2_match_data *own = NULL;
  PCRE2_SIZE *ov;
  int rc;

  if (md == NULL) {
    own = md = sl_rx_md_new();
    if (md == NULL)
      return 0;
  }
  rc = pcre2_match(rx->re, (PCRE2_SPTR)(s ? s : ""), n, start, 0, md,
                   NULL);
  if (rc >= 0 && (mstart || mend)) {
    ov = pcre2_get_ovector_pointer(md);
    if (mstart)
      *mstart = ov[0];
    if (mend)
      *mend = ov[1];
  }
  if (own)
    pcre2_match_data_free(own);
  return rc >= 0;
}
