/* rx.c - PCRE2 helpers (rx.h). */
#include "rx.h"

#include <stdio.h>

#include "sl_err.h"

/* Enough pairs for the capture groups a rule can use ($0..$9 style);
 * more groups still match, their offsets are just not reported. */
#define RX_OVEC_PAIRS 16

int
sl_rx_compile(struct sl_rx *rx, const char *pattern, char *err,
              size_t errlen)
{
  int ecode;
  PCRE2_SIZE eoff;
  PCRE2_UCHAR msg[160];

  rx->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                         PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ecode, &eoff,
                         NULL);
  if (rx->re == NULL) {
    pcre2_get_error_message(ecode, msg, sizeof(msg));
    if (err && errlen)
      snprintf(err, errlen, "pattern '%s': %s at offset %zu", pattern,
               (const char *)msg, (size_t)eoff);
    return SL_ECONFIG;
  }
  /* Without JIT (unsupported CPU) the interpreter still gives the same
   * answers, only slower: not an error. */
  (void)pcre2_jit_compile(rx->re, PCRE2_JIT_COMPLETE);
  return SL_OK;
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
