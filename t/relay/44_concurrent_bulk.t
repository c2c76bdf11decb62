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
use Digest::SHA ();
use CT::Origin ();
use CT::Client qw(duplex_all open_tunnel);

plan tests => 4;

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 150;

my ($n, $size) = (24, 4 << 20);
my $origin = CT::Origin->start('echo');

my @t;
for my $i (0 .. $n - 1) {
    my ($s, $status, $rest) = open_tunnel('ct_all', $origin->port);
    next unless ($status // 0) == 200;
    my $t = { i => $i, s => $s, size => $size, got => length $rest,
              up => CT::Origin::Stream->new($size, 100 + $i),
              sha => Digest::SHA->new(256) };
    $t->{sha}->add($rest);
    push @t, $t;
}
is scalar @t, $n, "$n tunnels are established";

duplex_all(120, @t);
my $left = grep { $_->{got} < $size && !$_->{closed} } @t;
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
