/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_resolve.c: what the resolver is asked and what its answers may be.
 * At startup it learns this host's own addresses (the built-in guard
 * denies them) and the names the hosts file lists; per tunnel it gives
 * the name to resolve and says whether the rules deny an address.
 */

#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>

#include "apr_strings.h"
#include "apr_hash.h"

#include "httpd.h"
#include "http_log.h"
#include "ap_listen.h"

#include "ct_private.h"
#include "ct_resolve.h"

#ifndef _PATH_HOSTS
#define _PATH_HOSTS "/etc/hosts"
#endif

/* Longest hosts file line read; the names of a longer one are skipped. */
#define CT_HOSTS_LINE_MAX 4096

/* This server's own addresses (ct_net), set at startup. */
static apr_array_header_t *ct_local;

/* The names the hosts file lists, lower case, set at startup. */
static apr_hash_t *ct_hosts_names;

static void add_local(apr_array_header_t *local, int family, const void *raw)
{
    ct_net *net = apr_array_push(local);

    ct_net_from_raw(family, raw, net);
}

/* Every address of every interface of this host. */
static void add_interfaces(apr_array_header_t *local, server_rec *s)
{
    struct ifaddrs *ifs, *ifa;

    if (getifaddrs(&ifs) != 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, errno, s, CT_LOGNO(00003)
                     "cannot list this host's interface addresses; the "
                     "guard denies its sets and the Listen addresses only");
        return;
    }
    for (ifa = ifs; ifa != NULL; ifa = ifa->ifa_next) {
        if (ifa->ifa_addr == NULL) {
            continue;
        }
        if (ifa->ifa_addr->sa_family == AF_INET) {
            add_local(local, APR_INET,
                      &((struct sockaddr_in *)ifa->ifa_addr)->sin_addr);
        }
        else if (ifa->ifa_addr->sa_family == AF_INET6) {
            add_local(local, APR_INET6,
                      &((struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr);
        }
    }
    freeifaddrs(ifs);
}

void ct_resolve_local_addresses(apr_pool_t *p, server_rec *s)
{
    ap_listen_rec *lr;

    ct_local = apr_array_make(p, 8, sizeof(ct_net));
    for (lr = ap_listeners; lr != NULL; lr = lr->next) {
        apr_sockaddr_t *sa = lr->bind_addr;

        if (!apr_sockaddr_is_wildcard(sa)) {
            add_local(ct_local, sa->family, sa->ipaddr_ptr);
        }
    }
    /* Every address of this host, whatever httpd listens on: services
     * bound to 0.0.0.0 answer on all of them, as on loopback. */
    add_interfaces(ct_local, s);
}

/* Note the names of one hosts file line ("address name alias..."). */
static void add_hosts_line(apr_pool_t *p, char *line)
{
    char *hash = strchr(line, '#'), *last, *word;

    if (hash != NULL) {
        *hash = '\0';
    }
    /* The first word is the address. */
    if (apr_strtok(line, " \t\r\n", &last) == NULL) {
        return;
    }
    while ((word = apr_strtok(NULL, " \t\r\n", &last)) != NULL) {
        word = apr_pstrdup(p, word);
        ap_str_tolower(word);
        apr_hash_set(ct_hosts_names, word, APR_HASH_KEY_STRING, word);
    }
}

void ct_resolve_hosts_names(apr_pool_t *p, server_rec *s)
{
    char line[CT_HOSTS_LINE_MAX];
    apr_file_t *f;
    apr_status_t rv;
    int whole = 1;

    ct_hosts_names = apr_hash_make(p);
    rv = apr_file_open(&f, _PATH_HOSTS, APR_FOPEN_READ | APR_FOPEN_BUFFERED,
                       APR_OS_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, CT_LOGNO(00120)
                     "cannot read %s: every target name is looked up as "
                     "an absolute DNS name", _PATH_HOSTS);
        return;
    }
    while (apr_file_gets(line, sizeof(line), f) == APR_SUCCESS) {
        /* Only whole lines count: a piece of a longer one could start
         * with a name that would be taken for an address.  A line ends
         * at a newline, or at the end of the file (a short read). */
        int ends = strchr(line, '\n') != NULL
                   || strlen(line) < sizeof(line) - 1;

        if (whole && ends) {
            add_hosts_line(p, line);
        }
        whole = ends;
    }
    apr_file_close(f);
}

/*
 * The name to give the resolver for a target.  A name with a final dot is
 * absolute: the resolver never tries it below the search list's domains
 * (resolv.conf "search", whatever "ndots" says), so the name the rules
 * and ProxyBlock checked is the name resolved.  A name the hosts file
 * lists keeps its form, since the hosts file does not match a name
 * written with a final dot.
 */
const char *ct_resolve_name(apr_pool_t *p, const ct_target *t)
{
    apr_size_t len = strlen(t->host);
    char *lower;

    if (t->kind != CT_HOST_NAME || (len > 0 && t->host[len - 1] == '.')) {
        return t->host;
    }
    lower = apr_pstrdup(p, t->host);
    ap_str_tolower(lower);
    if (ct_hosts_names
        && apr_hash_get(ct_hosts_names, lower, APR_HASH_KEY_STRING)) {
        return t->host;
    }
    return apr_pstrcat(p, t->host, ".", NULL);
}

const char *ct_resolve_address_denied(apr_pool_t *p,
                                      const ct_dest_policy *pol,
                                      const ct_net *addr)
{
    const char *set;

    /* Rules that allowed the name already leave the guard to decide. */
    if (!pol->decided) {
        ct_verdict v = ct_rules_check(pol->rules, pol->name, addr);

        if (v.action != 0) {
            return v.action == CT_DENY ? v.why : NULL;
        }
    }
    if (!pol->default_deny) {
        return NULL;
    }
    set = ct_default_denies(addr, ct_local);
    return set ? apr_pstrcat(p, "the default guard (", set, ")", NULL)
               : NULL;
}
