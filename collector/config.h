/* config.h - the collector's whole configuration schema, defined once as a
 * table (validation, defaults and --help all come from it). */
#ifndef SL_COLLECTOR_CONFIG_H
#define SL_COLLECTOR_CONFIG_H

#include "sl_conf.h"

extern const struct sl_conf_key sl_collector_schema[];

#define SL_COLLECTOR_DEFAULT_CONFIG "/etc/sluice/collector.yml"

#endif
