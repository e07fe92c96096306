#include "sl_err.h"

#include <string.h>

#include <uv.h>

/* libuv results are passed through as they are (sl_err.h). */
_Static_assert((int)SL_EOF == (int)UV_EOF, "SL_EOF must equal UV_EOF");

const char *
sl_strerror(int err)
{
  switch (err) {
#define XX(name, val, msg) case SL_##name: return msg;
    SL_ERR_MAP(XX)
#undef XX
  default:
    break;
  }
  if (err < 0 && err > -4000)
    return strerror(-err);
  return "unknown error";
}

const char *
sl_errname(int err)
{
  switch (err) {
#define XX(name, val, msg) case SL_##name: return "SL_" #name;
    SL_ERR_MAP(XX)
#undef XX
  default:
    return "SL_E?";
  }
}
