/*
 * cfg_curve: the CURVE settings of config.json (config.h, struct
 * cfg_curve): cfg_load.c's parse functions for them.
 */
#ifndef ER_CFG_CURVE_H
#define ER_CFG_CURVE_H

#include "config.h"

struct cfg_reader;
struct cfg_node;

/*
 * "curve": {"server_key", "clients_dir", "client_addresses"}, the reader
 * at it: the server's secret certificate and the directory are read
 * now.  Returns 0, or -1 with the reader's error (FILE:LINE:COLUMN at the
 * key whose file is wrong).
 */
int cfg_parse_curve(struct cfg_reader *r, const struct cfg_node *v,
    struct cfg *cfg);
/* subscriber.curve_key and .curve_server_key (s the subscriber section,
 * the reader at it): both or neither; the certificates read now. */
int cfg_parse_sub_curve(struct cfg_reader *r, const struct cfg_node *s,
    struct cfg *cfg);

#endif
