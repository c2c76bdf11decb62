# CONNECT over HTTP/2 (RFC 9113, 8.5): a tunnel is one stream of the
# client's HTTP/2 connection to the proxy, relayed in the worker that
# mod_http2 gives the stream (a stream has no socket a reactor could
# take).  The client is t/bin/h2-connect on python3-h2; the server is a
# standalone httpd with mod_http2 (h2c with prior knowledge) and mod_ssl
# (h2 by ALPN), so the suite's own server needs neither.
#   - 200 on the stream; several streams of one connection at once, each
#     byte-exact both ways, each its own tunnel (mode=worker, proto
#     HTTP/2.0, end=closed), whatever the suite's relay mode;
#   - 64 MiB both ways at once, byte-exact at the client and the origin;
#   - DATA sent behind the HEADERS, before the 200, reaches the origin;
#   - half-close each way: a client END_STREAM reaches the origin as end
#     of stream while the download goes on; an origin that ends its side
#     first is told to the client as END_STREAM once the client has ended
#     its own (the upload goes on, whole, meanwhile), or by the idle
#     timeout;
#   - the idle timeout ends a stream's tunnel (end=idle-timeout), a
#     client's RST_STREAM ends it at once (end=client-error; the origin
#     sees its connection end within 1.5 s of its start, while the client
#     keeps its HTTP/2 connection 3 s more), also when it follows the
#     client's END_STREAM and the origin is silent;
#   - an origin that resets its connection makes the proxy reset the
#     stream (RST_STREAM, not a clean END_STREAM; end=origin-error);
#   - a refused origin is a 502 on the stream, and the same HTTP/2
#     connection then carries a working tunnel on a new stream;
#   - TLS with ALPN h2 to the proxy.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use JSON::PP ();
use Digest::SHA qw(sha256_hex);
use Socket qw(SOL_SOCKET SO_LINGER);
use CT::Server qw(free_port test_cert wait_until);
use CT::Origin ();
use CT::Logs qw(access_lines log_mark tunnel_records);

my $client = "$FindBin::Bin/../bin/h2-connect";
my $python = '/usr/bin/python3';

my $h2_missing = CT::Server::h2_missing();
plan skip_all => $h2_missing if $h2_missing;
plan tests => 55, need_module('ssl');

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 150;

my $certdir = test_cert();

my $idle_port = free_port();
my $tls_port = free_port();
my $httpd = CT::Server->start(
    modules => ['http2', 'socache_shmcb', 'ssl'],
    conf => <<"EOC");
Protocols h2c http/1.1
H2WindowSize 1048576
SSLSessionCache "shmcb:\@DIR\@/ssl_scache(512000)"
Listen 127.0.0.1:$idle_port
<VirtualHost 127.0.0.1:$idle_port>
    Protocols h2c http/1.1
    ConnectTunnelIdleTimeout 1
</VirtualHost>
Listen 127.0.0.1:$tls_port https
<VirtualHost 127.0.0.1:$tls_port>
    Protocols h2 http/1.1
    SSLEngine on
    SSLCertificateFile "$certdir/cert.pem"
    SSLCertificateKeyFile "$certdir/key.pem"
</VirtualHost>
EOC
my $alog = $httpd->file('access_log');
my $tlog = $httpd->file('tunnels_log');

# Where the access log ended when the last client started.
my $since = 0;

# Run the client; its streams' reports, in stream order.
sub h2 {
    my (%o) = @_;
    $since = log_mark($alog);
    my @cmd = ($python, $client, '--port', $o{port} // $httpd->port,
               '--target', $o{target}, '--timeout', $o{timeout} // 60);
    push @cmd, '--tls', '--ca', "$certdir/cert.pem" if $o{tls};
    for my $k (qw(send seed streams expect reset-after reset-after-end
                  linger then)) {
        push @cmd, "--$k", $o{$k} if defined $o{$k};
    }
    push @cmd, '--early' if $o{early};
    push @cmd, '--no-end' if $o{no_end};
    open my $fh, '-|', @cmd or die "$client: $!";
    my @r = map { JSON::PP::decode_json($_) } grep { /^\{/ } <$fh>;
    close $fh;
    return @r;
}

# Access-log lines of one client connection once there are $n: of the
# last client run only, since its port may have served an earlier one.
sub lines_of {
    my ($cport, $n) = @_;
    my @l;
    wait_until(sub { (@l = access_lines($cport, $alog, $since)) >= $n });
    return @l;
}

my $mib = 1 << 20;

# Four streams of one connection, each its own tunnel.
{
    my $o = CT::Origin->start('echo');
    my @r = h2(target => "127.0.0.1:" . $o->port, send => $mib,
               streams => 4);
    is scalar @r, 4, 'four streams reported';
    is scalar(grep { $_->{status} == 200 } @r), 4,
       'every stream is answered 200';
    is scalar(grep { $_->{received} == $mib
                     && $_->{received_sha256} eq $_->{sent_sha256}
                     && $_->{ended} && !$_->{reset} } @r), 4,
       'every stream echoes its 1 MiB byte-exact and ends cleanly';
    my %want = map { $_->{sent_sha256} => 1 } @r;
    is scalar(keys %want), 4, 'the four streams carried different bytes';
    my %got = map { ($o->wait_for($_, 'sha256') // {})->{sha256} // '' => 1 }
              1 .. 4;
    is_deeply \%got, \%want, 'the origin got each stream whole';
    my @l = lines_of($r[0]{local_port}, 4);
    is scalar(grep { $_->{proto} eq 'HTTP/2.0' && $_->{status} == 200
                     && $_->{mode} eq 'worker' && $_->{end} eq 'closed'
                     && $_->{up} == $mib && $_->{down} == $mib } @l), 4,
       'access log: four HTTP/2.0 tunnels, mode=worker end=closed, exact'
       or diag explain \@l;
    $o->stop;
}

# 64 MiB both ways at once.
{
    my $o = CT::Origin->start('echo');
    my ($r) = h2(target => "127.0.0.1:" . $o->port, send => 64 * $mib,
                 seed => 64);
    is $r->{status}, 200, '64 MiB: established';
    is $r->{received}, 64 * $mib, '64 MiB: every byte came back';
    is $r->{received_sha256}, $r->{sent_sha256}, '64 MiB: byte-exact';
    my $rep = $o->wait_for(1, 'sha256');
    ok $rep && $rep->{bytes} == 64 * $mib
           && $rep->{sha256} eq $r->{sent_sha256},
       '64 MiB: the origin got it whole' or diag explain $rep;
    my ($rec) = wait_until(sub { my @t = grep { $_->{up} == 64 * $mib }
                                         tunnel_records("127.0.0.1:"
                                             . $o->port, $tlog);
                                 $t[0] });
    ok $rec && $rec->{down} == 64 * $mib && $rec->{mode} eq 'worker',
       '64 MiB: tunnels_log up and down exact, mode=worker'
       or diag explain $rec;
    $o->stop;
}

# Bytes behind the HEADERS, sent before the 200 came.
{
    my $o = CT::Origin->start('echo');
    my ($r) = h2(target => "127.0.0.1:" . $o->port, send => 100_000,
                 early => 1);
    is $r->{status}, 200, 'early data: established';
    is $r->{received_sha256}, $r->{sent_sha256},
       'early data: echoed byte-exact';
    my $rep = $o->wait_for(1, 'sha256');
    is $rep && $rep->{sha256}, $r->{sent_sha256},
       'early data: the origin got all of it, in order';
    $o->stop;
}

# The origin ends its side first, and the client uploads on: 8 MiB, more
# than the stream's window.  END_STREAM is held back until the client has
# ended its side (mod_http2 drops a stream's unread input once END_STREAM
# has gone both ways), so every byte reaches the origin.
{
    my $o = CT::Origin->start('shut_first');
    my ($r) = h2(target => "127.0.0.1:" . $o->port, send => 8 * $mib,
                 seed => 13, linger => 1, timeout => 30);
    is $r->{status}, 200, 'origin end first: established';
    ok $r->{received} == 18
           && $r->{received_sha256} eq sha256_hex("HELLO FROM ORIGIN\n")
           && $r->{ended} && !$r->{reset},
       'origin end first: the greeting, byte-exact, then END_STREAM'
       or diag explain $r;
    is $r->{sent}, 8 * $mib, 'origin end first: the client sent 8 MiB';
    my $rep = $o->wait_for(1, 'sha256', 20);
    ok $rep && $rep->{bytes} == 8 * $mib && $rep->{eof}
           && $rep->{sha256} eq $r->{sent_sha256},
       'origin end first: the origin got all of it, byte-exact, then the '
       . 'end of stream' or diag explain $rep;
    my @l = lines_of($r->{local_port}, 1);
    is $l[0] && $l[0]->{end}, 'closed', 'origin end first: end=closed'
        or diag explain \@l;
    $o->stop;
}

# A client that waits for the origin's end without ending its own side
# gets END_STREAM when the idle timeout (1 s on that virtual host) ends
# the tunnel, after every byte.
{
    my $o = CT::Origin->start('source', bytes => 1000, seed => 11);
    my ($r) = h2(port => $idle_port, target => "127.0.0.1:" . $o->port,
                 no_end => 1, timeout => 20);
    is $r->{status}, 200, 'origin end, client open: established';
    ok $r->{received} == 1000
           && $r->{received_sha256}
              eq CT::Origin::Stream->digest_of(1000, 11),
       'origin end, client open: its 1000 bytes came through'
       or diag explain $r;
    ok $r->{ended} || $r->{reset},
       'origin end, client open: then the stream ends' or diag explain $r;
    my @l = lines_of($r->{local_port}, 1);
    is $l[0] && $l[0]->{end}, 'idle-timeout',
       'origin end, client open: ended by the idle timeout'
       or diag explain \@l;
    $o->stop;
}

# The client half-closes first (END_STREAM at once); the download goes on.
{
    my $o = CT::Origin->start('source', bytes => 8 * $mib, seed => 3);
    my ($r) = h2(target => "127.0.0.1:" . $o->port);
    is $r->{status}, 200, 'client half-close: established';
    is $r->{received}, 8 * $mib,
       'client half-close: 8 MiB came down after END_STREAM';
    is $r->{received_sha256},
       CT::Origin::Stream->digest_of(8 * $mib, 3),
       'client half-close: byte-exact';
    ok $r->{ended} && !$r->{reset}, 'client half-close: then END_STREAM';
    my @l = lines_of($r->{local_port}, 1);
    is $l[0] && $l[0]->{end}, 'closed', 'client half-close: end=closed';
    $o->stop;
}

# Idle timeout (1 s on that virtual host): the stream ends by itself.
{
    my $o = CT::Origin->start('echo');
    my ($r) = h2(port => $idle_port, target => "127.0.0.1:" . $o->port,
                 send => 10, no_end => 1, timeout => 20);
    is $r->{status}, 200, 'idle: established';
    is $r->{received}, 10, 'idle: echoed';
    ok $r->{ended} || $r->{reset},
       'idle: the proxy ended the stream (the client waits up to 20 s)';
    my @l = lines_of($r->{local_port}, 1);
    is $l[0] && $l[0]->{end}, 'idle-timeout',
       'idle: access log end=idle-timeout' or diag explain \@l;
    $o->stop;
}

# A client's RST_STREAM ends the tunnel at once, and the origin's side:
# the origin, which writes as fast as it can, times its connection from
# its accept to its failed write.  The client keeps its HTTP/2 connection
# 3 s after the reset, so a tunnel that waited for the connection's end
# would last 3 s or more.
{
    my $o = CT::Origin->start('source', bytes => 512 * $mib, seed => 5);
    my ($r) = h2(target => "127.0.0.1:" . $o->port, no_end => 1,
                 'reset-after' => 1, linger => 3);
    is $r->{status}, 200, 'reset: established';
    ok $r->{cancelled}, 'reset: the client cancelled the stream';
    my @l = lines_of($r->{local_port}, 1);
    is $l[0] && $l[0]->{end}, 'client-error',
       'reset: access log end=client-error' or diag explain \@l;
    # The client's stream window (16 MiB) and the proxy's buffers bound
    # what can come down once the reset is sent.
    ok $l[0] && $l[0]->{down} < 32 * $mib,
       'reset: the tunnel stopped within the stream window (< 32 MiB)'
       or diag explain \@l;
    my $rep = $o->wait_for(1, 'finished', 20);
    ok $rep && $rep->{error} && !$rep->{done},
       'reset: the origin saw its connection end early'
       or diag explain $rep;
    my $took = $rep && $rep->{finished} - $rep->{accepted};
    my $after = $rep && $r->{cancelled_at}
                && $rep->{finished} - $r->{cancelled_at};
    diag sprintf 'reset: the origin connection lasted %.3f s, %.3f s after '
                 . 'the reset', $took // -1, $after // -1;
    ok defined $took && $took < 1.5,
       'reset: the origin connection ended within 1.5 s of its accept'
       or diag explain $rep;
    $o->stop;
}

# The client ends its side, then resets the stream while the origin is
# silent (it answers only after 60 s, the server's Timeout): the reset is
# seen at once, not when the origin next speaks or the idle timeout ends
# the tunnel.
{
    my $o = CT::Origin->start('sink', reply_delay => 60);
    my ($r) = h2(target => "127.0.0.1:" . $o->port, send => 10,
                 'reset-after-end' => 1, linger => 3, timeout => 20);
    is $r->{status}, 200, 'reset after END_STREAM: established';
    ok $r->{cancelled} && !$r->{ended},
       'reset after END_STREAM: the client reset the stream'
       or diag explain $r;
    my $rep = $o->wait_for(1, 'sha256');
    ok $rep && $rep->{bytes} == 10 && $rep->{eof},
       'reset after END_STREAM: the origin got the bytes and the end of '
       . 'stream first' or diag explain $rep;
    my @l = lines_of($r->{local_port}, 1);
    is $l[0] && $l[0]->{end}, 'client-error',
       'reset after END_STREAM: access log end=client-error'
       or diag explain \@l;
    $o->stop;
}

# The origin resets its connection in the middle of a download: the
# client must not take that for a clean end (END_STREAM); the proxy
# resets the stream.
{
    my $o = CT::Origin->start(sub {
        my ($c, $report) = @_;
        syswrite $c, 'x' x 65536 for 1 .. 4;
        $report->(sent => 4 * 65536);
        sleep 1;
        setsockopt $c, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0);
        close $c;
    });
    my ($r) = h2(target => "127.0.0.1:" . $o->port, no_end => 1,
                 timeout => 20);
    is $r->{status}, 200, 'origin reset: established';
    ok $r->{reset} && !$r->{ended},
       'origin reset: the client sees RST_STREAM, not END_STREAM'
       or diag explain $r;
    ok $r->{reset_code}, 'origin reset: with an error code'
       or diag explain $r;
    my @l = lines_of($r->{local_port}, 1);
    is $l[0] && $l[0]->{end}, 'origin-error',
       'origin reset: access log end=origin-error' or diag explain \@l;
    $o->stop;
}

# A refused origin: 502 on the stream; then a new stream of the same
# connection is a working tunnel.
{
    my $o = CT::Origin->start('echo');
    my $closed = free_port();
    my @r = h2(target => "127.0.0.1:$closed", streams => 1,
               then => "127.0.0.1:" . $o->port, send => 1000);
    is $r[0] && $r[0]->{status}, 502, 'refused origin: 502 on the stream';
    ok $r[0] && $r[0]->{ended}
           && (!$r[0]->{reset} || $r[0]->{reset_code} == 0),
       'refused origin: the error stream ends normally (END_STREAM; a '
       . 'reset, if any, is NO_ERROR)' or diag explain \@r;
    my $ok = $r[1];
    ok $ok && $ok->{status} == 200 && $ok->{sent} == 1000
           && $ok->{received_sha256} eq $ok->{sent_sha256} && $ok->{ended},
       'refused origin: a second stream of the connection echoes 1000 '
       . 'bytes byte-exact' or diag explain \@r;
    my $rep = $o->wait_for(1, 'finished');
    is $rep && $rep->{bytes}, 1000,
       'refused origin: the origin got the second stream\'s bytes'
       or diag explain $rep;
    my @l = lines_of($r[0]->{local_port}, 2);
    is join(' ', map { "$_->{status} $_->{proto}" } @l),
       '502 HTTP/2.0 200 HTTP/2.0',
       'refused origin: the one client connection has two access-log '
       . 'lines, 502 then 200, over HTTP/2.0' or diag explain \@l;
    $o->stop;
}

# TLS to the proxy, HTTP/2 by ALPN.
{
    my $o = CT::Origin->start('echo');
    my ($r) = h2(port => $tls_port, tls => 1,
                 target => "127.0.0.1:" . $o->port, send => 4 * $mib,
                 seed => 9);
    is $r && $r->{status}, 200, 'TLS h2: established';
    ok $r && $r->{received} == 4 * $mib
           && $r->{received_sha256} eq $r->{sent_sha256},
       'TLS h2: 4 MiB echoed byte-exact' or diag explain $r;
    my @l = $r ? lines_of($r->{local_port}, 1) : ();
    ok $l[0] && $l[0]->{proto} eq 'HTTP/2.0' && $l[0]->{mode} eq 'worker'
           && $l[0]->{end} eq 'closed',
       'TLS h2: access log HTTP/2.0, mode=worker, end=closed'
       or diag explain \@l;
    $o->stop;
}

ok !CT::Logs::log_lines(qr/AH00052|AH00051|segfault/,
                           $httpd->file('error_log')),
   'no child crashed';
$httpd->stop;
