# A tunnel under a bandwidth limit that moves to another child on a
# graceful restart (ConnectTunnelMigrate) stays under its limit there:
# one tunnel, ConnectTunnelBandwidth 1M, moves 4 MB through an echo
# origin; a second into it the proxy restarts gracefully.  The old child
# is gone while the tunnel goes on (it was moved, not drained), every
# byte comes back intact, and the whole takes about 4 s: a tunnel that
# lost its limit in the move would finish the last 3 MB at once.
# Only the default run hands tunnels off.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use Digest::SHA;
use IO::Select;
use Time::HiRes qw(time);
use CT::Server qw(children_of suite_mode);
use CT::Origin;
use CT::Client qw(tunnel);
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

my ($s, $status, $rest) = tunnel($httpd->port,
                                 '127.0.0.1:' . $origin->port, wait => 10);
is $status, 200, 'the tunnel is open';
$s->blocking(0);
my $size = 4 * $MB;
my $up = CT::Origin::Stream->new($size, 41);
my $sha = Digest::SHA->new(256);
$sha->add($rest);
my ($got, $pending, $closed) = (length $rest, '', 0);
my $t0 = time;
my (@old, $restarted, $gone_while_open);
while (time < $t0 + 60 && $got < $size && !$closed) {
    if (!$restarted && time > $t0 + 1) {
        @old = children_of($httpd->pid);
        $httpd->signal('USR1');
        $restarted = 1;
    }
    if ($restarted && !$gone_while_open && @old
        && !grep { kill 0, $_ } @old) {
        $gone_while_open = 1;
    }
    my $w = length $pending || !$up->done ? IO::Select->new($s) : undef;
    my ($cr, $cw) = IO::Select->select(IO::Select->new($s), $w, undef,
                                       0.2);
    if ($cw && @$cw) {
        $pending = $up->next(65536) unless length $pending;
        my $k = syswrite $s, $pending;
        substr($pending, 0, $k, '') if $k;
    }
    if ($cr && @$cr) {
        my $k = sysread $s, my $buf, 262144;
        if ($k) {
            $got += $k;
            $sha->add($buf);
        }
        elsif (defined $k || !$!{EAGAIN}) {
            $closed = 1;
        }
    }
}
my $secs = time - $t0;
ok $got == $size && !$closed && $sha->hexdigest eq $up->sha256,
   "4 MB came back intact across the restart ($got bytes)";
ok $gone_while_open,
   'the old child exited while the tunnel was open: it was moved';
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
