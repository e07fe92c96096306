/* status_page.h - the status page served at `/` on the collector's HTTP
 * port: collector/status.html, embedded at build time by
 * tools/embed_file.py into status_page.c (in the build directory). The
 * page reads /debug/state itself; the server only hands out these bytes
 * with sl_status_csp as its Content-Security-Policy. All static, never
 * freed. */
#ifndef SL_STATUS_PAGE_H
#define SL_STATUS_PAGE_H

#include <stddef.h>

extern const unsigned char sl_status_html[];
extern const size_t sl_status_html_len;
/* Allows the page's own inline style and script (by hash) and fetches to
 * the same origin, nothing else. */
extern const char sl_status_csp[];

#endif
