# The built-in SSRF guard, end to end, as an admin gets it by default.
#
# The shared test server cannot show it: its main server allows loopback
# for every other suite.  So this file starts its own httpd whose whole
# configuration is "ProxyRequests On", "AllowCONNECT all" and a <Proxy *>
# that grants everyone, and checks that no client can reach loopback,
# link-local, metadata, unspecified or multicast destinations by any
# spelling of the address or through any name: each attempt must be
# answered 403 with "Proxy-Status: ...; error=destination_ip_prohibited"
# (or 400 with error=http_request_error for spellings the target parser
# rejects), while a listener on every local address at that port never
# gets a connection.
#
# Some of those destinations are not on this machine (169.254.169.254,
# fe80::1, fd00:ec2::254, 224.0.0.1, ff02::1...).  A bug that let one
# through would send a packet out, so the whole file runs in a network
# namespace of its own with nothing but loopback: there such a bug fails
# with "network unreachable" and nothing leaves.  The same namespace has
# its own /etc/hosts, so that names resolving to each kind of address can
# be tried, and makes DNS failure (dns_error) safe to provoke: the query
# to the configured nameserver fails locally.
#
# A second server shows what turns the guard off or around it:
# ConnectTunnelDefaultDeny Off in a virtual host, in <Proxy *> and in a
# <ProxyMatch> for one destination only, and an explicit allow rule.  It
# listens on a wildcard address, which makes the guard deny this host's
# own interface addresses too; the first server (loopback Listen only) is
# asked about those as well.
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use CT::Server qw(free_port in_netns);
use CT::Origin qw(listener take_accepts);
use CT::Client qw(ps_error relays tunnel_via);
use CT::Logs qw(log_mark log_since no_crash);

# Addresses of this host (inside the namespace only) that are neither
# loopback nor in any guarded set: documentation prefixes.
my $OWN4 = '198.51.100.1';
my $OWN6 = '2001:db8::1';

# The namespace's /etc/hosts: names for every kind of guarded address.
# "localhost." stands for what a real resolver answers for it (RFC 6761);
# glibc's files backend would otherwise send it to DNS.
my $HOSTS = <<"EOF";
127.0.0.1 localhost localhost.
169.254.169.254 metadata.test
::1 v6loop.test
::ffff:127.0.0.1 mapped.test
127.0.0.1 mixed.test
169.254.169.254 mixed.test
fe80::1 ll6.test
0.0.0.0 zero.test
$OWN4 own4.test
$OWN6 own6.test
EOF

if (my $why = in_netns(addresses => ["$OWN4/32", "$OWN6/128 nodad"],
                       hosts => $HOSTS)) {
    plan tests => 1, skip_reason("cannot build a network namespace: $why");
    exit 0;
}

# Where the trap listens: every address of the namespace, one port.
my $TP = free_port();

# [target, expected status, why]; 400: the parser rejects the spelling
# before anything else, 403: a guarded address, literal or resolved.
# A fourth element 'core': httpd itself always rejects the spelling.
my @guarded = (
    [ "127.0.0.1:$TP",               403, 'loopback' ],
    [ "127.0.0.2:$TP",               403, 'another loopback address' ],
    [ "127.255.255.254:$TP",         403, 'top of 127/8' ],
    [ "[::1]:$TP",                   403, 'IPv6 loopback' ],
    [ "[0:0:0:0:0:0:0:1]:$TP",       403, 'IPv6 loopback, long form' ],
    [ "[0000:0000:0000:0000:0000:0000:0000:0001]:$TP", 403,
      'IPv6 loopback, zero-padded' ],
    [ "[::ffff:127.0.0.1]:$TP",      403, 'IPv4-mapped loopback' ],
    [ "[::ffff:7f00:1]:$TP",         403, 'IPv4-mapped loopback in hex' ],
    [ "[::FFFF:7F00:1]:$TP",         403, 'IPv4-mapped, upper case' ],
    [ "[::127.0.0.1]:$TP",           403, 'IPv4-compatible loopback' ],
    [ "[64:ff9b::7f00:1]:$TP",       403, 'NAT64 of loopback' ],
    [ "[64:ff9b::127.0.0.1]:$TP",    403, 'NAT64 of loopback, dotted' ],
    [ "localhost:$TP",               403, 'a name for loopback' ],
    [ "localhost.:$TP",              403, 'the same with a final dot' ],
    [ "LOCALHOST:$TP",               403, 'the same in capitals' ],
    [ "v6loop.test:$TP",             403, 'a name for ::1' ],
    [ "mapped.test:$TP",             403, 'a name for ::ffff:127.0.0.1' ],
    [ "2130706433:$TP",              400, 'loopback as one decimal number' ],
    [ "0x7f.1:$TP",                  400, 'hex and short form' ],
    [ "0x7f000001:$TP",              400, 'one hex number' ],
    [ "0177.0.0.1:$TP",              400, 'octal first part' ],
    [ "017700000001:$TP",            400, 'one octal number' ],
    [ "127.1:$TP",                   400, 'short dotted form' ],
    [ "127.000.000.001:$TP",         400, 'leading zeros' ],
    [ "127.0.0.1.:$TP",              400, 'dotted quad with a final dot' ],
    [ "0.0.0.0:$TP",                 400, 'unspecified (this host)' ],
    [ "[::]:$TP",                    400, 'IPv6 unspecified' ],
    [ "[::ffff:0.0.0.0]:$TP",        400, 'IPv4-mapped unspecified' ],
    [ "0.1.2.3:$TP",                 403, 'elsewhere in 0/8 ("this network")' ],
    [ "zero.test:$TP",               403, 'a name for 0.0.0.0' ],
    # httpd rejects a zone id itself, even with HttpProtocolOptions
    # Unsafe (AH00550), so the module never sees one.
    [ "[fe80::1%lo]:$TP",            400, 'IPv6 with a zone id', 'core' ],
    [ "169.254.169.254:$TP",         403, 'cloud metadata' ],
    [ "[::ffff:169.254.169.254]:$TP", 403, 'metadata, IPv4-mapped' ],
    [ "[::169.254.169.254]:$TP",     403, 'metadata, IPv4-compatible' ],
    [ "[64:ff9b::a9fe:a9fe]:$TP",    403, 'metadata through NAT64' ],
    [ "metadata.test:$TP",           403, 'a name for metadata' ],
    [ "169.254.170.2:$TP",           403, 'ECS task metadata' ],
    [ "100.100.100.200:$TP",         403, 'Alibaba metadata' ],
    [ "[fd00:ec2::254]:$TP",         403, 'IPv6 instance metadata' ],
    [ "169.254.0.1:$TP",             403, 'link-local' ],
    [ "[fe80::1]:$TP",               403, 'IPv6 link-local' ],
    [ "ll6.test:$TP",                403, 'a name for fe80::1' ],
    [ "mixed.test:$TP",              403, 'a name with two guarded addresses' ],
    [ "224.0.0.1:$TP",               403, 'multicast' ],
    [ "[ff02::1]:$TP",               403, 'IPv6 multicast' ],
);

# This host's own non-loopback addresses: a tunnel there reaches every
# service listening on a wildcard address, as loopback would.
my @own = (
    [ "$OWN4:$TP",        'own IPv4 address' ],
    [ "[$OWN6]:$TP",      'own IPv6 address' ],
    [ "own4.test:$TP",    'a name for the own IPv4 address' ],
    [ "[::ffff:$OWN4]:$TP", 'own IPv4 address, IPv4-mapped' ],
);

plan tests => 2 * @guarded + 2 + 2 * @own + 14;

my @trap = (listener(addr => '0.0.0.0', take_all => 1, port => $TP),
            listener(addr => '::', take_all => 1, port => $TP));

# Refused with the status and Proxy-Status type expected, and nothing
# reached the trap.  httpd's own strict request parsing (the default
# HttpProtocolOptions Strict) answers 400 to some numeric spellings
# before the module sees them (AH02416), without a Proxy-Status; with
# $module400 the 400 must come from the module's parser (error type
# http_request_error).
sub refused {
    my ($port, $target, $want, $why, $module400) = @_;
    my ($s, $status, $h) = tunnel_via($port, $target);
    my $type = ps_error($h);
    # The module dials before it answers, so a connection it made is
    # already in the trap's queue when the answer arrives.
    my @reached = take_accepts(0, @trap);
    my $type_ok = $want == 403 ? $type eq 'destination_ip_prohibited'
                : $module400   ? $type eq 'http_request_error'
                :                $type eq 'http_request_error'
                                 || !exists $h->{'proxy-status'};
    ok $status == $want && $type_ok && !@reached
        or t_debug("$target ($why): got $status '$type', "
                   . scalar(@reached) . " connection(s) reached the trap");
}

# --- Server A: nothing configured but the proxy itself. ---
my $pa = free_port();
my $a = CT::Server->start(port => $pa, relay => 1, threads => 16,
                          config => <<"EOF");
Listen 127.0.0.1:$pa
ProxyRequests On
AllowCONNECT all
<Proxy "*">
    Require all granted
</Proxy>
EOF
my $mark_a = log_mark($a->{error_log});

refused($pa, @$_[0 .. 2]) for @guarded;

# A name the namespace's hosts file does not know goes to DNS, which
# fails here without anything leaving: 502 and error=dns_error.
{
    my ($s, $status, $h) = tunnel_via($pa, "no-such-name.test:$TP");
    ok $status == 502 && ps_error($h) eq 'dns_error'
        or t_debug("unknown name: got $status '" . ps_error($h) . "'");
    ok log_since($mark_a, $a->{error_log})
           =~ /CT00028: dns lookup of 'no-such-name\.test' failed/
        or t_debug('no CT00028 line for the failed lookup');
}

# The own addresses, with a loopback-only Listen.
for (@own) {
    my ($target, $why) = @$_;
    refused($pa, $target, 403, "$why (server listens on loopback only)");
}

$a->stop;

# --- Server B: a wildcard Listen, and the ways around the guard. ---
my ($pb, $p_vh, $p_px, $p_pm, $p_rule, $p_lax) = map { free_port() } 1 .. 6;
my $b = CT::Server->start(port => $pb, relay => 1, threads => 16,
                          config => <<"EOF");
Listen 0.0.0.0:$pb
Listen 127.0.0.1:$p_vh
Listen 127.0.0.1:$p_px
Listen 127.0.0.1:$p_pm
Listen 127.0.0.1:$p_rule
Listen 127.0.0.1:$p_lax
ProxyRequests On
AllowCONNECT all
<Proxy "*">
    Require all granted
</Proxy>
# The guard off for a whole virtual host.
<VirtualHost 127.0.0.1:$p_vh>
    ConnectTunnelDefaultDeny Off
</VirtualHost>
# The guard off inside <Proxy *>.
<VirtualHost 127.0.0.1:$p_px>
    <Proxy "*">
        Require all granted
        ConnectTunnelDefaultDeny Off
    </Proxy>
</VirtualHost>
# The guard off for one destination only.
<VirtualHost 127.0.0.1:$p_pm>
    <ProxyMatch "^127\\.0\\.0\\.1:">
        ConnectTunnelDefaultDeny Off
    </ProxyMatch>
</VirtualHost>
# The guard on, one loopback address allowed by a rule.
<VirtualHost 127.0.0.1:$p_rule>
    ConnectTunnelAllow 127.0.0.3
</VirtualHost>
# httpd's own host checks relaxed: the module's parser alone decides.
<VirtualHost 127.0.0.1:$p_lax>
    HttpProtocolOptions Unsafe
</VirtualHost>
EOF
my $mark_b = log_mark($b->{error_log});

# Every spelling again where httpd does not reject numeric host names
# itself: the module's target parser must (400, http_request_error).
refused($p_lax, @$_[0 .. 2], !$_->[3]) for @guarded;

# Own addresses, now that the server listens on a wildcard address.
for (@own) {
    my ($target, $why) = @$_;
    refused($pb, $target, 403, "$why (server listens on 0.0.0.0)");
}

# A tunnel that must work: 200, one connection at the trap, bytes relayed.
sub works {
    my ($port, $target, $why) = @_;
    my ($s, $status) = tunnel_via($port, $target);
    my @got = take_accepts(5, @trap);
    my $ok = $status == 200 && @got == 1 && relays($s, $got[0], $why);
    ok $ok or t_debug("$target ($why): got $status, "
                      . scalar(@got) . " connection(s) at the trap");
    close $_ for $s, @got;
}

works($p_vh, "127.0.0.1:$TP", 'DefaultDeny Off in the virtual host');
works($p_vh, "[::1]:$TP", 'DefaultDeny Off, IPv6 loopback');
works($p_vh, "localhost:$TP", 'DefaultDeny Off, a name for loopback');
works($p_px, "127.0.0.1:$TP", 'DefaultDeny Off in <Proxy *>');
works($p_px, "[::ffff:127.0.0.1]:$TP", 'DefaultDeny Off, IPv4-mapped');
works($p_pm, "127.0.0.1:$TP", 'DefaultDeny Off in a matching <ProxyMatch>');
refused($p_pm, "127.0.0.2:$TP", 403,
        'a <ProxyMatch> that does not match leaves the guard on');
works($p_rule, "127.0.0.3:$TP", 'ConnectTunnelAllow before the guard');
refused($p_rule, "127.0.0.4:$TP", 403, 'the guard still denies the rest');
ok log_since($mark_b, $b->{error_log})
       =~ /CT00016: tunnel to '127\.0\.0\.4' refused by the default guard \(loopback\)/
    or t_debug('no CT00016 line naming the guard');

# The main server (guard on) still refuses loopback.
refused($pb, "127.0.0.1:$TP", 403, 'guard on in the main server');

# Nothing crashed, and a good tunnel still works at the end.
works($p_vh, "127.0.0.1:$TP", 'a good tunnel after all of the above');
ok no_crash($mark_b, $b->{error_log}) && no_crash($mark_a, $a->{error_log})
    or t_debug('a child died: ' . log_since($mark_b, $b->{error_log}));
ok $b->stop;
