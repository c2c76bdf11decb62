# Every refusal tells the client why, in an RFC 9209 Proxy-Status header
# ("<proxy name>; error=<type>"), with the status that goes with it:
#   403 port not in AllowCONNECT        http_request_denied
#   403 destination rule                 destination_ip_prohibited
#   400 malformed target                 http_request_error
#   502 nothing listens on the port      connection_refused
#   504 no answer within the timeout     connection_timeout
#   502 name does not resolve            dns_error (in 10_guard.t: see below)
#   429/503 a tunnel limit               connection_limit_reached (40_limits.t)
# and each leaves its log tag.  No refusal may open a connection to the
# origin, and a refused CONNECT must close the client connection without
# reading on: bytes a client sent after its CONNECT (a TLS hello, or a
# smuggled request) must never be answered as a request of their own.
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use IO::Socket::IP;
use Socket qw(PF_INET SOCK_STREAM pack_sockaddr_in inet_aton);
use Time::HiRes qw(time);
use CT::Server qw(free_port);
use CT::Origin qw(listener take_accepts);
use CT::Client qw(proxy_socket ps_error read_head relays tunnel_via
                  vhost_port);
use CT::Logs qw(log_mark log_wait no_crash);

plan tests => 14;

my $start = log_mark();
my $ps = vhost_port('ct_sec_ps');

# Check one refusal: status, Proxy-Status type, log line, no connection.
sub refusal {
    my ($port, $target, $want, $type, $log, $what, @listeners) = @_;
    my $mark = log_mark();
    my ($s, $status, $h) = tunnel_via($port, $target);
    my @got = take_accepts(0, @listeners);
    my $ok = $status == $want && ps_error($h) eq $type && !@got
             && log_wait($mark, $log, 5, line => 1, default => '') ne '';
    ok $ok or t_debug("$what: $target expected $want $type ($log), got "
                      . "$status '" . ($h->{'proxy-status'} // '')
                      . "', " . scalar(@got) . " connection(s)");
    close $_ for $s, @got;
}

{
    my $l = listener(addr => '127.0.0.1', take_all => 1);
    my $p = $l->sockport;
    refusal(vhost_port('ct_sec_ps_port'), "127.0.0.1:$p", 403,
            'http_request_denied', qr/CT00011: tunnel to '127\.0\.0\.1' refused: port $p is not in AllowCONNECT/,
            'port not in the default AllowCONNECT', $l);
    my $l2 = listener(addr => '127.0.0.2', take_all => 1, port => $p);
    refusal($ps, "127.0.0.2:$p", 403, 'destination_ip_prohibited',
            qr/CT00016: tunnel to '127\.0\.0\.2' refused by deny 127\.0\.0\.2/,
            'denied by a rule', $l2);
    refusal($ps, "127.0.0.1:+$p", 400, 'http_request_error',
            qr/CT00010: bad CONNECT target '127\.0\.0\.1:\+$p'/,
            'signed port', $l);
    refusal($ps, "127.0.0.1:0$p", 400, 'http_request_error',
            qr/CT00010: bad CONNECT target/, 'port with a leading zero', $l);
    refusal($ps, "127.0.0.1:" . ($p + 65536), 400, 'http_request_error',
            qr/CT00010: bad CONNECT target/,
            'port past 65535 (would wrap to the listener)', $l);
}

# Nothing listens: the port was free a moment ago and is closed now.
{
    my $p = free_port();
    refusal($ps, "127.0.0.1:$p", 502, 'connection_refused',
            qr/CT00027: connect to 127\.0\.0\.1:$p failed: every address refused the connection/,
            'closed port');
}

# No answer: a listener whose accept queue is full (backlog 0, one
# connection waiting) drops further SYNs, so the module's connect times
# out after ConnectTunnelConnectTimeout (2 s).
{
    socket(my $l, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
    bind($l, pack_sockaddr_in(0, inet_aton('127.0.0.1'))) or die "bind: $!";
    listen($l, 0) or die "listen: $!";
    my $p = (Socket::unpack_sockaddr_in(getsockname($l)))[0];
    my @fill;
    for (1 .. 2) {
        my $c = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $p,
                                    Blocking => 0);
        push @fill, $c if $c;
    }
    # Make sure the queue is full: one more connect must not complete.
    my $probe = IO::Socket::IP->new(PeerHost => '127.0.0.1', PeerPort => $p,
                                    Timeout => 1);
    if ($probe) {
        skip('the kernel accepted past a full backlog; cannot provoke '
             . 'a connect timeout here', 1) for 1 .. 3;
    }
    else {
        my $mark = log_mark();
        my $t0 = time;
        my ($s, $status, $h) = tunnel_via($ps, "127.0.0.1:$p", wait => 15);
        my $took = time - $t0;
        ok $status == 504 && ps_error($h) eq 'connection_timeout'
            or t_debug("full queue: got $status '"
                       . ($h->{'proxy-status'} // '') . "'");
        ok log_wait($mark, qr/CT00026: connect to 127\.0\.0\.1:$p timed out/,
                    5, line => 1, default => '')
            ne '';
        # Generous: the timeout is 2 s; it must neither fire at once nor
        # hang on to the default (10 s).
        ok $took > 1 && $took < 9 or t_debug("answered after $took s");
        close $s;
    }
    close $_ for @fill;
}

# dns_error is not provoked here: a name that /etc/hosts does not know
# would go to the configured nameserver, off this machine.  10_guard.t
# and 12_names.t check it inside a network namespace, where the query
# fails locally.

# A refused CONNECT closes the connection: what the client sent after it
# is not read as a request (a request smuggled behind a refused CONNECT
# must not be answered).
{
    my $s = proxy_socket($ps);
    my $smuggled = "GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n";
    print $s "CONNECT 127.0.0.2:443 HTTP/1.1\r\nHost: 127.0.0.2:443\r\n\r\n"
           . $smuggled;
    my ($status, $h, $head, $rest) = read_head($s);
    my $seen = '';
    my $closed = CT::Client::wait_closed($s, 10, \$seen);
    my $all = ($rest // '') . $seen;
    ok(($status // 0) == 403 && $closed && $all !~ m{HTTP/1\.[01] \d{3}})
        or t_debug("status " . ($status // 'none') . ", closed $closed, "
                   . "after the head: $all");
}

# The same for a malformed target.
{
    my $s = proxy_socket($ps);
    print $s "CONNECT 127.0.0.1:+443 HTTP/1.1\r\nHost: x\r\n\r\n"
           . "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    my ($status, $h, $head, $rest) = read_head($s);
    my $seen = '';
    my $closed = CT::Client::wait_closed($s, 10, \$seen);
    ok(($status // 0) == 400 && $closed
       && (($rest // '') . $seen) !~ m{HTTP/1\.[01] \d{3}});
}

# The proxy names itself in Proxy-Status: its ServerName as an sf-token.
{
    my ($s, $status, $h) = tunnel_via($ps, '127.0.0.2:443');
    ok(($h->{'proxy-status'} // '') =~ /^localhost; error=destination_ip_prohibited$/)
        or t_debug('Proxy-Status: ' . ($h->{'proxy-status'} // 'none'));
}

# The server survived all of it, and a good tunnel still works.
{
    my $l = listener(addr => '127.0.0.1', take_all => 1);
    my ($s, $status, $h) = tunnel_via($ps, '127.0.0.1:' . $l->sockport);
    my @got = take_accepts(5, $l);
    ok $status == 200 && @got == 1 && relays($s, $got[0], 'last')
       && !exists $h->{'proxy-status'};
    close $_ for $s, @got;
    ok no_crash($start);
}
