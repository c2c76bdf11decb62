/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_alog_needs.c: what the server's access logs read of a request.
 *
 * A handed-off tunnel keeps what its end-of-tunnel line needs for as long
 * as it runs: with 10,000 idle tunnels a whole request (its line, every
 * header, note and variable, some 600 bytes) came to 6 MiB a server.
 * mod_log_config keeps its formats to itself, but they come from the
 * configuration, which stays readable in ap_conftree (mod_info shows it
 * from there): the CustomLog, GlobalLog, TransferLog and LogFormat lines
 * name every item a line can print and every variable a condition tests.
 * What none of them names is not kept; with no access log at all nothing
 * is.  Whatever cannot be read that way (a format item another module
 * registered, an expr= condition, a log_transaction hook of a module
 * other than mod_log_config, mod_logio and mod_log_forensic) keeps the
 * whole request, as before.
 */

#include "httpd.h"
#include "apr_strings.h"
#include "apr_lib.h"

#include "http_config.h"
#include "http_protocol.h"
#include "util_cfgtree.h"

#include "ct_private.h"
#include "ct_alog_needs.h"

/* What mod_log_config's default format prints (TransferLog, or a
 * CustomLog whose format is a nickname defined nowhere). */
#define CT_CLF "%h %l %u %t \"%r\" %>s %b"

/* The letters of mod_log_config, mod_logio (%I %O %S) and mod_ssl (%c,
 * %x: they read the connection's TLS state, which a rebuilt connection
 * has none of); two-letter items follow a '^'. */
#define CT_KNOWN_LETTERS "aABbCDefhHiklLmnopPqrRstTuUvVXIOScx%"
#define CT_KNOWN_CARETS " ti to FB "

static void all(ct_alog_needs *n, const char *why)
{
    if (n->level != CT_ALOG_ALL) {
        n->level = CT_ALOG_ALL;
        n->why = why;
    }
}

static void add_key(ct_alog_needs *n, int table, const char *key)
{
    *(const char **)apr_array_push(n->keys[table]) = key;
}

/* One format item: its letter and its {argument}, if any. */
static void item(ct_alog_needs *n, apr_pool_t *p, char letter,
                 const char *arg, apr_size_t arglen)
{
    const char *key = arg ? apr_pstrmemdup(p, arg, arglen) : "";

    if (letter == '\0' || strchr(CT_KNOWN_LETTERS, letter) == NULL) {
        all(n, apr_psprintf(p, "the format item %%%c", letter));
        return;
    }
    n->letter[(unsigned char)letter] = 1;
    switch (letter) {
    case 'i':
        add_key(n, CT_ALOG_KEYS_IN, key);
        break;
    case 'C':
        add_key(n, CT_ALOG_KEYS_IN, "Cookie");
        break;
    case 'o':
        add_key(n, CT_ALOG_KEYS_OUT, key);
        break;
    case 'n':
        add_key(n, CT_ALOG_KEYS_NOTES, key);
        break;
    case 'e':
        add_key(n, CT_ALOG_KEYS_ENV, key);
        break;
    default:
        break;
    }
}

/*
 * The items of a format string, read as mod_log_config reads them:
 * '%', then status conditions ("!200,304"), '<' or '>' and an
 * "{argument}" in any order, then a letter or '^' and two letters.
 */
static void scan_format(ct_alog_needs *n, apr_pool_t *p, const char *s)
{
    while ((s = strchr(s, '%')) != NULL) {
        const char *arg = NULL, *end;
        apr_size_t arglen = 0;

        for (s++; *s; s++) {
            if (*s == '{') {
                if ((end = strchr(s, '}')) == NULL) {
                    return;     /* mod_log_config refused it */
                }
                arg = s + 1;
                arglen = (apr_size_t)(end - arg);
                s = end;
            }
            else if (*s != '!' && *s != '<' && *s != '>' && *s != ','
                     && !apr_isdigit(*s)) {
                break;
            }
        }
        if (*s != '^') {
            item(n, p, *s, arg, arglen);
            if (*s == '\0') {
                return;
            }
            s++;
            continue;
        }
        if (s[1] == '\0' || s[2] == '\0'
            || strstr(CT_KNOWN_CARETS,
                      apr_psprintf(p, " %.2s ", s + 1)) == NULL) {
            all(n, "a format item %^ of another module");
            return;
        }
        s += 3;
    }
}

/* CustomLog or GlobalLog: file, format or nickname, condition. */
static void scan_custom(ct_alog_needs *n, apr_pool_t *p, const char *args)
{
    const char *fmt, *cond;

    (void)ap_getword_conf(p, &args);
    fmt = ap_getword_conf(p, &args);
    cond = ap_getword_conf(p, &args);
    scan_format(n, p, fmt);
    if (ap_cstr_casecmpn(cond, "env=", 4) == 0) {
        cond += 4;
        add_key(n, CT_ALOG_KEYS_ENV, *cond == '!' ? cond + 1 : cond);
    }
    else if (*cond) {
        all(n, "a CustomLog condition other than env=");
    }
}

/* Every directive, sections included. @return whether a log is opened */
static int scan_tree(ct_alog_needs *n, apr_pool_t *p,
                     const ap_directive_t *d)
{
    int logs = 0;

    for (; d != NULL; d = d->next) {
        const char *dir = d->directive, *args = d->args;

        if (d->first_child && scan_tree(n, p, d->first_child)) {
            logs = 1;
        }
        if (ap_cstr_casecmp(dir, "CustomLog") == 0
            || ap_cstr_casecmp(dir, "GlobalLog") == 0) {
            scan_custom(n, p, args);
            logs = 1;
        }
        else if (ap_cstr_casecmp(dir, "TransferLog") == 0) {
            logs = 1;
        }
        else if (ap_cstr_casecmp(dir, "LogFormat") == 0) {
            scan_format(n, p, ap_getword_conf(p, &args));
        }
        else if (ap_cstr_casecmp(dir, "CookieLog") == 0) {
            all(n, "CookieLog");
            logs = 1;
        }
        else if (ap_cstr_casecmp(dir, "ForensicLog") == 0) {
            add_key(n, CT_ALOG_KEYS_NOTES, "forensic-id");
            logs = 1;
        }
    }
    return logs;
}

static const char *base_name(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;

    return slash ? slash + 1 : path;
}

/* The first log_transaction hook of a module whose reading of a request
 * is unknown, or NULL. */
static const char *other_logger(void)
{
    static const char *const known[] = {
        "mod_log_config.c", "mod_logio.c", "mod_log_forensic.c", NULL
    };
    apr_array_header_t *hooks = ap_hook_get_log_transaction();
    const ap_LINK_log_transaction_t *h;
    const char *name;
    int i, j;

    if (hooks == NULL) {
        return NULL;
    }
    h = (const ap_LINK_log_transaction_t *)hooks->elts;
    for (i = 0; i < hooks->nelts; i++) {
        name = base_name(h[i].szName);
        if (name == NULL) {
            return "an unnamed module";
        }
        if (strcmp(name, base_name(connect_tunnel_module.name)) == 0) {
            continue;
        }
        for (j = 0; known[j] && strcmp(name, known[j]) != 0; j++) {
        }
        if (known[j] == NULL) {
            return name;
        }
    }
    return NULL;
}

void ct_alog_needs_scan(ct_alog_needs *n, apr_pool_t *p, int forensic)
{
    const char *other;
    int i, logs;

    memset(n, 0, sizeof(*n));
    for (i = 0; i < CT_ALOG_KEYS_COUNT; i++) {
        n->keys[i] = apr_array_make(p, 4, sizeof(const char *));
    }
    n->level = CT_ALOG_SOME;
    logs = scan_tree(n, p, ap_conftree);
    if (logs) {
        scan_format(n, p, CT_CLF);
    }
    if (forensic) {
        add_key(n, CT_ALOG_KEYS_NOTES, "forensic-id");
    }
    if ((other = other_logger()) != NULL) {
        all(n, apr_pstrcat(p, "the log_transaction hook of ", other,
                           NULL));
    }
    else if (!logs) {
        n->level = CT_ALOG_NOTHING;
    }
}

int ct_alog_needs_key(const ct_alog_needs *n, int table, const char *key)
{
    const apr_array_header_t *a = n->keys[table];
    const char *const *k = (const char *const *)a->elts;
    int i;

    for (i = 0; i < a->nelts; i++) {
        if (ap_cstr_casecmp(k[i], key) == 0) {
            return 1;
        }
    }
    return 0;
}
