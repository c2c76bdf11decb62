# A child whose tunnels live in reactors shows only idle workers, so the
# event MPM retires it after a load spike (MaxSpareThreads) with the same
# graceful message as a graceful stop.  GracefulShutdownTimeout bounds
# only a graceful stop (httpd's parent enforces it); a retired child's
# drain is bounded by ConnectTunnelDrainTimeout alone.  Standalone httpd,
# two children at most under load, GracefulShutdownTimeout 2:
#   6 tunnels in the first child; 12 stalled requests (headers never
#   finished) take its 10 workers and make the MPM start a second child;
#   6 more tunnels go to the second child; the stalled requests end, 20
#   idle workers exceed MaxSpareThreads (raised by the MPM to 16) and
#   the MPM retires one child, which logs that it drains (CT00075).
#   Whichever child it is, all 12 tunnels still echo 5 s later (after
#   GracefulShutdownTimeout), none has a record end=shutdown, and all end
#   cleanly (end=closed) when their clients end them.
# The same with ConnectTunnelDrainTimeout 6 and ConnectTunnelMigrate Off
# (a retired child that moves its tunnels is in 96_migrate.t): all 12
# still echo 4 s after
#   the retirement; then the retired child's 6 are closed within 6 + 4 s
#   (end=shutdown, CT00152 naming ConnectTunnelDrainTimeout) while the
#   other child's 6 still echo.
# Only the default run hands tunnels off.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Select;
use IO::Socket::INET;
use Socket qw(SHUT_WR);
use Time::HiRes qw(time sleep);
use CT::Server qw(children_of suite_mode wait_until);
use CT::Origin qw(start_origin);
use CT::Client qw(echo_ok read_to_eof tunnel write_all);
use CT::Logs qw(log_lines tunnel_records);

plan skip_all => 'the hand-off is off in this run (' . suite_mode()
                 . ' relay): no reactor to drain'
    if suite_mode() ne 'reactor';
plan tests => 18;

local $SIG{ALRM} = sub { die "test timed out\n" };
local $SIG{PIPE} = 'IGNORE';
alarm 150;

my $origin = start_origin();
my $target = '127.0.0.1:' . $origin->port('echo');

my ($httpd, $port);

sub start_server {
    my $drain = shift;
    $httpd = CT::Server->start(conf => <<"EOC");
LogLevel info
StartServers 1
ServerLimit 4
ThreadsPerChild 10
MaxRequestWorkers 20
MinSpareThreads 5
MaxSpareThreads 15
GracefulShutdownTimeout 2
Timeout 30
$drain
EOC
    $port = $httpd->port;
}

sub open_tunnels {
    my ($n, $tag) = @_;
    my @s;
    for my $i (1 .. $n) {
        my ($s, $status) = tunnel($port, $target, wait => 10);
        push @s, $s if ($status // 0) == 200 && echo_ok($s, "$tag $i\n", 5);
    }
    return @s;
}

sub end_all {
    my $ended = 0;
    for my $s (@_) {
        shutdown($s, SHUT_WR);
        my (undef, $eof) = read_to_eof($s, 5);
        $ended++ if $eof;
        close $s;
    }
    return $ended;
}

# 6 tunnels in the first child, 6 in a second one the MPM starts under
# load, then the load goes and the MPM retires a child: the 12 tunnels
# and the time the retired child said it drains.
sub spike {
    my $what = shift;
    my @first = open_tunnels(6, 'first');
    is scalar @first, 6, "$what: 6 tunnels in the only child";
    # Stalled requests: each holds a worker while it waits for the rest
    # of its header.
    my @stalled;
    for (1 .. 12) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port, Timeout => 5)
            or last;
        write_all($s, "GET / HTTP/1.1\r\nHost: localhost\r\n") or last;
        push @stalled, $s;
    }
    my $two = wait_until(sub { my @k = children_of($httpd->pid); @k >= 2 },
                         15);
    ok $two && @stalled == 12,
       "$what: 12 stalled requests make the MPM start a second child";
    my @second = open_tunnels(6, 'second');
    is scalar @second, 6, "$what: 6 more tunnels while the first is busy";
    close $_ for @stalled;
    my $drain = wait_until(sub {
        (log_lines(qr/CT00075: reactor: child exiting, draining \d+ /,
                   $httpd->file('error_log')))[0];
    }, 20);
    ok $drain, "$what: the MPM retires a child that holds tunnels";
    return (time, @first, @second);
}

{
    start_server('');
    my ($t0, @all) = spike('no drain limit');
    sleep 5 - (time - $t0) while time - $t0 < 5;
    my @dead = grep { !echo_ok($_, "later\n", 3) } @all;
    is scalar @dead, 0, 'no drain limit: all 12 tunnels still echo 5 s '
                        . 'later (GracefulShutdownTimeout is 2 s)';
    my @cut = grep { $_->{end} eq 'shutdown' }
              tunnel_records($target, $httpd->file('tunnels_log'));
    is scalar @cut, 0, 'no drain limit: no tunnel ended end=shutdown';
    ok !log_lines(qr/CT00152: /, $httpd->file('error_log')),
       'no drain limit: the drain was not cut short (no CT00152)';
    is end_all(@all), 12,
       'no drain limit: all 12 end when their clients end them';
    my $recs = wait_until(sub {
        my @r = grep { $_->{end} eq 'closed' && $_->{mode} eq 'reactor' }
                tunnel_records($target, $httpd->file('tunnels_log'));
        @r >= 12 ? \@r : undef;
    }, 10);
    is scalar @{ $recs // [] }, 12,
       'no drain limit: 12 records end=closed mode=reactor';
    $httpd->stop;
}

{
    start_server("ConnectTunnelDrainTimeout 6\nConnectTunnelMigrate Off");
    my ($t0, @all) = spike('drain limit');
    sleep 4 - (time - $t0) while time - $t0 < 4;
    my @dead = grep { !echo_ok($_, "later\n", 3) } @all;
    is scalar @dead, 0, 'drain limit: all 12 still echo 4 s later';
    # The retired child's tunnels close at its drain limit.
    my %left = map { $_ => $_ } @all;
    my $closed = 0;
    while ($closed < 6 && time - $t0 < 10) {
        for my $s (IO::Select->new(values %left)->can_read(0.2)) {
            next if sysread($s, my $buf, 4096);
            delete $left{$s};
            $closed++;
        }
    }
    is $closed, 6, "drain limit: the retired child's 6 close within 6 + 4 s";
    my @alive = grep { echo_ok($_, "alive\n", 3) } values %left;
    is scalar @alive, 6, "drain limit: the other child's 6 still echo";
    ok scalar log_lines(qr/CT00152: reactor: drain ended \(ConnectTunnel/,
                        $httpd->file('error_log')),
       'drain limit: the child says ConnectTunnelDrainTimeout ended it';
    my $recs = wait_until(sub {
        my @r = grep { $_->{end} eq 'shutdown' }
                tunnel_records($target, $httpd->file('tunnels_log'));
        @r >= 6 ? \@r : undef;
    }, 5);
    is scalar @{ $recs // [] }, 6, 'drain limit: 6 records end=shutdown';
    close $_ for @all;
    $httpd->stop;
}

$origin->stop;
