# mod_proxy_connect loaded BEFORE this module (t/policy/15_coexist.t loads
# it after).  The manual: "this module's hooks run before every other
# mod_proxy scheme handler, so it handles every forward-proxy CONNECT and
# mod_proxy_connect never gets one, whichever LoadModule line comes
# first"; the startup log says so (CT00001); and both modules receive
# AllowCONNECT, so this module's validation applies in either order.
# What only this module does shows in the answers: a signed port is a 400
# (stock accepts it), refusals carry Proxy-Status, the 200 is in the
# request's version (stock always says HTTP/1.0), a virtual host's
# AllowCONNECT replaces the main server's (stock adds them up), and every
# tunnel leaves an end-of-tunnel record.
use strict;
use warnings;
use lib 't/lib';
use Apache::Test qw(-withtestmore);
use IO::Socket::INET;
use CT::Server qw(config_test free_port wait_until);
use CT::Origin qw(accept_within listener);
use CT::Client qw(read_bytes read_head);

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 90;

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
my $before = "LoadModule proxy_connect_module "
           . qq{"$libexec/mod_proxy_connect.so"\n};

my $origin = listener();
my $oport = $origin->sockport;
my ($port, $vport) = (free_port(), free_port());
my $body = <<"EOF2";
Listen 127.0.0.1:$port
Listen 127.0.0.1:$vport
ProxyRequests On
AllowCONNECT $oport 22
ConnectTunnelAllow loopback
ConnectTunnelLog "tunnel_log"
<Proxy "*">
    Require ip 127.0.0.1
</Proxy>
<VirtualHost 127.0.0.1:$vport>
    ProxyRequests On
    AllowCONNECT $oport
</VirtualHost>
EOF2

# [port, target, status, description]: refusals carry Proxy-Status.
my @refusals = (
    [ $port, '127.0.0.1:+443', 400, 'signed port: refused by our parser' ],
    [ $port, '127.0.0.1:65000', 403, 'port outside AllowCONNECT: our 403' ],
    [ $vport, '127.0.0.1:22', 403,
      'port of the main server\'s list only: the virtual host\'s list '
      . 'replaces it' ],
);

plan tests => 3 + 2 * @refusals + 4 + 2;

my $httpd = CT::Server->start(port => $port, config => $body,
                              before => $before);
my $conf_text = do {
    open my $fh, '<', "$httpd->{dir}/httpd.conf" or die "conf: $!";
    local $/;
    <$fh>;
};
my $i_stock = index $conf_text, 'LoadModule proxy_connect_module';
my $i_ours = index $conf_text, 'LoadModule connect_tunnel_module';
ok($i_stock >= 0 && $i_stock < $i_ours,
   'sanity: mod_proxy_connect is loaded before this module');
like($httpd->error_log, qr/CT00001: mod_proxy_connect is loaded too/,
     'startup warns that both modules are loaded (CT00001)');
unlike($httpd->error_log, qr/\[proxy_connect:/,
       'mod_proxy_connect logged nothing');

sub connect_to {
    my ($p, $target, $version) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $p,
                                  Timeout => 10)
        or die "connect to the standalone httpd: $!";
    $s->autoflush(1);
    print $s "CONNECT $target HTTP/" . ($version // '1.1')
           . "\r\nHost: $target\r\n\r\n";
    return $s;
}

for my $c (@refusals) {
    my ($p, $target, $want, $desc) = @$c;
    my $s = connect_to($p, $target);
    my ($status, $h) = read_head($s);
    is($status // '', $want, "$desc: status");
    like($h ? $h->{'proxy-status'} // '' : '', qr/error=/,
         "$desc: Proxy-Status, which only this module sends");
}

# A tunnel: our 200 in the request's version, bytes both ways, a record.
{
    my $target = "127.0.0.1:$oport";
    my $s = connect_to($port, $target);
    my $o = accept_within($origin);
    my ($status, $h, $head, $rest) = read_head($s);
    like($head // '', qr{\AHTTP/1\.1 200 Connection Established\r\n},
         'tunnel: our 200, in the request\'s HTTP/1.1');
    print $s 'ping';
    my $up = $o ? read_bytes($o, 4) : '';
    print $o 'pong' if $o;
    is(($rest // '') . read_bytes($s, 4 - length($rest // '')) . "/$up",
       'pong/ping', 'tunnel: bytes go both ways');
    close $s;
    close $o if $o;
    my $rec = wait_until(sub {
        open my $fh, '<', "$httpd->{dir}/tunnel_log" or return;
        my ($l) = grep { /target=\Q$target\E / } <$fh>;
        return $l;
    }, 10);
    like($rec // '', qr/ end=closed up=4 down=4 /,
         'tunnel: the end-of-tunnel record has its bytes');
    # The record is written just before the error log line: wait for both.
    ok(wait_until(sub {
           $httpd->error_log =~ /CT00051: tunnel to \Q$target\E ended/
       }, 10), 'tunnel: this module logged its end (CT00051)');
}
$httpd->stop;

# AllowCONNECT goes to both modules; ours rejects a bad value either way.
{
    my ($rc, $out) = config_test("AllowCONNECT 70000\n", before => $before);
    ok($rc != 0, 'AllowCONNECT 70000 with mod_proxy_connect loaded first: '
                 . 'httpd -t fails');
    like($out, qr/AllowCONNECT: '70000' is not a port/,
         'the error is this module\'s, naming the value');
}
