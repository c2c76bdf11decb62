/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_alog_needs.h: what the server's access logs read of a request, so
 * that a handed-off tunnel keeps that much and no more until it ends.
 */

#ifndef CT_ALOG_NEEDS_H
#define CT_ALOG_NEEDS_H

#include "httpd.h"

/* How much of a request its end-of-tunnel line needs. */
typedef enum {
    CT_ALOG_NOTHING,    /* no logger would write anything */
    CT_ALOG_SOME,       /* the items of known log formats */
    CT_ALOG_ALL         /* a hook or an item that may read anything */
} ct_alog_level;

/* The tables a format reads by key. */
enum {
    CT_ALOG_KEYS_IN,    /* %{X}i, %C (Cookie) */
    CT_ALOG_KEYS_OUT,   /* %{X}o: headers_out and err_headers_out */
    CT_ALOG_KEYS_NOTES, /* %{X}n, mod_log_forensic's forensic-id */
    CT_ALOG_KEYS_ENV,   /* %{X}e, CustomLog's env= condition */
    CT_ALOG_KEYS_COUNT
};

typedef struct {
    ct_alog_level level;
    char letter[128];   /* format letters used (CT_ALOG_SOME) */
    apr_array_header_t *keys[CT_ALOG_KEYS_COUNT];  /* const char * */
    const char *why;    /* what made it CT_ALOG_ALL */
} ct_alog_needs;

/**
 * Read the configuration tree (ap_conftree) and the log_transaction
 * hooks: which access logs exist, which items their formats use, and
 * whether a logger other than mod_log_config, mod_logio and
 * mod_log_forensic would see the request.
 * @param forensic mod_log_forensic is loaded (its id is a note)
 */
void ct_alog_needs_scan(ct_alog_needs *n, apr_pool_t *p, int forensic);

/**
 * Whether a key of a table is needed (case-blind, as apr_table_get).
 */
int ct_alog_needs_key(const ct_alog_needs *n, int table, const char *key);

#endif /* CT_ALOG_NEEDS_H */
