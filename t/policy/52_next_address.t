# A name with two addresses is dialled in the resolver's order, and a
# failed address is not the end: after a refused connect and after one
# that hangs the next address is tried (RFC 8305: the next attempt starts
# 250 ms after the last, beside it), and a tunnel to it works.  When none accepts, the answer says why: 502 connection_refused
# (CT00027) when every address refused, 504 connection_timeout (CT00026)
# as soon as one of them timed out.
#
# The names come from a hosts file of this test's own, in a private
# network and mount namespace (the machine's /etc/hosts is left alone):
# two.test has two IPv4 loopback addresses, localhost has ::1 and
# 127.0.0.1.  The order the resolver returns is read here, not assumed.
# Both addresses of a case use one port: a refusing address is bound
# without listening, a timing-out one listens with a full accept queue
# (the kernel drops the SYNs), an accepting one listens.  A standalone
# httpd in the namespace has a connect timeout of 1 s.
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use IO::Socket::IP;
use Socket qw(getaddrinfo getnameinfo NI_NUMERICHOST SOCK_STREAM);
use Time::HiRes qw(time);
use CT::Server qw(free_port in_netns);
use CT::Origin qw(take_accepts);
use CT::Client qw(ps_error relays tunnel_via yes);
use CT::Logs qw(log_mark log_since log_wait no_crash);

my $HOSTS = <<'EOF_HOSTS';
127.0.0.1 localhost
::1 localhost
127.0.0.2 two.test
127.0.0.3 two.test
EOF_HOSTS

if (my $why = in_netns(hosts => $HOSTS)) {
    plan tests => 1, skip_reason("cannot build a network namespace: $why");
    exit 0;
}

# [description, name, first address's part, second's, status, error type]
my @cases = (
    [ 'refused, then accepted', 'two.test', 'refuse', 'accept', 200, '' ],
    [ 'timed out, then accepted', 'two.test', 'hang', 'accept', 200, '' ],
    [ 'IPv6 refused, then IPv4 accepted', 'localhost', 'refuse', 'accept',
      200, '' ],
    [ 'IPv6 timed out, then IPv4 accepted', 'localhost', 'hang', 'accept',
      200, '' ],
    [ 'both refused', 'two.test', 'refuse', 'refuse', 502,
      'connection_refused' ],
    [ 'refused, then timed out', 'two.test', 'refuse', 'hang', 504,
      'connection_timeout' ],
    [ 'timed out, then refused', 'two.test', 'hang', 'refuse', 504,
      'connection_timeout' ],
    [ 'both timed out', 'two.test', 'hang', 'hang', 504,
      'connection_timeout' ],
);

plan tests => 1 + 2 + 4 * @cases + 1;

my %order = map { $_ => [resolve($_)] } qw(two.test localhost);
ok t_cmp("@{ $order{'two.test'} }", '127.0.0.2 127.0.0.3',
         'two.test resolves to two addresses');
ok t_cmp(scalar @{ $order{localhost} }, 2,
         'localhost resolves to two addresses')
    or t_debug("localhost: @{ $order{localhost} }");
ok t_cmp(join(' ', sort @{ $order{localhost} }), '127.0.0.1 ::1',
         'localhost: 127.0.0.1 and ::1');

my $port = free_port();
my $srv = CT::Server->start(port => $port, relay => 1, threads => 16,
                            config => <<"EOF_CONF");
Listen 127.0.0.1:$port
ProxyRequests On
AllowCONNECT all
ConnectTunnelAllow loopback
ConnectTunnelConnectTimeout 1
LogLevel connect_tunnel:trace2
<Proxy "*">
    Require all granted
</Proxy>
EOF_CONF
my $log = $srv->{error_log};

for my $c (@cases) {
    my ($desc, $name, $first, $second, $want, $type) = @$c;
    my @addr = @{ $order{$name} };
    my $tport = free_port();
    my @keep = (part($addr[0], $tport, $first),
                part($addr[1], $tport, $second));
    my $what = "$desc ($name:$tport: $addr[0] then $addr[1])";
    my $mark = log_mark($log);
    my $t0 = time;
    my ($s, $status, $h) = tunnel_via($port, "$name:$tport", wait => 10);
    my $took = time - $t0;
    ok t_cmp($status, $want, "$what: status");
    my $text = log_since($mark, $log);
    my $q0 = quotemeta $addr[0];
    # A refused first address is logged as failed; a hanging one is not
    # waited for: the next attempt starts beside it (trace2).
    my $q1 = quotemeta $addr[1];
    my $tried = $first eq 'refuse'
                ? "CT00020: connect to \\[?$q0\\]?:$tport failed"
                : "connecting to \\[?$q1\\]?:$tport";
    ok t_cmp($text, qr/$tried/,
             "$what: the first address did not stop the next one");
    if ($want == 200) {
        my ($acc) = take_accepts(5, map { $_->{listen} // () } @keep);
        ok t_cmp(($acc ? $acc->sockhost : 'none'), $addr[1],
                 "$what: the second address got the connection");
        ok yes($acc && relays($s, $acc, $desc), "$what: the tunnel relays");
        close $acc if $acc;
    }
    else {
        my $tag = $want == 504 ? 'CT00026' : 'CT00027';
        $text = log_wait($mark, qr/$tag:/, 5, line => 1, log => $log,
                         default => '') ? log_since($mark, $log)
                                                     : $text;
        ok t_cmp($text, qr/$tag:/, "$what: $tag logged");
        ok t_cmp(ps_error($h), $type, "$what: Proxy-Status $type");
    }
    t_debug(sprintf "$what: %.2f s", $took);
    close $s if $s;
}

ok yes(no_crash(0, $log), 'no child crashed');
$srv->stop;

# The addresses a name resolves to, in the resolver's order.
sub resolve {
    my $name = shift;
    my ($err, @r) = getaddrinfo($name, 80, { socktype => SOCK_STREAM });
    return () if $err;
    return map { (getnameinfo($_->{addr}, NI_NUMERICHOST))[1] } @r;
}

# One address's part in a case: a socket on $addr:$port that refuses
# (bound, not listening), hangs (a full accept queue: listen(0) and one
# connection of ours queued) or accepts.  Returns what must stay open.
sub part {
    my ($addr, $port, $how) = @_;
    my $s = IO::Socket::IP->new(LocalHost => $addr, LocalPort => $port,
                                Proto => 'tcp', ReuseAddr => 1,
                                ($addr =~ /:/ ? (V6Only => 1) : ()))
        or die "bind $addr:$port: $@";
    return { sock => $s } if $how eq 'refuse';
    if ($how eq 'accept') {
        listen($s, 16) or die "listen $addr:$port: $!";
        $s->blocking(0);
        return { sock => $s, listen => $s };
    }
    listen($s, 0) or die "listen $addr:$port: $!";
    my @queued;
    for (1 .. 2) {
        my $q = IO::Socket::IP->new(PeerHost => $addr, PeerPort => $port,
                                    Timeout => 1);
        push @queued, $q if $q;
    }
    return { sock => $s, queued => \@queued };
}
