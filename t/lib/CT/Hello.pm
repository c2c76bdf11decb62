package CT::Hello;
# Canned TLS ClientHellos (RFC 8446 section 4.1.2) for the
# ConnectTunnelSNI tests, built here so that a test needs no TLS library
# to make a broken or unusual one:
#   client_hello(sni => NAME, alpn => [protocols], records => N)
# gives the hello's handshake message in N TLS records of near-equal size
# (default 1); without sni there is no server_name extension.
use strict;
use warnings FATAL => 'all';
use Exporter 'import';

our @EXPORT_OK = qw(client_hello);

sub hello_body {
    my (%o) = @_;
    my $ext = '';
    if (defined $o{sni}) {
        my $list = pack 'C n/a*', 0, $o{sni};
        $ext .= pack 'n n/a*', 0, pack('n/a*', $list);
    }
    if ($o{alpn}) {
        my $names = join '', map { pack 'C/a*', $_ } @{ $o{alpn} };
        $ext .= pack 'n n/a*', 16, pack('n/a*', $names);
    }
    # supported_versions: TLS 1.3 and 1.2
    $ext .= pack 'n n/a*', 43, pack('C/a*', pack('n n', 0x0304, 0x0303));
    my $body = pack('n', 0x0303) . ("\x11" x 32) . pack('C/a*', "\x22" x 32)
             . pack('n/a*', pack('n n n', 0x1301, 0x1302, 0xc02f))
             . pack('C/a*', "\0") . pack('n/a*', $ext);
    return "\x01" . substr(pack('N', length $body), 1) . $body;
}

# The handshake message in $records TLS records of near-equal size.
sub client_hello {
    my (%o) = @_;
    my $hs = hello_body(%o);
    my $n = $o{records} // 1;
    my $size = int((length($hs) + $n - 1) / $n);
    my $out = '';
    for (my $off = 0; $off < length $hs; $off += $size) {
        $out .= pack 'C n n/a*', 22, 0x0301, substr($hs, $off, $size);
    }
    return $out;
}

1;
