# Many tunnels moving bulk data at the same time stay byte-exact and
# apart: 24 clients each send their own 4 MiB stream (a different seed
# each) through their own tunnel to an echo origin, all at once, and each
# must get exactly its own stream back.  This is where relays that share
# buffers or lend pipes between tunnels (the reactors do) would mix,
# lose or repeat bytes between tunnels, and where one busy tunnel could
# starve the others past the time bound.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Select;
use Digest::SHA ();
use Time::HiRes qw(time);
use CT::Origin ();
use CT::Client qw(open_tunnel);

plan tests => 4;

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 150;

my ($n, $size) = (24, 4 << 20);
my $origin = CT::Origin->start('echo');

my (@t, %by_fd);
for my $i (0 .. $n - 1) {
    my ($s, $status, $rest) = open_tunnel('ct_all', $origin->port);
    next unless ($status // 0) == 200;
    $s->blocking(0);
    my $t = { i => $i, s => $s, up => CT::Origin::Stream->new($size, 100 + $i),
              pending => '', got => length $rest,
              sha => Digest::SHA->new(256) };
    $t->{sha}->add($rest);
    push @t, $t;
    $by_fd{ fileno $s } = $t;
}
is scalar @t, $n, "$n tunnels are established";

my $deadline = time + 120;
my $left = grep { $_->{got} < $size } @t;
while ($left && time < $deadline) {
    my $r = IO::Select->new(map { $_->{s} } grep { $_->{got} < $size } @t);
    my $w = IO::Select->new(map { $_->{s} }
                            grep { length $_->{pending} || !$_->{up}->done }
                            @t);
    my ($cr, $cw) = IO::Select->select($r, $w, undef, 1);
    for my $s (@{ $cw || [] }) {
        my $t = $by_fd{ fileno $s };
        $t->{pending} = $t->{up}->next(65536) unless length $t->{pending};
        my $k = syswrite $s, $t->{pending};
        substr($t->{pending}, 0, $k, '') if $k;
    }
    for my $s (@{ $cr || [] }) {
        my $t = $by_fd{ fileno $s };
        my $k = sysread $s, my $buf, 262144;
        if ($k) {
            $t->{got} += $k;
            $t->{sha}->add($buf);
        }
        elsif (defined $k || !$!{EAGAIN}) {
            $t->{closed} = defined $k ? 'eof' : "$!";
            $t->{got} = $size + 1 if $t->{got} < $size;   # stop reading it
        }
    }
    $left = grep { $_->{got} < $size } @t;
}
ok !$left, 'every tunnel completes in time';
my @short = grep { $_->{got} != $size || $_->{closed} } @t;
is scalar @short, 0, 'every client gets as many bytes as it sent'
    or diag join ', ', map { "tunnel $_->{i}: $_->{got}"
                             . ($_->{closed} ? " ($_->{closed})" : '') }
                       @short;
my @wrong = grep { $_->{sha}->hexdigest ne $_->{up}->sha256 } @t;
is scalar @wrong, 0, 'every client gets exactly its own stream back'
    or diag 'wrong: ' . join ' ', map { $_->{i} } @wrong;
close $_->{s} for @t;
$origin->stop;
