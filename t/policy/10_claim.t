# Which requests mod_connect_tunnel claims: only a forward-proxy CONNECT.
# A GET or POST to a proxy virtual host is served from the document root
# exactly as on a plain host; a CONNECT to a host without ProxyRequests On
# gets core's 405; and a CONNECT to a reverse proxy (ProxyPass, ProxyRequests
# Off) is never tunnelled.  A module that claimed more would open tunnels
# (or answer with its own errors) where httpd must not.
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use CT::Origin qw(accept_within listener);
use CT::Client qw(head_of read_head read_to_eof send_raw status_of yes);
use CT::Logs qw(log_mark log_since);

# Plain requests: the proxy host must answer like the plain host.
my @plain = (
    { desc => 'GET of a file in the document root',
      req  => "GET /index.html HTTP/1.1\r\nHost: x\r\n"
            . "Connection: close\r\n\r\n",
      want => 200 },
    { desc => 'GET of a missing file',
      req  => "GET /ct-policy-missing.html HTTP/1.1\r\nHost: x\r\n"
            . "Connection: close\r\n\r\n",
      want => 404 },
    { desc => 'POST to a static file',
      req  => "POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
            . "Connection: close\r\n\r\nabc",
      want => undef },    # whatever the plain host answers
    { desc => 'HTTP/1.0 GET of a file',
      req  => "GET /index.html HTTP/1.0\r\n\r\n",
      want => 200 },
);

# CONNECTs that must not become tunnels ({PORT}: a local listener).
my @connects = (
    { desc   => 'CONNECT to a host without ProxyRequests: 405 from core',
      vhost  => 'ct_policy_plain',
      want   => 405 },
    { desc   => 'CONNECT to a reverse-proxy host (ProxyPass, '
              . 'ProxyRequests Off): no tunnel',
      vhost  => 'ct_policy_reverse',
      want   => undef },
    { desc   => 'absolute-form GET to a forward proxy: not ours',
      vhost  => 'ct_policy_fwd',
      req    => "GET http://127.0.0.1:{PORT}/ HTTP/1.1\r\n"
              . "Host: 127.0.0.1:{PORT}\r\n\r\n",
      want   => undef },
);

plan tests => 3 * @plain + 5 * @connects + 2;

for my $c (@plain) {
    my %got;
    for my $vhost (qw(ct_policy_plain ct_policy_fwd)) {
        my $mark = log_mark();
        my $s = send_raw($vhost, $c->{req});
        my ($bytes) = read_to_eof($s);
        $got{$vhost} = $bytes;
        $got{"$vhost log"} = log_since($mark);
    }
    my ($plain, $fwd) = map { status_of($got{$_}) }
                        qw(ct_policy_plain ct_policy_fwd);
    ok t_cmp($fwd, $c->{want} // $plain, "$c->{desc}: status");
    ok t_cmp($fwd, $plain, "$c->{desc}: same status as on a plain host");
    ok t_cmp($got{'ct_policy_fwd log'}, qr/^(?!.*\bCT\d{5}:)/s,
             "$c->{desc}: the module logs nothing");
}

for my $c (@connects) {
    my $l = listener();
    my $port = $l->sockport;
    my $req = $c->{req} // "CONNECT 127.0.0.1:{PORT} HTTP/1.1\r\n"
                         . "Host: 127.0.0.1:{PORT}\r\n\r\n";
    $req =~ s/\{PORT\}/$port/g;
    my $mark = log_mark();
    my $s = send_raw($c->{vhost}, $req);
    my ($bytes, $closed) = read_to_eof($s);
    my $status = status_of($bytes);
    ok t_cmp($status, $c->{want} // qr/^(?!200$)\d{3}$/,
             "$c->{desc}: status");
    ok t_cmp(head_of($bytes), qr/^(?!.*Connection Established)/si,
             "$c->{desc}: no 200 Connection Established");
    ok yes(!accept_within($l, 0.1),
           "$c->{desc}: the target got no connection");
    ok yes($closed, "$c->{desc}: the connection is closed");
    ok t_cmp(log_since($mark), qr/^(?!.*\bCT\d{5}:)/s,
             "$c->{desc}: the module logs nothing");
}

# The control: the same CONNECT to the forward proxy is a tunnel.
{
    my $l = listener();
    my $port = $l->sockport;
    my $s = send_raw('ct_policy_fwd', "CONNECT 127.0.0.1:$port HTTP/1.1\r\n"
                                    . "Host: 127.0.0.1:$port\r\n\r\n");
    my ($status) = read_head($s);
    ok t_cmp($status, 200, 'control: CONNECT to the forward proxy is a 200');
    ok yes(accept_within($l), 'control: the target got the connection');
}
