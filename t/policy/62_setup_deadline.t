# One deadline for everything before the 200 (ConnectTunnelSetupTimeout).
#
# ConnectTunnelConnectTimeout bounds one step of the set-up: one connect,
# one read of an upstream proxy's reply.  Without an overall deadline an
# upstream that sends one byte just inside that timeout holds the worker
# for up to 8,192 such reads, and a name with many blackholed addresses for
# one timeout per address.  Here:
#
# - An upstream proxy (ProxyRemote to a listener of this test) that
#   dribbles its reply one byte every 1.5 s, against a 2 s connect
#   timeout: the client gets a 504 at the default deadline (3 connect
#   timeouts: 6 s), not after minutes; Proxy-Status connection_timeout and
#   CT00140.
# - A blackholed connect (a loopback listener whose accept queue is full)
#   with ConnectTunnelConnectTimeout 10 and ConnectTunnelSetupTimeout 2:
#   504 after about 2 s, not 10.
#
# The cap on the addresses tried (CT_MAX_ADDRESSES) needs a name with more
# than 16 addresses, which loopback-only tests cannot have without a DNS
# server; the unit tests check the function that applies it.
#
# Times are only checked against generous upper bounds.
use strict;
use warnings;
use lib 't/lib';
use IO::Select;
use Time::HiRes qw(time sleep);
use Apache::Test;
use Apache::TestUtil;
use CT::Server qw(conf_define);
use CT::Origin qw(accept_within full_listener listener
                  read_request_head);
use CT::Client qw(head_of header_of read_head read_to_eof send_raw status_of
                  yes);
use CT::Logs qw(log_mark log_wait);

plan tests => 5 + 5;

# 1. The dribbling upstream (5 tests).
{
    my $up_l = listener(port => conf_define('ct_policy_dribble_port'));
    my $target = '127.0.0.1:9';
    my $mark = log_mark();
    my $t0 = time;
    my $client = send_raw('ct_policy_dribble',
                          "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n");
    my $up = accept_within($up_l);
    ok yes($up, 'dribble: the upstream got the CONNECT');
    read_request_head($up) if $up;
    # One byte every 1.5 s, until the client hears something; at most
    # 14 bytes (21 s): long past the deadline, far short of a whole head.
    my $reply = "HTTP/1.1 200 Connection established\r\n";
    my $sel = IO::Select->new($client);
    my $sent = 0;
    while ($up && $sent < 14) {
        print $up substr($reply, $sent++, 1);
        last if $sel->can_read(1.5);
    }
    my ($bytes) = read_to_eof($client, 3);
    my $took = time - $t0;
    ok t_cmp(status_of($bytes), 504, 'dribble: 504');
    ok yes($took < 9, sprintf('dribble: answered within the 6 s deadline '
                              . 'and 3 s more (took %.1f s, %d bytes '
                              . 'dribbled)', $took, $sent));
    ok t_cmp(header_of(head_of($bytes), 'Proxy-Status'),
             qr/;\s*error=connection_timeout\b/,
             'dribble: Proxy-Status connection_timeout');
    ok yes(log_wait($mark, qr/CT00140:/), 'dribble: CT00140 logged');
    close $up if $up;
}

# 2. A blackholed connect against a shorter set-up timeout (5 tests).
{
    my ($full, $full_port, $queued) = full_listener();
    my $probe = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $full_port, Timeout => 1);
    ok yes(!$probe, 'blackhole: a connect to the full listener hangs');
    my $target = "127.0.0.1:$full_port";
    my $mark = log_mark();
    my $t0 = time;
    my $client = send_raw('ct_policy_setup',
                          "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n");
    my ($bytes) = read_to_eof($client, 15);
    my $took = time - $t0;
    ok t_cmp(status_of($bytes), 504, 'blackhole: 504');
    ok yes($took < 5, sprintf('blackhole: answered at the 2 s set-up '
                              . 'timeout, not the 10 s connect timeout '
                              . '(took %.1f s)', $took));
    ok t_cmp(header_of(head_of($bytes), 'Proxy-Status'),
             qr/;\s*error=connection_timeout\b/,
             'blackhole: Proxy-Status connection_timeout');
    ok yes(log_wait($mark, qr/CT00140:/), 'blackhole: CT00140 logged');
}
