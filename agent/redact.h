/* redact.h - per-input redaction of lines before they leave the host.
 *
 *   redact:
 *     - credit_card                  # presets by name
 *     - secrets
 *     - email
 *     - pattern: 'user=\w+'          # PCRE2
 *       replacement: 'user=[REDACTED]'   # $1..$9 insert groups
 *
 * Presets:
 *   credit_card  13-19 digits, optionally split by single spaces or
 *                dashes, not glued to other digits or letters, that pass
 *                the Luhn check -> [REDACTED:card]. A number failing
 *                Luhn (an order id, a timestamp) is left alone.
 *   secrets      the values of password=, passwd=, pwd=, token=,
 *                access_token=, api_key=/apikey=, secret= (also with ':'
 *                and quotes, as in JSON or YAML) and of "Authorization:
 *                Bearer/Basic <value>" -> [REDACTED]; the key stays.
 *   email        addresses -> [REDACTED:email].
 * Rules run in the order written, each on the result of the one before.
 * They apply to the raw line (or joined multiline event) before the
 * parser reads it, so every field built from it is clean; an event that
 * any rule changed is tagged "redacted".
 *
 * A struct sl_redact is read-only after sl_redact_new and shared by the
 * parse workers; each brings a struct sl_redact_scratch of its own.
 */
#ifndef SL_AGENT_REDACT_H
#define SL_AGENT_REDACT_H

#include <stddef.h>

#include <jansson.h>

#include "re.h"
#include "sl_buf.h"

struct sl_redact;

struct sl_redact_scratch {
  struct sl_buf a, b;
  pcre2_match_data *md;
};

/* From the input's `redact` key; *out NULL (SL_OK) when absent. */
int sl_redact_new(const json_t *input, struct sl_redact **out, char *err,
                  size_t errlen);
void sl_redact_free(struct sl_redact *r);

int sl_redact_scratch_init(struct sl_redact_scratch *s);
void sl_redact_scratch_free(struct sl_redact_scratch *s);

/* Apply every rule to [line, line+len). Returns 1 and sets *out and *outlen
 * (valid until the next call with the same scratch) when something was
 * replaced, 0 when the line is unchanged, <0 on SL_ENOMEM. */
int sl_redact_apply(const struct sl_redact *r, struct sl_redact_scratch *s,
                    const char *line, size_t len, const char **out,
                    size_t *outlen);

/* The Luhn check over ASCII digits (exposed for tests). */
int sl_redact_luhn(const char *digits, size_t n);

#endif
