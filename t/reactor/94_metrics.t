# The live view: counters before and after a known workload, read from
# the Prometheus handler (parsed by python3-prometheus-client's parser)
# and from mod_status's ?auto page, in whichever relay the run uses.
#   - 5 tunnels through ct_metrics, tunnel i echoing 1000 * i bytes and
#     half-closing: opened +5, ended{closed} +5, bytes up and down +15000
#     each, setup and duration histograms +5 (cumulative buckets, _count
#     equal to the +Inf bucket); handed_off +5 in the reactor run only;
#   - 2 CONNECTs to port 25 (AllowCONNECT 1024-65535): refused
#     {http_request_denied} +2; 2 to a closed port: {connection_refused}
#     +2; a second tunnel past ConnectTunnelMaxTunnelsPerClient 1:
#     {connection_limit_reached} +1;
#   - while a tunnel is held in a worker (ct_metrics_worker, hand-off
#     off), live{relay="worker"} is one more than before and the
#     scoreboard's request column reads "CONNECT 127.0.0.1:port" (the
#     target alone, not the request line);
#   - the handler answers 403 to 127.0.0.2 (Require ip 127.0.0.1), 405 to
#     a POST, and text/plain; version=0.0.4 to 127.0.0.1.
use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::Bin/../lib";
use Apache::Test qw(-withtestmore);
use IO::Socket::INET;
use JSON::PP ();
use File::Temp ();
use Time::HiRes qw(time sleep);
use CT::Server qw(free_port suite_mode wait_until);
use CT::Origin qw(start_origin);
use CT::Client qw(echo_ok http_get read_head read_to_eof tunnel vhost_port);
use CT::Logs qw(mark_logs status_auto tunnel_records);

plan tests => 36, need_module('status');

mark_logs();
local $SIG{ALRM} = sub { die "test timed out\n" };
alarm 120;

my $mode = suite_mode();
my $origin = start_origin();
my $echo = '127.0.0.1:' . $origin->port('echo');
my $port = vhost_port('ct_metrics');
my $wport = vhost_port('ct_metrics_worker');
my $parser = "$FindBin::Bin/../bin/metrics-json";

# GET or POST $path from $from: (status, headers, body).
sub request {
    my ($method, $path, $from) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  LocalAddr => $from // '127.0.0.1',
                                  Timeout => 10)
        or return;
    print $s "$method $path HTTP/1.1\r\nHost: localhost\r\n"
             . "Content-Length: 0\r\nConnection: close\r\n\r\n";
    my ($status, $h, $head, $rest) = read_head($s);
    return unless defined $status;
    my ($body) = read_to_eof($s);
    return ($status, $h, ($rest // '') . $body);
}

# The handler's samples, parsed by the reference parser.
sub scrape {
    my ($status, $h, $body) = request('GET', '/metrics');
    return {} unless ($status // 0) == 200;
    my $in = File::Temp->new;
    print $in $body;
    close $in;
    my $json = `$parser < $in`;
    return {} if $? != 0;
    return JSON::PP::decode_json($json);
}

sub delta {
    my ($a, $b, $k) = @_;
    return ($b->{$k} // -1) - ($a->{$k} // 0);
}

my $m0 = scrape();
ok exists $m0->{'connect_tunnel_opened_total'},
   'the handler serves metrics the reference parser reads';
is $m0->{'TYPE connect_tunnel_setup_seconds'}, 'histogram',
   'setup time is a histogram';
is $m0->{'TYPE connect_tunnel_refused'}, 'counter',
   'refusals are a counter';
my %s0 = status_auto($port);

# The workload: five tunnels of known sizes, each ended by the client's
# half-close (the origin echoes, then closes).
my $bytes = 0;
my $good = 0;
for my $i (1 .. 5) {
    my ($s, $status) = tunnel($port, $echo);
    next unless ($status // 0) == 200;
    my $data = chr(64 + $i) x (1000 * $i);
    $bytes += length $data;
    next unless echo_ok($s, $data);
    shutdown $s, 1;
    my (undef, $ended) = read_to_eof($s);
    $good++ if $ended;
    close $s;
}
is $good, 5, 'five tunnels echoed 1000 to 5000 bytes and ended';

# Refusals of known reasons.
my $closed = '127.0.0.1:' . free_port();
my @st;
for my $t ('127.0.0.1:25', '127.0.0.1:25', $closed, $closed) {
    my ($s, $status) = tunnel($port, $t);
    push @st, $status // 0;
    close $s if $s;
}
is "@st[0,1]", '403 403', 'port 25 refused with 403';
ok $st[2] >= 500 && $st[3] >= 500, "a closed port refused (@st[2,3])";

# One tunnel held in a worker: the gauge and the scoreboard show it, and
# a second tunnel from this client is past the limit.
my $m1 = scrape();
my ($held, $hs) = tunnel($wport, $echo);
is $hs, 200, 'a tunnel held in a worker';
ok echo_ok($held, 'ping'), 'it relays';
my ($s2, $st2) = tunnel($wport, $echo);
ok $st2 == 429 || $st2 == 503, "a second one is past the limit ($st2)";
close $s2 if $s2;
my $m2 = scrape();
is delta($m1, $m2, 'connect_tunnel_live{relay="worker"}'), 1,
   'live{relay="worker"} is one more while the tunnel is held';
my (undef, undef, $html) = request('GET', '/server-status');
my $want = 'CONNECT ' . $echo;
ok defined $html && $html =~ m{<td[^>]*>\Q$want\E</td>}i,
   "the scoreboard's request column reads '$want'"
   or diag join "\n", grep { /CONNECT/ } split /\n/, $html // '';
shutdown $held, 1;
read_to_eof($held);
close $held;

# Everything is counted once the requests are over: tunnels at their end
# (end-of-tunnel records), refusals when the request is logged.
ok wait_until(sub { tunnel_records($echo) >= 6 }, 15),
   'six end-of-tunnel records';
my $m3;
wait_until(sub {
    $m3 = scrape();
    delta($m0, $m3, 'connect_tunnel_refused_total{reason="connection_limit_reached"}') >= 1
        && delta($m0, $m3, 'connect_tunnel_refused_total{reason="connection_refused"}') >= 2
}, 10);

my %want = (
    'connect_tunnel_opened_total' => 6,
    'connect_tunnel_ended_total{reason="closed"}' => 6,
    'connect_tunnel_bytes_total{direction="up"}' => $bytes + 4,
    'connect_tunnel_bytes_total{direction="down"}' => $bytes + 4,
    'connect_tunnel_refused_total{reason="http_request_denied"}' => 2,
    'connect_tunnel_refused_total{reason="connection_refused"}' => 2,
    'connect_tunnel_refused_total{reason="connection_limit_reached"}' => 1,
    'connect_tunnel_setup_seconds_count' => 6,
    'connect_tunnel_setup_seconds_bucket{le="+Inf"}' => 6,
    'connect_tunnel_duration_seconds_count' => 6,
    'connect_tunnel_handed_off_total' => $mode eq 'reactor' ? 5 : 0,
    'connect_tunnel_live{relay="worker"}' => 0,
    'connect_tunnel_live{relay="reactor"}' => 0,
);
for my $k (sort keys %want) {
    is delta($m0, $m3, $k), $want{$k}, "$k grew by $want{$k}";
}

# Histograms: cumulative, and every tunnel set up within 10 s.
my @le = sort { $a <=> $b } map { /le="([\d.]+)"/ ? $1 : () }
         grep { /^connect_tunnel_setup_seconds_bucket/ } keys %$m3;
is "@le", '0.001 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10',
   'setup buckets as documented';
my @cum = map { $m3->{"connect_tunnel_setup_seconds_bucket{le=\"$_\"}"} }
          @le, '+Inf';
ok !(grep { $cum[$_] < $cum[$_ - 1] } 1 .. $#cum), 'buckets are cumulative';
is delta($m0, $m3, 'connect_tunnel_setup_seconds_bucket{le="10"}'), 6,
   'every setup took at most 10 s';
ok delta($m0, $m3, 'connect_tunnel_duration_seconds_sum') > 0,
   'tunnel durations add up to more than nothing';

# mod_status shows the same figures.
my %s1 = status_auto($port);
my $sd = sub { ($s1{$_[0]} // -1) - ($s0{$_[0]} // 0) };
is $sd->('ConnectTunnelsRefused_http_request_denied'), 2,
   '?auto: ConnectTunnelsRefused_http_request_denied +2';
is $sd->('ConnectTunnelsRefused_connection_limit_reached'), 1,
   '?auto: ConnectTunnelsRefused_connection_limit_reached +1';
is $sd->('ConnectTunnelsEnded_closed'), 6, '?auto: ConnectTunnelsEnded_closed +6';
is $sd->('ConnectTunnelsSetupSeconds_le_inf'), 6,
   '?auto: ConnectTunnelsSetupSeconds_le_inf +6';

# Access control and methods.
my ($st, $h) = request('GET', '/metrics', '127.0.0.2');
is $st, 403, 'a client outside Require ip gets 403';
($st) = request('POST', '/metrics');
is $st, 405, 'POST gets 405';
($st, $h) = request('GET', '/metrics');
like $h->{'content-type'} // '', qr{^text/plain; version=0\.0\.4},
     'the exposition format\'s content type';
