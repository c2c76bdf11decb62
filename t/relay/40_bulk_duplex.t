# Bulk transfer both ways at once, byte-exact: the client sends 64 MiB
# while the origin sends it 64 MiB, at the same time, through one tunnel
# (and 8 MiB each way through the proxy spoken to over TLS).  Each side
# writes without blocking while reading, so the test cannot deadlock on
# its own; a relay that moved one direction at a time, stalled one side
# while the other was busy, or dropped, repeated or reordered a buffer
# fails to finish in time or changes a SHA-256.  The time bound is there
# to end a stuck test, not to measure speed.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use CT::Origin ();
use CT::Client qw(duplex open_tunnel);

plan tests => 2 * 7, need_module('ssl');

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 280;

my @cases = (
    ['plain proxy', 'ct_all', 0, 64 << 20],
    ['TLS proxy', 'ct_relay_tls_proxy', 1, 8 << 20],
);

for my $case (@cases) {
    my ($name, $vhost, $tls, $size) = @$case;
    my ($up_seed, $down_seed) = (21, 22);
    my $origin = CT::Origin->start('duplex', bytes => $size,
                                   seed => $down_seed, expect => $size);
    my ($s, $status, $rest) = open_tunnel($vhost, $origin->port, tls => $tls);
    is $status, 200, "$name: the tunnel is established";
    is $rest, '', "$name: nothing arrives ahead of the reply's end";
    my $up = CT::Origin::Stream->new($size, $up_seed);
    my $r = duplex($s, $up, $size, 120);
    is $r->{state}, 'ok', "$name: both directions complete in time"
        or diag "sent $r->{sent}, received $r->{got}";
    my $rep = $origin->wait_for(1, 'done', 20) // {};
    is $rep->{bytes}, $size, "$name: the origin received all $size bytes";
    is $rep->{sha256}, $up->sha256,
        "$name: the origin received them byte-exact";
    is $r->{got}, $size, "$name: the client received all $size bytes";
    is $r->{sha256}, $rep->{sent_sha256} // 'no report',
        "$name: the client received them byte-exact";
    close $s;
    $origin->stop;
}
