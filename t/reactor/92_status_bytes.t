# mod_status's CONNECT tunnel counters against a known workload, on a
# standalone httpd this test starts (so that no other test's tunnels move
# the counters).  The manual: server-status?auto gives ConnectTunnelsOpened,
# ConnectTunnelsClosed, ConnectTunnelsHandedOff and the payload bytes of
# finished tunnels in each direction (ConnectTunnelsBytesUp/Down).  After
# N tunnels that each moved a known number of bytes up and down and ended,
# the deltas must be exactly N, N, N (handed off, reactor run) or 0 (worker
# runs), and the sums of the bytes; ConnectTunnelsLive is back where it
# was.  Run in every relay mode.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Socket::INET;
use List::Util qw(sum);
use CT::Server qw(suite_mode wait_until);
use CT::Origin qw(accept_within listener);
use CT::Client qw(exchange read_bytes read_head);
use CT::Logs qw(status_auto);

local $SIG{ALRM} = sub { die "test timed out\n" };
local $SIG{PIPE} = 'IGNORE';
alarm 120;

my $mode = suite_mode();

# Bytes each tunnel moves: client to origin, origin to client.
my @work = (
    { desc => 'small both ways', up => 1, down => 2 },
    { desc => 'up only', up => 70_001, down => 0 },
    { desc => 'down only', up => 0, down => 300_007 },
    { desc => 'both ways, larger than one buffer', up => 131_073,
      down => 65_539 },
);
my $n = @work;

my @counters = qw(ConnectTunnelsOpened ConnectTunnelsClosed
                  ConnectTunnelsHandedOff ConnectTunnelsBytesUp
                  ConnectTunnelsBytesDown ConnectTunnelsLive);

plan tests => 2 * @work + @counters + 1;

my $httpd = CT::Server->start(
    modules => ['status'],
    conf => <<'EOC');
<Location "/server-status">
    SetHandler server-status
    Require ip 127.0.0.1
</Location>
EOC

my $origin = listener();
my $target = '127.0.0.1:' . $origin->sockport;

my %before = status_auto($httpd->port);
ok(defined $before{ConnectTunnelsBytesUp},
   'server-status?auto has the module\'s section');

# $len bytes of a repeated $tag.
sub pattern {
    my ($tag, $len) = @_;
    return substr($tag x (1 + $len / length $tag), 0, $len);
}

for my $w (@work) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $httpd->port, Timeout => 10)
        or die "connect: $!";
    $s->autoflush(1);
    print $s "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n";
    my $o = accept_within($origin);
    my ($status) = read_head($s);
    my $up = pattern('up-', $w->{up});
    my $down = pattern('down-', $w->{down});
    my ($got_up, $got_down) = ('', '');
    ($got_up, $got_down) = exchange($s, $o, $up, $down)
        if $o && ($status // 0) == 200;
    ok($got_up eq $up, "$w->{desc}: $w->{up} bytes reached the origin");
    ok($got_down eq $down,
       "$w->{desc}: $w->{down} bytes reached the client");
    close $s;
    close $o if $o;
}

my %after;
wait_until(sub {
    %after = status_auto($httpd->port);
    return ($after{ConnectTunnelsClosed} // 0)
        >= ($before{ConnectTunnelsClosed} // 0) + $n;
}, 15);
my %want = (
    ConnectTunnelsOpened    => $n,
    ConnectTunnelsClosed    => $n,
    ConnectTunnelsHandedOff => $mode eq 'reactor' ? $n : 0,
    ConnectTunnelsBytesUp   => sum(map { $_->{up} } @work),
    ConnectTunnelsBytesDown => sum(map { $_->{down} } @work),
    ConnectTunnelsLive      => 0,
);
for my $k (@counters) {
    is(($after{$k} // -1e9) - ($before{$k} // 0), $want{$k},
       "$k grew by $want{$k} ($mode)");
}

$httpd->stop;
