/*
 * tl_stats.h: a growing set of latency samples and its percentiles.  The
 * bench reports p50 and p99 of every latency it measures, never a mean
 * alone, because a relay that stalls now and then hides in a mean.
 */

#ifndef TL_STATS_H
#define TL_STATS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t *v;        /* samples in nanoseconds */
    size_t n;
    size_t cap;
    int sorted;
} tl_samples;

/**
 * Add one sample; 0, or -1 when memory is short (the sample is lost and
 * the caller reports the run as failed).
 */
int tl_samples_add(tl_samples *s, uint64_t ns);

/**
 * The p-th percentile (0..100, nearest rank) in microseconds; 0 for an
 * empty set.  Sorts the set in place the first time.
 */
double tl_samples_pct_us(tl_samples *s, double p);

/**
 * The mean in microseconds; 0 for an empty set.
 */
double tl_samples_mean_us(const tl_samples *s);

/**
 * Release the samples.
 */
void tl_samples_free(tl_samples *s);

#endif /* TL_STATS_H */
