# Without ConnectTunnelHandoffMax the cap on a child's handed-off tunnels
# comes from its descriptor limit ("as many as its descriptor limit
# allows"): a child whose accept() fails with EMFILE quits, so the
# reactors leave a reserve for everything else (256 plus 6 per worker
# thread: 640 for 64 threads), give a quarter of the rest to splice pipes
# (room / 8 pipes, see 89_fd_pipes.t) and count two descriptors a tunnel
# for the remainder; further tunnels go to workers.  Standalone httpds
# with one child of 64 threads, under a descriptor limit the module cannot
# raise (soft = hard):
#   limit 1500: room 860, 107 pipes, cap (860 - 214) / 2 = 323; 330
#     tunnels: 323 in reactors, 7 in workers, all working, and the child
#     still serves.
#   limit 700: room 60, 7 pipes, cap (60 - 14) / 2 = 23; 26 tunnels:
#     23 in reactors, 3 in workers.
# And with a soft limit below the hard one (soft 700, hard 1500) the
# child raises its soft limit to the hard one (/proc/PID/limits) and
# derives the cap of 1500, 323: 30 tunnels, more than the 23 of a soft
# limit of 700, all go to reactors.
# Only the default run hands tunnels off.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use Socket qw(SHUT_WR);
use CT::Server qw(children_of suite_mode wait_until);
use CT::Origin qw(start_origin);
use CT::Client qw(echo_ok read_to_eof tunnel);
use CT::Logs qw(log_lines status_auto tunnel_records);

plan skip_all => 'the hand-off is off in this run (' . suite_mode()
                 . ' relay): no cap to reach'
    if suite_mode() ne 'reactor';
plan tests => 15, need_module('status');

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 90;

my $origin = start_origin();
my $target = '127.0.0.1:' . $origin->port('echo');

sub server {
    my ($nofile, $soft) = @_;
    return CT::Server->start(
        modules => ['status'], nofile => $nofile, nofile_soft => $soft,
        conf => <<'EOC');
LogLevel info connect_tunnel:debug
StartServers 1
ServerLimit 1
ThreadsPerChild 64
MaxRequestWorkers 64
MinSpareThreads 5
MaxSpareThreads 64
<Location "/server-status">
    SetHandler server-status
</Location>
EOC
}

# The cap the child logged (CT00074), once it did.
sub logged_cap {
    my ($httpd, $nofile) = @_;
    my $line = wait_until(sub {
        (log_lines(qr/CT00074: /, $httpd->file('error_log')))[0];
    }, 5) // '';
    return $line =~ /up\ to\ (\d+)\ tunnels\ per\ child
                     \ \(descriptor\ limit\ $nofile\)/x
           ? $1 : "none in: $line";
}

# Open up to $n tunnels, stopping at the first that fails (the workers
# could be full): the sockets.
sub open_tunnels {
    my ($port, $n) = @_;
    my @s;
    for (1 .. $n) {
        my ($s, $status) = tunnel($port, $target, wait => 3);
        last unless ($status // 0) == 200 && echo_ok($s, "hi\n", 3);
        push @s, $s;
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

# Status counters once $live tunnels are live.
sub status_when_live {
    my ($port, $live) = @_;
    my %st;
    wait_until(sub {
        %st = status_auto($port);
        ($st{ConnectTunnelsLive} // 0) == $live;
    }, 5);
    return %st;
}

{
    my $httpd = server(1500);
    my $port = $httpd->port;
    is logged_cap($httpd, 1500), 323,
       'limit 1500: the child derives a cap of 323 tunnels';
    my @s = open_tunnels($port, 330);
    is scalar @s, 330, 'limit 1500: 330 tunnels established and echoing';
    my %st = status_when_live($port, scalar @s);
    is $st{ConnectTunnelsInReactors}, 323,
       'limit 1500: status: 323 in reactors (the cap)';
    is $st{ConnectTunnelsInWorkers}, 7, 'limit 1500: status: 7 in workers';
    ok !grep({ !echo_ok($_, "again\n", 3) } @s),
       'limit 1500: all still echo';
    my ($gs) = CT::Client::http_get($port, '/server-status?auto');
    is $gs, 200, 'limit 1500: the child still serves requests';
    is end_all(@s), scalar @s, 'limit 1500: all tunnels end';
    my $recs = wait_until(sub {
        my @r = tunnel_records($target, $httpd->file('tunnels_log'));
        @r >= @s ? \@r : undef;
    });
    is scalar(grep { $_->{mode} eq 'reactor' } @{ $recs // [] }), 323,
       'limit 1500: tunnels_log: 323 ended in reactors';
    $httpd->stop;
}

{
    my $httpd = server(700);
    my $port = $httpd->port;
    is logged_cap($httpd, 700), 23,
       'limit 700: the child derives a cap of (60 - 14) / 2 = 23 tunnels';
    my @s = open_tunnels($port, 26);
    is scalar @s, 26, 'limit 700: 26 tunnels established and echoing';
    my %st = status_when_live($port, scalar @s);
    is "$st{ConnectTunnelsInReactors} $st{ConnectTunnelsInWorkers}", '23 3',
       'limit 700: status: 23 in reactors (the cap), 3 in workers';
    end_all(@s);
    $httpd->stop;
}

# The soft descriptor limit of a process, from /proc.
sub soft_nofile {
    my $pid = shift;
    open my $fh, '<', "/proc/$pid/limits" or return 'no limits';
    while (<$fh>) {
        return $1 if /^Max open files\s+(\d+)/;
    }
    return 'none';
}

{
    my $httpd = server(1500, 700);
    my $port = $httpd->port;
    is soft_nofile($httpd->pid), 700,
       'soft 700, hard 1500: the server starts with a soft limit of 700';
    is logged_cap($httpd, 1500), 323,
       'soft 700, hard 1500: the child raises it to 1500 and derives 323';
    my @kids = children_of($httpd->pid);
    is join(' ', map { soft_nofile($_) } @kids), 1500,
       'soft 700, hard 1500: the child\'s soft limit is 1500';
    my @s = open_tunnels($port, 30);
    my %st = status_when_live($port, scalar @s);
    is scalar(@s) . " in reactors: $st{ConnectTunnelsInReactors}",
       '30 in reactors: 30',
       'soft 700, hard 1500: 30 tunnels (more than 23), all in reactors';
    end_all(@s);
    $httpd->stop;
}

$origin->stop;
