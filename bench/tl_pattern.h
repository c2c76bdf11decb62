/*
 * tl_pattern.h: the deterministic byte stream every bulk transfer carries.
 *
 * Byte i of a stream is table[i % TL_PATTERN_PERIOD].  The period is a
 * prime near one million, so it shares no factor with any buffer size a
 * relay might use: a dropped, repeated or reordered chunk shows up as a
 * mismatch unless it is an exact multiple of a million bytes long.  The
 * table is built once from a fixed seed, so sender and receiver agree
 * without talking, and sending costs no more than a memcpy.
 */

#ifndef TL_PATTERN_H
#define TL_PATTERN_H

#include <stddef.h>
#include <stdint.h>

#define TL_PATTERN_PERIOD 1000003u

/* The most one call may ask for: the table is this much longer than its
 * period so that a chunk never wraps. */
#define TL_PATTERN_MAX_CHUNK (1024u * 1024u)

/**
 * Build the table; 0, or -1 when memory is short.  Call once, first.
 */
int tl_pattern_init(void);

/**
 * The stream's bytes from offset off: len bytes may be read from the
 * returned pointer, len at most TL_PATTERN_MAX_CHUNK.
 */
const unsigned char *tl_pattern_at(uint64_t off);

/**
 * Whether buf holds the stream's len bytes from offset off: 0 when it
 * does, else -1 and *bad is the offset of the first wrong byte.
 */
int tl_pattern_check(uint64_t off, const unsigned char *buf, size_t len,
                     uint64_t *bad);

#endif /* TL_PATTERN_H */
