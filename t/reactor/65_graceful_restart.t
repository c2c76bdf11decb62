# A graceful restart (SIGUSR1 to the parent) must not cut tunnels.  The
# old generation's children stop their workers; a child whose reactors
# hold tunnels keeps running them (its pchild cleanup waits) until they
# end, as stock keeps a busy worker.  20 tunnels through the suite's own
# server must all still echo after the restart, new CONNECTs must work
# in the new generation, mod_status must still count the old tunnels as
# live (BusyWorkers does not count them, the module's counters must), and
# when the clients end the 20 tunnels each ends cleanly with a record.
# In the default run the old children log that they drain (CT00075).
# Afterwards the server must serve normally: the suite goes on with it.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use Socket qw(SHUT_WR);
use Time::HiRes qw(sleep);
use CT::Server qw(children_of holders suite_mode wait_until);
use CT::Origin qw(start_origin);
use CT::Client qw(echo_ok http_get read_to_eof tunnel vhost_port);
use CT::Logs qw(log_lines mark_logs status_auto tunnel_records);

plan tests => 13, need_module('status');

mark_logs();

local $SIG{ALRM} = sub { die "test timed out\n" };
local $SIG{PIPE} = 'IGNORE';
alarm 90;

my $want = suite_mode() eq 'reactor' ? 'reactor' : 'worker';
my $origin = start_origin();
my $target = '127.0.0.1:' . $origin->port('echo');
my $proxy = vhost_port('ct_reactor_main');
my $pidfile = Apache::Test::config()->{vars}->{t_pid_file};
open my $pf, '<', $pidfile or die "$pidfile: $!";
my $parent = <$pf>;
chomp $parent;

my @s;
for my $i (1 .. 20) {
    my ($s, $status) = tunnel($proxy, $target);
    push @s, $s if ($status // 0) == 200 && echo_ok($s, "before $i\n");
}
is scalar @s, 20, '20 tunnels established and echoing';
my %st = status_auto($proxy);
ok +($st{ConnectTunnelsLive} // 0) >= 20,
   'mod_status counts them before the restart'
   or diag explain \%st;

# The new generation needs a scoreboard slot that no draining child
# holds: with the suite's ServerLimit all may carry some of the 20 (as
# with stock, where busy workers hold them).
my @held = holders($origin->port('echo'), children_of($parent));
my $limit = 16;
if (open my $xc, '<', Apache::Test::config()->{vars}->{t_conf}
                      . '/extra.conf') {
    /^\s*ServerLimit\s+(\d+)/ and $limit = $1 while <$xc>;
}
my $room = $limit - @held;
diag 'children carrying the tunnels: ' . join(' ', @held)
     . " (ServerLimit $limit)";

kill('USR1', $parent) or die "SIGUSR1 to the server's parent ($parent): $!";
my $restarted = wait_until(sub {
    scalar log_lines(qr/resuming normal operations/);
}, 20);
ok $restarted, 'the server restarted gracefully';
sleep 1;

my $i = 0;
my @dead = grep { !echo_ok($_, 'after ' . ++$i . "\n", 5) } @s;
is scalar @dead, 0, 'all 20 tunnels still echo after the restart';

my ($new, $status);
SKIP: {
    skip 'the old children carrying the tunnels fill all ' . $limit
         . ' scoreboard slots: no room for the new generation yet', 1
        if $room < 1;
    ($new, $status) = tunnel($proxy, $target);
    ok $new && $status == 200 && echo_ok($new, "new\n"),
       'a new CONNECT works after the restart';
}
my $n = 20 + ($new ? 1 : 0);

SKIP: {
    skip 'no room for a status request in the new generation', 1
        if $room < 1;
    %st = status_auto($proxy);
    ok +($st{ConnectTunnelsLive} // 0) >= $n,
       "mod_status still counts the 20 old tunnels as live (and the new)"
       or diag 'ConnectTunnelsLive: ' . ($st{ConnectTunnelsLive} // '-');
}

SKIP: {
    skip 'the tunnels stay in workers (' . suite_mode() . ' relay): no '
         . 'reactor drains them', 2
        unless $want eq 'reactor';
    my $draining = wait_until(sub {
        my $n = 0;
        $n += $_ for map { /draining (\d+) tunnels/ ? $1 : () }
                     log_lines(qr/CT00075: reactor: child exiting/);
        $n >= 20 ? $n : 0;
    }, 5);
    is $draining, 20,
       'the old children log that they drain the 20 tunnels (CT00075)';
    SKIP: {
        skip 'no room for a status request in the new generation', 1
            if $room < 1;
        %st = status_auto($proxy);
        # With ConnectTunnelMigrate (the default) the old children may
        # have moved their tunnels to the new ones already.
        ok +($st{ConnectTunnelsDrainingChildren} // 0) >= 1
           || ($st{ConnectTunnelsMoved} // 0) >= 20,
           'mod_status shows the draining children, or the tunnels moved'
           or diag 'ConnectTunnelsDrainingChildren: '
                   . ($st{ConnectTunnelsDrainingChildren} // '-')
                   . ', ConnectTunnelsMoved: '
                   . ($st{ConnectTunnelsMoved} // '-');
    }
}

my $ended = 0;
for my $s (@s, $new) {
    next unless $s;
    shutdown($s, SHUT_WR);
    my (undef, $eof) = read_to_eof($s);
    $ended++ if $eof;
    close $s;
}
is $ended, $n, 'every tunnel ends cleanly at the client\'s half-close';
my $recs = wait_until(sub {
    my @r = tunnel_records($target);
    @r >= $n ? \@r : undef;
});
is scalar(grep { $_->{end} eq 'closed' && $_->{mode} eq $want }
           @{ $recs // [] }), $n,
   "tunnels_log: $n records end=closed mode=$want";

# The server is healthy for the tests that follow.
my ($gs, $body) = http_get($proxy, '/index.html');
is $gs, 200, 'the server serves a page afterwards';
my ($after, $as) = tunnel($proxy, $target);
ok $after && $as == 200 && echo_ok($after, "ok\n"),
   'and tunnels';
close $after if $after;
my $settled = wait_until(sub {
    my %s = status_auto($proxy);
    defined $s{ConnectTunnelsLive} && $s{ConnectTunnelsLive} == 0;
}, 5);
ok $settled, 'mod_status: no live tunnel is left';

$origin->stop;
