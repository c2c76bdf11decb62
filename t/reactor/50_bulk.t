# 64 MiB through one tunnel both ways at once, byte-exact.  The client
# writes 64 MiB (numbered 64 KiB blocks of pseudo-random bytes) while the
# echo origin sends everything back, so both directions are full at the
# same time and the reactor's partial writes, pending buffers and
# backpressure all get used.  The SHA-256 of what came back, and of what
# the origin itself received, must equal that of what was sent; then the
# half-close ends the tunnel cleanly and the end-of-tunnel record counts
# 64 MiB each way.  In the default run the tunnel must be in a reactor.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use Digest::SHA ();
use Errno qw(EAGAIN EINTR);
use Fcntl qw(F_GETFL F_SETFL O_NONBLOCK);
use IO::Select;
use Socket qw(SHUT_WR);
use Time::HiRes qw(time);
use CT::Server qw(suite_mode wait_until);
use CT::Origin qw(start_origin);
use CT::Client qw(tunnel vhost_port);
use CT::Logs qw(access_lines mark_logs tunnel_records);

plan tests => 7;

mark_logs();

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 100;

my $want = suite_mode() eq 'reactor' ? 'reactor' : 'worker';
my $origin = start_origin();
my $target = '127.0.0.1:' . $origin->port('echo');
my $proxy = vhost_port('ct_reactor_main');

my $BLOCK = 64 * 1024;
my $BLOCKS = 1024;              # 64 MiB
my $total = $BLOCK * $BLOCKS;
srand 4242;
my $noise = join '', map { chr int rand 256 } 1 .. $BLOCK;

my ($s, $status, $rest) = tunnel($proxy, $target);
is $status, 200, 'tunnel established';
my $cport = $s->sockport;
my $flags = fcntl($s, F_GETFL, 0);
fcntl($s, F_SETFL, $flags | O_NONBLOCK);

my $sent_sha = Digest::SHA->new(256);
my $recv_sha = Digest::SHA->new(256);
$recv_sha->add($rest);
my ($next, $out, $received) = (0, '', length $rest);
my $shut = 0;
my $eof = 0;
my $deadline = time + 80;
my $sel = IO::Select->new($s);
while (!$eof && time < $deadline) {
    if ($out eq '' && $next < $BLOCKS) {
        # Block N: its number, then the noise rotated by N.
        my $r = ($next * 7919) % $BLOCK;
        $out = substr(pack('N', $next) . substr($noise, $r)
                      . substr($noise, 0, $r), 0, $BLOCK);
        $sent_sha->add($out);
        $next++;
    }
    if ($out eq '' && !$shut) {
        shutdown($s, SHUT_WR);
        $shut = 1;
    }
    my ($r, $w) = IO::Select->select($sel, $out ne '' ? $sel : undef,
                                     undef, 1);
    if ($w && @$w) {
        my $n = syswrite($s, $out);
        if (defined $n) {
            substr($out, 0, $n, '');
        }
        elsif ($! != EAGAIN && $! != EINTR) {
            diag "write: $!";
            last;
        }
    }
    if ($r && @$r) {
        my $n = sysread($s, my $buf, 256 * 1024);
        if (!defined $n) {
            next if $! == EAGAIN || $! == EINTR;
            diag "read: $!";
            last;
        }
        $eof = 1 if $n == 0;
        $received += $n;
        $recv_sha->add($buf);
    }
}
close $s;
my $sent_hex = $sent_sha->hexdigest;
ok $shut && $next == $BLOCKS, 'all 64 MiB were sent, then the end of stream';
ok $eof, 'the tunnel ended after the echo';
is $received, $total, 'as many bytes came back as were sent';
is $recv_sha->hexdigest, $sent_hex, 'what came back is byte-exact (SHA-256)';
my $rec = wait_until(sub { (grep { $_->{bytes} == $total }
                            $origin->records('echo'))[0] });
is $rec && $rec->{sha256}, $sent_hex,
   'what the origin received is byte-exact (SHA-256)';
my $tr = wait_until(sub { (tunnel_records($target))[0] });
ok $tr && $tr->{mode} eq $want && $tr->{end} eq 'closed'
       && $tr->{up} == $total && $tr->{down} == $total,
   "tunnels_log: mode=$want end=closed up=$total down=$total"
   or diag explain $tr;

$origin->stop;
