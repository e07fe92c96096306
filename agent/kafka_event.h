/* kafka_event.h - what the Kafka output reads out of one finished event:
 * the topic (from a template), the message key and event.id. Pure
 * functions over the event's JSON text, no librdkafka, so unit tests run
 * in every build.
 *
 * Events are the agent's own ECS JSON lines (event_writer.h): valid JSON,
 * no raw newline, nested objects (never dotted keys). A field is found by
 * walking the top-level object and skipping values, without building a
 * DOM: one pass over the line, most of it memchr over the message string.
 *
 * Topic template: literal text with `%{dotted.field}` or
 * `%{dotted.field:default}` parts, e.g. "logs-%{event.dataset:generic}".
 * A missing (or non-scalar) field takes the default, or "unknown" when
 * the part has none. Characters Kafka does not allow in a topic name
 * (anything but [A-Za-z0-9._-]) become '_'; the result is capped at 249
 * bytes (Kafka's limit).
 *
 * Ownership: spans point into the caller's event text and live as long as
 * it; a compiled template owns its copy of the template.
 */
#ifndef SL_AGENT_KAFKA_EVENT_H
#define SL_AGENT_KAFKA_EVENT_H

#include <stddef.h>

/* Kafka's topic name limit. */
#define SL_KTOPIC_MAX 249

struct sl_kspan {
  const char *p;   /* string contents with escapes intact, or the scalar */
  size_t n;
};

/* Find the value of a dotted path ("event.dataset") in a JSON object text.
 * Strings give their contents between the quotes (escapes as written),
 * numbers/true/false their token. Returns 1 found, 0 absent, null, an
 * object/array, or malformed text. */
int sl_kjson_find(const char *p, size_t n, const char *path,
                  struct sl_kspan *out);

enum sl_kkey {
  SL_KKEY_EVENT_ID,
  SL_KKEY_HOST_NAME,
  SL_KKEY_TRACE_ID,
  SL_KKEY_NONE,
};

/* "event.id" | "host.name" | "trace.id" | "none" -> 0 and *k; else -1. */
int sl_kkey_parse(const char *s, enum sl_kkey *k);
/* The event field behind a key kind; NULL for SL_KKEY_NONE. */
const char *sl_kkey_path(enum sl_kkey k);

struct sl_ktopic;

/* Compile a template. Returns 0, or SL_EINVAL with the reason in err
 * (unclosed "%{", empty field name, literal characters Kafka refuses). */
int sl_ktopic_compile(const char *tmpl, struct sl_ktopic **out, char *err,
                      size_t errlen);
void sl_ktopic_free(struct sl_ktopic *t);
/* NULL when the template has no field: the topic is always this text. */
const char *sl_ktopic_static(const struct sl_ktopic *t);
/* Render the topic of one event into out (NUL-terminated, at most
 * SL_KTOPIC_MAX bytes + NUL; outlen must be > SL_KTOPIC_MAX). Returns the
 * length. */
size_t sl_ktopic_render(const struct sl_ktopic *t, const char *ev, size_t n,
                        char *out, size_t outlen);

#endif
