# AllowCONNECT in server context, and how virtual hosts inherit it: a
# virtual host without its own AllowCONNECT uses the main server's list, and
# a virtual host with one uses that list only: it REPLACES the main server's
# list (stock httpd concatenates them, so a virtual host could only add
# ports).  A main-server AllowCONNECT would leak into every virtual host of
# the shared test server, so this test runs a standalone httpd of its own.
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use IO::Socket::INET;
use CT::Server qw(free_port);
use CT::Origin qw(connect_refused);
use CT::Client qw(read_head yes);

my %port = map { $_ => free_port() } qw(main own inherit);

my $body = <<"EOF";
Listen 127.0.0.1:$port{main}
Listen 127.0.0.1:$port{own}
Listen 127.0.0.1:$port{inherit}
ProxyRequests On
# The origins here are on loopback, which the built-in guard denies.
ConnectTunnelAllow loopback
AllowCONNECT 50200-50210 50250
<Proxy "*">
    Require ip 127.0.0.1
</Proxy>
<VirtualHost 127.0.0.1:$port{own}>
    AllowCONNECT 50300
</VirtualHost>
<VirtualHost 127.0.0.1:$port{inherit}>
</VirtualHost>
EOF

# [server, target port, allowed?, description]
my @cases = (
    [ main    => 50200, 1, 'main server: first of its range' ],
    [ main    => 50210, 1, 'main server: last of its range' ],
    [ main    => 50250, 1, 'main server: its single port' ],
    [ main    => 50211, 0, 'main server: past its range' ],
    [ main    => 50300, 0, 'main server: the virtual host\'s port' ],
    [ main    => 443,   0, 'main server: 443 (not the default)' ],
    [ own     => 50300, 1, 'own list: its port' ],
    [ own     => 50200, 0, 'own list: the main server\'s range is replaced' ],
    [ own     => 50250, 0, 'own list: the main server\'s port is replaced' ],
    [ own     => 443,   0, 'own list: 443' ],
    [ inherit => 50205, 1, 'no list: inherits the main server\'s range' ],
    [ inherit => 50250, 1, 'no list: inherits the main server\'s port' ],
    [ inherit => 50300, 0, 'no list: not the other virtual host\'s port' ],
    [ inherit => 443,   0, 'no list: 443' ],
);

plan tests => 2 * @cases;

my $httpd = CT::Server->start(port => $port{main}, config => $body);

for my $c (@cases) {
    my ($server, $target_port, $allowed, $desc) = @$c;
    my $target = "127.0.0.1:$target_port";
    my $dial = connect_refused($target_port) ? 502 : 200;
    my $before = length $httpd->error_log;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $port{$server}, Timeout => 10)
        or die "connect to the standalone httpd: $!";
    print $s "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n";
    my ($status) = read_head($s);
    my $log = substr $httpd->error_log, $before;
    if ($allowed) {
        ok t_cmp($status, $dial, "$desc ($target): allowed, dialled");
        ok yes($log !~ /CT00011:/, "$desc ($target): no CT00011");
    }
    else {
        ok t_cmp($status, 403, "$desc ($target): 403");
        ok yes($log =~ /CT00011: .*port $target_port is not in /,
               "$desc ($target): CT00011");
    }
}

$httpd->stop;
