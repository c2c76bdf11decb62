# mod_reqtimeout, loaded as Debian loads it, bounds the time to read a
# request; it must not bound a tunnel.  Its filter is taken off the
# connection for the tunnel's life (by a worker that relays it) or left
# behind with httpd (by a hand-off, which it does not prevent), so a
# tunnel that stays idle past its body timeout, or that uploads below its
# MinRate, lives on.  A standalone server loads the module with the shape
# of Debian's default setting scaled down to seconds:
#   RequestReadTimeout header=2-4,MinRate=500 body=2,MinRate=500
# The first case is the control: a request head left unfinished is still
# cut off, so the module is there and its limits are in force.
#
# httpd 2.4's mod_reqtimeout itself starts no body timeout for a CONNECT,
# so in a worker the filter's removal cannot be seen from outside; what
# is pinned here in every relay is the result users see (the tunnel
# lives), and in the reactor runs that the filter does not stop the
# hand-off (mode=reactor in the access log and the end-of-tunnel record).
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use CT::Server qw(suite_mode wait_until);
use CT::Origin qw(start_origin);
use CT::Client qw(echo_ok read_bytes tunnel wait_closed write_all);
use CT::Logs qw(access_lines tunnel_records);

my $libexec = CT::Server::libexecdir();
if (!-f "$libexec/mod_reqtimeout.so") {
    plan skip_all => 'mod_reqtimeout is not installed';
}

# [description, how the tunnel spends 4 s]
my @cases = (
    [ 'idle for twice the body timeout', \&stay_idle ],
    [ 'uploading below MinRate (2 bytes/s)', \&dribble ],
);

plan tests => 4 + 5 * @cases;

local $SIG{ALRM} = sub { die "test timed out\n" };
local $SIG{PIPE} = 'IGNORE';
alarm 90;

my $want = suite_mode() eq 'reactor' ? 'reactor' : 'worker';
my $httpd = CT::Server->start(modules => ['reqtimeout'],
                                      conf => <<'EOC');
RequestReadTimeout header=2-4,MinRate=500 body=2,MinRate=500
EOC
my $origin = start_origin();
my $target = '127.0.0.1:' . $origin->port('echo');

# The control: half a request head, then silence.
{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $httpd->port, Timeout => 5)
        or die "connect: $!";
    my $t0 = time;
    write_all($s, "CONNECT $target HTTP/1.1\r\n");
    my $seen = '';
    ok wait_closed($s, 15, \$seen), 'control: an unfinished head is cut off';
    my $took = time - $t0;
    ok $took >= 1.5 && $took <= 10,
       sprintf 'control: after the header timeout (%.1f s)', $took;
    like $seen, qr{^HTTP/1\.1 408 }, 'control: with mod_reqtimeout\'s 408';
}

for my $case (@cases) {
    my ($desc, $spend) = @$case;
    my ($s, $status) = tunnel($httpd->port, $target);
    is $status, 200, "$desc: tunnel established";
    my $cport = $s ? $s->sockport : 0;
    ok $s && echo_ok($s, "first\n"), "$desc: it echoes";
    my $ok = $s && $spend->($s);
    ok $ok, "$desc: still relaying after 4 s";
    ok $s && echo_ok($s, "last\n"), "$desc: and after that";
    close $s if $s;
    my ($line) = wait_until(sub {
        (access_lines($cport, $httpd->file('access_log')))[0];
    });
    is $line ? $line->{mode} : 'none', $want,
       "$desc: access log mode=$want";
}

# No tunnel ended on a timeout: both records say closed.
my @recs = wait_until(sub {
    my @r = tunnel_records($target, $httpd->file('tunnels_log'));
    @r >= 2 ? \@r : undef;
});
my @ends = map { "$_->{mode}/$_->{end}" } @{ $recs[0] // [] };
is "@ends", join(' ', ("$want/closed") x @cases),
   "end-of-tunnel records: every tunnel $want, ended closed";

$httpd->stop;
$origin->stop;

# Four silent seconds.
sub stay_idle {
    my $s = shift;
    sleep 4;
    return 1;
}

# Two bytes a second for four seconds, each echoed.
sub dribble {
    my $s = shift;
    for my $i (1 .. 8) {
        echo_ok($s, chr(0x61 + $i), 2) or return 0;
        sleep 0.5;
    }
    return 1;
}
