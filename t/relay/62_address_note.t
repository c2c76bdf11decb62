# The notes and the end-of-tunnel record against what the origin saw.
# The origin (this process) binds the one address it listens on and
# notes, for the connection it accepts, its own local address (the
# address the proxy dialled), its peer's port (the proxy's source port)
# and when the connection opened and closed.  Then:
#   %{tunnel-address}n and the record's address= are that local address;
#   %{proxy-source-port}n is the origin's peer port;
#   the record's duration_ms covers the origin's view of the connection
#   (the CONNECT arrives before the dial, the tunnel ends after the
#   origin's close reaches the proxy), within a generous bound.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Select;
use IO::Socket::IP;
use Time::HiRes qw(time sleep);
use CT::Client qw(read_bytes tunnel vhost_port write_all);
use CT::Logs qw(log_mark log_wait);

# [description, address the origin listens on, host in the CONNECT]
my @cases = (
    [ 'IPv4 literal',            '127.0.0.1', '127.0.0.1' ],
    [ 'another loopback address', '127.0.0.2', '127.0.0.2' ],
    [ 'IPv6 literal',            '::1',       '[::1]' ],
    [ 'a name (hosts file)',     '127.0.0.1', 'localhost' ],
);

# How long the tunnel stays open, and the slack allowed around the
# origin's view of its duration.
my $HOLD = 1.5;
my ($EARLY_MS, $LATE_MS) = (250, 1500);

plan tests => 7 * @cases;

local $SIG{ALRM} = sub { die "test timed out\n" };
local $SIG{PIPE} = 'IGNORE';
alarm 120;

for my $case (@cases) {
    my ($desc, $addr, $host) = @$case;
    my $l = IO::Socket::IP->new(LocalHost => $addr, LocalPort => 0,
                                Listen => 4, ReuseAddr => 1,
                                ($addr =~ /:/ ? (V6Only => 1) : ()))
        or die "listen on $addr: $@";
    my $port = $l->sockport;
    my $target = "$host:$port";
    my $amark = log_mark('notes_access_log');
    my $tmark = log_mark('tunnels_log');

    my ($c, $status) = tunnel(vhost_port('ct_relay_notes'), $target);
    is $status, 200, "$desc: tunnel to $target established";
    my $o = IO::Select->new($l)->can_read(10) ? $l->accept : undef;
    my $opened = time;
    my %seen = $o ? (addr => $o->sockhost, port => $o->peerport) : ();
    my $cport = $c ? $c->sockport : 0;

    # Traffic both ways, an idle spell, then the client ends its side;
    # the origin closes when it sees that.
    my $ok = 0;
    if ($o && $c) {
        $o->autoflush(1);
        write_all($c, "hello $desc\n");
        $ok = read_bytes($o, length "hello $desc\n") eq "hello $desc\n";
        sleep $HOLD;
        shutdown $c, 1;
        my $rest = read_bytes($o, 1, 10);
        $ok &&= $rest eq '';
        close $o;
    }
    my $origin_ms = (time - $opened) * 1000;
    ok $ok, "$desc: the origin got the bytes and the client's end";
    read_bytes($c, 1, 10) if $c;
    close $c if $c;

    my $line = log_wait($amark, qr/^cport=$cport /, 10,
                        log => 'notes_access_log', line => 1) // '';
    my %note = $line =~ /(\w+)=(\S*)/g;
    is $note{addr} // '', $seen{addr} // 'none',
       "$desc: tunnel-address is the address the origin was reached on";
    is $note{sport} // '', $seen{port} // 'none',
       "$desc: proxy-source-port is the origin's peer port";

    my $rec = log_wait($tmark, qr/ target=\S*:$port /, 10,
                       log => 'tunnels_log', line => 1) // '';
    my %r = $rec =~ / (\w+)=(\S+)/g;
    is $r{address} // '', $seen{addr} // 'none',
       "$desc: the end-of-tunnel record's address is the same";
    my $ms = $r{duration_ms} // -1;
    cmp_ok $ms, '>=', $origin_ms - $EARLY_MS,
           "$desc: duration_ms $ms covers the origin's "
           . sprintf('%.0f ms', $origin_ms);
    cmp_ok $ms, '<=', $origin_ms + $LATE_MS,
           "$desc: duration_ms $ms is not far beyond it";
    close $l;
}
