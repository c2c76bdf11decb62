/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_head.h: watching the head of an HTTP/1.x request as its bytes are
 * read, line by line: whether it is a CONNECT and how many Host field
 * lines it carries.  httpd joins repeated fields into one value and then
 * replaces a CONNECT's Host with the request-target, so the lines are the
 * only place where a repeated Host can still be seen.  APR only.
 */

#ifndef CT_HEAD_H
#define CT_HEAD_H

#include "apr.h"

/* Where the watch stands. */
typedef enum {
    CT_HEAD_START,      /* before the request line (blank lines skipped) */
    CT_HEAD_CONNECT,    /* inside a CONNECT request line */
    CT_HEAD_FIELDS,     /* at the field lines */
    CT_HEAD_OTHER,      /* not a CONNECT: nothing more to watch */
    CT_HEAD_END         /* the empty line that ends the head was seen */
} ct_head_state;

/* The first bytes of a line: enough for "CONNECT " and "host:". */
#define CT_HEAD_KEEP 8

typedef struct {
    ct_head_state state;
    apr_size_t kept;            /* bytes of the current line in start[] */
    char start[CT_HEAD_KEEP];   /* the current line's first bytes */
    int hosts;                  /* Host field lines seen */
} ct_head;

/**
 * Start watching a new request head.
 */
void ct_head_init(ct_head *h);

/**
 * Feed the next bytes of the head, in any pieces: a line may be split
 * anywhere between two calls.  Bytes after the end of the head (or after
 * the request line of anything but a CONNECT) are not looked at.
 * @return 1 once the watch is over (CT_HEAD_OTHER or CT_HEAD_END), else 0
 */
int ct_head_feed(ct_head *h, const char *data, apr_size_t len);

#endif /* CT_HEAD_H */
