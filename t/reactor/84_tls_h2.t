# Connections a reactor cannot take keep the in-worker path.
#   TLS to the proxy: the TLS state lives in mod_ssl's connection filters
#     and c->pool, which end with the worker, so a tunnel whose client
#     speaks TLS to the proxy must stay in its worker.  An IO::Socket::SSL
#     client's CONNECT works (200, echo, half-close) and is logged
#     mode=worker, while a plain-TCP tunnel on the same server is handed
#     off (mode=reactor in the default run).
#   HTTP/2: a stream has no socket of its own, so its tunnel is relayed
#     in the worker mod_http2 gives the stream (t/bin/h2-connect, on
#     python3-h2, sends the CONNECT with prior knowledge of h2c); the
#     access log says mode=worker.  t/relay/80_http2.t tests the HTTP/2
#     relay itself.
# Runs on a standalone httpd with mod_ssl and mod_http2 and a certificate
# made for the test, so the suite's server needs neither; the TLS case is
# repeated on the suite's server when it has a TLS proxy virtual host.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Socket::INET;
use JSON::PP ();
use Socket qw(SHUT_WR);
use CT::Server qw(free_port suite_mode test_cert wait_until);
use CT::Origin qw(start_origin);
use CT::Client qw(echo_ok read_to_eof tunnel);
use CT::Logs qw(access_lines tunnel_records);

my $libexec = CT::Server::libexecdir();
my $have_h2 = $libexec && -e "$libexec/mod_http2.so";
my $have_ssl = eval { require IO::Socket::SSL; 1 };
my $openssl = (grep { -x "$_/openssl" } split /:/, $ENV{PATH})[0];
my $python = '/usr/bin/python3';
my $h2_client = "$FindBin::Bin/../bin/h2-connect";

plan skip_all => 'IO::Socket::SSL and the openssl program are needed'
    unless $have_ssl && $openssl;
plan tests => 18, need_module('ssl');

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 60;

my $want = suite_mode() eq 'reactor' ? 'reactor' : 'worker';
my $origin = start_origin();
my $target = '127.0.0.1:' . $origin->port('echo');

my $certdir = test_cert();

my $tls_port = free_port();
my $h2_port = free_port();
my $h2_conf = $have_h2 ? <<"EOC" : '';
Listen 127.0.0.1:$h2_port
<VirtualHost 127.0.0.1:$h2_port>
    Protocols h2c http/1.1
</VirtualHost>
EOC
my $httpd = CT::Server->start(
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
    CT::Logs::mark_logs();
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

# HTTP/2: a stream's tunnel is relayed in the stream's worker.
SKIP: {
    skip 'mod_http2 or python3-h2 is not installed', 6
        unless $have_h2 && system($python, '-c', 'import h2') == 0;
    open my $fh, '-|', $python, $h2_client, '--port', $h2_port,
        '--target', $target, '--send', 5000 or die "$h2_client: $!";
    my ($r) = map { JSON::PP::decode_json($_) } grep { /^\{/ } <$fh>;
    close $fh;
    is $r && $r->{status}, 200, 'h2c: CONNECT on a stream is established';
    ok $r && $r->{received_sha256} eq $r->{sent_sha256} && $r->{ended},
       'h2c: the tunnel echoes and ends' or diag explain $r;
    my $line = $r && wait_until(sub {
        (access_lines($r->{local_port}, $alog))[0] });
    ok $line && $line->{status} == 200 && $line->{proto} eq 'HTTP/2.0',
       'h2c: access log: 200 over HTTP/2.0' or diag explain $line;
    is $line && $line->{mode}, 'worker', 'h2c: access log tunnel-mode=worker';
    my ($s1, $st) = tunnel($httpd->port, $target);
    is $st, 200, 'h2c: the server still takes HTTP/1.1 tunnels';
    ok $s1 && echo_ok($s1, "after h2c\n"),
       'h2c: that HTTP/1.1 tunnel echoes';
}

$httpd->stop;
$origin->stop;
