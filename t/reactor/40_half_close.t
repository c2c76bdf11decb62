# Half-close through a handed-off tunnel, both ways.  The reactor reads
# an end of stream on one socket, finishes writing what it holds to the
# other side, then shutdown(SHUT_WR)s it, and keeps relaying the other
# direction until that ends too.
#   client first: the client sends 1 MiB and its end of stream at once;
#     the origin echoes everything and only after the end of stream says
#     "bye" and closes.  The client must get the whole echo, then "bye",
#     then the end of stream.
#   origin first: the origin says "hello" and shuts down its write side
#     at once.  The client sees "hello" and the end of stream, waits a
#     second (the tunnel must stay up), then sends 1 MiB and its own end
#     of stream; the origin must receive all of it.
# The end-of-tunnel record says end=closed with the byte counts, and the
# tunnel ran in the relay of this run (mode=reactor in the default run).
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use Digest::SHA qw(sha256_hex);
use POSIX ();
use Socket qw(SHUT_WR);
use CT::Server qw(suite_mode wait_until);
use CT::Origin qw(start_origin);
use CT::Client qw(read_bytes read_to_eof tunnel vhost_port write_all);
use CT::Logs qw(mark_logs tunnel_records);

plan tests => 9;

mark_logs();

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 60;

my $want = suite_mode() eq 'reactor' ? 'reactor' : 'worker';
my $origin = start_origin();
my $proxy = vhost_port('ct_reactor_main');
my $mib = join '', map { sprintf "%07d\n", $_ } 0 .. (1 << 20) / 8 - 1;

# Client first.
{
    my $target = '127.0.0.1:' . $origin->port('bye');
    my ($s, $status) = tunnel($proxy, $target);
    is $status, 200, 'client first: tunnel established';
    my $sender = fork // die "fork: $!";
    if ($sender == 0) {
        # The client's write side, while the parent reads.
        write_all($s, $mib);
        shutdown($s, SHUT_WR);
        POSIX::_exit(0);
    }
    my ($got, $ended) = read_to_eof($s, 20);
    waitpid $sender, 0;
    ok $ended, 'client first: the tunnel ends after the origin closes';
    ok $got eq "$mib" . "bye\n",
       'client first: the whole echo, then the reply sent after the end '
       . 'of stream'
       or diag 'got ' . length($got) . ' bytes, ends with '
               . substr($got, -8);
    close $s;
    my $rec = wait_until(sub { (tunnel_records($target))[0] });
    my $down = length($mib) + 4;
    ok $rec && $rec->{mode} eq $want && $rec->{end} eq 'closed'
           && $rec->{up} == length $mib && $rec->{down} == $down,
       "client first: tunnels_log mode=$want end=closed up="
       . length($mib) . " down=$down"
       or diag explain $rec;
}

# Origin first.
{
    my $target = '127.0.0.1:' . $origin->port('shut');
    my ($s, $status, $rest) = tunnel($proxy, $target);
    is $status, 200, 'origin first: tunnel established';
    my ($got, $ended) = read_to_eof($s, 5);
    $got = $rest . $got;
    ok $ended && $got eq "hello\n",
       'origin first: the greeting, then the end of stream';
    sleep 1;
    ok write_all($s, $mib) && shutdown($s, SHUT_WR),
       'origin first: 1 MiB sent a second after the origin half-closed';
    my $rec = wait_until(sub {
        (grep { $_->{bytes} == length $mib } $origin->records('shut'))[0];
    });
    ok $rec && $rec->{sha256} eq sha256_hex($mib),
       'origin first: the origin received all of it'
       or diag explain [$origin->records('shut')];
    close $s;
    my $tr = wait_until(sub { (tunnel_records($target))[0] });
    ok $tr && $tr->{mode} eq $want && $tr->{end} eq 'closed'
           && $tr->{up} == length $mib && $tr->{down} == 6,
       "origin first: tunnels_log mode=$want end=closed up="
       . length($mib) . ' down=6'
       or diag explain $tr;
}

$origin->stop;
