# Host-name rules (ConnectTunnelAllow/Deny NAME and *.DOMAIN) are decided
# on the CONNECT target before any DNS lookup.  To show that, the names
# here cannot resolve: had the module looked them up first, the answer
# would be 502 with error=dns_error, not the 403 of the rule.  Names no
# rule covers do go to DNS and fail that way, which shows what a rule
# does not match (a *.domain rule and the domain itself, a suffix that is
# not at a label boundary, a host rule and the names below it).
#
# Lookups of names that cannot resolve would reach the configured
# nameserver, so this file runs in a network namespace of its own where
# only loopback exists and such a query fails locally; its /etc/hosts is
# replaced there, to add names for the address rules that apply after
# DNS: a name with one denied and one allowed address must be dialled on
# the allowed one only, and an allow by name, with
# ConnectTunnelTrustAllowedNames On, trusts the name's addresses (the
# built-in guard included), as documented.  That the guard checks the
# addresses of allowed names by default is shown in 14_search_domains.t.
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use CT::Server qw(free_port in_netns);
use CT::Origin qw(listener take_accepts);
use CT::Client qw(ps_error relays tunnel_via);
use CT::Logs qw(log_mark log_since log_wait no_crash);

my $HOSTS = <<'EOF';
127.0.0.1 localhost
127.0.0.1 trusted.test
127.0.0.9 two.test
127.0.0.1 two.test
EOF

if (my $why = in_netns(hosts => $HOSTS)) {
    plan tests => 1, skip_reason("cannot build a network namespace: $why");
    exit 0;
}

my $TP = free_port();

# [port name, host, expected status, error type, what it shows,
#  optional log line]
my @cases = (
    [ main => 'blocked.example', 403, 'destination_ip_prohibited',
      'denied by name before DNS (the name cannot resolve)',
      qr/CT00016: tunnel to 'blocked\.example' refused by deny blocked\.example/ ],
    [ main => 'BLOCKED.Example.', 403, 'destination_ip_prohibited',
      'whatever the case, with a final dot' ],
    [ main => 'x.blocked.example', 502, 'dns_error',
      'a host rule does not cover the names below it' ],
    [ main => 'a.wild.example', 403, 'destination_ip_prohibited',
      '*.wild.example covers a name below it',
      qr/CT00016: tunnel to 'a\.wild\.example' refused by deny \*\.wild\.example/ ],
    [ main => 'a.b.wild.example', 403, 'destination_ip_prohibited',
      'and names further below' ],
    [ main => 'A.WILD.EXAMPLE.', 403, 'destination_ip_prohibited',
      'whatever the case, with a final dot' ],
    [ main => 'wild.example', 502, 'dns_error',
      '*.wild.example does not cover wild.example itself' ],
    [ main => 'xwild.example', 502, 'dns_error',
      'nor a name that merely ends in the same letters' ],
    [ main => 'allowed.wild.example', 403, 'destination_ip_prohibited',
      'an allow after the matching deny is never reached' ],
    [ main => 'trusted.test', 200, '',
      'a trusted allow by name decides before DNS: its loopback '
      . 'address is not checked, not even by the guard' ],
    [ main => 'localhost', 403, 'destination_ip_prohibited',
      'the guard still denies other names for loopback' ],
    [ off => 'two.test', 200, '',
      'of two addresses the denied one is skipped, the other dialled',
      qr/CT00029: address 127\.0\.0\.9:\d+ of 'two\.test' denied by deny 127\.0\.0\.9/ ],
    [ proxy => 'x.inner.example', 403, 'destination_ip_prohibited',
      'a <Proxy> deny ahead of the vhost allow of the same name' ],
    [ proxy => 'y.outer.example', 403, 'destination_ip_prohibited',
      'a vhost *.domain deny under a <Proxy> without name rules' ],
    [ proxy => 'z.other.example', 502, 'dns_error',
      'neither: looked up' ],
);

plan tests => @cases + 3;

my %port = (main => free_port(), off => free_port(), proxy => free_port());
my $srv = CT::Server->start(port => $port{main}, relay => 1, threads => 16,
                            config => <<"EOF");
Listen 127.0.0.1:$port{main}
Listen 127.0.0.1:$port{off}
Listen 127.0.0.1:$port{proxy}
ProxyRequests On
AllowCONNECT all
<Proxy "*">
    Require all granted
</Proxy>
ConnectTunnelDeny blocked.example
ConnectTunnelDeny *.wild.example
ConnectTunnelAllow allowed.wild.example
ConnectTunnelAllow trusted.test
ConnectTunnelTrustAllowedNames On
<VirtualHost 127.0.0.1:$port{off}>
    ConnectTunnelDefaultDeny Off
    ConnectTunnelDeny 127.0.0.9
</VirtualHost>
<VirtualHost 127.0.0.1:$port{proxy}>
    ConnectTunnelAllow x.inner.example
    ConnectTunnelDeny *.outer.example
    <Proxy "*">
        Require all granted
        ConnectTunnelDeny *.inner.example
    </Proxy>
</VirtualHost>
EOF
my $start = log_mark($srv->{error_log});

# Listeners on both addresses two.test has, and on 127.0.0.1 for the
# others: a denied tunnel must reach none of them.
my @trap = (listener(addr => '0.0.0.0', take_all => 1, port => $TP),
            listener(addr => '::', take_all => 1, port => $TP));

for my $c (@cases) {
    my ($which, $host, $want, $type, $what, $log) = @$c;
    my $mark = log_mark($srv->{error_log});
    my ($s, $status, $h) = tunnel_via($port{$which}, "$host:$TP");
    my @got = take_accepts($want == 200 ? 5 : 0, @trap);
    my $ok;
    if ($want == 200) {
        $ok = $status == 200 && @got == 1 && relays($s, $got[0], $host)
              && $got[0]->sockhost eq '127.0.0.1';
    }
    else {
        $ok = $status == $want && ps_error($h) eq $type && !@got;
    }
    $ok &&= log_wait($mark, $log, 5, line => 1, log => $srv->{error_log},
                     default => '') ne '' if $log;
    ok $ok or t_debug("$which $host ($what): expected $want '$type', got "
                      . "$status '" . ps_error($h) . "', " . scalar(@got)
                      . " connection(s)" . ($log ? "; log wanted $log" : ''));
    close $_ for $s, @got;
}

# Nothing was looked up for the names decided by a rule: the lookups the
# server logged as failed are exactly those of the names no rule covers.
{
    my @failed = log_since($start, $srv->{error_log})
                 =~ /CT00028: dns lookup of '([^']+)' failed/g;
    my @want = sort map { $_->[1] } grep { $_->[3] eq 'dns_error' } @cases;
    ok "@{[sort @failed]}" eq "@want"
        or t_debug("failed lookups: @failed; expected: @want");
}

# Still serving, nothing crashed.
{
    my ($s, $status) = tunnel_via($port{main}, "trusted.test:$TP");
    my @got = take_accepts(5, @trap);
    ok $status == 200 && @got == 1 && relays($s, $got[0], 'last');
    close $_ for $s, @got;
}
ok no_crash($start, $srv->{error_log})
   && $srv->stop;
