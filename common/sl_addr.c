#include "sl_addr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "sl_err.h"

int
sl_addr_parse_listen(const char *addr, struct sockaddr_storage *ss)
{
  char host[256];
  const char *colon;
  char *end;
  size_t hl;
  long port;

  colon = strrchr(addr, ':');
  if (colon == NULL)
    return SL_EINVAL;
  port = strtol(colon + 1, &end, 10);
  if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535)
    return SL_EINVAL;
  hl = (size_t)(colon - addr);
  if (hl >= sizeof(host))
    return SL_EINVAL;
  memcpy(host, addr, hl);
  host[hl] = '\0';
  if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
    host[hl - 1] = '\0';
    return uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)ss) == 0
             ? 0 : SL_EINVAL;
  }
  if (hl == 0)
    snprintf(host, sizeof(host), "0.0.0.0");
  else if (strcmp(host, "localhost") == 0)
    snprintf(host, sizeof(host), "127.0.0.1");
  return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0
           ? 0 : SL_EINVAL;
}

int
sl_addr_listen_valid(const char *addr)
{
  struct sockaddr_storage ss;

  return addr != NULL && sl_addr_parse_listen(addr, &ss) == 0;
}
