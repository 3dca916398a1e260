/*
 * bson_map: the MongoDB documents of the store (event-reactor(7),
 * "MongoDB"), built from our own types.  JSON text to BSON, value by value,
 * and an event document back to its text (event-sub's catch-up).
 *
 * Why a module of its own: it is the one place that needs both jansson
 * (to read the event JSON exactly as the router accepted it) and libbson
 * (to build the documents), and it is pure, so the mapping is unit tested
 * without a server (tests/unit/test_bson_map.c).  store_mongo.c, the only
 * includer of mongoc.h, sends what this module builds.
 *
 * Why not libbson's own JSON reader (bson_init_from_json): it reads
 * MongoDB Extended JSON, so a payload {"$date": 5} or {"$oid": "..."}
 * would silently become a BSON date or ObjectId; we store what was sent.
 *
 * Mapping of JSON values (jansson decodes with the router's flags, so
 * "\u0000" inside strings is kept):
 *   integer that fits in 32 bits  -> int32
 *   other integer (64 bits; the router refuses larger ones) -> int64
 *   number with a fraction or exponent ("1.0", "1e3")       -> double
 *   string  -> UTF-8 string (length-prefixed: NUL bytes survive)
 *   true/false -> boolean, null -> null
 *   array   -> array (keys "0", "1", ...), object -> embedded document,
 *              members in the order they were sent
 *
 * Keys: one rule, applied at every depth (bson_map_escape_key()), so that
 * no key can start with '$' or contain '.' and any server version (4.x
 * refuses them, 5.0+ stores them but cannot query them) and mongoc's
 * client-side key validation take every event:
 *   '%' -> "%25", '.' -> "%2E", a leading '$' -> "%24".
 * At the top level of an event document, a member whose name is one the
 * layout reserves ("_id", "timestamp_raw") gets its first character
 * escaped too ("%5Fid", "%74imestamp_raw").  Every escape is "%" and two
 * upper-case hex digits, so percent-decoding the key once gives back the
 * name that was sent.  The empty key "" is kept as is.
 *
 * Limits checked here (MongoDB manual, "MongoDB Limits and Thresholds"):
 * BSON_MAP_MAX_SIZE bytes per document and BSON_MAP_MAX_DEPTH levels of
 * nesting.  A document over either is refused with BM_TOO_LARGE or
 * BM_TOO_DEEP: a server would refuse it, and retrying cannot help.
 */
#ifndef ER_BSON_MAP_H
#define ER_BSON_MAP_H

#include <bson/bson.h>
#include <stddef.h>

#include "event.h"
#include "store.h"

/* "BSON Document Size": 16 mebibytes (the server's maxBsonObjectSize). */
#define BSON_MAP_MAX_SIZE (16 * 1024 * 1024)
/* "Nested Depth for BSON Documents": 100 levels; the document itself is
 * level 1, so {"payload": {}} has depth 2. */
#define BSON_MAP_MAX_DEPTH 100

enum bson_map_err {
	BM_OK = 0,
	BM_INVALID,		/* not JSON, or not a stamped event */
	BM_TOO_DEEP,		/* nested deeper than BSON_MAP_MAX_DEPTH */
	BM_TOO_LARGE,		/* over BSON_MAP_MAX_SIZE bytes */
};

/*
 * The events document for a stamped event (ev->id, ev->json):
 *   _id            ObjectId, from ev->id
 *   namespace      string
 *   event_type     string
 *   timestamp      BSON date: the event's timestamp in milliseconds,
 *                  rounded to the nearest; clamped to the int64 range
 *   timestamp_raw  the timestamp exactly as sent (int32, int64 or double)
 *   ...            every other member (payload, parent_event, ...) in the
 *                  order sent, mapped as above; "id" is not repeated.
 * doc must be uninitialised; on BM_OK it holds the document (the caller
 * bson_destroy()s it); on error nothing is left to free and why[whysz]
 * says what is wrong.
 */
enum bson_map_err bson_map_event(const struct event *ev, bson_t *doc,
    char *why, size_t whysz);

/*
 * The results document for a handler run (event-reactor(7), "MongoDB",
 * collection results).  oid: the document's _id (the caller generates it
 * once, so a replay inserts the same document).  event_id is stored as an ObjectId
 * when it is 24 hex digits (so it joins events._id), as a string otherwise;
 * stdout/stderr as strings when valid UTF-8, as binary (subtype 0)
 * otherwise; data (pyfunc JSON) mapped as a JSON value, or as a string if
 * it is not JSON.  Same contract for doc and why as bson_map_event().
 */
enum bson_map_err bson_map_result(const struct run_result *r,
    const bson_oid_t *oid, bson_t *doc, char *why, size_t whysz);

/*
 * Append the JSON text json[0..len) (any JSON value) to parent under key
 * (escaped).  depth: the nesting level of parent (1 for a top-level
 * document).  Returns BM_OK, or an error with why set; on error parent may
 * hold part of the value and should be discarded.
 */
enum bson_map_err bson_map_append_json(bson_t *parent, const char *key,
    const char *json, size_t len, int depth, char *why, size_t whysz);

/*
 * The text of the stamped event an events document (bson_map_event())
 * holds: {"id": _id's hex, then its members in order, timestamp_raw as
 * "timestamp", the BSON date left out, keys percent-decoded}, compact.
 * The same members and values as the text the router stamped, not always
 * the same bytes (a double prints as jansson prints it: "1.50" comes back
 * "1.5").  A new string (*len its length; the caller free()s it), or NULL
 * when doc is not such a document (no ObjectId _id, a type the mapping
 * never makes, not UTF-8).
 */
char *bson_map_event_text(const bson_t *doc, size_t *len);

/*
 * Escape key by the rule above (top: the key is a top-level member of an
 * event document).  Returns key itself when nothing needs escaping, else a
 * new string in *buf (the caller free()s *buf; NULL when not used).
 */
const char *bson_map_escape_key(const char *key, int top, char **buf);

#endif
