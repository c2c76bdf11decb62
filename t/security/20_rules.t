# ConnectTunnelAllow and ConnectTunnelDeny in the shared test server:
# single addresses, IPv4 and IPv6 CIDRs, IPv4-mapped networks, named
# sets, host names and *.domains, in a virtual host and in <Proxy> and
# <ProxyMatch> sections.  The first rule that matches decides; a section's
# rules are checked before the virtual host's, which come before the main
# server's "ConnectTunnelAllow loopback" (extra.conf.in).  A name is
# checked against name rules before DNS and against address rules after
# it.  Each case says what it shows; the virtual hosts are in
# t/conf/security.conf.in.
#
# A refusal must be 403 with "Proxy-Status: ...; error=
# destination_ip_prohibited" and no connection at the origin; an allowed
# tunnel must be 200, reach the origin (one connection) and relay bytes
# both ways.  Every origin listens on a loopback address; every name used
# resolves from /etc/hosts (localhost) or is decided before DNS.
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use CT::Origin qw(listener take_accepts);
use CT::Client qw(ps_error relays tunnel_via vhost_port);
use CT::Logs qw(log_mark log_since log_wait no_crash);

# [virtual host, host (target), origin address, expected, what it shows,
#  optional log line expected]
my @cases = (
    # Rules in the virtual host.
    [ ct_sec_rules => '127.0.0.1', '127.0.0.1', 200,
      'no rule of the vhost matches: the main server allow decides' ],
    [ ct_sec_rules => '127.0.0.2', '127.0.0.2', 403,
      'one IPv4 address denied', qr/refused by deny 127\.0\.0\.2\b/ ],
    [ ct_sec_rules => '127.0.0.3', '127.0.0.3', 200,
      'the next address is not' ],
    [ ct_sec_rules => '127.0.0.17', '127.0.0.17', 403,
      'inside a denied /28' ],
    [ ct_sec_rules => '127.0.0.31', '127.0.0.31', 403,
      'last address of the /28' ],
    [ ct_sec_rules => '127.0.0.15', '127.0.0.15', 200,
      'just below the /28' ],
    [ ct_sec_rules => '127.0.0.33', '127.0.0.33', 200,
      'an allow ahead of a wider deny: first match wins' ],
    [ ct_sec_rules => '127.0.0.34', '127.0.0.34', 403,
      'the rest of that wider /27 is denied',
      qr/refused by deny 127\.0\.0\.32\/27/ ],
    [ ct_sec_rules => '[::1]', '::1', 403,
      'IPv6 /128 denied', qr/refused by deny ::1\/128/ ],
    [ ct_sec_rules => '127.0.0.65', '127.0.0.65', 403,
      'an IPv4-mapped /122 is the IPv4 127.0.0.64/26' ],
    [ ct_sec_rules => '[::ffff:127.0.0.65]', '127.0.0.65', 403,
      'the same address written IPv4-mapped' ],
    [ ct_sec_rules => '127.0.0.128', '127.0.0.128', 200,
      'outside the mapped network' ],
    [ ct_sec_rules => 'localhost', '127.0.0.1', 200,
      'a name whose address no vhost rule denies' ],

    # Order: the first rule that matches decides.
    [ ct_sec_order => '127.0.0.5', '127.0.0.5', 200,
      'allowed ahead of the 127/8 deny' ],
    [ ct_sec_order => '127.0.0.6', '127.0.0.6', 403,
      'denied by the 127/8 deny' ],
    [ ct_sec_order => 'localhost', '127.0.0.1', 403,
      'an address rule decides a name after DNS, ahead of a later allow '
      . 'of that name',
      qr/CT00030: tunnel to 'localhost' refused: every address it resolves to is denied \(first by deny 127\.0\.0\.0\/8\)/ ],
    [ ct_sec_order => '[::1]', '::1', 200,
      'IPv6 loopback is not in an IPv4 network' ],

    # A name allowed by name: decided before DNS, address not checked.
    [ ct_sec_nameallow => 'localhost', '127.0.0.1', 200,
      'allowed by name ahead of a deny of its address' ],
    [ ct_sec_nameallow => 'LOCALHOST', '127.0.0.1', 200,
      'names match whatever their case' ],
    [ ct_sec_nameallow => '127.0.0.1', '127.0.0.1', 403,
      'the same address as a literal is denied by the set',
      qr/CT00016: tunnel to '127\.0\.0\.1' refused by deny loopback/ ],
    [ ct_sec_nameallow => '[::1]', '::1', 403,
      'the loopback set holds ::1' ],
    [ ct_sec_nameallow => '[::ffff:127.0.0.1]', '127.0.0.1', 403,
      'and IPv4-mapped loopback' ],

    # A name denied by name, before DNS.
    [ ct_sec_namedeny => 'localhost', '127.0.0.1', 403,
      'denied by name before any lookup',
      qr/CT00016: tunnel to 'localhost' refused by deny localhost/ ],
    [ ct_sec_namedeny => 'LocalHost', '127.0.0.1', 403,
      'whatever its case' ],
    [ ct_sec_namedeny => '127.0.0.1', '127.0.0.1', 200,
      'a literal address is not a name' ],

    # "*.domain" is only what is below the domain.
    [ ct_sec_wild => 'localhost', '127.0.0.1', 200,
      '*.localhost does not cover localhost itself' ],

    # A named set in the virtual host, ahead of the inherited allow.
    [ ct_sec_set => '127.0.0.1', '127.0.0.1', 403,
      'the vhost deny of loopback comes before the main server allow' ],
    [ ct_sec_set => '127.255.255.254', '127.255.255.254', 403,
      'all of 127/8' ],
    [ ct_sec_set => '[::1]', '::1', 403, 'and ::1' ],
    [ ct_sec_set => '[::ffff:7f00:1]', '127.0.0.1', 403,
      'and IPv4-mapped loopback in hex' ],
    [ ct_sec_set => 'localhost', '127.0.0.1', 403,
      'and a name that resolves to it (after DNS)',
      qr/CT00030: tunnel to 'localhost' refused.*first by deny Loopback/ ],

    # <Proxy> and <ProxyMatch>: the sections' rules come first.
    [ ct_sec_proxy => '127.0.0.7', '127.0.0.7', 200,
      '<Proxy *> allow beats the vhost deny' ],
    [ ct_sec_proxy => '127.0.0.8', '127.0.0.8', 403,
      '<Proxy *> deny beats the vhost allow' ],
    [ ct_sec_proxy => '127.0.0.9', '127.0.0.9', 200,
      'no section or vhost rule: the main server allow' ],
    [ ct_sec_proxy => '127.0.0.10', '127.0.0.10', 403,
      'a deny in a matching <ProxyMatch>' ],
    [ ct_sec_proxy => '127.0.0.11', '127.0.0.11', 200,
      'a matching <ProxyMatch> without a rule for it' ],
    [ ct_sec_proxy => '127.0.0.12', '127.0.0.12', 200,
      'the later section (<ProxyMatch>) before the earlier (<Proxy *>)' ],
);

plan tests => @cases + 2;

my $start = log_mark();

for my $c (@cases) {
    my ($vhost, $host, $addr, $want, $what, $log) = @$c;
    my $l = listener(addr => $addr, take_all => 1);
    my $target = "$host:" . $l->sockport;
    my $mark = log_mark();
    my ($s, $status, $h) = tunnel_via(vhost_port($vhost), $target);
    my @got = take_accepts($want == 200 ? 5 : 0, $l);
    my $ok;
    if ($want == 200) {
        $ok = $status == 200 && @got == 1 && relays($s, $got[0], $target);
    }
    else {
        $ok = $status == $want && !@got
              && ps_error($h) eq 'destination_ip_prohibited';
    }
    $ok &&= log_wait($mark, $log, 5, line => 1,
                     default => '') ne '' if $log && $ok;
    ok $ok or t_debug("$vhost $target ($what): expected $want, got "
                      . "$status '" . ps_error($h) . "', " . scalar(@got)
                      . " connection(s) at the origin"
                      . ($log ? "; log wanted $log" : ''));
    close $_ for $s, @got, $l;
}

# The server survived all of it, and a good tunnel still works.
{
    my $l = listener(addr => '127.0.0.1', take_all => 1);
    my ($s, $status) = tunnel_via(vhost_port('ct_all'),
                                  '127.0.0.1:' . $l->sockport);
    my @got = take_accepts(5, $l);
    ok $status == 200 && @got == 1 && relays($s, $got[0], 'last');
    close $_ for $s, @got;
    ok no_crash($start);
}
