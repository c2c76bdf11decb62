#!/bin/sh
# Prints the modules the test server loads, from the paths apxs reports;
# Apache::Test inherits them as if from a system httpd.conf.
set -eu
libexec=$($1 -q LIBEXECDIR)
for m in mpm_event authz_core authz_host authz_user authn_core authn_file \
         auth_basic proxy ssl socache_shmcb env setenvif headers mime \
         alias status; do
    echo "LoadModule ${m}_module $libexec/mod_$m.so"
done
# Optional: tests that need these skip where they are not installed.
for m in remoteip; do
    if [ -f "$libexec/mod_$m.so" ]; then
        echo "LoadModule ${m}_module $libexec/mod_$m.so"
    fi
done
