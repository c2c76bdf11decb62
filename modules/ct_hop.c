/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_hop.c: bounds on setting up the next hop, and the Via entry that
 * lets this proxy recognise a CONNECT it has already forwarded.
 *
 * The connect timeout bounds one step; without an overall deadline an
 * upstream that sends a byte just inside it, or a name with hundreds of
 * blackholed addresses, holds a worker for as long as it likes.  A loop
 * (ProxyRemote pointing back at this server, directly or through other
 * proxies) would nest CONNECTs until every worker is taken; Via is the
 * one field every hop keeps, so the loop shows there.
 */

#include "apr_strings.h"
#include "apr_lib.h"
#include "apr_cstr.h"

#include "ct_hop.h"

void ct_hop_interleave(apr_sockaddr_t **addrs)
{
    apr_sockaddr_t *v6 = NULL, *v4 = NULL, **t6 = &v6, **t4 = &v4;
    apr_sockaddr_t *sa, *next, **tail = addrs;
    int six = 1;

    for (sa = *addrs; sa != NULL; sa = next) {
        next = sa->next;
        sa->next = NULL;
        if (sa->family == APR_INET6) {
            *t6 = sa;
            t6 = &sa->next;
        }
        else {
            *t4 = sa;
            t4 = &sa->next;
        }
    }
    while (v6 != NULL || v4 != NULL) {
        apr_sockaddr_t **from = (six && v6) || v4 == NULL ? &v6 : &v4;

        *tail = *from;
        *from = (*from)->next;
        tail = &(*tail)->next;
        six = !six;
    }
    *tail = NULL;
}

int ct_hop_cap_addresses(apr_sockaddr_t *addrs, int max)
{
    apr_sockaddr_t *sa, *last = NULL;
    int n = 0, dropped = 0;

    for (sa = addrs; sa != NULL; sa = sa->next) {
        if (n++ < max) {
            last = sa;
        }
        else {
            dropped++;
        }
    }
    if (last != NULL) {
        last->next = NULL;
    }
    return dropped;
}

apr_interval_time_t ct_hop_step_timeout(apr_interval_time_t step,
                                        apr_time_t deadline, apr_time_t now)
{
    apr_interval_time_t left = deadline - now;

    if (left <= 0) {
        return 0;
    }
    return left < step ? left : step;
}

const char *ct_hop_pseudonym(apr_pool_t *p, const char *name,
                             apr_port_t port, const char *token)
{
    char *s, *out;

    out = apr_psprintf(p, "%s-%hu-%s", name && *name ? name : "httpd",
                       port, token);
    /* A ServerName may be an address ("[::1]"); a pseudonym is a token,
     * and keeping to letters, digits, '.' and '-' keeps it unambiguous. */
    for (s = out; *s; s++) {
        if (!apr_isalnum(*s) && *s != '.' && *s != '-') {
            *s = '-';
        }
    }
    return out;
}

/* Past a comment starting at s ('('), nested ones and quoted pairs
 * included; at the end of the string if it is not closed. */
static const char *skip_comment(const char *s)
{
    int depth = 0;

    for (; *s; s++) {
        if (*s == '\\' && s[1] != '\0') {
            s++;
        }
        else if (*s == '(') {
            depth++;
        }
        else if (*s == ')' && --depth == 0) {
            return s + 1;
        }
    }
    return s;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Whether the member at s names received_by; *next is past the member. */
static int member_names(const char *s, const char *received_by,
                        const char **next)
{
    apr_size_t want = strlen(received_by), len;
    const char *by;
    int found;

    while (is_ows(*s)) {
        s++;
    }
    /* received-protocol */
    while (*s && *s != ',' && !is_ows(*s) && *s != '(') {
        s++;
    }
    while (is_ows(*s)) {
        s++;
    }
    by = s;
    while (*s && *s != ',' && !is_ows(*s) && *s != '(') {
        s++;
    }
    len = (apr_size_t)(s - by);
    found = len == want && len > 0
            && apr_cstr_casecmpn(by, received_by, len) == 0;
    /* The rest of the member: a comment may hold commas. */
    while (*s && *s != ',') {
        s = *s == '(' ? skip_comment(s) : s + 1;
    }
    *next = *s == ',' ? s + 1 : s;
    return found;
}

int ct_hop_via_has(const char *via, const char *received_by)
{
    const char *s = via;

    if (via == NULL || received_by == NULL || *received_by == '\0') {
        return 0;
    }
    while (*s) {
        if (member_names(s, received_by, &s)) {
            return 1;
        }
    }
    return 0;
}

int ct_hop_head_reports_loop(const char *head)
{
    static const char field[] = "Proxy-Status:";
    const char *line = head, *eol;

    while (line != NULL && *line) {
        eol = strstr(line, "\r\n");
        if (apr_cstr_casecmpn(line, field, sizeof(field) - 1) == 0) {
            const char *hit = strstr(line, "error=proxy_loop_detected");

            if (hit != NULL && (eol == NULL || hit < eol)) {
                return 1;
            }
        }
        line = eol ? eol + 2 : NULL;
    }
    return 0;
}
