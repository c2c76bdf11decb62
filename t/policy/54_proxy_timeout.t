# The connect timeout comes from ProxyTimeout when
# ConnectTunnelConnectTimeout is not set, and from the directive when it
# is: a connect that never completes (a listener whose accept queue is
# full, so the kernel drops the SYNs) ends in 504 connection_timeout after
# that long, not after the 10 s default nor after the other value.  The
# windows are generous; each excludes the value that would apply if the
# documented choice were not made.
use strict;
use warnings;
use lib 't/lib';
use Apache::Test;
use Apache::TestUtil;
use Time::HiRes qw(time);
use CT::Origin qw(full_listener);
use CT::Client qw(head_of header_of read_to_eof send_raw status_of yes);
use CT::Logs qw(log_mark log_wait);

my ($full, $full_port, $queued) = full_listener();

# [description, vhost, what sets the timeout, earliest, latest (s)]
my @cases = (
    [ 'ProxyTimeout 2, no ConnectTunnelConnectTimeout', 'ct_policy_dial',
      1.5, 6 ],
    [ 'ConnectTunnelConnectTimeout 1 over ProxyTimeout 8',
      'ct_policy_dial_own', 0.5, 5 ],
);

plan tests => 5 * @cases;

for my $c (@cases) {
    my ($desc, $vhost, $min, $max) = @$c;
    my $mark = log_mark();
    my $t0 = time;
    my $s = send_raw($vhost, "CONNECT 127.0.0.1:$full_port HTTP/1.1\r\n"
                             . "Host: x\r\n\r\n");
    my ($bytes) = read_to_eof($s, 20);
    my $took = time - $t0;
    ok t_cmp(status_of($bytes), 504, "$desc: 504");
    ok t_cmp(header_of(head_of($bytes), 'Proxy-Status'),
             qr/;\s*error=connection_timeout\b/,
             "$desc: Proxy-Status connection_timeout");
    ok yes(log_wait($mark, qr/CT00026:/), "$desc: CT00026 logged");
    ok yes($took >= $min, sprintf "$desc: not before %.1f s (%.2f s)",
                                  $min, $took);
    ok yes($took <= $max, sprintf "$desc: not after %.1f s (%.2f s)",
                                  $max, $took);
}
