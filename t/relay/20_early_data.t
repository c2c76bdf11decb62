# Bytes a client sends in the same write as the CONNECT head, before it
# has seen the 200 ("optimistic" data, e.g. a TLS ClientHello sent at
# once), are tunnel payload: they must reach the origin exactly once, in
# order, ahead of what the client sends later, and must never be parsed
# as a second request.  The core input filter (or mod_ssl, for a client
# speaking TLS to the proxy) already holds these bytes when the tunnel
# starts, so a relay that only reads the socket loses them.
#
# Each origin is a sink that expects a known number of bytes, answers
# with their count and SHA-256, then counts any extra bytes (a duplicate)
# until the client closes.  Payloads of 40000, 65536 and 65537 bytes sit
# around the 64 KiB a tunnel may take along to a reactor (larger ones keep
# the tunnel in its worker).  Last, the "nc -N" case: the early bytes and
# then the client's end of stream, all before the 200: the origin gets
# the bytes and the end of stream, and its reply still comes back.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use Digest::SHA ();
use Socket qw(SHUT_WR);
use CT::Origin ();
use CT::Client qw(open_tunnel proxy_socket read_head read_to_eof read_upto
                  write_all);

plan tests => 8 * 7 + 4, need_module('ssl');

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 120;

# A TLS 1.2 ClientHello-shaped record: handshake type 1, a random, a
# session id, cipher suites and an SNI extension, as a browser would send
# right behind its CONNECT.
sub client_hello {
    my $sni = 'localhost';
    my $ext_sni = pack('n n n C n a*', 0, length($sni) + 5, length($sni) + 3,
                       0, length $sni, $sni);
    my $suites = pack 'n*', 0x1301, 0x1302, 0xc02f, 0xc030, 0x009c;
    my $body = pack('n', 0x0303) . join('', map { chr(($_ * 37) & 255) }
                                               1 .. 32)
             . pack('C', 32) . ("\x5a" x 32)
             . pack('n', length $suites) . $suites
             . pack('C C', 1, 0)
             . pack('n', length $ext_sni) . $ext_sni;
    my $hs = pack('C', 1) . substr(pack('N', length $body), 1) . $body;
    return pack('C n n', 0x16, 0x0301, length $hs) . $hs;
}

my $payload = CT::Origin::Stream->new(200 * 1024, 11)->next(200 * 1024);
# Around the most a tunnel may take along when it leaves its worker for a
# reactor (64 KiB): below, at and above it.
my %sized = map { $_ => CT::Origin::Stream->new($_, $_)->next($_) }
                40_000, 65_536, 65_537;

# name => [vhost, tls, early bytes, bytes sent after the 200]
my @cases = (
    ['short early bytes', 'ct_all', 0, 'EARLYBYTES', '+AFTER-THE-200'],
    ['200 KiB early payload', 'ct_all', 0, $payload, ''],
    ['a TLS ClientHello', 'ct_all', 0, client_hello(), ''],
    (map { ["$_ bytes of early payload", 'ct_all', 0, $sized{$_}, ''] }
         sort { $a <=> $b } keys %sized),
    ['short early bytes over a TLS proxy', 'ct_relay_tls_proxy', 1,
     'EARLYBYTES', '+AFTER-THE-200'],
    ['200 KiB early payload over a TLS proxy', 'ct_relay_tls_proxy', 1,
     $payload, ''],
);

for my $case (@cases) {
    my ($name, $vhost, $tls, $early, $later) = @$case;
    my $all = $early . $later;
    my $origin = CT::Origin->start('sink', expect => length $all);
    my ($s, $status, $rest) = open_tunnel($vhost, $origin->port,
                                          tls => $tls, after => $early);
    is $status, 200, "$name: the tunnel is established";
    write_all($s, $later) if length $later;

    # The sink's answer, then nothing: not a 400 for bytes taken for a
    # request, not a second copy of anything.
    my $want_reply = sprintf "SINK bytes=%d sha256=%s\n", length $all,
                             Digest::SHA::sha256_hex($all);
    my ($reply, $state) = read_upto($s, length($want_reply) - length $rest,
                                    15);
    $reply = $rest . $reply;
    is $reply, $want_reply, "$name: the origin got every byte, in order";
    my $rep = $origin->wait_for(1, 'sha256', 5) // {};
    is $rep->{bytes}, length $all, "$name: the origin counted them once";
    is $rep->{head}, substr($all, 0, 256),
        "$name: the early bytes came first";
    close $s;
    $rep = $origin->wait_for(1, 'extra', 10) // {};
    is $rep->{extra}, 0, "$name: nothing was repeated after them";
    ok !$rep->{died}, "$name: the origin ran normally"
        or diag $rep->{died};
    is $rep->{error}, '', "$name: the origin saw no error";
    $origin->stop;
}

# Early bytes, then the end of stream, before the 200.
{
    my $origin = CT::Origin->start('sink');
    my $target = '127.0.0.1:' . $origin->port;
    my $early = "GET / HTTP/1.0\r\n\r\n";
    my $s = proxy_socket('ct_all');
    write_all($s, "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n$early");
    shutdown $s, SHUT_WR;
    my ($status, undef, $head, $rest) = read_head($s, 10);
    is $status, 200, 'early bytes and end of stream: the tunnel is established';
    my ($got, $state) = read_to_eof($s, 10, state => 1);
    my $want = sprintf "SINK bytes=%d sha256=%s\n", length $early,
                       Digest::SHA::sha256_hex($early);
    is +($rest // '') . $got, $want,
        "early bytes and end of stream: the origin's reply comes back";
    is $state, 'eof', 'early bytes and end of stream: then the tunnel closes';
    my $rep = $origin->wait_for(1, 'sha256', 5) // {};
    is $rep->{eof}, 1, 'early bytes and end of stream: the origin saw the end';
    close $s;
    $origin->stop;
}
