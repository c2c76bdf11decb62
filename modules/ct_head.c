/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_head.c: the line watch of ct_head.h.  It keeps only the first few
 * bytes of the line being read, so a line split anywhere costs nothing
 * more than a line read whole, and it stops as soon as the request line
 * shows that the request is not a CONNECT.
 */

#include <string.h>

#include "apr_cstr.h"

#include "ct_head.h"

/* A request line "CONNECT <target> ...": the method is case-sensitive and
 * ends at whitespace (httpd itself refuses leading whitespace). */
#define CT_HEAD_METHOD "CONNECT"

/* A Host field line: the name in any case, the colon right after it
 * (httpd refuses whitespace before the colon). */
#define CT_HEAD_HOST "host:"

void ct_head_init(ct_head *h)
{
    memset(h, 0, sizeof(*h));
    h->state = CT_HEAD_START;
}

static int is_over(const ct_head *h)
{
    return h->state == CT_HEAD_OTHER || h->state == CT_HEAD_END;
}

/* Nothing before the LF but perhaps the CR: a blank line. */
static int line_blank(const ct_head *h)
{
    return h->kept == 0 || (h->kept == 1 && h->start[0] == '\r');
}

static int is_connect_line(const ct_head *h)
{
    char c = h->start[sizeof(CT_HEAD_METHOD) - 1];

    return h->kept == CT_HEAD_KEEP
           && memcmp(h->start, CT_HEAD_METHOD,
                     sizeof(CT_HEAD_METHOD) - 1) == 0
           && (c == ' ' || c == '\t' || c == '\v' || c == '\f');
}

static int is_host_line(const ct_head *h)
{
    return h->kept >= sizeof(CT_HEAD_HOST) - 1
           && apr_cstr_casecmpn(h->start, CT_HEAD_HOST,
                                sizeof(CT_HEAD_HOST) - 1) == 0;
}

/* Keep the first bytes of the current line; the method is known as soon
 * as enough of the request line is. */
static void keep(ct_head *h, const char *data, apr_size_t len)
{
    apr_size_t room = CT_HEAD_KEEP - h->kept;

    if (len > room) {
        len = room;
    }
    memcpy(h->start + h->kept, data, len);
    h->kept += len;
    if (h->state == CT_HEAD_START && h->kept == CT_HEAD_KEEP) {
        h->state = is_connect_line(h) ? CT_HEAD_CONNECT : CT_HEAD_OTHER;
    }
}

/* The current line ended (its LF was seen). */
static void line_end(ct_head *h)
{
    switch (h->state) {
    case CT_HEAD_START:
        /* httpd skips blank lines before the request line; a request
         * line too short for "CONNECT " is not a CONNECT. */
        if (!line_blank(h)) {
            h->state = CT_HEAD_OTHER;
        }
        break;
    case CT_HEAD_CONNECT:
        h->state = CT_HEAD_FIELDS;
        break;
    case CT_HEAD_FIELDS:
        if (line_blank(h)) {
            h->state = CT_HEAD_END;
        }
        else if (is_host_line(h)) {
            h->hosts++;
        }
        break;
    default:
        break;
    }
    h->kept = 0;
}

int ct_head_feed(ct_head *h, const char *data, apr_size_t len)
{
    const char *end = data + len;

    while (data < end && !is_over(h)) {
        const char *lf = memchr(data, '\n', (apr_size_t)(end - data));

        keep(h, data, (apr_size_t)((lf ? lf : end) - data));
        if (lf == NULL || is_over(h)) {
            break;
        }
        line_end(h);
        data = lf + 1;
    }
    return is_over(h);
}
