# A CONNECT refused on the request alone (a port outside AllowCONNECT, a
# name in ProxyBlock, a name a destination rule denies) must cause no DNS
# query: otherwise anyone allowed to use the proxy can make it ask the
# resolver about any name (a side channel), and a refusal costs a lookup.
# With ProxyRemote plus a NoProxy address or network, mod_proxy resolves
# the target while it chooses the route, before the scheme handler runs;
# the module decides these refusals earlier, in the canon hook.  A
# loopback DNS responder (CT::DNS) writes down every question; this file
# runs in its own network and mount namespace, whose resolv.conf points at
# it.  A target nothing refuses is looked up, which shows that the
# responder does see the server's queries.
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use File::Temp qw(tempdir);
use CT::Server qw(free_port in_netns);
use CT::Client qw(ps_error tunnel_via);
use CT::Logs qw(log_mark log_wait no_crash);
use CT::DNS;

if (my $why = in_netns('resolv.conf' => CT::DNS::resolv_conf())) {
    plan tests => 1, skip_reason("cannot build a network namespace: $why");
    exit 0;
}

# [target, status, Proxy-Status error, log tag, what it shows]
my @cases = (
    [ 'port-refused.test:25', 403, 'http_request_denied', 'CT00011',
      'a port outside AllowCONNECT' ],
    [ 'www.pblocked.test:443', 403, 'http_request_denied', 'CT00012',
      'a name in ProxyBlock' ],
    [ 'rule-denied.test:443', 403, 'destination_ip_prohibited', 'CT00016',
      'a name a destination rule denies' ],
    [ 'BIG.Rule-Denied.Test.:443', 403, 'destination_ip_prohibited',
      'CT00016', 'a name below a denied domain, in another spelling' ],
);

plan tests => 3 * @cases + 3;

my $dir = tempdir('ct-dns-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $dns = CT::DNS->start(log => "$dir/queries",
                         records => { 'looked-up.test' => ['192.0.2.1'] });
my $port = free_port();
my $up = free_port();       # nothing listens: the upstream is down
my $srv = CT::Server->start(port => $port, relay => 1, threads => 16,
                            config => <<"EOF");
Listen 127.0.0.1:$port
ProxyRequests On
AllowCONNECT 443
ProxyRemote * http://127.0.0.1:$up
NoProxy 198.51.100.0/24
ProxyBlock pblocked
ConnectTunnelDeny rule-denied.test *.rule-denied.test
ProxyTimeout 2
<Proxy "*">
    Require all granted
</Proxy>
EOF
my $start = log_mark($srv->{error_log});

for my $c (@cases) {
    my ($target, $want, $type, $tag, $what) = @$c;
    (my $name = lc $target) =~ s/\.?:\d+$//;
    my $mark = log_mark($srv->{error_log});
    my ($s, $status, $h) = tunnel_via($port, $target);
    ok t_cmp("$status " . ps_error($h), "$want $type",
             "$what ($target): status and Proxy-Status");
    ok t_cmp(log_wait($mark, qr/$tag: tunnel to /, 5,
                      line => 1, log => $srv->{error_log}, default => '')
             ne '' ? 1 : 0, 1, "$what: $tag logged");
    ok t_cmp($dns->count($name), 0, "$what: no DNS query for $name");
    close $s;
}

# The control: a target nothing refuses is looked up (NoProxy's test of
# the route, then the upstream, which is down: 502).
{
    my ($s, $status) = tunnel_via($port, 'looked-up.test:443');
    ok t_cmp($status, 502, 'a target nothing refuses: the upstream is down');
    ok t_cmp($dns->count('looked-up.test') > 0 ? 1 : 0, 1,
             'and the responder saw its lookup');
    close $s;
}
$dns->stop;
ok no_crash($start, $srv->{error_log}) && $srv->stop;
