# Tunnel limits across a graceful restart.  A graceful restart keeps the
# tunnels that are open (their children finish them, or drain them from
# the reactors), so they are still open in the server and must still
# count: a client at its ConnectTunnelMaxTunnelsPerClient, or a server at
# its ConnectTunnelMaxTunnels, must not get more tunnels just because the
# configuration was reloaded.  (Otherwise each "apachectl graceful" lets
# every client open its limit again.)
#
# This needs a server of its own (the shared test server is not to be
# restarted under the other tests): it listens on loopback, allows
# loopback origins, and is restarted and stopped by its own PID.  It uses
# the relay the suite runs with (reactors, workers, or workers through
# the filters: `make test` runs all three).
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use Time::HiRes qw(time sleep);
use CT::Server qw(free_port suite_mode);
use CT::Origin qw(listener take_accepts);
use CT::Client qw(ps_error relays tunnel_via);
use CT::Logs qw(log_mark log_wait no_crash);


plan tests => 7;

# Wait (bounded) until $file has a line matching $re, then a moment for
# the tunnel's counts to be given back (right after its record).
sub wait_count_file {
    my ($file, $re, $n) = @_;
    my $deadline = time + 10;
    while (time < $deadline) {
        my $have = 0;
        if (open my $fh, '<', $file) {
            $have = grep { /$re/ } <$fh>;
        }
        last if $have >= $n;
        sleep 0.05;
    }
    sleep 0.2;
}

{
    my $mode = suite_mode(copy => 1);
    my $port = free_port();
    my $srv = CT::Server->start(port => $port, relay => 1, threads => 16,
                                config => <<"EOF", mpm => <<'MPM');
Listen 127.0.0.1:$port
ProxyRequests On
AllowCONNECT all
<Proxy "*">
    Require all granted
</Proxy>
ConnectTunnelAllow loopback
ConnectTunnelMaxTunnels 3
ConnectTunnelMaxTunnelsPerClient 2
ConnectTunnelLog tunnels_log
EOF
StartServers 1
ServerLimit 4
ThreadsPerChild 16
MaxRequestWorkers 64
MinSpareThreads 1
MaxSpareThreads 64
MPM
    my $l = listener(addr => '127.0.0.1', take_all => 1);
    my $target = '127.0.0.1:' . $l->sockport;
    my $start = log_mark($srv->{error_log});

    # Two tunnels from 127.0.0.1 (its limit; a third gets 429), one from
    # 127.0.0.2: the server's limit of three is reached (a fourth gets 503).
    my (@c, @o);
    my $all = 1;
    my @refused;
    for my $from (qw(127.0.0.1 127.0.0.1 127.0.0.2)) {
        if ($from eq '127.0.0.2') {
            my ($s, $st) = tunnel_via($port, $target, from => '127.0.0.1');
            push @refused, $st;
            close $s;
        }
        my ($s, $status) = tunnel_via($port, $target, from => $from);
        my @got = take_accepts(5, $l);
        push @c, $s;
        push @o, @got;
        $all &&= $status == 200 && @got == 1 && relays($s, $got[0], $from);
    }
    ok $all or t_debug("$mode: the first three tunnels did not all work");
    {
        my ($s, $st) = tunnel_via($port, $target, from => '127.0.0.3');
        push @refused, $st;
        close $s;
    }
    ok "@refused" eq '429 503'
        or t_debug("$mode before the restart: @refused");

    # Graceful restart, by the server's own PID.
    my $mark = log_mark($srv->{error_log});
    kill 'USR1', $srv->{pid};
    ok log_wait($mark, qr/AH00489|resuming normal operations/, 10, line => 1,
                log => $srv->{error_log}, default => '') ne ''
        or t_debug("$mode: no restart within 10 s");
    sleep 0.5;

    # The three tunnels survived the restart.
    my $alive = 1;
    $alive &&= relays($c[$_], $o[$_], "after-$_") for 0 .. 2;
    ok $alive or t_debug("$mode: a tunnel did not survive the restart");

    # They still count: the server is full...
    my ($s4, $st4, $h4) = tunnel_via($port, $target, from => '127.0.0.3');
    my @got4 = take_accepts(0.5, $l);
    ok $st4 == 503 && ps_error($h4) eq 'connection_limit_reached' && !@got4
        or t_debug("$mode: after the restart a new client (3 tunnels open "
                   . "in the server, limit 3) got $st4");
    close $_ for $s4, @got4;

    # ...and once 127.0.0.2's tunnel has ended, 127.0.0.1 is still at its
    # own limit.
    close $_ for $c[2], $o[2];
    wait_count_file("$srv->{dir}/tunnels_log",
                    qr/client=127\.0\.0\.2 target=\Q$target\E /, 1);
    my ($s3, $st3, $h3) = tunnel_via($port, $target, from => '127.0.0.1');
    my @got3 = take_accepts(0.5, $l);
    ok $st3 == 429 && ps_error($h3) eq 'connection_limit_reached' && !@got3
        or t_debug("$mode: after the restart 127.0.0.1 (2 tunnels open, "
                   . "limit 2) got $st3");
    close $_ for $s3, @got3, @c, @o;
    ok no_crash($start, $srv->{error_log}) && $srv->stop;
}
