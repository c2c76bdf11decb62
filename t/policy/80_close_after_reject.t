# RFC 9931: after rejecting an HTTP/1.1 CONNECT the proxy must close the
# connection without reading on, because a client may already have sent
# tunnel bytes (a TLS ClientHello, or a request meant for the origin) that
# must never be parsed as the next request to the proxy.  httpd keeps the
# connection alive after a 403, 407 or 502, so each rejection here comes
# with a second request (or TLS-like bytes) in the same write, and the
# client must see exactly one response, marked "Connection: close", and
# then the end of the connection.
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use CT::Origin qw(closed_port full_listener);
use CT::Client qw(count_responses head_of header_of read_to_eof send_raw
                  status_of yes);

my ($closed, $closed_port) = closed_port();
my ($full, $full_port, $queued) = full_listener();

my $get = "GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n";
# The start of a TLS ClientHello record, as a client sending optimistically
# would put behind its CONNECT.
my $hello = "\x16\x03\x01\x00\x2e\x01\x00\x00\x2a\x03\x03" . ("\x00" x 32);

my @cases = (
    [ 400, 'ct_policy_fwd',  '127.0.0.1:0443', $get,
      'bad target (the module)' ],
    [ 400, 'ct_policy_fwd',  '127.0.0.1', $get,
      'bad target (httpd core)' ],
    [ 403, 'ct_policy_ports_default', '127.0.0.1:22', $get,
      'port not in AllowCONNECT' ],
    [ 403, 'ct_policy_ports_default', '127.0.0.1:22', $hello,
      'port not in AllowCONNECT, TLS bytes behind' ],
    [ 403, 'ct_policy_block', '-ct-blocked.example:443', $get,
      'ProxyBlock' ],
    [ 403, 'ct_policy_deny', "127.0.0.1:$closed_port", $get,
      '<Proxy> Require all denied' ],
    [ 405, 'ct_policy_plain', "127.0.0.1:$closed_port", $get,
      'no ProxyRequests' ],
    [ 407, 'ct_policy_auth', "127.0.0.1:$closed_port", $get,
      'proxy authentication required' ],
    [ 407, 'ct_policy_auth', "127.0.0.1:$closed_port", $hello,
      'proxy authentication required, TLS bytes behind' ],
    [ 502, 'ct_policy_dial', "127.0.0.1:$closed_port", $get,
      'origin refuses' ],
    [ 502, 'ct_policy_dial', '-ct-nx.example:443', $get,
      'DNS failure' ],
    [ 504, 'ct_policy_dial', "127.0.0.1:$full_port", $get,
      'connect timeout' ],
);

plan tests => 4 * @cases;

for my $c (@cases) {
    my ($want, $vhost, $target, $behind, $desc) = @$c;
    $desc .= " ($vhost, $target)";
    my $s = send_raw($vhost, "CONNECT $target HTTP/1.1\r\nHost: $target"
                           . "\r\n\r\n$behind");
    my ($bytes, $closed_conn) = read_to_eof($s, 15);
    ok t_cmp(status_of($bytes), $want, "$desc: status");
    ok t_cmp(count_responses($bytes), 1, "$desc: exactly one response");
    ok t_cmp(header_of(head_of($bytes), 'Connection'), qr/\bclose\b/i,
             "$desc: Connection: close");
    ok yes($closed_conn, "$desc: then the connection is closed");
}
