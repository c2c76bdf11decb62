# Forwarding loops and the headers that reveal them.
#
# - ct_policy_loop sends every CONNECT to itself (ProxyRemote to its own
#   port).  The first hop adds its Via entry; the second sees it and
#   refuses with 502 and Proxy-Status error=proxy_loop_detected (RFC 9209,
#   CT00144); the first reports the loop to the client the same way
#   (CT00141).  Exactly two requests reach the access log, and nothing
#   stays behind: the vhost answers the next request at once.  (Before,
#   each hop opened the next until workers ran out.)
# - Through a recording upstream (ct_policy_rec): the CONNECT carries the
#   client's Via with our own entry appended, and Max-Forwards counted
#   down by one hop (mod_proxy decrements it; we forward it).
# - Another proxy's entry with our ServerName is not taken for ours: the
#   entry has the port and a random per-instance token.
use strict;
use warnings;
use lib 't/lib';
use IO::Select;
use Time::HiRes qw(time sleep);
use Apache::Test;
use Apache::TestUtil;
use CT::Server qw(conf_define t_path);
use CT::Origin qw(accept_within listener read_request_head);
use CT::Client qw(head_of header_of read_to_eof send_raw status_of yes);
use CT::Logs qw(log_mark log_since log_wait);

plan tests => 8 + 6;

# Access-log lines for "CONNECT $target" with $status after offset $at.
sub logged {
    my ($at, $target, $status) = @_;
    open my $fh, '<', t_path('logs', 'tunnel_log') or return 0;
    seek $fh, $at, 0;
    return scalar grep { /"CONNECT \Q$target\E HTTP\/1\.1" $status / } <$fh>;
}

my $target_l = listener();

# 1. The loop (8 tests).
{
    my $target = '127.0.0.1:' . $target_l->sockport;
    my $at = -s t_path('logs', 'tunnel_log') || 0;
    my $mark = log_mark();
    my $t0 = time;
    my $client = send_raw('ct_policy_loop', "CONNECT $target HTTP/1.1\r\n"
                                          . "Host: $target\r\n"
                                          . "Max-Forwards: 50\r\n\r\n");
    my ($bytes) = read_to_eof($client, 15);
    my $took = time - $t0;
    my $head = head_of($bytes);
    ok t_cmp(status_of($bytes), 502, 'loop: 502');
    ok t_cmp(header_of($head, 'Proxy-Status'),
             qr/;\s*error=proxy_loop_detected\b/,
             'loop: Proxy-Status proxy_loop_detected');
    ok yes($took < 5, sprintf('loop: answered at once (%.1f s)', $took));
    ok yes(log_wait($mark, qr/CT00144:/), 'loop: the second hop saw its '
                                          . 'own Via (CT00144)');
    ok yes(log_wait($mark, qr/CT00141:/), 'loop: the first hop reported '
                                          . 'the loop (CT00141)');
    # Both hops are logged once they are done; give a third time to show.
    my $n = 0;
    for (1 .. 30) {
        $n = logged($at, $target, 502);
        last if $n >= 2;
        sleep 0.1;
    }
    sleep 1;
    $n = logged($at, $target, 502);
    ok t_cmp($n, 2, 'loop: exactly one extra hop (two access-log lines)');
    my @hits = log_since($mark) =~ /CT00144:/g;
    ok t_cmp(scalar @hits, 1, 'loop: refused once');
    # Nothing left holding the vhost: the next request is answered at once.
    $t0 = time;
    my $again = send_raw('ct_policy_loop', "CONNECT $target HTTP/1.1\r\n"
                                         . "Host: $target\r\n\r\n");
    ($bytes) = read_to_eof($again, 15);
    ok yes(status_of($bytes) == 502 && time - $t0 < 5,
           'loop: the next CONNECT is refused at once too');
}

# 2. Via and Max-Forwards on the upstream CONNECT (6 tests).
{
    my $rec = listener(port => conf_define('ct_policy_recorder_port'));
    my $target = '127.0.0.1:' . $target_l->sockport;
    my $ask = sub {
        my ($headers) = @_;
        my $client = send_raw('ct_policy_rec', "CONNECT $target HTTP/1.1\r\n"
                                             . "Host: $target\r\n"
                                             . "$headers\r\n");
        my $up = accept_within($rec);
        my $got = $up ? read_request_head($up) : '';
        if ($up) {
            print $up "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
            close $up;
        }
        my ($bytes) = read_to_eof($client, 10);
        return ($got, status_of($bytes));
    };

    my ($got) = $ask->("Via: 1.0 downstream, 1.1 other (squid)\r\n"
                       . "Max-Forwards: 5\r\n");
    my $via = header_of($got, 'Via') // '';
    ok t_cmp($via, qr/^1\.0 downstream, 1\.1 other \(squid\), 1\.1 \S+$/,
             'upstream sees the client\'s Via with our entry appended');
    my ($ours) = $via =~ /, 1\.1 (\S+)$/;
    ok t_cmp($ours // '', qr/^[A-Za-z0-9.-]+-\d+-[0-9a-f]{16}$/,
             'our entry: name, port and a 16-hex instance token');
    ok t_cmp(header_of($got, 'Max-Forwards'), 4,
             'upstream sees Max-Forwards counted down by one');

    ($got) = $ask->('');
    ok t_cmp(header_of($got, 'Via') // '', qr/^1\.1 \Q$ours\E$/,
             'no Via from the client: ours alone, the same entry');
    ok t_cmp(header_of($got, 'Max-Forwards'), undef,
             'no Max-Forwards from the client: none invented');

    # Another proxy with our name (and even our port) is not us.
    my ($name, $port) = $ours =~ /^(.*)-(\d+)-[0-9a-f]+$/;
    my $status;
    ($got, $status) = $ask->("Via: 1.1 $name, 1.1 $name-$port-"
                             . "0123456789abcdef\r\n");
    ok yes($got =~ /^CONNECT / && $status == 502,
           'a Via entry with our name but not our token is no loop '
           . "(upstream reached, its 403 is our 502; got $status)");
}
