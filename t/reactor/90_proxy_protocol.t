# Behind a load balancer: an L4 balancer prefixes each client connection
# with a PROXY protocol header (mod_remoteip, RemoteIPProxyProtocol On on
# the ct_pp virtual host, t/conf/remoteip.conf.in).  Every TCP connection
# here comes from 127.0.0.1, the "balancer"; the header names the real
# client.  With PROXY v1 and v2 headers (IPv4 and IPv6 sources):
#   - the tunnel works, byte-exact, with early data after the CONNECT;
#   - in the default run it is handed to a reactor (mod_remoteip's filter,
#     done once the header is read, does not keep it in a worker); in the
#     worker runs it stays in the worker;
#   - the access log (%a) and ConnectTunnelLog name the real client;
#   - ConnectTunnelMaxTunnelsPerClient 1 counts by the real address: a
#     second tunnel from the same header source gets 429 (CT00060 names
#     that source), other sources through the same TCP peer get 200, and
#     the place comes back when the first tunnel ends;
#   - <Proxy "*"> Require ip 198.51.100.0/24 2001:db8::/32 decides by the
#     real address: loopback itself is not in it, 203.0.113.5 gets 403;
#   - a malformed header ends the connection without an answer.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use Socket qw(inet_pton AF_INET AF_INET6 SHUT_WR);
use CT::Server qw(suite_mode wait_until);
use CT::Origin qw(start_origin);
use CT::Client qw(echo_ok proxy_socket read_bytes read_head read_to_eof
                  vhost_port wait_closed write_all);
use CT::Logs qw(access_lines log_lines mark_logs tunnel_records);

plan tests => 28, need_module('remoteip');

mark_logs('pp_access_log');

local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 120;

my $want = suite_mode() eq 'reactor' ? 'reactor' : 'worker';
my $pp_port = vhost_port('ct_pp');
my $access_log = CT::Logs::t_logs() . '/pp_access_log';
my $origin = start_origin();
my $target = '127.0.0.1:' . $origin->port('echo');

# Source ports in the headers: the access log's cport (%{remote}p is the
# real client's port), distinct per run because the logs are kept.
my $next_port = 20000 + int rand 20000;

my $V2_SIG = "\r\n\r\n\0\r\nQUIT\n";

sub pp_v1 {
    my ($src, $sport) = @_;
    my ($fam, $dst) = $src =~ /:/ ? ('TCP6', '::1') : ('TCP4', '127.0.0.1');
    return "PROXY $fam $src $dst $sport $pp_port\r\n";
}

sub pp_v2 {
    my ($src, $sport) = @_;
    my $v6 = $src =~ /:/;
    my $af = $v6 ? AF_INET6 : AF_INET;
    my $addrs = inet_pton($af, $src)
              . inet_pton($af, $v6 ? '::1' : '127.0.0.1');
    # Version 2, PROXY command; TCP over IPv4 (0x11) or IPv6 (0x21).
    return $V2_SIG . pack('CCn', 0x21, $v6 ? 0x21 : 0x11, length($addrs) + 4)
         . $addrs . pack('nn', $sport, $pp_port);
}

# A connection from the balancer: the header, then the CONNECT and any
# early bytes, in one write.  (socket, status, bytes after the head, the
# header's source port)
sub pp_tunnel {
    my ($hdr, $src, %opt) = @_;
    my $sport = $next_port++;
    my $s = proxy_socket('ct_pp');
    write_all($s, $hdr->($src, $sport)
                  . "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n"
                  . ($opt{early} // ''))
        or return ($s, 0, '', $sport);
    my ($status, $h, $head, $rest) = read_head($s);
    return ($s, $status // 0, $rest // '', $sport);
}

# The client's end: half-close, then the echo's end of stream.
sub finish {
    my $s = shift;
    shutdown($s, SHUT_WR);
    my ($tail, $ended) = read_to_eof($s);
    close $s;
    return $ended && $tail eq '';
}

sub access_line {
    my $sport = shift;
    return wait_until(sub {
        my @l = grep { $_->{status} } access_lines($sport, $access_log);
        return $l[0];
    });
}

sub tunnel_record {
    my $src = shift;
    return wait_until(sub {
        my @r = grep { $_->{client} eq $src } tunnel_records($target);
        return $r[0];
    });
}

# --- A malformed header: mod_remoteip drops the connection. ---
{
    my $s = proxy_socket('ct_pp');
    write_all($s, "PROXY TCP4 not-an-address 127.0.0.1 1 2\r\n"
                  . "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n");
    my $seen = '';
    ok wait_closed($s, 10, \$seen) && $seen eq '',
       'a malformed PROXY header: closed without an answer'
       or diag "got '$seen'";
    close $s;
}

# --- Tunnels: v1 and v2 headers, IPv4 and IPv6 sources. ---
my @cases = (
    [ 'PROXY v1, TCP4', \&pp_v1, '198.51.100.7' ],
    [ 'PROXY v2, TCP4', \&pp_v2, '198.51.100.8' ],
    [ 'PROXY v2, TCP6', \&pp_v2, '2001:db8::8' ],
    [ 'PROXY v1, TCP6', \&pp_v1, '2001:db8::7' ],
);
for my $case (@cases) {
    my ($what, $hdr, $src) = @$case;
    my $early = "early bytes from $src\n";
    my ($s, $status, $rest, $sport) = pp_tunnel($hdr, $src, early => $early);
    my $back = $rest . read_bytes($s, length($early) - length $rest);
    ok $status == 200 && $back eq $early,
       "$what: 200, and the early bytes come back"
       or diag "status $status, echoed '$back'";
    my $bulk = pack 'N*', map { int rand 2**32 } 1 .. 262144;
    ok echo_ok($s, $bulk, 20) && finish($s),
       "$what: 1 MiB echoes byte-exact, then a clean end";

    my $l = access_line($sport);
    ok $l && $l->{client} eq $src && $l->{peer} eq '127.0.0.1'
       && $l->{status} == 200,
       "$what: the access log names the real client $src, not the peer"
       or diag explain $l;
    is $l && $l->{mode}, $want, "$what: tunnel-mode $want";
    my $r = tunnel_record($src);
    ok $r && $r->{mode} eq $want,
       "$what: ConnectTunnelLog has client=$src, mode $want"
       or diag explain $r;
}

# --- ConnectTunnelMaxTunnelsPerClient 1, by the real address. ---
{
    my $one = '198.51.100.9';
    my ($a, $sa) = pp_tunnel(\&pp_v1, $one);
    ok $sa == 200 && echo_ok($a, "first\n"),
       "the first tunnel from $one is established";

    my ($b, $sb) = pp_tunnel(\&pp_v2, $one);
    is $sb, 429, "a second one from $one (v2 header) gets 429";
    close $b;
    ok wait_until(sub {
           log_lines(qr/CT00060: .*client \Q$one\E already has 1 tunnels/)
       }), 'CT00060 names the real client';

    my ($c, $sc) = pp_tunnel(\&pp_v1, '198.51.100.10');
    my ($d, $sd) = pp_tunnel(\&pp_v2, '198.51.100.11');
    ok $sc == 200 && $sd == 200 && echo_ok($c, "c\n") && echo_ok($d, "d\n"),
       'other real clients through the same TCP peer get their own place';

    ok finish($a) && tunnel_record($one)
       && do {
           my ($e, $se) = pp_tunnel(\&pp_v1, $one);
           my $ok = $se == 200 && echo_ok($e, "again\n") && finish($e);
           $ok;
       },
       "once its tunnel ended, $one gets its place back";
    finish($_) for $c, $d;
}

# --- <Proxy "*"> Require ip, by the real address. ---
for my $row ([ 'v1', \&pp_v1, '203.0.113.5' ],
             [ 'v2', \&pp_v2, '2001:db9::5' ]) {
    my ($what, $hdr, $src) = @$row;
    my ($s, $status, $rest, $sport) = pp_tunnel($hdr, $src);
    close $s;
    my $l = $status == 403 ? access_line($sport) : undef;
    ok $l && $l->{client} eq $src && $l->{status} == 403
       && wait_until(sub {
              log_lines(qr/\[client \Q$src\E:$sport\] AH01630: /)
          }),
       "PROXY $what from $src (outside the Require ip networks): 403, "
       . 'access and error logs name the real client'
       or diag "status $status";
}
$origin->stop;
