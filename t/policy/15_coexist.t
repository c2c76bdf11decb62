# mod_proxy_connect loaded as well: this module's hooks run first, so it
# answers every CONNECT (here mod_proxy_connect is loaded after it, the
# order in which mod_proxy_connect would otherwise take the AllowCONNECT
# directive and the requests), and the startup log says so (CT00001).
# Ours shows in its answers: a signed port is a 400 (stock accepts it),
# and a refusal carries Proxy-Status (stock sends none).
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use IO::Socket::INET;
use CT::Server qw(free_port);
use CT::Client qw(read_head yes);

# mod_proxy_connect sits beside mod_proxy, which modules.conf names.
my $libexec;
{
    my $file = Apache::Test::vars('t_dir') . '/conf/modules.conf';
    open my $fh, '<', $file or die "open $file: $!";
    while (<$fh>) {
        $libexec = $1 if m{^LoadModule\s+proxy_module\s+"?(.*)/mod_proxy\.so};
    }
    die "no mod_proxy in $file" unless $libexec;
}
my $port = free_port();
my $body = <<"EOF2";
LoadModule proxy_connect_module "$libexec/mod_proxy_connect.so"
Listen 127.0.0.1:$port
ProxyRequests On
<Proxy "*">
    Require ip 127.0.0.1
</Proxy>
EOF2

my @cases = (
    [ '127.0.0.1:+443', 400, 'signed port: refused by our parser' ],
    [ '127.0.0.1:22', 403, 'port outside AllowCONNECT: our 403' ],
);

plan tests => 1 + 2 * @cases;

my $httpd = CT::Server->start(port => $port, config => $body);
ok yes(scalar($httpd->error_log =~ /CT00001: mod_proxy_connect is loaded too/),
       'startup warns that both modules are loaded (CT00001)');
for my $c (@cases) {
    my ($target, $want, $desc) = @$c;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Timeout => 10)
        or die "connect to the standalone httpd: $!";
    print $s "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n";
    my ($status, $h) = read_head($s);
    ok t_cmp($status, $want, "$desc: status");
    ok t_cmp($h ? $h->{'proxy-status'} : undef, qr/error=/,
             "$desc: Proxy-Status, which only this module sends");
}
$httpd->stop;
