/* sl_addr.h - the listen addresses of both binaries (HTTP endpoints, the
 * collector's Lumberjack inputs): one parser, so that --check refuses
 * exactly what start-up would.
 */
#ifndef SL_ADDR_H
#define SL_ADDR_H

#include <sys/socket.h>

/* "127.0.0.1:5076", "[::1]:5076", ":5076" (all IPv4 addresses) or
 * "localhost:5076"; port 0..65535 (0 = ephemeral). No name lookup: a
 * listener binds an address. Returns 0 or SL_EINVAL. */
int sl_addr_parse_listen(const char *addr, struct sockaddr_storage *ss);
/* Whether sl_addr_parse_listen takes addr (NULL: no). */
int sl_addr_listen_valid(const char *addr);

#endif
