/* Placeholder until its module lands. */
typedef int sl_placeholder_t;
