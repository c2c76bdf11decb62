# The request notes every CONNECT leaves (format ct_notes in
# t/conf/relay.conf.in, logs/notes_log), checked against what the origin
# saw and against each other:
#   - the target as validated (tunnel-host, tunnel-port), the address and
#     port dialled, our end of the connection (tunnel-local-address and
#     proxy-source-port: the peer the origin saw);
#   - when each step ended, in ms since the CONNECT arrived: resolve <=
#     connect <= upstream reply <= first byte from the origin <= duration,
#     "-" for a step that did not happen (no upstream; a refused connect
#     has no connect and no first byte; a failed lookup has nothing);
#   - the origin waits 300 ms before it speaks, so the first byte comes at
#     least that long after the connect;
#   - bytes each way against what the origin sent and received.
# Chained, the upstream is a fake proxy this test runs: it answers the
# CONNECT after 100 ms and then plays the same origin, so the upstream's
# reply time comes at least 100 ms after the connect.
# A tunnel handed to a reactor (the default run) is logged at the
# hand-off, before the origin speaks: its first-byte time and byte counts
# are then in the end-of-tunnel record (ConnectTunnelLog), checked the
# same way; in a worker (CT_WORKER, CT_FILTER_PATH) the notes have them.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Socket::IP;
use Time::HiRes qw(sleep);
use CT::Origin ();
use CT::Client qw(open_tunnel raw_connect read_bytes read_to_eof);
use CT::Logs qw(log_mark log_wait wait_tunnel_record);

plan tests => 3 * 15 + 6 + 6;

my $have_v6 = IO::Socket::IP->new(LocalHost => '::1', LocalPort => 0,
                                  Listen => 1) ? 1 : 0;

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 120;

# An origin that waits 300 ms, says "hello", then reads to the end and
# reports how many bytes it got.
my $greeter = sub {
    my ($c, $report) = @_;
    sleep 0.3;
    syswrite $c, 'hello';
    my $got = 0;
    while (1) {
        my $n = sysread $c, my $buf, 65536;
        last unless $n;
        $got += $n;
    }
    $report->(got => $got);
};

# The same origin behind a fake upstream proxy's 200.
my $upstream = sub {
    my ($c, $report) = @_;
    my $head = '';
    while ($head !~ /\r\n\r\n/) {
        my $n = sysread $c, $head, 4096, length $head;
        return unless $n;
    }
    $report->(request => $head =~ /^(CONNECT \S+)/ ? $1 : '?');
    sleep 0.1;
    syswrite $c, "HTTP/1.1 200 OK\r\n\r\n";
    $greeter->($c, $report);
};

# A Define of the generated relay.conf.
sub relay_define {
    my $name = shift;
    my $file = join '/', Apache::Test::vars('t_conf'), 'relay.conf';
    open my $fh, '<', $file or die "open $file: $!";
    while (<$fh>) {
        return $1 if /^\s*Define\s+\Q$name\E\s+(\S+)/;
    }
    die "no 'Define $name' in $file";
}
my $upstream_port = relay_define('ct_notes_upstream_port');

sub notes_of {
    my $line = shift // '';
    return { $line =~ / (\w+)=(\S+)/g };
}

sub in_order {
    my @v = @_;
    for my $i (1 .. $#v) {
        return 0 if $v[$i] !~ /^\d+$/ || $v[$i - 1] !~ /^\d+$/
                    || $v[$i - 1] > $v[$i];
    }
    return 1;
}

for my $case (['direct', 'ct_notes', '127.0.0.1'],
              ['IPv6 origin', 'ct_notes', '::1'],
              ['chained', 'ct_notes_chain', '127.0.0.1']) {
    my ($name, $vhost, $addr) = @$case;
  SKIP: {
    skip "$name: no ::1 on this host", 15 if $addr eq '::1' && !$have_v6;
    my $host = $addr =~ /:/ ? "[$addr]" : $addr;
    my $mark = log_mark('notes_log');
    my $tmark = log_mark('tunnels_log');
    my $chained = $vhost eq 'ct_notes_chain';
    my $origin = $chained
        ? CT::Origin->start($upstream, port => $upstream_port)
        : CT::Origin->start($greeter, addr => $addr);
    # Chained, the target is only a name for the upstream to dial.
    my $port = $chained ? 9 : $origin->port;
    my ($s, $status, $rest) = open_tunnel($vhost, $port, host => $host);
    is $status, 200, "$name: the tunnel is established";
    my $hello = $rest . read_bytes($s, 5 - length $rest);
    is $hello, 'hello', "$name: the origin's greeting arrives";
    print $s 'x' x 100;
    shutdown $s, 1;
    read_to_eof($s, 10);
    close $s;
    my $seen = $origin->wait_for(1, 'got', 10) // {};
    is $seen->{got}, 100, "$name: the origin got the 100 bytes";

    my $n = notes_of(log_wait($mark, qr/"CONNECT \Q$host\E:$port /, 10,
                              log => 'notes_log', line => 1));
    my $rec = wait_tunnel_record($tmark, "$host:$port", 10) // {};
    is "$n->{host}:$n->{port}", "$addr:$port",
        "$name: tunnel-host and tunnel-port are the target";
    if ($chained) {
        is "$n->{addr}:$n->{aport}", "127.0.0.1:$upstream_port",
            "$name: the address dialled is the upstream proxy's";
        is $n->{sport}, $seen->{peer_port},
            "$name: proxy-source-port is the port the upstream saw";
        is $seen->{request}, "CONNECT $host:$port",
            "$name: the upstream was asked for the target";
        ok in_order(@$n{qw(resolve connect upstream)})
           && $n->{upstream} >= $n->{connect} + 80,
            "$name: resolve <= connect <= upstream reply, 100 ms later "
            . "($n->{resolve} $n->{connect} $n->{upstream})";
    }
    else {
        is "$n->{addr}:$n->{aport}", "$addr:$port",
            "$name: the address and port dialled";
        is $n->{sport}, $seen->{peer_port},
            "$name: proxy-source-port is the port the origin saw";
        is $n->{laddr}, $seen->{peer_addr},
            "$name: tunnel-local-address is the address the origin saw";
        is "$n->{upstream}", '-', "$name: no upstream, no reply time";
    }
    like $n->{resolve}, qr/^\d+$/, "$name: a resolve time";
    ok in_order($n->{resolve}, $n->{connect}),
        "$name: resolve <= connect ($n->{resolve} $n->{connect})";
    my $last_setup = $n->{upstream} =~ /^\d+$/ ? $n->{upstream}
                                               : $n->{connect};
    # Where the first byte is known: the notes (worker) or the record.
    my ($first, $duration, $up, $down) =
        ($n->{end} // '') eq 'handed-off'
        ? @$rec{qw(first_byte_ms duration_ms up down)}
        : @$n{qw(first duration up down)};
    ok in_order($last_setup, $first, $duration),
        "$name: set-up <= first byte <= duration "
        . "($last_setup $first $duration)";
    cmp_ok $first // 0, '>=', ($last_setup =~ /^\d+$/ ? $last_setup
                                                       : 0) + 250,
        "$name: the first byte came after the origin's 300 ms wait";
    is $rec->{first_byte_ms}, $first,
        "$name: the record's first byte time is the same";
    is "$up $down", '100 5', "$name: bytes each way as the origin saw them";
    is $rec->{address}, $addr,
        "$name: the record's address";
    $origin->stop;
  }
}

# A refused connect: the lookup happened, the connect and the first byte
# did not; the target is known, no address was connected.
{
    my $l = IO::Socket::IP->new(LocalHost => '127.0.0.1', LocalPort => 0,
                                Listen => 1) or die "listen: $@";
    my $port = $l->sockport;
    close $l;
    my $mark = log_mark('notes_log');
    my ($s, $status) = raw_connect('ct_notes', "127.0.0.1:$port");
    is $status, 502, 'refused: 502';
    close $s if $s;
    my $n = notes_of(log_wait($mark, qr/"CONNECT 127\.0\.0\.1:$port /, 10,
                              log => 'notes_log', line => 1));
    is "$n->{host} $n->{port}", "127.0.0.1 $port",
        'refused: the target is noted';
    like $n->{resolve}, qr/^\d+$/, 'refused: a resolve time';
    is "$n->{connect} $n->{upstream} $n->{first}", '- - -',
        'refused: no connect, no upstream, no first byte';
    is "$n->{addr} $n->{sport}", '- -', 'refused: no address connected';
    is $n->{end}, '-', 'refused: no tunnel, no end';
}

# A name that does not resolve: nothing happened but the target check.
{
    my $mark = log_mark('notes_log');
    my ($s, $status) = raw_connect('ct_notes', '-no-such-host.invalid:443');
    my $target = '-no-such-host.invalid';
    ok defined $status && $status >= 400, "unresolvable: refused ($status)";
    close $s if $s;
    my $n = notes_of(log_wait($mark, qr/"CONNECT \Q$target\E:443 /, 10,
                              log => 'notes_log', line => 1));
    is $n->{host}, $target, 'unresolvable: tunnel-host';
    is $n->{port}, 443, 'unresolvable: tunnel-port';
    is "$n->{resolve} $n->{connect} $n->{first}", '- - -',
        'unresolvable: no resolve, no connect, no first byte';
    is $n->{addr}, '-', 'unresolvable: no address';
    is $n->{duration}, '-', 'unresolvable: no tunnel, no duration';
}
