# Backpressure: a client that stops reading must stop the origin, not
# make the proxy buffer.  The origin tries to push 256 MiB as fast as it
# can; the client reads nothing for 3 seconds.  In that time the origin
# may only get rid of what kernel socket buffers and the relay's one
# buffer hold (asserted: less than the four sockets' buffers can grow to,
# from tcp_rmem and tcp_wmem, plus 8 MiB), and the httpd child serving the
# tunnel (found through the socket it holds to the origin) may not grow by
# more than 16 MiB.  Then the client reads and every byte arrives, in
# order.  A relay that kept reading the origin into memory while the
# client is stalled takes the 256 MiB from the origin in about a second.
# The same with the client speaking TLS to the proxy, where the
# bytes also pass mod_ssl's output filter.  And the other way round: an
# origin that reads nothing for 4 s while the client pushes as fast as it
# can must stop the client the same way (through mod_ssl's input filter
# too), and then get every byte.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Select;
use Digest::SHA ();
use Time::HiRes qw(time sleep);
use CT::Server qw(child_for_local_port rss_kb);
use CT::Origin ();
use CT::Client qw(open_tunnel readable);

plan tests => 2 * 8 + 2 * 7, need_module('ssl');

# What the kernel alone may hold between two ends of a tunnel: each of
# the four sockets on the way may grow its buffers (tcp_rmem, tcp_wmem
# maxima; autotuning on loopback reaches them), plus the relay's buffer
# and some slack.  A relay that buffered without bound would take far
# more of the 256 MiB.
sub kernel_bound {
    my $max = sub {
        open my $fh, '<', "/proc/sys/net/ipv4/$_[0]" or return 6 << 20;
        my @v = split ' ', scalar <$fh>;
        return $v[2];
    };
    return 2 * ($max->('tcp_rmem') + $max->('tcp_wmem')) + (8 << 20);
}
my $bound = kernel_bound();
diag sprintf 'kernel buffering bound: %.1f MiB', $bound / 2**20;

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 290;

my @cases = (
    ['plain proxy', 'ct_all', 0, 256 << 20],
    ['TLS proxy', 'ct_relay_tls_proxy', 1, 256 << 20],
);

for my $case (@cases) {
    my ($name, $vhost, $tls, $size) = @$case;
    my $origin = CT::Origin->start('source', bytes => $size, seed => 31);
    my ($s, $status, $rest) = open_tunnel($vhost, $origin->port,
                                          tls => $tls);
    is $status, 200, "$name: the tunnel is established";

    my $rep = $origin->wait_for(1, 'peer_port', 10) // {};
    my $child = child_for_local_port($rep->{peer_port} // 0);
    ok $child, "$name: the httpd child serving the tunnel is found"
        or diag 'no httpd child holds local port '
                . ($rep->{peer_port} // '?');
    my $rss0 = $child ? rss_kb($child) : undef;

    # The client reads nothing for a while.
    sleep 3;
    my $pushed = $origin->conn(1)->{sent} // 0;
    my $rss1 = $child ? rss_kb($child) : undef;
    diag sprintf "$name: while the client stalled the origin pushed "
                 . '%.1f MiB; the child went from %s to %s KiB',
                 $pushed / 2**20, $rss0 // '?', $rss1 // '?';
    cmp_ok $pushed, '>', 0, "$name: the origin could start sending";
    cmp_ok $pushed, '<', $bound,
        "$name: the origin could push only a bounded amount "
        . 'while the client stalled';
    ok defined $rss0 && defined $rss1 && $rss1 - $rss0 < 16 * 1024,
        "$name: the httpd child did not buffer what the client did not read";

    # Now the client reads everything.
    my ($got, $sha, $state) = (length $rest, Digest::SHA->new(256), 'ok');
    $sha->add($rest);
    my $deadline = time + 120;
    while ($got < $size) {
        my $left = $deadline - time;
        if ($left <= 0 || !readable($s, $left)) {
            $state = 'timeout';
            last;
        }
        my $n = sysread $s, my $buf, 1 << 20;
        if (!$n) {
            $state = defined $n ? 'eof' : "error: $!";
            last;
        }
        $got += $n;
        $sha->add($buf);
    }
    is $got, $size, "$name: then all $size bytes arrive ($state)";
    $rep = $origin->wait_for(1, 'done', 20) // {};
    is $rep->{sent}, $size, "$name: the origin could send them all";
    is $sha->hexdigest, $rep->{sha256} // 'no report', "$name: byte-exact";
    close $s;
    $origin->stop;
}

# The origin stops reading; the client pushes.
for my $case (@cases) {
    my ($name, $vhost, $tls, $size) = @$case;
    $name = "$name, origin stalled";
    my $origin = CT::Origin->start('sink', expect => $size, delay => 4,
                                   reply => 0);
    my ($s, $status) = open_tunnel($vhost, $origin->port, tls => $tls);
    is $status, 200, "$name: the tunnel is established";
    my $rep = $origin->wait_for(1, 'peer_port', 10) // {};
    my $child = child_for_local_port($rep->{peer_port} // 0);
    ok $child, "$name: the httpd child serving the tunnel is found";
    my $rss0 = $child ? rss_kb($child) : undef;

    # Push for 3 s, as fast as the tunnel takes it.
    my $up = CT::Origin::Stream->new($size, 32);
    $s->blocking(0);
    my ($pending, $pushed, $stop) = ('', 0, time + 3);
    while (time < $stop) {
        $pending = $up->next(262144) unless length $pending;
        next unless IO::Select->new($s)->can_write($stop - time);
        my $n = syswrite $s, $pending;
        next unless defined $n;
        substr($pending, 0, $n, '');
        $pushed += $n;
    }
    my $rss1 = $child ? rss_kb($child) : undef;
    diag sprintf "$name: while the origin stalled the client pushed "
                 . '%.1f MiB; the child went from %s to %s KiB',
                 $pushed / 2**20, $rss0 // '?', $rss1 // '?';
    cmp_ok $pushed, '<', $bound,
        "$name: the client could push only a bounded amount";
    ok defined $rss0 && defined $rss1 && $rss1 - $rss0 < 16 * 1024,
        "$name: the httpd child did not buffer what the origin did not read";

    # The origin reads again: the rest goes, and all arrives.
    my $deadline = time + 120;
    while ((length $pending || !$up->done) && time < $deadline) {
        $pending = $up->next(262144) unless length $pending;
        next unless IO::Select->new($s)->can_write(1);
        my $n = syswrite $s, $pending;
        if (defined $n) {
            substr($pending, 0, $n, '');
        }
        elsif (!$!{EAGAIN} && !$!{EINTR}) {
            last;
        }
    }
    ok $up->done && !length $pending, "$name: then the client can send it all";
    $rep = $origin->wait_for(1, 'sha256', 120) // {};
    is $rep->{bytes}, $size, "$name: all $size bytes reach the origin";
    is $rep->{sha256}, $up->sha256, "$name: byte-exact";
    close $s;
    $origin->stop;
}
