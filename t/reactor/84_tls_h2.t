# Connections a reactor cannot take keep the in-worker path.
#   TLS to the proxy: the TLS state lives in mod_ssl's connection filters
#     and c->pool, which end with the worker, so a tunnel whose client
#     speaks TLS to the proxy must stay in its worker.  An IO::Socket::SSL
#     client's CONNECT works (200, echo, half-close) and is logged
#     mode=worker, while a plain-TCP tunnel on the same server is handed
#     off (mode=reactor in the default run).
#   HTTP/2: a stream has no socket of its own; the module answers 501 to
#     a CONNECT on an h2 stream (by design, for now) and hands nothing
#     off.  No HTTP/2 client on the test machine can send a CONNECT
#     (curl cannot), so the test speaks h2c with prior knowledge itself:
#     a SETTINGS frame, then a HEADERS frame with :method CONNECT and
#     :authority; it reads the reply's :status (HPACK, digits only).
# Runs on a standalone httpd with mod_ssl and mod_http2 and a certificate
# made for the test, so the suite's server needs neither; the TLS case is
# repeated on the suite's server when it has a TLS proxy virtual host.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use File::Temp ();
use IO::Select;
use IO::Socket::INET;
use Socket qw(SHUT_WR);
use Time::HiRes qw(time);
use CT::Reactor qw(suite_mode start_origin tunnel echo_ok read_to_eof
                   write_all wait_until access_lines tunnel_records
                   log_lines free_port);

my $libexec = CT::Reactor::Httpd::libexecdir();
my $have_h2 = $libexec && -e "$libexec/mod_http2.so";
my $have_ssl = eval { require IO::Socket::SSL; 1 };
my $openssl = (grep { -x "$_/openssl" } split /:/, $ENV{PATH})[0];

plan skip_all => 'IO::Socket::SSL and the openssl program are needed'
    unless $have_ssl && $openssl;
plan tests => 20, need_module('ssl');

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 60;

my $want = suite_mode() eq 'reactor' ? 'reactor' : 'worker';
my $origin = start_origin();
my $target = '127.0.0.1:' . $origin->port('echo');

# A certificate for CN=localhost, for this test only.
my $certdir = File::Temp::tempdir('ct-cert-XXXXXX', TMPDIR => 1,
                                  CLEANUP => 1);
system("$openssl/openssl req -x509 -newkey ec -pkeyopt "
       . "ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost "
       . "-addext subjectAltName=DNS:localhost "
       . "-keyout $certdir/key.pem -out $certdir/cert.pem 2>/dev/null") == 0
    or die 'openssl req failed';
chmod 0644, "$certdir/key.pem";

my $tls_port = free_port();
my $h2_port = free_port();
my $h2_conf = $have_h2 ? <<"EOC" : '';
Listen 127.0.0.1:$h2_port
<VirtualHost 127.0.0.1:$h2_port>
    Protocols h2c http/1.1
</VirtualHost>
EOC
my $httpd = CT::Reactor::Httpd->start(
    modules => ['socache_shmcb', 'ssl', $have_h2 ? ('http2') : ()],
    conf => <<"EOC" . $h2_conf);
SSLSessionCache "shmcb:\@DIR\@/ssl_scache(512000)"
Listen 127.0.0.1:$tls_port https
<VirtualHost 127.0.0.1:$tls_port>
    SSLEngine on
    SSLCertificateFile "$certdir/cert.pem"
    SSLCertificateKeyFile "$certdir/key.pem"
</VirtualHost>
EOC
my $alog = $httpd->file('access_log');
my $tlog = $httpd->file('tunnels_log');

# TLS to the proxy.
{
    my $s = IO::Socket::SSL->new(
        PeerAddr => '127.0.0.1', PeerPort => $tls_port, Timeout => 10,
        SSL_verify_mode => IO::Socket::SSL::SSL_VERIFY_PEER(),
        SSL_ca_file => "$certdir/cert.pem", SSL_hostname => 'localhost',
        SSL_verifycn_name => 'localhost', SSL_verifycn_scheme => 'http');
    ok $s, 'TLS: handshake with the proxy'
        or diag IO::Socket::SSL::errstr();
    my $cport = $s ? $s->sockport : 0;
    my $reply = '';
    if ($s) {
        print $s "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n";
        while ($reply !~ /\r\n\r\n/) {
            my $n = sysread($s, $reply, 4096, length $reply);
            last unless $n;
        }
    }
    like $reply, qr{^HTTP/1\.1 200 }, 'TLS: CONNECT is established';
    my $echo = '';
    if ($s) {
        print $s "over tls\n";
        while (length $echo < 9) {
            my $n = sysread($s, $echo, 9 - length $echo, length $echo);
            last unless $n;
        }
    }
    is $echo, "over tls\n", 'TLS: the tunnel echoes';
    my $line = wait_until(sub { (access_lines($cport, $alog))[0] }, 1);
    ok !$line, 'TLS: no access-log line while the tunnel runs '
               . '(no hand-off)';
    close $s if $s;
    $line = wait_until(sub { (access_lines($cport, $alog))[0] });
    is $line && $line->{mode}, 'worker', 'TLS: access log tunnel-mode=worker';
    my $rec = wait_until(sub { (tunnel_records($target, $tlog))[0] });
    ok $rec && $rec->{mode} eq 'worker' && $rec->{up} == 9
           && $rec->{down} == 9,
       'TLS: tunnels_log mode=worker up=9 down=9'
       or diag explain $rec;
}

# Plain TCP on the same server, for contrast.
{
    my ($s, $status) = tunnel($httpd->port, $target);
    is $status, 200, 'plain: CONNECT is established';
    ok echo_ok($s, "plain\n"), 'plain: the tunnel echoes';
    my $cport = $s->sockport;
    shutdown($s, SHUT_WR);
    read_to_eof($s);
    close $s;
    my $line = wait_until(sub { (access_lines($cport, $alog))[0] });
    is $line && $line->{mode}, $want, "plain: access log tunnel-mode=$want";
}

# TLS to the suite's own server, through the relay tests' HTTPS-proxy
# virtual host when the suite has one: the suite's configuration must
# keep TLS tunnels in workers too.
SKIP: {
    my $vh = Apache::Test::config()->{vhosts}->{ct_relay_tls_proxy};
    my $ca = Apache::Test::config()->{vars}->{sslca} . '/asf/certs/ca.crt';
    skip 'the suite has no TLS proxy virtual host (ct_relay_tls_proxy) or '
         . 'no test CA', 3 unless $vh && -e $ca;
    CT::Reactor::mark_logs();
    my $s = IO::Socket::SSL->new(
        PeerAddr => '127.0.0.1', PeerPort => $vh->{port}, Timeout => 10,
        SSL_verify_mode => IO::Socket::SSL::SSL_VERIFY_PEER(),
        SSL_ca_file => $ca, SSL_hostname => 'localhost',
        SSL_verifycn_name => 'localhost', SSL_verifycn_scheme => 'http');
    my $reply = '';
    if ($s) {
        print $s "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n";
        while ($reply !~ /\r\n\r\n/) {
            my $n = sysread($s, $reply, 4096, length $reply);
            last unless $n;
        }
    }
    like $reply, qr{^HTTP/1\.1 200 }, 'suite TLS proxy: CONNECT established'
        or diag IO::Socket::SSL::errstr();
    my $echo = '';
    if ($s) {
        print $s "suite tls\n";
        while (length $echo < 10) {
            my $n = sysread($s, $echo, 10 - length $echo, length $echo);
            last unless $n;
        }
        close $s;
    }
    is $echo, "suite tls\n", 'suite TLS proxy: the tunnel echoes';
    my $rec = wait_until(sub { (tunnel_records($target))[0] });
    ok $rec && $rec->{mode} eq 'worker' && $rec->{up} == 10,
       'suite TLS proxy: tunnels_log mode=worker up=10'
       or diag explain $rec;
}

# HTTP/2.
SKIP: {
    skip 'mod_http2 is not installed', 7 unless $have_h2;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $h2_port, Timeout => 10);
    ok $s, 'h2c: connected';
    my $cport = $s->sockport;
    my $frame = sub {
        my ($type, $flags, $stream, $payload) = @_;
        return substr(pack('N', length $payload), 1)
               . pack('CCN', $type, $flags, $stream) . $payload;
    };
    # Literal header fields without indexing, names from the static
    # table: 2 is :method, 1 is :authority.
    my $block = "\x02" . chr(length 'CONNECT') . 'CONNECT'
              . "\x01" . chr(length $target) . $target;
    write_all($s, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                  . $frame->(4, 0, 0, '')              # SETTINGS
                  . $frame->(1, 0x4, 1, $block));     # HEADERS
    my ($status, $ended, $reset) = h2_response($s, $frame);
    is $status, 501, 'h2c: CONNECT on an HTTP/2 stream is answered 501';
    ok $ended || $reset, 'h2c: and the stream is over';
    close $s;
    my $line = wait_until(sub { (access_lines($cport, $alog))[0] });
    ok $line && $line->{status} == 501 && $line->{proto} eq 'HTTP/2.0',
       'h2c: access log: 501 over HTTP/2.0'
       or diag explain $line;
    ok $line && $line->{mode} eq '-', 'h2c: access log: no tunnel-mode';
    ok scalar log_lines(qr/CT00015: CONNECT over HTTP\/2 is not supported/,
                        $httpd->file('error_log')),
       'h2c: the error log says why (CT00015)';
    my ($st) = tunnel($httpd->port, $target);
    ok $st, 'h2c: the server still takes HTTP/1.1 tunnels';
}

ok $httpd->stop, 'the standalone server is stopped';
$origin->stop;

# Read frames until stream 1's HEADERS (its :status), a RST_STREAM or a
# GOAWAY: (status, END_STREAM seen, reset seen).
sub h2_response {
    my ($s, $frame) = @_;
    my $buf = '';
    my $deadline = time + 10;
    my ($status, $ended, $reset);
    my $sel = IO::Select->new($s);
    while (time < $deadline) {
        if (length $buf >= 9) {
            my ($l1, $l2, $type, $flags, $stream)
                = unpack 'CnCCN', substr $buf, 0, 9;
            my $len = ($l1 << 16) | $l2;
            if (length $buf >= 9 + $len) {
                my $payload = substr $buf, 9, $len;
                substr($buf, 0, 9 + $len, '');
                $stream &= 0x7fffffff;
                if ($type == 4 && !($flags & 1)) {
                    write_all($s, $frame->(4, 1, 0, ''));   # SETTINGS ACK
                }
                elsif ($type == 1 && $stream == 1) {
                    $status = hpack_status($payload, $flags);
                    $ended = $flags & 1;
                    return ($status, $ended, $reset) if $ended;
                }
                elsif ($type == 0 && $stream == 1 && $flags & 1) {
                    return ($status, 1, $reset);
                }
                elsif ($type == 3 && $stream == 1) {
                    return ($status, $ended, 1);
                }
                elsif ($type == 7) {
                    return ($status, $ended, 1);
                }
                next;
            }
        }
        last unless $sel->can_read($deadline - time);
        my $n = sysread($s, $buf, 65536, length $buf);
        last unless $n;
    }
    return ($status, $ended, $reset);
}

# HPACK integer with an N-bit prefix at $$pos.
sub hpack_int {
    my ($bytes, $pos, $bits) = @_;
    my $max = (1 << $bits) - 1;
    my $v = ord(substr $bytes, $$pos++, 1) & $max;
    return $v if $v < $max;
    my $shift = 0;
    while (1) {
        my $b = ord substr $bytes, $$pos++, 1;
        $v += ($b & 0x7f) << $shift;
        $shift += 7;
        return $v unless $b & 0x80;
    }
}

# Huffman code (RFC 7541, appendix B) of the ten digits: all a status
# needs.  undef for anything else.
sub huffman_digits {
    my $bits = unpack 'B*', shift;
    my %code = ('00000' => 0, '00001' => 1, '00010' => 2, '011001' => 3,
                '011010' => 4, '011011' => 5, '011100' => 6,
                '011101' => 7, '011110' => 8, '011111' => 9);
    my $out = '';
    while (length $bits) {
        return $out if length $bits < 8 && $bits !~ /0/;    # EOS padding
        my ($c) = grep { substr($bits, 0, length $_) eq $_ } keys %code;
        return unless defined $c;
        $out .= $code{$c};
        substr($bits, 0, length $c, '');
    }
    return $out;
}

# The :status of a HEADERS frame's header block (the first field).
sub hpack_status {
    my ($p, $flags) = @_;
    my $pos = 0;
    my $pad = 0;
    if ($flags & 0x8) {
        $pad = ord substr $p, 0, 1;
        $pos = 1;
    }
    $pos += 5 if $flags & 0x20;
    my @static = (undef, (undef) x 7, 200, 204, 206, 304, 400, 404, 500);
    while ($pos < length($p) - $pad) {
        my $b = ord substr $p, $pos, 1;
        if ($b & 0x80) {
            return $static[hpack_int($p, \$pos, 7)];
        }
        if (($b & 0xe0) == 0x20) {          # dynamic table size update
            hpack_int($p, \$pos, 5);
            next;
        }
        my $index = hpack_int($p, \$pos, ($b & 0x40) ? 6 : 4);
        return unless $index >= 8 && $index <= 14;
        my $huff = ord(substr $p, $pos, 1) & 0x80;
        my $len = hpack_int($p, \$pos, 7);
        my $v = substr $p, $pos, $len;
        return $huff ? huffman_digits($v) : $v;
    }
    return;
}
