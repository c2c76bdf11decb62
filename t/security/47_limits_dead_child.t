# Tunnel counts of a child that dies without its cleanups.  A child killed
# with SIGKILL (or by the OOM killer, or a crash in another module) never
# runs the pool cleanups that give its tunnels back, so the shared counts
# must be taken off when the parent reaps it: its client gets a tunnel
# again (not 429 for ever), the server is not full (not 503 for ever), and
# mod_status no longer shows its tunnels as live.  The same for children
# of the previous generation that are killed after a graceful restart.
#
# A server of its own (children are killed), with the relay the suite
# runs with; each wait is bounded (5 s: the parent reaps a child within
# about a second).
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use Time::HiRes qw(time sleep);
use CT::Server qw(children_of free_port holders suite_mode);
use CT::Origin qw(listener take_accepts);
use CT::Client qw(ps_error relays tunnel_via);
use CT::Logs qw(log_mark log_since log_wait status_auto);

plan tests => 19;

my $mode = suite_mode(copy => 1);
my $port = free_port();
my $port_max = free_port();
my $srv = CT::Server->start(port => $port, relay => 1, threads => 16,
                            config => <<"EOF", mpm => <<'MPM');
${\ CT::Server::load_lines('status') }Listen 127.0.0.1:$port
Listen 127.0.0.1:$port_max
ProxyRequests On
AllowCONNECT all
<Proxy "*">
    Require all granted
</Proxy>
ConnectTunnelAllow loopback
ConnectTunnelMaxTunnelsPerClient 3
<Location "/server-status">
    SetHandler server-status
</Location>
<VirtualHost 127.0.0.1:$port_max>
    ConnectTunnelMaxTunnelsPerClient 0
    ConnectTunnelMaxTunnels 3
</VirtualHost>
EOF
StartServers 2
ServerLimit 4
ThreadsPerChild 16
MaxRequestWorkers 64
MinSpareThreads 1
MaxSpareThreads 64
MPM

my $start = log_mark($srv->{error_log});
my $l = listener(addr => '127.0.0.1', take_all => 1);
my $target = '127.0.0.1:' . $l->sockport;

sub live { my %s = status_auto($port); return $s{ConnectTunnelsLive} // -1 }

# Poll $cond (bounded); its last value.
sub within {
    my ($secs, $cond) = @_;
    my $deadline = time + $secs;
    while (1) {
        my $v = $cond->();
        return $v if $v || time >= $deadline;
        sleep 0.1;
    }
}

# Three tunnels through $p from @from; true when all work.
sub open_three {
    my ($p, $c, $o, @from) = @_;
    my $all = 1;
    for my $i (0 .. 2) {
        my ($s, $status) = tunnel_via($p, $target, from => $from[$i]);
        my @got = take_accepts(5, $l);
        push @$c, $s;
        push @$o, @got;
        $all &&= $status == 200 && @got == 1 && relays($s, $got[0], $i);
    }
    return $all;
}

# Kill (SIGKILL) the children holding the tunnels' origin connections;
# the PIDs killed.
my @killed;
sub kill_holders {
    my @pids = holders($l->sockport, children_of($srv->{pid}));
    kill 'KILL', @pids if @pids;
    push @killed, @pids;
    return @pids;
}

# The status a new tunnel from $from through $p gets, retried until it
# is not $refused (bounded); the socket stays open until the next call.
my @keep;
sub status_after {
    my ($p, $from, $refused) = @_;
    my $st = 0;
    within(5, sub {
        my ($s, $status) = tunnel_via($p, $target, from => $from);
        push @keep, $s, take_accepts($status == 200 ? 5 : 0, $l);
        $st = $status;
        return $status != $refused;
    });
    close $_ for splice @keep;
    return $st;
}

sub phase {
    my ($name, $p, $refused, @from) = @_;
    my (@c, @o);
    ok open_three($p, \@c, \@o, @from)
        or t_debug("$mode $name: three tunnels did not all work");
    my ($s4, $st4) = tunnel_via($p, $target, from => $from[3]);
    close $s4;
    my $live = within(5, sub { live() == 3 });
    ok $st4 == $refused && $live
        or t_debug("$mode $name: fourth got $st4 (want $refused), live "
                   . live());
    return (\@c, \@o);
}

sub recovered {
    my ($name, $p, $refused, $from, $c, $o) = @_;
    my @pids = kill_holders();
    ok @pids >= 1 or t_debug("$mode $name: no child holds the tunnels");
    ok within(5, sub { live() == 0 })
        or t_debug("$mode $name: mod_status still shows " . live()
                   . " live tunnels after killing @pids");
    my $st = status_after($p, $from, $refused);
    ok $st == 200
        or t_debug("$mode $name: after killing @pids a new tunnel got $st");
    close $_ for @$c, @$o;
}

# Per client: three from 127.0.0.1 (its limit; a fourth gets 429).
{
    my ($c, $o) = phase('per client', $port, 429, ('127.0.0.1') x 4);
    recovered('per client', $port, 429, '127.0.0.1', $c, $o);
}

# Server-wide: three from different addresses (a fourth gets 503).
{
    my ($c, $o) = phase('server-wide', $port_max, 503,
                        map { "127.0.0.$_" } 2 .. 5);
    recovered('server-wide', $port_max, 503, '127.0.0.6', $c, $o);
}

# After a graceful restart, killing the old generation's children.
{
    within(5, sub { live() == 0 });
    my ($c, $o) = phase('graceful', $port, 429, ('127.0.0.1') x 4);
    my $mark = log_mark($srv->{error_log});
    kill 'USR1', $srv->{pid};
    ok log_wait($mark, qr/AH00489|resuming normal operations/, 10, line => 1,
                log => $srv->{error_log}, default => '') ne ''
        or t_debug("$mode: no graceful restart within 10 s");
    sleep 0.5;
    my $st = status_after($port, '127.0.0.1', 0);
    ok $st == 429
        or t_debug("$mode graceful: before the kill a fourth got $st");
    recovered('graceful', $port, 429, '127.0.0.1', $c, $o);
}

# The killed children were logged as killed, and nothing else crashed.
{
    my $text = log_since($start, $srv->{error_log});
    my %k = map { $_ => 1 } @killed;
    my @bad = grep { /exit signal|Segmentation|AH00060/
                     && !(/pid (\d+) exit signal Killed/ && $k{$1}) }
              split /\n/, $text;
    ok !@bad or t_debug("unexpected: @bad");
    ok $srv->stop;
}
