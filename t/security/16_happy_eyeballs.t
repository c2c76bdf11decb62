# A name with both IPv6 and IPv4 addresses is dialled as RFC 8305 ("Happy
# Eyeballs") says: IPv6 first, the next address beside it 250 ms later,
# the first connection made wins and the others are closed at once.  With
# the addresses tried one after another, a broken IPv6 path cost a whole
# connect timeout before IPv4 was tried.
#
# The file runs in a network namespace of its own with its own
# /etc/hosts.  A tun device there that no process reads swallows
# whatever is routed to it (no error comes back), so a connect to
# 2001:db8::5 or 10.255.0.5 hangs as it would on a path that silently
# drops packets; 127.0.0.5 and ::1 (loopback) answer.  The
# connect timeout is 5 s, so the time a tunnel takes to come up tells the
# race (about 250 ms) from serial dialling (5 s) at a glance; the bound
# asserted, 1 s, is generous.
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use Time::HiRes qw(time);
use CT::Server qw(free_port in_netns);
use CT::Origin qw(listener take_accepts);
use CT::Client qw(tunnel_via relays ps_error);
use CT::Logs qw(log_mark log_since log_wait no_crash);

my $HOSTS = <<'EOF_HOSTS';
127.0.0.1 localhost
2001:db8::5 dual.test
127.0.0.5 dual.test
::1 rev.test
10.255.0.5 rev.test
2001:db8::5 dead.test
10.255.0.5 dead.test
::1 shut.test
127.0.0.6 shut.test
EOF_HOSTS

if ($ENV{CT_SEC_IN_NETNS}) {
    # Inside the namespace, before anything resolves: the black hole, and
    # source addresses of both families for the routes through it.
    for (['tuntap', 'add', 't0', 'mode', 'tun'],
         ['link', 'set', 't0', 'up'],
         ['-6', 'addr', 'add', '2001:db8:ffff::1/128', 'dev', 'lo'],
         ['addr', 'add', '10.255.1.1/32', 'dev', 'lo'],
         ['-6', 'route', 'add', '2001:db8::/32', 'dev', 't0'],
         ['route', 'add', '10.255.0.0/24', 'dev', 't0']) {
        system('ip', @$_) == 0 or die "ip @$_ failed";
    }
}
if (my $why = in_netns(hosts => $HOSTS)) {
    plan tests => 1, skip_reason("cannot build a network namespace: $why");
    exit 0;
}

plan tests => 12;

my $TP = free_port();
my %port = (main => free_port(), short => free_port(),
            step => free_port());
my $srv = CT::Server->start(port => $port{main}, relay => 1, threads => 16,
                            config => <<"EOF_CONF");
Listen 127.0.0.1:$port{main}
Listen 127.0.0.1:$port{short}
Listen 127.0.0.1:$port{step}
ProxyRequests On
AllowCONNECT all
<Proxy "*">
    Require all granted
</Proxy>
ConnectTunnelDefaultDeny Off
ConnectTunnelConnectTimeout 5
ConnectTunnelSetupTimeout 20
<VirtualHost 127.0.0.1:$port{short}>
    ConnectTunnelSetupTimeout 1500ms
</VirtualHost>
<VirtualHost 127.0.0.1:$port{step}>
    ConnectTunnelConnectTimeout 1
</VirtualHost>
EOF_CONF
my $start = log_mark($srv->{error_log});

my @origins = (listener(addr => '127.0.0.5', port => $TP, take_all => 1),
               listener(addr => '::1', port => $TP, take_all => 1));

# Connections still trying to reach $addr (SYN sent, no answer).
sub syn_sent {
    my $addr = shift;
    my @lines = grep { /\Q$addr\E/ } `ss -Htn state syn-sent 2>/dev/null`;
    return scalar @lines;
}

# CONNECT $host:$TP (or :$tp) on $which; (socket, status, headers,
# seconds taken).
sub timed_tunnel {
    my ($which, $host, $tp) = @_;
    my $t0 = time;
    my ($s, $status, $h) = tunnel_via($port{$which}, "$host:" . ($tp // $TP),
                                      wait => 30);
    return ($s, $status, $h, time - $t0);
}

# 1-3: IPv6 drops, IPv4 answers: up through IPv4 well within the connect
# timeout, the IPv6 attempt given up at once.
{
    my ($s, $status, $h, $took) = timed_tunnel(main => 'dual.test');
    my @got = take_accepts(5, @origins);
    ok $status == 200 && @got == 1 && $got[0]->sockhost eq '127.0.0.5'
       && relays($s, $got[0], 'dual')
       or t_debug("dual.test: status $status, " . scalar(@got)
                  . " connection(s)");
    ok $took < 1
       or t_debug(sprintf "dual.test: the tunnel took %.2f s", $took);
    ok syn_sent('2001:db8::5') == 0
       or t_debug("the losing IPv6 attempt is still open");
    close $_ for $s, @got;
}

# 4-5: IPv6 answers, IPv4 drops: up through IPv6 at once.
{
    my ($s, $status, $h, $took) = timed_tunnel(main => 'rev.test');
    my @got = take_accepts(5, @origins);
    ok $status == 200 && @got == 1 && $got[0]->sockhost eq '::1'
       && relays($s, $got[0], 'rev')
       or t_debug("rev.test: status $status, " . scalar(@got)
                  . " connection(s)");
    ok $took < 1 && syn_sent('10.255.0.5') == 0
       or t_debug(sprintf "rev.test: the tunnel took %.2f s", $took);
    close $_ for $s, @got;
}

# 6-7: both drop: 504 at the set-up deadline (1.5 s), both addresses
# tried by then, and nothing left trying.
{
    my $mark = log_mark($srv->{error_log});
    my ($s, $status, $h, $took) = timed_tunnel(short => 'dead.test');
    ok $status == 504 && ps_error($h) eq 'connection_timeout'
       && log_wait($mark, qr/CT00140: /, 5, line => 1,
                   log => $srv->{error_log}, default => '') ne ''
       or t_debug("dead.test at the deadline: status $status '"
                  . ps_error($h) . "'");
    ok $took > 1.2 && $took < 4 && syn_sent('2001:db8::5') == 0
       && syn_sent('10.255.0.5') == 0
       or t_debug(sprintf "dead.test: 504 after %.2f s", $took);
    close $s;
}

# 8-9: both drop, a 1 s connect timeout: 504 connection_timeout, each
# attempt timed out on its own (two CT00020), the second started 250 ms
# after the first rather than after its timeout.
{
    my $mark = log_mark($srv->{error_log});
    my ($s, $status, $h, $took) = timed_tunnel(step => 'dead.test');
    my $log = log_wait($mark, qr/CT00026: /, 5, line => 1,
                   log => $srv->{error_log}, default => '');
    my $text = log_since($mark, $srv->{error_log});
    my $tried = () = $text
        =~ /CT00020: connect to (?:\[?2001:db8::5|10\.255\.0\.5)/g;
    ok $status == 504 && ps_error($h) eq 'connection_timeout' && $log
       && $tried == 2
       or t_debug("dead.test, step timeout: status $status '"
                  . ps_error($h) . "', $tried attempt(s) logged");
    ok $took > 0.9 && $took < 1.9
       or t_debug(sprintf "dead.test: 504 after %.2f s", $took);
    close $s;
}

# 10: every address refuses (a port nothing listens on): 502
# connection_refused, at once.
{
    my ($s, $status, $h, $took) = timed_tunnel(main => 'shut.test',
                                               free_port());
    my @got = take_accepts(0, @origins);
    ok $status == 502 && ps_error($h) eq 'connection_refused' && !@got
       && $took < 1
       or t_debug(sprintf "shut.test: status %d '%s' after %.2f s",
                          $status, ps_error($h), $took);
    close $_ for $s, @got;
}

# 11: still serving.
{
    my ($s, $status) = timed_tunnel(main => 'dual.test');
    my @got = take_accepts(5, @origins);
    ok $status == 200 && @got == 1 && relays($s, $got[0], 'again');
    close $_ for $s, @got;
}

# 12: nothing crashed.
ok no_crash($start, $srv->{error_log}) && $srv->stop;
