# A tunnel under a bandwidth limit that moves to another child on a
# graceful restart (ConnectTunnelMigrate) stays under its limit there:
# one tunnel, ConnectTunnelBandwidth 1M, moves 4 MB through an echo
# origin; a second into it the proxy restarts gracefully.  The tunnel is
# moved (mod_status counts it; the old children are gone), every byte
# comes back intact, and the whole takes about 4 s: a tunnel that lost
# its limit in the move would finish the last 3 MB at once.
# Only the default run hands tunnels off.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use Digest::SHA;
use POSIX ();
use Time::HiRes qw(time);
use CT::Server qw(children_of suite_mode wait_until);
use CT::Origin;
use CT::Client qw(duplex_all tunnel);
use CT::Logs qw(status_auto);

plan skip_all => 'the hand-off is off in this run (' . suite_mode()
                 . ' relay): no reactor tunnel to move'
    if suite_mode() ne 'reactor';
plan tests => 5;

local $SIG{ALRM} = sub { die "test timed out\n" };
local $SIG{PIPE} = 'IGNORE';
alarm 120;

my $MB = 1_000_000;
my $origin = CT::Origin->start('echo');
my $httpd = CT::Server->start(modules => ['status'], conf => <<"EOC");
StartServers 2
ServerLimit 4
ThreadsPerChild 16
MaxRequestWorkers 64
MinSpareThreads 16
MaxSpareThreads 64
ConnectTunnelBandwidth 1M
<Location "/server-status">
    SetHandler server-status
</Location>
EOC

my @old = children_of($httpd->pid);
my ($s, $status, $rest) = tunnel($httpd->port,
                                 '127.0.0.1:' . $origin->port, wait => 10);
is $status, 200, 'the tunnel is open';
my $t = { s => $s, size => 4 * $MB, got => length $rest, t0 => time,
          up => CT::Origin::Stream->new(4 * $MB, 41),
          sha => Digest::SHA->new(256) };
$t->{sha}->add($rest);
# A second into the transfer, the proxy restarts gracefully.
my $kid = fork // die "fork: $!";
if ($kid == 0) {
    sleep 1;
    kill 'USR1', $httpd->pid;
    POSIX::_exit(0);
}
duplex_all(60, $t);
waitpid $kid, 0;
ok $t->{got} == $t->{size} && !$t->{closed}
   && $t->{sha}->hexdigest eq $t->{up}->sha256,
   "4 MB came back intact across the restart ($t->{got} bytes)";
ok wait_until(sub { !grep { kill 0, $_ } @old }, 15),
   'the old children are gone';
my $secs = $t->{secs} // 99;
ok $secs >= 3 && $secs <= 30,
   sprintf('4 MB at 1 MB/s took about 4 s, restart and move included '
           . '(%.2f s)', $secs);
close $s;
my %st = status_auto($httpd->port);
ok(($st{ConnectTunnelsMoved} // 0) >= 1,
   'mod_status counts the tunnel moved ('
   . ($st{ConnectTunnelsMoved} // 'none') . ')');
$httpd->stop;
$origin->stop;
