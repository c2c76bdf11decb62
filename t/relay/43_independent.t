# The two directions of a tunnel are independent: while the client reads
# nothing (so the origin-to-client direction is stalled on backpressure),
# 16 MiB the client sends still reach the origin, byte-exact.  A relay
# that blocked its one thread writing to the stalled client, or stopped
# polling the client for input while output is pending, freezes the
# upload.  Checked with the client speaking plain HTTP and TLS to the
# proxy.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Select;
use Time::HiRes qw(time);
use CT::Origin ();
use CT::Client qw(open_tunnel);

plan tests => 2 * 4, need_module('ssl');

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 120;

my $size = 16 << 20;
for my $case (['plain proxy', 'ct_all', 0],
              ['TLS proxy', 'ct_relay_tls_proxy', 1]) {
    my ($name, $vhost, $tls) = @$case;
    # The origin pushes far more than any buffer holds while it reads.
    my $origin = CT::Origin->start('duplex', bytes => 256 << 20,
                                   expect => $size, seed => 41);
    my ($s, $status) = open_tunnel($vhost, $origin->port, tls => $tls);
    is $status, 200, "$name: the tunnel is established";

    # Write only; never read.
    my $up = CT::Origin::Stream->new($size, 42);
    $s->blocking(0);
    my ($pending, $deadline) = ('', time + 30);
    while (time < $deadline) {
        $pending = $up->next(65536) if !length $pending && !$up->done;
        last unless length $pending;
        next unless IO::Select->new($s)->can_write(0.5);
        my $n = syswrite $s, $pending;
        substr($pending, 0, $n, '') if defined $n;
        last if !defined $n && !$!{EAGAIN} && !$!{EINTR};
    }
    ok $up->done && !length $pending,
        "$name: the client can send all $size bytes without reading";
    my $rep = $origin->wait_for(1, 'recv_done', 20) // {};
    is $rep->{bytes}, $size, "$name: they all reach the origin";
    is $rep->{sha256}, $up->sha256, "$name: byte-exact";
    close $s;
    $origin->stop;
}
