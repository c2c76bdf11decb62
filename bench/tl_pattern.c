/*
 * tl_pattern.c: the bulk transfers' byte stream (see tl_pattern.h).
 */

#include <stdlib.h>
#include <string.h>

#include "tl_pattern.h"

static unsigned char *table;

/* splitmix64: a fixed, well-mixed sequence from a counter, so the table is
 * the same in every process without shipping it. */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

int tl_pattern_init(void)
{
    size_t size = TL_PATTERN_PERIOD + TL_PATTERN_MAX_CHUNK, i;
    uint64_t word = 0;

    if (table != NULL) {
        return 0;
    }
    table = malloc(size);
    if (table == NULL) {
        return -1;
    }
    for (i = 0; i < TL_PATTERN_PERIOD; i++) {
        if (i % 8 == 0) {
            word = mix(i / 8);
        }
        table[i] = (unsigned char)(word >> (8 * (i % 8)));
    }
    /* The tail repeats the head, so any chunk reads straight through;
     * byte by byte because the tail is longer than the period. */
    for (; i < size; i++) {
        table[i] = table[i - TL_PATTERN_PERIOD];
    }
    return 0;
}

const unsigned char *tl_pattern_at(uint64_t off)
{
    return table + off % TL_PATTERN_PERIOD;
}

int tl_pattern_check(uint64_t off, const unsigned char *buf, size_t len,
                     uint64_t *bad)
{
    const unsigned char *want;
    size_t n, i;

    while (len > 0) {
        n = len < TL_PATTERN_MAX_CHUNK ? len : TL_PATTERN_MAX_CHUNK;
        want = tl_pattern_at(off);
        if (memcmp(want, buf, n) != 0) {
            /* Rare and only for the report: find the byte slowly. */
            for (i = 0; i < n && want[i] == buf[i]; i++) {
                continue;
            }
            *bad = off + i;
            return -1;
        }
        off += n;
        buf += n;
        len -= n;
    }
    return 0;
}
