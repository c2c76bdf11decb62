# The 2xx that opens a tunnel.  It is exactly "HTTP/1.1 200 Connection
# Established" for an HTTP/1.1 request and "HTTP/1.0 200 Connection
# Established" for an HTTP/1.0 one (stock always says HTTP/1.0); it has no
# Content-Length or Transfer-Encoding (RFC 9110 forbids them on a 2xx to
# CONNECT); its Proxy-agent follows ServerTokens, so it is the same banner
# as the Server header; and the first tunnel byte comes right after its
# blank line.  ServerTokens is server-wide, so the Prod and Major variants
# run on a standalone httpd.
use strict;
use warnings;
use lib 't/lib';
use IO::Socket::INET;
use Apache::Test;
use Apache::TestUtil;
use CT::Server qw(free_port);
use CT::Origin qw(accept_within listener);
use CT::Client qw(header_of read_bytes read_head send_raw);

my $l = listener();
my $target = '127.0.0.1:' . $l->sockport;

my @versions = (
    { desc => 'HTTP/1.1',
      req  => "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n",
      line => 'HTTP/1.1 200 Connection Established' },
    { desc => 'HTTP/1.0 with Host',
      req  => "CONNECT $target HTTP/1.0\r\nHost: $target\r\n\r\n",
      line => 'HTTP/1.0 200 Connection Established' },
    { desc => 'HTTP/1.0 without Host',
      req  => "CONNECT $target HTTP/1.0\r\n\r\n",
      line => 'HTTP/1.0 200 Connection Established' },
);

my @tokens = (
    [ Prod  => qr{^Apache$} ],
    [ Major => qr{^Apache/2$} ],
);

plan tests => 7 * @versions + 3 * @tokens;

# The Server header of an ordinary response of the same server.
sub server_banner {
    my $s = shift;
    print $s "GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close"
           . "\r\n\r\n";
    my (undef, $h) = read_head($s);
    return $h ? $h->{server} : undef;
}

my $banner = server_banner(send_raw('ct_policy_fwd', ''));

for my $c (@versions) {
    my $s = send_raw('ct_policy_fwd', $c->{req});
    my ($status, $h, $head, $rest) = read_head($s);
    $head //= '';
    my $origin = accept_within($l);
    # The origin speaks first: its bytes follow the head at once.
    print $origin 'hello' if $origin;
    my $data = ($rest // '') . read_bytes($s, 5 - length($rest // ''));
    ok t_cmp((split /\r\n/, $head)[0], $c->{line},
             "$c->{desc}: status line");
    ok t_cmp(header_of($head, 'Content-Length'), undef,
             "$c->{desc}: no Content-Length");
    ok t_cmp(header_of($head, 'Transfer-Encoding'), undef,
             "$c->{desc}: no Transfer-Encoding");
    ok t_cmp(header_of($head, 'Proxy-agent'), $banner,
             "$c->{desc}: Proxy-agent is the server banner");
    ok t_cmp($banner, qr{^Apache/2\.4\.\d+},
             "$c->{desc}: ... the full one (ServerTokens default)");
    ok t_cmp($data, 'hello', "$c->{desc}: tunnel bytes follow the head");
    print $s 'world';
    ok t_cmp($origin ? read_bytes($origin, 5) : '', 'world',
             "$c->{desc}: and go the other way");
    close $s;
    close $origin if $origin;
}

for my $t (@tokens) {
    my ($tokens, $want) = @$t;
    my $port = free_port();
    my $httpd = CT::Server->start(port => $port, config => <<"EOF");
Listen 127.0.0.1:$port
ServerTokens $tokens
ProxyRequests On
AllowCONNECT all
ConnectTunnelAllow loopback
<Proxy "*">
    Require ip 127.0.0.1
</Proxy>
EOF
    my $connect = sub {
        IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                              Timeout => 10)
            or die "connect to the standalone httpd: $!";
    };
    my $s = $connect->();
    print $s "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n";
    my ($status, $h) = read_head($s);
    my $origin = accept_within($l);
    ok t_cmp($status, 200, "ServerTokens $tokens: 200");
    ok t_cmp($h ? $h->{'proxy-agent'} : undef, $want,
             "ServerTokens $tokens: Proxy-agent");
    ok t_cmp(server_banner($connect->()), $want,
             "ServerTokens $tokens: the same as the Server header");
    close $s;
    close $origin if $origin;
    $httpd->stop;
}
