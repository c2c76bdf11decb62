# What a tunnel leaves in the access log (format "tunnel" in
# t/conf/extra.conf.in): the proxy-source-port note is the local port of
# the proxy's connection to the origin, i.e. exactly the peer port the
# origin saw; %I and %O (mod_logio) count the tunnel's bytes, not just
# the CONNECT request and its 200; the end-of-tunnel record
# (ConnectTunnelLog, t/logs/tunnels_log) counts the payload exactly.  1 MiB goes each way: through the plain proxy,
# through the proxy spoken to over TLS (where %I/%O also count TLS
# overhead, so only lower bounds are asserted for them; in plain HTTP they
# are exact: the request plus the payload in, the 200 plus the payload
# out), to an IPv6 origin on [::1] (proxy-source-port from an IPv6
# socket), and through ct_relay_nohandoff (ConnectTunnelHandoff Off), a
# tunnel that stays in its worker in every run of the suite.
#
# A tunnel handed to a reactor (the default run) is logged when it ends,
# as one in a worker is, with the same exact %I/%O.
#
# Last, early data: 3000 bytes in the same write as the CONNECT, which
# httpd reads with the request and the relay takes from its filters
# together with the socket.  %I counts them exactly once (request + early
# + 1000 bytes sent after the 200), in a worker and in a reactor.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Socket::IP;
use CT::Origin ();
use CT::Client qw(duplex open_tunnel read_bytes read_to_eof);
use CT::Logs qw(log_mark log_wait wait_tunnel_record);

plan tests => 4 * 8 + 2 * 4, need_module('ssl');

# An IPv6 origin too, when this host has ::1.
my $have_v6 = IO::Socket::IP->new(LocalHost => '::1', LocalPort => 0,
                                  Listen => 1) ? 1 : 0;

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 90;

my $size = 1 << 20;
my $down_sha = CT::Origin::Stream->digest_of($size, 61);
my $up_sha = CT::Origin::Stream->digest_of($size, 62);
for my $case (['plain proxy', 'ct_all', 0, '127.0.0.1'],
              ['TLS proxy', 'ct_relay_tls_proxy', 1, '127.0.0.1'],
              ['IPv6 origin', 'ct_all', 0, '::1'],
              ['plain proxy, hand-off off', 'ct_relay_nohandoff', 0,
               '127.0.0.1']) {
    my ($name, $vhost, $tls, $addr) = @$case;
  SKIP: {
    skip "$name: no ::1 on this host", 8 if $addr eq '::1' && !$have_v6;
    my $host = $addr =~ /:/ ? "[$addr]" : $addr;
    my $mark = log_mark('tunnel_log');
    my $tmark = log_mark('tunnels_log');
    my $origin = CT::Origin->start('duplex', bytes => $size, addr => $addr,
                                   expect => $size, seed => 61);
    my $port = $origin->port;
    my ($s, $status, $rest, $req, $head) = open_tunnel($vhost, $port,
                                                       tls => $tls,
                                                       host => $host);
    is $status, 200, "$name: the tunnel is established";
    my $r = duplex($s, CT::Origin::Stream->new($size, 62), $size, 30);
    my $rep = $origin->wait_for(1, 'done', 10) // {};
    is "$r->{state} $r->{got} $r->{sha256} "
       . ($rep->{sha256} // 'no report'),
       "ok $size $down_sha $up_sha", "$name: 1 MiB each way, byte-exact";
    read_to_eof($s, 10);
    close $s;

    my $line = log_wait($mark, qr/"CONNECT \Q$host\E:$port HTTP\/1\.1" 200 /,
                        10, log => 'tunnel_log', line => 1) // '';
    my %f = $line =~ / (I|O|sport|end)=(\S+)/g;
    ok $line, "$name: the tunnel has its access log line";
    is $f{sport}, $rep->{peer_port} // 'no report',
        "$name: proxy-source-port is the port the origin saw";
    my $rec = wait_tunnel_record($tmark, "$host:$port", 10) // {};
    is $rec->{up}, $size, "$name: the tunnel's record counts the payload up";
    is $rec->{down}, $size,
        "$name: the tunnel's record counts the payload down";
    if ($tls) {
        # Records and the handshake add to what the payload needs.
        cmp_ok $f{I} // 0, '>=', $size + length $req,
            "$name: %I counts the bytes in";
        cmp_ok $f{O} // 0, '>=', $size + length $head,
            "$name: %O counts the bytes out";
    }
    else {
        is $f{I}, $size + length $req,
            "$name: %I counts the request and the bytes in";
        is $f{O}, $size + length $head,
            "$name: %O counts the 200 and the bytes out";
    }
    $origin->stop;
  }
}

# Early data: counted once in %I, in a worker and at a hand-off.
for my $case (['early data, hand-off off', 'ct_relay_nohandoff'],
              ['early data', 'ct_all']) {
    my ($name, $vhost) = @$case;
    my $mark = log_mark('tunnel_log');
    my $origin = CT::Origin->start('echo');
    my $port = $origin->port;
    my $early = 'E' x 3000;
    my ($s, $status, $rest, $req, $head) = open_tunnel($vhost, $port,
                                                       after => $early);
    is $status, 200, "$name: the tunnel is established";
    my $back = $rest . read_bytes($s, 3000 - length $rest);
    print $s 'A' x 1000;
    $back .= read_bytes($s, 1000);
    is $back, $early . 'A' x 1000, "$name: echoed in order";
    shutdown $s, 1;
    read_to_eof($s, 10);
    close $s;
    my $line = log_wait($mark,
                        qr/"CONNECT 127\.0\.0\.1:$port HTTP\/1\.1" 200 /, 10,
                        log => 'tunnel_log', line => 1) // '';
    my %f = $line =~ / (I|O|end)=(\S+)/g;
    is $f{I}, length($req) + 1000,
        "$name: %I counts the request, the early bytes and the rest";
    is $f{O}, length($head) + 4000,
        "$name: %O counts the 200 and the echo";
    $origin->stop;
}
