/*
 * tl_stats.c: latency samples and nearest-rank percentiles.
 */

#include <math.h>
#include <stdlib.h>

#include "tl_stats.h"

int tl_samples_add(tl_samples *s, uint64_t ns)
{
    uint64_t *v;
    size_t cap;

    if (s->n == s->cap) {
        cap = s->cap ? s->cap * 2 : 1024;
        v = realloc(s->v, cap * sizeof(*v));
        if (v == NULL) {
            return -1;
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = ns;
    s->sorted = 0;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

double tl_samples_pct_us(tl_samples *s, double p)
{
    size_t rank;

    if (s->n == 0) {
        return 0.0;
    }
    if (!s->sorted) {
        qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
        s->sorted = 1;
    }
    /* Nearest rank: the smallest sample with at least p% at or below. */
    rank = (size_t)ceil(p / 100.0 * (double)s->n);
    if (rank < 1) {
        rank = 1;
    }
    if (rank > s->n) {
        rank = s->n;
    }
    return (double)s->v[rank - 1] / 1000.0;
}

double tl_samples_mean_us(const tl_samples *s)
{
    double sum = 0.0;
    size_t i;

    if (s->n == 0) {
        return 0.0;
    }
    for (i = 0; i < s->n; i++) {
        sum += (double)s->v[i];
    }
    return sum / (double)s->n / 1000.0;
}

void tl_samples_free(tl_samples *s)
{
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}
