/* bulk.c - pure builders and parsers for Elasticsearch _bulk bodies.
 *
 * Nothing here does I/O or keeps state, so test_bulk.c checks exact bytes
 * (fluent-bit's test_formatter idea). indexer.c does the sending.
 */
#include "bulk.h"

#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "event_scan.h"
#include "sl_err.h"
#include "sl_hash.h"
#include "sl_json.h"
#include "sl_time.h"

/* Fleet caps dataset and namespace at 100 bytes; with "logs-" and two more
 * parts that keeps any name well under ES's 255-byte index name limit. */
#define PART_MAX 100

/* Look up a field given either nested ({"event":{"dataset":..}}) or dotted
 * ({"event.dataset":..}); ES treats both as the same field. */
static const json_t *
field2(const json_t *ev, const char *obj, const char *key, const char *dotted)
{
  const json_t *o, *v;

  if (!json_is_object(ev))
    return NULL;
  o = json_object_get(ev, obj);
  if (json_is_object(o)) {
    v = json_object_get(o, key);
    if (v)
      return v;
  }
  return json_object_get(ev, dotted);
}

/* Index names must be lower case without \ / * ? " < > | , # : or spaces
 * (':' since 7.0), and a data stream name cannot have '-' inside a part.
 * Rather than chase that list we keep [a-z0-9._] and turn everything else
 * into '_' (one per UTF-8 character), which is always a valid name. */
static int
append_part(struct sl_buf *out, const char *s, size_t n)
{
  size_t i, w = 0;
  int rc;

  for (i = 0; i < n && w < PART_MAX; i++) {
    unsigned char c = (unsigned char)s[i];
    char o;

    if (c >= 0x80 && c < 0xC0)
      continue; /* UTF-8 continuation byte: its lead already gave '_' */
    if (c >= 'A' && c <= 'Z')
      o = (char)(c - 'A' + 'a');
    else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
             c == '_')
      o = (char)c;
    else
      o = '_';
    rc = sl_buf_append_byte(out, o);
    if (rc)
      return rc;
    w++;
  }
  return 0;
}

/* A part that sanitises to nothing useful ("", ".", "..", only '_') would
 * make an odd name; such values fall back to the configured default. */
static int
usable_str(const char *s, size_t n)
{
  size_t i;

  if (s == NULL)
    return 0;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];

    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9'))
      return 1;
  }
  return 0;
}

static int
usable_part(const json_t *v)
{
  return json_is_string(v) &&
         usable_str(json_string_value(v), json_string_length(v));
}

static int64_t
event_time_ns(const json_t *ev, int64_t fallback_ns)
{
  const json_t *ts = json_is_object(ev) ? json_object_get(ev, "@timestamp")
                                        : NULL;
  int64_t ns;

  if (json_is_string(ts) &&
      sl_time_parse_any(json_string_value(ts), json_string_length(ts),
                        &ns) == 0)
    return ns;
  /* A number is epoch milliseconds, ES's default epoch_millis format. */
  if (json_is_integer(ts))
    return (int64_t)json_integer_value(ts) * 1000000;
  if (json_is_real(ts))
    return (int64_t)(json_real_value(ts) * 1e6);
  return fallback_ns;
}

int
sl_bulk_target_parts(const struct sl_route *r, struct sl_span ds,
                     struct sl_span alt_ds, struct sl_span ns,
                     int64_t time_ns, struct sl_buf *out)
{
  const char *def_ds = r->dataset ? r->dataset : "generic";
  const char *def_ns = r->namespace_ ? r->namespace_ : "default";
  int rc;

  if (!usable_str(ds.p, ds.len))
    ds = alt_ds;
  if (!usable_str(ds.p, ds.len)) {
    ds.p = def_ds;
    ds.len = strlen(def_ds);
  }
  if (r->mode == SL_INDEX_DAILY) {
    const char *prefix = r->prefix ? r->prefix : "sluice";
    int64_t days, y;
    unsigned m, d;

    days = time_ns >= 0 ? time_ns / (86400 * SL_NS_PER_SEC)
                        : -((-time_ns - 1) / (86400 * SL_NS_PER_SEC)) - 1;
    sl_time_civil_from_days(days, &y, &m, &d);
    rc = append_part(out, prefix, strlen(prefix));
    if (!rc)
      rc = sl_buf_append_byte(out, '-');
    if (!rc)
      rc = append_part(out, ds.p, ds.len);
    if (!rc)
      rc = sl_buf_printf(out, "-%04lld.%02u.%02u", (long long)y, m, d);
    return rc;
  }
  if (!usable_str(ns.p, ns.len)) {
    ns.p = def_ns;
    ns.len = strlen(def_ns);
  }
  rc = sl_buf_append_str(out, "logs-");
  if (!rc)
    rc = append_part(out, ds.p, ds.len);
  if (!rc)
    rc = sl_buf_append_byte(out, '-');
  if (!rc)
    rc = append_part(out, ns.p, ns.len);
  return rc;
}

int
sl_bulk_dataset_part(const struct sl_route *r, struct sl_span ds,
                     struct sl_span alt_ds, struct sl_buf *out)
{
  const char *def_ds = r->dataset ? r->dataset : "generic";

  if (!usable_str(ds.p, ds.len))
    ds = alt_ds;
  if (!usable_str(ds.p, ds.len)) {
    ds.p = def_ds;
    ds.len = strlen(def_ds);
  }
  return append_part(out, ds.p, ds.len);
}

static struct sl_span
span_of(const json_t *v)
{
  struct sl_span sp = { NULL, 0 };

  if (usable_part(v)) {
    sp.p = json_string_value(v);
    sp.len = json_string_length(v);
  }
  return sp;
}

int
sl_bulk_target(const struct sl_route *r, const json_t *event,
               int64_t fallback_ns, struct sl_buf *out)
{
  return sl_bulk_target_parts(
      r, span_of(field2(event, "event", "dataset", "event.dataset")),
      span_of(field2(event, "data_stream", "dataset", "data_stream.dataset")),
      span_of(field2(event, "data_stream", "namespace",
                     "data_stream.namespace")),
      r->mode == SL_INDEX_DAILY ? event_time_ns(event, fallback_ns) : 0,
      out);
}

int
sl_bulk_action(struct sl_buf *out, const char *index, size_t index_len,
               const char *id, size_t id_len)
{
  size_t mark = out->len;
  int rc;

  rc = sl_buf_append_str(out, "{\"create\":{\"_index\":");
  if (!rc)
    rc = sl_json_str(out, index, index_len);
  if (!rc && id && id_len) {
    rc = sl_buf_append_str(out, ",\"_id\":");
    if (!rc)
      rc = sl_json_str(out, id, id_len);
  }
  if (!rc)
    rc = sl_buf_append_str(out, "}}\n");
  if (rc) {
    sl_buf_truncate(out, mark); /* all or nothing */
  }
  return rc;
}

/* ---- Lines -------------------------------------------------------------- */

/* Next non-empty line at *pos; returns 0 at the end. */
static int
next_line(const char *p, size_t len, size_t *pos, size_t *off, size_t *n)
{
  while (*pos < len) {
    const char *nl = memchr(p + *pos, '\n', len - *pos);
    size_t end = nl ? (size_t)(nl - p) : len;
    size_t start = *pos, l = end - start;

    *pos = nl ? end + 1 : len;
    if (l && p[start + l - 1] == '\r')
      l--;
    if (l == 0)
      continue;
    *off = start;
    *n = l;
    return 1;
  }
  return 0;
}


/* ---- Encoding spooled events ------------------------------------------- */

/* {"create":{"_index":"<target>","_id":<id>}}\n, the bytes sl_bulk_action
 * makes: target parts are sanitised to [a-z0-9._-], so they need no JSON
 * escaping and go straight into `out` without a temporary buffer. */
static int
put_action(const struct sl_route *r, struct sl_span ds, struct sl_span alt,
           struct sl_span ns, int64_t t_ns, struct sl_span id,
           struct sl_buf *out)
{
  int rc;

  rc = sl_buf_append_str(out, "{\"create\":{\"_index\":\"");
  if (!rc)
    rc = sl_bulk_target_parts(r, ds, alt, ns, t_ns, out);
  if (!rc)
    rc = sl_buf_append_str(out, "\",\"_id\":");
  if (!rc)
    rc = sl_json_str(out, id.p, id.len);
  if (!rc)
    rc = sl_buf_append_str(out, "}}\n");
  return rc;
}

/* The jansson path, for events the scanner is unsure of. Anything that is
 * not a JSON object (only a damaged or foreign record holds one) goes to the
 * default target with an id hashed from its bytes. */
static int
event_action_slow(const struct sl_route *r, const char *ev, size_t len,
                  int64_t fallback_ns, struct sl_buf *out)
{
  static const struct sl_span none = { NULL, 0 };
  json_t *o = json_loadb(ev, len, 0, NULL);
  struct sl_span id;
  char hid[33];
  int rc;

  id = sl_event_json_id(o);
  if (id.p == NULL) {
    sl_hash128_hex(sl_hash128(ev, len), hid);
    id.p = hid;
    id.len = 32;
  }
  if (json_is_object(o))
    rc = put_action(
        r, span_of(field2(o, "event", "dataset", "event.dataset")),
        span_of(field2(o, "data_stream", "dataset", "data_stream.dataset")),
        span_of(field2(o, "data_stream", "namespace",
                       "data_stream.namespace")),
        r->mode == SL_INDEX_DAILY ? event_time_ns(o, fallback_ns) : 0, id,
        out);
  else
    rc = put_action(r, none, none, none,
                    r->mode == SL_INDEX_DAILY ? fallback_ns : 0, id, out);
  json_decref(o);
  return rc;
}

int
sl_bulk_event_action(const struct sl_route *r, const char *ev, size_t len,
                     int64_t fallback_ns, struct sl_buf *out)
{
  struct sl_event_fields f;
  size_t mark = out->len;
  int64_t t_ns = 0;
  int rc;

  /* One pass over the bytes and no DOM for the usual event: the intake
   * made sure it has a usable event.id and an @timestamp. */
  if (sl_event_scan(ev, len, &f) == 0 && f.id.p != NULL && f.id.len > 0 &&
      f.id.len <= SL_EVENT_ID_MAX &&
      (r->mode != SL_INDEX_DAILY ||
       (f.timestamp.p != NULL &&
        sl_time_parse_any(f.timestamp.p, f.timestamp.len, &t_ns) == 0)))
    rc = put_action(r, f.ev_dataset, f.ds_dataset, f.ds_namespace, t_ns,
                    f.id, out);
  else
    rc = event_action_slow(r, ev, len, fallback_ns, out);
  if (rc) {
    sl_buf_truncate(out, mark); /* all or nothing */
  }
  return rc;
}

int
sl_bulk_encode(const struct sl_route *r, const char *events, size_t len,
               int64_t fallback_ns, struct sl_buf *out)
{
  size_t pos = 0, off, n, mark = out->len;
  int rc = 0;

  while (!rc && next_line(events, len, &pos, &off, &n)) {
    rc = sl_bulk_event_action(r, events + off, n, fallback_ns, out);
    if (!rc)
      rc = sl_buf_append(out, events + off, n);
    if (!rc)
      rc = sl_buf_append_byte(out, '\n');
  }
  if (rc) {
    sl_buf_truncate(out, mark);
  }
  return rc;
}

size_t
sl_bulk_event_count(const char *p, size_t len)
{
  size_t pos = 0, off, n, k = 0;

  while (next_line(p, len, &pos, &off, &n))
    k++;
  return k;
}

size_t
sl_bulk_event_split(const char *p, size_t len, struct sl_span *events,
                    size_t max)
{
  size_t pos = 0, off, n, k = 0;

  while (k < max && next_line(p, len, &pos, &off, &n)) {
    events[k].p = p + off;
    events[k].len = n;
    k++;
  }
  return k;
}

size_t
sl_bulk_v1_to_events(char *p, size_t len, uint32_t *nevents,
                     struct sl_span *orphan)
{
  size_t pos = 0, w = 0, off, n;
  uint32_t k = 0;

  if (orphan) {
    orphan->p = NULL;
    orphan->len = 0;
  }
  /* Lines alternate action, source. An action with no source after it
   * (a damaged record) is reported, not kept: it has no event. Its bytes
   * lie behind every kept source line, so the moves never reach them. */
  while (next_line(p, len, &pos, &off, &n)) {
    size_t aoff = off, an = n;

    if (!next_line(p, len, &pos, &off, &n)) {
      if (orphan) {
        orphan->p = p + aoff;
        orphan->len = an;
      }
      break;
    }
    memmove(p + w, p + off, n);
    w += n;
    p[w++] = '\n';
    k++;
  }
  if (nevents)
    *nevents = k;
  return w;
}

int
sl_bulk_action_parse(const char *line, size_t len, struct sl_buf *index,
                     struct sl_buf *id)
{
  json_t *root = json_loadb(line, len, 0, NULL), *meta, *v;
  const char *key;
  int rc = SL_EPARSE;

  if (!json_is_object(root) || json_object_size(root) != 1)
    goto out;
  json_object_foreach(root, key, meta) break;
  if (!json_is_object(meta))
    goto out;
  rc = 0;
  v = json_object_get(meta, "_index");
  if (json_is_string(v))
    rc = sl_buf_append(index, json_string_value(v), json_string_length(v));
  v = json_object_get(meta, "_id");
  if (!rc && json_is_string(v))
    rc = sl_buf_append(id, json_string_value(v), json_string_length(v));
  /* Keep both buffers NUL-terminated even when nothing was appended. */
  if (!rc)
    rc = sl_buf_append(index, "", 0);
  if (!rc)
    rc = sl_buf_append(id, "", 0);
out:
  json_decref(root);
  return rc;
}

/* ---- Responses ---------------------------------------------------------- */

int
sl_bulk_resp_parse(const char *body, size_t len, size_t nitems,
                   struct sl_bulk_resp *out)
{
  json_t *items, *it, *res, *v, *err;
  const char *key;
  size_t i;

  memset(out, 0, sizeof *out);
  /* Big responses have thousands of small objects; JSON_ALLOW_NUL is not
   * needed and duplicates are irrelevant, so plain decoding is enough. */
  out->root = json_loadb(body, len, 0, NULL);
  if (!json_is_object(out->root))
    goto bad;
  out->errors = json_is_true(json_object_get(out->root, "errors"));
  items = json_object_get(out->root, "items");
  /* filter_path drops an empty items array entirely. */
  if (!items && nitems == 0)
    return 0;
  if (!json_is_array(items) || json_array_size(items) != nitems)
    goto bad;
  out->n = nitems;
  out->items = calloc(nitems ? nitems : 1, sizeof *out->items);
  if (!out->items) {
    sl_bulk_resp_free(out);
    return SL_ENOMEM;
  }
  json_array_foreach(items, i, it) {
    struct sl_bulk_result *r = &out->items[i];

    if (!json_is_object(it))
      continue; /* status 0: the caller retries it */
    res = NULL;
    json_object_foreach(it, key, v) {
      res = v;
      break;
    }
    if (!json_is_object(res))
      continue;
    v = json_object_get(res, "status");
    if (json_is_integer(v))
      r->status = (int)json_integer_value(v);
    err = json_object_get(res, "error");
    if (json_is_object(err)) {
      v = json_object_get(err, "type");
      r->err_type = json_is_string(v) ? json_string_value(v) : NULL;
      v = json_object_get(err, "reason");
      r->err_reason = json_is_string(v) ? json_string_value(v) : NULL;
    } else if (json_is_string(err)) {
      r->err_reason = json_string_value(err);
    }
  }
  return 0;
bad:
  sl_bulk_resp_free(out);
  return SL_EPARSE;
}

void
sl_bulk_resp_free(struct sl_bulk_resp *r)
{
  json_decref(r->root);
  free(r->items);
  memset(r, 0, sizeof *r);
}

/* ---- Dead letters ------------------------------------------------------- */

void
sl_bulk_deadletter_id(const struct sl_deadletter *dl, char out[33])
{
  struct sl_hash_state *st = sl_hash128_start();
  struct sl_hash128 h;

  if (!st) {
    /* Out of memory for 600 bytes of state: fall back to a one-shot hash
     * of the id alone; still deterministic for the same original. */
    h = sl_hash128(dl->orig_id ? dl->orig_id : "", dl->orig_id
                   ? strlen(dl->orig_id) : 0);
    sl_hash128_hex(h, out);
    return;
  }
  if (dl->orig_id && dl->orig_id[0]) {
    sl_hash128_update(st, dl->orig_id, strlen(dl->orig_id));
  } else {
    sl_hash128_update(st, dl->action, dl->action_len);
    sl_hash128_update(st, "\n", 1);
    sl_hash128_update(st, dl->doc, dl->doc_len);
  }
  sl_hash128_update(st, "dl", 2);
  h = sl_hash128_finish(st);
  sl_hash128_hex(h, out);
}

static int
kv_str(struct sl_buf *b, const char *key, const char *v, size_t n)
{
  int rc = sl_buf_printf(b, ",\"%s\":", key);

  return rc ? rc : sl_json_str(b, v ? v : "", v ? n : 0);
}

static int
kv_cstr(struct sl_buf *b, const char *key, const char *v)
{
  return kv_str(b, key, v, v ? strlen(v) : 0);
}

/* Split "logs-<dataset>-<namespace>" into its parts; 0 if not that shape. */
static int
ds_parts(const char *index, struct sl_span *ds, struct sl_span *ns)
{
  const char *a, *b;

  if (strncmp(index, "logs-", 5) != 0)
    return 0;
  a = index + 5;
  b = strchr(a, '-');
  if (!b || b == a || !b[1] || strchr(b + 1, '-'))
    return 0;
  ds->p = a;
  ds->len = (size_t)(b - a);
  ns->p = b + 1;
  ns->len = strlen(b + 1);
  return 1;
}

int
sl_bulk_deadletter(struct sl_buf *out, const char *dl_index,
                   const struct sl_deadletter *dl)
{
  char id[33], ts[SL_TIME_RFC3339_MS_LEN + 1];
  struct sl_span ds = { NULL, 0 }, ns = { NULL, 0 };
  size_t mark = out->len;
  int rc, is_ds = ds_parts(dl_index, &ds, &ns);

  sl_bulk_deadletter_id(dl, id);
  sl_time_format_ms(dl->now_ns, ts);
  rc = sl_bulk_action(out, dl_index, strlen(dl_index), id, 32);
  if (!rc && dl->no_pipeline) {
    /* Overrides the request's ?pipeline= for this item. */
    sl_buf_truncate(out, out->len - 3);           /* "}}\n" */
    rc = sl_buf_append_str(out, ",\"pipeline\":\"_none\"}}\n");
  }
  if (!rc)
    rc = sl_buf_printf(out, "{\"@timestamp\":\"%s\"", ts);
  if (!rc)
    rc = sl_buf_append_str(out, ",\"message\":\"document refused by "
                                "Elasticsearch\"");
  if (!rc)
    rc = sl_buf_append_str(out, ",\"event\":{\"dataset\":");
  if (!rc)
    rc = is_ds ? sl_json_str(out, ds.p, ds.len)
               : sl_buf_append_str(out, "\"sluice.deadletter\"");
  if (!rc)
    rc = kv_str(out, "original", dl->doc, dl->doc_len);
  if (!rc)
    rc = sl_buf_append_str(out, "},\"error\":{\"type\":");
  if (!rc)
    rc = sl_json_str(out, dl->err_type ? dl->err_type : "",
                     dl->err_type ? strlen(dl->err_type) : 0);
  if (!rc)
    rc = kv_cstr(out, "message", dl->err_reason);
  if (!rc)
    rc = sl_buf_printf(out, "},\"http\":{\"response\":{\"status_code\":%d}}",
                       dl->status);
  if (!rc)
    rc = sl_buf_append_str(out, ",\"labels\":{\"original_index\":");
  if (!rc)
    rc = sl_json_str(out, dl->orig_index ? dl->orig_index : "",
                     dl->orig_index ? strlen(dl->orig_index) : 0);
  if (!rc)
    rc = kv_cstr(out, "original_id", dl->orig_id);
  if (!rc)
    rc = sl_buf_append_byte(out, '}');
  /* data_stream.* must repeat the stream name's parts (constant_keyword in
   * the built-in mapping); a non-data-stream target gets none. */
  if (!rc && is_ds) {
    rc = sl_buf_append_str(out, ",\"data_stream\":{\"type\":\"logs\","
                                "\"dataset\":");
    if (!rc)
      rc = sl_json_str(out, ds.p, ds.len);
    if (!rc)
      rc = kv_str(out, "namespace", ns.p, ns.len);
    if (!rc)
      rc = sl_buf_append_byte(out, '}');
  }
  if (!rc)
    rc = sl_buf_append_str(out, ",\"ecs\":{\"version\":\"8.11.0\"}}\n");
  if (rc) {
    sl_buf_truncate(out, mark);
  }
  return rc;
}

int
sl_bulk_deadletter_line(struct sl_buf *out, const struct sl_deadletter *dl,
                        int dl_status, const char *dl_err_type,
                        const char *dl_err_reason)
{
  char ts[SL_TIME_RFC3339_MS_LEN + 1];
  size_t mark = out->len;
  int rc;

  sl_time_format_ms(dl->now_ns, ts);
  rc = sl_buf_printf(out, "{\"@timestamp\":\"%s\"", ts);
  if (!rc)
    rc = kv_cstr(out, "index", dl->orig_index);
  if (!rc)
    rc = kv_cstr(out, "id", dl->orig_id);
  if (!rc)
    rc = sl_buf_printf(out, ",\"status\":%d,\"error\":{\"type\":",
                       dl->status);
  if (!rc)
    rc = sl_json_str(out, dl->err_type ? dl->err_type : "",
                     dl->err_type ? strlen(dl->err_type) : 0);
  if (!rc)
    rc = kv_cstr(out, "reason", dl->err_reason);
  if (!rc)
    rc = sl_buf_append_byte(out, '}');
  if (!rc && dl_status) {
    rc = sl_buf_printf(out, ",\"deadletter_status\":%d,"
                            "\"deadletter_error\":{\"type\":", dl_status);
    if (!rc)
      rc = sl_json_str(out, dl_err_type ? dl_err_type : "",
                       dl_err_type ? strlen(dl_err_type) : 0);
    if (!rc)
      rc = kv_cstr(out, "reason", dl_err_reason);
    if (!rc)
      rc = sl_buf_append_byte(out, '}');
  }
  if (!rc)
    rc = kv_str(out, "action", dl->action, dl->action_len);
  if (!rc)
    rc = kv_str(out, "document", dl->doc, dl->doc_len);
  if (!rc)
    rc = sl_buf_append_str(out, "}\n");
  if (rc) {
    sl_buf_truncate(out, mark);
  }
  return rc;
}

/* ---- gzip --------------------------------------------------------------- */

int
sl_bulk_gzip(const char *in, size_t len, int level, struct sl_buf *out)
{
  z_stream z;
  size_t bound;
  int rc, zrc;

  memset(&z, 0, sizeof z);
  if (level < 1 || level > 9)
    level = Z_DEFAULT_COMPRESSION;
  /* windowBits 15 + 16: zlib writes a gzip header and trailer instead of
   * the zlib ones. memLevel 8 is zlib's default. */
  if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK)
    return SL_ENOMEM;
  /* deflateBound() knows the worst case; gzip adds 18 bytes of framing
   * that the zlib-format bound does not count. */
  bound = deflateBound(&z, (uLong)len) + 32;
  rc = sl_buf_reserve(out, bound);
  if (rc)
    goto done;
  z.next_in = (Bytef *)(uintptr_t)in;
  z.avail_in = (uInt)len;
  z.next_out = (Bytef *)out->p + out->len;
  z.avail_out = (uInt)bound;
  zrc = deflate(&z, Z_FINISH);
  if (zrc != Z_STREAM_END) {
    rc = SL_EINTERNAL;
    goto done;
  }
  out->len += z.total_out;
  out->p[out->len] = '\0';
done:
  deflateEnd(&z);
  return rc;
}
