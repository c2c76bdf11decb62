# ConnectTunnelHandoffMax caps the tunnels one child's reactors hold;
# beyond it a tunnel stays in its worker (which also makes the MPM see a
# busy worker and spawn children).  A place is reserved atomically at
# hand-off and given back when the tunnel ends.  The directive is global,
# so this runs on a standalone httpd with one child (ServerLimit 1) and
# ConnectTunnelHandoffMax 3, read through mod_status's section of the
# module (?auto: ConnectTunnelsInReactors, ...InWorkers, ...Live, ...).
#   5 tunnels: 3 in reactors, 2 in workers (status, and the access-log
#   record of each tunnel's opening: ConnectTunnelLogOpen On);
#   the 2 in workers and 1 in a reactor end: 2 left, both in reactors;
#   the next tunnel takes the freed place (reactor), the one after that
#   finds the cap again (worker);
#   all end: nothing live, and the end-of-tunnel records say 4 reactor,
#   3 worker.
# Only the default run hands tunnels off; the worker runs skip this.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use Socket qw(SHUT_WR);
use CT::Server qw(suite_mode wait_until);
use CT::Origin qw(start_origin);
use CT::Client qw(echo_ok http_get read_to_eof tunnel);
use CT::Logs qw(access_lines status_auto tunnel_records);

plan skip_all => 'the hand-off is off in this run (' . suite_mode()
                 . ' relay): no cap to reach'
    if suite_mode() ne 'reactor';
plan tests => 23, need_module('status');

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 60;

my $origin = start_origin();
my $target = '127.0.0.1:' . $origin->port('echo');
my $httpd = CT::Server->start(modules => ['status'], conf => <<'EOC');
StartServers 1
ServerLimit 1
ThreadsPerChild 25
MaxRequestWorkers 25
MinSpareThreads 5
MaxSpareThreads 25
ConnectTunnelHandoffMax 3
ConnectTunnelLogOpen On
<Location "/server-status">
    SetHandler server-status
</Location>
EOC
my $port = $httpd->port;
my $alog = $httpd->file('access_log');

# Client port of each tunnel: the key of its access-log line.
my %cport;

sub open_one {
    my ($s, $status) = tunnel($port, $target);
    return unless ($status // 0) == 200 && echo_ok($s, "hi\n");
    $cport{$s} = $s->sockport;
    return $s;
}

sub end_one {
    my $s = shift;
    shutdown($s, SHUT_WR);
    my (undef, $ended) = read_to_eof($s);
    close $s;
    return $ended;
}

# The relay of a tunnel as its opening record says (no tunnel-end yet),
# or (ended 1) as the line written at its end says; 'none' without one.
sub mode_of {
    my ($s, $ended) = @_;
    my $line = wait_until(sub {
        (grep { ($_->{end} ne '-') == ($ended // 0) }
         access_lines($cport{$s}, $alog))[0] }, 1);
    return $line ? $line->{mode} : 'none';
}

# Status counters, once they show $live live tunnels.
sub status_when_live {
    my $live = shift;
    my %st;
    wait_until(sub {
        %st = status_auto($port);
        ($st{ConnectTunnelsLive} // -1) == $live;
    }, 5);
    return %st;
}

my @s = map { open_one() } 1 .. 5;
is scalar(grep { defined } @s), 5, '5 tunnels established and echoing';
my %st = status_when_live(5);
is $st{ConnectTunnelsLive}, 5, 'status: ConnectTunnelsLive 5';
is $st{ConnectTunnelsInReactors}, 3, 'status: ConnectTunnelsInReactors 3';
is $st{ConnectTunnelsInWorkers}, 2, 'status: ConnectTunnelsInWorkers 2';
is $st{ConnectTunnelsHandedOff}, 3, 'status: ConnectTunnelsHandedOff 3';
is $st{ConnectTunnelsOpened}, 5, 'status: ConnectTunnelsOpened 5';
is_deeply [map { mode_of($_) } @s[0 .. 2]], [('reactor') x 3],
    'access log: the first 3 were handed off';
is_deeply [map { mode_of($_) } @s[3, 4]], ['worker', 'worker'],
    'access log: the other 2 stayed in their workers';
is_deeply [map { mode_of($_, 1) } @s], [('none') x 5],
    'access log: no line of an end while all 5 run';

my ($status, $html) = http_get($port, '/server-status');
like $html // '',
     qr{CONNECT\ tunnels\ \(mod_connect_tunnel\).*Live</th>\s*
        <td>5\ \(2\ in\ workers,\ 3\ in\ reactors\)}xs,
     'status page: the module\'s section shows 5 live, 2 + 3';

ok end_one($s[3]) && end_one($s[4]) && end_one($s[0]),
   'the 2 tunnels in workers and 1 in a reactor end';
%st = status_when_live(2);
is $st{ConnectTunnelsInReactors}, 2, 'status: 2 left in reactors';
is $st{ConnectTunnelsInWorkers}, 0, 'status: none in workers';
is_deeply [map { mode_of($_, 1) } @s[3, 4, 0]],
    ['worker', 'worker', 'reactor'],
    'access log: the 2 ended in their workers, the other in its reactor';

my $again = open_one();
ok $again, 'a new tunnel after one in a reactor ended';
is mode_of($again), 'reactor', 'it takes the freed place in a reactor';
my $over = open_one();
ok $over, 'and one more';
%st = status_when_live(4);
ok $st{ConnectTunnelsInReactors} == 3 && $st{ConnectTunnelsInWorkers} == 1,
   'status: the cap is reached again: 3 in reactors, 1 in a worker'
   or diag explain \%st;

ok !grep({ !end_one($_) } @s[1, 2], $again, $over), 'all tunnels end';
%st = status_when_live(0);
is $st{ConnectTunnelsLive}, 0, 'status: nothing live';
is $st{ConnectTunnelsClosed}, 7, 'status: ConnectTunnelsClosed 7';
my @recs = tunnel_records($target, $httpd->file('tunnels_log'));
is scalar(grep { $_->{mode} eq 'reactor' } @recs), 4,
   'tunnels_log: 4 tunnels ended in reactors';
is scalar(grep { $_->{mode} eq 'worker' } @recs), 3,
   'tunnels_log: 3 tunnels ended in workers';

$httpd->stop;
$origin->stop;
