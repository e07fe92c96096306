/* parse_access.c - the `nginx` and `apache` parsers: access logs in the
 * common and combined formats, which both servers write alike:
 *
 *   addr ident user [10/Oct/2000:13:55:36 -0700] "GET /a?b HTTP/1.1" 200 2326
 *     ["referrer" "user agent" [anything else]]
 *
 * One pass over the line into spans (struct acc), then the ECS fields as
 * Filebeat's nginx and apache modules write them:
 *   source.address      the address (the first of nginx's "a, b" lists; the
 *                       whole list in <parser>.access.remote_ip_list)
 *   source.ip           the same when it is an IPv4/IPv6 literal
 *   user.name           not for "-"
 *   http.request.method, url.original (+ url.path, url.query), http.version
 *                       from "METHOD URL HTTP/x.y"; a request line of
 *                       another shape ("-" aside) is kept whole as
 *                       url.original, as Filebeat's nginx module does
 *   http.response.status_code, http.response.body.bytes   numbers ("-": no
 *                       body.bytes)
 *   http.request.referrer, user_agent.original            not for "-"
 *   @timestamp          from the line (its own offset), ms precision
 *   message             the whole line
 * Quoted values are kept as the server escaped them (nginx writes \x22,
 * Apache \"), as Filebeat keeps them. A line that does not have the shape
 * up to the byte count becomes a raw event tagged
 * sluice_<parser>_parse_failure with the reason in error.message.
 */
#include "parse_internal.h"
#include "parse_text.h"

#include <stdio.h>
#include <string.h>

struct acc {
  const char *addr, *list, *user, *req, *ref, *ua;
  size_t addr_n, list_n, user_n, req_n, ref_n, ua_n;
  uint64_t status, bytes;
  int has_bytes;
  int64_t ts;
};

/* Index of the closing quote of a quoted value starting after the opening
 * one at i (backslash escapes skipped), or n. */
static size_t
quoted_end(const char *s, size_t i, size_t n)
{
  for (; i < n; i++) {
    if (s[i] == '\\') {
      i++;
      continue;
    }
    if (s[i] == '"')
      return i;
  }
  return n;
}

/* NULL on success, else why, with *at the byte where it went wrong. */
static const char *
access_scan(const char *s, size_t n, struct acc *a, size_t *at)
{
  size_t i = 0, j, k;

  memset(a, 0, sizeof(*a));
  /* Address, or nginx's comma-separated list ("a, b, c"). */
  while (i < n && s[i] != ' ')
    i++;
  if (i == 0) {
    *at = 0;
    return "no client address";
  }
  a->addr = s;
  a->addr_n = i;
  if (s[i - 1] == ',') {
    a->addr_n = i - 1;
    while (i < n && s[i - 1] == ',') {
      j = i + 1;
      while (j < n && s[j] != ' ')
        j++;
      i = j;
    }
    a->list = s;
    a->list_n = i;
  }
  /* Ident (Apache %l; nginx writes "-"). */
  if (i >= n || s[i] != ' ' || i + 1 >= n || s[i + 1] == ' ') {
    *at = i;
    return "expected ' ident ' after the address";
  }
  for (i++; i < n && s[i] != ' '; i++)
    ;
  /* User: anything up to " [". */
  j = ++i;
  while (i < n && !(s[i] == '[' && s[i - 1] == ' '))
    i++;
  if (i >= n || i - 1 <= j) {
    *at = j;
    return "expected 'user [time]'";
  }
  a->user = s + j;
  a->user_n = i - 1 - j;
  if (a->user_n == 1 && s[j] == '-')
    a->user = NULL;
  /* [time] */
  j = ++i;
  if (n - j < 27 || s[j + 26] != ']' ||
      !sl_pt_clf_time(s + j, 26, &a->ts)) {
    *at = j;
    return "expected a time like [10/Oct/2000:13:55:36 -0700]";
  }
  i = j + 27;
  /* "request" */
  if (n - i < 3 || s[i] != ' ' || s[i + 1] != '"') {
    *at = i;
    return "expected ' \"request\"' after the time";
  }
  j = i + 2;
  k = quoted_end(s, j, n);
  if (k >= n) {
    *at = j;
    return "unterminated request";
  }
  a->req = s + j;
  a->req_n = k - j;
  /* status */
  i = k + 1;
  if (i >= n || s[i] != ' ') {
    *at = i;
    return "expected ' status' after the request";
  }
  j = ++i;
  while (i < n && s[i] != ' ')
    i++;
  if (i - j > 3 || !sl_pt_u64(s + j, i - j, &a->status)) {
    *at = j;
    return "status is not a number";
  }
  /* bytes */
  if (i >= n || s[i] != ' ') {
    *at = i;
    return "expected ' bytes' after the status";
  }
  j = ++i;
  while (i < n && s[i] != ' ')
    i++;
  if (i - j == 1 && s[j] == '-') {
    a->has_bytes = 0;
  } else if (sl_pt_u64(s + j, i - j, &a->bytes)) {
    a->has_bytes = 1;
  } else {
    *at = j;
    return "byte count is not a number or '-'";
  }
  /* Combined: "referrer" "user agent"; whatever follows is the server's
   * own extension (nginx's $http_x_forwarded_for, ...). */
  if (n - i >= 3 && s[i] == ' ' && s[i + 1] == '"') {
    j = i + 2;
    k = quoted_end(s, j, n);
    if (k >= n) {
      *at = j;
      return "unterminated referrer";
    }
    a->ref = s + j;
    a->ref_n = k - j;
    i = k + 1;
    if (n - i >= 3 && s[i] == ' ' && s[i + 1] == '"') {
      j = i + 2;
      k = quoted_end(s, j, n);
      if (k >= n) {
        *at = j;
        return "unterminated user agent";
      }
      a->ua = s + j;
      a->ua_n = k - j;
    }
  }
  if (a->ref && a->ref_n == 1 && a->ref[0] == '-')
    a->ref = NULL;
  if (a->ua && a->ua_n == 1 && a->ua[0] == '-')
    a->ua = NULL;
  return NULL;
}

/* "GET /a?b HTTP/1.1": the method is upper-case letters, the version the
 * digits and dots after the last " HTTP/". 1 and the parts, else 0. */
static int
split_request(const char *r, size_t n, size_t *mn, const char **url,
              size_t *un, const char **ver, size_t *vn)
{
  size_t i, sp;

  for (i = 0; i < n && r[i] >= 'A' && r[i] <= 'Z'; i++)
    ;
  if (i == 0 || i >= n || r[i] != ' ')
    return 0;
  *mn = i;
  for (sp = n; sp > i && r[sp - 1] != ' '; sp--)
    ;
  if (sp <= i + 1 || n - sp < 6 || memcmp(r + sp, "HTTP/", 5) != 0)
    return 0;
  for (i = sp + 5; i < n; i++)
    if (!((r[i] >= '0' && r[i] <= '9') || r[i] == '.'))
      return 0;
  *url = r + *mn + 1;
  *un = sp - 1 - (*mn + 1);
  *ver = r + sp + 5;
  *vn = n - sp - 5;
  return *un > 0;
}

static void
put_url(struct sl_ew *w, const char *u, size_t n)
{
  const char *q = memchr(u, '?', n);

  SL_EW_LIT(w, ",\"url\":{\"original\":");
  sl_pt_str(w, u, n);
  if (n && u[0] == '/') {
    SL_EW_LIT(w, ",\"path\":");
    sl_pt_str(w, u, q ? (size_t)(q - u) : n);
    if (q && q + 1 < u + n) {
      SL_EW_LIT(w, ",\"query\":");
      sl_pt_str(w, q + 1, (size_t)(u + n - q - 1));
    }
  }
  sl_ew_byte(w, '}');
}

static void
access_event(struct sl_ew *w, const struct sl_parse_ctx *ctx,
             const struct sl_src *src, const char *line, size_t len,
             uint64_t offset, unsigned flags, int64_t read_time_ns,
             const char *name)
{
  const char *url = NULL, *ver = NULL, *p, *e;
  size_t mn = 0, un = 0, vn = 0, at = 0, slot;
  struct sl_ew_ev ev;
  struct acc a;
  const char *why;
  char emsg[128], tag[40];
  int reqok;

  why = access_scan(line, len, &a, &at);
  if (why) {
    snprintf(emsg, sizeof(emsg), "%s access log parse failure at byte %zu: "
             "%s", name, at, why);
    snprintf(tag, sizeof(tag), "sluice_%s_parse_failure", name);
    sl_ew_raw_event(w, &ctx->ev, src, line, len, offset, flags,
                    read_time_ns, emsg, tag);
    return;
  }
  sl_ew_ev_clear(&ev, a.ts);
  /* The input's correlation rules over the line; a request id goes into
   * this parser's own "http" object (the writer's would be a second
   * "http" key). */
  sl_parse_corr_rules(ctx, line, len, &ev);
  slot = sl_ew_ev_begin(w);
  SL_EW_LIT(w, ",\"source\":{\"address\":");
  sl_pt_str(w, a.addr, a.addr_n);
  if (sl_pt_is_ip(a.addr, a.addr_n)) {
    SL_EW_LIT(w, ",\"ip\":");
    sl_pt_str(w, a.addr, a.addr_n);
  }
  sl_ew_byte(w, '}');
  if (a.list) {
    /* "a, b, c" -> ["a","b","c"] */
    int first = 1;

    sl_ew_byte(w, ',');
    sl_pt_str(w, name, strlen(name));
    SL_EW_LIT(w, ":{\"access\":{\"remote_ip_list\":[");
    for (p = a.list, e = a.list + a.list_n; p < e;) {
      const char *q;

      while (p < e && *p == ' ')
        p++;
      if (p >= e)
        break;
      for (q = p; q < e && *q != ','; q++)
        ;
      if (!first)
        sl_ew_byte(w, ',');
      first = 0;
      sl_pt_str(w, p, (size_t)(q - p));
      p = q < e ? q + 1 : e;
    }
    SL_EW_LIT(w, "]}}");
  }
  if (a.user) {
    SL_EW_LIT(w, ",\"user\":{\"name\":");
    sl_pt_str(w, a.user, a.user_n);
    sl_ew_byte(w, '}');
  }
  reqok = split_request(a.req, a.req_n, &mn, &url, &un, &ver, &vn);
  SL_EW_LIT(w, ",\"http\":{");
  if (reqok || a.ref || ev.req_id.p) {
    SL_EW_LIT(w, "\"request\":{");
    if (reqok) {
      SL_EW_LIT(w, "\"method\":");
      sl_pt_str(w, a.req, mn);
    }
    if (a.ref) {
      if (reqok)
        sl_ew_byte(w, ',');
      SL_EW_LIT(w, "\"referrer\":");
      sl_pt_str(w, a.ref, a.ref_n);
    }
    if (ev.req_id.p) {
      if (reqok || a.ref)
        sl_ew_byte(w, ',');
      SL_EW_LIT(w, "\"id\":");
      sl_pt_str(w, ev.req_id.p, ev.req_id.n);
      ev.req_id.p = NULL;
    }
    SL_EW_LIT(w, "},");
  }
  if (reqok) {
    SL_EW_LIT(w, "\"version\":");
    sl_pt_str(w, ver, vn);
    sl_ew_byte(w, ',');
  }
  SL_EW_LIT(w, "\"response\":{\"status_code\":");
  sl_ew_u64(w, a.status);
  if (a.has_bytes) {
    SL_EW_LIT(w, ",\"body\":{\"bytes\":");
    sl_ew_u64(w, a.bytes);
    sl_ew_byte(w, '}');
  }
  SL_EW_LIT(w, "}}");
  if (reqok)
    put_url(w, url, un);
  else if (!(a.req_n == 1 && a.req[0] == '-') && a.req_n > 0)
    put_url(w, a.req, a.req_n);
  if (a.ua) {
    SL_EW_LIT(w, ",\"user_agent\":{\"original\":");
    sl_pt_str(w, a.ua, a.ua_n);
    sl_ew_byte(w, '}');
  }
  sl_pt_text(&ev.msg, line, len);
  sl_ew_ev_end(w, &ctx->ev, src, offset, flags, &ev, slot);
}

static void
nginx_event(struct sl_ew *w, const struct sl_parse_ctx *ctx,
            const struct sl_src *src, const char *line, size_t len,
            uint64_t offset, unsigned flags, int64_t read_time_ns)
{
  access_event(w, ctx, src, line, len, offset, flags, read_time_ns,
               "nginx");
}

static void
apache_event(struct sl_ew *w, const struct sl_parse_ctx *ctx,
             const struct sl_src *src, const char *line, size_t len,
             uint64_t offset, unsigned flags, int64_t read_time_ns)
{
  access_event(w, ctx, src, line, len, offset, flags, read_time_ns,
               "apache");
}

const struct sl_parser_ops sl_parser_nginx = {
  .name = "nginx",
  .dataset = "nginx.access",
  .event = nginx_event,
};

const struct sl_parser_ops sl_parser_apache = {
  .name = "apache",
  .dataset = "apache.access",
  .event = apache_event,
};
